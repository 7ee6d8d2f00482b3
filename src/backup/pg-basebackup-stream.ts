// pg_basebackup writing the tar of a base backup to stdout (-D - -Ft -X none), for base-backup.ts
// to stream into the store. Its stderr (-v) goes to the debug log and the last lines are kept for
// the error; `onLine` sees each line as it comes.
//
// Not runTool (src/postgres/tool.ts): that reads stdout as text lines and cannot be stopped by
// the caller, while this stdout is binary and a base backup is cancelled (a timeout, a failed
// upload) by killing the tool.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import type { Credentials } from '../postgres/files.js';
import { ToolError } from '../postgres/tool.js';
import type { Logger } from '../runtime/logger.js';

export interface PgBasebackupStreamOptions {
  /** Directory of pg_basebackup. */
  pgBin: string;
  host: string;
  port: number;
  /** Role it connects as (REPLICATION); its password travels in PGPASSWORD. */
  replication: Credentials;
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
  const args = ['-h', o.host, '-p', String(o.port), '-U', o.replication.username, '-D', '-', '-Ft', '-X', 'none', '-c', 'fast', '-v', '--no-password', '-l', o.label];
  const bin = join(o.pgBin, 'pg_basebackup');
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PGPASSWORD: o.replication.password } });

  const stderr: string[] = [];
  createInterface({ input: child.stderr, crlfDelay: Infinity }).on('line', (line) => {
    const text = line.trim();
    if (!text) return;
    stderr.push(text);
    if (stderr.length > 50) stderr.shift();
    o.log?.debug({ tool: 'pg_basebackup' }, text);
    o.onLine?.(text);
  });
  const done = new Promise<void>((resolve, reject) => {
    child.once('error', (error) => reject(new Error(`cannot run ${bin}: ${error.message}`)));
    child.once('exit', (code, signal) => (code === 0 ? resolve() : reject(new ToolError('pg_basebackup', code, signal, stderr))));
  });
  // Awaited only once the tar has ended, or after a failure elsewhere: never an unhandled rejection.
  done.catch(() => undefined);
  return {
    args,
    stdout: child.stdout,
    done,
    lastLines: (n) => stderr.slice(-n),
    kill: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    },
  };
}
