// Per-cluster metrics of the operator (labels namespace, cluster). What status says is read at
// scrape time from the informer cache (collect callbacks), so a deleted cluster's series go with
// it and nothing is written on the reconcile path; failovers and switchovers are counted when ha
// completes one (in this process: a counter restarts with the operator, as Prometheus expects).
import { Counter, Gauge, type Registry } from 'prom-client';
import type { PostgreSQLCluster } from '../api/cluster.js';

const CONDITION_STATUSES = ['True', 'False', 'Unknown'] as const;
const seconds = (iso: string | undefined) => (iso ? Date.parse(iso) / 1000 : undefined);
const idOf = (c: PostgreSQLCluster) => ({ namespace: c.metadata.namespace!, cluster: c.metadata.name! });

export type RoleChange = 'failover' | 'switchover';

export class ClusterMetrics {
  private readonly roleChanges: Counter<'namespace' | 'cluster'>[];
  private readonly lastRoleChange: Gauge<'namespace' | 'cluster' | 'kind'>;

  constructor(registry: Registry, clusters: () => PostgreSQLCluster[]) {
    const fromStatus = (name: string, help: string, value: (c: PostgreSQLCluster) => number | undefined) =>
      new Gauge({
        name,
        help,
        labelNames: ['namespace', 'cluster'],
        registers: [registry],
        collect() {
          this.reset();
          for (const c of clusters()) {
            const v = value(c);
            if (v !== undefined && Number.isFinite(v)) this.set(idOf(c), v);
          }
        },
      });
    fromStatus('pgpilot_cluster_instances', 'Instances the cluster asks for (spec.instances).', (c) => c.spec.instances ?? 1);
    fromStatus('pgpilot_cluster_ready_instances', 'Instances that are ready (status.readyInstances).', (c) => c.status?.readyInstances ?? 0);
    fromStatus('pgpilot_cluster_last_successful_backup_timestamp_seconds', 'When the newest completed base backup ended (status.lastSuccessfulBackup).', (c) => seconds(c.status?.lastSuccessfulBackup));
    fromStatus('pgpilot_cluster_first_recoverability_point_timestamp_seconds', 'Earliest time the cluster can be recovered to.', (c) => seconds(c.status?.firstRecoverabilityPoint));
    fromStatus('pgpilot_cluster_last_recoverability_point_timestamp_seconds', 'Latest time the cluster can be recovered to (newest archived WAL).', (c) => seconds(c.status?.lastRecoverabilityPoint));
    fromStatus('pgpilot_cluster_rollout_updated_instances', 'During a rollout: instances on the current pod template (status.rollout.updated).', (c) => c.status?.rollout?.updated);
    fromStatus('pgpilot_cluster_rollout_total_instances', 'During a rollout: instances to update (status.rollout.total).', (c) => c.status?.rollout?.total);
    new Gauge({
      name: 'pgpilot_cluster_phase',
      help: 'The cluster phase: 1 for the current one.',
      labelNames: ['namespace', 'cluster', 'phase'],
      registers: [registry],
      collect() {
        this.reset();
        for (const c of clusters()) if (c.status?.phase) this.set({ ...idOf(c), phase: c.status.phase }, 1);
      },
    });
    new Gauge({
      name: 'pgpilot_cluster_condition',
      help: 'Each condition of the cluster: 1 for its current status (True, False or Unknown), 0 for the others.',
      labelNames: ['namespace', 'cluster', 'type', 'status'],
      registers: [registry],
      collect() {
        this.reset();
        for (const c of clusters()) {
          for (const cond of c.status?.conditions ?? []) {
            for (const s of CONDITION_STATUSES) this.set({ ...idOf(c), type: cond.type, status: s }, cond.status === s ? 1 : 0);
          }
        }
      },
    });
    // Every known cluster has a series from 0, so increase() sees the first failover too; a
    // cluster gone from the cache loses its series (as the status-derived ones do).
    const keepIn = (counter: Counter<'namespace' | 'cluster'>, seen: Map<string, { namespace: string; cluster: string }>) => {
      const now = new Map<string, { namespace: string; cluster: string }>(clusters().map((c) => [`${c.metadata.namespace}/${c.metadata.name}`, idOf(c)]));
      for (const [key, id] of seen) {
        if (now.has(key)) continue;
        counter.remove(id);
        seen.delete(key);
      }
      for (const [key, id] of now) {
        counter.inc(id, 0);
        seen.set(key, id);
      }
    };
    this.roleChanges = (['failover', 'switchover'] as const).map(
      (kind) => {
        const seen = new Map<string, { namespace: string; cluster: string }>();
        return new Counter({
          name: `pgpilot_cluster_${kind}s_total`,
          help: `Completed ${kind}s (this operator process).`,
          labelNames: ['namespace', 'cluster'],
          registers: [registry],
          collect() {
            keepIn(this, seen);
          },
        });
      },
    );
    this.lastRoleChange = new Gauge({
      name: 'pgpilot_cluster_last_role_change_duration_seconds',
      help: 'How long the last failover or switchover took, from the claim of the primary role to the promotion.',
      labelNames: ['namespace', 'cluster', 'kind'],
      registers: [registry],
    });
  }

  /** ha completed a failover or switchover that took `ms`. */
  roleChanged(c: PostgreSQLCluster, kind: RoleChange, ms: number): void {
    this.roleChanges[kind === 'failover' ? 0 : 1]!.inc(idOf(c));
    this.lastRoleChange.set({ ...idOf(c), kind }, ms / 1000);
  }

  /** A deleted cluster: its counters go too. */
  forget(c: PostgreSQLCluster): void {
    for (const counter of this.roleChanges) counter.remove(idOf(c));
    for (const kind of ['failover', 'switchover']) this.lastRoleChange.remove({ ...idOf(c), kind });
  }
}
