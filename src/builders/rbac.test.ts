import { describe, expect, it } from 'vitest';
import { instanceRole, instanceRoleBinding, instanceServiceAccount } from './rbac.js';
import { BACKUP_JOB_PERMISSIONS, grantsOf } from '../api/permissions.js';
import { seedCluster } from '../../test/support/cluster-fixtures.js';
import { podSpecOf, statefulSet } from '../../test/support/builder-fixtures.js';

describe('instance RBAC', () => {
  const rules = () => instanceRole(seedCluster()).rules!;

  it('has no wildcards', () => {
    for (const r of rules()) {
      for (const v of [...(r.apiGroups ?? []), ...(r.resources ?? []), ...r.verbs, ...(r.resourceNames ?? [])]) expect(v, JSON.stringify(r)).not.toContain('*');
    }
  });

  it('restricts the cluster to its own name', () => {
    const matching = rules().filter((r) => r.resources?.includes('postgresqlclusters'));
    expect(matching).toEqual([{ apiGroups: ['postgres.pgpilot.io'], resources: ['postgresqlclusters'], resourceNames: ['prod-db'], verbs: ['get'] }]);
  });

  it('grants exactly what backup Jobs use (src/api/permissions.ts): no Secret, no ConfigMap, no write beyond PostgreSQLBackups and Events', () => {
    const grants = rules().flatMap((r) => r.apiGroups!.flatMap((g) => r.resources!.flatMap((res) => r.verbs.map((v) => `${g}/${res}:${v}`))));
    expect(new Set(grants)).toEqual(grantsOf(BACKUP_JOB_PERMISSIONS));
    expect(grants.filter((g) => /secrets|configmaps/.test(g))).toEqual([]);
    expect(grants.filter((g) => /:(create|update|patch|delete)$/.test(g) && !/postgresqlbackups|events/.test(g))).toEqual([]);
  });

  it('binds the Role to the instances\' ServiceAccount in the cluster\'s namespace', () => {
    const cluster = seedCluster();
    const binding = instanceRoleBinding(cluster);
    expect(binding.roleRef).toEqual({ apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: instanceRole(cluster).metadata!.name });
    expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name: instanceServiceAccount(cluster).metadata!.name, namespace: 'production' }]);
    expect(podSpecOf(statefulSet(cluster)).serviceAccountName).toBe(instanceServiceAccount(cluster).metadata!.name);
  });
});
