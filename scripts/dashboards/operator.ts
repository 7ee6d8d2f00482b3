/**
 * The operator's own dashboard: is it up and leading, how reconciles go (results, errors,
 * durations), the work queue, Kubernetes API calls, agent calls, informers, the clusters it
 * manages (phases, failovers, switchovers, rollouts) and the process itself.
 */
import type * as dash from '@grafana/grafana-foundation-sdk/dashboard';
import { dashboard, datasourceVariable, graph, labelTable, labelVariable, q, single } from './kit.js';
import { OPERATOR_JOB } from './metrics.js';

export const OPERATOR_UID = 'pgpilot-operator';

const JOB = `job="${OPERATOR_JOB}"`;
/** The selected operator pods' series. */
const O = `${JOB}, pod=~"$pod"`;
/** The operator's series about the selected clusters (labelled with the cluster's namespace). */
const OC = `${JOB}, namespace=~"$namespace", cluster=~"$cluster"`;
const RATE = '[$__rate_interval]';

const overview = [
  single('Operator pods up', [q(`sum(up{${JOB}})`, 'up'), q(`count(up{${JOB}})`, 'scraped')], { description: 'Operator pods Prometheus scrapes successfully (up).' }),
  single('Leader', [q(`max by (pod) (pgpilot_leader{${O}}) == 1`, '{{pod}}')], { names: true, description: 'The operator pod that holds the leader Lease and reconciles.' }),
  single('Managed clusters', [q(`max(pgpilot_managed_clusters{${O}})`)], { decimals: 0, description: 'PostgreSQLClusters the operator knows.' }),
  single('Queue depth', [q(`sum(pgpilot_workqueue_depth{${O}})`)], { decimals: 0, description: 'Clusters waiting to be reconciled.' }),
  single('Reconcile errors', [q(`sum(increase(pgpilot_reconcile_total{${O}, result="error"}[$__range]))`)], {
    decimals: 0,
    thresholds: [
      [null, 'green'],
      [1, 'orange'],
    ],
    description: 'Reconciles that ended in an error in the time range.',
  }),
  single(
    'Failovers / switchovers',
    [q(`sum(increase(pgpilot_cluster_failovers_total{${OC}}[$__range]))`, 'failovers'), q(`sum(increase(pgpilot_cluster_switchovers_total{${OC}}[$__range]))`, 'switchovers')],
    { decimals: 0, description: 'Failovers and switchovers completed in the time range, selected clusters.' },
  ),
];

const reconciles = [
  graph('Reconciles by result', [q(`sum by (result) (rate(pgpilot_reconcile_total{${O}}${RATE}))`, '{{result}}')], {
    unit: 'ops',
    min: 0,
    stack: true,
    description: 'Reconciles per second: success, error, requeue.',
  }),
  graph('Reconcile error ratio', [q(`sum(rate(pgpilot_reconcile_total{${O}, result="error"}${RATE})) / sum(rate(pgpilot_reconcile_total{${O}}${RATE}))`, 'errors')], {
    unit: 'percentunit',
    min: 0,
    max: 1,
    description: 'Share of reconciles that end in an error.',
  }),
  graph(
    'Reconcile duration',
    [
      ...[0.5, 0.9, 0.99].map((quantile) =>
        q(`histogram_quantile(${quantile}, sum by (le) (rate(pgpilot_reconcile_duration_seconds_bucket{${O}}${RATE})))`, `p${Math.round(quantile * 100)}`),
      ),
      q(`sum(rate(pgpilot_reconcile_duration_seconds_sum{${O}}${RATE})) / sum(rate(pgpilot_reconcile_duration_seconds_count{${O}}${RATE}))`, 'mean'),
    ],
    { unit: 's', min: 0, description: 'Duration of one cluster reconcile (quantiles of pgpilot_reconcile_duration_seconds).' },
  ),
  graph(
    'Work queue',
    [q(`sum(pgpilot_workqueue_depth{${O}})`, 'depth'), q(`sum(rate(pgpilot_workqueue_retries_total{${O}}${RATE}))`, 'retries per second')],
    { unit: 'short', min: 0, description: 'Clusters waiting, and reconciles requeued after an error.' },
  ),
];

const api = [
  graph('API requests by verb', [q(`sum by (verb) (rate(pgpilot_kube_api_requests_total{${O}}${RATE}))`, '{{verb}}')], {
    unit: 'reqps',
    min: 0,
    stack: true,
    description: 'Kubernetes API requests per second by verb.',
  }),
  graph('API requests by code', [q(`sum by (code) (rate(pgpilot_kube_api_requests_total{${O}}${RATE}))`, '{{code}}')], {
    unit: 'reqps',
    min: 0,
    stack: true,
    description: 'Kubernetes API requests per second by HTTP status code.',
  }),
  graph(
    'API writes by resource',
    [q(`sum by (verb, resource) (rate(pgpilot_kube_api_requests_total{${O}, verb=~"create|update|patch|delete"}${RATE}))`, '{{verb}} {{resource}}')],
    { unit: 'reqps', min: 0, description: 'Writes per second: a converged cluster costs none, so a steady line here is a reconcile that never settles.' },
  ),
  graph(
    'Agent status calls and informer restarts',
    [
      q(`sum(rate(pgpilot_agent_status_calls_total{${O}}${RATE}))`, 'agent status calls per second'),
      q(`sum by (resource) (increase(pgpilot_informer_restarts_total{${O}}${RATE}))`, 'informer restarts: {{resource}}'),
    ],
    { unit: 'short', min: 0, description: 'Status requests to instance agents, and informers restarted after a watch error.' },
  ),
];

const clusters = [
  labelTable('Cluster phases', [q(`max by (namespace, cluster, phase) (pgpilot_cluster_phase{${OC}}) == 1`)], {
    hide: ['Value'],
    description: 'The phase of each selected cluster.',
  }),
  graph(
    'Ready instances',
    [q(`max by (namespace, cluster) (pgpilot_cluster_ready_instances{${OC}})`, '{{namespace}}/{{cluster}} ready'), q(`max by (namespace, cluster) (pgpilot_cluster_instances{${OC}})`, '{{namespace}}/{{cluster}} desired')],
    { unit: 'short', min: 0, description: 'Ready instances against spec.instances, per cluster.' },
  ),
  graph(
    'Failovers and switchovers',
    [
      q(`sum by (namespace, cluster) (increase(pgpilot_cluster_failovers_total{${OC}}${RATE}))`, '{{namespace}}/{{cluster}} failovers'),
      q(`sum by (namespace, cluster) (increase(pgpilot_cluster_switchovers_total{${OC}}${RATE}))`, '{{namespace}}/{{cluster}} switchovers'),
    ],
    { unit: 'short', min: 0, description: 'Completed failovers and switchovers.' },
  ),
  graph('Last failover / switchover duration', [q(`max by (namespace, cluster, kind) (pgpilot_cluster_last_role_change_duration_seconds{${OC}})`, '{{namespace}}/{{cluster}} {{kind}}')], {
    unit: 's',
    min: 0,
    description: 'How long the last role change took, from the claim of the primary role to the promotion.',
  }),
  graph(
    'Rollouts',
    [
      q(
        `max by (namespace, cluster) (pgpilot_cluster_rollout_updated_instances{${OC}}) / max by (namespace, cluster) (pgpilot_cluster_rollout_total_instances{${OC}})`,
        '{{namespace}}/{{cluster}}',
      ),
    ],
    { unit: 'percentunit', min: 0, max: 1, w: 24, description: 'During a rollout: instances on the current pod template, of those to update.' },
  ),
];

const process = [
  graph(
    'Memory',
    [q(`max by (pod) (pgpilot_process_process_resident_memory_bytes{${O}})`, '{{pod}} resident'), q(`max by (pod) (pgpilot_process_nodejs_heap_size_used_bytes{${O}})`, '{{pod}} heap used')],
    { unit: 'bytes', min: 0, w: 8, description: 'Resident memory and the V8 heap in use.' },
  ),
  graph('CPU', [q(`sum by (pod) (rate(pgpilot_process_process_cpu_seconds_total{${O}}${RATE}))`, '{{pod}}')], {
    unit: 'percentunit',
    min: 0,
    w: 8,
    description: 'CPU time per second (1 = one core).',
  }),
  graph(
    'Event loop and file descriptors',
    [q(`max by (pod) (pgpilot_process_nodejs_eventloop_lag_p99_seconds{${O}})`, '{{pod}} event loop lag p99 (s)'), q(`max by (pod) (pgpilot_process_process_open_fds{${O}})`, '{{pod}} open fds')],
    { unit: 'short', min: 0, w: 8, description: 'Event loop lag (p99, seconds) and open file descriptors.' },
  ),
];

export function operatorDashboard(): dash.Dashboard {
  return dashboard({
    uid: OPERATOR_UID,
    title: 'pgpilot / Operator',
    description: 'The pgpilot operator: leadership, reconciles, work queue, Kubernetes API calls, managed clusters and the process.',
    variables: [
      datasourceVariable(),
      labelVariable('namespace', 'Namespace', `pgpilot_cluster_instances{${JOB}}`, { all: true, multi: true }),
      labelVariable('cluster', 'Cluster', `pgpilot_cluster_instances{${JOB}, namespace=~"$namespace"}`, { all: true, multi: true }),
      labelVariable('pod', 'Operator pod', `up{${JOB}}`, { all: true, multi: true }),
    ],
    annotations: {
      Failovers: { expr: `sum by (namespace, cluster) (increase(pgpilot_cluster_failovers_total{${OC}}${RATE})) > 0`, color: 'red' },
    },
    rows: [
      { title: 'Overview', panels: overview },
      { title: 'Reconciles', panels: reconciles },
      { title: 'Kubernetes API and agents', panels: api },
      { title: 'Clusters', panels: clusters },
      { title: 'Process', panels: process },
    ],
  });
}
