// A keyed work queue: each key (a cluster) is handled by one worker at a time, different keys
// concurrently; adds while a key is being handled run it once more afterwards; failures retry
// with per-key exponential backoff.
export interface WorkResult {
  /** Reconcile again after this long even without a change (e.g. waiting on pods). */
  requeueAfterMs?: number;
}

export interface WorkQueueOptions {
  concurrency: number;
  baseBackoffMs?: number;
  maxBackoffMs?: number;
  onDepth?: (depth: number) => void;
  onRetry?: (key: string, attempt: number, delayMs: number, err: unknown) => void;
}

export class WorkQueue {
  private readonly ready: string[] = [];
  private readonly queued = new Set<string>();
  private readonly active = new Set<string>();
  private readonly dirty = new Set<string>();
  private readonly timers = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  private readonly failures = new Map<string, number>();
  private running = 0;
  private shuttingDown = false;
  private idleWaiters: Array<() => void> = [];

  constructor(
    private readonly handler: (key: string) => Promise<WorkResult | void>,
    private readonly opts: WorkQueueOptions,
  ) {}

  /** Queue key now, or after delayMs (an earlier pending time wins). */
  add(key: string, delayMs = 0): void {
    if (this.shuttingDown) return;
    if (delayMs > 0) {
      const at = Date.now() + delayMs;
      const pending = this.timers.get(key);
      if (pending && pending.at <= at) return;
      if (pending) clearTimeout(pending.timer);
      const timer = setTimeout(() => {
        this.timers.delete(key);
        this.add(key);
      }, delayMs);
      this.timers.set(key, { at, timer });
      return;
    }
    if (this.active.has(key)) {
      this.dirty.add(key);
      return;
    }
    if (this.queued.has(key)) return;
    this.queued.add(key);
    this.ready.push(key);
    this.report();
    this.pump();
  }

  get depth(): number {
    return this.ready.length;
  }

  /** Stop taking work and wait for in-flight handlers. */
  async shutdown(): Promise<void> {
    this.shuttingDown = true;
    for (const { timer } of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    this.ready.length = 0;
    this.queued.clear();
    if (this.running === 0) return;
    await new Promise<void>((r) => this.idleWaiters.push(r));
  }

  private pump(): void {
    while (!this.shuttingDown && this.running < this.opts.concurrency && this.ready.length > 0) {
      const key = this.ready.shift()!;
      this.queued.delete(key);
      this.active.add(key);
      this.running++;
      this.report();
      void this.work(key);
    }
  }

  private async work(key: string): Promise<void> {
    try {
      const result = await this.handler(key);
      this.failures.delete(key);
      if (result?.requeueAfterMs) this.add(key, result.requeueAfterMs);
    } catch (err) {
      const attempt = (this.failures.get(key) ?? 0) + 1;
      this.failures.set(key, attempt);
      const base = this.opts.baseBackoffMs ?? 1000;
      const delay = Math.min(base * 2 ** (attempt - 1), this.opts.maxBackoffMs ?? 300_000);
      this.opts.onRetry?.(key, attempt, delay, err);
      this.add(key, delay);
    } finally {
      this.active.delete(key);
      this.running--;
      if (this.dirty.delete(key)) this.add(key);
      if (this.running === 0 && this.shuttingDown) for (const w of this.idleWaiters.splice(0)) w();
      this.pump();
    }
  }

  private report(): void {
    this.opts.onDepth?.(this.ready.length);
  }
}
