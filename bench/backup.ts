// Benchmark `backup`: one PostgreSQL 15 server with pgbench data (scale 30 by default), one run,
// one machine, compared with pg_basebackup to local disk and with Debian's pgBackRest:
//
//   - archiving: WalArchiver (the real archive_command handoff, 4 uploads at a time) and
//     pgBackRest archive-push (synchronous, as archive_command) on the WAL of `pgbench -i`, timed
//     from the first .ready to the last .done while the load runs; the .ready backlog sampled
//     every 100 ms; the same with the WAL held back during the load and released at once (drain);
//   - base backups: pg_basebackup -Ft -X none to local disk, takeBaseBackup into s3rver (gzip 1;
//     also into the TLS s3rver), pgBackRest full backups into the TLS s3rver (gz 1, 1 and 2
//     processes; archive-check on, its own archive-push as archive_command);
//   - steady load (pgbench -c 4, archive_timeout 5 s, our archiver): age of the newest archived WAL;
//   - restore: restoreBaseBackup of our backup + replay of the WAL archived after it through
//     restoreCommand and WalFetcher until the copy is promoted and takes a write, checked against
//     the source (pgbench_accounts md5).
//
// Knobs: PGPILOT_BENCH_SCALE (30), PGPILOT_BENCH_STEADY_SECONDS (60), PGPILOT_BENCH_BACKUP_TRIALS (3),
// PGPILOT_BENCH_LOG_LEVEL (warn).
import { readdir, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { archiveKeys, type BackupManifest } from '../src/backup/archive-layout.js';
import { takeBaseBackup, type BaseBackupOptions } from '../src/backup/base-backup.js';
import { archiveCommand, restoreCommand } from '../src/postgres/handoff.js';
import type { ObjectStore } from '../src/backup/object-store.js';
import { openStore } from '../src/backup/open-store.js';
import { recoverySettings } from '../src/backup/recovery-plan.js';
import { restoreBaseBackup, writeRecoveryConfig } from '../src/backup/restore.js';
import { WalArchiver } from '../src/backup/wal-archiver.js';
import { WalFetcher } from '../src/backup/wal-fetcher.js';
import { createLogger, type LogLevel } from '../src/runtime/logger.js';
import { startS3rver, type S3rver } from '../test/support/s3rver.js';
import { TestPostgres } from '../test/integration/pg-fixture.js';
import { ensureDir, giveToPostgres, PG_BIN, pgOwner, pgTempDir, removeDir, requirePgTools } from '../test/integration/wal-postgres.js';
import { ArchiveStatusTracker, type ArchiveWindow } from './lib/archive-status.js';
import { cpuMeter, machineCpuMs, processCpuMs, selfCpuMs } from './lib/cpu.js';
import { PgBackRest, pgBackRestAvailable, PGBACKREST_BIN } from './lib/pgbackrest.js';
import { killRunningChildren, runTracked, runSuite } from './lib/run.js';
import { printReport } from './report.js';

const SCALE = Number(process.env.PGPILOT_BENCH_SCALE ?? 30);
const STEADY_SECONDS = Number(process.env.PGPILOT_BENCH_STEADY_SECONDS ?? 60);
const TOTAL_TIMEOUT_MS = 20 * 60_000;
const ARCHIVE_PATH = 'pgpilot/bench/source';
const ARCHIVE_CONCURRENCY = 4;
const BACKUP_TRIALS = Math.max(1, Number(process.env.PGPILOT_BENCH_BACKUP_TRIALS ?? 3));
const log = createLogger((process.env.PGPILOT_BENCH_LOG_LEVEL as LogLevel | undefined) ?? 'warn', 'bench');

const say = (msg: string) => process.stderr.write(`[backup] ${msg}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const now = () => Date.now(); // the same clock as ArchiveStatusTracker's
const secondsSince = (t: number) => (now() - t) / 1000;
const r2 = (n: number) => Math.round(n * 100) / 100;
const r1 = (n: number) => Math.round(n * 10) / 10;
const MiB = 2 ** 20;

// ---------------------------------------------------------------------------------------------
// Cleanup: everything started is stopped by pid, temp directories removed, on success, failure,
// SIGINT/SIGTERM or the overall timeout.
const cleanups: Array<{ what: string; run: () => Promise<unknown> }> = [];
let cleaning: Promise<void> | undefined;
function onCleanup(what: string, run: () => Promise<unknown>): void {
  cleanups.push({ what, run });
}
function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    killRunningChildren();
    while (cleanups.length > 0) {
      const c = cleanups.pop()!;
      const t0 = Date.now();
      // A step that hangs is named and passed over: the rest still runs and the process ends.
      let timer: NodeJS.Timeout | undefined;
      const bound = new Promise<void>((resolve) => (timer = setTimeout(() => {
        say(`cleanup of ${c.what} still running after 60 s: going on`);
        resolve();
      }, 60_000)));
      await Promise.race([c.run().catch((err: Error) => say(`cleanup of ${c.what} failed: ${err.message}`)), bound]);
      clearTimeout(timer);
      if (Date.now() - t0 > 5000) say(`cleanup of ${c.what} took ${Math.round((Date.now() - t0) / 1000)} s`);
    }
  })();
  return cleaning;
}
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    say(`${sig}: cleaning up`);
    void cleanup().finally(() => process.exit(130));
  });
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 300_000): Promise<string> {
  return runTracked(cmd, args, { label: `${path.basename(cmd)} ${args.join(' ')}`, env: { ...process.env, ...env }, timeoutMs });
}

// ---------------------------------------------------------------------------------------------

function pgbench(server: TestPostgres, args: string[], timeoutMs = 300_000): Promise<string> {
  return run(path.join(PG_BIN, 'pgbench'), ['-h', server.host, '-p', String(server.port), '-U', server.superuser.username, ...args, 'postgres'], { PGPASSWORD: server.superuser.password }, timeoutMs);
}

const sqlLiteral = (s: string) => `'${s.replace(/'/g, "''")}'`;

/** archive_command through ALTER SYSTEM + reload ('' holds WAL back: .ready files accumulate). */
async function setArchiveCommand(server: TestPostgres, command: string): Promise<void> {
  await server.query(`ALTER SYSTEM SET archive_command = ${sqlLiteral(command)}`);
  await server.query('SELECT pg_reload_conf()');
}

interface DbState {
  accounts: number;
  md5: string;
  history: number;
  tellers: string;
}

async function dbState(server: TestPostgres): Promise<DbState> {
  const [a] = await server.query<{ n: number; s: string }>(`select count(*)::int as n, md5(string_agg(aid::text || ':' || abalance::text, ',' order by aid)) as s from pgbench_accounts`);
  const [h] = await server.query<{ n: number }>('select count(*)::int as n from pgbench_history');
  const [t] = await server.query<{ s: string }>(`select md5(string_agg(tid::text || ':' || tbalance::text, ',' order by tid)) as s from pgbench_tellers`);
  return { accounts: a!.n, md5: a!.s, history: h!.n, tellers: t!.s };
}

/** Reads WAL and identity from `wal`, base backups from `data`: our backup's data over TLS, its WAL check where the archiver puts WAL. */
function splitStore(data: ObjectStore, wal: ObjectStore, archivePath: string): ObjectStore {
  const pick = (key: string) => (key.startsWith(archiveKeys.basePrefix(archivePath)) ? data : wal);
  return {
    location: data.location,
    put: (k, b, o) => pick(k).put(k, b, o),
    get: (k) => pick(k).get(k),
    getBuffer: (k) => pick(k).getBuffer(k),
    head: (k) => pick(k).head(k),
    list: (p) => pick(p).list(p),
    delete: async (keys) => {
      await data.delete(keys.filter((k) => pick(k) === data));
      await wal.delete(keys.filter((k) => pick(k) === wal));
    },
    check: () => data.check(),
  };
}

async function dirBytes(dir: string): Promise<number> {
  let total = 0;
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    total += e.isDirectory() ? await dirBytes(p) : (await stat(p)).size;
  }
  return total;
}

function describeWindow(w: ArchiveWindow): string {
  return `${w.segments} segments in ${r2(w.seconds)} s = ${r2(w.segmentsPerSecond)} seg/s (${Math.round(1000 / w.segmentsPerSecond)} ms/segment); .ready→.done avg ${Math.round(w.latencyMsAvg)} ms, max ${Math.round(w.latencyMsMax)} ms; backlog max ${w.backlogMax}`;
}

const verdict = (ok: boolean) => (ok ? 'met' : 'MISSED');

/** The run with the median time (the upper median of an even count). */
function medianRun<T extends { seconds: number }>(runs: T[]): T {
  return [...runs].sort((a, b) => a.seconds - b.seconds)[Math.floor(runs.length / 2)]!;
}

interface Timed<T> {
  value: T;
  seconds: number;
  /** Share of the machine's cores busy (with anything) meanwhile. */
  busyPct: number;
}

/** Runs f, timing it and the share of the machine's cores that were busy meanwhile. */
async function timed<T>(f: () => Promise<T>): Promise<Timed<T>> {
  const m0 = machineCpuMs();
  const t0 = process.hrtime.bigint();
  const value = await f();
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const m1 = machineCpuMs();
  return { value, seconds, busyPct: Math.round((100 * (m1.busy - m0.busy)) / (m1.total - m0.total)) };
}

async function main(): Promise<void> {
  requirePgTools();
  if (!pgBackRestAvailable()) throw new Error(`${PGBACKREST_BIN} not found (apt-get install pgbackrest; scripts/bench.sh does it)`);
  const benchStart = now();
  const loadStart = os.loadavg()[0]!;
  const pgbrVersion = (await run(PGBACKREST_BIN, ['version'])).trim();

  // --- Setup: two s3rvers (plain for ours, TLS for pgBackRest and ours-over-TLS), one server.
  const s3: S3rver = await startS3rver({ buckets: ['bench'] });
  onCleanup('s3rver', () => s3.stop());
  const s3tls: S3rver = await startS3rver({ buckets: ['pgbackrest', 'bench-tls'], tls: true });
  onCleanup('s3rver (TLS)', () => s3tls.stop());
  const store = openStore(s3.storeConfig('bench'), s3.env);
  const tlsStore = splitStore(openStore(s3tls.storeConfig('bench-tls'), s3tls.env), store, ARCHIVE_PATH);
  const dir = await pgTempDir('pgpilot-bench-backup-');
  onCleanup('temp directory', () => removeDir(dir));
  const srcDir = path.join(dir, 'source');
  const markerDir = path.join(srcDir, 'archive-markers');
  await ensureDir(markerDir);
  // Cleanups run last-registered first: the archiver outlives PostgreSQL, whose shutdown still
  // runs archive_command for what is .ready (each run waits for one of the archiver's markers).
  let archiver: WalArchiver | undefined;
  onCleanup('WAL archiver', async () => archiver?.stop());
  // archive_command is not on the command line, so ALTER SYSTEM + reload can switch it.
  // Large max_wal_size / checkpoint_timeout: no checkpoint lands in one load and not in another.
  const server = await TestPostgres.create(srcDir, { wal_level: 'replica', archive_mode: 'on', max_wal_senders: 5, max_wal_size: '8GB', checkpoint_timeout: '30min' });
  // Immediate: a fast shutdown's last archiving round is not what is measured, and it is gone with the directory.
  onCleanup('source PostgreSQL', () => server.stop('immediate'));
  const walDir = path.join(server.pgdata, 'pg_wal');
  const [{ id: sysid }] = (await server.query<{ id: string }>('select system_identifier::text as id from pg_control_system()')) as [{ id: string }];
  const startArchiver = async () => {
    archiver = new WalArchiver({
      pgdata: server.pgdata, markerDir, store, path: ARCHIVE_PATH, level: 1, concurrency: ARCHIVE_CONCURRENCY, log,
      identity: async () => ({ systemIdentifier: sysid, cluster: 'bench', namespace: 'bench' }),
    });
    await archiver.start();
  };
  const ours = archiveCommand(markerDir);
  const [{ pid: pgarchPid }] = (await server.query<{ pid: number }>(`select pid from pg_stat_activity where backend_type = 'archiver'`)) as [{ pid: number }];
  // CPU of archiving: ours = this process (WalArchiver: read, sha256, gzip on the thread pool,
  // upload) + s3rver + the archive_command shells; pgBackRest = its archive-push processes
  // (children of PostgreSQL's archiver) + the TLS s3rver.
  type Tool = 'ours' | 'pgbackrest';
  const meter = () =>
    cpuMeter({ self: selfCpuMs, s3: () => processCpuMs(s3.pid), s3tls: () => processCpuMs(s3tls.pid), archiveCommand: () => processCpuMs(pgarchPid, true), machine: () => machineCpuMs().busy, machineTotal: () => machineCpuMs().total });
  interface Measured {
    w: ArchiveWindow;
    cpuMsPerSegment: number;
    /** CPU-ms per segment by process: this process (ours), s3rver, archive_command runs. */
    parts: string;
    /** Share of the machine's cores busy (with anything) during the window. */
    machineBusyPct: number;
    /** pgBackRest only: mean archive-push duration, as it logs it (into the server's log). */
    pushMsAvg: number;
    loadSeconds: number;
  }
  const measured = async (tool: Tool, w: ArchiveWindow, cpu: Record<string, number>, pushesBefore: number, loadSeconds: number): Promise<Measured> => {
    const archivingCpu = tool === 'ours' ? cpu.self! + cpu.s3! + cpu.archiveCommand! : cpu.archiveCommand! + cpu.s3tls!;
    const pushes = tool === 'pgbackrest' ? PgBackRest.archivePushMs(server.log).slice(pushesBefore) : [];
    return {
      w,
      cpuMsPerSegment: w.segments ? archivingCpu / w.segments : NaN,
      parts: (tool === 'ours' ? [['node', cpu.self!], ['s3rver', cpu.s3!], ['archive_command', cpu.archiveCommand!]] : [['archive-push', cpu.archiveCommand!], ['s3rver', cpu.s3tls!]])
        .map(([k, v]) => `${k} ${Math.round((v as number) / Math.max(1, w.segments))}`)
        .join(' + '),
      machineBusyPct: (100 * cpu.machine!) / cpu.machineTotal!,
      pushMsAvg: pushes.length ? pushes.reduce((a, b) => a + b, 0) / pushes.length : NaN,
      loadSeconds,
    };
  };
  const describe = (m: Measured) =>
    `${describeWindow(m.w)}; ${Math.round(m.cpuMsPerSegment)} CPU-ms/segment (${m.parts})${Number.isNaN(m.pushMsAvg) ? '' : `, archive-push ${Math.round(m.pushMsAvg)} ms each`}; machine ${Math.round(m.machineBusyPct)}% busy`;
  const tracker = new ArchiveStatusTracker(walDir, 100);
  tracker.start();
  onCleanup('archive_status watch', async () => tracker.stop());

  const pgbr = new PgBackRest({ dir: path.join(dir, 'pgbackrest'), s3: s3tls, bucket: 'pgbackrest', pgdata: server.pgdata, port: server.port, socketDir: srcDir, compressLevel: 1 });
  await ensureDir(path.join(dir, 'pgbackrest'));
  await pgbr.writeConfig();

  // --- 1. Initial load with archiving held back, then our archiver drains the backlog.
  say(`pgbench -i -s ${SCALE} (initial load, WAL held back)`);
  let t = now();
  await pgbench(server, ['-i', '-s', String(SCALE), '-q']);
  const initSeconds = secondsSince(t);
  const [{ size: dbBytes }] = (await server.query<{ size: string }>(`select pg_database_size('postgres')::text as size`)) as [{ size: string }];
  await server.query('select pg_switch_wal()');
  say(`initial load ${r2(initSeconds)} s; database ${Math.round(Number(dbBytes) / MiB)} MiB; ${(await tracker.readyNow()).length} segments waiting`);
  await sleep(300);
  let cpu = meter();
  t = now();
  await startArchiver();
  await setArchiveCommand(server, ours);
  await tracker.waitArchived(0, 300_000, 'our archiver (drain)');
  const oursDrain = await measured('ours', tracker.window(t, now(), { backlog: true }), cpu(), 0, 0);
  say(`our drain: ${describe(oursDrain)}`);

  // --- 2. Our archiver during pgbench -i.
  const measureLoad = async (what: string, tool: Tool): Promise<Measured> => {
    await sleep(500);
    const pushesBefore = PgBackRest.archivePushMs(server.log).length;
    const cpu = meter();
    const since = now();
    say(`${what}: pgbench -i -s ${SCALE}`);
    await pgbench(server, ['-i', '-s', String(SCALE), '-q']);
    const loadSeconds = secondsSince(since);
    await server.query('select pg_switch_wal()');
    await tracker.waitArchived(since, 300_000, what);
    const m = await measured(tool, tracker.window(since, now()), cpu(), pushesBefore, loadSeconds);
    say(`${what}: load ${r2(loadSeconds)} s; ${describe(m)}`);
    return m;
  };
  const oursLoad = await measureLoad('our archiver', 'ours');

  // --- 3. pgBackRest: stanza (not timed), archive-push as archive_command during pgbench -i.
  say('pgBackRest stanza-create');
  await pgbr.stanzaCreate();
  await setArchiveCommand(server, pgbr.archiveCommand());
  await archiver!.stop();
  archiver = undefined;
  const pgbrLoad = await measureLoad('pgBackRest archive-push', 'pgbackrest');

  // --- 4. pgBackRest drain: WAL held back during the load, then released at once.
  await setArchiveCommand(server, '');
  await sleep(500);
  say(`pgbench -i -s ${SCALE} (WAL held back for pgBackRest's drain)`);
  await pgbench(server, ['-i', '-s', String(SCALE), '-q']);
  await server.query('select pg_switch_wal()');
  await sleep(300);
  const pushesBefore = PgBackRest.archivePushMs(server.log).length;
  cpu = meter();
  t = now();
  await setArchiveCommand(server, pgbr.archiveCommand());
  await tracker.waitArchived(0, 300_000, 'pgBackRest archive-push (drain)');
  const pgbrDrain = await measured('pgbackrest', tracker.window(t, now(), { backlog: true }), cpu(), pushesBefore, 0);
  say(`pgBackRest drain: ${describe(pgbrDrain)}`);

  // --- 5. Base backups of the same database, back to back.
  await server.query('checkpoint');
  say('pgBackRest full backup, process-max=1');
  const pgbrFull1 = await timed(() => pgbr.fullBackup(['--process-max=1']));
  say(`  ${r2(pgbrFull1.seconds)} s, machine ${pgbrFull1.busyPct}% busy`);
  say('pgBackRest full backup, process-max=2');
  const pgbrFull2 = await timed(() => pgbr.fullBackup(['--process-max=2']));
  say(`  ${r2(pgbrFull2.seconds)} s, machine ${pgbrFull2.busyPct}% busy`);
  const pgbrInfo = (await pgbr.info()) as Array<{ backup?: Array<{ info?: { size?: number; repository?: { size?: number } } }> }>;
  const pgbrLast = pgbrInfo[0]?.backup?.at(-1)?.info;

  // Back to our archiver for everything after this.
  await startArchiver();
  await setArchiveCommand(server, ours);
  await sleep(500);

  // pg_basebackup to disk and ours, alternated, BACKUP_TRIALS times each; the medians are
  // reported. Single runs vary by up to a second: at the end of a -X none backup PostgreSQL
  // checks whether the stop segment is archived and, when it is not yet, sleeps a whole second.
  const diskDir = path.join(dir, 'pg_basebackup');
  const backupOptions = (s: ObjectStore): BaseBackupOptions => ({
    store: s, path: ARCHIVE_PATH, pgBin: PG_BIN, host: server.host, port: server.port,
    replication: server.replication, sql: server.superuser, cluster: 'bench', namespace: 'bench',
    backupName: 'bench-manual', instance: 'bench-1', level: 1, log,
  });
  const diskRuns: Timed<string>[] = [];
  const oursRuns: Timed<BackupManifest>[] = [];
  let diskBytes = 0;
  for (let i = 1; i <= BACKUP_TRIALS; i++) {
    say(`pg_basebackup -Ft -X none -c fast to local disk (${i}/${BACKUP_TRIALS})`);
    const disk = await timed(() =>
      run(path.join(PG_BIN, 'pg_basebackup'), ['-h', server.host, '-p', String(server.port), '-U', server.replication.username, '-D', diskDir, '-Ft', '-X', 'none', '-c', 'fast', '--no-password'], {
        PGPASSWORD: server.replication.password,
      }),
    );
    diskRuns.push(disk);
    diskBytes = await dirBytes(diskDir);
    await removeDir(diskDir);
    say(`  ${r2(disk.seconds)} s, ${Math.round(diskBytes / MiB)} MiB, machine ${disk.busyPct}% busy`);
    say(`takeBaseBackup into s3rver (HTTP), gzip 1 (${i}/${BACKUP_TRIALS})`);
    const ours = await timed(() => takeBaseBackup(backupOptions(store)));
    oursRuns.push(ours);
    say(`  ${r2(ours.seconds)} s, ${Math.round(ours.value.dataBytes / MiB)} MiB → ${Math.round(ours.value.storedBytes / MiB)} MiB, machine ${ours.busyPct}% busy`);
    await sleep(1100); // backup ids are seconds
  }
  const disk = medianRun(diskRuns);
  const diskSeconds = disk.seconds;
  const oursBackup = medianRun(oursRuns);
  const oursSeconds = oursBackup.seconds;
  // The restore below starts from the first backup: the most WAL to replay.
  const manifest: BackupManifest = oursRuns[0]!.value;
  say('takeBaseBackup into s3rver (HTTPS), gzip 1');
  const oursTls = await timed(() => takeBaseBackup(backupOptions(tlsStore)));
  const oursTlsSeconds = oursTls.seconds;
  say(`  ${r2(oursTlsSeconds)} s, machine ${oursTls.busyPct}% busy`);

  // --- 6. Steady load with archive_timeout = 5 s: age of the newest archived WAL. Its WAL is
  // what the restore replays.
  await server.query(`ALTER SYSTEM SET archive_timeout = '5s'`);
  await server.query('SELECT pg_reload_conf()');
  const sampler = new pg.Client({ host: server.host, port: server.port, user: server.superuser.username, password: server.superuser.password, database: 'postgres', connectionTimeoutMillis: 5000 });
  sampler.on('error', () => undefined);
  await sampler.connect();
  onCleanup('sampling connection', () => sampler.end());
  const ages: number[] = [];
  let sampling = false;
  const ageTimer = setInterval(() => {
    if (sampling) return;
    sampling = true;
    void sampler
      .query<{ age: number | null; last: string | null; cur: string }>(
        `select extract(epoch from clock_timestamp() - last_archived_time)::float8 as age, last_archived_wal as last,
                pg_walfile_name(pg_current_wal_insert_lsn()) as cur from pg_stat_archiver`,
      )
      .then((r) => {
        const row = r.rows[0];
        // Only while WAL was written after the newest archived segment.
        if (row?.age != null && row.last && row.cur > row.last.slice(0, 24)) ages.push(row.age);
      })
      .catch(() => undefined)
      .finally(() => (sampling = false));
  }, 500);
  onCleanup('age sampler', async () => clearInterval(ageTimer));
  say(`steady load: pgbench -c 4 -j 2 -T ${STEADY_SECONDS}, archive_timeout 5 s`);
  const steadySince = now();
  const steadyOut = await pgbench(server, ['-n', '-c', '4', '-j', '2', '-T', String(STEADY_SECONDS)], (STEADY_SECONDS + 120) * 1000);
  clearInterval(ageTimer);
  const steadyTps = Number(/tps = ([0-9.]+)/.exec(steadyOut)?.[1] ?? NaN);
  const source = await dbState(server);
  const [{ f: lastWal }] = (await server.query<{ f: string }>('select pg_walfile_name(pg_switch_wal()) as f')) as [{ f: string }];
  await tracker.waitArchived(steadySince, 120_000, 'our archiver (steady load)');
  const steady = tracker.window(steadySince, now());
  if (!(await store.head(archiveKeys.wal(ARCHIVE_PATH, lastWal)))) throw new Error(`${lastWal} was recorded as archived but is not in the store`);
  const ageMax = ages.length ? Math.max(...ages) : NaN;
  say(`steady: ${r1(steadyTps)} tps, ${describeWindow(steady)}; newest archived WAL age max ${r2(ageMax)} s over ${ages.length} samples`);
  await archiver!.stop();
  archiver = undefined;

  // --- 7. Restore: base backup + replay of the archived WAL, until the copy takes a write.
  say(`restore of ${manifest.id} and replay to ${lastWal}`);
  const work = path.join(dir, 'restore');
  await ensureDir(work);
  const pgdata = path.join(work, 'pgdata');
  const restoreWal = path.join(work, 'wal');
  const spool = path.join(work, 'spool');
  const restoreStart = now();
  const restored = await restoreBaseBackup({ store, path: ARCHIVE_PATH, manifest, pgdata, walDir: restoreWal, log });
  const fetcher = new WalFetcher({ spoolDir: spool, store, path: ARCHIVE_PATH, log, ...(pgOwner ? { owner: pgOwner } : {}) });
  await fetcher.start();
  onCleanup('WAL fetcher', () => fetcher.stop());
  await writeRecoveryConfig(pgdata, recoverySettings({}, restoreCommand(spool, 60)));
  await giveToPostgres(work);
  const copy = await TestPostgres.open(pgdata, server, { archive_mode: 'off' }); // never into the source's archive
  onCleanup('restored PostgreSQL', () => copy.stop('immediate'));
  const replayStart = now();
  await copy.start(false);
  await copy.waitPromoted(300_000);
  await copy.query('create table bench_restore_probe (id int); insert into bench_restore_probe values (1)');
  const restoreSeconds = secondsSince(restoreStart);
  const replaySeconds = secondsSince(replayStart);
  const fetchStats = fetcher.stats();
  const replayed = new Set([...copy.log.matchAll(/restored log file "([0-9A-F]{24})" from archive/g)].map((m) => m[1])).size;
  const copyState = await dbState(copy);
  const verified = JSON.stringify(copyState) === JSON.stringify(source);
  say(`restore ${r2(restoreSeconds)} s (download+extract ${r2(restored.seconds)} s, replay+promote ${r2(replaySeconds)} s), ${replayed} segments, fetch avg ${fetchStats.avgFetchMs} ms; ${verified ? 'data identical' : 'DATA DIFFERS'}`);
  if (!verified) throw new Error(`the restored database differs from the source: ${JSON.stringify(copyState)} vs ${JSON.stringify(source)}`);

  // --- Report.
  const metrics = {
    basebackup_s: r2(oursSeconds),
    pg_basebackup_disk_s: r2(diskSeconds),
    pgbackrest_full_s: r2(pgbrFull1.seconds),
    // Throughput is what an archiver can do, so the headline rates are the drain's (a backlog
    // released at once); during pgbench -i both archivers keep up and the rate is the load's.
    archive_segments_per_s: r2(oursDrain.w.segmentsPerSecond),
    pgbackrest_archive_segments_per_s: r2(pgbrDrain.w.segmentsPerSecond),
    archive_cpu_ms_per_segment: Math.round(oursDrain.cpuMsPerSegment),
    pgbackrest_archive_cpu_ms_per_segment: Math.round(pgbrDrain.cpuMsPerSegment),
    archive_backlog_max_segments: oursLoad.w.backlogMax,
    wal_fetch_ms_avg: fetchStats.avgFetchMs,
    restore_s: r2(restoreSeconds),
    newest_archived_wal_age_max_s: r2(ageMax),
    // extras
    pgbackrest_full_process_max_2_s: r2(pgbrFull2.seconds),
    basebackup_tls_s: r2(oursTlsSeconds),
    basebackup_to_disk_ratio: r2(oursSeconds / diskSeconds),
    basebackup_speedup_vs_pgbackrest: r2(pgbrFull1.seconds / oursSeconds),
    database_mib: Math.round(Number(dbBytes) / MiB),
    basebackup_stored_mib: Math.round(manifest.storedBytes / MiB),
    pgbackrest_stored_mib: Math.round((pgbrLast?.repository?.size ?? NaN) / MiB),
    archive_load_segments_per_s: r2(oursLoad.w.segmentsPerSecond),
    archive_load_cpu_ms_per_segment: Math.round(oursLoad.cpuMsPerSegment),
    archive_load_segments: oursLoad.w.segments,
    archive_load_s: r2(oursLoad.loadSeconds),
    archive_latency_ms_avg: Math.round(oursLoad.w.latencyMsAvg),
    pgbackrest_archive_load_segments_per_s: r2(pgbrLoad.w.segmentsPerSecond),
    pgbackrest_archive_load_cpu_ms_per_segment: Math.round(pgbrLoad.cpuMsPerSegment),
    pgbackrest_archive_load_segments: pgbrLoad.w.segments,
    pgbackrest_archive_load_s: r2(pgbrLoad.loadSeconds),
    pgbackrest_archive_latency_ms_avg: Math.round(pgbrLoad.w.latencyMsAvg),
    pgbackrest_archive_push_ms_avg: Math.round(pgbrLoad.pushMsAvg),
    pgbackrest_archive_backlog_max_segments: pgbrLoad.w.backlogMax,
    archive_drain_ms_per_segment: Math.round(1000 / oursDrain.w.segmentsPerSecond),
    archive_drain_segments: oursDrain.w.segments,
    pgbackrest_archive_drain_ms_per_segment: Math.round(1000 / pgbrDrain.w.segmentsPerSecond),
    pgbackrest_archive_drain_push_ms_avg: Math.round(pgbrDrain.pushMsAvg),
    pgbackrest_archive_drain_segments: pgbrDrain.w.segments,
    restore_download_s: r2(restored.seconds),
    restore_replay_s: r2(replaySeconds),
    restore_replayed_segments: replayed,
    wal_fetch_prefetched: fetchStats.servedFromPrefetch,
    wal_fetch_requests: fetchStats.requested,
    steady_tps: r1(steadyTps),
    steady_segments: steady.segments,
    steady_backlog_max_segments: steady.backlogMax,
    load_average_start: r2(loadStart),
    load_average_end: r2(os.loadavg()[0]!),
    bench_total_s: Math.round(secondsSince(benchStart)),
  };
  const m = metrics;
  const archiveRatio = m.archive_segments_per_s / m.pgbackrest_archive_segments_per_s;
  const loadRatio = m.archive_load_segments_per_s / m.pgbackrest_archive_load_segments_per_s;
  printReport('backup', metrics, [
    ['database', `pgbench scale ${SCALE}, ${m.database_mib} MiB; PostgreSQL 15, s3rver on loopback, ${pgbrVersion}; ${os.cpus().length} cores, load average ${m.load_average_start} at start, ${m.load_average_end} at end`],
    [`base backup: ours (takeBaseBackup → s3rver HTTP, gzip 1), median of ${BACKUP_TRIALS}`, `${m.basebackup_s} s [${oursRuns.map((x) => r2(x.seconds)).join(', ')}] (${Math.round(manifest.dataBytes / MiB)} MiB → ${m.basebackup_stored_mib} MiB stored, incl. wait for the stop segment; machine ${oursBackup.busyPct}% busy)`],
    ['base backup: ours over HTTPS (same, TLS s3rver)', `${m.basebackup_tls_s} s (machine ${oursTls.busyPct}% busy)`],
    [`base backup: pg_basebackup -Ft -X none -c fast to local disk, median of ${BACKUP_TRIALS}`, `${m.pg_basebackup_disk_s} s [${diskRuns.map((x) => r2(x.seconds)).join(', ')}] (${Math.round(diskBytes / MiB)} MiB, no compression; machine ${disk.busyPct}% busy)`],
    ['base backup: pgBackRest full (HTTPS, gz 1, process-max=1)', `${m.pgbackrest_full_s} s (${m.pgbackrest_stored_mib} MiB stored; archive-check on: its own archive-push is archive_command; machine ${pgbrFull1.busyPct}% busy)`],
    ['base backup: pgBackRest full, process-max=2', `${m.pgbackrest_full_process_max_2_s} s (machine ${pgbrFull2.busyPct}% busy)`],
    ['  goal: ours ≤ 1.5× pg_basebackup to disk', `${m.basebackup_to_disk_ratio}× — ${verdict(m.basebackup_to_disk_ratio <= 1.5)}`],
    ['  goal: ours ≥ 1.5× faster than pgBackRest', `${m.basebackup_speedup_vs_pgbackrest}× (vs process-max=2: ${r2(m.pgbackrest_full_process_max_2_s / m.basebackup_s)}×; ours over HTTPS: ${r2(m.pgbackrest_full_s / m.basebackup_tls_s)}×) — ${verdict(m.basebackup_speedup_vs_pgbackrest >= 1.5)}`],
    [`archiving during pgbench -i: ours (handoff, ${ARCHIVE_CONCURRENCY} uploads)`, `${describe(oursLoad)}; load ran ${m.archive_load_s} s`],
    ['archiving during pgbench -i: pgBackRest archive-push', `${describe(pgbrLoad)}; load ran ${m.pgbackrest_archive_load_s} s`],
    ['archiving a held-back backlog (drain): ours', describe(oursDrain)],
    ['archiving a held-back backlog (drain): pgBackRest', describe(pgbrDrain)],
    ['  goal: ours ≥ 3× pgBackRest segments/s', `drain ${r2(archiveRatio)}× (${m.archive_cpu_ms_per_segment} vs ${m.pgbackrest_archive_cpu_ms_per_segment} CPU-ms/segment) — ${verdict(archiveRatio >= 3)}; during pgbench -i ${r2(loadRatio)}× (both keep up: the rate is the load's)`],
    ['  goal: backlog ≤ 4 segments during pgbench -i', `${m.archive_backlog_max_segments} — ${verdict(m.archive_backlog_max_segments <= 4)}`],
    ['restore (download + verify + extract, replay, promote, first write)', `${m.restore_s} s (${m.restore_download_s} s + ${m.restore_replay_s} s; ${m.restore_replayed_segments} segments replayed; pgbench tables identical to the source)`],
    ['  goal: WAL fetch < 40 ms average', `${m.wal_fetch_ms_avg} ms (${m.wal_fetch_prefetched} of ${m.wal_fetch_requests} requests from the prefetch) — ${verdict(m.wal_fetch_ms_avg < 40)}`],
    [`steady load (pgbench -c 4 -T ${STEADY_SECONDS}, archive_timeout 5 s)`, `${m.steady_tps} tps; ${describeWindow(steady)}`],
    ['  goal: newest archived WAL ≤ 10 s old', `max ${m.newest_archived_wal_age_max_s} s over ${ages.length} samples — ${verdict(m.newest_archived_wal_age_max_s <= 10)}`],
  ]);
}

await runSuite('backup', main, cleanup, TOTAL_TIMEOUT_MS);
