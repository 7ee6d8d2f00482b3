// WalArchiver with a real PostgreSQL 15 (archive_command = the shell handoff) and a real S3 server.
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { archiveKeys, type ArchiveIdentity } from '../../src/backup/archive-layout.js';
import { archiveCommand } from '../../src/postgres/handoff.js';
import type { ObjectStore } from '../../src/backup/object-store.js';
import { openStore } from '../../src/backup/open-store.js';
import { WalArchiver } from '../../src/backup/wal-archiver.js';
import { isSegmentName } from '../../src/postgres/wal-names.js';
import { createLogger, type LogLevel } from '../../src/runtime/logger.js';
import { startS3rver, type S3rver } from '../support/s3rver.js';
import { ensureDir, PgServer, pgTempDir, removeDir } from './wal-postgres.js';

// PGPILOT_TEST_LOG_LEVEL=debug shows each archived or served file.
const log = createLogger((process.env.PGPILOT_TEST_LOG_LEVEL as LogLevel | undefined) ?? 'error', 'test');
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitUntil(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 60_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

async function statusFiles(pgdata: string): Promise<string[]> {
  return readdir(path.join(pgdata, 'pg_wal', 'archive_status'));
}

/** Every segment in the store, gunzipped, has the bytes of the same file in pg_wal. */
async function expectStoreMatchesPgWal(store: ObjectStore, prefix: string, pgdata: string, names: string[]): Promise<void> {
  for (const name of names) {
    const local = await readFile(path.join(pgdata, 'pg_wal', name));
    const key = archiveKeys.wal(prefix, name);
    const stored = gunzipSync(await store.getBuffer(key));
    expect(sha(stored), name).toBe(sha(local));
    expect((await store.head(key))!.metadata.sha256).toBe(sha(local));
  }
}

describe('WalArchiver with PostgreSQL 15', () => {
  let s3: S3rver;
  let dir: string;
  let pgsrv: PgServer;
  let store: ObjectStore;
  let archiver: WalArchiver;
  let systemIdentifier: string;
  const prefix = 'pgpilot/test/archiving';

  beforeAll(async () => {
    s3 = await startS3rver({ buckets: ['wal-archive'] });
    store = openStore(s3.storeConfig('wal-archive'), s3.env);
    dir = await pgTempDir('pgpilot-archiver-');
    const markerDir = path.join(dir, 'archive-ready');
    await ensureDir(markerDir);
    pgsrv = await PgServer.init(dir, {
      wal_level: 'replica',
      archive_mode: 'on',
      // Long enough to ride out the outage below without a PostgreSQL-level failure.
      archive_command: archiveCommand(markerDir, 60),
      // Keep archived segments in pg_wal so the test can compare them with the store.
      wal_keep_size: '2GB',
      max_wal_size: '2GB',
      checkpoint_timeout: '1h',
    });
    await pgsrv.start();
    systemIdentifier = (await pgsrv.query<{ id: string }>('select system_identifier::text as id from pg_control_system()'))[0]!.id;
    archiver = new WalArchiver({
      pgdata: pgsrv.pgdata,
      markerDir,
      store,
      path: prefix,
      level: 1,
      identity: async () => ({ systemIdentifier, cluster: 'archiving', namespace: 'test' }),
      log,
      retryCapMs: 2000,
    });
    await archiver.start();
  });

  afterAll(async () => {
    await archiver?.stop();
    await pgsrv?.stop('immediate');
    await s3?.stop();
    if (dir) await removeDir(dir);
  });

  async function switchWal(rows: number): Promise<string> {
    await pgsrv.query(`insert into t select g, repeat('x', 200) from generate_series(1, ${rows}) g`);
    return (await pgsrv.query<{ f: string }>('select pg_walfile_name(pg_switch_wal()) as f'))[0]!.f;
  }

  async function waitArchived(name: string): Promise<void> {
    await waitUntil(`${name} archived by PostgreSQL`, async () => {
      const [row] = await pgsrv.query<{ last: string | null }>('select last_archived_wal as last from pg_stat_archiver');
      const files = await statusFiles(pgsrv.pgdata);
      return row!.last !== null && row!.last >= name && !files.some((f) => f.endsWith('.ready'));
    });
  }

  it('archives every segment, byte for byte, and claims the location', async () => {
    await pgsrv.query('create table t (id int, pad text)');
    // ~100 MB of WAL in one go (several full segments; hex text compresses about 2:1), then a few
    // small switched segments.
    await pgsrv.query(`insert into t select g, md5(g::text) || md5(random()::text) || md5(random()::text) from generate_series(1, 500000) g`);
    let last = '';
    for (let i = 0; i < 4; i++) last = await switchWal(1000);
    await waitArchived(last);

    const done = (await statusFiles(pgsrv.pgdata)).filter((f) => f.endsWith('.done')).map((f) => f.slice(0, -5));
    const segments = done.filter(isSegmentName).sort();
    expect(segments.length).toBeGreaterThanOrEqual(8);
    await expectStoreMatchesPgWal(store, prefix, pgsrv.pgdata, segments);
    const stored = (await store.list(archiveKeys.walPrefix(prefix))).length;
    expect(stored).toBe(done.length);

    const [stats] = await pgsrv.query<{ archived_count: string; failed_count: string }>('select archived_count, failed_count from pg_stat_archiver');
    expect(Number(stats!.failed_count)).toBe(0);
    expect(Number(stats!.archived_count)).toBe(done.length);
    const st = archiver.status();
    expect(st).toMatchObject({ lastArchivedWal: expect.any(String), lastFailure: null, inFlight: 0, archivedCount: done.length });
    expect(st.bytesStored).toBeLessThan(st.bytesIn);
    expect(new Date(st.lastArchivedTime!).toISOString()).toBe(st.lastArchivedTime);

    const identity = JSON.parse((await store.getBuffer(archiveKeys.identity(prefix))).toString()) as ArchiveIdentity;
    expect(identity).toMatchObject({ systemIdentifier, cluster: 'archiving', namespace: 'test' });
  });

  // How fast this goes is measured by `npm run bench -- archiver` (bench/archiver.ts), not here.
  it('archives back-to-back segment switches and a backlog of full segments, byte for byte', async () => {
    const switched: string[] = [];
    for (let i = 0; i < 20; i++) switched.push(await switchWal(10));
    await waitArchived(switched.at(-1)!);
    expect(new Set(switched).size).toBe(20);
    await expectStoreMatchesPgWal(store, prefix, pgsrv.pgdata, switched);

    // A backlog: full segments piled up while the archiver was stopped, then uploaded in parallel.
    await archiver.stop();
    await pgsrv.query(`insert into t select g, md5(g::text) || md5(random()::text) || md5(random()::text) from generate_series(1, 1000000) g`);
    const last = (await pgsrv.query<{ f: string }>('select pg_walfile_name(pg_switch_wal()) as f'))[0]!.f;
    const backlog = (await statusFiles(pgsrv.pgdata)).filter((f) => f.endsWith('.ready')).map((f) => f.slice(0, -6)).filter(isSegmentName).sort();
    // More waiting than the archiver uploads at once (4), the last one among them.
    expect(backlog.length).toBeGreaterThan(4);
    expect(backlog).toContain(last);
    const before = archiver.status().archivedCount;
    await archiver.start();
    await waitArchived(last);
    expect(archiver.status()).toMatchObject({ lastFailure: null, inFlight: 0 });
    expect(archiver.status().archivedCount - before).toBeGreaterThanOrEqual(backlog.length);
    await expectStoreMatchesPgWal(store, prefix, pgsrv.pgdata, backlog);
    const [stats] = await pgsrv.query<{ failed_count: string }>('select failed_count from pg_stat_archiver');
    expect(Number(stats!.failed_count)).toBe(0);
  });

  it('keeps segments in pg_wal through a store outage and archives them when it returns', async () => {
    await s3.kill();
    const during: string[] = [];
    for (let i = 0; i < 4; i++) during.push(await switchWal(500));
    await waitUntil('the archiver to report the failure', () => archiver.status().lastFailure !== null, 30_000);
    // A checkpoint recycles only what is archived: these must survive it.
    await pgsrv.query('checkpoint');
    await sleep(1000);
    const files = await statusFiles(pgsrv.pgdata);
    for (const name of during) {
      expect(files, name).toContain(`${name}.ready`);
      expect(files, name).not.toContain(`${name}.done`);
      expect(existsSync(path.join(pgsrv.pgdata, 'pg_wal', name))).toBe(true);
    }
    const st = archiver.status();
    expect(st.lastFailure).toMatch(/ECONNREFUSED/);
    expect(st.lastFailure).toContain(s3.endpoint);
    expect(during).toContain(st.lastFailedWal);
    expect(st.backlogSegments).toBeGreaterThanOrEqual(during.length);

    await s3.restart();
    // No poke: the archiver retries on its own and the waiting archive_command returns.
    await waitArchived(during.at(-1)!);
    await expectStoreMatchesPgWal(store, prefix, pgsrv.pgdata, during);
    expect(archiver.status().backlogSegments).toBe(0);
  });
});

describe('WalArchiver without PostgreSQL', () => {
  let s3: S3rver;
  let dir: string;
  beforeAll(async () => {
    s3 = await startS3rver({ buckets: ['wal-identity'] });
    dir = await pgTempDir('pgpilot-archiver-fake-');
  });
  afterAll(async () => {
    await s3?.stop();
    if (dir) await removeDir(dir);
  });

  /** A data directory with one finished segment waiting to be archived. */
  async function fakePgdata(name: string, segment: string): Promise<{ pgdata: string; markerDir: string; bytes: Buffer }> {
    const pgdata = path.join(dir, name, 'pgdata');
    await mkdir(path.join(pgdata, 'pg_wal', 'archive_status'), { recursive: true });
    const bytes = randomBytes(1024 * 1024);
    await writeFile(path.join(pgdata, 'pg_wal', segment), bytes);
    await writeFile(path.join(pgdata, 'pg_wal', 'archive_status', `${segment}.ready`), '');
    return { pgdata, markerDir: path.join(dir, name, 'markers'), bytes };
  }

  it('refuses to archive into the archive of another database', async () => {
    const store = openStore(s3.storeConfig('wal-identity'), s3.env);
    const prefix = 'pgpilot/test/taken';
    const theirs: ArchiveIdentity = { systemIdentifier: '7000000000000000001', cluster: 'old', namespace: 'prod', createdAt: new Date().toISOString() };
    await store.put(archiveKeys.identity(prefix), Buffer.from(JSON.stringify(theirs)));
    const seg = '000000010000000000000001';
    const { pgdata, markerDir } = await fakePgdata('mismatch', seg);
    const archiver = new WalArchiver({
      pgdata, markerDir, store, path: prefix, level: 1, log, retryBaseMs: 100, retryCapMs: 200,
      identity: async () => ({ systemIdentifier: '7999999999999999999', cluster: 'new', namespace: 'prod' }),
    });
    await archiver.start();
    try {
      await waitUntil('a refusal', () => archiver.status().lastFailure !== null, 10_000);
      await sleep(500); // retries keep failing, never upload
      const st = archiver.status();
      expect(st.lastFailure).toContain(`s3://wal-identity/${archiveKeys.identity(prefix)}`);
      expect(st.lastFailure).toContain('7000000000000000001');
      expect(st.lastFailure).toContain('7999999999999999999');
      expect(st).toMatchObject({ lastFailedWal: seg, archivedCount: 0 });
      expect(existsSync(path.join(markerDir, seg))).toBe(false);
      expect((await store.list(archiveKeys.walPrefix(prefix))).length).toBe(0);
    } finally {
      await archiver.stop();
    }
  });

  it('writes the marker only after the upload, and removes stale markers', async () => {
    const store = openStore(s3.storeConfig('wal-identity'), s3.env);
    const seg = '000000010000000000000007';
    const { pgdata, markerDir, bytes } = await fakePgdata('fresh', seg);
    await mkdir(markerDir, { recursive: true });
    const archiver = new WalArchiver({
      pgdata, markerDir, store, path: 'pgpilot/test/fresh', level: 6, log, staleMarkerMs: 300,
      identity: async () => ({ systemIdentifier: '7111111111111111111', cluster: 'fresh', namespace: 'test' }),
    });
    await archiver.start();
    try {
      await waitUntil('the marker', () => existsSync(path.join(markerDir, seg)), 10_000);
      expect(sha(gunzipSync(await store.getBuffer(archiveKeys.wal('pgpilot/test/fresh', seg))))).toBe(sha(bytes));
      // PostgreSQL took it (archive_command removed the marker, .ready became .done) for one file;
      // for another, the .ready vanished without the marker being taken: that marker goes stale.
      const other = '000000010000000000000008';
      await writeFile(path.join(markerDir, other), '');
      await waitUntil('the stale marker to go', () => !existsSync(path.join(markerDir, other)), 5_000);
      expect(existsSync(path.join(markerDir, seg))).toBe(true); // its .ready is still there
    } finally {
      await archiver.stop();
    }
  });
});
