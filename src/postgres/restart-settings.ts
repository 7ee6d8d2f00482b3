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

/** A short hash of the restart-requiring settings among `params` (order-independent). */
export function restartSettingsHash(params: Record<string, string>): string {
  const lines = Object.entries(params)
    .filter(([k]) => RESTART_SETTINGS.has(k))
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k}=${v}`);
  return createHash('sha256').update(lines.join('\n')).digest('hex').slice(0, 16);
}
