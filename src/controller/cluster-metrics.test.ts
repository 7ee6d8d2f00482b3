// Per-cluster operator metrics (cluster-metrics.ts): read from status at scrape time, gone with the cluster.
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import type { PostgreSQLCluster } from '../api/cluster.js';
import { ClusterMetrics } from './cluster-metrics.js';

const cluster = (name: string, status: PostgreSQLCluster['status']): PostgreSQLCluster =>
  ({ metadata: { namespace: 'prod', name }, spec: { version: '16', instances: 3 }, status }) as PostgreSQLCluster;

describe('ClusterMetrics', () => {
  it('exports phase, conditions (1 for the current status, 0 for the others), counts, times and rollout progress from status', async () => {
    const registry = new Registry();
    let clusters = [
      cluster('db', {
        phase: 'Healthy',
        readyInstances: 2,
        lastSuccessfulBackup: '2026-12-04T02:00:00Z',
        rollout: { updated: 1, total: 3 },
        conditions: [{ type: 'PrimaryAvailable', status: 'True', reason: 'Up', message: '', lastTransitionTime: '2026-12-04T00:00:00Z' }],
      }),
    ];
    new ClusterMetrics(registry, () => clusters);
    const text = await registry.metrics();
    expect(text).toContain('pgpilot_cluster_phase{namespace="prod",cluster="db",phase="Healthy"} 1');
    expect(text).toContain('pgpilot_cluster_condition{namespace="prod",cluster="db",type="PrimaryAvailable",status="True"} 1');
    expect(text).toContain('pgpilot_cluster_condition{namespace="prod",cluster="db",type="PrimaryAvailable",status="False"} 0');
    expect(text).toContain('pgpilot_cluster_instances{namespace="prod",cluster="db"} 3');
    expect(text).toContain('pgpilot_cluster_ready_instances{namespace="prod",cluster="db"} 2');
    expect(text).toContain(`pgpilot_cluster_last_successful_backup_timestamp_seconds{namespace="prod",cluster="db"} ${Date.parse('2026-12-04T02:00:00Z') / 1000}`);
    expect(text).toContain('pgpilot_cluster_rollout_updated_instances{namespace="prod",cluster="db"} 1');
    // Failover counters exist from 0 for every cluster (increase() then sees the first one).
    expect(text).toContain('pgpilot_cluster_failovers_total{namespace="prod",cluster="db"} 0');
    // No recoverability point in status: no series rather than a made-up value.
    expect(text).not.toMatch(/pgpilot_cluster_first_recoverability_point_timestamp_seconds\{/);
    clusters = [];
    expect(await registry.metrics()).not.toContain('cluster="db"');
  });

  it('counts failovers and switchovers with the last duration, and forgets a deleted cluster', async () => {
    const registry = new Registry();
    const m = new ClusterMetrics(registry, () => []);
    const db = cluster('db', {});
    m.roleChanged(db, 'failover', 850);
    m.roleChanged(db, 'failover', 650);
    m.roleChanged(db, 'switchover', 300);
    const text = await registry.metrics();
    expect(text).toContain('pgpilot_cluster_failovers_total{namespace="prod",cluster="db"} 2');
    expect(text).toContain('pgpilot_cluster_switchovers_total{namespace="prod",cluster="db"} 1');
    expect(text).toContain('pgpilot_cluster_last_role_change_duration_seconds{namespace="prod",cluster="db",kind="failover"} 0.65');
    m.forget(db);
    expect(await registry.metrics()).not.toContain('cluster="db"');
  });
});
