import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { createGunzip, gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { ParallelGzip } from './parallel-gzip.js';

/** A readable of `data` in chunks of `chunk` bytes. */
function source(data: Buffer, chunk = 64 * 1024): Readable {
  return Readable.from(
    (function* () {
      for (let off = 0; off < data.length; off += chunk) yield data.subarray(off, off + chunk);
    })(),
    { objectMode: false },
  );
}

async function collect(readable: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of readable) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

async function compress(data: Buffer, gz: ParallelGzip, chunk?: number): Promise<Buffer> {
  const out: Buffer[] = [];
  await pipeline(source(data, chunk), gz, new Writable({ write: (c: Buffer, _e, cb) => (out.push(c), cb()) }));
  return Buffer.concat(out);
}

async function gunzipStream(gz: Buffer): Promise<Buffer> {
  return collect(source(gz, 1000).pipe(createGunzip()));
}

/** Compressible, page-like data: repeated text with numbers that change. */
function compressible(bytes: number): Buffer {
  const lines: string[] = [];
  let n = 0;
  let len = 0;
  while (len < bytes) {
    const line = `${n}\taccount ${n * 7919 % 100000}\tbalance ${(n * 31) % 977}\t${'x'.repeat(n % 40)}\n`;
    lines.push(line);
    len += line.length;
    n++;
  }
  return Buffer.from(lines.join('')).subarray(0, bytes);
}

/** Number of gzip members: count headers by decoding member after member. */
function members(gz: Buffer): number {
  let count = 0;
  for (let i = 0; i + 2 < gz.length; i++) if (gz[i] === 0x1f && gz[i + 1] === 0x8b && gz[i + 2] === 8) count++;
  return count;
}

describe('ParallelGzip', () => {
  it('round-trips random and compressible data through createGunzip, in order', async () => {
    for (const data of [randomBytes(3 * 1024 * 1024 + 17), compressible(5 * 1024 * 1024 + 1234)]) {
      for (const concurrency of [1, 2, 4]) {
        const gz = await compress(data, new ParallelGzip({ pieceSize: 256 * 1024, concurrency, level: 1 }));
        expect(members(gz)).toBeGreaterThan(4);
        expect((await gunzipStream(gz)).equals(data)).toBe(true);
        expect(gunzipSync(gz).equals(data)).toBe(true);
      }
    }
  });

  it('keeps the order when later pieces finish first', async () => {
    // Piece sizes alternate between large random (slow) and tiny (fast) through odd chunking.
    const data = Buffer.concat(Array.from({ length: 40 }, (_, i) => (i % 2 ? Buffer.alloc(1000, i) : randomBytes(200_000))));
    const gz = await compress(data, new ParallelGzip({ pieceSize: 100_000, concurrency: 4 }), 7_777);
    expect((await gunzipStream(gz)).equals(data)).toBe(true);
  });

  it('gzip -d and tar -xz read all the members', async () => {
    const data = compressible(2 * 1024 * 1024);
    const gz = await compress(data, new ParallelGzip({ pieceSize: 300_000, concurrency: 2 }));
    const child = spawn('gzip', ['-dc'], { stdio: ['pipe', 'pipe', 'inherit'] });
    child.stdin.end(gz);
    expect((await collect(child.stdout)).equals(data)).toBe(true);

    const dir = await mkdtemp(join(tmpdir(), 'pgz-'));
    try {
      await mkdir(join(dir, 'in'));
      await writeFile(join(dir, 'in', 'a'), data);
      await writeFile(join(dir, 'in', 'b'), randomBytes(700_000));
      const tar = spawn('tar', ['-c', '-f', '-', '-C', join(dir, 'in'), 'a', 'b'], { stdio: ['ignore', 'pipe', 'inherit'] });
      await pipeline(tar.stdout, new ParallelGzip({ pieceSize: 100_000 }), createWriteStream(join(dir, 'x.tar.gz')));
      await mkdir(join(dir, 'out'));
      const x = spawn('tar', ['-xz', '-f', join(dir, 'x.tar.gz'), '-C', join(dir, 'out')], { stdio: 'inherit' });
      expect(await new Promise((r) => x.once('exit', r))).toBe(0);
      expect((await readFile(join(dir, 'out', 'a'))).equals(data)).toBe(true);
      expect((await readFile(join(dir, 'out', 'b'))).equals(await readFile(join(dir, 'in', 'b')))).toBe(true);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('honours the level and compresses like createGzip', async () => {
    const data = compressible(2 * 1024 * 1024);
    const l1 = await compress(data, new ParallelGzip({ level: 1, pieceSize: 1024 * 1024 }));
    const l9 = await compress(data, new ParallelGzip({ level: 9, pieceSize: 1024 * 1024 }));
    const l0 = await compress(data, new ParallelGzip({ level: 0, pieceSize: 1024 * 1024 }));
    expect(l9.length).toBeLessThan(l1.length);
    expect(l0.length).toBeGreaterThan(data.length);
    for (const gz of [l0, l1, l9]) expect(gunzipSync(gz).equals(data)).toBe(true);
    expect(() => new ParallelGzip({ level: 10 })).toThrow(/invalid gzip level/);
  });

  it('gives a valid gzip file for empty input', async () => {
    const gz = await compress(Buffer.alloc(0), new ParallelGzip());
    expect(gz.length).toBeGreaterThan(0);
    expect((await gunzipStream(gz)).length).toBe(0);
  });

  it('propagates errors from upstream and downstream', async () => {
    let reads = 0;
    const failing = new Readable({
      read() {
        this.push(randomBytes(100_000));
        if (++reads === 5) this.destroy(new Error('source broke'));
      },
    });
    await expect(pipeline(failing, new ParallelGzip({ pieceSize: 50_000 }), new Writable({ write: (_c, _e, cb) => cb() }))).rejects.toThrow('source broke');

    const gz = new ParallelGzip({ pieceSize: 50_000 });
    const sink = new Writable({ write: (_c, _e, cb) => cb(new Error('sink broke')) });
    await expect(pipeline(source(randomBytes(1_000_000)), gz, sink)).rejects.toThrow('sink broke');
    expect(gz.destroyed).toBe(true);
  });

  it('fails the stream when a piece fails to compress', async () => {
    const gz = new ParallelGzip({ pieceSize: 10 });
    // Options zlib rejects make every piece fail.
    (gz as unknown as { zopts: object }).zopts = { level: 1, chunkSize: 1 };
    await expect(pipeline(Readable.from([Buffer.alloc(100, 1)]), gz, new Writable({ write: (_c, _e, cb) => cb() }))).rejects.toThrow(/chunkSize/);
  });

  it('stops on abort and bounds the pieces in flight', async () => {
    const ac = new AbortController();
    let read = 0;
    const endless = new Readable({
      read() {
        read += 64 * 1024;
        this.push(randomBytes(64 * 1024));
      },
    });
    const gz = new ParallelGzip({ pieceSize: 256 * 1024, concurrency: 2 });
    // A consumer that never reads: input must stop after a few pieces.
    const stuck = new Writable({ highWaterMark: 1, write: () => undefined });
    const p = pipeline(endless, gz, stuck, { signal: ac.signal });
    await sleep(300);
    expect(read).toBeLessThan(8 * 256 * 1024);
    ac.abort();
    await expect(p).rejects.toThrow(/abort/i);
    expect(gz.destroyed).toBe(true);
  });
});
