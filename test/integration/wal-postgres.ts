// A real PostgreSQL 15 for the WAL archiving and fetching tests: initdb in a temp directory and the
// server started directly (not through pg_ctl) on 127.0.0.1 with a free port. postgres refuses to
// run as root, so when the tests run as root every PostgreSQL tool runs as the OS user `postgres`
// (setpriv) and the directories it writes to are handed to that user.
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmod, chown, mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import pg from 'pg';
import { errorText } from '../../src/util/error-text.js';

const execFileAsync = promisify(execFile);
export const PG_BIN = process.env.PGPILOT_PG_BIN ?? '/usr/lib/postgresql/15/bin';
const AS_ROOT = process.getuid?.() === 0;
const RUN_AS = 'postgres';

/** The postgres user's ids when we are root (for files the tests hand to postgres). */
export const pgOwner = AS_ROOT
  ? { uid: Number(execFileSync('id', ['-u', RUN_AS]).toString()), gid: Number(execFileSync('id', ['-g', RUN_AS]).toString()) }
  : undefined;

/** argv running `cmd` as the postgres user when we are root (setpriv), as is otherwise. */
export function asPostgresUser(cmd: string, args: string[]): [string, string[]] {
  return AS_ROOT ? ['setpriv', [`--reuid=${RUN_AS}`, `--regid=${RUN_AS}`, '--clear-groups', '--', cmd, ...args]] : [cmd, args];
}

/** A server process (any version's `postgres`), its output collected. */
export interface ServerProcess {
  child: ChildProcess;
  output: () => string;
}

/** Spawns `argv` and waits until `ready` succeeds (a minute at most), or the process has died. */
export async function spawnServer(argv: [string, string[]], ready: () => Promise<unknown>): Promise<ServerProcess> {
  const child = spawn(argv[0], argv[1], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  for (const s of [child.stdout!, child.stderr!]) s.on('data', (d: Buffer) => (output += d.toString()));
  for (let i = 0; ; i++) {
    try {
      await ready();
      return { child, output: () => output };
    } catch (err) {
      if (child.exitCode !== null || i > 600) throw new Error(`postgres did not start: ${String(err)}\n${output.slice(-2000)}`);
      await sleep(100);
    }
  }
}

/** A fast shutdown (SIGINT), waited for. */
export async function stopServer(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null) return;
  const exited = new Promise((r) => child.on('exit', r));
  child.kill('SIGINT');
  await exited;
}

/** argv for a PostgreSQL tool, as the postgres user when we are root. */
function asPg(tool: string, args: string[]): [string, string[]] {
  return asPostgresUser(path.join(PG_BIN, tool), args);
}

export async function runPgTool(tool: string, args: string[], cwd?: string): Promise<string> {
  requirePgTools();
  const [cmd, argv] = asPg(tool, args);
  const { stdout } = await execFileAsync(cmd, argv, { cwd, maxBuffer: 64 * 1024 * 1024, timeout: 120_000 });
  return stdout;
}

/** Makes a path (recursively) the postgres user's when we are root. */
export async function giveToPostgres(p: string): Promise<void> {
  if (!pgOwner) return;
  await chown(p, pgOwner.uid, pgOwner.gid);
  const entries = await readdir(p, { withFileTypes: true }).catch(() => []);
  for (const e of entries) {
    const c = path.join(p, e.name);
    if (e.isDirectory()) await giveToPostgres(c);
    else await chown(c, pgOwner.uid, pgOwner.gid);
  }
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** A temp directory the postgres user can use (traversable parents, owned by postgres). */
export async function pgTempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  await chmod(dir, 0o755);
  await giveToPostgres(dir);
  return dir;
}

/** Fails with what to install: no silent skip (`npm test` installs postgresql-15 through scripts/ensure-deps.sh). */
export function requirePgTools(): void {
  if (!existsSync(path.join(PG_BIN, 'postgres')) || !existsSync(path.join(PG_BIN, 'pg_basebackup'))) {
    throw new Error(`PostgreSQL 15 tools not found in ${PG_BIN}: run scripts/ensure-deps.sh (apt-get install postgresql-15)`);
  }
}

export class PgServer {
  child: ChildProcess | undefined;
  log = '';
  exited: Promise<number | null> = Promise.resolve(null);

  constructor(
    readonly pgdata: string,
    readonly port: number,
    private readonly settings: Record<string, string | number>,
  ) {}

  /** initdb (trust auth, data checksums) into <dir>/pgdata. */
  static async init(dir: string, settings: Record<string, string | number>): Promise<PgServer> {
    const pgdata = path.join(dir, 'pgdata');
    await runPgTool('initdb', ['-D', pgdata, '-U', 'postgres', '--auth=trust', '--data-checksums', '-E', 'UTF8', '--locale=C']);
    return new PgServer(pgdata, await freePort(), settings);
  }

  /** Starts postgres; with wait, until it accepts connections. */
  async start(wait = true): Promise<void> {
    const args = ['-D', this.pgdata, '-c', `port=${this.port}`, '-c', 'listen_addresses=127.0.0.1', '-c', `unix_socket_directories=${path.dirname(this.pgdata)}`];
    for (const [k, v] of Object.entries(this.settings)) args.push('-c', `${k}=${v}`);
    const [cmd, argv] = asPg('postgres', args);
    const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    this.exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
    child.stdout!.on('data', (d: Buffer) => (this.log += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (this.log += d.toString()));
    if (wait) await this.waitReady();
  }

  get running(): boolean {
    return !!this.child && this.child.exitCode === null && this.child.signalCode === null;
  }

  async waitReady(timeoutMs = 60_000): Promise<void> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      try {
        await this.query('select 1');
        return;
      } catch (err) {
        if (!this.running) throw new Error(`postgres exited:\n${this.log.slice(-3000)}`);
        if (Date.now() > until) throw new Error(`postgres not ready: ${errorText(err)}\n${this.log.slice(-3000)}`);
        await sleep(100);
      }
    }
  }

  async query<T extends pg.QueryResultRow = Record<string, unknown>>(sql: string, params: unknown[] = []): Promise<T[]> {
    const client = new pg.Client({ host: '127.0.0.1', port: this.port, user: 'postgres', database: 'postgres', connectionTimeoutMillis: 3000 });
    client.on('error', () => {});
    await client.connect();
    try {
      return (await client.query<T>(sql, params)).rows;
    } finally {
      await client.end().catch(() => {});
    }
  }

  /** Stops the server: fast shutdown (SIGINT), SIGKILL after a while. */
  async stop(mode: 'fast' | 'immediate' = 'fast'): Promise<void> {
    const child = this.child;
    if (!child || !this.running) return;
    // setpriv execs postgres, so the child's pid is the postmaster's.
    child.kill(mode === 'fast' ? 'SIGINT' : 'SIGQUIT');
    const killer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    await this.exited;
    clearTimeout(killer);
  }
}

export async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

export async function ensureDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  await giveToPostgres(dir);
}
