// Restores of base backups from a real S3 server (s3rver) into new data directories, replaying WAL
// archived by WalArchiver through WalFetcher and the restore_command handoff, with a real
// PostgreSQL 15: to the end of the archive, to a point in time, a corrupt backup object, and a
// restore after retention removed the oldest backup and its WAL.
import { lstat, readdir, readFile, readlink } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { archiveKeys, type BackupManifest } from '../../src/backup/archive-layout.js';
import { takeBaseBackup } from '../../src/backup/base-backup.js';
import { listBackups, listWal, recoveryWindow } from '../../src/backup/catalog.js';
import { restoreCommand } from '../../src/postgres/handoff.js';
import type { ObjectStore } from '../../src/backup/object-store.js';
import { chooseBaseBackup, recoverySettings, type RecoveryTarget } from '../../src/backup/recovery-plan.js';
import { clearRecoveryConfig, restoreBaseBackup, writeRecoveryConfig } from '../../src/backup/restore.js';
import { applyRetention, planRetention, walToDelete } from '../../src/backup/retention.js';
import { WalFetcher } from '../../src/backup/wal-fetcher.js';
import { isHistoryFile } from '../../src/postgres/wal-names.js';
import { createLogger, type LogLevel } from '../../src/runtime/logger.js';
import { startBackupRig, TestPostgres, type ArchivedPrimary, type BackupRig } from './pg-fixture.js';
import { ensureDir, giveToPostgres, pgOwner } from './wal-postgres.js';

const log = createLogger((process.env.PGPILOT_TEST_LOG_LEVEL as LogLevel | undefined) ?? 'error', 'test');
const PATH = 'pgpilot/test/restore-source';

interface State {
  accounts: number;
  checksum: string;
  marks: number[];
}

async function state(server: TestPostgres): Promise<State> {
  const [a] = await server.query<{ n: number; s: string }>(`select count(*)::int as n, md5(string_agg(aid || ':' || abalance, ',' order by aid)) as s from pgbench_accounts`);
  const marks = await server.query<{ id: number }>('select id from marks order by id');
  return { accounts: a!.n, checksum: a!.s, marks: marks.map((r) => r.id) };
}

describe('restoring base backups from S3 with PostgreSQL 15', () => {
  let rig: BackupRig;
  let store: ObjectStore;
  let dir: string;
  let source: ArchivedPrimary;
  let first: BackupManifest;
  let betweenMarks: string;
  let latest: State;
  const running: { server: TestPostgres; fetcher: WalFetcher }[] = [];

  const backup = () => takeBaseBackup(rig.backupOptions());

  beforeAll(async () => {
    rig = await startBackupRig('restores', PATH, log);
    ({ store, dir, source } = rig);
    await source.server.query('create table marks (id int primary key, at timestamptz default clock_timestamp())');
    first = await backup();
    // WAL after the backup: pgbench transactions, then two commits with a known time between them.
    await source.server.tool('pgbench', ['-n', '-c', '2', '-t', '1000', 'postgres']);
    await source.server.query('insert into marks (id) values (1)');
    await sleep(1100);
    betweenMarks = (await source.server.query<{ t: Date }>('select clock_timestamp() as t'))[0]!.t.toISOString();
    await sleep(1100);
    await source.server.query('insert into marks (id) values (2)');
    await source.archiveNow();
    latest = await state(source.server);
  });

  afterAll(async () => {
    for (const r of running) {
      await r.server.stop('immediate');
      await r.fetcher.stop();
    }
    await rig?.stop();
  });

  /** Restores `manifest` into <dir>/<name> (pg_wal in a separate directory) and recovers towards `target`. */
  async function restoreAndRecover(name: string, manifest: BackupManifest, target: RecoveryTarget) {
    const work = path.join(dir, name);
    await ensureDir(work);
    const pgdata = path.join(work, 'pgdata');
    const walDir = path.join(work, 'wal');
    const progress: number[] = [];
    const restored = await restoreBaseBackup({ store, path: PATH, manifest, pgdata, walDir, log, onProgress: (b) => progress.push(b) });
    expect(progress.at(-1)).toBe(manifest.storedBytes);
    const spool = path.join(work, 'spool');
    const fetcher = new WalFetcher({ spoolDir: spool, store, path: PATH, log, ...(pgOwner ? { owner: pgOwner } : {}) });
    await fetcher.start();
    await writeRecoveryConfig(pgdata, recoverySettings(target, restoreCommand(spool, 60)));
    await giveToPostgres(work);
    // A restored cluster must not archive into its source's archive.
    const server = await TestPostgres.open(pgdata, source.server, { archive_mode: 'off' });
    running.push({ server, fetcher });
    const started = Date.now();
    await server.start(false);
    await server.waitPromoted();
    const recoverySeconds = (Date.now() - started) / 1000;
    return { server, fetcher, pgdata, walDir, restoreSeconds: restored.seconds, recoverySeconds };
  }

  it('restores the newest backup and replays the archive to its end', async () => {
    const { backups } = await listBackups(store, PATH);
    const window = recoveryWindow(backups, await listWal(store, PATH));
    const chosen = chooseBaseBackup({ backups, window, target: {}, location: `${store.location}/${PATH}` });
    expect(chosen.id).toBe(first.id);
    const r = await restoreAndRecover('latest', chosen, {});
    console.log(
      `[restore] ${(first.dataBytes / 2 ** 20).toFixed(1)} MiB backup (${(first.storedBytes / 2 ** 20).toFixed(1)} MiB stored) restored in ${r.restoreSeconds.toFixed(2)} s, ` +
        `WAL replayed and promoted in ${r.recoverySeconds.toFixed(2)} s (${r.fetcher.stats().requested} files requested)`,
    );
    expect(await state(r.server)).toEqual(latest);
    // pg_wal is a symlink to the WAL directory, as initdb --waldir makes it.
    expect((await lstat(path.join(r.pgdata, 'pg_wal'))).isSymbolicLink()).toBe(true);
    expect(await readlink(path.join(r.pgdata, 'pg_wal'))).toBe(r.walDir);
    const auto = await readFile(path.join(r.pgdata, 'postgresql.auto.conf'), 'utf8');
    expect(auto).toContain("recovery_target_action = 'promote'");
    expect(auto).toContain("restore_command = '/bin/sh -c ''");
    await r.server.stop('fast');
    await clearRecoveryConfig(r.pgdata);
    const cleared = await readFile(path.join(r.pgdata, 'postgresql.auto.conf'), 'utf8');
    expect(cleared).not.toMatch(/restore_command|recovery_target/);
    expect(await readdir(r.pgdata)).not.toContain('recovery.signal');
    // It starts again as a primary without recovery settings.
    await r.server.start();
    expect((await r.server.query<{ r: boolean }>('select pg_is_in_recovery() as r'))[0]!.r).toBe(false);
    await r.server.stop('fast');
  });

  it('recovers to a point in time between two commits, exactly', async () => {
    const { backups } = await listBackups(store, PATH);
    const window = recoveryWindow(backups, await listWal(store, PATH));
    const target = { time: betweenMarks };
    const chosen = chooseBaseBackup({ backups, window, target, location: `${store.location}/${PATH}` });
    const r = await restoreAndRecover('pitr', chosen, target);
    expect(await state(r.server)).toEqual({ ...latest, marks: [1] });
    await r.server.stop('fast');
  });

  it('refuses a corrupt backup object, naming it, and leaves the data directory empty', async () => {
    const key = archiveKeys.baseData(PATH, first.id);
    const original = await store.getBuffer(key);
    const pgdata = path.join(dir, 'corrupt', 'pgdata');
    try {
      for (const bad of [Buffer.from('this is not gzip at all'), gzipSync(Buffer.from('valid gzip, but not the backup'))]) {
        await store.put(key, bad);
        const err = await restoreBaseBackup({ store, path: PATH, manifest: first, pgdata, log }).catch((e: Error) => e);
        expect((err as Error).message).toMatch(
          new RegExp(`^backup object ${key} in s3://restores is corrupt: sha256 [0-9a-f]{64} \\(${bad.length} bytes\\) expected ${first.storedSha256} \\(${first.storedBytes} bytes\\); sha256 of the tar .* expected ${first.dataSha256}$`),
        );
        expect(await readdir(pgdata)).toEqual([]);
      }
    } finally {
      await store.put(key, original);
    }
  });

  it('keeps the two newest of three backups with a count of 2, and the second still restores', async () => {
    await source.server.tool('pgbench', ['-n', '-c', '2', '-t', '300', 'postgres']);
    await source.archiveNow();
    await sleep(1000); // backup ids are seconds
    const second = await backup();
    await source.server.tool('pgbench', ['-n', '-c', '2', '-t', '300', 'postgres']);
    await source.archiveNow();
    await sleep(1000);
    const third = await backup();
    await source.server.query('insert into marks (id) values (3)');
    await source.archiveNow();
    const final = await state(source.server);

    const { backups, incomplete } = await listBackups(store, PATH);
    expect(backups.map((b) => b.id)).toEqual([first.id, second.id, third.id]);
    const walBefore = await listWal(store, PATH);
    const plan = planRetention(backups, { count: 2 }, new Date(), incomplete);
    expect(plan.keep.map((b) => b.id)).toEqual([second.id, third.id]);
    expect(plan.walBefore).toBe(second.startWal);
    const doomed = walToDelete(walBefore, plan.walBefore);
    expect(doomed.length).toBeGreaterThan(0);
    const result = await applyRetention(store, PATH, plan, walBefore);
    expect(result).toEqual({ backups: 1, incompleteBackups: 0, walFiles: doomed.length });

    expect(await store.list(`${archiveKeys.basePrefix(PATH)}${first.id}/`)).toEqual([]);
    expect((await listBackups(store, PATH)).backups.map((b) => b.id)).toEqual([second.id, third.id]);
    const walAfter = await listWal(store, PATH);
    const position = (name: string) => name.slice(8, 24);
    for (const w of walAfter) if (!isHistoryFile(w.name)) expect(position(w.name) >= position(second.startWal)).toBe(true);
    expect(walAfter.length).toBe(walBefore.length - doomed.length);

    const r = await restoreAndRecover('after-retention', second, {});
    expect(await state(r.server)).toEqual(final);
    await r.server.stop('fast');
  });
});
