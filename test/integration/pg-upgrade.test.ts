// `pgpilot upgrade copy-install | check | run` with the real PostgreSQL builds of the cache
// (scripts/ensure-postgres.sh): the CLI runs as the `postgres` OS user (as UID 26 in the Job pod)
// with the new build's bin/ on PATH and the old build copied by copy-install, as the Job does it.
// (a) 16 → 17 link mode with pgbench data: same rows and checksums on 17, update_extensions.sql,
// the old cluster aside, a retried Job, removeOldCluster; (b) 14 → 18 copy mode; (c) check
// against a running 16 with a regproc column, then a clean one; (d) a run killed during
// pg_upgrade, rolled back; (e) a WAL dir of its own: a failed run rolled back, then upgraded.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { chmod, copyFile, link, mkdir, readFile, readlink, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readUpgradeState, removeOldCluster, rollbackUnfinishedUpgrade } from '../../src/postgres/pg-upgrade.js';
import { upgradeLayoutOf } from '../../src/postgres/upgrade-layout.js';
import { createLogger } from '../../src/runtime/logger.js';
import { copyInstall } from '../../src/upgrade-job/copy-install.js';
import { cacheRoot } from '../support/binaries.js';
import { asPostgresUser, freePort, giveToPostgres, pgTempDir, removeDir, spawnServer, stopServer } from './wal-postgres.js';

const VERSIONS = { 14: '14.23.0', 16: '16.15.0', 17: '17.11.0', 18: '18.6.0' } as const;
type Major = keyof typeof VERSIONS;
const asPg = asPostgresUser;
const log = createLogger('error', 'test');
const REPO = path.resolve(import.meta.dirname, '../..');

let root: string;
let node: string;
let secrets: string;
/** major → folder copy-install wrote (the old install), and its bin/. */
const installs = new Map<Major, { dir: string; bin: string }>();

beforeAll(async () => {
  root = await pgTempDir('pgpilot-upg-');
  // The postgres user cannot reach the cache (in /root): node and the builds get copies in /tmp.
  node = path.join(root, 'node');
  await link(process.execPath, node).catch(() => copyFile(process.execPath, node));
  for (const major of Object.keys(VERSIONS).map(Number) as Major[]) {
    const dir = path.join(root, `install-${major}`);
    const bin = path.join(cacheRoot(), 'postgresql', VERSIONS[major], 'bin');
    const copied = await copyInstall(dir, log, `${bin}:/usr/bin:/bin`);
    installs.set(major, { dir, bin: copied.bindir });
  }
  secrets = path.join(root, 'secrets');
  await mkdir(path.join(secrets, 'superuser'), { recursive: true });
  await writeFile(path.join(secrets, 'superuser', 'username'), 'postgres');
  await writeFile(path.join(secrets, 'superuser', 'password'), 'not-used-trust');
  await giveToPostgres(root);
  await chmod(secrets, 0o700);
}, 120_000);

afterAll(async () => {
  await removeDir(root);
});

const inst = (m: Major) => installs.get(m)!;

interface CliResult {
  code: number | null;
  lines: string[];
  /** The last line as JSON. */
  last: { level: string; msg: string };
}

/** The pgpilot CLI as the postgres user, the `to` build's bin/ on PATH, `from` as the old install. */
function startCli(args: string[], from: Major, to: Major, env: Record<string, string>, onLine?: (line: string, child: ChildProcess) => void): { child: ChildProcess; done: Promise<CliResult> } {
  const [cmd, argv] = asPg(node, ['--import', 'tsx', path.join(REPO, 'src/cli/main.ts'), 'upgrade', ...args]);
  const child = spawn(cmd, argv, {
    cwd: REPO,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { HOME: root, PATH: `${inst(to).bin}:/usr/bin:/bin`, PGPILOT_OLD_INSTALL: inst(from).dir, PGPILOT_SECRETS_DIR: secrets, PGPILOT_INITDB_LOCALE: 'C.UTF-8', ...env },
  });
  const lines: string[] = [];
  // One buffer per stream: a line of one must not be cut by the other.
  const reader = () => {
    let buf = '';
    return (d: Buffer) => {
      buf += d.toString();
      const parts = buf.split('\n');
      buf = parts.pop()!;
      for (const l of parts.filter(Boolean)) {
        lines.push(l);
        onLine?.(l, child);
      }
    };
  };
  child.stdout!.on('data', reader());
  child.stderr!.on('data', reader());
  const done = new Promise<CliResult>((resolve) =>
    child.on('close', (code) => {
      let last = { level: '', msg: lines.at(-1) ?? '' };
      try {
        last = JSON.parse(lines.at(-1) ?? '') as CliResult['last'];
      } catch {
        /* not JSON: the test says so */
      }
      resolve({ code, lines, last });
    }),
  );
  return { child, done };
}

const cli = (args: string[], from: Major, to: Major, env: Record<string, string>) => startCli(args, from, to, env).done;

class Server {
  child: ChildProcess | undefined;
  output: () => string = () => '';
  constructor(
    readonly bin: string,
    readonly pgdata: string,
    readonly port: number,
  ) {}

  static async create(major: Major, dir: string, opts: { checksums?: boolean; waldir?: string } = {}): Promise<Server> {
    await mkdir(dir, { recursive: true });
    await giveToPostgres(dir);
    const pgdata = path.join(dir, 'pgdata');
    const [cmd, args] = asPg(path.join(inst(major).bin, 'initdb'), [
      '-D', pgdata, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C.UTF-8', '--no-sync',
      ...(opts.checksums === false ? (major >= 18 ? ['--no-data-checksums'] : []) : ['--data-checksums']),
      ...(opts.waldir ? [`--waldir=${opts.waldir}`] : []),
    ]);
    execFileSync(cmd, args, { stdio: 'pipe' });
    const s = new Server(inst(major).bin, pgdata, await freePort());
    await s.start();
    return s;
  }

  async start(bin = this.bin): Promise<void> {
    // The upgraded data directory's pg_hba.conf is pgpilot's (peer, reject): the operator mounts its own.
    const hba = path.join(path.dirname(this.pgdata), 'test-hba.conf');
    await writeFile(hba, 'local all all trust\nhost all all 127.0.0.1/32 trust\n');
    await giveToPostgres(hba);
    const [cmd, args] = asPg(path.join(bin, 'postgres'), ['-D', this.pgdata, '-c', `hba_file=${hba}`, '-c', `port=${this.port}`, '-c', 'listen_addresses=127.0.0.1', '-c', `unix_socket_directories=${path.dirname(this.pgdata)}`, '-c', 'fsync=off']);
    const server = await spawnServer([cmd, args], () => this.query('select 1'));
    this.child = server.child;
    this.output = server.output;
  }

  async stop(): Promise<void> {
    await stopServer(this.child);
  }

  async query<T = Record<string, unknown>>(sql: string): Promise<T[]> {
    const c = new pg.Client({ host: '127.0.0.1', port: this.port, user: 'postgres', database: 'postgres', connectionTimeoutMillis: 3000 });
    c.on('error', () => undefined);
    await c.connect();
    try {
      return (await c.query(sql)).rows as T[];
    } finally {
      await c.end().catch(() => undefined);
    }
  }

  pgbench(scale: number): void {
    execFileSync(path.join(this.bin, 'pgbench'), ['-h', '127.0.0.1', '-p', String(this.port), '-U', 'postgres', '-i', '-q', '-s', String(scale), 'postgres'], { stdio: 'pipe' });
  }
}

const TABLES = ['pgbench_accounts', 'pgbench_branches', 'pgbench_tellers', 'pgbench_history', 'typed'];

async function addTypedTable(s: Server): Promise<void> {
  await s.query(`create table typed (id int primary key, t text, n numeric(12,3), j jsonb, ts timestamptz, a int[], u uuid, b bytea, r int4range)`);
  await s.query(`insert into typed select g, 'row ' || g, g * 1.5, jsonb_build_object('g', g, 'l', array[g, g + 1]), '2024-01-01 00:00:00+00'::timestamptz + g * interval '1 hour',
    array[g, -g], md5(g::text)::uuid, decode(md5(g::text), 'hex'), int4range(g, g + 10) from generate_series(1, 500) g`);
}

/** Per table: row count and md5 of all rows in a stable order. */
async function fingerprint(s: Server): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const t of TABLES) {
    const [row] = await s.query<{ c: string; h: string }>(`select count(*)::text c, coalesce(md5(string_agg(x::text, ',' order by x::text)), '') h from ${t} x`);
    out[t] = `${row!.c}:${row!.h}`;
  }
  return out;
}

const pgVersion = (pgdata: string) => readFile(path.join(pgdata, 'PG_VERSION'), 'utf8').then((t) => t.trim());

describe('pgpilot upgrade', () => {
  it('(a) 16 → 17 in link mode keeps every row; update_extensions.sql; a retried Job; removeOldCluster', async () => {
    const s = await Server.create(16, path.join(root, 'a'));
    s.pgbench(2);
    await addTypedTable(s);
    // pg_stat_statements is 1.10 on 16 and 1.11 on 17: pg_upgrade writes update_extensions.sql.
    await s.query('create extension pg_stat_statements');
    const before = await fingerprint(s);
    await s.stop();

    const env = { PGDATA: s.pgdata, PGPILOT_UPGRADE_MODE: 'link' };
    const r = await cli(['run'], 16, 17, env);
    expect(r.code, r.lines.slice(-5).join('\n')).toBe(0);
    const timings = r.lines.map((l) => JSON.parse(l) as { phase?: string; ms?: number }).filter((l) => l.phase);
    console.log('16 → 17 link:', timings.map((t) => `${t.phase} ${t.ms} ms`).join(', '));
    const layout = upgradeLayoutOf(s.pgdata, undefined);
    expect(await pgVersion(s.pgdata)).toBe('17');
    expect(await pgVersion(layout.oldPgdataAside(16))).toBe('16');
    expect(await readFile(layout.updateExtensions, 'utf8')).toMatch(/ALTER EXTENSION "?pg_stat_statements"? UPDATE/);
    expect((await readUpgradeState(s.pgdata, undefined))?.stage).toBe('swapped');
    expect(existsSync(layout.newPgdata)).toBe(false);

    await s.start(inst(17).bin);
    expect((await s.query<{ v: string }>("select current_setting('server_version_num') v"))[0]!.v).toMatch(/^17/);
    expect(await fingerprint(s)).toEqual(before);
    await s.stop();

    // A retried Job finds the state `swapped` and does nothing; the agent's rollback neither.
    const again = await cli(['run'], 16, 17, env);
    expect(again.code).toBe(0);
    expect(await rollbackUnfinishedUpgrade(s.pgdata, undefined, log)).toEqual({ rolledBack: false });
    await removeOldCluster(s.pgdata, undefined, 16);
    expect(existsSync(layout.oldPgdataAside(16))).toBe(false);
    expect(await readUpgradeState(s.pgdata, undefined)).toBeUndefined();
  });

  it('(b) 14 → 18 in one step in copy mode, without data checksums', async () => {
    const s = await Server.create(14, path.join(root, 'b'), { checksums: false });
    s.pgbench(1);
    await addTypedTable(s);
    const before = await fingerprint(s);
    await s.stop();
    const r = await cli(['run'], 14, 18, { PGDATA: s.pgdata, PGPILOT_UPGRADE_MODE: 'copy' });
    expect(r.code, r.lines.slice(-5).join('\n')).toBe(0);
    const timings = r.lines.map((l) => JSON.parse(l) as { phase?: string; ms?: number }).filter((l) => l.phase);
    console.log('14 → 18 copy:', timings.map((t) => `${t.phase} ${t.ms} ms`).join(', '));
    await s.start(inst(18).bin);
    expect((await s.query<{ v: string; c: string }>("select current_setting('server_version_num') v, current_setting('data_checksums') c"))[0]).toEqual({ v: expect.stringMatching(/^18/), c: 'off' });
    expect(await fingerprint(s)).toEqual(before);
    await s.stop();
    // Copy mode leaves the old cluster whole.
    expect(existsSync(path.join(upgradeLayoutOf(s.pgdata, undefined).oldPgdataAside(14), 'global', 'pg_control'))).toBe(true);
  });

  it('(c) check names a regproc column of the running cluster, leaves it running; a clean cluster passes', async () => {
    const s = await Server.create(16, path.join(root, 'c'));
    await s.query('create table bad (id int, f regproc)');
    await s.query(`insert into bad values (1, 'now'::regproc)`);
    const work = path.join(root, 'c', 'work');
    await mkdir(work);
    await giveToPostgres(work);
    const env = { PGPILOT_UPGRADE_SOURCE: `127.0.0.1:${s.port}`, PGPILOT_UPGRADE_WORK_DIR: work };
    const r = await cli(['check'], 16, 17, env);
    console.log('check failure message:', r.last.msg);
    expect(r.code).toBe(1);
    expect(r.last.level).toBe('error');
    expect(r.last.msg).toMatch(/^pg_upgrade --check failed at "Checking for reg\* data types in user tables": .*Your installation contains one of the reg\* data types/);
    expect(r.last.msg).toMatch(/bad\.f|"bad"\."f"|public\.bad\.f/);
    expect((await s.query<{ n: string }>('select count(*)::text n from bad'))[0]!.n).toBe('1');

    await s.query('drop table bad');
    const ok = await cli(['check'], 16, 17, env);
    expect(ok.code, ok.lines.slice(-5).join('\n')).toBe(0);
    await s.stop();
  });

  it('exits 2 naming a missing variable', async () => {
    const r = await cli(['run'], 16, 17, {});
    expect(r.code).toBe(2);
    expect(r.last).toMatchObject({ level: 'error', variable: 'PGDATA' });
  });

  it('(d) a run killed during pg_upgrade is rolled back and the old cluster starts on 16 with every row', async () => {
    const s = await Server.create(16, path.join(root, 'd'));
    s.pgbench(2);
    await addTypedTable(s);
    const before = await fingerprint(s);
    await s.stop();
    const layout = upgradeLayoutOf(s.pgdata, undefined);
    const run = startCli(['run'], 16, 17, { PGDATA: s.pgdata, PGPILOT_UPGRADE_MODE: 'link' }, (line, child) => {
      if (line.includes('Creating dump of global objects')) process.kill(-child.pid!, 'SIGKILL');
    });
    const r = await run.done;
    expect(r.code).toBe(null);
    // The pod dies with every process in it: so do the servers pg_upgrade started.
    for (const dir of [s.pgdata, layout.newPgdata]) {
      const pid = await readFile(path.join(dir, 'postmaster.pid'), 'utf8').then((t) => Number(t.split('\n')[0]), () => undefined);
      if (!pid) continue;
      process.kill(pid, 'SIGKILL');
      while (existsSync(`/proc/${pid}`)) await sleep(50);
    }
    expect((await readUpgradeState(s.pgdata, undefined))?.stage).toBe('prepared');
    const rb = await rollbackUnfinishedUpgrade(s.pgdata, undefined, log);
    expect(rb.rolledBack).toBe(true);
    expect(existsSync(layout.newPgdata)).toBe(false);
    expect(existsSync(layout.stateFile)).toBe(false);
    await s.start();
    expect((await s.query<{ v: string }>("select current_setting('server_version_num') v"))[0]!.v).toMatch(/^16/);
    expect(await fingerprint(s)).toEqual(before);
    await s.stop();
  });

  it('(e) a WAL dir of its own: a failed run is rolled back, the next one upgrades', async () => {
    const dir = path.join(root, 'e');
    const walDir = path.join(dir, 'wal', 'pg_wal');
    const s = await Server.create(16, dir, { waldir: walDir });
    s.pgbench(1);
    await addTypedTable(s);
    const before = await fingerprint(s);
    await s.stop();
    const layout = upgradeLayoutOf(s.pgdata, walDir);
    const env = { PGDATA: s.pgdata, PGPILOT_WAL_DIR: walDir, PGPILOT_UPGRADE_MODE: 'link' };

    // A column pg_upgrade refuses: the run fails at its checks and rolls back.
    await s.start();
    await s.query('create table bad (f regproc)');
    await s.stop();
    const bad = await cli(['run'], 16, 17, env);
    console.log('run failure message:', bad.last.msg);
    expect(bad.code).toBe(1);
    expect(bad.last.level).toBe('error');
    expect(bad.last.msg).toMatch(/pg_upgrade failed.*public\.bad\.f/);
    expect(existsSync(layout.newPgdata) || existsSync(layout.newWalDir!) || existsSync(layout.stateFile)).toBe(false);
    expect(await readlink(path.join(s.pgdata, 'pg_wal'))).toBe(walDir);
    expect(await pgVersion(s.pgdata)).toBe('16');

    await s.start();
    await s.query('drop table bad');
    await s.stop();
    const ok = await cli(['run'], 16, 17, env);
    expect(ok.code, ok.lines.slice(-5).join('\n')).toBe(0);
    expect(await readlink(path.join(s.pgdata, 'pg_wal'))).toBe(walDir);
    expect(await readlink(path.join(layout.oldPgdataAside(16), 'pg_wal'))).toBe(layout.oldWalAside(16));
    expect(existsSync(layout.oldWalAside(16)!)).toBe(true);
    await s.start(inst(17).bin);
    await s.query('checkpoint'); // writes WAL: the WAL dir is the new cluster's
    expect(await fingerprint(s)).toEqual(before);
    await s.stop();
  });
});
