/**
 * Instance detail: one PostgreSQL pod of a cluster — its state as the agent reports it, the
 * pg_stat_database rates, sessions and locks, vacuum-related ages, checkpoints, sizes, WAL and
 * volumes, and the settings that size it.
 */
import type * as dash from '@grafana/grafana-foundation-sdk/dashboard';
import { bars, dashboard, datasourceVariable, graph, labelVariable, q, single } from './kit.js';

export const INSTANCE_DETAIL_UID = 'pgpilot-instance-detail';

const C = 'namespace=~"$namespace", cluster=~"$cluster"';
/** The selected instance's series. */
const I = `${C}, pod=~"$pod"`;
const RATE = '[$__rate_interval]';
const rate = (metric: string, by: string, extra = '') => `sum by (${by}) (rate(${metric}{${I}${extra}}${RATE}))`;

const YES_NO = (yes: string, no: string, yesColor: string) => ({ '0': { text: no, color: 'green' }, '1': { text: yes, color: yesColor } });

const state = [
  single('PostgreSQL', [q(`max(pg_up{${I}})`)], { mappings: { '1': { text: 'Up', color: 'green' }, '0': { text: 'Down', color: 'red' } }, background: true, description: 'pg_up: the exporter reaches PostgreSQL.' }),
  single('Role', [q(`max by (role) (pgpilot_instance_role{${I}}) == 1`, '{{role}}')], { names: true, description: 'The role the agent reports (pgpilot_instance_role).' }),
  single('Timeline', [q(`max(pgpilot_instance_timeline{${I}})`)], { decimals: 0, description: 'The PostgreSQL timeline: it grows with each promotion.' }),
  single('Fenced', [q(`max(pgpilot_instance_fenced{${I}})`)], { mappings: YES_NO('Fenced', 'No', 'red'), background: true, description: 'Whether the instance is fenced.' }),
  single('Pending restart', [q(`max(pgpilot_instance_pending_restart{${I}})`)], {
    mappings: YES_NO('Yes', 'No', 'orange'),
    background: true,
    description: 'A changed setting waits for a restart (any pg_settings.pending_restart).',
  }),
  single('Exporter scrape', [q(`max(pgpilot_exporter_scrape_duration_seconds{${I}})`)], { unit: 's', description: 'How long the agent’s last scrape of PostgreSQL took.' }),
];

const transactions = [
  graph('Commits and rollbacks', [q(rate('pg_stat_database_xact_commit', 'datname'), '{{datname}} commits'), q(rate('pg_stat_database_xact_rollback', 'datname'), '{{datname}} rollbacks')], {
    unit: 'ops',
    min: 0,
    description: 'Transactions per second by database (pg_stat_database).',
  }),
  graph(
    'Buffer cache hit ratio',
    [q(`${rate('pg_stat_database_blks_hit', 'datname')} / (${rate('pg_stat_database_blks_hit', 'datname')} + ${rate('pg_stat_database_blks_read', 'datname')})`, '{{datname}}')],
    { unit: 'percentunit', max: 1, description: 'Blocks found in shared buffers, of all blocks read (blks_hit / (blks_hit + blks_read)).' },
  ),
  graph(
    'Tuples',
    ['returned', 'fetched', 'inserted', 'updated', 'deleted'].map((t) => q(`sum(rate(pg_stat_database_tup_${t}{${I}}${RATE}))`, t)),
    { unit: 'ops', min: 0, description: 'Rows returned, fetched, inserted, updated and deleted per second, all databases.' },
  ),
  graph('Block reads', [q(rate('pg_stat_database_blks_read', 'datname'), '{{datname}} read'), q(rate('pg_stat_database_blks_hit', 'datname'), '{{datname}} hit')], {
    unit: 'ops',
    min: 0,
    description: 'Blocks read from disk (or the OS cache) and found in shared buffers, per second.',
  }),
  graph('Temporary files', [q(rate('pg_stat_database_temp_bytes', 'datname'), '{{datname}}')], {
    unit: 'Bps',
    min: 0,
    description: 'Bytes written to temporary files per second: queries that overflow work_mem.',
  }),
  graph('Deadlocks', [q(`sum by (datname) (increase(pg_stat_database_deadlocks{${I}}${RATE}))`, '{{datname}}')], {
    unit: 'short',
    min: 0,
    description: 'Deadlocks detected.',
  }),
];

const sessions = [
  graph('Backends by state', [q(`sum by (state) (pg_stat_activity_count{${I}})`, '{{state}}')], { unit: 'short', min: 0, stack: true, description: 'Sessions by state (pg_stat_activity).' }),
  graph(
    'Connections',
    [
      q(`sum(pg_stat_activity_count{${I}})`, 'in use'),
      q(`sum by (datname) (pg_stat_database_numbackends{${I}})`, '{{datname}} backends'),
      q(`max(pg_settings_max_connections{${I}})`, 'max_connections'),
      q(`max(pg_settings_superuser_reserved_connections{${I}})`, 'superuser_reserved_connections'),
    ],
    { unit: 'short', min: 0, description: 'Sessions against max_connections.' },
  ),
  graph('Locks by mode', [q(`sum by (mode) (pg_locks_count{${I}})`, '{{mode}}')], { unit: 'short', min: 0, stack: true, description: 'Locks held or awaited, by mode (pg_locks).' }),
  graph('Oldest transaction', [q(`max by (state) (pg_stat_activity_max_tx_duration{${I}})`, '{{state}}')], {
    unit: 's',
    min: 0,
    thresholdLines: true,
    thresholds: [
      [null, 'green'],
      [1800, 'red'],
    ],
    description: 'Age of the oldest open transaction by session state; "idle in transaction" holds back vacuum.',
  }),
];

const maintenance = [
  graph('Transaction ID age', [q(`max by (datname) (pg_database_xid_age{${I}})`, '{{datname}}')], {
    unit: 'short',
    min: 0,
    thresholdLines: true,
    thresholds: [
      [null, 'green'],
      [500_000_000, 'orange'],
      [1_000_000_000, 'red'],
    ],
    description: 'age(datfrozenxid) per database: wraparound comes at about 2.1 billion.',
  }),
  graph('Database sizes', [q(`max by (datname) (pg_database_size_bytes{${I}})`, '{{datname}}')], { unit: 'bytes', min: 0, description: 'pg_database_size per database.' }),
  graph(
    'Checkpoints',
    [q(`sum(rate(pg_stat_bgwriter_checkpoints_timed_total{${I}}${RATE}))`, 'timed'), q(`sum(rate(pg_stat_bgwriter_checkpoints_req_total{${I}}${RATE}))`, 'requested')],
    { unit: 'ops', min: 0, description: 'Checkpoints per second, scheduled (checkpoint_timeout) and requested (max_wal_size reached, CHECKPOINT).' },
  ),
  graph(
    'Buffers written',
    [
      q(`sum(rate(pg_stat_bgwriter_buffers_checkpoint_total{${I}}${RATE}))`, 'by checkpoints'),
      q(`sum(rate(pg_stat_bgwriter_buffers_clean_total{${I}}${RATE}))`, 'by the background writer'),
      q(`sum(rate(pg_stat_bgwriter_buffers_backend_total{${I}}${RATE}))`, 'by backends'),
    ],
    { unit: 'ops', min: 0, stack: true, description: 'Buffers written per second, by who wrote them (figures a PostgreSQL version lacks are absent).' },
  ),
];

const walAndStorage = [
  graph('WAL generated', [q(`sum(rate(pg_stat_wal_bytes_total{${I}}${RATE}))`, 'WAL')], { unit: 'Bps', min: 0, w: 8, description: 'WAL bytes written per second.' }),
  graph(
    'Replication lag',
    [q(`max(pgpilot_instance_replication_lag_seconds{${I}})`, 'agent'), q(`max(pg_replication_lag_seconds{${I}})`, 'replay timestamp')],
    { unit: 's', min: 0, w: 8, description: 'On a replica: how far replay is behind (the agent’s figure and now() - pg_last_xact_replay_timestamp()).' },
  ),
  graph(
    'Archiving',
    [q(`max(pgpilot_instance_archiver_backlog_segments{${I}})`, 'backlog (segments)'), q(`max(pgpilot_instance_archiving_failing{${I}})`, 'failing')],
    { unit: 'short', min: 0, w: 8, description: 'WAL segments waiting to be archived, and whether archiving fails (1).' },
  ),
  graph(
    'Last archive',
    [q(`max(pgpilot_instance_last_archived_wal_age_seconds{${I}})`, 'agent: newest archived WAL'), q(`max(pg_stat_archiver_last_archive_age{${I}})`, 'pg_stat_archiver: last archive')],
    { unit: 's', min: 0, w: 8, description: 'Time since the last WAL segment was archived.' },
  ),
  bars('Volume fill', [q(`max by (volume) (pgpilot_instance_volume_used_bytes{${I}}) / max by (volume) (pgpilot_instance_volume_capacity_bytes{${I}})`, '{{volume}}')], {
    unit: 'percentunit',
    min: 0,
    max: 1,
    w: 8,
    thresholds: [
      [null, 'green'],
      [0.8, 'orange'],
      [0.9, 'red'],
    ],
    description: 'Used share of the data and WAL volumes.',
  }),
  graph('Custom query errors', [q(`sum by (query) (increase(pgpilot_exporter_query_errors_total{${I}}${RATE}))`, '{{query}}')], {
    unit: 'short',
    min: 0,
    w: 8,
    description: 'Errors of the exporter’s queries, by query name (a broken custom query shows here).',
  }),
];

const settings = [
  single(
    'Settings',
    [
      q(`max(pg_settings_shared_buffers_bytes{${I}})`, 'shared_buffers'),
      q(`max(pg_settings_max_wal_size_bytes{${I}})`, 'max_wal_size'),
    ],
    { unit: 'bytes', w: 12, description: 'Memory and WAL settings in effect.' },
  ),
  single(
    'Limits',
    [
      q(`max(pg_settings_max_connections{${I}})`, 'max_connections'),
      q(`max(pg_settings_max_wal_senders{${I}})`, 'max_wal_senders'),
      q(`max(pg_settings_max_replication_slots{${I}})`, 'max_replication_slots'),
    ],
    { unit: 'short', w: 12, description: 'Connection and replication limits in effect.' },
  ),
];

export function instanceDetail(): dash.Dashboard {
  return dashboard({
    uid: INSTANCE_DETAIL_UID,
    title: 'pgpilot / Instance detail',
    description: 'One PostgreSQL instance (pod) of a pgpilot cluster: activity, sessions, locks, maintenance, WAL, storage and settings.',
    variables: [
      datasourceVariable(),
      labelVariable('namespace', 'Namespace', 'pg_up'),
      labelVariable('cluster', 'Cluster', 'pg_up{namespace=~"$namespace"}'),
      labelVariable('pod', 'Instance', `pg_up{${C}}`),
    ],
    rows: [
      { title: 'State', panels: state },
      { title: 'Transactions and I/O', panels: transactions },
      { title: 'Sessions and locks', panels: sessions },
      { title: 'Maintenance', panels: maintenance },
      { title: 'WAL, archiving and storage', panels: walAndStorage },
      { title: 'Settings', panels: settings },
    ],
  });
}
