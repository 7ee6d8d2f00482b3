// The operator's own Prometheus metrics (prom-client), one registry per process.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export class OperatorMetrics {
  readonly registry = new Registry();
  readonly reconciles = new Counter({
    name: 'pgpilot_reconcile_total',
    help: 'Reconciles by result (success, error, requeue).',
    labelNames: ['result'],
    registers: [this.registry],
  });
  readonly reconcileDuration = new Histogram({
    name: 'pgpilot_reconcile_duration_seconds',
    help: 'Duration of one cluster reconcile.',
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  readonly agentStatusCalls = new Counter({
    name: 'pgpilot_agent_status_calls_total',
    help: 'Instance agent status requests (the observation step asks each instance once per reconcile).',
    registers: [this.registry],
  });
  readonly queueDepth = new Gauge({ name: 'pgpilot_workqueue_depth', help: 'Clusters waiting to be reconciled.', registers: [this.registry] });
  readonly queueRetries = new Counter({ name: 'pgpilot_workqueue_retries_total', help: 'Reconciles requeued after an error.', registers: [this.registry] });
  readonly apiRequests = new Counter({
    name: 'pgpilot_kube_api_requests_total',
    help: 'Kubernetes API requests by verb, resource and HTTP status code.',
    labelNames: ['verb', 'resource', 'code'],
    registers: [this.registry],
  });
  readonly informerRestarts = new Counter({
    name: 'pgpilot_informer_restarts_total',
    help: 'Informer restarts after a watch error, by resource.',
    labelNames: ['resource'],
    registers: [this.registry],
  });
  readonly isLeader = new Gauge({ name: 'pgpilot_leader', help: '1 while this operator process holds the leader Lease.', registers: [this.registry] });
  readonly clusters = new Gauge({ name: 'pgpilot_managed_clusters', help: 'PostgreSQLClusters known to the operator.', registers: [this.registry] });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'pgpilot_process_' });
    // Every result's series from 0: rate() and increase() see the first error too (a series born at
    // 1 shows no increase), and the dashboards' error panels read 0 rather than no data.
    for (const result of ['success', 'error', 'requeue']) this.reconciles.inc({ result }, 0);
  }
}

/** The verbs of pgpilot_kube_api_requests_total that write (a converged cluster costs none). */
export const WRITE_VERBS = new Set(['create', 'update', 'patch', 'delete']);
