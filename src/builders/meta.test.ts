// What every owned object carries: labels and the owner reference.
import type { KubernetesObject, V1StatefulSet } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import type { PostgreSQLCluster } from '../api/cluster.js';
import { LABELS, MANAGED_BY } from '../api/constants.js';
import { configMap } from './configmap.js';
import { clusterServices } from './services.js';
import { names } from '../api/names.js';
import { podDisruptionBudget } from './pdb.js';
import { instanceRole, instanceRoleBinding, instanceServiceAccount } from './rbac.js';
import { credentialSecret } from './secrets.js';
import { instanceStatefulSet, type ExistingClaims } from './statefulset.js';
import { CLUSTER_UID, seedCluster } from '../../test/support/cluster-fixtures.js';

const IMAGES = { instanceImageRepository: 'registry.example/pgpilot/postgresql' };

function statefulSet(cluster: PostgreSQLCluster = seedCluster(), existing?: ExistingClaims): V1StatefulSet {
  return instanceStatefulSet(cluster, names.instance(cluster.metadata.name!, 2), IMAGES, existing);
}

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
