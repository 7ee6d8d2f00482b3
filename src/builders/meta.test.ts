// What every owned object carries: labels and the owner reference.
import type { KubernetesObject } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { LABELS, MANAGED_BY } from '../api/constants.js';
import { configMap } from './configmap.js';
import { clusterServices } from './services.js';
import { podDisruptionBudget } from './pdb.js';
import { instanceRole, instanceRoleBinding, instanceServiceAccount } from './rbac.js';
import { credentialSecret } from './secrets.js';
import { CLUSTER_UID, seedCluster } from '../../test/support/cluster-fixtures.js';
import { statefulSet } from '../../test/support/builder-fixtures.js';

describe('every owned object', () => {
  const cluster = seedCluster();
  const owned: KubernetesObject[] = [
    configMap(cluster),
    ...clusterServices(cluster),
    podDisruptionBudget(cluster, 3)!,
    instanceServiceAccount(cluster),
    instanceRole(cluster),
    instanceRoleBinding(cluster),
    ...(['superuser', 'replication', 'app'] as const).map((k) => credentialSecret(cluster, k, 'pw')),
    statefulSet(cluster),
  ];

  it.each(owned.map((o) => [`${o.kind}/${o.metadata?.name}`, o] as const))('%s is controlled by the cluster, labelled and in its namespace', (_id, obj) => {
    expect(obj.metadata?.namespace).toBe('production');
    expect(obj.metadata?.ownerReferences).toEqual([
      { apiVersion: 'postgres.pgpilot.io/v1', kind: 'PostgreSQLCluster', name: 'prod-db', uid: CLUSTER_UID, controller: true, blockOwnerDeletion: true },
    ]);
    expect(obj.metadata?.labels).toMatchObject({ [LABELS.managedBy]: MANAGED_BY, [LABELS.cluster]: 'prod-db' });
  });

  it('have distinct names within each kind', () => {
    const ids = owned.map((o) => `${o.kind}/${o.metadata?.name}`);
    expect(new Set(ids).size).toBe(ids.length);
  });
});
