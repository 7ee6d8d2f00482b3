// A CPU load on PostgreSQL for autoscaling tests and the autoscale benchmark: each client runs a
// CPU-bound query in a loop (no I/O, no writes), on a new connection every few queries so that the
// -ro Service's per-connection round robin spreads it over the replicas as they join. Bounded:
// it ends at stop() or after maxMs, whichever comes first.
import pg from 'pg';

export interface CpuLoadOptions {
  /** Concurrent clients (each keeps about one core busy on the server). Default 1. */
  clients?: number;
  /** Hard bound on the load's duration. Default 180 s. */
  maxMs?: number;
  /** Rows the query counts (about 10⁶ per 100 ms on one core). Default 2,000,000. */
  rows?: number;
  /** Queries per connection before it reconnects. Default 5. */
  queriesPerConnection?: number;
}

export interface CpuLoad {
  startedAt: number;
  /** Queries answered so far, by server address (inet_server_addr(): the pod IP). */
  readonly byServer: Map<string, number>;
  errors: number;
  stop(): Promise<void>;
}

export function startCpuLoad(config: pg.ClientConfig, opts: CpuLoadOptions = {}): CpuLoad {
  const deadline = Date.now() + (opts.maxMs ?? 180_000);
  const rows = opts.rows ?? 2_000_000;
  const perConnection = opts.queriesPerConnection ?? 5;
  let stopped = false;
  const load: CpuLoad = { startedAt: Date.now(), byServer: new Map(), errors: 0, stop: async () => undefined };
  const client = async () => {
    while (!stopped && Date.now() < deadline) {
      const c = new pg.Client({ ...config, query_timeout: 30_000 });
      c.on('error', () => undefined);
      try {
        await c.connect();
        for (let i = 0; i < perConnection && !stopped && Date.now() < deadline; i++) {
          const r = await c.query<{ server: string }>(`SELECT host(inet_server_addr()) AS server, count(*) FROM generate_series(1, ${rows})`);
          const server = r.rows[0]?.server ?? '?';
          load.byServer.set(server, (load.byServer.get(server) ?? 0) + 1);
        }
      } catch {
        load.errors++;
        await new Promise((r) => setTimeout(r, 200));
      } finally {
        await c.end().catch(() => undefined);
      }
    }
  };
  const running = Promise.all(Array.from({ length: opts.clients ?? 1 }, client));
  load.stop = async () => {
    stopped = true;
    await running;
  };
  return load;
}
