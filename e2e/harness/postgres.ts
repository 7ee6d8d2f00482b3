// PostgreSQL clients for e2e tests and benchmarks: connections through a Service of the process
// kubelet's proxy, and a ledger writer that records every acknowledged write, so a test can
// prove that none was lost across a failover and measure how long writes were refused.
import pg from 'pg';
import { CoreV1Api } from '@kubernetes/client-node';
import { kubeConfig } from './env.js';
import type { ProcessKubelet } from '../kubelet/index.js';

export interface Credentials {
  user: string;
  password: string;
  database: string;
}

/** The application user's credentials from the cluster's `<name>-app` Secret. */
export async function appCredentials(namespace: string, cluster: string): Promise<Credentials> {
  const secret = await kubeConfig().makeApiClient(CoreV1Api).readNamespacedSecret({ name: `${cluster}-app`, namespace });
  const get = (k: string) => Buffer.from(secret.data?.[k] ?? '', 'base64').toString('utf8');
  return { user: get('username'), password: get('password'), database: get('dbname') };
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
    while (!this.stopped) {
      try {
        if (!client) {
          client = new pg.Client(this.config);
          client.on('error', () => {});
          await client.connect();
        }
        await client.query(`INSERT INTO ${this.table} (id) VALUES ($1) ON CONFLICT (id) DO NOTHING`, [id]);
        this.acknowledged.push(id);
        this.ackTimes.push(Date.now());
        id++;
      } catch {
        this.errors++;
        await client?.end().catch(() => {});
        client = undefined;
        // The id is retried: an INSERT that failed may or may not have committed (ON CONFLICT makes the retry safe).
        await new Promise((r) => setTimeout(r, 25));
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
