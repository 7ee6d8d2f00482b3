// From the JSON the operator hands to pods (store-config.ts) to a live ObjectStore.
import { FileStore } from './file-store.js';
import type { ObjectStore } from './object-store.js';
import { S3Store } from './s3-store.js';
import type { ArchiveLocation, S3CredentialEnv, S3CredentialFiles, S3StoreConfig, VolumeStoreConfig } from './store-config.js';
import { POD_ENV } from '../api/pod-env.js';
import { parseJson } from '../util/json.js';

/** An S3Store or FileStore; S3 credentials are read from the files (at each use) or variables the config names. */
export function openStore(cfg: S3StoreConfig | VolumeStoreConfig, env: NodeJS.ProcessEnv = process.env): ObjectStore {
  return cfg.kind === 's3' ? new S3Store(cfg, env) : new FileStore(cfg.path);
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Field checks that throw "<source>: field <path> ..." so a person knows what to fix. */
class Fields {
  constructor(private readonly source: string) {}

  fail(field: string, what: string): never {
    throw new Error(`${this.source}: field ${field} ${what}`);
  }

  obj(v: unknown, field: string): Json {
    if (!isObject(v)) this.fail(field, 'must be an object');
    return v;
  }

  str(o: Json, field: string, prefix: string, optional = false): string | undefined {
    const v = o[field];
    if (v === undefined && optional) return undefined;
    if (typeof v !== 'string' || v === '') this.fail(`${prefix}${field}`, v === undefined ? 'is missing' : 'must be a non-empty string');
    return v;
  }

  oneOf<T extends string>(o: Json, field: string, prefix: string, allowed: readonly T[]): T {
    const v = o[field];
    if (typeof v !== 'string' || !allowed.includes(v as T)) this.fail(`${prefix}${field}`, `must be one of ${allowed.join(', ')} (got ${JSON.stringify(v)})`);
    return v as T;
  }

  bool(o: Json, field: string, prefix: string, optional = false): boolean | undefined {
    const v = o[field];
    if (v === undefined && optional) return undefined;
    if (typeof v !== 'boolean') this.fail(`${prefix}${field}`, 'must be true or false');
    return v;
  }
}

/** Files (accessKeyIdFile + secretAccessKeyFile, absolute) or variables (accessKeyIdEnv + secretAccessKeyEnv), not both. */
function credentialSource(f: Fields, s: Json, p: string): S3CredentialFiles | S3CredentialEnv {
  const files = s.accessKeyIdFile !== undefined || s.secretAccessKeyFile !== undefined;
  const vars = s.accessKeyIdEnv !== undefined || s.secretAccessKeyEnv !== undefined;
  if (files && vars) f.fail(`${p}accessKeyIdFile`, 'and store.accessKeyIdEnv both name credentials: give files or environment variables, not both');
  if (!files) return { accessKeyIdEnv: f.str(s, 'accessKeyIdEnv', p)!, secretAccessKeyEnv: f.str(s, 'secretAccessKeyEnv', p)! };
  const file = (field: string) => {
    const v = f.str(s, field, p)!;
    if (!v.startsWith('/')) f.fail(`${p}${field}`, `must be an absolute path (got ${JSON.stringify(v)})`);
    return v;
  };
  return { accessKeyIdFile: file('accessKeyIdFile'), secretAccessKeyFile: file('secretAccessKeyFile') };
}

function parseS3(f: Fields, s: Json): S3StoreConfig {
  const p = 'store.';
  const endpoint = f.str(s, 'endpoint', p, true);
  if (endpoint !== undefined && !/^https?:\/\/[^/\s]+/.test(endpoint)) f.fail(`${p}endpoint`, `must be an http:// or https:// URL (got ${JSON.stringify(endpoint)})`);
  const bucket = f.str(s, 'bucket', p)!;
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) f.fail(`${p}bucket`, `is not a valid bucket name (${JSON.stringify(bucket)}): 3-63 lower-case letters, digits, '.' or '-'`);
  const cfg: S3StoreConfig = {
    kind: 's3',
    ...(endpoint ? { endpoint } : {}),
    bucket,
    region: f.str(s, 'region', p)!,
    forcePathStyle: f.bool(s, 'forcePathStyle', p)!,
    checksums: f.oneOf(s, 'checksums', p, ['WHEN_SUPPORTED', 'WHEN_REQUIRED'] as const),
    ...credentialSource(f, s, p),
  };
  if (s.serverSideEncryption !== undefined) {
    const sse = f.obj(s.serverSideEncryption, `${p}serverSideEncryption`);
    const algorithm = f.oneOf(sse, 'algorithm', `${p}serverSideEncryption.`, ['AES256', 'aws:kms'] as const);
    const kmsKeyId = f.str(sse, 'kmsKeyId', `${p}serverSideEncryption.`, true);
    cfg.serverSideEncryption = { algorithm, ...(kmsKeyId ? { kmsKeyId } : {}) };
  }
  const insecure = f.bool(s, 'insecureSkipTlsVerify', p, true);
  if (insecure !== undefined) cfg.insecureSkipTlsVerify = insecure;
  return cfg;
}

/** Parses and validates an ArchiveLocation; `source` names where the text came from. */
export function parseLocation(text: string, source: string): ArchiveLocation {
  const raw = parseJson(text, source);
  const f = new Fields(source);
  const o = f.obj(raw, '(root)');
  const s = f.obj(o.store, 'store');
  const kind = f.oneOf(s, 'kind', 'store.', ['s3', 'volume'] as const);
  const store: S3StoreConfig | VolumeStoreConfig =
    kind === 's3' ? parseS3(f, s) : { kind: 'volume', path: f.str(s, 'path', 'store.')! };
  if (store.kind === 'volume' && !store.path.startsWith('/')) f.fail('store.path', `must be an absolute path (got ${JSON.stringify(store.path)})`);
  const path = f.str(o, 'path', '')!;
  if (path.startsWith('/') || path.endsWith('/') || path.split('/').some((p) => p === '' || p === '.' || p === '..')) {
    f.fail('path', `must be a relative key prefix without leading or trailing "/" (got ${JSON.stringify(path)})`);
  }
  return { store, path };
}

/** The ArchiveLocation in environment variable `name` (PGPILOT_BACKUP_LOCATION by default). */
export function readLocationFromEnv(name: string = POD_ENV.backupLocation, env: NodeJS.ProcessEnv = process.env): ArchiveLocation {
  const text = env[name];
  if (text === undefined || text.trim() === '') throw new Error(`environment variable ${name} is not set: no backup location was given to this pod`);
  return parseLocation(text, `environment variable ${name}`);
}
