// The bounded wait of an operation call (api-server.ts), and the system identifier read from
// pg_control (control-file.ts).
import { setTimeout as later } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { awaitOperation } from './api-server.js';
import type { OperationStatus } from './api-types.js';
import { HttpError } from './requests.js';

const op: OperationStatus = { kind: 'follow', target: '127.0.0.2:5432', state: 'running', step: 'pg_rewind', startedAt: '2026-12-04T00:00:00Z', finishedAt: null, error: null };

describe('awaitOperation', () => {
  it('answers 200 with the result when the operation ends within the wait', async () => {
    expect(await awaitOperation(later(10, { lsn: '0/1' }), 1000, () => op)).toEqual([200, { lsn: '0/1' }]);
  });

  it('answers 202 with the running operation when it does not, and the operation goes on', async () => {
    let done = false;
    const work = later(200, 'x').then((v) => ((done = true), v));
    const t0 = Date.now();
    expect(await awaitOperation(work, 20, () => op)).toEqual([202, { accepted: true, operation: op }]);
    expect(Date.now() - t0).toBeLessThan(190);
    await work;
    expect(done).toBe(true);
  });

  it("passes an operation's error on when it fails within the wait, and swallows a later failure", async () => {
    await expect(awaitOperation(Promise.reject(new HttpError(409, 'fenced')), 1000, () => op)).rejects.toThrow('fenced');
    const failsLater = later(30).then(() => {
      throw new Error('rewind failed');
    });
    expect((await awaitOperation(failsLater, 0, () => op))[0]).toBe(202);
    await later(60); // no unhandled rejection reaches the test runner
  });

  it('without a wait, waits until the end', async () => {
    expect(await awaitOperation(later(30, 'ok'), undefined, () => op)).toEqual([200, 'ok']);
  });
});
