// The TLS of pgpilot's own PostgreSQL connections, from the pod's environment.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { libpqTlsFromEnv, libpqTlsParams, pgSsl, tlsFromEnv } from './tls-client.js';

describe('tlsFromEnv', () => {
  let dir: string;
  beforeEach(async () => (dir = await mkdtemp(join(tmpdir(), 'pgpilot-tls-'))));
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('is unset without the variables (a pod made before TLS) or the file, and reads the CA at each call', async () => {
    const ca = join(dir, 'ca.crt');
    const env = { PGPILOT_TLS_CA_FILE: ca, PGPILOT_TLS_SERVER_NAME: 'db-rw.prod.svc' };
    expect(await tlsFromEnv({})).toBeUndefined();
    expect(await tlsFromEnv({ PGPILOT_TLS_CA_FILE: ca })).toBeUndefined();
    expect(await tlsFromEnv(env)).toBeUndefined();
    await writeFile(ca, 'CA 1');
    expect(await tlsFromEnv(env)).toEqual({ ca: 'CA 1', serverName: 'db-rw.prod.svc' });
    await writeFile(ca, 'CA 2');
    expect((await tlsFromEnv(env))!.ca).toBe('CA 2');
  });

  it('gives node-postgres TLS 1.3, the CA and the name to verify', () => {
    expect(pgSsl({ ca: 'X', serverName: 'db-rw.prod.svc' })).toEqual({ ca: 'X', servername: 'db-rw.prod.svc', minVersion: 'TLSv1.3' });
  });
});

describe('libpqTlsFromEnv', () => {
  it('gives file paths, with the client certificate only when its directory holds one', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pgpilot-libpq-'));
    try {
      const env = { PGPILOT_TLS_CA_FILE: join(dir, 'ca.crt'), PGPILOT_TLS_SERVER_NAME: 'db-rw.prod.svc', PGPILOT_TLS_CLIENT_DIR: join(dir, 'client') };
      expect(libpqTlsFromEnv(env)).toBeUndefined();
      await writeFile(join(dir, 'ca.crt'), 'CA');
      expect(libpqTlsFromEnv(env)).toEqual({ caFile: join(dir, 'ca.crt'), serverName: 'db-rw.prod.svc' });
      await mkdir(join(dir, 'client'));
      await writeFile(join(dir, 'client', 'tls.crt'), 'C');
      const t = libpqTlsFromEnv(env)!;
      expect(t.client).toEqual({ certFile: join(dir, 'client', 'tls.crt'), keyFile: join(dir, 'client', 'tls.key') });
      expect(libpqTlsParams(t, '10.0.0.9')).toEqual({
        host: 'db-rw.prod.svc', hostaddr: '10.0.0.9', sslmode: 'verify-full', sslrootcert: join(dir, 'ca.crt'), sslcert: join(dir, 'client', 'tls.crt'), sslkey: join(dir, 'client', 'tls.key'),
      });
      expect(libpqTlsParams(t, 'db-1-0.db-headless.prod.svc')).toMatchObject({ host: 'db-1-0.db-headless.prod.svc', sslmode: 'verify-full' });
      expect(libpqTlsParams(t, 'db-1-0.db-headless.prod.svc').hostaddr).toBeUndefined();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
