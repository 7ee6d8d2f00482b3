// Hashing while streaming (hash-tap.ts).
import { createHash } from 'node:crypto';
import { PassThrough, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { HashTap } from './hash-tap.js';

describe('HashTap', () => {
  it('passes the stream through unchanged while hashing and counting it', async () => {
    const parts = [Buffer.from('hello '), Buffer.alloc(70_000, 1), Buffer.from('world')];
    const seen: number[] = [];
    const tap = new HashTap((chunk) => seen.push(chunk.length));
    const out: Buffer[] = [];
    const sink = new PassThrough();
    sink.on('data', (c: Buffer) => out.push(c));
    await pipeline(Readable.from(parts), tap, sink);
    const all = Buffer.concat(parts);
    expect(Buffer.concat(out)).toEqual(all);
    expect(tap.bytes).toBe(all.length);
    expect(seen.reduce((a, b) => a + b, 0)).toBe(all.length);
    expect(tap.hash.digest('hex')).toBe(createHash('sha256').update(all).digest('hex'));
  });

  it('holds back the end until beforeEnd settles, and fails the stream with its error', async () => {
    let ended = false;
    const tap = new HashTap(undefined, async () => {
      await new Promise((r) => setImmediate(r));
      ended = true;
    });
    await pipeline(Readable.from([Buffer.from('x')]), tap, new PassThrough().resume());
    expect(ended).toBe(true);
    const failing = new HashTap(undefined, () => Promise.reject(new Error('pg_basebackup failed')));
    await expect(pipeline(Readable.from([Buffer.from('x')]), failing, new PassThrough().resume())).rejects.toThrow('pg_basebackup failed');
  });
});
