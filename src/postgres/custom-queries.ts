// Users' own exporter queries in postgres_exporter's queries.yaml format (pure: parsing,
// validation, rows → samples). The agent's exporter (src/instance/exporter.ts) runs them after
// the built-in queries; docs/metrics.md ("Your own queries") is the user's side of this.
//
//   pg_replication_slots_custom:          # query name: the prefix of its metric names
//     query: "SELECT slot_name, pg_wal_lsn_diff(...) AS lag_bytes FROM pg_replication_slots"
//     master: true                        # optional: run on the primary only
//     cache_seconds: 30                   # optional: reuse the last result for that long
//     metrics:
//       - slot_name: { usage: LABEL, description: "Slot" }
//       - lag_bytes: { usage: GAUGE, description: "Bytes behind" }
//
// Metric <query>_<column> for every COUNTER, GAUGE, DURATION or MAPPEDMETRIC column, labelled by
// the LABEL columns; DISCARD columns are ignored. Problems are per query where possible (the
// other queries of the file still load) and per file when the file as a whole is unusable.
import { parseDocument } from 'yaml';
import type { Family, Row, Sample } from './stats-queries.js';

export const COLUMN_USAGES = ['LABEL', 'COUNTER', 'GAUGE', 'DISCARD', 'DURATION', 'MAPPEDMETRIC'] as const;
export type ColumnUsage = (typeof COLUMN_USAGES)[number];

export interface CustomColumn {
  name: string;
  usage: ColumnUsage;
  description: string;
  /** MAPPEDMETRIC: text value → number. */
  mapping?: Record<string, number>;
}

export interface CustomQuery {
  name: string;
  /** Where it came from: `<ConfigMap>/<key>` (the file's last two path parts). */
  source: string;
  sql: string;
  /** Run on a primary only. */
  master: boolean;
  /** Reuse the last result this long (0: run at every scrape). */
  cacheSeconds: number;
  columns: CustomColumn[];
}

export interface QueryProblem {
  /** The `query` label: `custom:<query name>`, or `custom:<source>` for a problem of the whole file. */
  query: string;
  source: string;
  error: string;
}

/** The label of a custom query in pgpilot_exporter_query_errors_total and _custom_query_valid. */
export const customLabel = (name: string): string => `custom:${name}`;

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const VALUE_USAGES: readonly ColumnUsage[] = ['COUNTER', 'GAUGE', 'DURATION', 'MAPPEDMETRIC'];

const isMap = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The metric family names of a query (its value columns). */
export function familyNames(q: CustomQuery): string[] {
  return q.columns.filter((c) => VALUE_USAGES.includes(c.usage)).map((c) => `${q.name}_${c.name}`);
}

/** Families of the loaded queries, for the exporter's registry. */
export function customFamilies(queries: CustomQuery[]): Record<string, Family> {
  const out: Record<string, Family> = {};
  for (const q of queries) {
    for (const c of q.columns) {
      if (!VALUE_USAGES.includes(c.usage)) continue;
      out[`${q.name}_${c.name}`] = { type: c.usage === 'COUNTER' ? 'counter' : 'gauge', help: c.description || `Column ${c.name} of the custom query ${q.name} (${q.source}).` };
    }
  }
  return out;
}

/** One column entry of `metrics` (a one-key map: column → {usage, description}). */
function parseColumn(entry: unknown, index: number): CustomColumn {
  if (!isMap(entry) || Object.keys(entry).length !== 1) throw new Error(`metrics[${index}] must be a map of one column name to {usage, description}`);
  const [name, def] = Object.entries(entry)[0]!;
  if (!LABEL_NAME.test(name) || name.startsWith('__')) throw new Error(`column name ${JSON.stringify(name)} is not a valid Prometheus label or metric name part`);
  if (!isMap(def)) throw new Error(`column ${name}: must be a map with usage and description`);
  const usage = typeof def.usage === 'string' ? def.usage.toUpperCase() : def.usage;
  if (!(COLUMN_USAGES as readonly unknown[]).includes(usage)) throw new Error(`column ${name}: usage must be one of ${COLUMN_USAGES.join(', ')} (got ${JSON.stringify(def.usage)})`);
  if (def.description !== undefined && typeof def.description !== 'string') throw new Error(`column ${name}: description must be a string`);
  const col: CustomColumn = { name, usage: usage as ColumnUsage, description: (def.description as string | undefined) ?? '' };
  if (col.usage === 'MAPPEDMETRIC' && isMap(def.metric_mapping)) {
    col.mapping = {};
    for (const [k, v] of Object.entries(def.metric_mapping)) {
      if (typeof v !== 'number') throw new Error(`column ${name}: metric_mapping values must be numbers`);
      col.mapping[k] = v;
    }
  }
  return col;
}

/** One query's definition (throws a message naming what is wrong). */
function parseQuery(name: string, def: unknown, source: string): CustomQuery {
  if (!METRIC_NAME.test(name) || name.includes(':')) throw new Error('the query name must be a valid metric name prefix ([a-zA-Z_][a-zA-Z0-9_]*)');
  if (!isMap(def)) throw new Error('must be a map with query and metrics');
  if (typeof def.query !== 'string' || def.query.trim() === '') throw new Error('has no query (the SQL, a string)');
  if (!Array.isArray(def.metrics) || def.metrics.length === 0) throw new Error('has no metrics (a list of columns)');
  if (def.master !== undefined && typeof def.master !== 'boolean') throw new Error('master must be true or false');
  const cache = def.cache_seconds ?? 0;
  if (typeof cache !== 'number' || !Number.isFinite(cache) || cache < 0) throw new Error('cache_seconds must be a number of seconds ≥ 0');
  const columns = def.metrics.map((entry, i) => parseColumn(entry, i));
  const seen = new Set<string>();
  for (const c of columns) {
    if (seen.has(c.name)) throw new Error(`names the column ${c.name} twice`);
    seen.add(c.name);
  }
  if (!columns.some((c) => VALUE_USAGES.includes(c.usage))) throw new Error(`has no metric column (usage ${VALUE_USAGES.join(', ')})`);
  return { name, source, sql: def.query, master: def.master === true, cacheSeconds: cache, columns };
}

/** One file's queries and problems; nothing is compared with other files or the built-in metrics. */
export function parseQueriesFile(text: string, source: string): { queries: CustomQuery[]; problems: QueryProblem[] } {
  const fileProblem = (error: string) => ({ queries: [], problems: [{ query: customLabel(source), source, error }] });
  const doc = parseDocument(text, { prettyErrors: false });
  if (doc.errors.length > 0) return fileProblem(`not valid YAML: ${doc.errors[0]!.message}`);
  let top: unknown;
  try {
    top = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    return fileProblem(`not usable YAML: ${(err as Error).message}`); // e.g. an alias bomb
  }
  if (top === null || top === undefined) return { queries: [], problems: [] };
  if (!isMap(top)) return fileProblem('not a map of query names to query definitions (postgres_exporter\'s queries.yaml format)');
  const queries: CustomQuery[] = [];
  const problems: QueryProblem[] = [];
  for (const [name, def] of Object.entries(top)) {
    try {
      queries.push(parseQuery(name, def, source));
    } catch (err) {
      problems.push({ query: customLabel(name), source, error: (err as Error).message });
    }
  }
  return { queries, problems };
}

export interface QueryFile {
  source: string;
  /** null: the file could not be read (`readError` says why). */
  text: string | null;
  readError?: string;
}

/**
 * Every file's queries, checked against each other and the built-in metrics: a query whose name
 * an earlier one has, or a metric name a built-in family (`reserved`) or an earlier query has,
 * is refused with a problem; the others load.
 */
export function loadQueries(files: QueryFile[], reserved: (family: string) => boolean): { queries: CustomQuery[]; problems: QueryProblem[] } {
  const queries: CustomQuery[] = [];
  const problems: QueryProblem[] = [];
  const names = new Map<string, string>();
  const families = new Map<string, string>();
  for (const f of files) {
    if (f.text === null) {
      problems.push({ query: customLabel(f.source), source: f.source, error: f.readError ?? 'cannot read the file' });
      continue;
    }
    const parsed = parseQueriesFile(f.text, f.source);
    problems.push(...parsed.problems);
    for (const q of parsed.queries) {
      const problem = conflict(q, names, families, reserved);
      if (problem) {
        problems.push({ query: customLabel(q.name), source: q.source, error: problem });
        continue;
      }
      names.set(q.name, q.source);
      for (const fam of familyNames(q)) families.set(fam, q.name);
      queries.push(q);
    }
  }
  return { queries, problems };
}

function conflict(q: CustomQuery, names: Map<string, string>, families: Map<string, string>, reserved: (family: string) => boolean): string | null {
  if (names.has(q.name)) return `a query of the same name comes first (in ${names.get(q.name)})`;
  for (const fam of familyNames(q)) {
    if (reserved(fam)) return `metric ${fam} collides with a built-in metric of the exporter`;
    if (families.has(fam)) return `metric ${fam} is also a metric of the query ${families.get(fam)}`;
  }
  return null;
}

/** A cell of a value column as a sample value; null: no sample (SQL NULL). */
function cellValue(v: unknown, c: CustomColumn): number | null {
  if (v === null || v === undefined) return null;
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (v instanceof Date) return v.getTime() / 1000;
  if (typeof v === 'string') {
    if (c.mapping && v in c.mapping) return c.mapping[v]!;
    const n = Number(v);
    if (v.trim() !== '' && !Number.isNaN(n)) return n;
    if (/^[+-]?(NaN|Infinity)$/.test(v)) return Number(v);
  }
  throw new Error(`column ${c.name}: ${JSON.stringify(v)} is not a number`);
}

const labelValue = (v: unknown): string => (v === null || v === undefined ? '' : v instanceof Date ? v.toISOString() : String(v));

/**
 * The samples of one query's rows. Throws (the query counts as failed and none of its samples
 * are served) when a column is missing from the result, a value is not a number, or two rows
 * have the same labels: Prometheus would refuse the whole scrape for a duplicate series.
 */
export function customSamples(q: CustomQuery, rows: Row[], fields: string[] = rows[0] ? Object.keys(rows[0]) : []): Sample[] {
  if (rows.length > 0) {
    const missing = q.columns.filter((c) => c.usage !== 'DISCARD' && !fields.includes(c.name)).map((c) => c.name);
    if (missing.length > 0) throw new Error(`the result has no column ${missing.join(', ')}`);
  }
  const labels = q.columns.filter((c) => c.usage === 'LABEL');
  const values = q.columns.filter((c) => VALUE_USAGES.includes(c.usage));
  const out: Sample[] = [];
  const seen = new Set<string>();
  for (const row of rows) {
    const l = Object.fromEntries(labels.map((c) => [c.name, labelValue(row[c.name])]));
    const key = JSON.stringify(l);
    if (seen.has(key)) throw new Error(`two rows have the same labels ${key}: make the LABEL columns unique per row`);
    seen.add(key);
    for (const c of values) {
      const v = cellValue(row[c.name], c);
      if (v !== null) out.push({ name: `${q.name}_${c.name}`, ...(labels.length > 0 ? { labels: l } : {}), value: v });
    }
  }
  return out;
}
