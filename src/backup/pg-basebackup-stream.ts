// pg_basebackup writing the tar of a base backup to stdout (-D - -Ft -X none), run by the shared
// tool runner (src/postgres/tool.ts) for base-backup.ts to stream into the store. Its stderr (-v)
// goes to the debug log and the last lines are kept for the error; `onLine` sees each line.
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pino } from 'pino';
import type { Credentials } from '../postgres/files.js';
import { runTool } from '../postgres/tool.js';
import { renderConninfo } from '../postgres/conninfo.js';
import { libpqTlsParams, type LibpqTls } from '../postgres/tls-client.js';
import type { Logger } from '../runtime/logger.js';

export interface PgBasebackupStreamOptions {
  /** Directory of pg_basebackup. */
  pgBin: string;
  host: string;
  port: number;
  /** Role it connects as (REPLICATION); its password travels in PGPASSWORD. */
  replication: Credentials;
  /** verify-full TLS and the replication client certificate (libpq conninfo, -d). */
  tls?: LibpqTls;
  /** The backup label the server records. */
  label: string;
  onLine?: (line: string) => void;
  log?: Logger;
}

export interface PgBasebackupStream {
  args: string[];
  /** The tar. */
  stdout: Readable;
  /** Resolves when pg_basebackup succeeded; rejects with a ToolError, or why it could not run. */
  done: Promise<void>;
  /** Its last lines of stderr. */
  lastLines(n: number): string[];
  /** Stops it (SIGTERM) unless it has ended. */
  kill(): void;
}

export function streamPgBasebackup(o: PgBasebackupStreamOptions): PgBasebackupStream {
  const where = o.tls ? ['-d', renderConninfo({ ...libpqTlsParams(o.tls, o.host), port: o.port })] : ['-h', o.host, '-p', String(o.port)];
  const args = [...where, '-U', o.replication.username, '-D', '-', '-Ft', '-X', 'none', '-c', 'fast', '-v', '--no-password', '-l', o.label];
  const stop = new AbortController();
  const lines: string[] = [];
  let stdout: Readable | undefined;
  const done = runTool(join(o.pgBin, 'pg_basebackup'), args, {
    log: o.log ?? pino({ enabled: false }),
    env: { PGPASSWORD: o.replication.password },
    outputLevel: 'debug',
    stdout: (s) => (stdout = s),
    onLine: (line) => {
      lines.push(line);
      if (lines.length > 50) lines.shift();
      o.onLine?.(line);
    },
    signal: stop.signal,
  }).then(() => undefined);
  // Awaited only once the tar has ended, or after a failure elsewhere: never an unhandled rejection.
  done.catch(() => undefined);
  return { args, stdout: stdout!, done, lastLines: (n) => lines.slice(-n), kill: () => stop.abort() };
}
