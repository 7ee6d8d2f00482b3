// Watches pg_wal/archive_status of a running server for the `backup` benchmark: when each WAL
// segment became ready (<f>.ready appears) and when PostgreSQL recorded it as archived (<f>.ready
// renamed to <f>.done, right after archive_command returned 0), plus the number of .ready files
// sampled at a fixed interval (the archiving backlog). inotify (fs.watch) gives the event times;
// the sampler's directory listing fills in anything the watch missed (at its sampling time).
import { watch, type FSWatcher } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';

const SEGMENT = /^[0-9A-F]{24}$/;

export interface SegmentTimes {
  readyAt: number;
  doneAt?: number;
}

export interface ArchiveWindow {
  /** Segments that became ready inside the window. */
  segments: number;
  /** First .ready (or the given start) → last .done, seconds. */
  seconds: number;
  segmentsPerSecond: number;
  /** Mean .ready → .done per segment, ms (what one segment waits for archive_command). */
  latencyMsAvg: number;
  latencyMsMax: number;
  /** Largest sampled number of .ready files inside the window. */
  backlogMax: number;
  names: string[];
}

export class ArchiveStatusTracker {
  private readonly dir: string;
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private sampling = false;
  readonly segments = new Map<string, SegmentTimes>();
  /** [time, .ready count] every `sampleMs`. */
  readonly samples: Array<[number, number]> = [];

  constructor(walDir: string, private readonly sampleMs = 100) {
    this.dir = join(walDir, 'archive_status');
  }

  start(): void {
    this.watcher = watch(this.dir, (_event, file) => {
      if (typeof file === 'string') this.note(file, Date.now());
    });
    this.watcher.on('error', () => undefined);
    this.timer = setInterval(() => void this.sample(), this.sampleMs);
  }

  stop(): void {
    this.watcher?.close();
    this.watcher = undefined;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private note(file: string, at: number): void {
    const dot = file.lastIndexOf('.');
    if (dot < 0) return;
    const name = file.slice(0, dot);
    const kind = file.slice(dot + 1);
    if (!SEGMENT.test(name)) return;
    if (kind === 'ready') {
      if (!this.segments.has(name)) this.segments.set(name, { readyAt: at });
    } else if (kind === 'done') {
      const s = this.segments.get(name);
      if (s && s.doneAt === undefined) s.doneAt = at;
    }
  }

  private async sample(): Promise<void> {
    if (this.sampling) return;
    this.sampling = true;
    try {
      const at = Date.now();
      const files = await readdir(this.dir).catch(() => [] as string[]);
      let ready = 0;
      for (const f of files) {
        if (f.endsWith('.ready') && SEGMENT.test(f.slice(0, -6))) ready++;
        this.note(f, at);
      }
      this.samples.push([at, ready]);
    } finally {
      this.sampling = false;
    }
  }

  /** Names of segments that became ready at or after `since` and are not archived yet. */
  pending(since: number): string[] {
    return [...this.segments].filter(([, t]) => t.readyAt >= since && t.doneAt === undefined).map(([n]) => n);
  }

  /** Ready segments (any time) not yet archived, per the directory right now. */
  async readyNow(): Promise<string[]> {
    const files = await readdir(this.dir);
    return files.filter((f) => f.endsWith('.ready') && SEGMENT.test(f.slice(0, -6))).map((f) => f.slice(0, -6));
  }

  /** Waits until every segment ready since `since` (and every .ready file now present) is archived. */
  async waitArchived(since: number, timeoutMs: number, what: string): Promise<void> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const left = [...new Set([...this.pending(since), ...(await this.readyNow())])];
      if (left.length === 0) {
        await this.sample(); // the last .done may have been seen by the listing only
        if (this.pending(since).length === 0) return;
      }
      if (Date.now() > until) throw new Error(`${what}: ${left.length} WAL segment(s) not archived within ${timeoutMs / 1000} s (${left.slice(0, 5).join(', ')}…)`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /**
   * Archiving over a window: the segments that became ready in [since, until] (or, with
   * `backlog`, the segments that were waiting at `since`), timed from the first .ready (or from
   * `since` for a backlog) to the last .done.
   */
  window(since: number, until: number, opts: { backlog?: boolean } = {}): ArchiveWindow {
    const picked = [...this.segments].filter(([, t]) => (opts.backlog ? t.readyAt <= since : t.readyAt >= since && t.readyAt <= until) && t.doneAt !== undefined && t.doneAt >= since);
    const names = picked.map(([n]) => n).sort();
    if (picked.length === 0) return { segments: 0, seconds: 0, segmentsPerSecond: 0, latencyMsAvg: 0, latencyMsMax: 0, backlogMax: 0, names };
    const first = opts.backlog ? since : Math.min(...picked.map(([, t]) => t.readyAt));
    const last = Math.max(...picked.map(([, t]) => t.doneAt!));
    const seconds = Math.max(0.001, (last - first) / 1000);
    const lat = picked.map(([, t]) => t.doneAt! - Math.max(t.readyAt, opts.backlog ? since : t.readyAt));
    const backlogMax = Math.max(0, ...this.samples.filter(([at]) => at >= since && at <= last).map(([, n]) => n));
    return {
      segments: picked.length,
      seconds,
      segmentsPerSecond: picked.length / seconds,
      latencyMsAvg: lat.reduce((a, b) => a + b, 0) / lat.length,
      latencyMsMax: Math.max(...lat),
      backlogMax,
      names,
    };
  }
}
