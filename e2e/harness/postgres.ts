// PostgreSQL clients for e2e tests and benchmarks: connections through a Service of the process
// kubelet's proxy, and a ledger writer that records every acknowledged write, so a test can
// prove that none was lost across a failover and measure how long writes were refused.
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { CoreV1Api } from '@kubernetes/client-node';
import { kubeConfig } from './env.js';
import type { ProcessKubelet } from '../kubelet/index.js';
import { errorText } from '../../src/util/error-text.js';
import { names } from '../../src/api/names.js';

export interface Credentials {
  user: string;
  password: string;
  database: string;
  /**
   * TLS as clients of the cluster use it: verify-full against the cluster's CA (Secret
   * <cluster>-ca-cert) and the name of its -rw Service, which the one server certificate every
   * instance serves carries — also when the client dials a pod or proxy IP. Spread into every
   * pg.ClientConfig the helpers below build, so each test connects with TLS.
   */
  ssl?: pg.ClientConfig['ssl'];
}

/** verify-full TLS for clients of `cluster` (undefined while it has no CA certificate yet). */
export async function clusterTls(namespace: string, cluster: string): Promise<pg.ClientConfig['ssl'] | undefined> {
  const secret = await kubeConfig().makeApiClient(CoreV1Api).readNamespacedSecret({ name: names.caCertSecret(cluster), namespace }).catch(() => undefined);
  const ca = secret?.data?.['ca.crt'];
  return ca ? { ca: Buffer.from(ca, 'base64').toString('utf8'), servername: names.tlsServerName(cluster, namespace) } : undefined;
}

/** A role's credentials from one of the cluster's Secrets (username, password), with the cluster's TLS. */
export async function secretCredentials(namespace: string, cluster: string, secretName: string, database: string): Promise<Credentials> {
  const secret = await kubeConfig().makeApiClient(CoreV1Api).readNamespacedSecret({ name: secretName, namespace });
  const get = (k: string) => Buffer.from(secret.data?.[k] ?? '', 'base64').toString('utf8');
  const ssl = await clusterTls(namespace, cluster);
  return { user: get('username'), password: get('password'), database: get('dbname') || database, ...(ssl ? { ssl } : {}) };
}

/** The application user's credentials from the cluster's `<name>-app` Secret. */
export async function appCredentials(namespace: string, cluster: string): Promise<Credentials> {
  return secretCredentials(namespace, cluster, names.appSecret(cluster), 'app');
}

/** The superuser's credentials from the cluster's `<name>-superuser` Secret. */
export async function superuserCredentials(namespace: string, cluster: string, database = 'app'): Promise<Credentials> {
  return secretCredentials(namespace, cluster, names.superuserSecret(cluster), database);
}

export function serviceClientConfig(kubelet: ProcessKubelet, namespace: string, service: string, creds: Credentials): pg.ClientConfig {
  const addr = kubelet.serviceAddress(namespace, service, 'postgresql');
  if (!addr) throw new Error(`the service proxy has no address for ${namespace}/${service}`);
  return { host: addr.host, port: addr.port, ...creds, connectionTimeoutMillis: 2000, query_timeout: 5000 };
}

export async function query<T extends pg.QueryResultRow = Record<string, unknown>>(config: pg.ClientConfig, sql: string, params: unknown[] = []): Promise<T[]> {
  const client = new pg.Client(config);
  // A connection the server drops must fail this call, not crash the process as an unhandled 'error'.
  client.on('error', () => {});
  await client.connect();
  try {
    return (await client.query<T>(sql, params)).rows;
  } finally {
    await client.end().catch(() => {});
  }
}

export interface WriterReport {
  acknowledged: number[];
  /** Longest stretch between two acknowledged writes (ms), and when it started. */
  longestGapMs: number;
  longestGapStartedAt: number;
  errors: number;
}

/**
 * Inserts ids 1, 2, 3, … one at a time through `config` (the rw Service), reconnecting on any
 * error; an id counts only once its INSERT is acknowledged.
 */
export class LedgerWriter {
  private stopped = false;
  private done?: Promise<void>;
  readonly acknowledged: number[] = [];
  /** When each id in `acknowledged` was acknowledged (ms since epoch), in the same order. */
  readonly ackTimes: number[] = [];
  /** When the INSERT of each id in `acknowledged` was sent (its last attempt), in the same order. */
  readonly sendTimes: number[] = [];
  /** The server address (inet_server_addr(), i.e. the pod IP) that acknowledged each id, in the same order. */
  readonly ackServers: string[] = [];
  private errors = 0;

  constructor(
    private readonly config: pg.ClientConfig,
    private readonly table = 'ledger',
  ) {}

  async prepare(): Promise<void> {
    await query(this.config, `CREATE TABLE IF NOT EXISTS ${this.table} (id bigint PRIMARY KEY, at timestamptz DEFAULT now())`);
  }

  start(): void {
    this.done = this.loop();
  }

  /** Time of the first acknowledged write after `since` (ms since epoch), if any yet. */
  firstAckAfter(since: number): number | undefined {
    return this.ackTimes.find((t) => t > since);
  }

  /**
   * Time of the first acknowledged write whose INSERT was sent after `since`: unlike
   * firstAckAfter, never a write already in flight at `since` (a backend of a killed postmaster
   * can still finish a commit it had begun).
   */
  firstAckSentAfter(since: number, server: (address: string) => boolean = () => true): number | undefined {
    const i = this.sendTimes.findIndex((t, j) => t > since && server(this.ackServers[j]!));
    return i < 0 ? undefined : this.ackTimes[i];
  }

  /** Acknowledged writes sent after `since` by the server at `address`: [id, sentAt, ackAt]. */
  acksSentAfterBy(since: number, address: string): Array<[number, number, number]> {
    const out: Array<[number, number, number]> = [];
    for (let j = 0; j < this.sendTimes.length; j++) if (this.sendTimes[j]! > since && this.ackServers[j] === address) out.push([this.acknowledged[j]!, this.sendTimes[j]!, this.ackTimes[j]!]);
    return out;
  }

  async stop(): Promise<WriterReport> {
    this.stopped = true;
    await this.done;
    let longest = 0;
    let startedAt = 0;
    for (let i = 1; i < this.ackTimes.length; i++) {
      const gap = this.ackTimes[i]! - this.ackTimes[i - 1]!;
      if (gap > longest) {
        longest = gap;
        startedAt = this.ackTimes[i - 1]!;
      }
    }
    return { acknowledged: [...this.acknowledged], longestGapMs: longest, longestGapStartedAt: startedAt, errors: this.errors };
  }

  private async loop(): Promise<void> {
    let id = 1;
    let client: pg.Client | undefined;
    let server = '';
    while (!this.stopped) {
      try {
        if (!client) {
          client = new pg.Client(this.config);
          client.on('error', () => {});
          await client.connect();
          // Which server this connection reached through the Service (for "which primary acknowledged it").
          server = (await client.query<{ a: string | null }>('SELECT host(inet_server_addr()) AS a')).rows[0]?.a ?? '';
        }
        const sentAt = Date.now();
        await client.query(`INSERT INTO ${this.table} (id) VALUES ($1) ON CONFLICT (id) DO NOTHING`, [id]);
        this.acknowledged.push(id);
        this.ackTimes.push(Date.now());
        this.sendTimes.push(sentAt);
        this.ackServers.push(server);
        id++;
      } catch {
        this.errors++;
        await client?.end().catch(() => {});
        client = undefined;
        // The id is retried: an INSERT that failed may or may not have committed (ON CONFLICT makes the retry safe).
        await sleep(25);
      }
    }
    await client?.end().catch(() => {});
  }
}

/** Acknowledged ids missing from the table (read through `config`, e.g. the new primary). */
export async function missingIds(config: pg.ClientConfig, acknowledged: number[], table = 'ledger'): Promise<number[]> {
  const rows = await query<{ id: string }>(config, `SELECT id FROM ${table}`);
  const present = new Set(rows.map((r) => Number(r.id)));
  return acknowledged.filter((id) => !present.has(id));
}

/** A direct connection to one pod's PostgreSQL (its pod address, port 5432), bypassing every Service. */
export function podClientConfig(kubelet: ProcessKubelet, namespace: string, pod: string, creds: Credentials, timeoutMs = 2000): pg.ClientConfig {
  const host = kubelet.podAddress(namespace, pod);
  if (!host) throw new Error(`pod ${namespace}/${pod} has no address on the process kubelet`);
  return { host, port: 5432, ...creds, connectionTimeoutMillis: timeoutMs, query_timeout: timeoutMs * 2 };
}

/** One INSERT of the probe that the server acknowledged (its COMMIT succeeded). */
export interface ProbeCommit {
  n: number;
  /** When the INSERT was sent and when its success came back (ms since epoch). */
  sentAt: number;
  ackAt: number;
  /** The server warned that it committed locally without waiting for the standbys (a cancelled sync wait). */
  localOnly: boolean;
}

export interface ProbeReport {
  commits: ProbeCommit[];
  attempts: number;
  /** Distinct error messages, with how often each was seen (e.g. the read-only error of a replica). */
  errors: Record<string, number>;
}

export interface ProbeOptions {
  /** Distinguishes this probe's rows from other probes' in the shared table. */
  tag: number;
  /**
   * `local`: SET synchronous_commit TO local — a commit does not wait for any standby, so only
   * the server itself (the instance agent) can keep an old primary from accepting it. `default`:
   * the server's setting (synchronous replication, ANY n), which is what protects a primary
   * that was frozen and wakes up.
   */
  syncCommit: 'local' | 'default';
  intervalMs?: number;
  /** Connection timeout, and how long one INSERT may take before the connection is abandoned. */
  timeoutMs?: number;
}

/**
 * The old-primary probe: while and after a fault, tries an INSERT on one pod's PostgreSQL
 * directly (not through a Service) every `intervalMs`, and records every one whose COMMIT the
 * server acknowledged, with when it was sent. After a failover, any such commit on the old
 * primary is a write a client was told succeeded on a server that is no longer the primary:
 * it is rewound away (lost) when the old primary rejoins.
 *
 * With syncCommit `local` the INSERT also runs under a short statement_timeout. With the server
 * default it does not: a cancelled wait for synchronous replication returns success ("committed
 * locally") to the client, so a timeout would manufacture exactly the commits this probe looks
 * for. A slow INSERT is abandoned instead (the socket is destroyed: nothing is acknowledged).
 */
export class OldPrimaryProbe {
  private stopped = false;
  private done?: Promise<void>;
  readonly commits: ProbeCommit[] = [];
  private attempts = 0;
  private readonly errors: Record<string, number> = {};

  constructor(
    private readonly config: pg.ClientConfig,
    private readonly table: string,
    private readonly opts: ProbeOptions,
  ) {}

  /** The probe table, created through `rw` (the primary) so that every instance has it. */
  static async prepare(rw: pg.ClientConfig, table: string): Promise<void> {
    await query(rw, `CREATE TABLE IF NOT EXISTS ${table} (tag int NOT NULL, n int NOT NULL, sent_at timestamptz NOT NULL, PRIMARY KEY (tag, n))`);
  }

  start(): void {
    this.done = this.loop();
  }

  async stop(): Promise<ProbeReport> {
    this.stopped = true;
    await this.done;
    return { commits: [...this.commits], attempts: this.attempts, errors: { ...this.errors } };
  }

  errorsSoFar(): Record<string, number> {
    return { ...this.errors };
  }

  private note(err: unknown): void {
    // Addresses and pids vary; the kind of failure is what matters.
    const msg = errorText(err).replace(/\d+\.\d+\.\d+\.\d+(:\d+)?/g, '<addr>').slice(0, 160);
    this.errors[msg] = (this.errors[msg] ?? 0) + 1;
  }

  private async loop(): Promise<void> {
    const timeoutMs = this.opts.timeoutMs ?? 1000;
    const intervalMs = this.opts.intervalMs ?? 100;
    let client: pg.Client | undefined;
    let notices: string[] = [];
    let n = 0;
    while (!this.stopped) {
      const started = Date.now();
      try {
        if (!client) {
          const c = new pg.Client({ ...this.config, connectionTimeoutMillis: timeoutMs, query_timeout: undefined, statement_timeout: undefined });
          c.on('error', () => {});
          c.on('notice', (m) => notices.push(m.message ?? ''));
          client = c;
          await withDeadline(c.connect(), timeoutMs, 'connect');
          if (this.opts.syncCommit === 'local') await withDeadline(c.query(`SET synchronous_commit TO local; SET statement_timeout TO ${timeoutMs}`), timeoutMs, 'SET');
        }
        n++;
        this.attempts++;
        notices = [];
        const sentAt = Date.now();
        await withDeadline(client.query(`INSERT INTO ${this.table} (tag, n, sent_at) VALUES ($1, $2, now())`, [this.opts.tag, n]), timeoutMs, 'INSERT');
        this.commits.push({ n, sentAt, ackAt: Date.now(), localOnly: notices.some((m) => /synchronous replication|committed locally/i.test(m)) });
      } catch (err) {
        this.note(err);
        if (client) abandon(client);
        client = undefined;
      }
      await sleep(Math.max(0, intervalMs - (Date.now() - started)));
    }
    if (client) abandon(client);
  }
}

function withDeadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
    }),
  ]);
}

/** Drop a connection at once, without waiting for a server that may never answer. */
function abandon(client: pg.Client): void {
  const stream = (client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream;
  stream?.destroy();
  void client.end().catch(() => {});
}
