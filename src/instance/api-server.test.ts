// Pieces of the agent's operation API and start-up, pure or nearly: the bounded wait of an
// operation call, ?wait= parsing, follow bodies, and the system identifier read from pg_control.
import { describe, expect, it } from 'vitest';
import { awaitOperation } from './api-server.js';
import type { OperationStatus } from './api-types.js';
import { systemIdentifierOf } from '../postgres/control-file.js';
import { HttpError, parseFenceRequest, parseFollowRequest, parseWait } from './requests.js';

const op: OperationStatus = { kind: 'follow', target: '127.0.0.2:5432', state: 'running', step: 'pg_rewind', startedAt: '2026-12-04T00:00:00Z', finishedAt: null, error: null };
const later = <T>(ms: number, v: T) => new Promise<T>((r) => setTimeout(() => r(v), ms));

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
    const failsLater = new Promise((_, reject) => setTimeout(() => reject(new Error('rewind failed')), 30));
    expect((await awaitOperation(failsLater, 0, () => op))[0]).toBe(202);
    await new Promise((r) => setTimeout(r, 60)); // no unhandled rejection reaches the test runner
  });

  it('without a wait, waits until the end', async () => {
    expect(await awaitOperation(later(30, 'ok'), undefined, () => op)).toEqual([200, 'ok']);
  });
});

describe('operation requests', () => {
  it('parses ?wait= as whole milliseconds, and says what is allowed otherwise', () => {
    expect(parseWait('/v1/follow')).toBeUndefined();
    expect(parseWait('/v1/follow?wait=0')).toBe(0);
    expect(parseWait('/v1/promote?wait=5000')).toBe(5000);
    for (const bad of ['soon', '-1', '1.5', '3600001', '']) expect(() => parseWait(`/v1/fence?wait=${bad}`)).toThrow(/wait must be a whole number of milliseconds from 0 to 3600000/);
  });

  it('takes a fence stop budget only as whole seconds from 1 to 3600', () => {
    expect(parseFenceRequest({})).toEqual({});
    expect(parseFenceRequest({ stopSeconds: 60 })).toEqual({ stopSeconds: 60 });
    for (const bad of [0, 1.5, '60', 3601]) expect(() => parseFenceRequest({ stopSeconds: bad })).toThrow('stopSeconds must be an integer from 1 to 3600');
  });

  it('takes reclone in a follow request only as a boolean', () => {
    const primary = { host: '127.0.0.2', port: 5432 };
    expect(parseFollowRequest({ primary })).toEqual({ primary });
    expect(parseFollowRequest({ primary, reclone: true })).toEqual({ primary, reclone: true });
    expect(parseFollowRequest({ primary, reclone: false })).toEqual({ primary });
    expect(() => parseFollowRequest({ primary, reclone: 'yes' })).toThrow('reclone must be true or false');
  });
});

describe('systemIdentifierOf', () => {
  it('reads the first 8 bytes of pg_control as a little-endian unsigned integer', () => {
    const control = Buffer.alloc(296);
    control.writeBigUInt64LE(7_445_123_456_789_012_345n, 0);
    expect(systemIdentifierOf(control)).toBe('7445123456789012345');
    expect(() => systemIdentifierOf(Buffer.alloc(4))).toThrow('too short');
  });
});
