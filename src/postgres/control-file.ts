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
