// What the metrics exporter (src/instance/exporter.ts) asks PostgreSQL, and how each answer
// becomes samples (pure): the SQL per server version and role, the row → sample mapping, and the
// metric families (help, type). Names follow postgres_exporter where it has one (docs/metrics.md).
//
// Types: postgres_exporter's names that break today's naming rules are kept, because dashboards
// and alerts know them — cumulative statistics without `_total` (pg_stat_database_xact_commit,
// pg_stat_archiver_archived_count) and gauges ending in `_count` (pg_stat_activity_count,
// pg_locks_count). They are exported as `untyped`: `promtool check metrics` rejects a counter
// without `_total` and a gauge named `_count`, and exempts untyped families; Prometheus treats
// them as gauges, and rate() works on them all the same. Families named `_total` are counters.

/** One sample: a family name, its labels, a value. */
export interface Sample {
  name: string;
  labels?: Record<string, string>;
  value: number;
}

export type FamilyType = 'gauge' | 'counter' | 'untyped';

export interface Family {
  help: string;
  type: FamilyType;
}

/** What the instance query learned first, which the other queries depend on. */
export interface ServerFacts {
  /** server_version_num, e.g. 150004. */
  versionNum: number;
  inRecovery: boolean;
}

export type Row = Record<string, unknown>;

export interface StatsQuery {
  /** The `query` label of pgpilot_exporter_query_errors_total. */
  name: string;
  /** The SQL for this server, or null when it has nothing to ask (wrong role, version too old). */
  sql(facts: ServerFacts): string | null;
  map(rows: Row[], facts: ServerFacts): Sample[];
}

// Every numeric column pg_stat_database has in PostgreSQL 14–18 (the sessions and times came in 14).
const DATABASE_STATS = [
  'numbackends',
  'xact_commit',
  'xact_rollback',
  'blks_read',
  'blks_hit',
  'tup_returned',
  'tup_fetched',
  'tup_inserted',
  'tup_updated',
  'tup_deleted',
  'conflicts',
  'temp_files',
  'temp_bytes',
  'deadlocks',
  'checksum_failures',
  'blk_read_time',
  'blk_write_time',
  'session_time',
  'active_time',
  'idle_in_transaction_time',
  'sessions',
  'sessions_abandoned',
  'sessions_fatal',
  'sessions_killed',
] as const;

const DATABASE_STATS_HELP: Record<(typeof DATABASE_STATS)[number], string> = {
  numbackends: 'Backends connected to this database (pg_stat_database.numbackends).',
  xact_commit: 'Transactions committed in this database (cumulative).',
  xact_rollback: 'Transactions rolled back in this database (cumulative).',
  blks_read: 'Disk blocks read in this database (cumulative).',
  blks_hit: 'Disk blocks found in shared buffers in this database (cumulative).',
  tup_returned: 'Live rows fetched by sequential scans and index entries returned by index scans (cumulative).',
  tup_fetched: 'Live rows fetched by index scans (cumulative).',
  tup_inserted: 'Rows inserted (cumulative).',
  tup_updated: 'Rows updated (cumulative).',
  tup_deleted: 'Rows deleted (cumulative).',
  deadlocks: 'Deadlocks detected in this database (cumulative).',
  temp_bytes: 'Bytes written to temporary files by queries in this database (cumulative).',
  conflicts: 'Queries canceled by conflicts with recovery in this database (cumulative; replicas only).',
  temp_files: 'Temporary files created by queries in this database (cumulative).',
  checksum_failures: 'Data page checksum failures detected in this database (cumulative; absent without data checksums).',
  blk_read_time: 'Milliseconds spent reading data file blocks by backends (cumulative; 0 unless track_io_timing).',
  blk_write_time: 'Milliseconds spent writing data file blocks by backends (cumulative; 0 unless track_io_timing).',
  session_time: 'Milliseconds spent by sessions in this database (cumulative).',
  active_time: 'Milliseconds spent executing SQL statements in this database (cumulative).',
  idle_in_transaction_time: 'Milliseconds spent idle in a transaction in this database (cumulative).',
  sessions: 'Sessions established to this database (cumulative).',
  sessions_abandoned: 'Sessions terminated because the client went away (cumulative).',
  sessions_fatal: 'Sessions terminated by fatal errors (cumulative).',
  sessions_killed: 'Sessions terminated by operator intervention (cumulative).',
};

/** pg_stat_database_conflicts' kinds in PostgreSQL 14–18 (16 added active_logicalslot: omitted before). */
const CONFLICT_KINDS = ['tablespace', 'lock', 'snapshot', 'bufferpin', 'deadlock', 'active_logicalslot'] as const;

/** The settings exported as pg_settings_<name>[_bytes]: those capacity and alerts depend on. */
export const EXPORTED_SETTINGS = ['max_connections', 'superuser_reserved_connections', 'max_wal_senders', 'max_replication_slots', 'shared_buffers', 'max_wal_size'] as const;

/** Lock modes of pg_locks, every one reported per database (0 included: steady series). */
export const LOCK_MODES = ['AccessShareLock', 'RowShareLock', 'RowExclusiveLock', 'ShareUpdateExclusiveLock', 'ShareLock', 'ShareRowExclusiveLock', 'ExclusiveLock', 'AccessExclusiveLock', 'SIReadLock'] as const;

/** States of a client backend in pg_stat_activity, every one reported per database. */
export const BACKEND_STATES = ['active', 'idle', 'idle in transaction', 'idle in transaction (aborted)', 'fastpath function call', 'disabled'] as const;

export const PG_FAMILIES: Record<string, Family> = {
  pg_up: { type: 'gauge', help: '1 when the exporter could connect to PostgreSQL and query it in this scrape, else 0.' },
  ...Object.fromEntries(
    DATABASE_STATS.map((c) => [`pg_stat_database_${c}`, { type: c === 'numbackends' ? 'gauge' : 'untyped', help: DATABASE_STATS_HELP[c] } satisfies Family]),
  ),
  pg_stat_activity_count: { type: 'untyped', help: 'Client backends by database and state (pg_stat_activity).' },
  pg_stat_activity_max_tx_duration: { type: 'gauge', help: 'Age in seconds of the oldest open transaction by database and backend state (0 when none).' },
  pg_locks_count: { type: 'untyped', help: 'Locks held or awaited by database and lock mode (pg_locks).' },
  pg_settings_max_connections: { type: 'gauge', help: 'Setting max_connections.' },
  pg_settings_superuser_reserved_connections: { type: 'gauge', help: 'Setting superuser_reserved_connections.' },
  pg_settings_max_wal_senders: { type: 'gauge', help: 'Setting max_wal_senders.' },
  pg_settings_max_replication_slots: { type: 'gauge', help: 'Setting max_replication_slots.' },
  pg_settings_shared_buffers_bytes: { type: 'gauge', help: 'Setting shared_buffers, in bytes.' },
  pg_settings_max_wal_size_bytes: { type: 'gauge', help: 'Setting max_wal_size, in bytes.' },
  pg_database_size_bytes: { type: 'gauge', help: 'Disk space used by the database (pg_database_size).' },
  pg_database_xid_age: { type: 'gauge', help: 'age(datfrozenxid): transactions since the database was last frozen completely (wraparound at 2^31).' },
  pg_replication_lag_seconds: { type: 'gauge', help: 'Replica: now() - pg_last_xact_replay_timestamp() (the server start time while no transaction was replayed since it started), 0 when everything received is replayed. Absent on a primary.' },
  pg_stat_replication_replay_lag_bytes: { type: 'gauge', help: 'Primary: bytes of WAL between pg_current_wal_lsn() and the replay position of each standby (pg_stat_replication).' },
  pg_stat_archiver_archived_count: { type: 'untyped', help: 'WAL files archived successfully (pg_stat_archiver, cumulative).' },
  pg_stat_archiver_failed_count: { type: 'untyped', help: 'Failed attempts to archive WAL files (pg_stat_archiver, cumulative).' },
  pg_stat_archiver_last_archive_age: { type: 'gauge', help: 'Seconds since the last WAL file was archived successfully (pg_stat_archiver). Absent before the first.' },
  pg_stat_bgwriter_checkpoints_timed_total: { type: 'counter', help: 'Scheduled checkpoints performed (PostgreSQL 17+: pg_stat_checkpointer.num_timed).' },
  pg_stat_bgwriter_checkpoints_req_total: { type: 'counter', help: 'Requested checkpoints performed (PostgreSQL 17+: pg_stat_checkpointer.num_requested).' },
  pg_stat_bgwriter_buffers_checkpoint_total: { type: 'counter', help: 'Buffers written during checkpoints (PostgreSQL 17+: pg_stat_checkpointer.buffers_written).' },
  pg_stat_bgwriter_buffers_clean_total: { type: 'counter', help: 'Buffers written by the background writer.' },
  pg_stat_bgwriter_buffers_backend_total: { type: 'counter', help: 'Buffers written directly by backends (PostgreSQL 14-16; absent from 17, which moved it to pg_stat_io).' },
  pg_stat_bgwriter_buffers_backend_fsync_total: { type: 'counter', help: 'Times a backend had to fsync itself (PostgreSQL 14-16; absent from 17).' },
  pg_stat_bgwriter_buffers_alloc_total: { type: 'counter', help: 'Buffers allocated.' },
  pg_stat_bgwriter_stats_reset: { type: 'gauge', help: 'When the background writer statistics were last reset (Unix seconds; absent when never).' },
  pg_stat_database_stats_reset: { type: 'gauge', help: 'When the statistics of this database were last reset (Unix seconds; absent when never).' },
  pg_stat_database_checksum_last_failure: { type: 'gauge', help: 'When the last data page checksum failure was detected in this database (Unix seconds; absent when none).' },
  pg_static: { type: 'gauge', help: 'Always 1; labels: the server version (version(), server_version).' },
  pg_stat_bgwriter_maxwritten_clean_total: { type: 'counter', help: 'Times the background writer stopped a cleaning scan for writing too many buffers.' },
  pg_stat_bgwriter_checkpoint_write_time_total: { type: 'counter', help: 'Milliseconds checkpoints spent writing files (PostgreSQL 17+: pg_stat_checkpointer.write_time).' },
  pg_stat_bgwriter_checkpoint_sync_time_total: { type: 'counter', help: 'Milliseconds checkpoints spent syncing files (PostgreSQL 17+: pg_stat_checkpointer.sync_time).' },
  ...Object.fromEntries(
    CONFLICT_KINDS.map((k) => [`pg_stat_database_conflicts_confl_${k}`, { type: 'untyped', help: `Queries canceled by a recovery conflict (${k}) in this database (cumulative; replicas only).` } satisfies Family]),
  ),
  pg_stat_wal_bytes_total: { type: 'counter', help: 'Bytes of WAL generated by this server (pg_stat_wal.wal_bytes).' },
  pgpilot_instance_timeline: { type: 'gauge', help: 'Timeline the instance is on (a primary: its insert timeline; a replica: the timeline it receives).' },
  pgpilot_instance_pending_restart: { type: 'gauge', help: '1 when a changed setting waits for a restart (pg_settings.pending_restart), else 0.' },
  pgpilot_instance_replication_lag_bytes: { type: 'gauge', help: 'Replica: bytes of WAL received and not yet replayed (pg_last_wal_receive_lsn() - pg_last_wal_replay_lsn()).' },
  pgpilot_instance_replication_lag_seconds: {
    type: 'gauge',
    help: 'Replica: 0 when replay has reached the end of WAL the primary last reported to the walreceiver, else the age of the last replayed transaction; while not streaming, the age of the last replayed transaction. Before any transaction was replayed since the server started, the time since it started.',
  },
};

/** A number from a pg value (int8 and numeric arrive as strings); null stays null. */
export function num(v: unknown): number | null {
  if (v === null || v === undefined || v === '') return null;
  const n = typeof v === 'number' ? v : Number(v);
  return Number.isFinite(n) ? n : null;
}

/** Pushes a sample when the value is known. */
function put(out: Sample[], name: string, value: unknown, labels?: Record<string, string>): void {
  const n = num(value);
  if (n !== null) out.push(labels ? { name, labels, value: n } : { name, value: n });
}

const bool = (v: unknown) => (v === true || v === 't' ? 1 : 0);

const UNIT_BYTES: Record<string, number> = { B: 1, kB: 1024, MB: 1024 ** 2, GB: 1024 ** 3, TB: 1024 ** 4 };

/** A pg_settings value in bytes when its unit is a size ('8kB', 'MB', ...), else as given; null when not numeric. */
export function settingValue(setting: unknown, unit: unknown): number | null {
  const n = num(setting);
  if (n === null) return null;
  const m = typeof unit === 'string' ? /^(\d*)\s*(B|kB|MB|GB|TB)$/.exec(unit) : null;
  if (!m) return n;
  return n * (m[1] ? Number(m[1]) : 1) * UNIT_BYTES[m[2]!]!;
}

/** The timeline of a WAL file name (its first 8 hex digits). */
function walFileTimeline(walFile: unknown): number | null {
  return typeof walFile === 'string' && /^[0-9A-F]{24}$/i.test(walFile) ? parseInt(walFile.slice(0, 8), 16) : null;
}

/** The first query: version, role, timeline, pending restart. Its success is pg_up 1. */
export const INSTANCE_SQL = `
SELECT current_setting('server_version_num')::int AS version_num,
       pg_is_in_recovery() AS in_recovery,
       EXISTS (SELECT 1 FROM pg_settings WHERE pending_restart) AS pending_restart,
       CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_walfile_name(pg_current_wal_lsn()) END AS wal_file,
       (SELECT timeline_id FROM pg_control_checkpoint()) AS checkpoint_tli,
       (SELECT received_tli FROM pg_stat_wal_receiver) AS received_tli`;

export function instanceFacts(row: Row | undefined): ServerFacts {
  const versionNum = num(row?.version_num);
  if (!row || versionNum === null) throw new Error('the instance query returned no server version');
  return { versionNum, inRecovery: row.in_recovery === true };
}

export function mapInstance(row: Row): Sample[] {
  const out: Sample[] = [{ name: 'pgpilot_instance_pending_restart', value: bool(row.pending_restart) }];
  const timeline = row.in_recovery === true ? (num(row.received_tli) ?? num(row.checkpoint_tli)) : (walFileTimeline(row.wal_file) ?? num(row.checkpoint_tli));
  put(out, 'pgpilot_instance_timeline', timeline);
  return out;
}

const DATABASE_SQL = `
SELECT d.datname, ${DATABASE_STATS.map((c) => `s.${c}`).join(', ')},
       extract(epoch FROM s.stats_reset)::float8 AS stats_reset, extract(epoch FROM s.checksum_last_failure)::float8 AS checksum_last_failure
  FROM pg_database d JOIN pg_stat_database s ON s.datid = d.oid
 WHERE d.datallowconn`;

/** Rows of one per-database view: each column of `columns` becomes `<prefix><column>{datname}`. */
function perDatabase(rows: Row[], prefix: string, columns: readonly string[]): Sample[] {
  const out: Sample[] = [];
  for (const r of rows) {
    if (typeof r.datname !== 'string') continue;
    for (const c of columns) put(out, `${prefix}${c}`, r[c], { datname: r.datname });
  }
  return out;
}

const mapDatabase = (rows: Row[]) => perDatabase(rows, 'pg_stat_database_', [...DATABASE_STATS, 'stats_reset', 'checksum_last_failure']);

// template0 does not allow connections but ages all the same: every database counts for wraparound.
const DATABASE_SIZE_SQL = `
SELECT datname, CASE WHEN datallowconn THEN pg_database_size(oid)::float8 END AS size_bytes, age(datfrozenxid)::float8 AS xid_age
  FROM pg_database`;

function mapDatabaseSize(rows: Row[]): Sample[] {
  const out: Sample[] = [];
  for (const r of rows) {
    if (typeof r.datname !== 'string') continue;
    put(out, 'pg_database_size_bytes', r.size_bytes, { datname: r.datname });
    put(out, 'pg_database_xid_age', r.xid_age, { datname: r.datname });
  }
  return out;
}

const valuesList = (values: readonly string[], column: string) => `(VALUES ${values.map((v) => `('${v.replace(/'/g, "''")}')`).join(', ')}) AS ${column}`;

// Every (database, state) pair, 0 included; the exporter's own session is left out.
const ACTIVITY_SQL = `
SELECT d.datname, s.state, count(a.pid)::int AS backends,
       COALESCE(max(GREATEST(0, extract(epoch FROM now() - a.xact_start))), 0)::float8 AS max_tx_duration
  FROM pg_database d CROSS JOIN ${valuesList(BACKEND_STATES, 's(state)')}
  LEFT JOIN pg_stat_activity a ON a.datid = d.oid AND a.state = s.state AND a.backend_type = 'client backend' AND a.pid <> pg_backend_pid()
 WHERE d.datallowconn
 GROUP BY d.datname, s.state`;

function mapActivity(rows: Row[]): Sample[] {
  const out: Sample[] = [];
  for (const r of rows) {
    if (typeof r.datname !== 'string' || typeof r.state !== 'string') continue;
    const labels = { datname: r.datname, state: r.state };
    put(out, 'pg_stat_activity_count', r.backends, labels);
    put(out, 'pg_stat_activity_max_tx_duration', r.max_tx_duration, labels);
  }
  return out;
}

const LOCKS_SQL = `
SELECT d.datname, m.mode, count(l.locktype)::int AS locks
  FROM pg_database d CROSS JOIN ${valuesList(LOCK_MODES, 'm(mode)')}
  LEFT JOIN pg_locks l ON l.database = d.oid AND l.mode = m.mode AND l.pid IS DISTINCT FROM pg_backend_pid()
 WHERE d.datallowconn
 GROUP BY d.datname, m.mode`;

function mapLocks(rows: Row[]): Sample[] {
  const out: Sample[] = [];
  for (const r of rows) if (typeof r.datname === 'string' && typeof r.mode === 'string') put(out, 'pg_locks_count', r.locks, { datname: r.datname, mode: r.mode });
  return out;
}

const SETTINGS_SQL = `SELECT name, setting, unit FROM pg_settings WHERE name IN (${EXPORTED_SETTINGS.map((s) => `'${s}'`).join(', ')})`;

function mapSettings(rows: Row[]): Sample[] {
  const out: Sample[] = [];
  for (const r of rows) {
    if (typeof r.name !== 'string' || !(EXPORTED_SETTINGS as readonly string[]).includes(r.name)) continue;
    const sized = typeof r.unit === 'string' && /B$/.test(r.unit);
    put(out, `pg_settings_${r.name}${sized ? '_bytes' : ''}`, settingValue(r.setting, r.unit));
  }
  return out;
}

const PRIMARY_REPLICATION_SQL = `
SELECT application_name, pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::float8 AS lag_bytes
  FROM pg_stat_replication`;

/** One series per application_name: two walsenders of the same name report the larger lag. */
function mapPrimaryReplication(rows: Row[]): Sample[] {
  const worst = new Map<string, number>();
  for (const r of rows) {
    const lag = num(r.lag_bytes);
    if (typeof r.application_name !== 'string' || lag === null) continue;
    worst.set(r.application_name, Math.max(lag, worst.get(r.application_name) ?? -Infinity));
  }
  return [...worst].map(([application_name, lag]) => ({ name: 'pg_stat_replication_replay_lag_bytes', labels: { application_name }, value: Math.max(0, lag) }));
}

const REPLICA_REPLICATION_SQL = `
SELECT pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())::float8 AS receive_replay_bytes,
       -- With no transaction replayed since the server started (a replica restarted, then stuck), the
       -- last replayed one is older than the start: the time since the start is a lower bound of the
       -- lag, where NULL would leave the lag series absent and the lag alert silent.
       extract(epoch FROM now() - coalesce(pg_last_xact_replay_timestamp(), pg_postmaster_start_time()))::float8 AS replay_age,
       w.status AS receiver_status,
       pg_wal_lsn_diff(w.latest_end_lsn, pg_last_wal_replay_lsn())::float8 AS behind_reported_bytes
  FROM (SELECT 1) AS one LEFT JOIN pg_stat_wal_receiver AS w ON true`;

/** A replica's lag (see the families' help); pure, exported for tests. */
export function mapReplicaReplication(row: Row | undefined): Sample[] {
  if (!row) return [];
  const out: Sample[] = [];
  const receiveReplay = num(row.receive_replay_bytes);
  const replayAge = num(row.replay_age);
  // After a restart the receive position can be behind the replay position: nothing is pending.
  if (receiveReplay !== null) out.push({ name: 'pgpilot_instance_replication_lag_bytes', value: Math.max(0, receiveReplay) });
  const exporterLag = receiveReplay !== null && receiveReplay <= 0 ? 0 : replayAge;
  if (exporterLag !== null) out.push({ name: 'pg_replication_lag_seconds', value: Math.max(0, exporterLag) });
  const behind = num(row.behind_reported_bytes);
  const streaming = row.receiver_status === 'streaming' && behind !== null;
  const lag = streaming && behind <= 0 ? 0 : replayAge;
  if (lag !== null) out.push({ name: 'pgpilot_instance_replication_lag_seconds', value: Math.max(0, lag) });
  return out;
}

const ARCHIVER_SQL = `
SELECT archived_count, failed_count, extract(epoch FROM now() - last_archived_time)::float8 AS last_archive_age
  FROM pg_stat_archiver`;

function mapArchiver(rows: Row[]): Sample[] {
  const out: Sample[] = [];
  const r = rows[0];
  if (!r) return out;
  put(out, 'pg_stat_archiver_archived_count', r.archived_count);
  put(out, 'pg_stat_archiver_failed_count', r.failed_count);
  const age = num(r.last_archive_age);
  if (age !== null) out.push({ name: 'pg_stat_archiver_last_archive_age', value: Math.max(0, age) });
  return out;
}

const BGWRITER_COLUMNS = ['stats_reset', 'checkpoints_timed', 'checkpoints_req', 'buffers_checkpoint', 'buffers_clean', 'buffers_backend', 'buffers_backend_fsync', 'buffers_alloc', 'maxwritten_clean', 'checkpoint_write_time', 'checkpoint_sync_time'] as const;

/** PostgreSQL 17 moved the checkpoint figures to pg_stat_checkpointer and removed buffers_backend(_fsync) (pg_stat_io). */
export function bgwriterSql(versionNum: number): string {
  if (versionNum >= 170000) {
    return `SELECT c.num_timed AS checkpoints_timed, c.num_requested AS checkpoints_req, c.buffers_written AS buffers_checkpoint,
       c.write_time AS checkpoint_write_time, c.sync_time AS checkpoint_sync_time, b.buffers_clean, b.buffers_alloc, b.maxwritten_clean,
       extract(epoch FROM b.stats_reset)::float8 AS stats_reset
  FROM pg_stat_checkpointer c CROSS JOIN pg_stat_bgwriter b`;
  }
  return `SELECT ${BGWRITER_COLUMNS.map((c) => (c === 'stats_reset' ? 'extract(epoch FROM stats_reset)::float8 AS stats_reset' : c)).join(', ')} FROM pg_stat_bgwriter`;
}

function mapBgwriter(rows: Row[]): Sample[] {
  const out: Sample[] = [];
  const r = rows[0];
  if (!r) return out;
  for (const c of BGWRITER_COLUMNS) put(out, c === 'stats_reset' ? 'pg_stat_bgwriter_stats_reset' : `pg_stat_bgwriter_${c}_total`, r[c]);
  return out;
}

/** Recovery conflicts per database (they happen on replicas; a primary reports zeros). */
function conflictsSql(versionNum: number): string {
  const kinds = CONFLICT_KINDS.filter((k) => k !== 'active_logicalslot' || versionNum >= 160000);
  return `SELECT d.datname, ${kinds.map((k) => `c.confl_${k}`).join(', ')}
  FROM pg_database d JOIN pg_stat_database_conflicts c ON c.datid = d.oid
 WHERE d.datallowconn`;
}

const mapConflicts = (rows: Row[]) => perDatabase(rows, 'pg_stat_database_conflicts_', CONFLICT_KINDS.map((k) => `confl_${k}`));

function mapStatic(rows: Row[]): Sample[] {
  const r = rows[0];
  if (!r || typeof r.version !== 'string' || typeof r.short_version !== 'string') return [];
  return [{ name: 'pg_static', labels: { version: r.version, short_version: r.short_version }, value: 1 }];
}

function mapWal(rows: Row[]): Sample[] {
  const out: Sample[] = [];
  put(out, 'pg_stat_wal_bytes_total', rows[0]?.wal_bytes);
  return out;
}

/** The queries after the instance query, in the order one scrape runs them on its one connection. */
export const STATS_QUERIES: readonly StatsQuery[] = [
  { name: 'replication', sql: (f) => (f.inRecovery ? REPLICA_REPLICATION_SQL : PRIMARY_REPLICATION_SQL), map: (rows, f) => (f.inRecovery ? mapReplicaReplication(rows[0]) : mapPrimaryReplication(rows)) },
  { name: 'database', sql: () => DATABASE_SQL, map: mapDatabase },
  { name: 'database_conflicts', sql: (f) => conflictsSql(f.versionNum), map: mapConflicts },
  { name: 'activity', sql: () => ACTIVITY_SQL, map: mapActivity },
  { name: 'locks', sql: () => LOCKS_SQL, map: mapLocks },
  { name: 'settings', sql: () => SETTINGS_SQL, map: mapSettings },
  { name: 'static', sql: () => "SELECT version() AS version, current_setting('server_version') AS short_version", map: mapStatic },
  { name: 'archiver', sql: () => ARCHIVER_SQL, map: mapArchiver },
  { name: 'bgwriter', sql: (f) => bgwriterSql(f.versionNum), map: mapBgwriter },
  // pg_stat_wal exists from PostgreSQL 14 (wal_bytes unchanged through 18).
  { name: 'wal', sql: (f) => (f.versionNum >= 140000 ? 'SELECT wal_bytes::float8 AS wal_bytes FROM pg_stat_wal' : null), map: mapWal },
  // Last: it stats every file of every database, the slowest of them on a big cluster.
  { name: 'database_size', sql: () => DATABASE_SIZE_SQL, map: mapDatabaseSize },
];

/** Every query name, for pgpilot_exporter_query_errors_total's series (0 from the start). */
export const QUERY_NAMES = ['instance', ...STATS_QUERIES.map((q) => q.name)] as const;
