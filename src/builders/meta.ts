// Owner references and metadata shared by every object a cluster owns.
import type { V1ObjectMeta, V1OwnerReference } from '@kubernetes/client-node';
import { API_GROUP_VERSION, CLUSTER_KIND } from '../api/constants.js';
import { clusterLabels } from '../api/labels.js';
import type { PostgreSQLCluster } from '../api/cluster.js';

export function ownerReference(cluster: PostgreSQLCluster): V1OwnerReference {
  return {
    apiVersion: API_GROUP_VERSION,
    kind: CLUSTER_KIND,
    name: cluster.metadata.name!,
    uid: cluster.metadata.uid!,
    controller: true,
    blockOwnerDeletion: true,
  };
}

/** Metadata of an object owned by the cluster: same namespace, labels, controller reference. */
export function ownedMeta(cluster: PostgreSQLCluster, name: string, component: string, extraLabels: Record<string, string> = {}): V1ObjectMeta {
  return {
    name,
    namespace: cluster.metadata.namespace,
    labels: { ...clusterLabels(cluster.metadata.name!, component), ...extraLabels },
    ownerReferences: [ownerReference(cluster)],
  };
}
