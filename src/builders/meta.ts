// Labels, selectors and owner references shared by every object of a cluster.
import type { V1ObjectMeta, V1OwnerReference } from '@kubernetes/client-node';
import { API_GROUP_VERSION, CLUSTER_KIND, LABELS, MANAGED_BY } from '../api/constants.js';
import type { PostgreSQLCluster } from '../api/cluster.js';

export function clusterLabels(cluster: string, component: string): Record<string, string> {
  return {
    [LABELS.name]: 'postgresql',
    [LABELS.instanceOf]: cluster,
    [LABELS.component]: component,
    [LABELS.managedBy]: MANAGED_BY,
    [LABELS.cluster]: cluster,
  };
}

/** Selects every instance pod of a cluster (Services, PDB, anti-affinity, scale selector). */
export function podSelector(cluster: string): Record<string, string> {
  return { [LABELS.cluster]: cluster, [LABELS.component]: 'instance' };
}

export function selectorString(selector: Record<string, string>): string {
  return Object.entries(selector)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
}

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
