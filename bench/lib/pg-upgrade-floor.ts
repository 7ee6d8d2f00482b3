// The floor of a major upgrade, measured on the host: what pg_upgrade --link itself costs for a
// data set, without Kubernetes. A 16.x cluster loaded with pgbench and stopped cleanly, then timed:
// initdb of the new major (the upgrade Job's arguments, upgradeInitdbArgs), pg_upgrade --link (the
// Job's arguments, pgUpgradeArgs, with its trust hba file over a private socket) and the new server
// started until it accepts a connection. PostgreSQL refuses root: every tool runs as the `postgres`
// OS user (setpriv), on copies of the cached builds in a temp dir (the cache in /root is out of its
// reach), as test/integration/pg-upgrade.test.ts does. Everything goes through `onCleanup`.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { TRUST_LOCAL_HBA, pgUpgradeArgs, upgradeInitdbArgs, type NewClusterSettings } from '../../src/postgres/pg-upgrade.js';
import { createLogger } from '../../src/runtime/logger.js';
import { copyInstall } from '../../src/upgrade-job/copy-install.js';
import { asPostgresUser, freePort, giveToPostgres, pgTempDir, removeDir } from '../../test/integration/wal-postgres.js';
import { cacheRoot } from '../../test/support/binaries.js';
import { runTracked } from './run.js';

export interface UpgradeFloor {
  from: string;
  to: string;
  /** pgbench -i of the old cluster (not part of the floor). */
  loadMs: number;
  initdbMs: number;
  pgUpgradeMs: number;
  /** The new server spawned → its first accepted connection. */
  startMs: number;
  /** initdb + pg_upgrade + start: the floor. */
  totalMs: number;
}

export interface FloorOptions {
  /** Cached builds (<cacheRoot>/postgresql/<build>/bin), e.g. 16.15.0 and 17.11.0. */
  fromBuild: string;
  toBuild: string;
  fromMajor: number;
  toMajor: number;
  scale: number;
  jobs: number;
  onCleanup: (what: string, run: () => Promise<unknown>) => void;
  say: (msg: string) => void;
}

const C_LOCALE = { LC_ALL: 'C', LC_MESSAGES: 'C', LANG: 'C' };

/** A PostgreSQL server run as the postgres user, on its private socket only (no TCP). */
class LocalServer {
  private child: ChildProcess | undefined;
  private output = '';
  constructor(
    readonly bin: string,
    readonly pgdata: string,
    readonly socketDir: string,
    readonly port: number,
    readonly hbaFile: string,
  ) {}

  /** Spawns postgres; resolves once it accepts a connection. */
  async start(): Promise<void> {
    const [cmd, args] = asPostgresUser(join(this.bin, 'postgres'), ['-D', this.pgdata, '-c', `hba_file=${this.hbaFile}`, '-c', `port=${this.port}`, '-c', 'listen_addresses=', '-c', `unix_socket_directories=${this.socketDir}`]);
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: '/usr/bin:/bin', ...C_LOCALE } });
    this.child = child;
    for (const s of [child.stdout!, child.stderr!]) s.on('data', (d: Buffer) => (this.output += d.toString()));
    for (;;) {
      try {
        await this.query('SELECT 1');
        return;
      } catch (err) {
        if (child.exitCode !== null || child.signalCode !== null) throw new Error(`postgres (${this.bin}) did not start: ${String(err)}\n${this.output.slice(-2000)}`);
        await sleep(20);
      }
    }
  }

  /** Fast shutdown (clean: a shutdown checkpoint); SIGKILL after 60 s. */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGINT');
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    await exited;
    clearTimeout(timer);
    if (child.exitCode !== 0) throw new Error(`postgres (${this.pgdata}) exited ${child.exitCode ?? child.signalCode}: ${this.output.slice(-1000)}`);
  }

  async query(sql: string, database = 'postgres'): Promise<void> {
    const c = new pg.Client({ host: this.socketDir, port: this.port, user: 'postgres', database, connectionTimeoutMillis: 3000 });
    c.on('error', () => undefined);
    await c.connect();
    try {
      await c.query(sql);
    } finally {
      await c.end().catch(() => undefined);
    }
  }
}

/** A server pg_upgrade started (through pg_ctl, detached) and left behind: stopped through its postmaster.pid. */
async function stopLeftPostmaster(pgdata: string): Promise<void> {
  const pid = await readFile(join(pgdata, 'postmaster.pid'), 'utf8').then((t) => Number(t.split('\n')[0]), () => undefined);
  if (!pid || !existsSync(`/proc/${pid}`)) return;
  process.kill(pid, 'SIGINT');
  for (let i = 0; i < 600 && existsSync(`/proc/${pid}`); i++) await sleep(100);
  if (existsSync(`/proc/${pid}`)) process.kill(pid, 'SIGKILL');
}

export async function measureUpgradeFloor(o: FloorOptions): Promise<UpgradeFloor> {
  const root = await pgTempDir('pgpilot-bench-upg-');
  const oldData = join(root, 'old', 'pgdata');
  const newData = join(root, 'new', 'pgdata');
  // Registered first, so it runs last: after the servers below stopped.
  o.onCleanup(`the pg_upgrade floor's folder ${root}`, async () => {
    await stopLeftPostmaster(oldData).catch(() => undefined);
    await stopLeftPostmaster(newData).catch(() => undefined);
    await removeDir(root);
  });
  const log = createLogger('error', 'bench');
  const copy = async (build: string) => (await copyInstall(join(root, `install-${build}`), log, `${join(cacheRoot(), 'postgresql', build, 'bin')}:/usr/bin:/bin`)).bindir;
  const oldBin = await copy(o.fromBuild);
  const newBin = await copy(o.toBuild);
  const sockets = join(root, 'sock');
  const work = join(root, 'work');
  for (const d of [join(root, 'old'), join(root, 'new'), sockets, work]) await mkdir(d, { recursive: true });
  const hbaFile = join(root, 'trust-hba.conf');
  await writeFile(hbaFile, TRUST_LOCAL_HBA);
  await giveToPostgres(root);
  const env = { PATH: '/usr/bin:/bin', HOME: work, ...C_LOCALE };
  const asPg = (bin: string, tool: string, args: string[], label: string) => {
    const [cmd, argv] = asPostgresUser(join(bin, tool), args);
    return runTracked(cmd, argv, { label, env, cwd: work, timeoutMs: 1_200_000 });
  };
  // The cluster's own initdb settings (defaults.ts): UTF8, C.UTF-8, data checksums, 16 MB WAL segments.
  const settings = (pgdata: string, major: number): NewClusterSettings => ({ pgdata, superuser: 'postgres', encoding: 'UTF8', locale: 'C.UTF-8', dataChecksums: true, walSegmentBytes: 16 * 1024 * 1024, major });

  // The old cluster: the app database loaded with pgbench, then stopped cleanly.
  await asPg(oldBin, 'initdb', upgradeInitdbArgs(settings(oldData, o.fromMajor)), `initdb ${o.fromBuild}`);
  const oldServer = new LocalServer(oldBin, oldData, sockets, await freePort(), hbaFile);
  o.onCleanup(`the ${o.fromBuild} server of the floor`, () => oldServer.stop());
  await oldServer.start();
  await oldServer.query('CREATE DATABASE app');
  const loadStarted = Date.now();
  await asPg(oldBin, 'pgbench', ['-h', sockets, '-p', String(oldServer.port), '-U', 'postgres', '-i', '-q', '-s', String(o.scale), 'app'], `pgbench -i -s ${o.scale} (host)`);
  const loadMs = Date.now() - loadStarted;
  await oldServer.stop();
  o.say(`floor: ${o.fromBuild} loaded with pgbench -i -s ${o.scale} in ${loadMs} ms and stopped; timing ${o.toBuild} initdb + pg_upgrade --link -j ${o.jobs} + start`);

  const started = Date.now();
  await asPg(newBin, 'initdb', upgradeInitdbArgs(settings(newData, o.toMajor)), `initdb ${o.toBuild}`);
  const initdbDone = Date.now();
  await asPg(newBin, 'pg_upgrade', pgUpgradeArgs({ oldBin, newBin, oldData, newData, superuser: 'postgres', socketDir: sockets, hbaFile, mode: 'link', jobs: o.jobs }), 'pg_upgrade --link');
  const upgradeDone = Date.now();
  const newServer = new LocalServer(newBin, newData, sockets, await freePort(), hbaFile);
  o.onCleanup(`the ${o.toBuild} server of the floor`, () => newServer.stop());
  await newServer.start();
  const ready = Date.now();
  await newServer.stop();
  return { from: o.fromBuild, to: o.toBuild, loadMs, initdbMs: initdbDone - started, pgUpgradeMs: upgradeDone - initdbDone, startMs: ready - upgradeDone, totalMs: ready - started };
}
