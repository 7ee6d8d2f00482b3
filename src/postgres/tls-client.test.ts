// The TLS of pgpilot's own PostgreSQL connections, from the pod's environment.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { pgSsl, tlsFromEnv } from './tls-client.js';

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
