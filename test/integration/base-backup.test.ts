// takeBaseBackup against a real PostgreSQL 15 (pgbench data, WAL archived by WalArchiver) and a
// real S3 server (s3rver): the stored object and its manifest, clean failures, a replica source.
import { createHash } from 'node:crypto';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createGunzip } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { archiveKeys } from '../../src/backup/archive-layout.js';
import { backupIdAt, takeBaseBackup, type BaseBackupOptions } from '../../src/backup/base-backup.js';
import { listBackups, parseManifest } from '../../src/backup/catalog.js';
import type { ObjectStore } from '../../src/backup/object-store.js';
import { walNameForLsn } from '../../src/postgres/wal-names.js';
import { compareLsn } from '../../src/postgres/lsn.js';
import { createLogger, type LogLevel } from '../../src/runtime/logger.js';
import { startBackupRig, TestPostgres, type ArchivedPrimary, type BackupRig } from './pg-fixture.js';
import { ensureDir } from './wal-postgres.js';

const log = createLogger((process.env.PGPILOT_TEST_LOG_LEVEL as LogLevel | undefined) ?? 'error', 'test');
const PATH = 'pgpilot/test/bb-source';

async function sha256Of(stream: NodeJS.ReadableStream): Promise<{ hex: string; bytes: number }> {
  const h = createHash('sha256');
  let bytes = 0;
  for await (const c of stream) {
    h.update(c as Buffer);
    bytes += (c as Buffer).length;
  }
  return { hex: h.digest('hex'), bytes };
}

describe('base backups of PostgreSQL 15 into S3', () => {
  let rig: BackupRig;
  let store: ObjectStore;
  let source: ArchivedPrimary;
  let replica: TestPostgres | undefined;
  const options = (server: TestPostgres, extra: Partial<BaseBackupOptions> = {}) => rig.backupOptions(extra, server);

  beforeAll(async () => {
    rig = await startBackupRig('base-backups', PATH, log);
    ({ store, source } = rig);
  });

  afterAll(async () => {
    await replica?.stop('immediate');
    await rig?.stop();
  });

  it('streams a backup of pgbench data into the store, verified, with its manifest written last', async () => {
    const progress: number[] = [];
    const started = Date.now();
    const m = await takeBaseBackup(options(source.server, { onProgress: (b) => progress.push(b) }));
    const seconds = (Date.now() - started) / 1000;
    console.log(`[base-backup] pgbench scale 2: ${(m.dataBytes / 2 ** 20).toFixed(1)} MiB tar → ${(m.storedBytes / 2 ** 20).toFixed(1)} MiB gzip-1 in ${seconds.toFixed(2)} s`);

    const [server] = await source.server.query<{ id: string; v: string; start: string; stop: string }>(
      `select system_identifier::text as id, current_setting('server_version_num') as v, pg_walfile_name($1) as start, pg_walfile_name($2) as stop from pg_control_system()`,
      [m.startLsn, m.stopLsn],
    );
    expect(m.id).toMatch(/^\d{8}T\d{6}Z$/);
    expect(m.id).toBe(backupIdAt(new Date(m.startTime)));
    expect(m).toMatchObject({ cluster: 'bb-source', namespace: 'test', backupName: 'bb-source-manual', instance: 'bb-source-1', fromReplica: false, timeline: 1, systemIdentifier: server!.id });
    expect(m.postgresVersion).toMatch(/^15\.\d+$/);
    expect(compareLsn(m.startLsn, m.stopLsn)).toBe(-1);
    // pg_walfile_name() names the segment holding the last byte before an LSN: the stop segment.
    expect(m.startWal).toBe(server!.start);
    expect(m.startWal).toBe(walNameForLsn(m.startLsn, 1));
    expect(m.stopWal).toBe(server!.stop);
    expect(Date.parse(m.stopTime)).toBeGreaterThanOrEqual(Date.parse(m.startTime));
    expect(m.dataBytes).toBeGreaterThan(30 * 2 ** 20);
    expect(m.storedBytes).toBeLessThan(m.dataBytes / 2);
    expect(m.compression).toEqual({ algorithm: 'gzip', level: 1 });
    expect(progress.at(-1)).toBe(m.dataBytes);

    // What is stored is what the manifest says, byte for byte.
    const key = archiveKeys.baseData(PATH, m.id);
    const stored = await sha256Of(await store.get(key));
    expect(stored).toEqual({ hex: m.storedSha256, bytes: m.storedBytes });
    const raw = await sha256Of((await store.get(key)).pipe(createGunzip()));
    expect(raw).toEqual({ hex: m.dataSha256, bytes: m.dataBytes });
    const manifestKey = archiveKeys.baseManifest(PATH, m.id);
    expect(parseManifest((await store.getBuffer(manifestKey)).toString('utf8'), manifestKey)).toEqual(m);
    expect(await store.head(archiveKeys.wal(PATH, m.stopWal))).not.toBeNull();
    const listing = await listBackups(store, PATH);
    expect(listing.backups.map((b) => b.id)).toContain(m.id);
    expect(listing.incomplete).toEqual([]);
  });

  it('fails with the server message and leaves nothing when pg_basebackup cannot log in', async () => {
    const before = (await store.list(archiveKeys.basePrefix(PATH))).map((o) => o.key);
    const err = await takeBaseBackup(options(source.server, { replication: { username: 'replicator', password: 'wrong' } })).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(/^base backup \d{8}T\d{6}Z failed: pg_basebackup failed \(exit code 1\): .*password authentication failed for user "replicator"/);
    expect((await store.list(archiveKeys.basePrefix(PATH))).map((o) => o.key)).toEqual(before);
  });

  it('stops pg_basebackup and stores nothing when cancelled mid-stream', async () => {
    const before = (await store.list(archiveKeys.basePrefix(PATH))).map((o) => o.key);
    const ac = new AbortController();
    const err = await takeBaseBackup(options(source.server, { signal: ac.signal, onProgress: (b) => b > 4 * 2 ** 20 && ac.abort() })).catch((e: Error) => e);
    expect((err as Error).message).toMatch(/^base backup \d{8}T\d{6}Z failed: cancelled/);
    // The walsender's backup ends with its client.
    const until = Date.now() + 10_000;
    while ((await source.server.query<{ n: number }>('select count(*)::int as n from pg_stat_progress_basebackup'))[0]!.n > 0) {
      expect(Date.now()).toBeLessThan(until);
      await sleep(100);
    }
    expect((await store.list(archiveKeys.basePrefix(PATH))).map((o) => o.key)).toEqual(before);
  });

  it('fails naming the missing segment when the WAL does not reach the archive, and writes no manifest', async () => {
    // Another path of the same store: this server's WAL is archived elsewhere.
    const other = 'pgpilot/test/no-wal-here';
    const started = Date.now();
    const err = await takeBaseBackup(options(source.server, { path: other, walTimeoutMs: 2000, pollMs: 200 })).catch((e: Error) => e);
    expect((err as Error).message).toMatch(
      /^base backup \d{8}T\d{6}Z: WAL segment [0-9A-F]{24}, which the backup needs to be consistent, is not in the archive \(s3:\/\/base-backups\/pgpilot\/test\/no-wal-here\/wal\/[0-9A-F]{16}\/[0-9A-F]{24}\.gz\) after 2 s/,
    );
    expect(Date.now() - started).toBeLessThan(60_000);
    expect(await store.list(`${other}/`)).toEqual([]);
  });

  it('bounds how long PostgreSQL may wait for archive_command at the end of the backup', async () => {
    const before = (await store.list(archiveKeys.basePrefix(PATH))).map((o) => o.key);
    await source.archiver.stop(); // archive_command now waits for markers that never come
    try {
      const err = await takeBaseBackup(options(source.server, { walTimeoutMs: 1000 })).catch((e: Error) => e);
      expect((err as Error).message).toMatch(/^base backup \d{8}T\d{6}Z failed: PostgreSQL has waited more than 1 s for archive_command to archive the backup's last WAL segment: is WAL archiving working\?/);
      expect((await store.list(archiveKeys.basePrefix(PATH))).map((o) => o.key)).toEqual(before);
    } finally {
      await source.archiver.start();
    }
  });

  it('backs up a replica, with the WAL switch done on the primary', async () => {
    const replicaDir = path.join(rig.dir, 'replica');
    await ensureDir(replicaDir);
    await source.server.tool('pg_basebackup', ['-D', path.join(replicaDir, 'pgdata'), '-R', '-X', 'stream', '-c', 'fast']);
    replica = await TestPostgres.open(path.join(replicaDir, 'pgdata'), source.server, { hot_standby: 'on' });
    await replica.start();
    await source.server.query('insert into pgbench_history (tid, bid, aid, delta, mtime) values (1, 1, 1, 1, now())');
    let switched = 0;
    const m = await takeBaseBackup(options(replica, {
      instance: 'bb-source-2',
      switchWal: async () => {
        switched++;
        await source.server.query('select pg_switch_wal()');
      },
    }));
    expect(m).toMatchObject({ fromReplica: true, instance: 'bb-source-2', timeline: 1 });
    expect(switched).toBe(1);
    expect(await store.head(archiveKeys.wal(PATH, m.stopWal))).not.toBeNull();
    expect(await store.head(archiveKeys.baseManifest(PATH, m.id))).not.toBeNull();
  });
});
