// WAL for recovery, inside the instance agent. restore_command (handoff.ts) asks by creating
// <spool>/want/<f>; this answers with got/<f> (verified content), missing/<f> (not in the archive)
// or failed/<f> (a message: corrupt object, or the store kept failing). Recovery reads segments
// one after another, so after each request the next few segments of that timeline are downloaded
// in parallel into <spool>/prefetch and served from there at once.
//
// The answering path (read want/, stat, remove, rename) uses synchronous calls on purpose: they are
// metadata operations of microseconds, and as promises they would queue on the libuv thread pool
// behind the prefetches' gunzip steps and file writes (measured: 20-90 ms per answer under load).
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { chown, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';
import type { Logger } from '../runtime/logger.js';
import { archiveKeys, SHA256_METADATA } from './archive-layout.js';
import { DirWatch } from './dir-watch.js';
import { SPOOL_DIRS } from '../postgres/handoff.js';
import { ObjectNotFound, type ObjectStore } from './object-store.js';
import { compareWalNames, DEFAULT_SEGMENT_SIZE, isSegmentName, isWalFileName, nextWalNames, parseWalName } from '../postgres/wal-names.js';
import { errorText } from '../util/error-text.js';

const gunzipAsync = promisify(gunzip);

export interface WalFetcherOptions {
  spoolDir: string;
  store: ObjectStore;
  /** The source cluster's root path in the store (ArchiveLocation.path). */
  path: string;
  log: Logger;
  /** Segments downloaded ahead of each request (default 8; 0 turns prefetching off). */
  prefetch?: number;
  /** Of those, downloads at a time, nearest first (default 2: more fill the thread pool that answering a request needs). */
  prefetchParallel?: number;
  segmentSize?: number;
  /** Scan interval besides fs.watch (ms, default 200). */
  pollMs?: number;
  /** Attempts per object on store errors (default 3), spaced by retryDelayMs * attempt. */
  attempts?: number;
  retryDelayMs?: number;
  /**
   * Owner of the files handed to PostgreSQL, when the agent runs as another OS user than postgres
   * (tests running as root): postgres opens restored WAL for writing. Files are 0600 either way.
   */
  owner?: { uid: number; gid: number };
}

export interface FetcherStats {
  requested: number;
  servedFromPrefetch: number;
  /** Objects downloaded (requests and prefetches). */
  downloaded: number;
  /** From the request (want/ file) to the answer in got/, averaged over served requests. */
  avgFetchMs: number;
  failures: number;
  lastError: string | null;
}

type Outcome = { kind: 'ok'; data: Buffer } | { kind: 'missing' } | { kind: 'failed'; message: string };

/** Content that can never become right by downloading again. */
class CorruptObject extends Error {}

export class WalFetcher {
  private readonly dir: Record<(typeof SPOOL_DIRS)[number] | 'prefetch', string>;
  private readonly prefetchCount: number;
  private readonly prefetchParallel: number;
  private readonly segmentSize: number;
  private readonly attempts: number;
  private readonly retryDelayMs: number;
  private readonly log: Logger;

  /** want/, watched while running. */
  private watch: DirWatch | undefined;
  private running = false;
  private readonly serving = new Map<string, Promise<void>>();
  private readonly prefetching = new Map<string, Promise<void>>();
  private prefetchQueue: string[] = [];
  /** Files complete in the prefetch dir. */
  private readonly cached = new Set<string>();
  private servedMsTotal = 0;
  private servedCount = 0;

  private st: FetcherStats = { requested: 0, servedFromPrefetch: 0, downloaded: 0, avgFetchMs: 0, failures: 0, lastError: null };

  constructor(private readonly o: WalFetcherOptions) {
    const d = (n: string) => join(o.spoolDir, n);
    this.dir = { want: d('want'), got: d('got'), missing: d('missing'), failed: d('failed'), prefetch: d('prefetch') };
    this.prefetchCount = Math.max(0, o.prefetch ?? 8);
    this.prefetchParallel = Math.max(1, o.prefetchParallel ?? 2);
    this.segmentSize = o.segmentSize ?? DEFAULT_SEGMENT_SIZE;
    this.attempts = Math.max(1, o.attempts ?? 3);
    this.retryDelayMs = o.retryDelayMs ?? 500;
    this.log = o.log.child({ component: 'wal-fetcher' });
  }

  /** Creates the spool (restore_command needs it before PostgreSQL starts) and serves requests. */
  async start(): Promise<void> {
    if (this.running) return;
    // Answers and cache of an earlier run may come from another source: only requests survive.
    for (const n of ['got', 'missing', 'failed', 'prefetch'] as const) await rm(this.dir[n], { recursive: true, force: true });
    for (const d of Object.values(this.dir)) await mkdir(d, { recursive: true, mode: 0o700 });
    this.running = true;
    this.watch = new DirWatch({ dir: this.dir.want, pollMs: this.o.pollMs ?? 200, scan: async () => this.scan(), log: this.log, what: 'the restore spool' });
    await this.watch.start();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.prefetchQueue = [];
    await this.watch?.stop();
    this.watch = undefined;
    await Promise.allSettled([...this.serving.values(), ...this.prefetching.values()]);
  }

  stats(): FetcherStats {
    return { ...this.st, avgFetchMs: this.servedCount ? Math.round((this.servedMsTotal / this.servedCount) * 10) / 10 : 0 };
  }

  /** Starts answering the requests in want/ not yet being answered. */
  private scan(): void {
    if (!this.running) return;
    let wants: string[];
    try {
      wants = readdirSync(this.dir.want);
    } catch (err) {
      this.log.warn({ err: errorText(err) }, 'reading the restore spool failed');
      return;
    }
    for (const name of wants) {
      if (this.serving.has(name)) continue;
      const task = this.serve(name)
        .catch((err: Error) => this.log.error({ wal: name, err: err.message }, 'answering a WAL request failed'))
        .finally(() => this.serving.delete(name));
      this.serving.set(name, task);
    }
  }

  private async serve(name: string): Promise<void> {
    const wantFile = join(this.dir.want, name);
    // The request time is the want file's: a scan may notice it a poll later.
    let since = Date.now();
    try {
      since = Math.min(statSync(wantFile).mtimeMs, since);
    } catch {
      // withdrawn already: answered below all the same
    }
    if (!isWalFileName(name)) {
      rmSync(wantFile, { force: true });
      await this.answer(name, { kind: 'missing' }); // PostgreSQL asks only for WAL names; nothing else is archived
      return;
    }
    this.st.requested++;
    const segment = isSegmentName(name);
    if (segment) this.forgetBefore(name);
    const ahead = this.prefetching.get(name);
    if (ahead) await ahead;
    // The request is withdrawn before it is answered: a new request for the same file (a standby
    // retrying) made after this point is never deleted by this one.
    rmSync(wantFile, { force: true });
    let from: 'prefetch' | 'download' = 'prefetch';
    if (this.cached.has(name) && (await this.takeFromCache(name))) {
      this.st.servedFromPrefetch++;
    } else {
      from = 'download';
      // Nothing ahead yet (the first request, or recovery outran the prefetch): replay asks for
      // the next file as soon as this one is replayed, so start on it now.
      if (segment) this.prefetchAfter(name);
      const outcome = await this.download(name);
      await this.answer(name, outcome);
      if (outcome.kind !== 'ok') return;
    }
    const ms = Math.round(Date.now() - since);
    this.servedMsTotal += ms;
    this.servedCount++;
    this.log.debug({ wal: name, ms, from, waitedForPrefetch: !!ahead }, 'served');
    // Only now: prefetches started with the request would compete with it for the store.
    if (segment) this.prefetchAfter(name);
  }

  private async takeFromCache(name: string): Promise<boolean> {
    this.cached.delete(name);
    try {
      renameSync(join(this.dir.prefetch, name), join(this.dir.got, name));
      return true;
    } catch {
      return false; // evicted meanwhile: download
    }
  }

  private async answer(name: string, outcome: Outcome): Promise<void> {
    const dir = outcome.kind === 'ok' ? this.dir.got : outcome.kind === 'missing' ? this.dir.missing : this.dir.failed;
    const body = outcome.kind === 'ok' ? outcome.data : outcome.kind === 'failed' ? Buffer.from(outcome.message) : Buffer.alloc(0);
    await writeAtomic(join(dir, name), body, this.o.owner);
    if (outcome.kind === 'failed') {
      this.st.failures++;
      this.st.lastError = outcome.message;
      this.log.error({ wal: name, err: outcome.message }, 'WAL file cannot be restored; recovery will stop');
    } else if (outcome.kind === 'missing') {
      this.log.debug({ wal: name }, 'WAL file not in the archive');
    }
  }

  /** Downloads, gunzips and verifies one file; retries store errors, never corrupt content. */
  private async download(name: string): Promise<Outcome> {
    const key = archiveKeys.wal(this.o.path, name);
    const where = `${this.o.store.location}/${key}`;
    let last = '';
    for (let attempt = 1; attempt <= this.attempts; attempt++) {
      try {
        const head = await this.o.store.head(key);
        if (!head) return { kind: 'missing' };
        const gz = await this.o.store.getBuffer(key);
        this.st.downloaded++;
        const expected = head.metadata[SHA256_METADATA];
        if (!expected) throw new CorruptObject(`WAL ${name}: object ${where} has no ${SHA256_METADATA} metadata, its content cannot be verified`);
        let data: Buffer;
        try {
          data = await gunzipAsync(gz, { chunkSize: 1 << 20 }); // 16 output steps per segment, not 1024
        } catch (err) {
          throw new CorruptObject(`WAL ${name}: object ${where} is corrupt: not valid gzip (${errorText(err)}); expected sha256 ${expected}`);
        }
        const actual = createHash('sha256').update(data).digest('hex');
        if (actual !== expected) throw new CorruptObject(`WAL ${name}: object ${where} is corrupt: sha256 expected ${expected}, actual ${actual}`);
        return { kind: 'ok', data };
      } catch (err) {
        if (err instanceof ObjectNotFound) return { kind: 'missing' };
        if (err instanceof CorruptObject) return { kind: 'failed', message: err.message };
        last = errorText(err);
        this.log.warn({ wal: name, attempt, err: last }, 'downloading a WAL file failed');
        if (attempt < this.attempts) await sleep(this.retryDelayMs * attempt);
      }
    }
    return { kind: 'failed', message: `WAL ${name}: ${where} could not be downloaded after ${this.attempts} attempts: ${last}` };
  }

  /** Queues the next segments, nearest first, and keeps `prefetchParallel` downloads going. */
  private prefetchAfter(name: string): void {
    if (this.prefetchCount === 0) return;
    const queued = new Set(this.prefetchQueue);
    for (const next of nextWalNames(name, this.prefetchCount, this.segmentSize)) {
      if (!this.cached.has(next) && !this.prefetching.has(next) && !this.serving.has(next) && !queued.has(next)) this.prefetchQueue.push(next);
    }
    this.pumpPrefetch();
  }

  private pumpPrefetch(): void {
    while (this.running && this.prefetching.size < this.prefetchParallel && this.prefetchQueue.length > 0) {
      const next = this.prefetchQueue.shift()!;
      const task = (async () => {
        const outcome = await this.download(next);
        // Only good content is cached; a missing or failed file is looked at again when asked for.
        if (outcome.kind === 'ok' && this.running) {
          await writeAtomic(join(this.dir.prefetch, next), outcome.data, this.o.owner);
          this.cached.add(next);
        }
      })()
        .catch((err: Error) => this.log.warn({ wal: next, err: err.message }, 'prefetch failed'))
        .finally(() => {
          this.prefetching.delete(next);
          this.pumpPrefetch();
        });
      this.prefetching.set(next, task);
    }
  }

  /**
   * Recovery asked for `name`: what lies before it, or on another timeline, will not be asked for
   * (cached files are dropped, queued ones forgotten), and `name` itself is fetched directly.
   */
  private forgetBefore(name: string): void {
    const { timeline } = parseWalName(name, this.segmentSize);
    const ahead = (c: string) => parseWalName(c, this.segmentSize).timeline === timeline && compareWalNames(c, name, this.segmentSize) > 0;
    this.prefetchQueue = this.prefetchQueue.filter(ahead);
    for (const c of this.cached) {
      if (c === name || ahead(c)) continue;
      this.cached.delete(c);
      void rm(join(this.dir.prefetch, c), { force: true });
    }
  }
}

async function writeAtomic(file: string, body: Buffer, owner?: { uid: number; gid: number }): Promise<void> {
  // restore_command looks for the exact name: the temp name never matches it.
  const tmp = `${file}.tmp-${randomBytes(4).toString('hex')}`;
  await writeFile(tmp, body, { mode: 0o600 });
  if (owner) await chown(tmp, owner.uid, owner.gid);
  await rename(tmp, file);
}
