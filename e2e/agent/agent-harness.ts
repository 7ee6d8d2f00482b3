// Runs `pgpilot instance` agents as real processes with real PostgreSQL on loopback IPs, for the
// agent's integration tests. This machine runs tests as root and postgres refuses root, so each
// agent runs as the OS user `postgres` (setpriv), on a data directory chowned to it.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { createWriteStream, readFileSync, type WriteStream } from 'node:fs';
import { chown, copyFile, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execFileSync } from 'node:child_process';
import pg from 'pg';
import type { ClusterSpec } from '../../src/api/cluster.js';
import { archiveCommand } from '../../src/postgres/handoff.js';
import { renderPgHba, renderPostgresqlConf, REPLICATION_USER } from '../../src/builders/postgres-config.js';
import type { InstanceStatus } from '../../src/instance/api-types.js';
import { archiveMarkerDir, layoutOf } from '../../src/instance/layout.js';

export const PG_BIN = '/usr/lib/postgresql/15/bin';
const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const RUN_AS = 'postgres';
const AS_ROOT = process.getuid?.() === 0;

function osIds(user: string): { uid: number; gid: number } {
  const uid = Number(execFileSync('id', ['-u', user]).toString().trim());
  const gid = Number(execFileSync('id', ['-g', user]).toString().trim());
  return { uid, gid };
}

async function chownTree(path: string, uid: number, gid: number): Promise<void> {
  if (!AS_ROOT) return;
  await chown(path, uid, gid);
  for (const e of await readdir(path, { withFileTypes: true })) {
    const p = join(path, e.name);
    if (e.isDirectory()) await chownTree(p, uid, gid);
    else await chown(p, uid, gid);
  }
}

async function portFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, host, () => s.close(() => resolve(true)));
  });
}

/** A random 127.a.b.0/24 block whose .1-.n have ports 5432, 8000 and 9187 (metrics) free. */
export async function pickIps(n: number): Promise<string[]> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const prefix = `127.${randomInt(32, 250)}.${randomInt(1, 250)}`;
    const ips = Array.from({ length: n }, (_, i) => `${prefix}.${i + 1}`);
    let ok = true;
    for (const ip of ips) for (const port of [5432, 8000, 9187]) if (!(await portFree(ip, port))) ok = false;
    if (ok) return ips;
  }
  throw new Error('no free loopback block found');
}

export interface Secrets {
  superuser: string;
  replication: string;
  app: string;
  token: string;
}

export class AgentProcess {
  child: ChildProcess | undefined;
  exitCode: Promise<number | null> = Promise.resolve(null);
  readonly logLines: string[] = [];
  private logFile: WriteStream | undefined;

  constructor(
    readonly name: string,
    readonly ip: string,
    readonly dir: string,
    private readonly env: Record<string, string>,
    private readonly token: string,
    private readonly superPassword: string,
  ) {}

  get pgdata(): string {
    return join(this.dir, 'data', 'pgdata');
  }
  get endpoint(): { host: string; port: number } {
    return { host: this.ip, port: 5432 };
  }

  start(): void {
    this.logFile?.end();
    this.logFile = createWriteStream(join(this.dir, 'agent.log'), { flags: 'a' });
    const node = [process.execPath, '--import', 'tsx', join(REPO_ROOT, 'src/cli/main.ts'), 'instance'];
    // postgres refuses to run as root: drop to the postgres user when we are root.
    const [cmd, ...args] = AS_ROOT ? ['setpriv', `--reuid=${RUN_AS}`, `--regid=${RUN_AS}`, '--clear-groups', '--', ...node] : node;
    const child = spawn(cmd!, args, {
      cwd: REPO_ROOT,
      env: this.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    this.exitCode = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
    for (const s of [child.stdout!, child.stderr!]) {
      let buf = '';
      s.setEncoding('utf8');
      s.on('data', (chunk: string) => {
        this.logFile?.write(chunk);
        buf += chunk;
        const lines = buf.split('\n');
        buf = lines.pop() ?? '';
        this.logLines.push(...lines);
      });
    }
  }

  /** The postmaster's pid from postmaster.pid (null when not running). */
  postmasterPid(): number | null {
    try {
      const pid = Number(readFileSync(join(this.pgdata, 'postmaster.pid'), 'utf8').split('\n')[0]);
      process.kill(pid, 0);
      return pid;
    } catch {
      return null;
    }
  }

  async api<T = unknown>(method: string, path: string, body?: unknown, token: string | null = this.token, headers: Record<string, string> = {}): Promise<{ status: number; body: T }> {
    const res = await fetch(`http://${this.ip}:8000${path}`, {
      method,
      headers: { ...headers, ...(token !== null ? { authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(120_000),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      /* plain text (probes) */
    }
    return { status: res.status, body: parsed as T };
  }

  /** GET /metrics of the agent's exporter (no token). */
  async metrics(): Promise<{ status: number; contentType: string | null; text: string }> {
    const res = await fetch(`http://${this.ip}:9187/metrics`, { signal: AbortSignal.timeout(30_000) });
    return { status: res.status, contentType: res.headers.get('content-type'), text: await res.text() };
  }

  async status(): Promise<InstanceStatus> {
    const r = await this.api<InstanceStatus>('GET', '/v1/status');
    if (r.status !== 200) throw new Error(`${this.name} status: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body;
  }

  async sql<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, params: unknown[] = [], database = 'postgres'): Promise<R[]> {
    const c = new pg.Client({ host: this.ip, port: 5432, user: 'postgres', password: this.superPassword, database, connectionTimeoutMillis: 2000 });
    c.on('error', () => undefined);
    await c.connect();
    try {
      return (await c.query<R>(text, params)).rows;
    } finally {
      await c.end();
    }
  }

  /** Kills the agent and its postgres (test cleanup). */
  killAll(): void {
    const pm = this.postmasterPid();
    if (this.child?.pid && this.child.exitCode === null) {
      try {
        process.kill(this.child.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    if (pm) {
      try {
        process.kill(pm, 'SIGQUIT');
      } catch {
        /* gone */
      }
    }
    this.logFile?.end();
  }
}

export interface AddOptions {
  /** pg_wal on its own "volume" (PGPILOT_WAL_DIR), as with spec.walStorage. */
  walVolume?: boolean;
  /** More environment variables (backup locations, S3 credentials, restore settings). */
  env?: Record<string, string>;
  /**
   * WAL archiving through the agent, as the operator configures it: archive_mode = on and the
   * archive_command handoff to this agent's marker directory, in a postgresql.conf of its own.
   */
  archiving?: { timeoutSeconds?: number };
  /** More postgresql.conf lines for this agent only. */
  conf?: string;
}

/** A postgresql.conf value (quotes doubled). */
const confValue = (v: string) => `'${v.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;

export class AgentCluster {
  readonly agents: AgentProcess[] = [];
  root = '';
  secrets!: Secrets;
  private ids = AS_ROOT ? osIds(RUN_AS) : { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };

  /** `name`: PGPILOT_CLUSTER of its agents. */
  constructor(readonly name = 'agent-test') {}

  async setup(spec: ClusterSpec): Promise<void> {
    this.root = await mkdtemp('/tmp/pgpilot-agent-');
    const pw = () => randomBytes(18).toString('base64url');
    // A password with characters that need escaping in conninfo, pgpass and SQL.
    this.secrets = { superuser: `su:${pw()}\\'x`, replication: `re'p ${pw()}:\\`, app: pw(), token: pw() };
    const cfg = join(this.root, 'config');
    await mkdir(cfg);
    await writeFile(join(cfg, 'postgresql.conf'), renderPostgresqlConf(spec));
    await writeFile(join(cfg, 'pg_hba.conf'), renderPgHba(spec, false));
    const sec = join(this.root, 'secrets');
    const put = async (kind: string, data: Record<string, string>) => {
      await mkdir(join(sec, kind), { recursive: true });
      for (const [k, v] of Object.entries(data)) await writeFile(join(sec, kind, k), v, { mode: 0o600 });
    };
    await put('superuser', { username: 'postgres', password: this.secrets.superuser });
    await put('replication', { username: REPLICATION_USER, password: this.secrets.replication });
    await put('app', { username: 'app', password: this.secrets.app, dbname: 'app' });
    await put('agent', { token: this.secrets.token });
    await chownTree(this.root, this.ids.uid, this.ids.gid);
  }

  async add(name: string, ip: string, opts: AddOptions = {}): Promise<AgentProcess> {
    const dir = join(this.root, name);
    await mkdir(join(dir, 'data'), { recursive: true });
    if (opts.walVolume) await mkdir(join(dir, 'wal'), { recursive: true });
    await mkdir(join(dir, 'run'), { recursive: true });
    const pgdata = join(dir, 'data', 'pgdata');
    const walDir = opts.walVolume ? join(dir, 'wal', 'pg_wal') : undefined;
    let configDir = join(this.root, 'config');
    if (opts.archiving || opts.conf) {
      configDir = join(dir, 'config');
      await mkdir(configDir);
      for (const f of ['postgresql.conf', 'pg_hba.conf']) await copyFile(join(this.root, 'config', f), join(configDir, f));
      const lines = [
        ...(opts.archiving
          ? [
              "archive_mode = 'on'",
              `archive_command = ${confValue(archiveCommand(archiveMarkerDir(layoutOf({ pgdata, walDir }))))}`,
              `archive_timeout = '${opts.archiving.timeoutSeconds ?? 60}s'`,
            ]
          : []),
        ...(opts.conf ? [opts.conf] : []),
      ];
      await writeFile(join(configDir, 'postgresql.conf'), `\n# ${name}\n${lines.join('\n')}\n`, { flag: 'a' });
    }
    await chownTree(dir, this.ids.uid, this.ids.gid);
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: dir,
      PGPILOT_CLUSTER: this.name,
      PGPILOT_INSTANCE: name,
      PGPILOT_NAMESPACE: 'default',
      PGPILOT_POD_IP: ip,
      PGPILOT_CONFIG_DIR: configDir,
      PGPILOT_SECRETS_DIR: join(this.root, 'secrets'),
      PGDATA: pgdata,
      PGPILOT_INITDB_DATABASE: 'app',
      PGPILOT_INITDB_OWNER: 'app',
      PGPILOT_INITDB_ENCODING: 'UTF8',
      PGPILOT_INITDB_LOCALE: 'C.UTF-8',
      PGPILOT_INITDB_DATA_CHECKSUMS: 'true',
      PGPILOT_PG_BIN: PG_BIN,
      PGPILOT_SOCKET_DIR: join(dir, 'run'),
      // Short, so that the escalation to a fast shutdown is quick to test.
      PGPILOT_STOP_TIMEOUT_SECONDS: '4',
      ...(walDir ? { PGPILOT_WAL_DIR: walDir } : {}),
      ...opts.env,
    };
    const a = new AgentProcess(name, ip, dir, env, this.secrets.token, this.secrets.superuser);
    this.agents.push(a);
    a.start();
    return a;
  }

  async cleanup(keep: boolean): Promise<void> {
    for (const a of this.agents) a.killAll();
    if (this.root && !keep) {
      await new Promise((r) => setTimeout(r, 300));
      await rm(this.root, { recursive: true, force: true });
    }
  }
}

export async function until<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 30_000, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${last instanceof Error ? last.message : String(last)}` : ''}`);
}

/** Until the agent's postgres runs (phase Running) and `extra` holds; a Failed phase fails at once. */
export function agentRunning(a: AgentProcess, extra: (s: InstanceStatus) => boolean = () => true, timeoutMs = 60_000): Promise<InstanceStatus> {
  return until(`${a.name} running`, async () => {
    const s = await a.status();
    if (s.phase === 'Failed') throw new Error(`${a.name} failed: ${s.lastError}`);
    return s.phase === 'Running' && s.running && extra(s) ? s : undefined;
  }, timeoutMs);
}

/** Remembers whether a test of the file failed, so afterAll keeps the agents' logs then. */
export class FailureFlag {
  failed = false;
  /** Wraps a test body: a throw marks the file failed. */
  readonly track = (fn: () => Promise<void>) => async () => {
    try {
      await fn();
    } catch (err) {
      this.failed = true;
      throw err;
    }
  };
  /** Keep the logs: a test failed, or PGPILOT_E2E_KEEP_LOGS=1. */
  keep(): boolean {
    return this.failed || process.env.PGPILOT_E2E_KEEP_LOGS === '1';
  }
}
