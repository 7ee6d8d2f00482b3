/**
 * The metric names the dashboards may read: the one list the dashboard tests compare every query
 * against. Two parts:
 *
 * - the instance exporter's names, read from the exporter itself (the agent serves them on port
 *   9187; the PodMonitor adds `namespace`, `pod`, `cluster`, `instance`);
 * - the operator's names: the contract's per-cluster series plus the operator registry that
 *   exists today (src/runtime/metrics.ts, src/controller/cluster-metrics.ts; prom-client's default
 *   process metrics under the prefix `pgpilot_process_`, which prom-client prepends to its own
 *   `process_*` names). A test checks each of these against what that registry really exposes, so
 *   a rename there fails here.
 *
 * Histograms are listed by the series names queries read (`_bucket`, `_sum`, `_count`).
 */
import { EXPORTER_FAMILIES } from '../../src/instance/exporter.js';

/** The job label of the operator's ServiceMonitor (charts/pgpilot/templates/servicemonitor.yaml). */
export const OPERATOR_JOB = 'pgpilot-operator';

const prefixed = (prefix: string, names: string[]) => names.map((n) => `${prefix}${n}`);

/**
 * Served by the agent's exporter on every PostgreSQL pod: its own families (src/instance/exporter.ts,
 * one source with docs/metrics.md), and the two it registers beside them.
 */
export const EXPORTER_METRICS: readonly string[] = [...Object.keys(EXPORTER_FAMILIES), 'pgpilot_exporter_scrape_duration_seconds', 'pgpilot_exporter_query_errors_total', 'pgpilot_exporter_custom_query_valid'];

/** Served by the operator (job `pgpilot-operator`), plus Prometheus's own `up` of that job. */
export const OPERATOR_METRICS: readonly string[] = [
  ...prefixed('pgpilot_cluster_', [
    'condition',
    'phase',
    'instances',
    'ready_instances',
    'failovers_total',
    'switchovers_total',
    'last_role_change_duration_seconds',
    'last_successful_backup_timestamp_seconds',
    'first_recoverability_point_timestamp_seconds',
    'last_recoverability_point_timestamp_seconds',
    'rollout_updated_instances',
    'rollout_total_instances',
  ]),
  'pgpilot_reconcile_total',
  ...prefixed('pgpilot_reconcile_duration_seconds', ['_bucket', '_sum', '_count']),
  'pgpilot_workqueue_depth',
  'pgpilot_workqueue_retries_total',
  'pgpilot_kube_api_requests_total',
  'pgpilot_agent_status_calls_total',
  'pgpilot_informer_restarts_total',
  'pgpilot_leader',
  'pgpilot_managed_clusters',
  ...prefixed('pgpilot_process_', [
    'process_resident_memory_bytes',
    'process_cpu_seconds_total',
    'process_open_fds',
    'nodejs_heap_size_used_bytes',
    'nodejs_eventloop_lag_p99_seconds',
  ]),
];

/** Prometheus's own series (not served by pgpilot). */
export const PROMETHEUS_METRICS: readonly string[] = ['up'];

/** Every metric name a dashboard query may use. */
export const DASHBOARD_METRICS: ReadonlySet<string> = new Set([...EXPORTER_METRICS, ...OPERATOR_METRICS, ...PROMETHEUS_METRICS]);
