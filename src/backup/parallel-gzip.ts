// gzip on several cores: the input is cut into pieces (4 MiB by default), each piece is compressed
// on libuv's thread pool (zlib.gzip) as its own gzip member, and the members are written out in
// input order. Concatenated gzip members are one valid gzip file (RFC 1952 §2.2): Node's
// createGunzip, gunzip and `tar -xz` read them all.
//
// Memory is bounded: at most `concurrency` pieces are being compressed; while that many are in
// flight no more input is taken (the writable side's callback waits), and the readable side's
// backpressure holds the input back as any Transform does. An error of one piece fails the stream;
// destroying the stream (abort) discards the pieces still in flight.
import { availableParallelism } from 'node:os';
import { Transform, type TransformCallback } from 'node:stream';
import { gzip, type ZlibOptions } from 'node:zlib';

export interface ParallelGzipOptions {
  /** gzip level 0-9 (1 by default). */
  level?: number;
  /** Bytes of input per gzip member: 4 MiB by default. */
  pieceSize?: number;
  /** Pieces compressed at the same time: the number of CPUs (at least 2, at most 4) by default. */
  concurrency?: number;
}

interface Piece {
  done: Promise<void>;
  settled: boolean;
  output?: Buffer;
  error?: Error;
}

export class ParallelGzip extends Transform {
  private readonly zopts: ZlibOptions;
  private readonly pieceSize: number;
  private readonly concurrency: number;
  private parts: Buffer[] = [];
  private partBytes = 0;
  private inputBytes = 0;
  private readonly inFlight: Piece[] = [];

  constructor(o: ParallelGzipOptions = {}) {
    super();
    const level = o.level ?? 1;
    if (!Number.isInteger(level) || level < 0 || level > 9) throw new Error(`invalid gzip level ${level}: 0-9`);
    this.pieceSize = o.pieceSize ?? 4 * 1024 * 1024;
    this.concurrency = o.concurrency ?? Math.min(4, Math.max(2, availableParallelism()));
    if (!(this.pieceSize > 0) || !Number.isInteger(this.concurrency) || this.concurrency < 1) throw new Error('invalid pieceSize or concurrency');
    // Larger output chunks than the default 16 KiB: fewer trips between the pool and the loop.
    this.zopts = { level, chunkSize: 256 * 1024 };
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.parts.push(chunk);
    this.partBytes += chunk.length;
    this.inputBytes += chunk.length;
    if (this.partBytes < this.pieceSize) {
      this.drain(this.concurrency).then(() => cb(), cb); // pushes what has finished, waits for nothing
      return;
    }
    // A full piece waits for a free slot; more input is taken only once it is on its way.
    this.drain(this.concurrency - 1).then(() => {
      if (!this.destroyed) this.dispatch();
      cb();
    }, cb);
  }

  override _flush(cb: TransformCallback): void {
    // An empty input still gives a (one-member) gzip file, as createGzip does.
    if (this.partBytes > 0 || this.inputBytes === 0) this.dispatch();
    this.drain(0).then(() => cb(), cb);
  }

  override _destroy(err: Error | null, cb: (error?: Error | null) => void): void {
    // zlib.gzip cannot be cancelled: the pieces in flight finish on the pool and are dropped.
    this.inFlight.length = 0;
    this.parts = [];
    cb(err);
  }

  private dispatch(): void {
    const input = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, this.partBytes);
    this.parts = [];
    this.partBytes = 0;
    const piece: Piece = { settled: false, done: Promise.resolve() };
    piece.done = new Promise<void>((resolve) => {
      const settle = (error: Error | null, output?: Buffer) => {
        piece.settled = true;
        if (error) piece.error = error;
        else piece.output = output;
        resolve();
      };
      try {
        gzip(input, this.zopts, settle);
      } catch (err) {
        settle(err as Error); // invalid options throw at once
      }
    });
    this.inFlight.push(piece);
  }

  /** Pushes finished pieces in order; waits until at most `keep` pieces are left in flight. */
  private async drain(keep: number): Promise<void> {
    while (this.inFlight.length > 0 && (this.inFlight.length > keep || this.inFlight[0]!.settled)) {
      const head = this.inFlight[0]!;
      await head.done;
      if (this.destroyed) return;
      if (head.error) throw head.error;
      this.inFlight.shift();
      this.push(head.output);
    }
  }
}
