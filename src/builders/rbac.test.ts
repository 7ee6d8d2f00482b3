import { describe, expect, it } from 'vitest';
import { instanceRole, instanceRoleBinding, instanceServiceAccount } from './rbac.js';
import { seedCluster } from '../../test/support/cluster-fixtures.js';
import { podSpecOf, statefulSet } from '../../test/support/builder-fixtures.js';

describe('instance RBAC', () => {
  const rules = () => instanceRole(seedCluster()).rules!;

  it('has no wildcards', () => {
    for (const r of rules()) {
      for (const v of [...(r.apiGroups ?? []), ...(r.resources ?? []), ...r.verbs, ...(r.resourceNames ?? [])]) expect(v, JSON.stringify(r)).not.toContain('*');
    }
  });

  it.each([
    ['postgres.pgpilot.io', 'postgresqlclusters', ['prod-db']],
    ['', 'configmaps', ['prod-db-config']],
    ['', 'secrets', ['prod-db-superuser', 'prod-db-replication', 'prod-db-app', 'prod-db-agent']],
  ])('restricts %s %s to this cluster\'s objects by name', (group, resource, resourceNames) => {
    const matching = rules().filter((r) => r.apiGroups?.includes(group) && r.resources?.includes(resource));
    expect(matching.length).toBeGreaterThan(0);
    for (const r of matching) expect([...(r.resourceNames ?? [])].sort()).toEqual([...resourceNames].sort());
  });

  it('only reads Secrets', () => {
    for (const r of rules().filter((r) => r.resources?.includes('secrets'))) expect(r.verbs).toEqual(['get']);
  });

  it('lets backup Job pods create, record and delete PostgreSQLBackups, and nothing else of the API group by other names', () => {
    const backups = rules().filter((r) => r.apiGroups?.includes('postgres.pgpilot.io') && r.resources?.some((x) => x.startsWith('postgresqlbackups')));
    expect(backups.map((r) => ({ resources: r.resources, verbs: [...r.verbs].sort(), resourceNames: r.resourceNames }))).toEqual([
      { resources: ['postgresqlbackups'], verbs: ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'], resourceNames: undefined },
      { resources: ['postgresqlbackups/status'], verbs: ['get', 'patch', 'update'], resourceNames: undefined },
    ]);
    const group = rules().filter((r) => r.apiGroups?.includes('postgres.pgpilot.io')).flatMap((r) => r.resources ?? []);
    expect(group.sort()).toEqual(['postgresqlbackups', 'postgresqlbackups/status', 'postgresqlclusters']);
  });

  it('binds the Role to the instances\' ServiceAccount in the cluster\'s namespace', () => {
    const cluster = seedCluster();
    const binding = instanceRoleBinding(cluster);
    expect(binding.roleRef).toEqual({ apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: instanceRole(cluster).metadata!.name });
    expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name: instanceServiceAccount(cluster).metadata!.name, namespace: 'production' }]);
    expect(podSpecOf(statefulSet(cluster)).serviceAccountName).toBe(instanceServiceAccount(cluster).metadata!.name);
  });
});
