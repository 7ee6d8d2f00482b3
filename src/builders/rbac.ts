// The identity of a cluster's pods: one ServiceAccount for instance pods and backup Job pods. Only
// the backup Jobs call the API (instance pods mount no token: statefulset.ts), so the Role grants
// what they use (src/api/permissions.ts), the cluster narrowed to its own name. Credentials reach
// them as mounted files, so no Secret is readable through the API.
import type { V1PolicyRule, V1Role, V1RoleBinding, V1ServiceAccount } from '@kubernetes/client-node';
import type { PostgreSQLCluster } from '../api/cluster.js';
import { API_GROUP, CLUSTER_PLURAL } from '../api/constants.js';
import { BACKUP_JOB_PERMISSIONS } from '../api/permissions.js';
import { ownedMeta } from './meta.js';
import { names } from '../api/names.js';

export function instanceServiceAccount(cluster: PostgreSQLCluster): V1ServiceAccount {
  return { apiVersion: 'v1', kind: 'ServiceAccount', metadata: ownedMeta(cluster, names.serviceAccount(cluster.metadata.name!), 'instance-identity') };
}

export function instanceRole(cluster: PostgreSQLCluster): V1Role {
  const name = cluster.metadata.name!;
  const rules: V1PolicyRule[] = BACKUP_JOB_PERMISSIONS.map((p) => ({
    apiGroups: [p.group],
    resources: [p.resource],
    // create and list cannot be narrowed by name; the cluster's own object can.
    ...(p.group === API_GROUP && p.resource === CLUSTER_PLURAL ? { resourceNames: [name] } : {}),
    verbs: [...p.verbs],
  }));
  return { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: ownedMeta(cluster, names.role(name), 'instance-identity'), rules };
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
