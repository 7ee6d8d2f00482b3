// Benchmark `archiver`: WAL archiving through the archive_command handoff (src/postgres/handoff.ts,
// src/backup/wal-archiver.ts: uploads run ahead in the agent, the shell returns once the file is in
// the store) against the plain `cp` archive_command of PostgreSQL's documentation into a local
// directory, on the same PostgreSQL 15 server, s3rver and machine, in the same process:
//
//   - back-to-back switches: PGPILOT_BENCH_ARCHIVER_SWITCHES (default 40) small segments, each a
//     few rows then pg_switch_wal(), as fast as the client can; segments/s from the first .ready
//     to the last .done, and the handoff latency of each segment (.ready → .done: the agent notices
//     it, reads, hashes, gzips and uploads it and writes the marker; the shell sees the marker;
//     PostgreSQL renames .ready to .done);
//   - a backlog of full segments: archive_command held back ('') while PGPILOT_BENCH_ARCHIVER_ROWS
//     (default 2,400,000) rows are inserted, then released at once; segments/s and MiB/s from the
//     release to the last .done, CPU per segment.
//
// Each phase alternates cp and ours PGPILOT_BENCH_ARCHIVER_ROUNDS (default 3) times; medians are
// reported, with the ratio ours / cp. Every segment archived is checked: in the store (ours) or in
// the cp directory (16 MiB each). Correctness (byte for byte) is test/integration/wal-archiver.test.ts's.
import { readdir, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { archiveKeys } from '../src/backup/archive-layout.js';
import { openStore } from '../src/backup/open-store.js';
import { WalArchiver } from '../src/backup/wal-archiver.js';
import { archiveCommand } from '../src/postgres/handoff.js';
import { createLogger, type LogLevel } from '../src/runtime/logger.js';
import { TestPostgres } from '../test/integration/pg-fixture.js';
import { ensureDir, pgTempDir, removeDir, requirePgTools } from '../test/integration/wal-postgres.js';
import { startS3rver, type S3rver } from '../test/support/s3rver.js';
import { ArchiveStatusTracker, type ArchiveWindow } from './lib/archive-status.js';
import { cpuMeter, processCpuMs, selfCpuMs } from './lib/cpu.js';
import { printReport } from './report.js';
import { cleanupRegistry, runSuite } from './lib/run.js';

const SWITCHES = Math.max(1, Number(process.env.PGPILOT_BENCH_ARCHIVER_SWITCHES ?? 40));
const ROWS = Math.max(1, Number(process.env.PGPILOT_BENCH_ARCHIVER_ROWS ?? 2_400_000));
const ROUNDS = Math.max(1, Number(process.env.PGPILOT_BENCH_ARCHIVER_ROUNDS ?? 3));
const CONCURRENCY = 4; // the agent's (WalArchiver's default)
const LEVEL = 1; // the agent's default gzip level (PGPILOT_BACKUP_COMPRESSION_LEVEL)
const TOTAL_TIMEOUT_MS = 15 * 60_000;
const ARCHIVE_PATH = 'pgpilot/bench/archiver';
const SEGMENT_BYTES = 16 * 2 ** 20;
const log = createLogger((process.env.PGPILOT_BENCH_LOG_LEVEL as LogLevel | undefined) ?? 'warn', 'bench');

const say = (msg: string) => process.stderr.write(`[archiver] ${msg}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const now = () => Date.now(); // the same clock as ArchiveStatusTracker's
const r2 = (n: number) => Math.round(n * 100) / 100;
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const list = (xs: number[], digits = 1) => `[${xs.map((x) => x.toFixed(digits)).join(', ')}]`;

const { onCleanup, cleanup } = cleanupRegistry(say);

type Tool = 'cp' | 'ours';
const TOOLS: Tool[] = ['cp', 'ours'];

interface Phase {
  w: ArchiveWindow;
  cpuMsPerSegment: number;
}

async function main(): Promise<void> {
  requirePgTools();
  const benchStart = now();
  const loadStart = os.loadavg()[0]!;

  const s3: S3rver = await startS3rver({ buckets: ['archiver'] });
  onCleanup('s3rver', () => s3.stop());
  const store = openStore(s3.storeConfig('archiver'), s3.env);
  const dir = await pgTempDir('pgpilot-bench-archiver-');
  onCleanup('temp directory', () => removeDir(dir));
  const srcDir = path.join(dir, 'source');
  const markerDir = path.join(srcDir, 'archive-markers');
  const cpDir = path.join(dir, 'cp-archive');
  await ensureDir(markerDir);
  await ensureDir(cpDir);

  // The archiver outlives PostgreSQL (cleanups run last-registered first).
  let archiver: WalArchiver | undefined;
  onCleanup('WAL archiver', async () => archiver?.stop());
  // archive_command is not on the command line (it starts as '': held back), so ALTER SYSTEM +
  // reload switches it. No checkpoint inside a phase: one runs between phases.
  const server = await TestPostgres.create(srcDir, { wal_level: 'replica', archive_mode: 'on', max_wal_size: '8GB', checkpoint_timeout: '30min' });
  onCleanup('PostgreSQL', () => server.stop('immediate'));
  const walDir = path.join(server.pgdata, 'pg_wal');
  const [{ id: sysid }] = (await server.query<{ id: string }>('select system_identifier::text as id from pg_control_system()')) as [{ id: string }];
  const [{ pid: pgarchPid }] = (await server.query<{ pid: number }>(`select pid from pg_stat_activity where backend_type = 'archiver'`)) as [{ pid: number }];

  const client = new pg.Client({ host: server.host, port: server.port, user: server.superuser.username, password: server.superuser.password, database: 'postgres', connectionTimeoutMillis: 5000 });
  client.on('error', () => undefined);
  await client.connect();
  onCleanup('client', () => client.end());
  const sql = async <T extends pg.QueryResultRow>(text: string) => (await client.query<T>(text)).rows;
  await sql('create table t (id int, pad text)');

  const tracker = new ArchiveStatusTracker(walDir, 50);
  tracker.start();
  onCleanup('archive_status watch', async () => tracker.stop());

  const commands: Record<Tool, string> = {
    ours: archiveCommand(markerDir),
    // PostgreSQL's documentation's example (section "Setting Up WAL Archiving").
    cp: `test ! -f ${cpDir}/%f && cp %p ${cpDir}/%f`,
  };
  const setArchiveCommand = async (command: string) => {
    await sql(`ALTER SYSTEM SET archive_command = '${command.replace(/'/g, "''")}'`);
    await sql('SELECT pg_reload_conf()');
    await sleep(200); // the archiver process rereads its configuration
  };
  const startArchiver = async () => {
    archiver = new WalArchiver({
      pgdata: server.pgdata, markerDir, store, path: ARCHIVE_PATH, level: LEVEL, concurrency: CONCURRENCY, log,
      identity: async () => ({ systemIdentifier: sysid, cluster: 'bench', namespace: 'bench' }),
    });
    await archiver.start();
  };
  const stopArchiver = async () => {
    await archiver?.stop();
    archiver = undefined;
  };
  // CPU of archiving: ours = this process (the WalArchiver: read, sha256, gzip, upload) + s3rver +
  // the archive_command shells; cp = the archive_command runs (children PostgreSQL's archiver waited for).
  const meter = () => cpuMeter({ self: selfCpuMs, s3: () => processCpuMs(s3.pid), archiveCommand: () => processCpuMs(pgarchPid, true) });
  const cpuPerSegment = (tool: Tool, cpu: Record<string, number>, segments: number) =>
    (tool === 'ours' ? cpu.self! + cpu.s3! + cpu.archiveCommand! : cpu.archiveCommand!) / Math.max(1, segments);

  /** Every segment of the window is where the tool puts it: the store, or a 16 MiB copy. */
  const checkArchived = async (tool: Tool, w: ArchiveWindow) => {
    for (const name of w.names) {
      if (tool === 'ours') {
        if (!(await store.head(archiveKeys.wal(ARCHIVE_PATH, name)))) throw new Error(`${name} was recorded as archived but is not in the store`);
      } else if ((await stat(path.join(cpDir, name))).size !== SEGMENT_BYTES) throw new Error(`${cpDir}/${name} is not a whole segment`);
    }
  };
  /** Between phases: nothing waiting, the cp copies gone, a checkpoint (recycles archived WAL), an empty table. */
  const settle = async () => {
    await tracker.waitArchived(0, 300_000, 'archiving before a phase');
    await stopArchiver();
    await setArchiveCommand('');
    for (const f of await readdir(cpDir)) await rm(path.join(cpDir, f), { force: true });
    await sql('truncate t');
    await sql('checkpoint');
    await sleep(300);
  };

  const switchPhase = async (tool: Tool): Promise<Phase> => {
    await settle();
    if (tool === 'ours') await startArchiver();
    await setArchiveCommand(commands[tool]);
    const cpu = meter();
    const since = now();
    for (let i = 0; i < SWITCHES; i++) {
      await sql(`insert into t select g, repeat('x', 200) from generate_series(1, 10) g`);
      await sql('select pg_switch_wal()');
    }
    await tracker.waitArchived(since, 120_000, `${tool} (back-to-back switches)`);
    const w = tracker.window(since, now());
    if (w.segments !== SWITCHES) throw new Error(`${tool}: ${w.segments} switched segments archived, expected ${SWITCHES}`);
    await checkArchived(tool, w);
    return { w, cpuMsPerSegment: cpuPerSegment(tool, cpu(), w.segments) };
  };

  const backlogPhase = async (tool: Tool): Promise<Phase> => {
    await settle(); // archive_command '': held back
    await sql(`insert into t select g, md5(g::text) || md5(random()::text) || md5(random()::text) from generate_series(1, ${ROWS}) g`);
    await sql('select pg_switch_wal()');
    await sleep(300);
    const waiting = (await tracker.readyNow()).length;
    const cpu = meter();
    const since = now();
    if (tool === 'ours') await startArchiver();
    await setArchiveCommand(commands[tool]);
    await tracker.waitArchived(0, 300_000, `${tool} (backlog)`);
    const w = tracker.window(since, now(), { backlog: true });
    if (w.segments !== waiting) throw new Error(`${tool}: ${w.segments} of a backlog of ${waiting} segments archived`);
    await checkArchived(tool, w);
    return { w, cpuMsPerSegment: cpuPerSegment(tool, cpu(), w.segments) };
  };

  const switches: Record<Tool, Phase[]> = { cp: [], ours: [] };
  const backlogs: Record<Tool, Phase[]> = { cp: [], ours: [] };
  for (let round = 1; round <= ROUNDS; round++) {
    for (const tool of TOOLS) {
      const p = await switchPhase(tool);
      switches[tool].push(p);
      say(`round ${round}/${ROUNDS} ${tool}: ${SWITCHES} switches, ${r2(p.w.segmentsPerSecond)} seg/s, .ready→.done avg ${Math.round(p.w.latencyMsAvg)} ms, max ${Math.round(p.w.latencyMsMax)} ms`);
    }
    for (const tool of TOOLS) {
      const p = await backlogPhase(tool);
      backlogs[tool].push(p);
      say(`round ${round}/${ROUNDS} ${tool}: backlog of ${p.w.segments} segments in ${r2(p.w.seconds)} s, ${r2(p.w.segmentsPerSecond)} seg/s, ${Math.round(p.cpuMsPerSegment)} CPU-ms/segment`);
    }
  }
  await stopArchiver();
  const stored = await store.list(archiveKeys.walPrefix(ARCHIVE_PATH));
  const storedBytes = stored.reduce((a, o) => a + o.size, 0);

  const med = (ps: Phase[], f: (p: Phase) => number) => median(ps.map(f));
  const sw = (t: Tool) => med(switches[t], (p) => p.w.segmentsPerSecond);
  const lat = (t: Tool) => med(switches[t], (p) => p.w.latencyMsAvg);
  const latMax = (t: Tool) => Math.max(...switches[t].map((p) => p.w.latencyMsMax));
  const bl = (t: Tool) => med(backlogs[t], (p) => p.w.segmentsPerSecond);
  const blCpu = (t: Tool) => med(backlogs[t], (p) => p.cpuMsPerSegment);
  const backlogSegments = med(backlogs.ours, (p) => p.w.segments);

  const metrics = {
    switch_segments_per_s: r2(sw('ours')),
    switch_cp_segments_per_s: r2(sw('cp')),
    switch_ratio_to_cp: r2(sw('ours') / sw('cp')),
    handoff_latency_ms_avg: Math.round(lat('ours')),
    handoff_latency_ms_max: Math.round(latMax('ours')),
    cp_latency_ms_avg: Math.round(lat('cp')),
    cp_latency_ms_max: Math.round(latMax('cp')),
    handoff_latency_ratio_to_cp: r2(lat('ours') / lat('cp')),
    backlog_segments_per_s: r2(bl('ours')),
    backlog_mib_per_s: r2((bl('ours') * SEGMENT_BYTES) / 2 ** 20),
    backlog_cp_segments_per_s: r2(bl('cp')),
    backlog_ratio_to_cp: r2(bl('ours') / bl('cp')),
    backlog_cpu_ms_per_segment: Math.round(blCpu('ours')),
    backlog_cp_cpu_ms_per_segment: Math.round(blCpu('cp')),
    // extras
    switch_cpu_ms_per_segment: Math.round(med(switches.ours, (p) => p.cpuMsPerSegment)),
    switch_cp_cpu_ms_per_segment: Math.round(med(switches.cp, (p) => p.cpuMsPerSegment)),
    switches: SWITCHES,
    backlog_segments: backlogSegments,
    rounds: ROUNDS,
    stored_segments: stored.length,
    stored_mib: r2(storedBytes / 2 ** 20),
    load_average_start: r2(loadStart),
    load_average_end: r2(os.loadavg()[0]!),
    bench_total_s: Math.round((now() - benchStart) / 1000),
  };
  const m = metrics;
  printReport('archiver', metrics, [
    ['setup', `PostgreSQL 15, s3rver on loopback, gzip ${LEVEL}, ${CONCURRENCY} uploads at a time; ${os.cpus().length} cores, load average ${m.load_average_start} at start, ${m.load_average_end} at end; medians of ${ROUNDS} rounds [each round]`],
    ['baseline: cp archive_command', `test ! -f DIR/%f && cp %p DIR/%f (local disk, no compression, no upload)`],
    [`back-to-back switches (${SWITCHES} segments): ours`, `${m.switch_segments_per_s} seg/s ${list(switches.ours.map((p) => p.w.segmentsPerSecond))}; handoff .ready→.done avg ${m.handoff_latency_ms_avg} ms ${list(switches.ours.map((p) => p.w.latencyMsAvg), 0)}, max ${m.handoff_latency_ms_max} ms; ${m.switch_cpu_ms_per_segment} CPU-ms/segment`],
    [`back-to-back switches (${SWITCHES} segments): cp`, `${m.switch_cp_segments_per_s} seg/s ${list(switches.cp.map((p) => p.w.segmentsPerSecond))}; .ready→.done avg ${m.cp_latency_ms_avg} ms ${list(switches.cp.map((p) => p.w.latencyMsAvg), 0)}, max ${m.cp_latency_ms_max} ms; ${m.switch_cp_cpu_ms_per_segment} CPU-ms/segment`],
    ['  ours / cp', `${m.switch_ratio_to_cp}× segments/s; ${m.handoff_latency_ratio_to_cp}× latency`],
    [`backlog of ${backlogSegments} full segments (${ROWS} rows): ours`, `${m.backlog_segments_per_s} seg/s ${list(backlogs.ours.map((p) => p.w.segmentsPerSecond))} = ${m.backlog_mib_per_s} MiB/s; ${m.backlog_cpu_ms_per_segment} CPU-ms/segment (node + s3rver + shells)`],
    [`backlog of ${backlogSegments} full segments: cp`, `${m.backlog_cp_segments_per_s} seg/s ${list(backlogs.cp.map((p) => p.w.segmentsPerSecond))}; ${m.backlog_cp_cpu_ms_per_segment} CPU-ms/segment`],
    ['  ours / cp', `${m.backlog_ratio_to_cp}× segments/s`],
    ['store', `${m.stored_segments} segments, ${m.stored_mib} MiB (every one checked present after its phase)`],
  ]);
}

await runSuite('archiver', main, cleanup, TOTAL_TIMEOUT_MS);
