import { describe, expect, it } from 'vitest';
import { parseMethod, pluralOf, scanApiCalls } from './api-calls.js';

describe('the API call scanner', () => {
  it('reads verbs, kinds and subresources from client-node method names', () => {
    expect(parseMethod('readNamespacedLease')).toEqual({ verb: 'get', kind: 'Lease' });
    expect(parseMethod('listPodForAllNamespaces')).toEqual({ verb: 'list', kind: 'Pod' });
    expect(parseMethod('patchNamespacedPersistentVolumeClaimStatus')).toEqual({ verb: 'patch', kind: 'PersistentVolumeClaim', subresource: 'status' });
    expect(parseMethod('replaceNamespacedRoleBinding')).toEqual({ verb: 'update', kind: 'RoleBinding' });
    expect(parseMethod('deleteCollectionNamespacedPod')).toEqual({ verb: 'deletecollection', kind: 'Pod' });
    expect(['PodDisruptionBudget', 'NetworkPolicy', 'Endpoints', 'Gateway'].map(pluralOf)).toEqual(['poddisruptionbudgets', 'networkpolicies', 'endpoints', 'gateways']);
  });

  it('finds every call of a fixture, through helpers, spreads and sinks, and reports what it cannot attribute', () => {
    const r = scanApiCalls(['test/support/fixtures/api-calls.ts']);
    const found = new Set(r.calls.map((c) => `${c.group}/${c.resource}:${c.verb}`));
    expect([...found].sort()).toEqual(
      [
        '/configmaps:create',
        '/configmaps:delete',
        '/configmaps:list',
        '/configmaps:patch',
        '/configmaps:watch',
        '/pods/log:get',
        '/pods:list',
        '/secrets:create',
        '/secrets:delete',
        '/secrets:list',
        '/secrets:watch',
        'postgres.pgpilot.io/postgresqlclusters/finalizers:update',
        'postgres.pgpilot.io/postgresqlclusters/scale:update',
        'postgres.pgpilot.io/postgresqlclusters:list',
        'postgres.pgpilot.io/postgresqlclusters:watch',
      ].sort(),
    );
    expect(r.problems).toHaveLength(2);
    expect(r.problems[0]).toMatch(/fixtures\/api-calls\.ts:\d+: KubernetesObjectApi\.replace outside the apply\/create\/delete helpers/);
    expect(r.problems[1]).toMatch(/fixtures\/api-calls\.ts:\d+: CustomObjectsApi\.getNamespacedCustomObject with a group or plural that is not a literal/);
    expect(r.files).toContain('src/runtime/apply.ts');
  });
});
