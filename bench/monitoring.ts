// Benchmark `monitoring`: the agent's exporter (GET /metrics on port 9187, src/instance/exporter.ts)
// against Debian's prometheus-postgres-exporter (0.11, the peer users know) scraping the same
// PostgreSQL 15 server, in the same process, on the same machine:
//   - scrape time p50/p99 over PGPILOT_BENCH_SCRAPES (default 200) scrapes each, alternated, and
//     how many metric families each exports;
//   - the agent's RSS before and after the scrapes;
//   - scrape time while PostgreSQL is down (the instance fenced: postmaster stopped), 10 each.
// Goals (issue 12): ours ≤ theirs at p99 while exporting at least as many families; ≤ 1 s down.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { ClusterSpec } from '../src/api/cluster.js';
import { PG_FAMILIES } from '../src/postgres/stats-queries.js';
import { freePort } from '../e2e/harness/control-plane.js';
import { requirePostgresBinaries } from '../test/support/binaries.js';
import { AgentCluster, type AgentProcess, PG_BIN, pickIps, until } from '../e2e/agent/agent-harness.js';
import { printReport } from './report.js';
import { runSuite } from './lib/run.js';

const SCRAPES = Math.max(10, Number(process.env.PGPILOT_BENCH_SCRAPES ?? 200));
const DOWN_SCRAPES = 10;
const POSTGRES_EXPORTER = '/usr/bin/prometheus-postgres-exporter';
const TOTAL_TIMEOUT_MS = 20 * 60_000;
const spec = { version: '15', instances: 1, storage: { size: '1Gi' }, highAvailability: { enabled: false } } as ClusterSpec;

const say = (msg: string) => process.stderr.write(`[monitoring] ${msg}\n`);
const r1 = (n: number) => Math.round(n * 10) / 10;
const percentile = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] ?? NaN;
};
const rssMb = (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN) / 1024;
/** Metric families of an exposition: its `# TYPE` lines. */
const familyNames = (text: string) => new Set([...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]!));
/**
 * The families that describe PostgreSQL, comparable between the two: not one family per server
 * setting (postgres_exporter exports every pg_settings row; we export the ones alerts and
 * dashboards use), not the exporters' own runtime (go_*, process_*, promhttp_*) or scrape
 * bookkeeping (postgres_exporter's pg_exporter_*, pg_scrape_collector_*; ours is
 * pgpilot_exporter_*).
 */
const postgresFamilies = (text: string) =>
  [...familyNames(text)].filter((f) => f.startsWith('pg_') && !/^pg_(settings|exporter|scrape_collector)_/.test(f));

const cluster = new AgentCluster('bench-monitoring');
let exporter: ChildProcess | undefined;

/**
 * postgres_exporter's PostgreSQL families that ours did not show in this scrape: those it never
 * exports, and those it exports only once there is a value (a reset, a checksum failure, an
 * archived WAL file) where postgres_exporter shows a placeholder.
 */
const missingOf = (ours: string, theirs: string) => {
  const have = new Set(postgresFamilies(ours));
  const absent = postgresFamilies(theirs).filter((f) => !have.has(f));
  return { never: absent.filter((f) => !(f in PG_FAMILIES)), whenKnown: absent.filter((f) => f in PG_FAMILIES) };
};

async function cleanup(): Promise<void> {
  if (exporter?.pid && exporter.exitCode === null) exporter.kill('SIGKILL');
  await cluster.cleanup(false).catch(() => undefined);
}

/** One timed scrape; the body is read in full, as Prometheus does. */
async function scrape(url: string): Promise<{ ms: number; text: string }> {
  const t0 = performance.now();
  const res = await fetch(url, { signal: AbortSignal.timeout(30_000) });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`${url}: HTTP ${res.status}`);
  return { ms: performance.now() - t0, text };
}

async function startPrimary(): Promise<AgentProcess> {
  await cluster.setup(spec);
  const [ip] = await pickIps(1);
  const p1 = await cluster.add('p1', ip!);
  await until('agent up', async () => (await p1.api('GET', '/healthz', undefined, null)).status === 200, 30_000);
  await p1.api('POST', '/v1/bootstrap', { mode: 'initdb' });
  await until('primary running, its application database made', async () => {
    const st = await p1.status();
    return st.phase === 'Running' && st.running;
  }, 120_000);
  // Some activity, so the statistics views have rows to report.
  await p1.sql('CREATE TABLE IF NOT EXISTS bench_t (id int primary key, v text)', [], 'app');
  await p1.sql("INSERT INTO bench_t SELECT g, md5(g::text) FROM generate_series(1, 20000) g ON CONFLICT DO NOTHING", [], 'app');
  return p1;
}

/** postgres_exporter with its default collectors, connected as the superuser (as the agent is). */
async function startPostgresExporter(p1: AgentProcess): Promise<string> {
  const port = await freePort();
  const dsn = `postgresql://postgres:${encodeURIComponent(cluster.secrets.superuser)}@${p1.ip}:5432/postgres?sslmode=disable`;
  exporter = spawn(POSTGRES_EXPORTER, [`--web.listen-address=127.0.0.1:${port}`], { env: { ...process.env, DATA_SOURCE_NAME: dsn }, stdio: ['ignore', 'ignore', 'pipe'] });
  exporter.stderr!.resume();
  const url = `http://127.0.0.1:${port}/metrics`;
  await until('postgres_exporter answers with pg_up 1', async () => /^pg_up 1$/m.test((await scrape(url).catch(() => ({ text: '' }))).text), 30_000);
  return url;
}

/** Alternating scrapes of both: their times, and the last bodies. */
async function alternate(ours: string, theirs: string, n: number): Promise<{ ours: number[]; theirs: number[]; oursText: string; theirsText: string }> {
  const out = { ours: [] as number[], theirs: [] as number[], oursText: '', theirsText: '' };
  for (let i = 0; i < n; i++) {
    const a = await scrape(ours);
    const b = await scrape(theirs);
    out.ours.push(a.ms);
    out.theirs.push(b.ms);
    out.oursText = a.text;
    out.theirsText = b.text;
  }
  return out;
}

async function main(): Promise<void> {
  requirePostgresBinaries(PG_BIN);
  const p1 = await startPrimary();
  const ours = `http://${p1.ip}:9187/metrics`;
  const theirs = await startPostgresExporter(p1);
  const pid = p1.child!.pid!;
  await alternate(ours, theirs, 5); // warm-up: connections, JIT, caches
  await new Promise((r) => setTimeout(r, 5000));
  const rssIdle = rssMb(pid);
  say(`scraping each ${SCRAPES} times, alternated`);
  const up = await alternate(ours, theirs, SCRAPES);
  const rssScraped = rssMb(pid);

  say('fencing the instance (PostgreSQL stopped) and scraping both while it is down');
  await p1.api('POST', '/v1/fence?wait=30000', {});
  await until('postgres stopped', async () => p1.postmasterPid() === null, 60_000);
  const down = await alternate(ours, theirs, DOWN_SCRAPES);
  if (!/^pg_up 0$/m.test(down.oursText)) throw new Error('the agent did not report pg_up 0 while PostgreSQL was down');
  await p1.api('POST', '/v1/unfence', {});

  const missing = missingOf(up.oursText, up.theirsText);
  const metrics = {
    scrapes: SCRAPES,
    postgres_exporter_families_we_never_export: missing.never.length,
    scrape_p50_ms: r1(percentile(up.ours, 50)),
    scrape_p99_ms: r1(percentile(up.ours, 99)),
    postgres_exporter_scrape_p50_ms: r1(percentile(up.theirs, 50)),
    postgres_exporter_scrape_p99_ms: r1(percentile(up.theirs, 99)),
    scrape_p99_ratio: r1((percentile(up.ours, 99) / percentile(up.theirs, 99)) * 100) / 100,
    families: familyNames(up.oursText).size,
    postgres_exporter_families: familyNames(up.theirsText).size,
    postgres_families: postgresFamilies(up.oursText).length,
    postgres_exporter_postgres_families: postgresFamilies(up.theirsText).length,
    agent_rss_idle_mb: r1(rssIdle),
    agent_rss_after_scrapes_mb: r1(rssScraped),
    scrape_down_p99_ms: r1(percentile(down.ours, 99)),
    postgres_exporter_scrape_down_p99_ms: r1(percentile(down.theirs, 99)),
  };
  printReport('monitoring', metrics, [
    ['scrape time with PostgreSQL up, p50 / p99', `${metrics.scrape_p50_ms} / ${metrics.scrape_p99_ms} ms (postgres_exporter ${metrics.postgres_exporter_scrape_p50_ms} / ${metrics.postgres_exporter_scrape_p99_ms} ms; ours / theirs at p99 ${metrics.scrape_p99_ratio})`],
    ['metric families exported, all', `${metrics.families} (postgres_exporter 0.11 default collectors: ${metrics.postgres_exporter_families}, most of them one per pg_settings row and its Go runtime)`],
    ['PostgreSQL families (pg_*, settings aside)', `${metrics.postgres_families} (postgres_exporter ${metrics.postgres_exporter_postgres_families})`],
    ["theirs we never export", missing.never.join(', ') || 'none'],
    ["theirs we export once there is a value", missing.whenKnown.join(', ') || 'none'],
    ['agent RSS before / after the scrapes', `${metrics.agent_rss_idle_mb} / ${metrics.agent_rss_after_scrapes_mb} MB (the agent runs from source through tsx here, which adds its own)`],
    ['scrape time with PostgreSQL down, p99', `${metrics.scrape_down_p99_ms} ms (goal ≤ 1000; postgres_exporter ${metrics.postgres_exporter_scrape_down_p99_ms} ms)`],
  ]);
}

await runSuite('monitoring', main, cleanup, TOTAL_TIMEOUT_MS);
