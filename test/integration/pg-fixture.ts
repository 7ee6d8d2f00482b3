/**
 * A throwaway PostgreSQL server with passwords, for tests that connect the way pgpilot does: scram
 * over TCP as the superuser `postgres` and as a replication role `replicator` (random passwords),
 * trust only on the server's private Unix socket. Process handling (setpriv to the `postgres` user
 * when the tests run as root, direct start without pg_ctl, free port on 127.0.0.1) is
 * wal-postgres.ts's PgServer; this adds the passwords, client tools and recovery waits.
 *
 *   const dir = await pgTempDir('pgpilot-x-');
 *   const src = await TestPostgres.create(join(dir, 'src'), { wal_level: 'replica' });
 *   await src.tool('pgbench', ['-i', '-s', '2', 'postgres']);
 *   const copy = await TestPostgres.open(restoredPgdata, src, { archive_mode: 'off' }); // same roles
 *   await copy.start(false); await copy.waitPromoted();
 */
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import type pg from 'pg';
import { archiveKeys } from '../../src/backup/archive-layout.js';
import { archiveCommand } from '../../src/postgres/handoff.js';
import type { BaseBackupOptions } from '../../src/backup/base-backup.js';
import type { ObjectStore } from '../../src/backup/object-store.js';
import { openStore } from '../../src/backup/open-store.js';
import { WalArchiver } from '../../src/backup/wal-archiver.js';
import type { Credentials } from '../../src/postgres/files.js';
import { withClient, type ConnectOptions } from '../../src/postgres/sql.js';
import type { Logger } from '../../src/runtime/logger.js';
import { startS3rver, type S3rver } from '../support/s3rver.js';
import { ensureDir, freePort, giveToPostgres, PG_BIN, PgServer, pgTempDir, removeDir, runPgTool } from './wal-postgres.js';

const execFileAsync = promisify(execFile);
const randomPassword = () => Math.random().toString(36).slice(2) + Math.random().toString(36).slice(2);

export interface Roles {
  superuser: Credentials;
  replication: Credentials;
}

export class TestPostgres extends PgServer implements Roles {
  readonly host = '127.0.0.1';

  constructor(
    pgdata: string,
    port: number,
    settings: Record<string, string | number>,
    readonly superuser: Credentials,
    readonly replication: Credentials,
  ) {
    super(pgdata, port, settings);
  }

  /** initdb (scram for TCP, checksums) into <dir>/pgdata, start, and create the replication role. */
  static async create(dir: string, settings: Record<string, string | number> = {}): Promise<TestPostgres> {
    await ensureDir(dir);
    const roles: Roles = {
      superuser: { username: 'postgres', password: randomPassword() },
      replication: { username: 'replicator', password: randomPassword() },
    };
    const pgdata = path.join(dir, 'pgdata');
    const pwfile = path.join(dir, 'pwfile');
    await writeFile(pwfile, `${roles.superuser.password}\n`, { mode: 0o600 });
    await giveToPostgres(pwfile);
    await runPgTool('initdb', [
      '-D', pgdata, '-U', roles.superuser.username, `--pwfile=${pwfile}`, '--auth-local=trust', '--auth-host=scram-sha-256',
      '--data-checksums', '-E', 'UTF8', '--locale=C', '--no-sync',
    ]);
    await writeFile(pgdata + '/pg_hba.conf', 'local all all trust\nhost replication all 127.0.0.1/32 scram-sha-256\nhost all all 127.0.0.1/32 scram-sha-256\n');
    await giveToPostgres(pgdata);
    const server = new TestPostgres(pgdata, await freePort(), settings, roles.superuser, roles.replication);
    await server.start();
    await server.query(`CREATE ROLE ${roles.replication.username} WITH REPLICATION LOGIN PASSWORD '${roles.replication.password}'`);
    return server;
  }

  /** A server (not started) on an existing data directory, e.g. a restored backup of `roles`'s cluster. */
  static async open(pgdata: string, roles: Roles, settings: Record<string, string | number> = {}): Promise<TestPostgres> {
    await giveToPostgres(pgdata);
    return new TestPostgres(pgdata, await freePort(), settings, roles.superuser, roles.replication);
  }

  /** For src/instance/sql.ts and takeBaseBackup's `sql`. */
  connectOptions(database = 'postgres'): ConnectOptions {
    return { host: this.host, port: this.port, credentials: this.superuser, database, connectTimeoutMs: 3000, queryTimeoutMs: 300_000 };
  }

  override query<T extends pg.QueryResultRow = Record<string, unknown>>(sql: string, params: unknown[] = []): Promise<T[]> {
    return withClient(this.connectOptions(), async (c) => (await c.query<T>(sql, params)).rows);
  }

  /** A client tool of PG_BIN (pgbench, psql) against this server as the superuser, over TCP. */
  async tool(name: string, args: string[], timeoutMs = 300_000): Promise<string> {
    try {
      const { stdout } = await execFileAsync(path.join(PG_BIN, name), ['-h', this.host, '-p', String(this.port), '-U', this.superuser.username, ...args], {
        env: { ...process.env, PGPASSWORD: this.superuser.password },
        timeout: timeoutMs,
        maxBuffer: 64 * 1024 * 1024,
      });
      return stdout;
    } catch (err) {
      const e = err as { stderr?: string; message: string };
      throw new Error(`${name} failed: ${e.stderr || e.message}`);
    }
  }

  /** Waits until recovery has ended and the server is a primary; fails when postgres exits. */
  async waitPromoted(timeoutMs = 120_000): Promise<void> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      if (!this.running) throw new Error(`postgres exited during recovery:\n${this.log.slice(-3000)}`);
      try {
        if ((await this.query<{ r: boolean }>('select pg_is_in_recovery() as r'))[0]?.r === false) return;
      } catch {
        /* not accepting connections yet */
      }
      if (Date.now() > until) throw new Error(`still in recovery after ${timeoutMs} ms:\n${this.log.slice(-3000)}`);
      await sleep(100);
    }
  }
}

export interface ArchivedPrimary {
  server: TestPostgres;
  archiver: WalArchiver;
  /** Switches WAL and waits until the finished segment is in the store; returns its name. */
  archiveNow(timeoutMs?: number): Promise<string>;
  stop(): Promise<void>;
}

/**
 * A primary (create()) whose WAL the agent's WalArchiver archives to `store` under `archivePath`,
 * through the archive_command handoff, as pgpilot runs it.
 */
export async function startArchivedPrimary(dir: string, store: ObjectStore, archivePath: string, log: Logger, settings: Record<string, string | number> = {}): Promise<ArchivedPrimary> {
  const markerDir = path.join(dir, 'archive-markers');
  await ensureDir(markerDir);
  const server = await TestPostgres.create(dir, { wal_level: 'replica', archive_mode: 'on', archive_command: archiveCommand(markerDir), max_wal_senders: 5, ...settings });
  const [{ id }] = (await server.query<{ id: string }>('select system_identifier::text as id from pg_control_system()')) as [{ id: string }];
  const archiver = new WalArchiver({
    pgdata: server.pgdata, markerDir, store, path: archivePath, level: 1, log,
    identity: async () => ({ systemIdentifier: id, cluster: path.basename(archivePath), namespace: 'test' }),
  });
  await archiver.start();
  return {
    server,
    archiver,
    async archiveNow(timeoutMs = 60_000) {
      const [{ f }] = (await server.query<{ f: string }>('select pg_walfile_name(pg_switch_wal()) as f')) as [{ f: string }];
      const until = Date.now() + timeoutMs;
      while (!(await store.head(archiveKeys.wal(archivePath, f)))) {
        if (Date.now() > until) throw new Error(`WAL segment ${f} not archived within ${timeoutMs} ms: ${JSON.stringify(archiver.status())}`);
        await sleep(50);
      }
      return f;
    },
    async stop() {
      await server.stop('fast');
      await archiver.stop();
    },
  };
}

/** An s3rver, a store on one of its buckets, and an archived primary with pgbench data. */
export interface BackupRig {
  s3: S3rver;
  store: ObjectStore;
  /** Temp directory of the rig (the source lives in <dir>/source). */
  dir: string;
  source: ArchivedPrimary;
  /** takeBaseBackup options for a backup of the source (or `server`, with the source's roles). */
  backupOptions(extra?: Partial<BaseBackupOptions>, server?: TestPostgres): BaseBackupOptions;
  stop(): Promise<void>;
}

export async function startBackupRig(name: string, archivePath: string, log: Logger, pgbenchScale = 2): Promise<BackupRig> {
  const s3 = await startS3rver({ buckets: [name] });
  const store = openStore(s3.storeConfig(name), s3.env);
  const dir = await pgTempDir(`pgpilot-${name}-`);
  const source = await startArchivedPrimary(path.join(dir, 'source'), store, archivePath, log);
  await source.server.tool('pgbench', ['-i', '-s', String(pgbenchScale), '-q', 'postgres']);
  const cluster = path.basename(archivePath);
  return {
    s3, store, dir, source,
    backupOptions: (extra = {}, server = source.server) => ({
      store, path: archivePath, pgBin: PG_BIN, host: server.host, port: server.port,
      replication: source.server.replication, sql: source.server.superuser,
      cluster, namespace: 'test', backupName: `${cluster}-manual`, instance: `${cluster}-1`, log, ...extra,
    }),
    async stop() {
      await source.stop();
      await s3.stop();
      await removeDir(dir);
    },
  };
}
