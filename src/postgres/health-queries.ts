// The agent's health snapshot (src/instance/health.ts): what anomaly detection needs from
// PostgreSQL, in a few cheap queries, and how their rows become a HealthSnapshot (pure).
// The checkpoint counters come from the exporter's own query (stats-queries.ts bgwriterSql:
// pg_stat_bgwriter before 17, pg_stat_checkpointer from 17), settings through its settingValue.
//
// Sessions pgpilot opens itself for maintenance (application_name starting "pgpilot-", e.g. the
// agent's VACUUM (FREEZE)) are not counted as long transactions; every client backend but the
// snapshot's own session counts as a connection in use.
import { bgwriterSql, num, settingValue, type Row } from './stats-queries.js';

export interface DatabaseXidAge {
  name: string;
  /** age(datfrozenxid). */
  xidAge: number;
}

export interface SessionInfo {
  pid: number;
  database: string | null;
  user: string | null;
  applicationName: string | null;
  /** Active: seconds since the transaction began. Idle in transaction: seconds since it went idle. */
  seconds: number;
}

export interface SlotInfo {
  name: string;
  type: string;
  active: boolean;
  /** pg_current_wal_lsn() - restart_lsn: WAL the slot keeps (null: it reserves none). */
  retainedBytes: number | null;
  /** pg_replication_slots.wal_status (reserved, extended, unreserved, lost). */
  walStatus: string | null;
}

export interface HealthSnapshot {
  /** When the snapshot was taken (the agent's clock). */
  observedAt: string;
  /** Connectable databases, the oldest (largest xid age) first. template0 is left to autovacuum. */
  databases: DatabaseXidAge[];
  /** The oldest transaction of an active client backend (null: none). */
  oldestActive: SessionInfo | null;
  /** Client backends idle in a transaction, and the one idle longest. */
  idleInTransaction: { count: number; oldest: SessionInfo | null };
  /** Client backends (the snapshot's own session left out) against max_connections. */
  connections: { used: number; max: number; superuserReserved: number };
  /** Primary: its replication slots. Replica: empty. */
  slots: SlotInfo[];
  /** Checkpoints since the statistics were last reset (stats_reset as ISO time, or null). */
  checkpoints: { timed: number; requested: number; statsReset: string | null } | null;
  /** max_wal_size in bytes as the server runs it. */
  maxWalSizeBytes: number | null;
}

export const HEALTH_VERSION_SQL = `SELECT current_setting('server_version_num')::int AS version_num, pg_is_in_recovery() AS in_recovery`;

export const HEALTH_DATABASES_SQL = `
SELECT datname, age(datfrozenxid)::float8 AS xid_age FROM pg_database WHERE datallowconn ORDER BY 2 DESC, 1`;

// One row per kind: the oldest active transaction, the session idle in a transaction longest, and
// the count of both and of all client backends.
export const HEALTH_ACTIVITY_SQL = `
WITH c AS (
  SELECT pid, datname, usename, application_name, state,
         extract(epoch FROM now() - xact_start)::float8 AS xact_seconds,
         extract(epoch FROM now() - state_change)::float8 AS state_seconds,
         coalesce(application_name, '') LIKE 'pgpilot-%' AS own
    FROM pg_stat_activity
   WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
)
SELECT 'total' AS kind, count(*)::int AS n, NULL::int AS pid, NULL::text AS datname, NULL::text AS usename, NULL::text AS application_name, NULL::float8 AS seconds FROM c
UNION ALL
SELECT 'idle_count', count(*)::int, NULL, NULL, NULL, NULL, NULL FROM c WHERE state IN ('idle in transaction', 'idle in transaction (aborted)')
UNION ALL
(SELECT 'active', 1, pid, datname, usename, application_name, xact_seconds FROM c
  WHERE state = 'active' AND xact_seconds IS NOT NULL AND NOT own ORDER BY xact_seconds DESC LIMIT 1)
UNION ALL
(SELECT 'idle', 1, pid, datname, usename, application_name, state_seconds FROM c
  WHERE state IN ('idle in transaction', 'idle in transaction (aborted)') AND NOT own ORDER BY state_seconds DESC LIMIT 1)`;

export const HEALTH_SETTINGS_SQL = `SELECT name, setting, unit FROM pg_settings WHERE name IN ('max_connections', 'superuser_reserved_connections', 'max_wal_size')`;

export const HEALTH_SLOTS_SQL = `
SELECT slot_name, slot_type, active, wal_status,
       CASE WHEN restart_lsn IS NULL THEN NULL ELSE pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::float8 END AS retained_bytes
  FROM pg_replication_slots ORDER BY slot_name`;

/** The checkpoint counters: the exporter's query for this server version. */
export const healthCheckpointsSql = (versionNum: number): string => bgwriterSql(versionNum);

function session(r: Row): SessionInfo | null {
  const pid = num(r.pid);
  const seconds = num(r.seconds);
  if (pid === null || seconds === null) return null;
  const text = (v: unknown) => (typeof v === 'string' ? v : null);
  return { pid, database: text(r.datname), user: text(r.usename), applicationName: text(r.application_name), seconds: Math.max(0, Math.round(seconds)) };
}

export interface HealthRows {
  databases: Row[];
  activity: Row[];
  settings: Row[];
  /** null on a replica (not asked). */
  slots: Row[] | null;
  checkpoints: Row | undefined;
}

/** The snapshot from the queries' rows (pure). */
export function shapeHealth(rows: HealthRows, observedAt: Date): HealthSnapshot {
  const databases = rows.databases.flatMap((r) => {
    const age = num(r.xid_age);
    return typeof r.datname === 'string' && age !== null ? [{ name: r.datname, xidAge: age }] : [];
  });
  const kind = (k: string) => rows.activity.find((r) => r.kind === k);
  const setting = (name: string) => {
    const r = rows.settings.find((s) => s.name === name);
    return r ? settingValue(r.setting, r.unit) : null;
  };
  const idleRow = kind('idle');
  const activeRow = kind('active');
  const cp = rows.checkpoints;
  const timed = num(cp?.checkpoints_timed);
  const requested = num(cp?.checkpoints_req);
  const reset = num(cp?.stats_reset);
  return {
    observedAt: observedAt.toISOString(),
    databases,
    oldestActive: activeRow ? session(activeRow) : null,
    idleInTransaction: { count: num(kind('idle_count')?.n) ?? 0, oldest: idleRow ? session(idleRow) : null },
    connections: { used: num(kind('total')?.n) ?? 0, max: setting('max_connections') ?? 0, superuserReserved: setting('superuser_reserved_connections') ?? 0 },
    slots: (rows.slots ?? []).flatMap((r) =>
      typeof r.slot_name === 'string'
        ? [{ name: r.slot_name, type: typeof r.slot_type === 'string' ? r.slot_type : 'unknown', active: r.active === true, retainedBytes: num(r.retained_bytes), walStatus: typeof r.wal_status === 'string' ? r.wal_status : null }]
        : [],
    ),
    checkpoints: timed !== null && requested !== null ? { timed, requested, statsReset: reset !== null ? new Date(reset * 1000).toISOString() : null } : null,
    maxWalSizeBytes: setting('max_wal_size'),
  };
}
