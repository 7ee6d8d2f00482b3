// The identity of a cluster's PostgreSQL pods and backup Job pods (same ServiceAccount): a Role
// limited to what the instance agent reads (its cluster, pods, config), the Events it writes, and
// the PostgreSQLBackups the backup Jobs create, record and (retention) delete. S3 credentials come
// as files of Secret volumes, so no Secret beyond the cluster's own is readable.
import type { V1Role, V1RoleBinding, V1ServiceAccount } from '@kubernetes/client-node';
import type { PostgreSQLCluster } from '../api/cluster.js';
import { API_GROUP, BACKUP_PLURAL, CLUSTER_PLURAL } from '../api/constants.js';
import { ownedMeta } from './meta.js';
import { names } from '../api/names.js';
import { secretNames } from './secrets.js';

export function instanceServiceAccount(cluster: PostgreSQLCluster): V1ServiceAccount {
  return { apiVersion: 'v1', kind: 'ServiceAccount', metadata: ownedMeta(cluster, names.serviceAccount(cluster.metadata.name!), 'instance-identity') };
}

export function instanceRole(cluster: PostgreSQLCluster): V1Role {
  const name = cluster.metadata.name!;
  return {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'Role',
    metadata: ownedMeta(cluster, names.role(name), 'instance-identity'),
    rules: [
      { apiGroups: [API_GROUP], resources: [CLUSTER_PLURAL], resourceNames: [name], verbs: ['get', 'list', 'watch'] },
      { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch'] },
      { apiGroups: [''], resources: ['configmaps'], resourceNames: [names.config(name)], verbs: ['get', 'list', 'watch'] },
      { apiGroups: [''], resources: ['secrets'], resourceNames: Object.values(secretNames(cluster)), verbs: ['get'] },
      { apiGroups: [''], resources: ['events'], verbs: ['create', 'patch'] },
      // Not restricted by name: create cannot be, and retention deletes any expired backup.
      { apiGroups: [API_GROUP], resources: [BACKUP_PLURAL], verbs: ['get', 'list', 'watch', 'create', 'patch', 'update', 'delete'] },
      { apiGroups: [API_GROUP], resources: [`${BACKUP_PLURAL}/status`], verbs: ['get', 'patch', 'update'] },
    ],
  };
}

export function instanceRoleBinding(cluster: PostgreSQLCluster): V1RoleBinding {
  const name = cluster.metadata.name!;
  return {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'RoleBinding',
    metadata: ownedMeta(cluster, names.role(name), 'instance-identity'),
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: names.role(name) },
    subjects: [{ kind: 'ServiceAccount', name: names.serviceAccount(name), namespace: cluster.metadata.namespace }],
  };
}
