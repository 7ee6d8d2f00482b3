// Debian's pgBackRest against an s3rver over TLS, for the `backup` benchmark: a stanza for one
// throwaway server, full backups, and archive-push as that server's archive_command. Everything
// runs as the server's OS user (setpriv to `postgres` when we are root), with its config, lock and
// log paths in a temp directory of its own (nothing under /etc or /var is read or written).
import { runTracked } from './run.js';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { S3RVER_ACCESS_KEY, S3RVER_SECRET_KEY, type S3rver } from '../../test/support/s3rver.js';
import { giveToPostgres } from '../../test/integration/wal-postgres.js';

export const PGBACKREST_BIN = process.env.PGPILOT_PGBACKREST ?? '/usr/bin/pgbackrest';
const AS_ROOT = process.getuid?.() === 0;

export function pgBackRestAvailable(): boolean {
  return existsSync(PGBACKREST_BIN);
}

export interface PgBackRestOptions {
  /** A directory the postgres user may write to (config, locks, logs). */
  dir: string;
  /** An s3rver started with tls: true (pgBackRest speaks only HTTPS to S3). */
  s3: S3rver;
  bucket: string;
  pgdata: string;
  port: number;
  /** Directory of the server's Unix socket. */
  socketDir: string;
  stanza?: string;
  /** gzip level for backups and archive-push (default 1, as ours). */
  compressLevel?: number;
}

export class PgBackRest {
  readonly stanza: string;
  readonly configFile: string;
  private readonly includeDir: string;

  constructor(private readonly o: PgBackRestOptions) {
    if (!o.s3.tls) throw new Error('pgBackRest needs an s3rver with tls: true');
    this.stanza = o.stanza ?? 'bench';
    this.configFile = join(o.dir, 'pgbackrest.conf');
    this.includeDir = join(o.dir, 'conf.d'); // empty: /etc/pgbackrest/conf.d is never read
  }

  async writeConfig(): Promise<void> {
    await mkdir(join(this.o.dir, 'log'), { recursive: true });
    await mkdir(join(this.o.dir, 'lock'), { recursive: true });
    await mkdir(this.includeDir, { recursive: true });
    const conf = [
      '[global]',
      'repo1-type=s3',
      'repo1-path=/repo',
      'repo1-s3-endpoint=127.0.0.1',
      `repo1-storage-port=${this.o.s3.port}`,
      'repo1-storage-verify-tls=n',
      'repo1-s3-uri-style=path',
      `repo1-s3-bucket=${this.o.bucket}`,
      `repo1-s3-key=${S3RVER_ACCESS_KEY}`,
      `repo1-s3-key-secret=${S3RVER_SECRET_KEY}`,
      'repo1-s3-region=us-east-1',
      'repo1-retention-full=100',
      'compress-type=gz',
      `compress-level=${this.o.compressLevel ?? 1}`,
      'process-max=1',
      'archive-async=n',
      'start-fast=y',
      'expire-auto=n',
      `log-path=${join(this.o.dir, 'log')}`,
      `lock-path=${join(this.o.dir, 'lock')}`,
      'log-level-console=warn',
      'log-level-stderr=off',
      'log-level-file=info',
      '',
      // archive-push writes no log file of its own: its console (the server's log) tells its durations.
      '[global:archive-push]',
      'log-level-console=info',
      '',
      `[${this.stanza}]`,
      `pg1-path=${this.o.pgdata}`,
      `pg1-port=${this.o.port}`,
      `pg1-socket-path=${this.o.socketDir}`,
      'pg1-user=postgres',
      '',
    ].join('\n');
    await writeFile(this.configFile, conf, { mode: 0o600 });
    await giveToPostgres(this.o.dir);
  }

  private baseArgs(): string[] {
    return [`--config=${this.configFile}`, `--config-include-path=${this.includeDir}`, `--stanza=${this.stanza}`];
  }

  /** archive_command: synchronous archive-push of %p (archive-async=n, gz at the configured level). */
  archiveCommand(): string {
    for (const p of [PGBACKREST_BIN, this.configFile, this.includeDir]) {
      if (!/^\/[A-Za-z0-9_./-]*$/.test(p)) throw new Error(`path ${p} needs quoting in archive_command`);
    }
    return `${PGBACKREST_BIN} ${this.baseArgs().join(' ')} archive-push %p`;
  }

  /** Runs one pgBackRest command as the server's user; resolves with its output, fails with it. */
  run(command: string, extra: string[] = [], timeoutMs = 300_000): Promise<string> {
    const argv = [...this.baseArgs(), ...extra, command];
    const [cmd, args] = AS_ROOT ? ['setpriv', ['--reuid=postgres', '--regid=postgres', '--clear-groups', '--', PGBACKREST_BIN, ...argv]] : [PGBACKREST_BIN, argv];
    return runTracked(cmd, args, { label: `pgbackrest ${command} ${extra.join(' ')}`, cwd: dirname(this.configFile), timeoutMs });
  }

  stanzaCreate(): Promise<string> {
    return this.run('stanza-create');
  }

  /** A full backup; `extra` e.g. ['--process-max=2'] or ['--archive-check=n']. Returns seconds. */
  async fullBackup(extra: string[] = []): Promise<{ seconds: number; output: string }> {
    const started = process.hrtime.bigint();
    const output = await this.run('backup', ['--type=full', ...extra]);
    return { seconds: Number(process.hrtime.bigint() - started) / 1e9, output };
  }

  /** Durations (ms) of the archive-pushes in a server log (archive-push logs to the console, which is the server's log). */
  static archivePushMs(serverLog: string): number[] {
    return [...serverLog.matchAll(/archive-push command end: completed successfully \((\d+)ms\)/g)].map((m) => Number(m[1]));
  }

  /** `pgbackrest info --output=json` of the stanza. */
  async info(): Promise<unknown> {
    return JSON.parse(await this.run('info', ['--output=json'])) as unknown;
  }
}
