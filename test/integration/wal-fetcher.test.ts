// WalFetcher serving a real PostgreSQL 15 recovery (restore_command = the shell handoff) from WAL
// archived to a real S3 server by WalArchiver.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { archiveKeys } from '../../src/backup/archive-layout.js';
import { archiveCommand, restoreCommand } from '../../src/postgres/handoff.js';
import type { ObjectStore } from '../../src/backup/object-store.js';
import { openStore } from '../../src/backup/open-store.js';
import { WalArchiver } from '../../src/backup/wal-archiver.js';
import { WalFetcher } from '../../src/backup/wal-fetcher.js';
import { nextWalName, walNameForLsn } from '../../src/postgres/wal-names.js';
import { createLogger, type LogLevel } from '../../src/runtime/logger.js';
import { startS3rver, type S3rver } from '../support/s3rver.js';
import { ensureDir, freePort, giveToPostgres, pgOwner, PgServer, pgTempDir, removeDir, runPgTool } from './wal-postgres.js';

const execFileAsync = promisify(execFile);
// PGPILOT_TEST_LOG_LEVEL=debug shows each archived or served file.
const log = createLogger((process.env.PGPILOT_TEST_LOG_LEVEL as LogLevel | undefined) ?? 'error', 'test');
const PREFIX = 'pgpilot/test/source';

async function waitUntil(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 60_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

describe('WalFetcher serving PostgreSQL 15 recovery', () => {
  let s3: S3rver;
  let store: ObjectStore;
  let dir: string;
  let baseCopy: string;
  let expectedRows: number;
  let expectedSum: string;
  let backupStartWal: string;
  let lastWal: string;

  beforeAll(async () => {
    s3 = await startS3rver({ buckets: ['wal-fetch'] });
    store = openStore(s3.storeConfig('wal-fetch'), s3.env);
    dir = await pgTempDir('pgpilot-fetcher-');
    const markerDir = path.join(dir, 'archive-ready');
    await ensureDir(markerDir);
    const primary = await PgServer.init(path.join(dir, 'primary'), {
      wal_level: 'replica',
      archive_mode: 'on',
      archive_command: archiveCommand(markerDir),
      max_wal_senders: 4,
    });
    await primary.start();
    const [{ id: systemIdentifier }] = (await primary.query<{ id: string }>('select system_identifier::text as id from pg_control_system()')) as [{ id: string }];
    const archiver = new WalArchiver({
      pgdata: primary.pgdata, markerDir, store, path: PREFIX, level: 1, log,
      identity: async () => ({ systemIdentifier, cluster: 'source', namespace: 'test' }),
    });
    await archiver.start();
    try {
      await primary.query('create table t (id int primary key, pad text)');
      await primary.query(`insert into t select g, md5(g::text) from generate_series(1, 1000) g`);
      // The base copy: WAL not included (-X none), recovery takes it all from the archive.
      const base = path.join(dir, 'base');
      await runPgTool('pg_basebackup', ['-h', '127.0.0.1', '-p', String(primary.port), '-U', 'postgres', '-D', base, '-X', 'none', '-c', 'fast']);
      const label = await readFile(path.join(base, 'backup_label'), 'utf8');
      backupStartWal = /START WAL LOCATION: \S+ \(file ([0-9A-F]{24})\)/.exec(label)![1]!;
      // WAL after the backup: several full segments and a few switches.
      for (let i = 0; i < 4; i++) {
        await primary.query(`insert into t select g, md5(g::text) || md5(random()::text) || repeat(md5(random()::text), 4) from generate_series(${i * 100_000 + 1001}, ${(i + 1) * 100_000 + 1000}) g`);
        await primary.query('select pg_switch_wal()');
      }
      const [row] = await primary.query<{ n: string; s: string; lsn: string }>('select count(*) as n, sum(id)::text as s, pg_current_wal_lsn()::text as lsn from t');
      expectedRows = Number(row!.n);
      expectedSum = row!.s;
      lastWal = (await primary.query<{ f: string }>('select pg_walfile_name(pg_switch_wal()) as f'))[0]!.f;
      await waitUntil('the last segment in the archive', async () => (await store.head(archiveKeys.wal(PREFIX, lastWal))) !== null);
      await primary.stop('fast');
      // Keep a pristine copy for the second recovery (a recovery changes its data directory).
      baseCopy = path.join(dir, 'base-copy');
      await execFileAsync('cp', ['-a', base, baseCopy]);
    } finally {
      await archiver.stop();
      await primary.stop('immediate');
    }
  });

  afterAll(async () => {
    await s3?.stop();
    if (dir) await removeDir(dir);
  });

  /** A recovery of a copy of the base backup, served by a WalFetcher through spool. */
  async function recover(name: string, source: string): Promise<{ pgsrv: PgServer; fetcher: WalFetcher }> {
    const work = path.join(dir, name);
    await mkdir(work, { recursive: true });
    const pgdata = path.join(work, 'pgdata');
    await execFileAsync('cp', ['-a', source, pgdata]);
    await writeFile(path.join(pgdata, 'recovery.signal'), '');
    const spool = path.join(work, 'spool');
    // The fetcher runs as root here and postgres as `postgres`: hand postgres its files.
    const fetcher = new WalFetcher({ spoolDir: spool, store, path: PREFIX, log, prefetch: 8, ...(pgOwner ? { owner: pgOwner } : {}) });
    await fetcher.start();
    await giveToPostgres(work);
    const pgsrv = new PgServer(pgdata, await freePort(), {
      restore_command: restoreCommand(spool, 60),
      archive_mode: 'off',
      recovery_target_timeline: 'latest',
    });
    await pgsrv.start(false);
    return { pgsrv, fetcher };
  }

  it('serves every segment to a recovery that replays to the end of the archive, prefetching ahead', async () => {
    const started = Date.now();
    const { pgsrv, fetcher } = await recover('restore-ok', baseCopy);
    try {
      await waitUntil(
        'the recovery to finish and promote',
        async () => {
          if (!pgsrv.running) throw new Error(`postgres exited during recovery:\n${pgsrv.log.slice(-3000)}`);
          try {
            return (await pgsrv.query<{ r: boolean }>('select pg_is_in_recovery() as r'))[0]!.r === false;
          } catch {
            return false;
          }
        },
        90_000,
      );
      const seconds = (Date.now() - started) / 1000;
      const [row] = await pgsrv.query<{ n: string; s: string }>('select count(*) as n, sum(id)::text as s from t');
      expect(Number(row!.n)).toBe(expectedRows);
      expect(row!.s).toBe(expectedSum);
      // A new timeline after promotion: 2.
      expect((await pgsrv.query<{ tli: number }>('select timeline_id as tli from pg_control_checkpoint()'))[0]!.tli).toBe(2);
      const stats = fetcher.stats();
      expect(stats.failures).toBe(0);
      expect(stats.lastError).toBeNull();
      expect(stats.servedFromPrefetch).toBeGreaterThan(0);
      expect(stats.requested).toBeGreaterThanOrEqual(5);
      expect(pgsrv.log).toContain(`restored log file "${lastWal}" from archive`);
      expect(pgsrv.log).toContain(`restored log file "${backupStartWal}" from archive`);
      console.log(
        `recovery of ${expectedRows} rows through ${stats.requested} requests in ${seconds.toFixed(2)} s: ` +
          `${stats.servedFromPrefetch} from prefetch, ${stats.downloaded} downloads, avg ${stats.avgFetchMs} ms request→got`,
      );
    } finally {
      await pgsrv.stop('immediate');
      await fetcher.stop();
    }
  });

  it('aborts recovery (does not promote) on a corrupted segment, naming the object', async () => {
    // The segment after the backup's start: recovery cannot be consistent without it.
    const victim = nextWalName(backupStartWal);
    const key = archiveKeys.wal(PREFIX, victim);
    const head = await store.head(key);
    // Same metadata (the original checksum), other bytes.
    await store.put(key, gzipSync(randomBytes(16 * 1024 * 1024)), { metadata: head!.metadata });
    const { pgsrv, fetcher } = await recover('restore-corrupt', baseCopy);
    try {
      const code = await Promise.race([pgsrv.exited, sleep(60_000).then(() => 'still running')]);
      expect(code).not.toBe('still running');
      // Exit 127 reads "command not found" to PostgreSQL: fatal, recovery stops. The line before it
      // is the fetcher's reason, printed by restore_command to the server log.
      expect(pgsrv.log).toContain(`FATAL:  could not restore file "${victim}" from archive: command not found`);
      expect(pgsrv.log).toContain(`object s3://wal-fetch/${key} is corrupt: sha256 expected ${head!.metadata.sha256}, actual `);
      expect(pgsrv.log).not.toContain('database system is ready to accept connections');
      expect(pgsrv.log).not.toContain('selected new timeline ID');
      expect(existsSync(path.join(pgsrv.pgdata, 'recovery.signal'))).toBe(true);
      const stats = fetcher.stats();
      expect(stats.failures).toBe(1);
      expect(stats.lastError).toContain(key);
    } finally {
      await pgsrv.stop('immediate');
      await fetcher.stop();
    }
  });

  it('answers an absent history file as missing at once', async () => {
    const spool = path.join(dir, 'spool-history');
    const fetcher = new WalFetcher({ spoolDir: spool, store, path: PREFIX, log });
    await fetcher.start();
    try {
      await writeFile(path.join(spool, 'want', '00000009.history'), '');
      await waitUntil('the answer', () => existsSync(path.join(spool, 'missing', '00000009.history')), 5_000);
      expect(existsSync(path.join(spool, 'want', '00000009.history'))).toBe(false);
      // And a segment far past the end of the archive: missing as well.
      const beyond = walNameForLsn('F/0', 1);
      await writeFile(path.join(spool, 'want', beyond), '');
      await waitUntil('the answer', () => existsSync(path.join(spool, 'missing', beyond)), 5_000);
      expect(fetcher.stats()).toMatchObject({ failures: 0, requested: 2 });
    } finally {
      await fetcher.stop();
    }
  });
});
