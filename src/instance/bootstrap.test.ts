// The command lines of a new data directory (bootstrap.ts): initdb and pg_basebackup.
import { describe, expect, it } from 'vitest';
import { basebackupArgs, initdbArgs } from './bootstrap.js';
import type { InitdbSettings } from './env.js';

/** loadSettings' defaults (env.test.ts). */
const initdb: InitdbSettings = { database: 'app', owner: 'app', encoding: 'UTF8', locale: 'C.UTF-8', dataChecksums: true };

describe('command lines', () => {
  it('runs initdb with a password file, peer/scram auth and checksums', () => {
    const a = initdbArgs({ pgdata: '/d', walDir: '/w' }, initdb, 'postgres', '/tmp/x/pwfile');
    expect(a).toEqual(['-D', '/d', '-U', 'postgres', '--pwfile=/tmp/x/pwfile', '--auth-local=peer', '--auth-host=scram-sha-256', '--encoding=UTF8', '--locale=C.UTF-8', '--data-checksums', '--waldir=/w']);
    expect(initdbArgs({ pgdata: '/d', walDir: undefined }, { ...initdb, dataChecksums: false }, 'postgres', '/p')).not.toContain('--data-checksums');
  });

  it('clones with streamed WAL and a fast checkpoint, the password only in PGPASSFILE', () => {
    const a = basebackupArgs({ pgdata: '/d', walDir: undefined }, { host: '10.0.0.1', port: 5432 }, 'streaming_replica');
    expect(a).toEqual(['-D', '/d', '-h', '10.0.0.1', '-p', '5432', '-U', 'streaming_replica', '-w', '-X', 'stream', '-c', 'fast', '-P']);
  });
});

describe('pg_basebackup over TLS', () => {
  it('connects by a conninfo: verify-full against the certificate\'s name, the primary\'s address as hostaddr, the client certificate', () => {
    const tls = { caFile: '/tls/server/ca.crt', serverName: 'db-rw.prod.svc', client: { certFile: '/tls/replication/tls.crt', keyFile: '/tls/replication/tls.key' } };
    const a = basebackupArgs({ pgdata: '/d', walDir: undefined }, { host: '10.0.0.1', port: 5432 }, 'streaming_replica', tls);
    expect(a).not.toContain('-h');
    expect(a[a.indexOf('-d') + 1]).toBe(
      'host=db-rw.prod.svc hostaddr=10.0.0.1 sslmode=verify-full sslrootcert=/tls/server/ca.crt sslcert=/tls/replication/tls.crt sslkey=/tls/replication/tls.key port=5432',
    );
    expect(a.slice(a.indexOf('-U'), a.indexOf('-U') + 3)).toEqual(['-U', 'streaming_replica', '-w']);
  });
});
