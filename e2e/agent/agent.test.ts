// The instance agent with real PostgreSQL 15 processes on loopback: bootstrap (initdb, clone),
// streaming, auth, crash restart, promote, repoint, rewind, re-clone, fence, clean shutdown.
// Needs no apiserver. Timings are printed, never asserted.
import { appendFileSync, readdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClusterSpec } from '../../src/api/cluster.js';
import type { PromoteResult } from '../../src/instance/api-types.js';
import { requirePostgresBinaries } from '../../test/support/binaries.js';
import { AgentCluster, type AgentProcess, PG_BIN, pickIps, until, agentRunning, FailureFlag } from './agent-harness.js';

// Missing PostgreSQL binaries fail the file with what to install; never a silent skip.
beforeAll(() => requirePostgresBinaries(PG_BIN));
const spec = {
  version: '15',
  instances: 3,
  storage: { size: '1Gi' },
  highAvailability: { enabled: true, synchronousCommit: true, synchronousReplicas: 1 },
} as ClusterSpec;

const timings: Record<string, number> = {};
async function timed<T>(name: string, fn: () => Promise<T>): Promise<T> {
  const t0 = performance.now();
  try {
    return await fn();
  } finally {
    timings[name] = Math.round(performance.now() - t0);
  }
}

const running = agentRunning;

describe('instance agent with real PostgreSQL', () => {
  const cluster = new AgentCluster();
  let p1: AgentProcess, r2: AgentProcess, r3: AgentProcess, x4: AgentProcess, r5: AgentProcess;
  const flag = new FailureFlag();

  beforeAll(async () => {
    await cluster.setup(spec);
    const ips = await pickIps(5);
    [p1, r2, r3, x4, r5] = await Promise.all([
      cluster.add('p1', ips[0]!),
      cluster.add('r2', ips[1]!),
      cluster.add('r3', ips[2]!, { walVolume: true }),
      cluster.add('x4', ips[3]!, { walVolume: true }),
      cluster.add('r5', ips[4]!),
    ]);
    await Promise.all(cluster.agents.map((a) => until(`${a.name} agent up`, async () => (await a.api('GET', '/healthz', undefined, null)).status === 200, 30_000)));
  });

  afterAll(async () => {
    console.log(`[agent] timings (ms): ${JSON.stringify(timings)}`);
    const keep = flag.keep();
    if (keep) console.log(`[agent] logs kept in ${cluster.root}/<instance>/agent.log`);
    await cluster.cleanup(keep);
  });

  const { track } = flag;

  it('waits for bootstrap, then initdb-bootstraps a primary and clones three streaming replicas', track(async () => {
    const s = await p1.status();
    expect(s).toMatchObject({ phase: 'AwaitingBootstrap', role: 'none', running: false });
    expect((await p1.api('GET', '/readyz', undefined, null)).status).toBe(503);

    // x4 is a separate, unrelated cluster (own initdb): later, its rewind must be impossible.
    await timed('bootstrapInitdb', async () => {
      expect((await p1.api('POST', '/v1/bootstrap', { mode: 'initdb' })).status).toBe(202);
      expect((await x4.api('POST', '/v1/bootstrap', { mode: 'initdb' })).status).toBe(202);
      await running(p1);
    });
    expect((await p1.api('POST', '/v1/bootstrap', { mode: 'initdb' })).status).toBe(409);
    await timed('clone3', async () => {
      for (const r of [r2, r3, r5]) expect((await r.api('POST', '/v1/bootstrap', { mode: 'clone', primary: p1.endpoint })).status).toBe(202);
      await Promise.all([r2, r3, r5].map((r) => running(r, (st) => st.streaming)));
    });
    for (const r of [r2, r3, r5]) {
      const st = await r.status();
      expect(st).toMatchObject({ role: 'replica', streaming: true, following: `${p1.ip}:5432`, fenced: false, restarts: 0 });
    }
    // A walsender counts in the quorum once its standby has replied with a flush position: wait
    // for that too (right after connecting, pg_stat_replication can say async for a moment).
    const ps = await until('three walsenders in the quorum', async () => {
      const st = await p1.status();
      return st.replication.filter((x) => x.state === 'streaming' && x.syncState === 'quorum').length === 3 ? st : undefined;
    });
    expect(ps.role).toBe('primary');
    expect(ps.timeline).toBe(1);
    expect(ps.replication.map((x) => x.applicationName).sort()).toEqual(['r2', 'r3', 'r5']);
    expect(ps.replication.every((x) => x.syncState === 'quorum')).toBe(true);
    expect((await p1.api('GET', '/readyz', undefined, null)).status).toBe(200);
    // The application owner and database exist; the replication role can replicate.
    expect(await p1.sql('SELECT datname FROM pg_database WHERE datname = $1', ['app'])).toHaveLength(1);
    expect(await p1.sql("SELECT 1 FROM pg_roles WHERE rolname = 'streaming_replica' AND rolreplication")).toHaveLength(1);
    await running(x4);
  }));

  it('replicates writes from the primary to both replicas', track(async () => {
    await p1.sql('CREATE TABLE t (id int primary key, v text)', [], 'app');
    await p1.sql("INSERT INTO t VALUES (1, 'one')", [], 'app');
    for (const r of [r2, r3, r5]) await until(`row on ${r.name}`, async () => (await r.sql('SELECT v FROM t WHERE id = 1', [], 'app'))[0]?.v === 'one');
  }));

  it('requires the bearer token on /v1 but not on probes', track(async () => {
    expect((await p1.api('GET', '/v1/status', undefined, null)).status).toBe(401);
    expect((await p1.api('GET', '/v1/status', undefined, 'wrong-token')).status).toBe(401);
    expect((await p1.api('POST', '/v1/promote', undefined, 'x')).status).toBe(401);
    expect((await p1.api('GET', '/healthz', undefined, null)).status).toBe(200);
    expect((await p1.api('POST', '/v1/follow', { primary: { host: 'a b', port: 1 } })).status).toBe(400);
    expect((await p1.api('POST', '/v1/reload')).status).toBe(200);
  }));

  it('restarts postgres after SIGKILL', track(async () => {
    const pid = r3.postmasterPid();
    expect(pid).toBeTypeOf('number');
    await timed('crashRestart', async () => {
      process.kill(pid!, 'SIGKILL');
      await until('r3 restarted', async () => {
        const s = await r3.status();
        return s.restarts === 1 && s.running && s.phase === 'Running';
      });
    });
    expect(r3.postmasterPid()).not.toBe(pid);
    await until('r3 streams again', async () => (await r3.status()).streaming, 30_000);
  }));

  it('promotes a replica, repoints another without a restart, rewinds a diverged replica and the old primary', track(async () => {
    // Both replicas caught up: r3 then has no WAL the promoted r2 lacks, and can just repoint.
    await until('replicas caught up', async () => {
      const cur = (await p1.status()).currentLsn;
      const [a, b] = await Promise.all([r2.status(), r3.status()]);
      return cur !== null && a.receiveLsn === cur && b.receiveLsn === cur;
    });
    const promoted = await timed('promote', async () => {
      const r = await r2.api<PromoteResult>('POST', '/v1/promote');
      expect(r.status).toBe(200);
      return r.body;
    });
    expect(promoted.timeline).toBe(2);
    expect((await r2.status()).role).toBe('primary');

    const r3pid = r3.postmasterPid();
    await timed('repoint', async () => {
      expect((await r3.api('POST', '/v1/follow', { primary: r2.endpoint })).status).toBe(200);
    });
    expect(r3.postmasterPid()).toBe(r3pid);
    const s3 = await r3.status();
    expect(s3).toMatchObject({ role: 'replica', streaming: true, following: `${r2.ip}:5432`, timeline: 2 });

    // The old primary still runs (a partition): a local-only commit makes it diverge, and r5,
    // still following it, receives that commit too.
    await p1.sql("SET synchronous_commit = local; INSERT INTO t VALUES (99, 'lost')", [], 'app');
    await until('row 99 on r5', async () => (await r5.sql('SELECT 1 FROM t WHERE id = 99', [], 'app')).length === 1);
    await r2.sql("INSERT INTO t VALUES (2, 'two')", [], 'app');

    await timed('rewindDivergedReplica', async () => {
      const r = await r5.api('POST', '/v1/follow', { primary: r2.endpoint });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
    });
    expect(await r5.status()).toMatchObject({ role: 'replica', streaming: true, following: `${r2.ip}:5432`, timeline: 2 });
    expect(r5.logLines.some((l) => l.includes('has WAL the new primary lacks'))).toBe(true);
    await until('row 2 on r5', async () => (await r5.sql('SELECT v FROM t WHERE id = 2', [], 'app'))[0]?.v === 'two');
    expect(await r5.sql('SELECT v FROM t WHERE id = 99', [], 'app')).toHaveLength(0);

    expect((await p1.api('POST', '/v1/fence')).status).toBe(200);
    const f = await p1.status();
    expect(f).toMatchObject({ phase: 'Fenced', fenced: true, running: false });
    expect((await p1.api('GET', '/readyz', undefined, null)).status).toBe(503);
    expect(p1.postmasterPid()).toBeNull();

    expect((await r2.api('POST', '/v1/checkpoint')).status).toBe(200);
    await timed('rewind', async () => {
      const r = await p1.api('POST', '/v1/follow', { primary: r2.endpoint });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
    });
    const s1 = await p1.status();
    expect(s1).toMatchObject({ role: 'replica', streaming: true, fenced: false, following: `${r2.ip}:5432`, timeline: 2 });
    expect(p1.logLines.some((l) => l.includes('follow: rewound'))).toBe(true);
    await until('row 2 on p1', async () => (await p1.sql('SELECT v FROM t WHERE id = 2', [], 'app'))[0]?.v === 'two');
    expect(await p1.sql('SELECT v FROM t WHERE id = 99', [], 'app')).toHaveLength(0);
    const s2 = await until('r2 has three walsenders', async () => {
      const st = await r2.status();
      return st.replication.filter((x) => x.state === 'streaming').length === 3 ? st : undefined;
    });
    expect(s2.replication.map((x) => x.applicationName).sort()).toEqual(['p1', 'r3', 'r5']);
    expect(s2.timeline).toBe(2);
  }));

  it('re-clones an instance whose rewind is impossible (another system)', track(async () => {
    const before = await x4.status();
    const target = await r2.status();
    expect(before.systemIdentifier).not.toBe(target.systemIdentifier);
    await timed('reclone', async () => {
      const r = await x4.api('POST', '/v1/follow', { primary: r2.endpoint });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
    });
    const after = await x4.status();
    expect(after).toMatchObject({ role: 'replica', streaming: true, systemIdentifier: target.systemIdentifier, timeline: 2 });
    expect(x4.logLines.some((l) => l.includes('re-cloning'))).toBe(true);
    // pg_wal stayed on its own volume through the re-clone, and nothing was left aside.
    expect(readlinkSync(join(x4.pgdata, 'pg_wal'))).toBe(join(x4.dir, 'wal', 'pg_wal'));
    expect(readdirSync(join(x4.dir, 'data')).filter((f) => f.includes('.old-'))).toEqual([]);
    expect(readdirSync(join(x4.dir, 'wal'))).toEqual(['pg_wal']);
    expect((await x4.sql('SELECT v FROM t WHERE id = 2', [], 'app'))[0]?.v).toBe('two');
  }));

  it('fences and unfences', track(async () => {
    expect((await r3.api('POST', '/v1/fence')).status).toBe(200);
    expect(await r3.status()).toMatchObject({ phase: 'Fenced', fenced: true, running: false });
    expect((await r3.api('POST', '/v1/promote')).status).toBe(409);
    expect((await r3.api('GET', '/readyz', undefined, null)).status).toBe(503);
    expect((await r3.api('POST', '/v1/unfence')).status).toBe(200);
    await running(r3, (s) => s.streaming && !s.fenced);
    expect((await r3.api('GET', '/readyz', undefined, null)).status).toBe(200);
  }));

  it('reloads by itself when the mounted configuration changes', track(async () => {
    const before = (await r2.sql<{ work_mem: string }>('SHOW work_mem'))[0]!.work_mem;
    expect(before).not.toBe('7MB');
    appendFileSync(join(cluster.root, 'config', 'postgresql.conf'), "work_mem = '7MB'\n");
    await timed('configReload', () => until('work_mem reloaded', async () => (await r2.sql<{ work_mem: string }>('SHOW work_mem'))[0]!.work_mem === '7MB', 10_000));
  }));

  it('restarts on existing data in the role the data says, and keeps a fence across restarts', track(async () => {
    r3.child!.kill('SIGTERM');
    expect(await r3.exitCode).toBe(0);
    r3.start();
    const s = await timed('agentRestartReplica', () => running(r3, (st) => st.streaming));
    expect(s).toMatchObject({ role: 'replica', following: `${r2.ip}:5432`, restarts: 0, timeline: 2 });

    expect((await x4.api('POST', '/v1/fence')).status).toBe(200);
    x4.child!.kill('SIGTERM');
    expect(await x4.exitCode).toBe(0);
    x4.start();
    await until('x4 agent up', async () => (await x4.api('GET', '/healthz', undefined, null)).status === 200);
    expect(await x4.status()).toMatchObject({ phase: 'Fenced', fenced: true, running: false, role: 'replica' });
    expect(x4.postmasterPid()).toBeNull();
    expect((await x4.api('POST', '/v1/unfence')).status).toBe(200);
    await running(x4, (st) => st.streaming);
  }));

  it('a primary whose postgres crashed comes back read-only until promoted again (never a writable old primary)', track(async () => {
    const pid = r2.postmasterPid();
    const tlBefore = (await r2.status()).timeline!;
    process.kill(pid!, 'SIGKILL');
    await until('r2 back', async () => r2.postmasterPid() !== pid && (await r2.status()).running);
    expect(await r2.status()).toMatchObject({ role: 'replica', awaitingRole: true, following: null });
    // Even a client that does not wait for replicas cannot write there.
    await expect(r2.sql("SET synchronous_commit TO local; INSERT INTO t VALUES (20, 'lost?')", [], 'app')).rejects.toThrow(/read-only/);
    const r = await r2.api<PromoteResult>('POST', '/v1/promote?wait=10000');
    expect(r.status).toBe(200);
    expect(r.body.timeline).toBe(tlBefore + 1);
    const st = await r2.status();
    expect(st).toMatchObject({ role: 'primary', awaitingRole: false, operation: { kind: 'promote', state: 'succeeded' } });
    await r2.sql("INSERT INTO t VALUES (21, 'after')", [], 'app');
    await until('r3 follows the new timeline', async () => {
      const s3 = await r3.status();
      return s3.streaming && s3.timeline === tlBefore + 1 && (await r3.sql('SELECT v FROM t WHERE id = 21', [], 'app'))[0]?.v === 'after';
    }, 30_000);
  }));

  it('lowering max_connections: a replica restarted first still starts (with the primary\'s value), the primary restarts writable within its permit, then the replica restarts itself on the lower value', track(async () => {
    const maxConnections = async (a: AgentProcess) => Number((await a.sql<{ v: string }>("SELECT current_setting('max_connections') AS v"))[0]!.v);
    const before = await maxConnections(r3);
    const lower = before - 10;
    appendFileSync(join(cluster.root, 'config', 'postgresql.conf'), `max_connections = '${lower}'\n`);
    // A replica restarting now reads the lower value while its data says the primary runs `before`:
    // PostgreSQL alone would refuse to start ("recovery aborted because of insufficient parameter settings").
    const replicaPid = r3.postmasterPid();
    process.kill(replicaPid!, 'SIGKILL');
    const provisional = await until('r3 back, above its configuration', async () => {
      const s = r3.postmasterPid() !== replicaPid ? await r3.status() : undefined;
      return s?.running && s.streaming ? s : undefined;
    }, 60_000);
    expect(provisional.provisionalSettings).toEqual({ max_connections: String(before) });
    expect(await maxConnections(r3)).toBe(before);

    // The primary restarts in place within a permit: writable at once, same timeline, no promotion.
    const timeline = (await r2.status()).timeline;
    const permit = await r2.api<{ until: string }>('POST', '/v1/restart-permit', { seconds: 60 });
    expect(permit.status).toBe(200);
    expect(Date.parse(permit.body.until)).toBeGreaterThan(Date.now());
    expect((await r3.api('POST', '/v1/restart-permit', { seconds: 60 })).status).toBe(409);
    const primaryPid = r2.postmasterPid();
    process.kill(primaryPid!, 'SIGKILL');
    await until('r2 back', async () => r2.postmasterPid() !== primaryPid && (await r2.status()).running, 60_000);
    expect(await r2.status()).toMatchObject({ role: 'primary', awaitingRole: false, timeline });
    expect(await maxConnections(r2)).toBe(lower);
    await r2.sql("INSERT INTO t VALUES (22, 'after the planned restart')", [], 'app');

    // r3 replays the primary's change and restarts itself once, on the configured value.
    await until('r3 on the lower value, streaming', async () => {
      const s = await r3.status();
      return s.running && s.streaming && !s.provisionalSettings && (await maxConnections(r3).catch(() => 0)) === lower;
    }, 60_000);
    await until('r3 has the row', async () => (await r3.sql('SELECT v FROM t WHERE id = 22', [], 'app'))[0]?.v === 'after the planned restart', 30_000);
  }));

  it('runs follow as an operation: ?wait=0 answers 202 at once, status shows it to the end', track(async () => {
    // x4 follows r2 already: a follow is a quick repoint, but the answer does not wait for it.
    const r = await x4.api<{ accepted: boolean; operation: { kind: string; state: string } }>('POST', '/v1/follow?wait=0', { primary: r2.endpoint });
    expect(r.status).toBe(202);
    expect(r.body.operation).toMatchObject({ kind: 'follow' });
    await until('the follow operation succeeded', async () => (await x4.status()).operation?.state === 'succeeded', 30_000);
    expect(await x4.status()).toMatchObject({ streaming: true, following: `${r2.ip}:5432` });
    expect((await x4.api('POST', '/v1/follow?wait=soon', { primary: r2.endpoint })).status).toBe(400);
  }));

  it('never logs a secret', track(async () => {
    const all = cluster.agents.flatMap((a) => a.logLines).join('\n');
    expect(all.length).toBeGreaterThan(0);
    for (const secret of Object.values(cluster.secrets)) expect(all.includes(secret)).toBe(false);
    // Lines are JSON, postgres' own lines under component postgres.
    const parsed = p1.logLines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { component: string });
    expect(parsed.some((l) => l.component === 'postgres')).toBe(true);
    expect(parsed.some((l) => l.component === 'instance')).toBe(true);
  }));

  it('stops postgres cleanly and exits 0 on SIGTERM', track(async () => {
    // An idle session holds off a smart shutdown: the agent escalates to fast at half its budget.
    const client = new pg.Client({ host: r2.ip, port: 5432, user: 'postgres', password: cluster.secrets.superuser, database: 'postgres' });
    client.on('error', () => undefined);
    await client.connect();
    await timed('shutdown', async () => {
      for (const a of cluster.agents) a.child!.kill('SIGTERM');
      const codes = await Promise.all(cluster.agents.map((a) => a.exitCode));
      expect(codes).toEqual(cluster.agents.map(() => 0));
    });
    for (const a of cluster.agents) expect(a.postmasterPid()).toBeNull();
    expect(r2.logLines.some((l) => l.includes('escalating'))).toBe(true);
    await client.end().catch(() => undefined);
  }));
});
