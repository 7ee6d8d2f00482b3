// ObjectStore on S3 or an S3-compatible server (MinIO, Ceph, s3rver). One warm client per store:
// WAL archiving sends many small requests, so connections are kept alive and reused.
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { readFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import {
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type PutObjectCommandInput,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { ObjectNotFound, type ObjectHead, type ObjectStore, type PutOptions, type StoredObject } from './object-store.js';
import type { S3CredentialEnv, S3CredentialFiles, S3StoreConfig } from './store-config.js';

/** Multipart part size: 16 MiB, one WAL segment; queue of 4 parts bounds memory at 64 MiB. */
export const PART_SIZE = 16 * 1024 * 1024;
export const PART_QUEUE = 4;
const DELETE_BATCH = 1000; // the DeleteObjects maximum

interface S3ErrorShape {
  name?: string;
  code?: string;
  Code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
  cause?: unknown;
}

function errorCode(err: unknown): string {
  const e = err as S3ErrorShape;
  return e?.Code ?? e?.code ?? e?.name ?? '';
}

function httpStatus(err: unknown): number | undefined {
  return (err as S3ErrorShape)?.$metadata?.httpStatusCode;
}

const NETWORK_CODES = ['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'TimeoutError', 'EPIPE'];

/** The network-level code of an error (own or of its cause chain), if any. */
function networkCode(err: unknown): string | undefined {
  for (let e: unknown = err, depth = 0; e && depth < 5; e = (e as S3ErrorShape).cause, depth++) {
    const c = (e as S3ErrorShape).code ?? (e as S3ErrorShape).name;
    if (c && NETWORK_CODES.includes(c)) return c;
    const m = /\b(ECONNREFUSED|ENOTFOUND|EAI_AGAIN|ECONNRESET|EHOSTUNREACH|ENETUNREACH|ETIMEDOUT)\b/.exec((e as S3ErrorShape).message ?? '');
    if (m) return m[1];
  }
  return undefined;
}

/**
 * A sentence a person can act on, naming the endpoint and bucket: wrong credentials, missing
 * bucket, unreachable endpoint; otherwise the server's code and message.
 */
export function describeS3Error(err: unknown, cfg: Pick<S3StoreConfig, 'endpoint' | 'bucket' | 'region'>): string {
  const endpoint = cfg.endpoint ?? `AWS S3 (${cfg.region})`;
  const code = errorCode(err);
  const status = httpStatus(err);
  const net = networkCode(err);
  if (net) return `cannot reach the object store at ${endpoint} (${net}): check the endpoint, port and network policy`;
  if (code === 'InvalidAccessKeyId') return `the access key id is not known to ${endpoint} (InvalidAccessKeyId): check the credentials Secret`;
  if (code === 'SignatureDoesNotMatch') return `the secret access key was refused by ${endpoint} (SignatureDoesNotMatch): check the credentials Secret`;
  if (code === 'NoSuchBucket' || (status === 404 && code === 'NotFound')) return `bucket ${cfg.bucket} does not exist at ${endpoint} (NoSuchBucket)`;
  if (code === 'AccessDenied' || status === 403) return `access to bucket ${cfg.bucket} at ${endpoint} was denied (${code || 'HTTP 403'}): check the credentials and the bucket policy`;
  const msg = (err as S3ErrorShape)?.message ?? String(err);
  return `object store ${endpoint}, bucket ${cfg.bucket}: ${code && !msg.includes(code) ? `${code}: ` : ''}${msg}`;
}

type Credentials = { accessKeyId: string; secretAccessKey: string };

/** Keys from environment variables, read once (tools and tests). */
function credentialsFromEnv(cfg: S3StoreConfig & S3CredentialEnv, env: NodeJS.ProcessEnv): Credentials {
  const read = (name: string, what: string) => {
    const v = env[name];
    if (!v) throw new Error(`the S3 ${what} is missing: environment variable ${name} is not set (bucket ${cfg.bucket})`);
    return v;
  };
  return { accessKeyId: read(cfg.accessKeyIdEnv, 'access key id'), secretAccessKey: read(cfg.secretAccessKeyEnv, 'secret access key') };
}

/**
 * Keys from files (a Secret volume), read again before every request: a rotated Secret reaches a
 * long-lived client (the agent's archiver) as soon as the kubelet rewrites the files. The SDK
 * treats an identity expiring within five minutes as expired, so a near expiration makes it ask
 * every time; two small reads are nothing beside a request.
 */
function credentialsFromFiles(cfg: S3StoreConfig & S3CredentialFiles): () => Promise<Credentials & { expiration: Date }> {
  const read = async (file: string, what: string) => {
    let v: string;
    try {
      v = (await readFile(file, 'utf8')).trim();
    } catch (err) {
      throw new Error(`the S3 ${what} cannot be read from ${file} (bucket ${cfg.bucket}): ${(err as NodeJS.ErrnoException).code ?? String(err)}: check the credentials Secret and its keys`, { cause: err });
    }
    if (!v) throw new Error(`the S3 ${what} in ${file} is empty (bucket ${cfg.bucket}): check the credentials Secret`);
    return v;
  };
  return async () => {
    const [accessKeyId, secretAccessKey] = await Promise.all([read(cfg.accessKeyIdFile, 'access key id'), read(cfg.secretAccessKeyFile, 'secret access key')]);
    return { accessKeyId, secretAccessKey, expiration: new Date(Date.now() + 1000) };
  };
}

export class S3Store implements ObjectStore {
  readonly location: string;
  readonly client: S3Client;

  constructor(readonly cfg: S3StoreConfig, env: NodeJS.ProcessEnv = process.env) {
    this.location = `s3://${cfg.bucket}`;
    const agentOpts = { keepAlive: true, maxSockets: 32 };
    this.client = new S3Client({
      region: cfg.region,
      ...(cfg.endpoint ? { endpoint: cfg.endpoint } : {}),
      forcePathStyle: cfg.forcePathStyle,
      credentials: 'accessKeyIdFile' in cfg ? credentialsFromFiles(cfg) : credentialsFromEnv(cfg, env),
      requestChecksumCalculation: cfg.checksums,
      responseChecksumValidation: cfg.checksums,
      maxAttempts: 3,
      requestHandler: {
        // Bounded: an unreachable endpoint fails in seconds, a stalled transfer within a minute.
        connectionTimeout: 5_000,
        socketTimeout: 60_000,
        httpAgent: new HttpAgent(agentOpts),
        httpsAgent: new HttpsAgent({ ...agentOpts, rejectUnauthorized: !cfg.insecureSkipTlsVerify }),
      },
    });
  }

  private fail(err: unknown, what: string, key?: string): Error {
    return new Error(`${this.location}: ${what}${key ? ` ${key}` : ''}: ${describeS3Error(err, this.cfg)}`, { cause: err });
  }

  private sse(): Pick<PutObjectCommandInput, 'ServerSideEncryption' | 'SSEKMSKeyId'> {
    const s = this.cfg.serverSideEncryption;
    if (!s) return {};
    return { ServerSideEncryption: s.algorithm, ...(s.kmsKeyId ? { SSEKMSKeyId: s.kmsKeyId } : {}) };
  }

  async put(key: string, body: Readable | Buffer, opts: PutOptions = {}): Promise<void> {
    const params: PutObjectCommandInput = { Bucket: this.cfg.bucket, Key: key, Body: body, Metadata: opts.metadata ?? {}, ...this.sse() };
    try {
      if (Buffer.isBuffer(body) && body.length <= PART_SIZE) {
        // One request; the SDK knows the length, so no chunked encoding is involved.
        await this.client.send(new PutObjectCommand(params), opts.signal ? { abortSignal: opts.signal } : {});
        opts.onProgress?.(body.length);
        return;
      }
      const abortController = new AbortController();
      const onAbort = () => abortController.abort();
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      try {
        const upload = new Upload({ client: this.client, params, partSize: PART_SIZE, queueSize: PART_QUEUE, leavePartsOnError: false, abortController });
        if (opts.onProgress) upload.on('httpUploadProgress', (p) => p.loaded !== undefined && opts.onProgress!(p.loaded));
        await upload.done();
      } finally {
        opts.signal?.removeEventListener('abort', onAbort);
      }
    } catch (err) {
      throw this.fail(err, 'put', key);
    }
  }

  async get(key: string): Promise<Readable> {
    try {
      const out = await this.client.send(new GetObjectCommand({ Bucket: this.cfg.bucket, Key: key }));
      if (!(out.Body instanceof Readable)) throw new Error('response body is not a stream');
      return out.Body;
    } catch (err) {
      if (errorCode(err) === 'NoSuchKey' || httpStatus(err) === 404) {
        if (errorCode(err) !== 'NoSuchBucket') throw new ObjectNotFound(key, this.location);
      }
      throw this.fail(err, 'get', key);
    }
  }

  async getBuffer(key: string): Promise<Buffer> {
    const body = await this.get(key);
    const chunks: Buffer[] = [];
    try {
      for await (const c of body) chunks.push(c as Buffer);
    } catch (err) {
      throw this.fail(err, 'get', key);
    }
    return Buffer.concat(chunks);
  }

  async head(key: string): Promise<ObjectHead | null> {
    try {
      const out = await this.client.send(new HeadObjectCommand({ Bucket: this.cfg.bucket, Key: key }));
      const metadata: Record<string, string> = {};
      for (const [k, v] of Object.entries(out.Metadata ?? {})) metadata[k.toLowerCase()] = v;
      return { size: out.ContentLength ?? 0, lastModified: out.LastModified ?? new Date(0), metadata };
    } catch (err) {
      // HEAD responses have no body: a missing object is a bare 404 ("NotFound").
      if (httpStatus(err) === 404 && errorCode(err) !== 'NoSuchBucket') return null;
      throw this.fail(err, 'head', key);
    }
  }

  async list(prefix: string): Promise<StoredObject[]> {
    const out: StoredObject[] = [];
    let token: string | undefined;
    try {
      // No Delimiter: every object below prefix, however deep (and s3rver mishandles delimiters).
      do {
        const page = await this.client.send(new ListObjectsV2Command({ Bucket: this.cfg.bucket, Prefix: prefix, ContinuationToken: token }));
        for (const o of page.Contents ?? []) {
          if (o.Key !== undefined) out.push({ key: o.Key, size: o.Size ?? 0, lastModified: o.LastModified ?? new Date(0) });
        }
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (token);
    } catch (err) {
      throw this.fail(err, 'list', prefix);
    }
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  async delete(keys: string[]): Promise<void> {
    for (let i = 0; i < keys.length; i += DELETE_BATCH) {
      const batch = keys.slice(i, i + DELETE_BATCH);
      let out;
      try {
        out = await this.client.send(
          new DeleteObjectsCommand({ Bucket: this.cfg.bucket, Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true } }),
        );
      } catch (err) {
        throw this.fail(err, 'delete', `${batch.length} objects from ${batch[0]}`);
      }
      const errors = (out.Errors ?? []).filter((e) => e.Code !== 'NoSuchKey');
      if (errors.length > 0) {
        const first = errors[0]!;
        throw new Error(`${this.location}: delete failed for ${errors.length} objects, first ${first.Key}: ${first.Code} ${first.Message ?? ''}`.trim());
      }
    }
  }

  async check(prefix?: string): Promise<void> {
    try {
      // A listing (not HeadBucket): its error body tells wrong credentials from a missing bucket.
      // Under `prefix` when given: keys scoped to a prefix may not list the bucket's root.
      await this.client.send(new ListObjectsV2Command({ Bucket: this.cfg.bucket, MaxKeys: 1, ...(prefix ? { Prefix: `${prefix}/` } : {}) }));
    } catch (err) {
      throw new Error(describeS3Error(err, this.cfg), { cause: err });
    }
  }

  /** Closes the kept-alive connections. */
  destroy(): void {
    this.client.destroy();
  }
}
