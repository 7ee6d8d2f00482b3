// What the agent reads from global/pg_control without a connection (pure parsing + one read).
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * The database system identifier: the first field of ControlFileData (uint64, host byte order:
 * little-endian on every platform pgpilot ships for). Read from the file, so the WAL archiver can
 * learn it while postgres is shutting down or down — asking the server then fails and, during a
 * shutdown, left archive_command waiting for an upload that could never start.
 */
export function systemIdentifierOf(pgControl: Buffer): string {
  if (pgControl.length < 8) throw new Error(`pg_control is ${pgControl.length} bytes: too short to hold a system identifier`);
  return pgControl.readBigUInt64LE(0).toString();
}

export async function readSystemIdentifier(pgdata: string): Promise<string> {
  return systemIdentifierOf(await readFile(join(pgdata, 'global', 'pg_control')));
}

/** pg_controldata's label for each standby minimum (restart-settings.ts STANDBY_MINIMUMS). */
const CONTROLDATA_LABELS: Record<string, string> = {
  'max_connections setting': 'max_connections',
  'max_worker_processes setting': 'max_worker_processes',
  'max_wal_senders setting': 'max_wal_senders',
  'max_prepared_xacts setting': 'max_prepared_transactions',
  'max_locks_per_xact setting': 'max_locks_per_transaction',
};

/**
 * The standby minimums recorded in pg_control (pg_controldata's output, LC_ALL=C): the values of
 * the primary whose WAL this data directory replayed last. A hot standby refuses to start below
 * them, and replaying the primary's parameter change lowers them.
 */
export function parseControlMinimums(pgControldataOutput: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of pgControldataOutput.split('\n')) {
    const m = /^([^:]+):\s+(\d+)\s*$/.exec(line);
    const name = m ? CONTROLDATA_LABELS[m[1]!.trim()] : undefined;
    if (name) out[name] = Number(m![2]);
  }
  return out;
}
