// The exporter's own queries (spec.monitoring.customQueries) with real PostgreSQL 15 and a real
// agent: the files in PGPILOT_CUSTOM_QUERIES (as the kubelet mounts ConfigMaps: replaced
// atomically) are scraped as their families; broken — not valid YAML, SQL that fails or times
// out, a column named twice, a metric named like a built-in one, a file that is missing — every
// built-in family is still served, the errors are counted by query, the problems are in the
// agent's status; fixed, all is well again without a restart. Needs no apiserver. Timings are
// never asserted.
import { execFileSync, spawnSync } from 'node:child_process';
import { chown, mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClusterSpec } from '../../src/api/cluster.js';
import type { CustomQueriesStatus, InstanceStatus } from '../../src/instance/api-types.js';
import { requirePostgresBinaries } from '../../test/support/binaries.js';
import { findSeries, oneValue, parseExposition, type Series } from './exposition.js';
import { AgentCluster, type AgentProcess, PG_BIN, pickIps, until, FailureFlag } from './agent-harness.js';

beforeAll(() => requirePostgresBinaries(PG_BIN));

const spec = { version: '15', instances: 1, storage: { size: '1Gi' } } as ClusterSpec;

const parse = parseExposition;
const find = findSeries;
const value = oneValue;

/** Built-in families a running primary always has: they must survive every broken custom query. */
const BUILT_IN = [
  'pg_up',
  'pg_stat_database_xact_commit',
  'pg_stat_database_numbackends',
  'pg_stat_activity_count',
  'pg_locks_count',
  'pg_settings_max_connections',
  'pg_database_size_bytes',
  'pg_database_xid_age',
  'pg_stat_bgwriter_checkpoints_timed_total',
  'pg_stat_wal_bytes_total',
  'pg_static',
  'pgpilot_instance_role',
  'pgpilot_instance_timeline',
  'pgpilot_instance_volume_capacity_bytes',
  'pgpilot_exporter_scrape_duration_seconds',
];

const GOOD_A = `
app_database:
  query: "SELECT datname, pg_database_size(datname) AS size_bytes, datallowconn AS allow_connections, 'x' AS junk FROM pg_database WHERE datallowconn"
  metrics:
    - datname:
        usage: "LABEL"
        description: "Name of the database"
    - size_bytes:
        usage: "GAUGE"
        description: "Size of the database in bytes"
    - allow_connections:
        usage: "GAUGE"
        description: "1 when the database allows connections"
    - junk:
        usage: "DISCARD"
        description: "ignored"
app_primary:
  query: "SELECT count(*) AS backends_total FROM pg_stat_activity"
  master: true
  cache_seconds: 1
  metrics:
    - backends_total:
        usage: "COUNTER"
        description: "Backends, as a counter (primary only)"
`;

const GOOD_B = `
app_uptime:
  query: "SELECT extract(epoch FROM now() - pg_postmaster_start_time()) AS seconds"
  metrics:
    - seconds:
        usage: "GAUGE"
        description: "Seconds since the postmaster started"
`;

const BROKEN_QUERIES = `
app_database:
  query: "SELECT datname, pg_database_size(datname) AS size_bytes FROM pg_database WHERE datallowconn"
  metrics:
    - datname: { usage: LABEL, description: "db" }
    - size_bytes: { usage: GAUGE, description: "bytes" }
app_failing:
  query: "SELECT count(*) AS n FROM no_such_table"
  metrics:
    - n: { usage: GAUGE, description: "never" }
app_slow:
  query: "SELECT 1 AS n FROM pg_sleep(5)"
  metrics:
    - n: { usage: GAUGE, description: "never: the statement timeout stops it" }
app_twice:
  query: "SELECT 1 AS n, 2 AS n"
  metrics:
    - n: { usage: GAUGE, description: "a" }
    - n: { usage: GAUGE, description: "b" }
pg:
  query: "SELECT 1 AS up"
  metrics:
    - up: { usage: GAUGE, description: "clashes with the built-in pg_up" }
`;

describe('instance agent: the exporter\'s own queries', () => {
  const cluster = new AgentCluster('custom-queries-test');
  let p1: AgentProcess;
  let fileA = '';
  let fileB = '';
  const flag = new FailureFlag();
  let lastScrape = '';
  const timings: Record<string, number> = {};

  const { track } = flag;

  /** As the kubelet updates a mounted ConfigMap: the new content appears at once, never half-written. */
  const put = async (file: string, text: string) => {
    await writeFile(`${file}.tmp`, text);
    await rename(`${file}.tmp`, file);
  };

  const scrape = async () => {
    const r = await p1.metrics();
    expect(r.status).toBe(200);
    lastScrape = r.text;
    return parse(r.text);
  };

  const customStatus = async (): Promise<CustomQueriesStatus> => {
    const s: InstanceStatus = await p1.status();
    return s.customQueries!;
  };

  /** `promtool check metrics` accepts the last scrape (when promtool is on PATH). */
  const promtoolAccepts = () => {
    if (spawnSync('sh', ['-c', 'command -v promtool']).status !== 0) return console.log('[agent-custom-queries] promtool is not on PATH: not run');
    const r = spawnSync('promtool', ['check', 'metrics'], { input: lastScrape, encoding: 'utf8' });
    expect({ status: r.status, out: `${r.stdout}${r.stderr}` }).toEqual({ status: 0, out: '' });
  };

  const builtInsServed = (s: Series[]) => {
    expect(BUILT_IN.filter((f) => find(s, f).length === 0)).toEqual([]);
    expect(value(s, 'pg_up')).toBe(1);
  };

  beforeAll(async () => {
    await cluster.setup(spec);
    const dir = join(cluster.root, 'custom-queries');
    for (const cm of ['app-queries', 'more-queries']) await mkdir(join(dir, cm), { recursive: true });
    if (process.getuid?.() === 0) {
      const [uid, gid] = [Number(execFileSync('id', ['-u', 'postgres']).toString()), Number(execFileSync('id', ['-g', 'postgres']).toString())];
      for (const d of [dir, join(dir, 'app-queries'), join(dir, 'more-queries')]) await chown(d, uid, gid);
    }
    fileA = join(dir, 'app-queries', 'queries.yaml');
    fileB = join(dir, 'more-queries', 'extra.yaml'); // its "ConfigMap" does not exist yet
    await put(fileA, GOOD_A);
    const [ip] = await pickIps(1);
    p1 = await cluster.add('p1', ip!, { env: { PGPILOT_CUSTOM_QUERIES: `${fileA},${fileB}` } });
    await until('p1 agent up', async () => (await p1.api('GET', '/healthz', undefined, null)).status === 200, 30_000);
    expect((await p1.api('POST', '/v1/bootstrap', { mode: 'initdb' })).status).toBe(202);
    await until('p1 running', async () => {
      const s = await p1.status();
      if (s.phase === 'Failed') throw new Error(`p1 failed: ${s.lastError}`);
      return s.phase === 'Running' && s.running ? s : undefined;
    }, 60_000);
  });

  afterAll(async () => {
    console.log(`[agent-custom-queries] timings (ms): ${JSON.stringify(timings)}`);
    const keep = flag.keep();
    if (keep) console.log(`[agent-custom-queries] logs kept in ${cluster.root}/p1/agent.log; last scrape:\n${lastScrape}`);
    await cluster.cleanup(keep);
  });

  it('serves the custom families beside the built-in ones; a missing file is a problem that blocks nothing', track(async () => {
    const s = await until('the custom families', async () => {
      const x = await scrape();
      return find(x, 'app_database_size_bytes').length > 0 && find(x, 'app_primary_backends_total').length > 0 ? x : undefined;
    });
    builtInsServed(s);
    expect(value(s, 'app_database_size_bytes', { datname: 'app' })).toBeGreaterThan(1_000_000);
    expect(value(s, 'app_database_allow_connections', { datname: 'postgres' })).toBe(1);
    expect(find(s, 'app_database_junk')).toEqual([]);
    expect(value(s, 'app_primary_backends_total')).toBeGreaterThanOrEqual(1);
    expect(lastScrape).toMatch(/^# TYPE app_primary_backends_total counter$/m);
    expect(lastScrape).toMatch(/^# HELP app_database_size_bytes Size of the database in bytes$/m);
    for (const q of ['custom:app_database', 'custom:app_primary']) {
      expect(value(s, 'pgpilot_exporter_custom_query_valid', { query: q })).toBe(1);
      expect(value(s, 'pgpilot_exporter_query_errors_total', { query: q })).toBe(0);
    }
    expect(value(s, 'pgpilot_exporter_custom_query_valid', { query: 'custom:more-queries/extra.yaml' })).toBe(0);
    expect(value(s, 'pgpilot_exporter_query_errors_total', { query: 'custom:more-queries/extra.yaml' })).toBeGreaterThanOrEqual(1);
    expect(await customStatus()).toEqual({
      files: ['app-queries/queries.yaml', 'more-queries/extra.yaml'],
      loaded: 2,
      problems: [{ query: 'custom:more-queries/extra.yaml', source: 'more-queries/extra.yaml', error: 'no such file: the ConfigMap or its key does not exist' }],
    });
  }));

  it('a file that is not valid YAML: its families go, every built-in one stays, the error is counted and in the status', track(async () => {
    const t0 = Date.now();
    await put(fileA, 'app_database:\n  query: "SELECT 1\n  metrics: [\n');
    const st = await until('the YAML problem in the status', async () => {
      const x = await customStatus();
      return x.problems.some((p) => p.query === 'custom:app-queries/queries.yaml') ? x : undefined;
    });
    timings.reloadMs = Date.now() - t0;
    expect(st.loaded).toBe(0);
    expect(st.problems.find((p) => p.query === 'custom:app-queries/queries.yaml')!.error).toMatch(/^not valid YAML: /);
    const s1 = await scrape();
    const s2 = await scrape();
    builtInsServed(s2);
    expect(find(s2, 'app_database_size_bytes')).toEqual([]);
    const label = { query: 'custom:app-queries/queries.yaml' };
    expect(value(s2, 'pgpilot_exporter_query_errors_total', label)).toBeGreaterThan(value(s1, 'pgpilot_exporter_query_errors_total', label));
    expect(value(s2, 'pgpilot_exporter_custom_query_valid', label)).toBe(0);
  }));

  it('failing SQL, a statement timeout, a column named twice, a built-in name: the good query and every built-in family are served', track(async () => {
    await put(fileA, BROKEN_QUERIES);
    const st = await until('the broken queries in the status', async () => {
      const x = await customStatus();
      await scrape(); // runs them: failures of SQL are known once they ran
      const q = new Set(x.problems.map((p) => p.query));
      return ['custom:app_failing', 'custom:app_slow', 'custom:app_twice', 'custom:pg'].every((n) => q.has(n)) ? x : undefined;
    }, 60_000);
    const err = (q: string) => st.problems.find((p) => p.query === q)!.error;
    expect(st.loaded).toBe(3);
    expect(err('custom:app_failing')).toMatch(/relation "no_such_table" does not exist/);
    expect(err('custom:app_slow')).toMatch(/statement timeout/);
    expect(err('custom:app_twice')).toBe('names the column n twice');
    expect(err('custom:pg')).toBe('metric pg_up collides with a built-in metric of the exporter');
    expect(st.problems.every((p) => p.source === 'app-queries/queries.yaml' || p.source === 'more-queries/extra.yaml')).toBe(true);

    const t0 = Date.now();
    const s1 = await scrape();
    timings.scrapeWithSlowQueryMs = Date.now() - t0;
    const s2 = await scrape();
    builtInsServed(s2);
    expect(value(s2, 'pg_up')).toBe(1);
    expect(find(s2, 'pg_up')).toHaveLength(1);
    expect(value(s2, 'app_database_size_bytes', { datname: 'app' })).toBeGreaterThan(0);
    for (const q of ['custom:app_failing', 'custom:app_slow']) {
      expect(value(s2, 'pgpilot_exporter_query_errors_total', { query: q })).toBeGreaterThan(value(s1, 'pgpilot_exporter_query_errors_total', { query: q }));
      expect(value(s2, 'pgpilot_exporter_custom_query_valid', { query: q })).toBe(0);
    }
    expect(value(s2, 'pgpilot_exporter_custom_query_valid', { query: 'custom:app_database' })).toBe(1);
    expect(value(s2, 'pgpilot_exporter_custom_query_valid', { query: 'custom:app_twice' })).toBe(0);
    expect(value(s2, 'pgpilot_exporter_custom_query_valid', { query: 'custom:pg' })).toBe(0);
    promtoolAccepts();
  }));

  it('fixed (and the missing file written), everything loads and is valid again, without a restart', track(async () => {
    await put(fileA, GOOD_A);
    await put(fileB, GOOD_B);
    const st = await until('no problem left', async () => {
      const x = await customStatus();
      return x.problems.length === 0 && x.loaded === 3 ? x : undefined;
    });
    expect(st.files).toEqual(['app-queries/queries.yaml', 'more-queries/extra.yaml']);
    const s = await until('the custom families again', async () => {
      const x = await scrape();
      return find(x, 'app_uptime_seconds').length > 0 && find(x, 'app_database_allow_connections').length > 0 ? x : undefined;
    });
    builtInsServed(s);
    expect(value(s, 'app_uptime_seconds')).toBeGreaterThan(0);
    expect(find(s, 'pgpilot_exporter_custom_query_valid').filter((x) => x.value !== 1)).toEqual([]);
    expect(find(s, 'pgpilot_exporter_custom_query_valid').map((x) => x.labels.query).sort()).toEqual(['custom:app_database', 'custom:app_primary', 'custom:app_uptime']);
    promtoolAccepts();
    const st2 = await p1.status();
    expect(st2.restarts).toBe(0);
  }));
});
