// The PodMonitor of a cluster (Prometheus Operator, monitoring.coreos.com/v1): scrape every
// instance pod's metrics port (the agent's exporter), with the labels alerts and dashboards use —
// `cluster` and `instance` from the pod's labels (Prometheus turns "." and "/" in label names into
// "_"); the Prometheus Operator adds `namespace`, `pod` and `container` itself. Not the role: it
// changes with every failover (new target labels, new series) and the exporter reports it
// (pgpilot_instance_role{role}).
import type { KubernetesObject } from '@kubernetes/client-node';
import type { PostgreSQLCluster } from '../api/cluster.js';
import { LABELS } from '../api/constants.js';
import { podSelector } from '../api/labels.js';
import { ownedMeta } from './meta.js';

export const POD_MONITOR_API_VERSION = 'monitoring.coreos.com/v1';
/** The name of the instance container's port the exporter listens on. */
export const METRICS_PORT_NAME = 'metrics';

const metaLabel = (label: string) => `__meta_kubernetes_pod_label_${label.replace(/[^a-zA-Z0-9_]/g, '_')}`;

export interface PodMonitor extends KubernetesObject {
  spec: {
    selector: { matchLabels: Record<string, string> };
    podMetricsEndpoints: Array<{ port: string; path: string; relabelings: Array<{ sourceLabels: string[]; targetLabel: string; action: 'replace' }> }>;
  };
}

export function podMonitor(cluster: PostgreSQLCluster): PodMonitor {
  const name = cluster.metadata.name!;
  const relabel = (label: string, targetLabel: string) => ({ sourceLabels: [metaLabel(label)], targetLabel, action: 'replace' as const });
  return {
    apiVersion: POD_MONITOR_API_VERSION,
    kind: 'PodMonitor',
    metadata: ownedMeta(cluster, name, 'monitoring'),
    spec: {
      selector: { matchLabels: podSelector(name) },
      podMetricsEndpoints: [
        {
          port: METRICS_PORT_NAME,
          path: '/metrics',
          relabelings: [relabel(LABELS.cluster, 'cluster'), relabel(LABELS.instance, 'instance')],
        },
      ],
    },
  };
}
