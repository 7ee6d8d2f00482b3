import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { WorkQueue, type WorkQueueOptions, type WorkResult } from './workqueue.js';

describe('WorkQueue', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: 0 });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  /** Let every settled promise and due timer run. */
  const settle = () => vi.advanceTimersByTimeAsync(0);

  /**
   * A queue whose handler records each call and waits until the test releases it (or returns
   * at once with `instant`). `inFlight` tracks concurrency overall and per key.
   */
  function harness(opts: Partial<WorkQueueOptions> = {}, behaviour: { instant?: boolean; result?: (key: string, call: number) => WorkResult | Error | void } = {}) {
    const calls: Array<{ key: string; at: number }> = [];
    const pending: Array<{ key: string; release: () => void }> = [];
    const inFlight = new Map<string, number>();
    let running = 0;
    let maxRunning = 0;
    let maxPerKey = 0;
    const handler = async (key: string): Promise<WorkResult | void> => {
      calls.push({ key, at: Date.now() });
      const n = calls.filter((c) => c.key === key).length;
      running++;
      inFlight.set(key, (inFlight.get(key) ?? 0) + 1);
      maxRunning = Math.max(maxRunning, running);
      maxPerKey = Math.max(maxPerKey, inFlight.get(key)!);
      try {
        if (!behaviour.instant) await new Promise<void>((release) => pending.push({ key, release }));
        const out = behaviour.result?.(key, n);
        if (out instanceof Error) throw out;
        return out;
      } finally {
        running--;
        inFlight.set(key, inFlight.get(key)! - 1);
      }
    };
    const queue = new WorkQueue(handler, { concurrency: 1, ...opts });
    const releaseAll = async () => {
      while (pending.length > 0) {
        for (const p of pending.splice(0)) p.release();
        await settle();
      }
    };
    return {
      queue,
      calls,
      pending,
      releaseAll,
      callsOf: (key: string) => calls.filter((c) => c.key === key),
      get maxRunning() {
        return maxRunning;
      },
      get maxPerKey() {
        return maxPerKey;
      },
    };
  }

  it('handles a key once per add', async () => {
    const h = harness({}, { instant: true });
    h.queue.add('a');
    await settle();
    expect(h.calls.map((c) => c.key)).toEqual(['a']);
  });

  it('never runs one key twice at once, and runs it once more for adds made while it ran', async () => {
    const h = harness({ concurrency: 4 });
    h.queue.add('a');
    await settle();
    h.queue.add('a');
    h.queue.add('a');
    h.queue.add('a');
    await settle();
    expect(h.callsOf('a')).toHaveLength(1);
    await h.releaseAll();
    expect(h.callsOf('a')).toHaveLength(2);
    expect(h.maxPerKey).toBe(1);
  });

  it('coalesces duplicate adds of a key still waiting for a worker', async () => {
    const h = harness({ concurrency: 1 });
    h.queue.add('busy');
    await settle();
    for (let i = 0; i < 5; i++) h.queue.add('a');
    expect(h.queue.depth).toBe(1);
    await h.releaseAll();
    expect(h.callsOf('a')).toHaveLength(1);
  });

  it('runs different keys concurrently, up to the concurrency limit', async () => {
    const h = harness({ concurrency: 2 });
    for (const k of ['a', 'b', 'c', 'd', 'e']) h.queue.add(k);
    await settle();
    expect(h.calls.map((c) => c.key)).toEqual(['a', 'b']);
    expect(h.queue.depth).toBe(3);
    await h.releaseAll();
    expect(h.calls.map((c) => c.key).sort()).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(h.maxRunning).toBe(2);
  });

  it('reports the depth of the ready queue', async () => {
    const depths: number[] = [];
    const h = harness({ concurrency: 1, onDepth: (d) => depths.push(d) });
    for (const k of ['a', 'b', 'c']) h.queue.add(k);
    await h.releaseAll();
    expect(Math.max(...depths)).toBe(2);
    expect(depths.at(-1)).toBe(0);
  });

  it('retries a failing key with exponential backoff, capped at maxBackoffMs', async () => {
    const retries: Array<[number, number]> = [];
    const h = harness(
      { baseBackoffMs: 100, maxBackoffMs: 500, onRetry: (_k, attempt, delay) => retries.push([attempt, delay]) },
      { instant: true, result: () => new Error('boom') },
    );
    h.queue.add('a');
    await vi.advanceTimersByTimeAsync(100 + 200 + 400 + 500 + 500);
    const at = h.callsOf('a').map((c) => c.at);
    expect(at.slice(1).map((t, i) => t - at[i]!)).toEqual([100, 200, 400, 500, 500]);
    expect(retries.slice(0, 5)).toEqual([[1, 100], [2, 200], [3, 400], [4, 500], [5, 500]]);
  });

  it('starts the backoff over after a success', async () => {
    const h = harness({ baseBackoffMs: 100 }, { instant: true, result: (_k, n) => (n === 3 ? undefined : new Error(`fail ${n}`)) });
    h.queue.add('a');
    await vi.advanceTimersByTimeAsync(300); // fails at 0, fails at 100, succeeds at 300
    expect(h.callsOf('a')).toHaveLength(3);
    h.queue.add('a'); // fails again: the next try must come after 100 ms, not 400
    await settle();
    await vi.advanceTimersByTimeAsync(100);
    expect(h.callsOf('a')).toHaveLength(5);
  });

  it('runs a key again after requeueAfterMs, not before', async () => {
    const h = harness({}, { instant: true, result: (_k, n) => (n === 1 ? { requeueAfterMs: 5000 } : undefined) });
    h.queue.add('a');
    await vi.advanceTimersByTimeAsync(4999);
    expect(h.callsOf('a')).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(h.callsOf('a')).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(h.callsOf('a')).toHaveLength(2);
  });

  it('keeps the earlier of two delayed adds of a key', async () => {
    const h = harness({}, { instant: true });
    h.queue.add('a', 5000);
    h.queue.add('a', 1000);
    h.queue.add('a', 3000);
    await vi.advanceTimersByTimeAsync(1000);
    expect(h.callsOf('a').map((c) => c.at)).toEqual([1000]);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(h.callsOf('a')).toHaveLength(1);
  });

  it('shutdown waits for in-flight work, then takes no more', async () => {
    const h = harness({ concurrency: 1 });
    h.queue.add('a');
    h.queue.add('b');
    h.queue.add('c', 1000);
    await settle();
    let done = false;
    const stopped = h.queue.shutdown().then(() => (done = true));
    await settle();
    expect(done).toBe(false);
    h.queue.add('d');
    await h.releaseAll();
    await stopped;
    await vi.advanceTimersByTimeAsync(5000);
    expect(h.calls.map((c) => c.key)).toEqual(['a']);
  });

  it('shutdown of an idle queue resolves at once', async () => {
    const h = harness();
    await expect(h.queue.shutdown()).resolves.toBeUndefined();
  });
});
