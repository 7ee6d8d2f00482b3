// The operation queue (operations.ts): one at a time, a repeat joins the running one, status.
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { Operations } from './operations.js';

describe('Operations', () => {
  it('runs queued work one piece after another, in order, past failures', async () => {
    const ops = new Operations();
    const order: string[] = [];
    const a = ops.exclusive(async () => {
      await sleep(20);
      order.push('a');
    });
    const b = ops.exclusive(async () => {
      order.push('b');
      throw new Error('b failed');
    });
    const c = ops.exclusive(async () => order.push('c'));
    await a;
    await expect(b).rejects.toThrow('b failed');
    await c;
    expect(order).toEqual(['a', 'b', 'c']);
  });

  it('reports an operation from queued to its end, with its steps', async () => {
    const ops = new Operations();
    expect(ops.current()).toBeNull();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const running = ops.operate('follow', '10.0.0.1:5432', async (step) => {
      step('pg_rewind');
      await gate;
      return 'ok';
    });
    expect(ops.current()).toMatchObject({ kind: 'follow', target: '10.0.0.1:5432', state: 'running', step: 'queued', finishedAt: null, error: null });
    expect(ops.busy).toBe(true);
    await sleep(0);
    expect(ops.current()?.step).toBe('pg_rewind');
    release();
    expect(await running).toBe('ok');
    expect(ops.current()).toMatchObject({ state: 'succeeded', step: 'done', error: null });
    expect(ops.current()?.finishedAt).not.toBeNull();
    expect(ops.busy).toBe(false);
  });

  it('joins a repeat of the running operation, and queues a different one', async () => {
    const ops = new Operations();
    let runs = 0;
    const work = async () => {
      runs++;
      await sleep(10);
    };
    const first = ops.operate('fence', null, work);
    expect(ops.operate('fence', null, work)).toBe(first);
    const other = ops.operate('follow', 'h:1', work);
    await Promise.all([first, other]);
    expect(runs).toBe(2);
  });

  it('reports a failed operation with its error', async () => {
    const ops = new Operations();
    await expect(ops.operate('promote', null, () => Promise.reject(new Error('not in recovery')))).rejects.toThrow('not in recovery');
    expect(ops.current()).toMatchObject({ kind: 'promote', state: 'failed', error: 'not in recovery' });
  });

  it('lets admit refuse work (the agent is stopping)', async () => {
    let stopping = false;
    const ops = new Operations(() => {
      if (stopping) throw new Error('the agent is shutting down');
    });
    await ops.exclusive(async () => undefined);
    stopping = true;
    let ran = false;
    await expect(ops.exclusive(async () => (ran = true))).rejects.toThrow('shutting down');
    expect(ran).toBe(false);
  });
});
