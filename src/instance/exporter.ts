// The agent's Prometheus exporter: GET /metrics on PGPILOT_METRICS_PORT (9187), no authentication
// (as exporters go), bound to the pod IP like the agent API. The metrics are listed in
// docs/metrics.md; the SQL and its mapping live in src/postgres/stats-queries.ts.
//
// A scrape is cheap and never hangs: the queries run one after the other on ONE reused
// connection (as the superuser the agent uses, reconnected after an error), each under a
// statement_timeout, the whole collection under a deadline; scrapes that arrive while a
// collection runs share it. When the agent knows postgres is not running (stopped, starting,
// fenced, restoring) no connection is tried: pg_up 0 and the agent's own metrics come back at once.
// A failing query counts in pgpilot_exporter_query_errors_total{query} and the scrape goes on.
//
// Users' own queries (spec.monitoring.customQueries, custom-queries.ts) run after the built-in
// ones on the same connection under the same timeouts, as `custom:<name>`: one that cannot load
// counts an error at every scrape, one that fails counts when it fails, and neither keeps any
// other metric from being served. pgpilot_exporter_custom_query_valid{query} says which are well.
//
// No default Node process metrics: the kubelet (cAdvisor) already reports the container's CPU and
// memory, prom-client's default set holds gauges named *_total that `promtool check metrics`
// rejects, and a scrape should cost no more than it must.
import { createServer, type Server } from 'node:http';
import type pg from 'pg';
import { Counter, Gauge, Registry, type Metric } from 'prom-client';
import * as sql from '../postgres/sql.js';
import { customFamilies, customLabel, customSamples, type CustomQuery } from '../postgres/custom-queries.js';
import { INSTANCE_SQL, instanceFacts, mapInstance, PG_FAMILIES, QUERY_NAMES, STATS_QUERIES, type Family, type Row, type Sample, type ServerFacts } from '../postgres/stats-queries.js';
import type { Logger } from '../runtime/logger.js';
import { listen } from '../runtime/http-server.js';
import { errorText } from '../util/error-text.js';
import { exists } from '../postgres/files.js';
import type { AgentState } from './agent-state.js';
import { volumeUsage } from './volume-usage.js';
import type { ArchivingStatus, InstanceRole } from './api-types.js';
import type { CustomQueryFiles } from './custom-queries.js';

export const AGENT_FAMILIES: Record<string, Family> = {
  pgpilot_instance_role: { type: 'gauge', help: '1 for the role the instance has (primary or replica), 0 for the other; both 0 without data.' },
  pgpilot_instance_fenced: { type: 'gauge', help: '1 while the instance is fenced (postgres stopped and kept stopped), else 0.' },
  pgpilot_instance_archiver_backlog_segments: { type: 'gauge', help: 'WAL segments PostgreSQL has handed to the archiver (.ready files) and not yet seen archived. Only with WAL archiving.' },
  pgpilot_instance_last_archived_wal_age_seconds: { type: 'gauge', help: 'Seconds since this agent last archived a WAL file. Only with WAL archiving, after the first.' },
  pgpilot_instance_archiving_failing: { type: 'gauge', help: '1 when the last archive attempt of this agent failed (no success since), else 0. Only with WAL archiving.' },
  pgpilot_instance_volume_capacity_bytes: { type: 'gauge', help: 'Size of the file system holding the data directory (volume="data") or pg_wal on its own volume (volume="wal"), from statfs.' },
  pgpilot_instance_volume_used_bytes: { type: 'gauge', help: 'Used bytes of that file system (capacity minus free blocks), from statfs.' },
};

export const EXPORTER_FAMILIES: Record<string, Family> = { ...PG_FAMILIES, ...AGENT_FAMILIES };

/** What the agent knows without PostgreSQL, for its own metrics. */
export interface AgentFacts {
  role: InstanceRole;
  fenced: boolean;
  /** undefined: WAL archiving is off. */
  archiving: ArchivingStatus | undefined;
  volumes: { volume: 'data' | 'wal'; capacityBytes: number; usedBytes: number }[];
  nowMs: number;
}

/** The agent's own samples (pure). */
export function agentSamples(f: AgentFacts): Sample[] {
  const out: Sample[] = [];
  for (const role of ['primary', 'replica'] as const) out.push({ name: 'pgpilot_instance_role', labels: { role }, value: f.role === role ? 1 : 0 });
  out.push({ name: 'pgpilot_instance_fenced', value: f.fenced ? 1 : 0 });
  const a = f.archiving;
  if (a) {
    out.push({ name: 'pgpilot_instance_archiver_backlog_segments', value: a.backlogSegments });
    const archived = a.lastArchivedTime ? Date.parse(a.lastArchivedTime) : NaN;
    const failed = a.lastFailureTime ? Date.parse(a.lastFailureTime) : NaN;
    if (Number.isFinite(archived)) out.push({ name: 'pgpilot_instance_last_archived_wal_age_seconds', value: Math.max(0, (f.nowMs - archived) / 1000) });
    out.push({ name: 'pgpilot_instance_archiving_failing', value: Number.isFinite(failed) && !(archived >= failed) ? 1 : 0 });
  }
  for (const v of f.volumes) {
    out.push({ name: 'pgpilot_instance_volume_capacity_bytes', labels: { volume: v.volume }, value: v.capacityBytes });
    out.push({ name: 'pgpilot_instance_volume_used_bytes', labels: { volume: v.volume }, value: v.usedBytes });
  }
  return out;
}

/**
 * One prom-client metric per family with samples (a family a server lacks is left out, not
 * printed empty), in a registry of this scrape. Throws on a sample of an unknown family.
 */
export function samplesRegistry(samples: Sample[], families: Record<string, Family> = EXPORTER_FAMILIES): Registry {
  const byName = new Map<string, Sample[]>();
  for (const s of samples) {
    if (!families[s.name]) throw new Error(`no metric family ${s.name}`);
    byName.set(s.name, [...(byName.get(s.name) ?? []), s]);
  }
  const registry = new Registry();
  for (const [name, list] of byName) {
    const { help, type } = families[name]!;
    const values = list.map((s) => ({ labels: s.labels ?? {}, value: s.value }));
    // A collected snapshot: prom-client renders what get() returns (type may be 'untyped').
    const metric = { name, help, type, aggregator: 'sum', get: () => Promise.resolve({ name, help, type, values, aggregator: 'sum' }) };
    registry.registerMetric(metric as unknown as Metric);
  }
  return registry;
}

/** What the exporter reads from the agent (AgentState in production, see agentSource). */
export interface ExporterSource {
  /** false: postgres is not running, starting, fenced or restoring; no connection is tried. */
  postgresAvailable(): boolean;
  connectOptions(): Promise<sql.ConnectOptions>;
  /** Role and fence as the agent knows them without SQL, archiving, the volumes. */
  facts(): Promise<Omit<AgentFacts, 'nowMs'>>;
  /** The user's own queries (PGPILOT_CUSTOM_QUERIES), if any. */
  customQueries?: CustomQueryFiles;
}

/** The exporter's view of the agent. */
export function agentSource(a: AgentState): ExporterSource {
  return {
    // During a restore nobody but the agent may connect; fenced or starting, there is no server.
    postgresAvailable: () => a.pg.ready && !a.restoreHba && !a.fenced,
    connectOptions: () => a.local(),
    facts: async () => {
      const role: InstanceRole = !(await a.hasData()) ? 'none' : (await exists(a.layout.standbySignal)) ? 'replica' : 'primary';
      return { role, fenced: a.fenced, archiving: a.archiving?.status(), volumes: await volumeUsage(a.settings.pgdata, a.settings.walDir) };
    },
    ...(a.customQueries ? { customQueries: a.customQueries } : {}),
  };
}

export interface ExporterOptions {
  source: ExporterSource;
  log: Logger;
  /** Server-side statement_timeout of every query (default 2000). */
  statementTimeoutMs?: number;
  /** Connection attempt (default 800: a stopped server answers at once, a frozen one within a second). */
  connectTimeoutMs?: number;
  /** The whole collection (default 5000, half of Prometheus's default scrape timeout). */
  deadlineMs?: number;
}

/** One collection from PostgreSQL: what it has so far, and whether the deadline gave up on it. */
interface Run {
  samples: Sample[];
  facts: ServerFacts | null;
  /** The query running (counted as failed when the deadline passes). */
  current: string;
  abandoned: boolean;
  /** The loaded custom queries this scrape runs after the built-in ones. */
  custom: CustomQuery[];
  /** The error of the last failed query (for the custom queries' status). */
  lastError: string;
}

/** A SQL error of one statement (SQLSTATE), after which the session is still usable. */
function statementError(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) && !/^(08|57P)/.test(code);
}

export class MetricsExporter {
  readonly own = new Registry();
  private readonly queryErrors: Counter<'query'>;
  private readonly scrapeDuration: Gauge;
  private readonly customValid: Gauge<'query'>;
  /** cache_seconds: the samples of a custom query's last run, and when (the object goes with a reload). */
  private readonly cached = new WeakMap<CustomQuery, { atMs: number; samples: Sample[] }>();
  private client: pg.Client | null = null;
  private inflight: Promise<string> | undefined;
  private readonly o: Required<Omit<ExporterOptions, 'source' | 'log'>> & ExporterOptions;

  constructor(opts: ExporterOptions) {
    this.o = { statementTimeoutMs: 2000, connectTimeoutMs: 800, deadlineMs: 5000, ...opts };
    this.queryErrors = new Counter({ name: 'pgpilot_exporter_query_errors_total', help: 'Exporter queries that failed (error, statement timeout or the scrape deadline), by query.', labelNames: ['query'], registers: [this.own] });
    for (const query of QUERY_NAMES) this.queryErrors.inc({ query }, 0);
    this.scrapeDuration = new Gauge({ name: 'pgpilot_exporter_scrape_duration_seconds', help: 'Duration of the last collection of metrics.', registers: [this.own] });
    this.customValid = new Gauge({
      name: 'pgpilot_exporter_custom_query_valid',
      help: 'Custom queries (spec.monitoring.customQueries) by query="custom:<name>" (or "custom:<ConfigMap>/<key>" for a whole file): 1 when loaded and its last run succeeded, 0 when it cannot load or its last run failed.',
      labelNames: ['query'],
      registers: [this.own],
    });
  }

  get contentType(): string {
    return this.own.contentType;
  }

  /** The text of one scrape; concurrent callers share the collection in flight. */
  scrape(): Promise<string> {
    this.inflight ??= this.render().finally(() => {
      this.inflight = undefined;
    });
    return this.inflight;
  }

  async close(): Promise<void> {
    await this.drop();
  }

  private async render(): Promise<string> {
    const t0 = performance.now();
    const custom = await this.loadCustom();
    const samples = await this.collect(custom);
    this.scrapeDuration.set((performance.now() - t0) / 1000);
    this.updateCustomValid(custom);
    return Registry.merge([samplesRegistry(samples, { ...EXPORTER_FAMILIES, ...customFamilies(custom) }), this.own]).metrics();
  }

  /** The loaded custom queries; each load problem counts one error per scrape. Never throws. */
  private async loadCustom(): Promise<CustomQuery[]> {
    const files = this.o.source.customQueries;
    if (!files) return [];
    try {
      const { queries, problems } = await files.current();
      for (const q of queries) this.queryErrors.inc({ query: customLabel(q.name) }, 0);
      for (const p of problems) this.queryErrors.inc({ query: p.query });
      return queries;
    } catch (err) {
      this.o.log.warn({ err: errorText(err) }, 'metrics: cannot load the custom queries');
      return [];
    }
  }

  private updateCustomValid(custom: CustomQuery[]): void {
    const files = this.o.source.customQueries;
    if (!files) return;
    this.customValid.reset();
    for (const q of custom) this.customValid.set({ query: customLabel(q.name) }, 1);
    for (const p of files.problems()) this.customValid.set({ query: p.query }, 0);
  }

  private async collect(custom: CustomQuery[]): Promise<Sample[]> {
    const deadline = Date.now() + this.o.deadlineMs;
    const [pgPart, facts] = await Promise.all([this.collectPostgres(deadline, custom), this.o.source.facts().catch((err: unknown) => (this.o.log.warn({ err: errorText(err) }, 'metrics: agent facts failed'), null))]);
    const own = facts ? agentSamples({ ...facts, ...(pgPart.facts ? { role: pgPart.facts.inRecovery ? 'replica' : 'primary' } : {}), nowMs: Date.now() }) : [];
    return [...pgPart.samples, ...own];
  }

  /** pg_up and every PostgreSQL sample this scrape could get before its deadline. */
  private async collectPostgres(deadline: number, custom: CustomQuery[]): Promise<{ samples: Sample[]; facts: ServerFacts | null }> {
    const run: Run = { samples: [], facts: null, current: 'instance', abandoned: false, custom, lastError: '' };
    const down = () => ({ samples: [{ name: 'pg_up', value: 0 }], facts: null });
    if (!this.o.source.postgresAvailable()) return down();
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((r) => (timer = setTimeout(() => r('late'), Math.max(0, deadline - Date.now()))));
    const work = this.runQueries(run).catch((err: unknown) => err);
    const outcome = await Promise.race([work, late]).finally(() => clearTimeout(timer));
    if (outcome === 'late') {
      run.abandoned = true;
      this.queryErrors.inc({ query: run.current });
      const q = run.custom.find((c) => customLabel(c.name) === run.current);
      if (q) this.o.source.customQueries?.recordRun(q, `the scrape's deadline (${this.o.deadlineMs} ms) passed while it ran`);
      this.o.log.warn({ query: run.current, deadlineMs: this.o.deadlineMs }, 'metrics: scrape deadline passed; dropping the connection');
      await this.drop();
    } else if (outcome !== undefined) {
      this.o.log.debug({ err: errorText(outcome) }, 'metrics: postgres unreachable');
    }
    if (!run.facts) return down();
    return { samples: [{ name: 'pg_up', value: 1 }, ...run.samples.slice()], facts: run.facts };
  }

  /** Runs the instance query, then the others; run.facts is set once the server answered. */
  private async runQueries(run: Run): Promise<void> {
    const c = await this.connection();
    const rows = await this.query(c, 'instance', INSTANCE_SQL, run);
    if (!rows || rows === 'lost') return;
    const facts = instanceFacts(rows[0]);
    run.samples.push(...mapInstance(rows[0]!));
    run.facts = facts;
    for (const q of STATS_QUERIES) {
      const text = q.sql(facts);
      if (text === null) continue;
      if (run.abandoned) return;
      run.current = q.name;
      const result = await this.query(c, q.name, text, run);
      if (result === 'lost') return;
      if (result && !run.abandoned) run.samples.push(...this.mapped(q.name, () => q.map(result, facts)));
    }
    for (const q of run.custom) {
      if (run.abandoned) return;
      if ((await this.runCustom(c, q, run, facts)) === 'lost') return;
    }
  }

  /** One custom query (or its cached samples); its outcome goes to the query files' status. */
  private async runCustom(c: pg.Client, q: CustomQuery, run: Run, facts: ServerFacts): Promise<'lost' | void> {
    if (q.master && facts.inRecovery) return;
    const cached = this.cached.get(q);
    if (cached && Date.now() - cached.atMs < q.cacheSeconds * 1000) {
      run.samples.push(...cached.samples);
      return;
    }
    const name = customLabel(q.name);
    const files = this.o.source.customQueries;
    run.current = name;
    const result = await this.query(c, name, q.sql, run);
    if (result === 'lost' || run.abandoned) {
      files?.recordRun(q, `the connection was lost while it ran: ${run.lastError}`);
      return 'lost';
    }
    if (result === null) return files?.recordRun(q, run.lastError);
    let samples: Sample[];
    try {
      // Several statements in one query answer several results, which pg does not give as rows.
      if (!Array.isArray(result)) throw new Error('the query must be one SQL statement');
      samples = customSamples(q, result);
    } catch (err) {
      this.queryErrors.inc({ query: name });
      return files?.recordRun(q, errorText(err));
    }
    if (q.cacheSeconds > 0) this.cached.set(q, { atMs: Date.now(), samples });
    run.samples.push(...samples);
    files?.recordRun(q, null);
  }

  private mapped(name: string, fn: () => Sample[]): Sample[] {
    try {
      return fn();
    } catch (err) {
      this.queryErrors.inc({ query: name });
      this.o.log.warn({ query: name, err: errorText(err) }, 'metrics: cannot map query result');
      return [];
    }
  }

  /**
   * Rows; null after a statement error (counted); 'lost' when the connection is gone (dropped).
   * A query the deadline abandoned was counted then: its end (the dropped connection) is not.
   */
  private async query(c: pg.Client, name: string, text: string, run: Run): Promise<Row[] | null | 'lost'> {
    try {
      return (await c.query<Row>(text)).rows;
    } catch (err) {
      if (run.abandoned) return 'lost';
      run.lastError = errorText(err);
      this.queryErrors.inc({ query: name });
      if (statementError(err)) {
        this.o.log.debug({ query: name, err: errorText(err) }, 'metrics: query failed');
        return null;
      }
      await this.drop();
      if (name === 'instance') throw err;
      return 'lost';
    }
  }

  private async connection(): Promise<pg.Client> {
    if (this.client) return this.client;
    const o = await this.o.source.connectOptions();
    const c = await sql.connect({
      ...o,
      connectTimeoutMs: this.o.connectTimeoutMs,
      statementTimeoutMs: this.o.statementTimeoutMs,
      // A network stall is not a statement timeout: the client gives up too, a little later.
      queryTimeoutMs: this.o.statementTimeoutMs + 1000,
      applicationName: 'pgpilot-exporter',
    });
    c.on('error', () => {
      if (this.client === c) this.client = null;
    });
    c.on('end', () => {
      if (this.client === c) this.client = null;
    });
    this.client = c;
    return c;
  }

  private async drop(): Promise<void> {
    const c = this.client;
    this.client = null;
    await c?.end().catch(() => undefined);
  }
}

export interface MetricsServerOptions {
  host: string;
  port: number;
  exporter: MetricsExporter;
  log: Logger;
}

/** GET /metrics only; no authentication. */
export async function startMetricsServer(o: MetricsServerOptions): Promise<Server> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: GET /metrics\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { 'content-type': 'text/plain', allow: 'GET, HEAD' }).end('method not allowed\n');
      return;
    }
    o.exporter
      .scrape()
      .then((text) => res.writeHead(200, { 'content-type': o.exporter.contentType }).end(req.method === 'HEAD' ? undefined : text))
      .catch((err: unknown) => {
        o.log.error({ err: errorText(err) }, 'metrics: scrape failed');
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' }).end(`${errorText(err)}\n`);
      });
  });
  return listen(server, o.port, o.host);
}
