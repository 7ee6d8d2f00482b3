// The HorizontalPodAutoscaler of spec.autoscaling (pure): autoscaling/v2, targeting the cluster's
// scale subresource (spec.instances / status.instances / status.selector), with the instance pods'
// average CPU utilisation as its one metric. The HPA controller of kube-controller-manager drives
// it with pod metrics from metrics.k8s.io (metrics-server).
import type { V2HorizontalPodAutoscaler } from '@kubernetes/client-node';
import type { PostgreSQLCluster } from '../api/cluster.js';
import { API_GROUP_VERSION, CLUSTER_KIND } from '../api/constants.js';
import { DEFAULTS } from '../api/defaults.js';
import { names } from '../api/names.js';
import { specOf } from '../api/resolve-spec.js';
import { minimumInstances } from './instance-plan.js';
import { ownedMeta } from './meta.js';

/** The HPA's minReplicas: spec.autoscaling.min, else the fewest instances synchronous commit allows. */
export function autoscalingMin(cluster: PostgreSQLCluster): number {
  return cluster.spec.autoscaling?.min ?? minimumInstances(specOf(cluster).highAvailability);
}

/** The HPA spec.autoscaling asks for; undefined without that block. */
export function horizontalPodAutoscaler(cluster: PostgreSQLCluster): V2HorizontalPodAutoscaler | undefined {
  const as = cluster.spec.autoscaling;
  if (!as) return undefined;
  const name = cluster.metadata.name!;
  return {
    apiVersion: 'autoscaling/v2',
    kind: 'HorizontalPodAutoscaler',
    metadata: ownedMeta(cluster, names.hpa(name), 'autoscaler'),
    spec: {
      scaleTargetRef: { apiVersion: API_GROUP_VERSION, kind: CLUSTER_KIND, name },
      minReplicas: autoscalingMin(cluster),
      maxReplicas: as.max,
      metrics: [
        {
          type: 'Resource',
          resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: as.targetCPUUtilizationPercentage ?? DEFAULTS.autoscalingTargetCPU } },
        },
      ],
      ...(as.scaleDownStabilizationSeconds !== undefined ? { behavior: { scaleDown: { stabilizationWindowSeconds: as.scaleDownStabilizationSeconds } } } : {}),
    },
  };
}
