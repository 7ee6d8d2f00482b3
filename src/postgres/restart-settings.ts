// Which postgresql.conf settings take effect only at a server start (pg_settings.context
// 'postmaster'): a change of one of these needs a restart, every other one a reload. The list
// covers what clusters set (the operator's own settings, the tuned ones, the usual user ones);
// an extension's postmaster setting not listed here is reloaded, and the agent then reports
// pending_restart.
import { createHash } from 'node:crypto';

export const RESTART_SETTINGS = new Set([
  'archive_mode',
  'autovacuum_max_workers',
  'hot_standby',
  'huge_pages',
  'max_connections',
  'max_files_per_process',
  'max_locks_per_transaction',
  'max_pred_locks_per_transaction',
  'max_prepared_transactions',
  'max_replication_slots',
  'max_wal_senders',
  'max_worker_processes',
  'shared_buffers',
  'shared_preload_libraries',
  'superuser_reserved_connections',
  'track_commit_timestamp',
  'wal_buffers',
  'wal_level',
  'wal_log_hints',
]);

/**
 * Settings a hot standby must have at least as high as its primary (it refuses to start below
 * them): raising them updates replicas first; lowering them updates the primary first.
 */
export const STANDBY_MINIMUMS = ['max_connections', 'max_locks_per_transaction', 'max_prepared_transactions', 'max_wal_senders', 'max_worker_processes'] as const;

/** "max_connections=100,max_locks_per_transaction=64,…": the values of STANDBY_MINIMUMS that are set. */
export function standbyMinimums(params: Record<string, string>): string {
  return STANDBY_MINIMUMS.filter((k) => params[k] !== undefined)
    .map((k) => `${k}=${params[k]}`)
    .join(',');
}

/** The STANDBY_MINIMUMS that going from `live` to `desired` (standbyMinimums strings) lowers. */
export function loweredStandbyMinimums(live: string | undefined, desired: string): string[] {
  if (!live) return [];
  const parse = (text: string) => new Map(text.split(',').filter(Boolean).map((kv) => kv.split('=') as [string, string]));
  const before = parse(live);
  return [...parse(desired)].filter(([k, v]) => before.has(k) && Number(v) < Number(before.get(k))).map(([k]) => k);
}

/** A short hash of the restart-requiring settings among `params` (order-independent). */
export function restartSettingsHash(params: Record<string, string>): string {
  const lines = Object.entries(params)
    .filter(([k]) => RESTART_SETTINGS.has(k))
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k}=${v}`);
  return createHash('sha256').update(lines.join('\n')).digest('hex').slice(0, 16);
}

/** PostgreSQL's defaults for STANDBY_MINIMUMS (what a server runs when postgresql.conf names none). */
const STANDBY_MINIMUM_DEFAULTS: Record<string, number> = {
  max_connections: 100,
  max_locks_per_transaction: 64,
  max_prepared_transactions: 0,
  max_wal_senders: 10,
  max_worker_processes: 8,
};

/** The STANDBY_MINIMUMS a postgresql.conf (as the operator renders it: `name = 'value'`) sets, defaults filled in. */
export function configuredStandbyMinimums(postgresqlConf: string): Record<string, number> {
  const out = { ...STANDBY_MINIMUM_DEFAULTS };
  for (const line of postgresqlConf.split('\n')) {
    const m = /^\s*([a-z_]+)\s*=\s*'?(\d+)'?\s*(#.*)?$/.exec(line);
    if (m && m[1]! in out) out[m[1]!] = Number(m[2]);
  }
  return out;
}

/**
 * The settings a replica must start with above its configuration: where pg_control still holds
 * a higher value than configured (its primary has not lowered it yet, or this replica has not
 * replayed that change yet), the recorded value, else it would refuse to start.
 */
export function standbyStartOverrides(control: Record<string, number>, configured: Record<string, number>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of STANDBY_MINIMUMS) {
    const recorded = control[k];
    if (recorded !== undefined && recorded > (configured[k] ?? 0)) out[k] = String(recorded);
  }
  return out;
}
