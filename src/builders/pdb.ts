// At most one instance may be voluntarily disrupted at a time (node drains, evictions).
import type { V1PodDisruptionBudget } from '@kubernetes/client-node';
import type { PostgreSQLCluster } from '../api/cluster.js';
import { ownedMeta } from './meta.js';
import { podSelector } from '../api/labels.js';
import { names } from '../api/names.js';

/**
 * A single-instance cluster gets no budget: one with maxUnavailable 0 would block every node
 * drain forever, and one with 1 protects nothing.
 */
export function podDisruptionBudget(cluster: PostgreSQLCluster, instances: number): V1PodDisruptionBudget | undefined {
  if (instances < 2) return undefined;
  const name = cluster.metadata.name!;
  return {
    apiVersion: 'policy/v1',
    kind: 'PodDisruptionBudget',
    metadata: ownedMeta(cluster, names.pdb(name), 'disruption-budget'),
    spec: { maxUnavailable: 1, selector: { matchLabels: podSelector(name) } },
  };
}
