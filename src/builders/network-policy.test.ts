import { describe, expect, it } from 'vitest';
import { seedCluster } from '../../test/support/cluster-fixtures.js';
import type { V1NetworkPolicy } from '@kubernetes/client-node';
import { DEFAULT_METRICS_PEERS, OPERATOR_POD_LABELS, networkPolicy } from './network-policy.js';

/** port → the peers admitted to it (undefined in the list: any source). */
function admitted(np: V1NetworkPolicy): Map<number, Array<unknown>> {
  const out = new Map<number, Array<unknown>>();
  for (const rule of np.spec!.ingress ?? []) {
    for (const p of rule.ports ?? []) out.set(p.port as number, [...(out.get(p.port as number) ?? []), ...(rule._from ?? [undefined])]);
  }
  return out;
}

describe('the NetworkPolicy of spec.networkPolicy', () => {
  it('is absent unless enabled', () => {
    expect(networkPolicy(seedCluster(), 'pgpilot-system')).toBeUndefined();
    expect(networkPolicy(seedCluster({ networkPolicy: { enabled: false } }), 'pgpilot-system')).toBeUndefined();
  });

  it('selects the instance pods, ingress only, owned by the cluster', () => {
    const np = networkPolicy(seedCluster({ networkPolicy: { enabled: true } }), 'pgpilot-system')!;
    expect(np.metadata).toMatchObject({ name: 'prod-db', namespace: 'production' });
    expect(np.metadata!.ownerReferences![0]).toMatchObject({ kind: 'PostgreSQLCluster', name: 'prod-db', controller: true });
    expect(np.spec!.podSelector).toEqual({ matchLabels: { 'postgres.pgpilot.io/cluster': 'prod-db', 'app.kubernetes.io/component': 'instance' } });
    expect(np.spec!.policyTypes).toEqual(['Ingress']);
  });

  it('admits only the operator\'s pods to the agent port; the operator, the cluster\'s pods and by default anyone to PostgreSQL; Prometheus to metrics', () => {
    const ports = admitted(networkPolicy(seedCluster({ networkPolicy: { enabled: true } }), 'pgpilot-system')!);
    const operator = { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'pgpilot-system' } }, podSelector: { matchLabels: OPERATOR_POD_LABELS } };
    expect(ports.get(8000)).toEqual([operator]);
    expect(ports.get(5432)).toEqual([operator, { podSelector: { matchLabels: { 'postgres.pgpilot.io/cluster': 'prod-db' } } }, undefined]);
    expect(ports.get(9187)).toEqual(DEFAULT_METRICS_PEERS);
    expect([...ports.keys()].sort()).toEqual([5432, 8000, 9187]);
  });

  it('admits only the listed clients to PostgreSQL, and nobody else with an empty list', () => {
    const web = { podSelector: { matchLabels: { app: 'web' } } };
    const listed = admitted(networkPolicy(seedCluster({ networkPolicy: { enabled: true, clients: [web, { ipBlock: { cidr: '10.1.0.0/16' } }] } }), 'ops')!);
    expect(listed.get(5432)!.slice(2)).toEqual([web, { ipBlock: { cidr: '10.1.0.0/16' } }]);
    const none = admitted(networkPolicy(seedCluster({ networkPolicy: { enabled: true, clients: [] } }), 'ops')!);
    expect(none.get(5432)).toHaveLength(2);
    expect(none.get(5432)).not.toContain(undefined);
  });

  it('opens the metrics port only with monitoring on, to the peers given', () => {
    const off = admitted(networkPolicy(seedCluster({ networkPolicy: { enabled: true }, monitoring: { enabled: false } }), 'ops')!);
    expect(off.has(9187)).toBe(false);
    const mine = { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } };
    expect(admitted(networkPolicy(seedCluster({ networkPolicy: { enabled: true, metrics: [mine] } }), 'ops')!).get(9187)).toEqual([mine]);
    expect(admitted(networkPolicy(seedCluster({ networkPolicy: { enabled: true, metrics: [] } }), 'ops')!).has(9187)).toBe(false);
  });

  it('admits the operator\'s pods from any namespace when the operator does not know its own', () => {
    const ports = admitted(networkPolicy(seedCluster({ networkPolicy: { enabled: true } }), undefined)!);
    expect(ports.get(8000)).toEqual([{ namespaceSelector: {}, podSelector: { matchLabels: OPERATOR_POD_LABELS } }]);
  });
});
