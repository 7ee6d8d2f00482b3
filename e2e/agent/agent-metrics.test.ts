// The agent's exporter (GET /metrics on port 9187) with real PostgreSQL 15: a primary archiving
// WAL to a volume store and a streaming replica with pg_wal on its own volume. Every family of
// docs/metrics.md that applies to a role has a sample with a plausible value there; pg_up is 0
// while the instance is fenced and 1 again after; `promtool check metrics` accepts the output
// (when promtool is on PATH); an agent told PGPILOT_METRICS_ENABLED=false does not listen.
// Needs no apiserver. Timings are printed, never asserted.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdir, chown } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClusterSpec } from '../../src/api/cluster.js';
import { requirePostgresBinaries } from '../../test/support/binaries.js';
import { findSeries, oneValue, parseExposition, type Series } from './exposition.js';
import { AgentCluster, type AgentProcess, PG_BIN, pickIps, until, agentRunning, FailureFlag } from './agent-harness.js';

beforeAll(() => requirePostgresBinaries(PG_BIN));

const spec = { version: '15', instances: 2, storage: { size: '1Gi' }, highAvailability: { enabled: true } } as ClusterSpec;

const parse = parseExposition;
const find = findSeries;
const one = oneValue;

/** Families of the contract (docs/metrics.md) every running instance has. */
const COMMON = [
  'pg_up',
  ...['xact_commit', 'xact_rollback', 'blks_read', 'blks_hit', 'tup_returned', 'tup_fetched', 'tup_inserted', 'tup_updated', 'tup_deleted', 'deadlocks', 'temp_bytes', 'numbackends'].map((c) => `pg_stat_database_${c}`),
  'pg_stat_activity_count',
  'pg_stat_activity_max_tx_duration',
  'pg_locks_count',
  ...['max_connections', 'superuser_reserved_connections', 'max_wal_senders', 'max_replication_slots', 'shared_buffers_bytes', 'max_wal_size_bytes'].map((s) => `pg_settings_${s}`),
  'pg_database_size_bytes',
  'pg_database_xid_age',
  'pg_stat_archiver_archived_count',
  'pg_stat_archiver_failed_count',
  ...['checkpoints_timed', 'checkpoints_req', 'buffers_checkpoint', 'buffers_clean', 'buffers_backend'].map((c) => `pg_stat_bgwriter_${c}_total`),
  'pg_stat_wal_bytes_total',
  'pgpilot_instance_role',
  'pgpilot_instance_timeline',
  'pgpilot_instance_fenced',
  'pgpilot_instance_pending_restart',
  'pgpilot_instance_volume_capacity_bytes',
  'pgpilot_instance_volume_used_bytes',
  'pgpilot_exporter_scrape_duration_seconds',
  'pgpilot_exporter_query_errors_total',
];
const PRIMARY_ONLY = ['pg_stat_replication_replay_lag_bytes'];
const ARCHIVING = ['pg_stat_archiver_last_archive_age', 'pgpilot_instance_archiver_backlog_segments', 'pgpilot_instance_last_archived_wal_age_seconds', 'pgpilot_instance_archiving_failing'];
const REPLICA_ONLY = ['pg_replication_lag_seconds', 'pgpilot_instance_replication_lag_bytes', 'pgpilot_instance_replication_lag_seconds'];

const missing = (s: Series[], families: string[]) => families.filter((f) => find(s, f).length === 0);

describe('instance agent: the metrics exporter', () => {
  const cluster = new AgentCluster('metrics-test');
  let p1: AgentProcess, r2: AgentProcess, x3: AgentProcess;
  const flag = new FailureFlag();
  const scrapes: Record<string, string> = {};
  const timings: Record<string, number> = {};

  const scrape = async (a: AgentProcess) => {
    const r = await a.metrics();
    expect(r.status).toBe(200);
    expect(r.contentType).toMatch(/^text\/plain; version=0\.0\.4/);
    scrapes[a.name] = r.text;
    return parse(r.text);
  };

  const running = agentRunning;

  const { track } = flag;

  beforeAll(async () => {
    await cluster.setup(spec);
    // A volume archive store the agents (running as postgres) can write.
    const archive = join(cluster.root, 'archive');
    await mkdir(archive);
    if (process.getuid?.() === 0) await chown(archive, Number(execFileSync('id', ['-u', 'postgres']).toString()), Number(execFileSync('id', ['-g', 'postgres']).toString()));
    const ips = await pickIps(3);
    p1 = await cluster.add('p1', ips[0]!, { archiving: { timeoutSeconds: 60 }, env: { PGPILOT_BACKUP_LOCATION: JSON.stringify({ store: { kind: 'volume', path: archive }, path: 'metrics-test' }) } });
    r2 = await cluster.add('r2', ips[1]!, { walVolume: true });
    x3 = await cluster.add('x3', ips[2]!, { env: { PGPILOT_METRICS_ENABLED: 'false' } });
    await Promise.all(cluster.agents.map((a) => until(`${a.name} agent up`, async () => (await a.api('GET', '/healthz', undefined, null)).status === 200, 30_000)));
  });

  afterAll(async () => {
    console.log(`[agent-metrics] timings (ms): ${JSON.stringify(timings)}`);
    const keep = flag.keep();
    if (keep) {
      console.log(`[agent-metrics] logs kept in ${cluster.root}/<instance>/agent.log`);
      for (const [name, text] of Object.entries(scrapes)) console.log(`[agent-metrics] last scrape of ${name}:\n${text}`);
    }
    await cluster.cleanup(keep);
  });

  it('serves pg_up 0 and the agent\'s own metrics before there is a database', track(async () => {
    const s = await scrape(p1);
    expect(one(s, 'pg_up')).toBe(0);
    expect(find(s, 'pgpilot_instance_role').map((x) => x.value)).toEqual([0, 0]);
    expect(one(s, 'pgpilot_instance_fenced')).toBe(0);
    expect(one(s, 'pgpilot_instance_volume_capacity_bytes', { volume: 'data' })).toBeGreaterThan(0);
  }));

  it('bootstraps a primary and a streaming replica', track(async () => {
    expect((await p1.api('POST', '/v1/bootstrap', { mode: 'initdb' })).status).toBe(202);
    await running(p1);
    expect((await r2.api('POST', '/v1/bootstrap', { mode: 'clone', primary: p1.endpoint })).status).toBe(202);
    await running(r2, (st) => st.streaming);
    await p1.sql('CREATE TABLE t (id int primary key, v text)', [], 'app');
    await p1.sql("INSERT INTO t VALUES (0, 'zero')", [], 'app');
    await until('row on r2', async () => (await r2.sql('SELECT 1 FROM t WHERE id = 0', [], 'app')).length === 1);
  }));

  it('serves every family of a primary, with plausible values', track(async () => {
    const before = one(await scrape(p1), 'pg_stat_database_xact_commit', { datname: 'app' });
    for (let i = 1; i <= 5; i++) await p1.sql('INSERT INTO t VALUES ($1, $2)', [i, `row ${i}`], 'app');
    // A new segment for the archiver: pg_stat_archiver and the agent's archiving series fill in.
    await p1.sql('SELECT pg_switch_wal()');
    // Backends report their statistics within a second or so of their commit.
    const s = await until('xact_commit grows and a WAL file is archived', async () => {
      const s = await scrape(p1);
      return one(s, 'pg_stat_database_xact_commit', { datname: 'app' }) >= before + 5 && find(s, 'pgpilot_instance_last_archived_wal_age_seconds').length === 1 && find(s, 'pg_stat_archiver_last_archive_age').length === 1 ? s : undefined;
    }, 30_000, 250);
    expect(missing(s, [...COMMON, ...PRIMARY_ONLY, ...ARCHIVING])).toEqual([]);
    expect(missing(s, REPLICA_ONLY)).toEqual(REPLICA_ONLY);
    expect(one(s, 'pg_up')).toBe(1);
    expect(one(s, 'pgpilot_instance_role', { role: 'primary' })).toBe(1);
    expect(one(s, 'pgpilot_instance_role', { role: 'replica' })).toBe(0);
    expect(one(s, 'pgpilot_instance_timeline')).toBe(1);
    expect(one(s, 'pgpilot_instance_fenced')).toBe(0);
    expect(one(s, 'pg_stat_database_tup_inserted', { datname: 'app' })).toBeGreaterThanOrEqual(6);
    expect(one(s, 'pg_stat_replication_replay_lag_bytes', { application_name: 'r2' })).toBeGreaterThanOrEqual(0);
    expect(one(s, 'pg_settings_max_connections')).toBeGreaterThan(0);
    expect(one(s, 'pg_settings_shared_buffers_bytes')).toBeGreaterThanOrEqual(128 * 1024);
    expect(one(s, 'pg_database_size_bytes', { datname: 'app' })).toBeGreaterThan(1_000_000);
    expect(one(s, 'pg_database_xid_age', { datname: 'app' })).toBeGreaterThan(0);
    expect(find(s, 'pg_database_xid_age', { datname: 'template0' })).toHaveLength(1);
    expect(one(s, 'pg_stat_activity_count', { datname: 'app', state: 'idle in transaction' })).toBe(0);
    expect(find(s, 'pg_locks_count', { datname: 'app' })).toHaveLength(9);
    expect(one(s, 'pg_stat_archiver_archived_count')).toBeGreaterThanOrEqual(1);
    expect(one(s, 'pgpilot_instance_archiving_failing')).toBe(0);
    expect(one(s, 'pg_stat_wal_bytes_total')).toBeGreaterThan(0);
    const capacity = one(s, 'pgpilot_instance_volume_capacity_bytes', { volume: 'data' });
    const used = one(s, 'pgpilot_instance_volume_used_bytes', { volume: 'data' });
    expect(capacity).toBeGreaterThan(used);
    expect(used).toBeGreaterThan(0);
    // No pg_wal volume here.
    expect(find(s, 'pgpilot_instance_volume_capacity_bytes', { volume: 'wal' })).toEqual([]);
    expect(find(s, 'pgpilot_exporter_query_errors_total').every((x) => x.value === 0)).toBe(true);
  }));

  it('serves every family of a replica, with plausible values', track(async () => {
    await until('r2 replayed the rows', async () => (await r2.sql('SELECT count(*)::int AS n FROM t', [], 'app'))[0]?.n === 6);
    const s = await until('replica lag series', async () => {
      const s = await scrape(r2);
      return missing(s, REPLICA_ONLY).length === 0 ? s : undefined;
    }, 30_000, 250);
    expect(missing(s, COMMON)).toEqual([]);
    expect(missing(s, [...PRIMARY_ONLY, ...ARCHIVING.slice(1)])).toEqual([...PRIMARY_ONLY, ...ARCHIVING.slice(1)]);
    expect(one(s, 'pg_up')).toBe(1);
    expect(one(s, 'pgpilot_instance_role', { role: 'replica' })).toBe(1);
    expect(one(s, 'pgpilot_instance_role', { role: 'primary' })).toBe(0);
    expect(one(s, 'pgpilot_instance_timeline')).toBe(1);
    for (const name of REPLICA_ONLY) expect(one(s, name), name).toBeGreaterThanOrEqual(0);
    expect(one(s, 'pg_replication_lag_seconds')).toBeLessThan(3600);
    for (const volume of ['data', 'wal']) {
      const capacity = one(s, 'pgpilot_instance_volume_capacity_bytes', { volume });
      const used = one(s, 'pgpilot_instance_volume_used_bytes', { volume });
      expect(capacity, volume).toBeGreaterThan(used);
      expect(used, volume).toBeGreaterThan(0);
    }
    expect(find(s, 'pgpilot_exporter_query_errors_total').every((x) => x.value === 0)).toBe(true);
  }));

  it('answers concurrent scrapes', track(async () => {
    const all = await Promise.all([p1, p1, p1, r2, r2].map((a) => a.metrics()));
    expect(all.map((r) => r.status)).toEqual([200, 200, 200, 200, 200]);
    for (const r of all) expect(one(parse(r.text), 'pg_up')).toBe(1);
  }));

  it('passes promtool check metrics (when promtool is on PATH)', track(async () => {
    const found = spawnSync('sh', ['-c', 'command -v promtool'], { encoding: 'utf8' });
    if (found.status !== 0) {
      console.log('[agent-metrics] promtool is not on PATH: `promtool check metrics` not run (Debian package prometheus)');
      return;
    }
    for (const a of [p1, r2]) {
      const { text } = await a.metrics();
      const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
      expect({ instance: a.name, status: r.status, out: `${r.stdout}${r.stderr}` }).toEqual({ instance: a.name, status: 0, out: '' });
    }
  }));

  it('says pg_up 0 while the instance is fenced (postgres stopped), and 1 again after unfencing', track(async () => {
    expect((await r2.api('POST', '/v1/fence?wait=60000', {})).status).toBe(200);
    const t0 = performance.now();
    const s = await scrape(r2);
    timings.fencedScrape = Math.round(performance.now() - t0);
    expect(one(s, 'pg_up')).toBe(0);
    expect(one(s, 'pgpilot_instance_fenced')).toBe(1);
    // What the agent knows without SQL stays: the data directory is a replica's.
    expect(one(s, 'pgpilot_instance_role', { role: 'replica' })).toBe(1);
    expect(missing(s, ['pg_stat_database_xact_commit', ...REPLICA_ONLY])).toEqual(['pg_stat_database_xact_commit', ...REPLICA_ONLY]);
    expect(one(s, 'pgpilot_instance_volume_capacity_bytes', { volume: 'wal' })).toBeGreaterThan(0);

    expect((await r2.api('POST', '/v1/unfence')).status).toBe(200);
    await running(r2, (st) => st.streaming);
    const t1 = performance.now();
    const again = await until('pg_up 1 on r2', async () => {
      const s = await scrape(r2);
      return one(s, 'pg_up') === 1 ? s : undefined;
    }, 30_000, 100);
    timings.upAfterUnfence = Math.round(performance.now() - t1);
    expect(one(again, 'pgpilot_instance_fenced')).toBe(0);
    // The seconds need a replayed transaction since the restart; the bytes are there at once.
    expect(one(again, 'pgpilot_instance_replication_lag_bytes')).toBeGreaterThanOrEqual(0);
  }));

  it('does not listen with PGPILOT_METRICS_ENABLED=false', track(async () => {
    expect((await x3.api('GET', '/healthz', undefined, null)).status).toBe(200);
    await expect(x3.metrics()).rejects.toThrow();
  }));
});
