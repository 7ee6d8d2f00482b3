// The NetworkPolicy of spec.networkPolicy (pure): ingress to the instance pods, per port.
//   agent (8000) and PostgreSQL: the operator's pods (its namespace, the chart's operator labels);
//   PostgreSQL: the cluster's own pods (replication; backup, purge and upgrade Jobs) and the clients;
//   metrics (9187, with monitoring on): Prometheus.
// Kubelet probes come from the node, which NetworkPolicy implementations let through.
import type { V1NetworkPolicy, V1NetworkPolicyIngressRule, V1NetworkPolicyPeer, V1NetworkPolicyPort } from '@kubernetes/client-node';
import type { PostgreSQLCluster } from '../api/cluster.js';
import { AGENT_PORT, LABELS, METRICS_PORT, POSTGRES_PORT } from '../api/constants.js';
import { podSelector } from '../api/labels.js';
import { names } from '../api/names.js';
import { specOf } from '../api/resolve-spec.js';
import { ownedMeta } from './meta.js';

/** Labels of the operator's pods in the chart's Deployment (whatever the release is called). */
export const OPERATOR_POD_LABELS = { 'app.kubernetes.io/part-of': 'pgpilot', [LABELS.component]: 'operator' };

/** Who scrapes metrics when spec.networkPolicy.metrics is absent. */
export const DEFAULT_METRICS_PEERS: V1NetworkPolicyPeer[] = [{ namespaceSelector: {}, podSelector: { matchLabels: { [LABELS.name]: 'prometheus' } } }];

const tcp = (...ports: number[]): V1NetworkPolicyPort[] => ports.map((port) => ({ protocol: 'TCP', port }));

/** undefined: spec.networkPolicy is not enabled (a policy made earlier is to be removed). `operatorNamespace` undefined: the operator's pods in any namespace. */
export function networkPolicy(cluster: PostgreSQLCluster, operatorNamespace: string | undefined): V1NetworkPolicy | undefined {
  const np = cluster.spec.networkPolicy;
  if (!np?.enabled) return undefined;
  const name = cluster.metadata.name!;
  const operator: V1NetworkPolicyPeer = {
    namespaceSelector: operatorNamespace ? { matchLabels: { 'kubernetes.io/metadata.name': operatorNamespace } } : {},
    podSelector: { matchLabels: OPERATOR_POD_LABELS },
  };
  const ownPods: V1NetworkPolicyPeer = { podSelector: { matchLabels: { [LABELS.cluster]: name } } };
  // `_from`: client-node's name of the field `from`, which its serializer writes (owned-kinds.ts
  // gives the cached copies the same spelling, so a converged policy compares equal).
  const ingress: V1NetworkPolicyIngressRule[] = [
    { _from: [operator], ports: tcp(AGENT_PORT, POSTGRES_PORT) },
    { _from: [ownPods], ports: tcp(POSTGRES_PORT) },
    // No `from`: any source. An empty list admits nobody, so that rule is left out.
    ...(np.clients === undefined ? [{ ports: tcp(POSTGRES_PORT) }] : np.clients.length > 0 ? [{ _from: np.clients, ports: tcp(POSTGRES_PORT) }] : []),
  ];
  if (specOf(cluster).monitoring.enabled) {
    const metrics = np.metrics ?? DEFAULT_METRICS_PEERS;
    if (metrics.length > 0) ingress.push({ _from: metrics, ports: tcp(METRICS_PORT) });
  }
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: ownedMeta(cluster, names.networkPolicy(name), 'network-policy'),
    spec: { podSelector: { matchLabels: podSelector(name) }, policyTypes: ['Ingress'], ingress },
  };
}
