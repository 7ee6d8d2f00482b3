// Hashing while streaming: a base backup is hashed on its way to the store, before and after
// compression (base-backup.ts), and a restore checks those hashes the same way (restore.ts).
import { createHash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';

/**
 * A pass-through stream that hashes (sha256) and counts what goes through it; `beforeEnd` can
 * hold back the end of the stream (and fail it).
 */
export class HashTap extends Transform {
  readonly hash = createHash('sha256');
  bytes = 0;
  constructor(
    private readonly onChunk: (chunk: Buffer) => void = () => undefined,
    private readonly beforeEnd: () => Promise<void> = async () => undefined,
  ) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    this.onChunk(chunk);
    cb(null, chunk);
  }
  override _flush(cb: TransformCallback): void {
    this.beforeEnd().then(() => cb(), cb);
  }
}
