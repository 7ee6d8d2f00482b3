// The location JSON pods get names where the S3 credentials are; the S3 store reads credential
// files again at each use, so a Secret the kubelet rewrote is picked up by a running client.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseLocation } from './open-store.js';
import { S3Store } from './s3-store.js';
import type { S3StoreConfig } from './store-config.js';

const base = { kind: 's3', bucket: 'pg-backups', region: 'us-east-1', forcePathStyle: true, checksums: 'WHEN_REQUIRED' };
const parse = (store: Record<string, unknown>) => parseLocation(JSON.stringify({ store: { ...base, ...store }, path: 'pgpilot/ns/db' }), 'test');

describe('parseLocation: S3 credentials', () => {
  it('takes files (absolute paths) or variables', () => {
    expect(parse({ accessKeyIdFile: '/creds/AK', secretAccessKeyFile: '/creds/SK' }).store).toMatchObject({ accessKeyIdFile: '/creds/AK', secretAccessKeyFile: '/creds/SK' });
    expect(parse({ accessKeyIdEnv: 'AK', secretAccessKeyEnv: 'SK' }).store).toMatchObject({ accessKeyIdEnv: 'AK', secretAccessKeyEnv: 'SK' });
  });

  it('refuses both, half a pair, none, or a relative file, naming the field', () => {
    expect(() => parse({ accessKeyIdFile: '/a', secretAccessKeyFile: '/b', accessKeyIdEnv: 'AK', secretAccessKeyEnv: 'SK' })).toThrow(/store\.accessKeyIdFile and store\.accessKeyIdEnv both name credentials/);
    expect(() => parse({ accessKeyIdFile: '/a' })).toThrow(/field store\.secretAccessKeyFile is missing/);
    expect(() => parse({})).toThrow(/field store\.accessKeyIdEnv is missing/);
    expect(() => parse({ accessKeyIdFile: 'creds/AK', secretAccessKeyFile: '/b' })).toThrow(/field store\.accessKeyIdFile must be an absolute path/);
  });
});

describe('S3Store credentials from files', () => {
  const dir = mkdtempSync(join(tmpdir(), 's3-creds-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const cfg: S3StoreConfig = { ...(base as Omit<S3StoreConfig, 'accessKeyIdFile' | 'secretAccessKeyFile'>), kind: 's3', accessKeyIdFile: join(dir, 'AK'), secretAccessKeyFile: join(dir, 'SK') };

  it('reads them at each use: a rewritten file (a rotated Secret) reaches the same client', async () => {
    writeFileSync(join(dir, 'AK'), 'first-id\n');
    writeFileSync(join(dir, 'SK'), 'first-secret');
    const store = new S3Store(cfg, {});
    const identity = () => store.client.config.credentials();
    expect(await identity()).toMatchObject({ accessKeyId: 'first-id', secretAccessKey: 'first-secret' });
    writeFileSync(join(dir, 'AK'), 'second-id');
    writeFileSync(join(dir, 'SK'), 'second-secret');
    expect(await identity()).toMatchObject({ accessKeyId: 'second-id', secretAccessKey: 'second-secret' });
  });

  it('a missing or empty file is an error naming the file and the bucket', async () => {
    const store = new S3Store({ ...cfg, accessKeyIdFile: join(dir, 'missing') }, {});
    await expect(store.client.config.credentials()).rejects.toThrow(new RegExp(`access key id cannot be read from ${join(dir, 'missing')} \\(bucket pg-backups\\): ENOENT`));
    writeFileSync(join(dir, 'empty'), '');
    await expect(new S3Store({ ...cfg, secretAccessKeyFile: join(dir, 'empty') }, {}).client.config.credentials()).rejects.toThrow(/secret access key in .*empty is empty/);
  });
});
