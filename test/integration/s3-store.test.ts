// S3Store against a real S3 server (s3rver) on loopback.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore, parseLocation, readLocationFromEnv } from '../../src/backup/open-store.js';
import { describeS3Error, S3Store } from '../../src/backup/s3-store.js';
import { freePort } from './wal-postgres.js';
import { startS3rver, type S3rver } from '../support/s3rver.js';
import { describeStoreContract } from './store-contract.js';

let s3: S3rver;
let tlsS3: S3rver;
beforeAll(async () => {
  [s3, tlsS3] = await Promise.all([startS3rver({ buckets: ['contract'] }), startS3rver({ buckets: ['contract-tls'], tls: true })]);
});
afterAll(async () => {
  await Promise.all([s3?.stop(), tlsS3?.stop()]);
});

describeStoreContract('S3Store', () => openStore(s3.storeConfig('contract'), s3.env));

describe('S3Store', () => {
  it('talks TLS to a self-signed server when verification is off', async () => {
    const store = openStore(tlsS3.storeConfig('contract-tls'), tlsS3.env);
    await store.put('tls/x', Buffer.from('over tls'));
    expect((await store.getBuffer('tls/x')).toString()).toBe('over tls');
    const strict = openStore({ ...tlsS3.storeConfig('contract-tls'), insecureSkipTlsVerify: false }, tlsS3.env);
    await expect(strict.check()).rejects.toThrow(/certificate/);
  });

  it('check() names the endpoint and what is wrong: unknown access key', async () => {
    const store = openStore(s3.storeConfig('contract'), { ...s3.env, S3RVER_ACCESS_KEY_ID: 'NOT-A-KEY' });
    await expect(store.check()).rejects.toThrow(`the access key id is not known to ${s3.endpoint} (InvalidAccessKeyId)`);
  });

  it('check() names the bucket when it does not exist', async () => {
    const store = openStore(s3.storeConfig('no-such-bucket'), s3.env);
    await expect(store.check()).rejects.toThrow(`bucket no-such-bucket does not exist at ${s3.endpoint}`);
  });

  it('check() says the endpoint is unreachable (connection refused) within seconds', async () => {
    const port = await freePort();
    const store = openStore({ ...s3.storeConfig('contract'), endpoint: `http://127.0.0.1:${port}` }, s3.env);
    await expect(store.check()).rejects.toThrow(`cannot reach the object store at http://127.0.0.1:${port} (ECONNREFUSED)`);
  });

  it('describes a refused secret key (s3rver does not verify SigV4 signatures, so from the error shape)', () => {
    const err = Object.assign(new Error('The request signature we calculated does not match'), { name: 'SignatureDoesNotMatch', $metadata: { httpStatusCode: 403 } });
    expect(describeS3Error(err, { endpoint: 'https://s3.example', bucket: 'b', region: 'r' })).toBe(
      'the secret access key was refused by https://s3.example (SignatureDoesNotMatch): check the credentials Secret',
    );
    const denied = Object.assign(new Error('Access Denied'), { name: 'AccessDenied', $metadata: { httpStatusCode: 403 } });
    expect(describeS3Error(denied, { bucket: 'b', region: 'eu-west-1' })).toMatch(/access to bucket b at AWS S3 \(eu-west-1\) was denied/);
  });

  it('names the missing credential variable', () => {
    expect(() => new S3Store(s3.storeConfig('contract'), {})).toThrow(/environment variable S3RVER_ACCESS_KEY_ID is not set/);
    expect(() => new S3Store(s3.storeConfig('contract'), { S3RVER_ACCESS_KEY_ID: 'S3RVER' })).toThrow(/S3RVER_SECRET_ACCESS_KEY/);
  });
});

describe('readLocationFromEnv', () => {
  it('parses a location handed to a pod', () => {
    const loc = { store: s3.storeConfig('contract'), path: 'pgpilot/production/prod-db' };
    expect(readLocationFromEnv('LOC', { LOC: JSON.stringify(loc) })).toEqual(loc);
    const vol = { store: { kind: 'volume', path: '/backup' }, path: 'pgpilot/ns/db' };
    expect(readLocationFromEnv('LOC', { LOC: JSON.stringify(vol) })).toEqual(vol);
  });

  it('names the variable and the field that is wrong', () => {
    expect(() => readLocationFromEnv('LOC', {})).toThrow(/environment variable LOC is not set/);
    expect(() => readLocationFromEnv('LOC', { LOC: '{' })).toThrow(/environment variable LOC: not valid JSON/);
    const base = { store: s3.storeConfig('contract'), path: 'a/b' };
    const bad = (over: object, store: object = {}) => JSON.stringify({ ...base, ...over, store: { ...base.store, ...store } });
    expect(() => parseLocation(bad({}, { bucket: undefined }), 'LOC')).toThrow('LOC: field store.bucket is missing');
    expect(() => parseLocation(bad({}, { bucket: 'x' }), 'LOC')).toThrow(/field store.bucket is not a valid bucket name/);
    expect(() => parseLocation(bad({}, { checksums: 'ALWAYS' }), 'LOC')).toThrow(/field store.checksums must be one of WHEN_SUPPORTED, WHEN_REQUIRED/);
    expect(() => parseLocation(bad({}, { kind: 'gcs' }), 'LOC')).toThrow(/field store.kind must be one of s3, volume/);
    expect(() => parseLocation(bad({}, { forcePathStyle: 'yes' }), 'LOC')).toThrow(/field store.forcePathStyle must be true or false/);
    expect(() => parseLocation(bad({}, { endpoint: 'minio:9000' }), 'LOC')).toThrow(/field store.endpoint must be an http/);
    expect(() => parseLocation(bad({}, { serverSideEncryption: { algorithm: 'rot13' } }), 'LOC')).toThrow(/field store.serverSideEncryption.algorithm/);
    expect(() => parseLocation(bad({ path: '/abs/' }), 'LOC')).toThrow(/field path must be a relative key prefix/);
    expect(() => parseLocation(JSON.stringify({ store: { kind: 'volume', path: 'rel' }, path: 'a' }), 'LOC')).toThrow(/field store.path must be an absolute path/);
  });
});
