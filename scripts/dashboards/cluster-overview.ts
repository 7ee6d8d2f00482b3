/**
 * Cluster overview: one PostgreSQLCluster at a glance — health and conditions, primary and roles,
 * load, connections, replication, WAL, archiving, backups with the recoverability window, storage.
 */
import type * as dash from '@grafana/grafana-foundation-sdk/dashboard';
import { bars, dashboard, datasourceVariable, graph, labelTable, labelVariable, q, single, timeline } from './kit.js';
import { OPERATOR_JOB } from './metrics.js';

export const CLUSTER_OVERVIEW_UID = 'pgpilot-cluster-overview';

/** The cluster's instance series (exporter, labelled by the PodMonitor). */
const C = 'namespace=~"$namespace", cluster=~"$cluster"';
/** ... of the selected pods. */
const P = `${C}, pod=~"$pod"`;
/** The operator's series about the cluster. */
const OC = `job="${OPERATOR_JOB}", ${C}`;
const RATE = '[$__rate_interval]';
const BY_POD_VOLUME = 'by (pod, volume)';

const BOOL = (ok: string, bad: string) => ({ '0': { text: ok, color: 'green' }, '1': { text: bad, color: 'red' } });

const health = [
  single('Phase', [q(`max by (phase) (pgpilot_cluster_phase{${OC}}) == 1`, '{{phase}}')], {
    names: true,
    description: 'status.phase of the PostgreSQLCluster (pgpilot_cluster_phase).',
  }),
  single('Ready instances', [q(`max(pgpilot_cluster_ready_instances{${OC}})`, 'ready'), q(`max(pgpilot_cluster_instances{${OC}})`, 'desired')], {
    description: 'Ready instances (status.readyInstances) and the instances spec.instances asks for.',
  }),
  single('PostgreSQL up', [q(`sum(pg_up{${C}})`, 'up'), q(`count(pg_up{${C}})`, 'scraped')], {
    description: 'Instances whose exporter reaches PostgreSQL (pg_up), of the instances scraped.',
  }),
  single('Primary', [q(`max by (pod) (pgpilot_instance_role{${C}, role="primary"}) == 1`, '{{pod}}')], {
    names: true,
    description: 'The pod whose agent reports the primary role. Two names here mean two primaries.',
  }),
  single('Failovers / switchovers', [q(`sum(increase(pgpilot_cluster_failovers_total{${OC}}[$__range]))`, 'failovers'), q(`sum(increase(pgpilot_cluster_switchovers_total{${OC}}[$__range]))`, 'switchovers')], {
    decimals: 0,
    description: 'Failovers and switchovers the operator completed in the time range.',
  }),
  single('Fenced instances', [q(`sum(pgpilot_instance_fenced{${C}})`)], {
    thresholds: [
      [null, 'green'],
      [1, 'red'],
    ],
    description: 'Instances fenced (PostgreSQL stopped or read-only on purpose, pgpilot_instance_fenced).',
  }),
  labelTable('Conditions', [q(`max by (type, status) (pgpilot_cluster_condition{${OC}}) == 1`)], {
    hide: ['Value'],
    description: 'Each status condition of the cluster and its current status (pgpilot_cluster_condition).',
  }),
  timeline(
    'Roles',
    [q(`max by (pod) (pgpilot_instance_role{${P}, role="primary"}) or 0 * max by (pod) (pgpilot_instance_role{${P}})`, '{{pod}}')],
    {
      mappings: { '1': { text: 'primary', color: 'green' }, '0': { text: 'replica', color: 'blue' } },
      description: 'The role each agent reports over time (pgpilot_instance_role): failovers and switchovers show as changes.',
    },
  ),
];

const workload = [
  graph(
    'Transactions per second',
    [q(`sum by (pod) (rate(pg_stat_database_xact_commit{${P}}${RATE}) + rate(pg_stat_database_xact_rollback{${P}}${RATE}))`, '{{pod}}')],
    { unit: 'ops', description: 'Commits plus rollbacks per second, all databases (pg_stat_database).' },
  ),
  graph(
    'Connections',
    [q(`sum by (pod) (pg_stat_activity_count{${P}})`, '{{pod}}'), q(`max by (pod) (pg_settings_max_connections{${P}})`, '{{pod}} max_connections')],
    { unit: 'short', min: 0, description: 'Backends (pg_stat_activity) against max_connections.' },
  ),
];

const replication = [
  graph('Replication lag (time)', [q(`max by (pod) (pg_replication_lag_seconds{${P}})`, '{{pod}}')], {
    unit: 's',
    min: 0,
    thresholdLines: true,
    thresholds: [
      [null, 'green'],
      [10, 'orange'],
      [60, 'red'],
    ],
    description: 'How far each replica replays behind: now() - pg_last_xact_replay_timestamp(), 0 when caught up.',
  }),
  graph(
    'Replication lag (bytes)',
    [
      q(`max by (pod) (pgpilot_instance_replication_lag_bytes{${P}})`, '{{pod}} (received, not replayed)'),
      q(`max by (pod, application_name) (pg_stat_replication_replay_lag_bytes{${P}})`, '{{pod}} → {{application_name}}'),
    ],
    { unit: 'bytes', min: 0, description: 'WAL a replica has received but not replayed, and the primary’s view of each standby (current LSN - replay LSN).' },
  ),
  graph('WAL generated', [q(`sum by (pod) (rate(pg_stat_wal_bytes_total{${P}}${RATE}))`, '{{pod}}')], {
    unit: 'Bps',
    min: 0,
    w: 24,
    description: 'WAL bytes written per second (pg_stat_wal.wal_bytes).',
  }),
];

const archiving = [
  single('WAL archiving', [q(`max(pgpilot_instance_archiving_failing{${C}})`)], {
    mappings: BOOL('OK', 'Failing'),
    background: true,
    description: 'Whether an instance’s archiver is failing (pgpilot_instance_archiving_failing).',
  }),
  single('Last successful backup', [q(`time() - max(pgpilot_cluster_last_successful_backup_timestamp_seconds{${OC}})`, 'age')], {
    unit: 's',
    thresholds: [
      [null, 'green'],
      [26 * 3600, 'red'],
    ],
    description: 'Time since the newest completed base backup ended.',
  }),
  single(
    'Recoverability window',
    [q(`max(pgpilot_cluster_last_recoverability_point_timestamp_seconds{${OC}}) - max(pgpilot_cluster_first_recoverability_point_timestamp_seconds{${OC}})`, 'window')],
    { unit: 's', description: 'The span of time the cluster can be recovered to (point-in-time recovery).' },
  ),
  single(
    'Recoverable from / to',
    [
      q(`max(pgpilot_cluster_first_recoverability_point_timestamp_seconds{${OC}}) * 1000`, 'from'),
      q(`max(pgpilot_cluster_last_recoverability_point_timestamp_seconds{${OC}}) * 1000`, 'to'),
    ],
    { unit: 'dateTimeAsIso', w: 8, description: 'The earliest and the latest time a point-in-time recovery can reach.' },
  ),
  single('Archiver backlog', [q(`max(pgpilot_instance_archiver_backlog_segments{${C}})`)], {
    unit: 'short',
    thresholds: [
      [null, 'green'],
      [10, 'orange'],
    ],
    description: 'WAL segments waiting to be archived (.ready files), worst instance.',
  }),
  graph('Archiver backlog per instance', [q(`max by (pod) (pgpilot_instance_archiver_backlog_segments{${P}})`, '{{pod}}')], {
    unit: 'short',
    min: 0,
    w: 8,
    description: 'WAL segments waiting to be archived.',
  }),
  graph('Age of the last archived WAL', [q(`max by (pod) (pgpilot_instance_last_archived_wal_age_seconds{${P}})`, '{{pod}}')], {
    unit: 's',
    min: 0,
    w: 8,
    description: 'Time since the newest WAL segment was archived.',
  }),
  graph(
    'Archived and failed segments',
    [
      q(`sum by (pod) (rate(pg_stat_archiver_archived_count{${P}}${RATE}))`, '{{pod}} archived'),
      q(`sum by (pod) (rate(pg_stat_archiver_failed_count{${P}}${RATE}))`, '{{pod}} failed'),
    ],
    { unit: 'ops', min: 0, w: 8, description: 'Segments archived and archive attempts failed per second (pg_stat_archiver).' },
  ),
];

const storage = [
  bars(
    'Volume fill',
    [q(`max ${BY_POD_VOLUME} (pgpilot_instance_volume_used_bytes{${P}}) / max ${BY_POD_VOLUME} (pgpilot_instance_volume_capacity_bytes{${P}})`, '{{pod}} {{volume}}')],
    {
      unit: 'percentunit',
      min: 0,
      max: 1,
      w: 8,
      thresholds: [
        [null, 'green'],
        [0.8, 'orange'],
        [0.9, 'red'],
      ],
      description: 'Used share of each data and WAL volume (statfs).',
    },
  ),
  bars(
    'Time to full',
    [
      q(
        `(max ${BY_POD_VOLUME} (pgpilot_instance_volume_capacity_bytes{${P}}) - max ${BY_POD_VOLUME} (pgpilot_instance_volume_used_bytes{${P}})) / (max ${BY_POD_VOLUME} (deriv(pgpilot_instance_volume_used_bytes{${P}}[1h])) > 0)`,
        '{{pod}} {{volume}}',
      ),
    ],
    {
      unit: 's',
      min: 0,
      w: 8,
      thresholds: [
        [null, 'red'],
        [4 * 3600, 'orange'],
        [24 * 3600, 'green'],
      ],
      description: 'At the last hour’s growth rate, when each volume is full (only volumes that grow).',
    },
  ),
  graph(
    'Predicted fill in 4 hours',
    [q(`max ${BY_POD_VOLUME} (predict_linear(pgpilot_instance_volume_used_bytes{${P}}[1h], 4 * 3600)) / max ${BY_POD_VOLUME} (pgpilot_instance_volume_capacity_bytes{${P}})`, '{{pod}} {{volume}}')],
    {
      unit: 'percentunit',
      min: 0,
      w: 8,
      thresholdLines: true,
      thresholds: [
        [null, 'green'],
        [1, 'red'],
      ],
      description: 'predict_linear over the last hour: above 100 % the volume fills within 4 hours.',
    },
  ),
  graph(
    'Volume use',
    [
      q(`max ${BY_POD_VOLUME} (pgpilot_instance_volume_used_bytes{${P}})`, '{{pod}} {{volume}} used'),
      q(`max ${BY_POD_VOLUME} (pgpilot_instance_volume_capacity_bytes{${P}})`, '{{pod}} {{volume}} capacity'),
    ],
    { unit: 'bytes', min: 0, w: 24, description: 'Bytes used and capacity of each volume.' },
  ),
];

export function clusterOverview(): dash.Dashboard {
  return dashboard({
    uid: CLUSTER_OVERVIEW_UID,
    title: 'pgpilot / Cluster overview',
    description: 'One PostgreSQLCluster managed by pgpilot: health, roles, load, replication, archiving, backups and storage.',
    variables: [
      datasourceVariable(),
      labelVariable('namespace', 'Namespace', 'pg_up'),
      labelVariable('cluster', 'Cluster', 'pg_up{namespace=~"$namespace"}'),
      labelVariable('pod', 'Instance', `pg_up{${C}}`, { all: true, multi: true }),
    ],
    annotations: {
      Failovers: { expr: `sum by (namespace, cluster) (increase(pgpilot_cluster_failovers_total{${OC}}${RATE})) > 0`, color: 'red' },
      Switchovers: { expr: `sum by (namespace, cluster) (increase(pgpilot_cluster_switchovers_total{${OC}}${RATE})) > 0`, color: 'blue' },
    },
    rows: [
      { title: 'Health', panels: health },
      { title: 'Load and connections', panels: workload },
      { title: 'Replication and WAL', panels: replication },
      { title: 'Archiving and backups', panels: archiving },
      { title: 'Storage', panels: storage },
    ],
  });
}
