// The exporter's own queries from the files in PGPILOT_CUSTOM_QUERIES (the ConfigMaps of
// spec.monitoring.customQueries, mounted at <dir>/<ConfigMap>/<key>). The kubelet updates a
// mounted ConfigMap in place (an atomic symlink swap), so the files are read again when they were
// last read more than POLL_MS ago, lazily, from a scrape or a status call (no timer): what changed
// is parsed again (src/postgres/custom-queries.ts), what did not keeps its parse.
//
// The problems reported (InstanceStatus.customQueries) are those of loading (a file missing or not
// valid YAML, a broken definition, a name that collides) and those of the last run of each loaded
// query (its SQL failed, its result could not be mapped), which the exporter records.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { loadQueries, customLabel, type CustomQuery, type QueryFile, type QueryProblem } from '../postgres/custom-queries.js';
import { PG_FAMILIES } from '../postgres/stats-queries.js';
import type { Logger } from '../runtime/logger.js';
import { errorText } from '../util/error-text.js';
import type { CustomQueriesStatus } from './api-types.js';

export const POLL_MS = 2000;

/** Families a custom query may not use: the built-in PostgreSQL ones and every pgpilot_ name (the agent's own). */
export const reservedFamily = (family: string): boolean => Object.hasOwn(PG_FAMILIES, family) || family.startsWith('pgpilot_');

/** `<ConfigMap>/<key>`: how a file is named in problems (the last two parts of its path). */
export const sourceOf = (file: string): string => `${basename(dirname(file))}/${basename(file)}`;

interface Loaded {
  hash: string;
  queries: CustomQuery[];
  problems: QueryProblem[];
}

async function readQueryFile(file: string): Promise<QueryFile> {
  const source = sourceOf(file);
  try {
    return { source, text: await readFile(file, 'utf8') };
  } catch (err) {
    const code = (err as { code?: string }).code;
    return { source, text: null, readError: code === 'ENOENT' ? 'no such file: the ConfigMap or its key does not exist' : `cannot read ${file}: ${errorText(err)}` };
  }
}

export class CustomQueryFiles {
  private loaded: Loaded = { hash: '', queries: [], problems: [] };
  private readAt = -Infinity;
  private reading: Promise<Loaded> | undefined;
  /** The last run's error of each loaded query (by name); cleared when the files change. */
  private readonly runErrors = new Map<string, string>();

  constructor(
    readonly files: string[],
    private readonly log: Logger,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** The queries and load problems, the files read again when last read more than POLL_MS ago. */
  current(): Promise<Loaded> {
    if (this.now() - this.readAt < POLL_MS) return Promise.resolve(this.loaded);
    this.reading ??= this.read().finally(() => {
      this.reading = undefined;
    });
    return this.reading;
  }

  /** Read the files again at the next use, however recently they were read (POST /v1/reload). */
  invalidate(): void {
    this.readAt = -Infinity;
  }

  /** The exporter's report of one run: an error, or null when it succeeded. */
  recordRun(q: CustomQuery, error: string | null): void {
    if (!this.loaded.queries.includes(q)) return; // replaced by a reload in the meantime
    if (error === null) this.runErrors.delete(q.name);
    else this.runErrors.set(q.name, error);
  }

  /** Load problems, then the failures of the last runs. */
  problems(): QueryProblem[] {
    const run = this.loaded.queries.filter((q) => this.runErrors.has(q.name)).map((q) => ({ query: customLabel(q.name), source: q.source, error: this.runErrors.get(q.name)! }));
    return [...this.loaded.problems, ...run];
  }

  async status(): Promise<CustomQueriesStatus> {
    const l = await this.current();
    return { files: this.files.map(sourceOf), loaded: l.queries.length, problems: this.problems() };
  }

  private async read(): Promise<Loaded> {
    const files = await Promise.all(this.files.map(readQueryFile));
    this.readAt = this.now();
    const h = createHash('sha256');
    for (const f of files) h.update(f.source).update('\0').update(f.text ?? `\u0001${f.readError}`).update('\0');
    const hash = h.digest('hex');
    if (hash === this.loaded.hash) return this.loaded;
    let result: Pick<Loaded, 'queries' | 'problems'>;
    try {
      result = loadQueries(files, reservedFamily);
    } catch (err) {
      // Not expected (loadQueries reports problems, it does not throw): never let it break a scrape or the status.
      result = { queries: [], problems: files.map((f) => ({ query: customLabel(f.source), source: f.source, error: `cannot load: ${errorText(err)}` })) };
    }
    const { queries, problems } = result;
    this.loaded = { hash, queries, problems };
    this.runErrors.clear();
    this.log.info({ loaded: queries.map((q) => q.name), problems }, 'metrics: custom queries (re)loaded');
    return this.loaded;
  }
}
