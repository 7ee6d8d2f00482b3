// Where backups and WAL live: an S3 bucket (s3-store.ts) or a directory on a mounted volume
// (file-store.ts). Keys are relative to the store's root (bucket + prefix, or the directory) and
// use "/" separators; a cluster's objects sit under its own path (archive-layout.ts).
import type { Readable } from 'node:stream';

export interface StoredObject {
  key: string;
  size: number;
  lastModified: Date;
}

export interface ObjectHead {
  size: number;
  lastModified: Date;
  /** User metadata (S3 x-amz-meta-*), keys lower-case. */
  metadata: Record<string, string>;
}

export interface PutOptions {
  /** Stored with the object; keys lower-case letters, digits and '-'. */
  metadata?: Record<string, string>;
  /** Called with the total bytes sent so far (multipart uploads report per part). */
  onProgress?: (bytes: number) => void;
  /** Aborts the upload; a partial object is never left visible. */
  signal?: AbortSignal;
}

export class ObjectNotFound extends Error {
  constructor(readonly key: string, where: string) {
    super(`${where}: object ${key} does not exist`);
    this.name = 'ObjectNotFound';
  }
}

export interface ObjectStore {
  /** For messages: "s3://bucket/prefix" or "file:///path". */
  readonly location: string;
  /** Writes an object; a reader sees either the old object or the whole new one. */
  put(key: string, body: Readable | Buffer, opts?: PutOptions): Promise<void>;
  /** Throws ObjectNotFound when absent. */
  get(key: string): Promise<Readable>;
  getBuffer(key: string): Promise<Buffer>;
  head(key: string): Promise<ObjectHead | null>;
  /** Every object whose key starts with prefix, all pages, in key order. */
  list(prefix: string): Promise<StoredObject[]>;
  /** Removes the objects; absent keys are not an error. */
  delete(keys: string[]): Promise<void>;
  /** Fails with a message a person can act on (wrong credentials, missing bucket, unreachable); looks only under `prefix` when given. */
  check(prefix?: string): Promise<void>;
}
