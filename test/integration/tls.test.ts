// PostgreSQL with the operator's TLS settings and pg_hba.conf on a real server (PostgreSQL 15):
// certificates from the operator's own PKI code (runtime/x509.ts), the TLS settings of
// postgres-config.ts, pg_hba.conf as renderPgHba writes it with TLS required. Plain TCP is
// refused, verify-full with the CA and a Service name succeeds over TLS 1.3 only, a key file
// root-owned and group-readable (as the kubelet mounts the Secret with mode 0640 and fsGroup) is
// accepted, replication logs in with a client certificate only (pg_basebackup as the agent runs
// it), and a renewed certificate is served after pg_reload_conf without a restart.
import { chmod, chown, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { postgresParameters, renderPgHba, REPLICATION_USER } from '../../src/builders/postgres-config.js';
import { basebackupArgs } from '../../src/instance/bootstrap.js';
import { serverDnsNames } from '../../src/reconcilers/certificates-plan.js';
import { withClient, type ConnectOptions } from '../../src/postgres/sql.js';
import { certificateInfo, createCa, issueCertificate, type CertKeyPem } from '../../src/runtime/x509.js';
import { TestPostgres } from './pg-fixture.js';
import { normSerial } from '../support/served-certificate.js';
import { servedCertificate, UnverifiedServer } from '../../src/postgres/wire-probe.js';
import { giveToPostgres, pgOwner, pgTempDir, removeDir, runPgTool } from './wal-postgres.js';
import type { ClusterSpec } from '../../src/api/cluster.js';

const SERVER_NAME = 'db-rw.prod.svc';
const spec: ClusterSpec = { version: '15', storage: { size: '1Gi' } } as ClusterSpec;

/** The serial of the certificate the server presents. */
const servedSerial = async (port: number, ca: string) => normSerial((await servedCertificate('127.0.0.1', port, { ca, serverName: SERVER_NAME }, 5000)).serialNumber);

describe('PostgreSQL with the operator\'s TLS settings', () => {
  let dir: string;
  let tlsDir: string;
  let server: TestPostgres;
  let ca: CertKeyPem;

  const writeLeaf = async (leaf: CertKeyPem) => {
    await writeFile(path.join(tlsDir, 'tls.crt'), leaf.cert);
    await writeFile(path.join(tlsDir, 'tls.key'), leaf.key);
    await writeFile(path.join(tlsDir, 'ca.crt'), ca.cert);
    await giveToPostgres(tlsDir);
    const key = path.join(tlsDir, 'tls.key');
    // As the kubelet mounts a Secret with defaultMode 0640 and the pod's fsGroup: root:postgres 0640.
    if (pgOwner) await chown(key, 0, pgOwner.gid);
    await chmod(key, pgOwner ? 0o640 : 0o600);
  };
  const issue = () => issueCertificate(ca, { commonName: SERVER_NAME, dnsNames: serverDnsNames('db', 'prod', ['db-1', 'db-2']), usage: 'server', validitySeconds: 3600 });
  const tls = (): ConnectOptions => ({ ...server.connectOptions(), tls: { ca: ca.cert, serverName: SERVER_NAME } });

  beforeAll(async () => {
    dir = await pgTempDir('pgpilot-tls-');
    tlsDir = path.join(dir, 'tls');
    await mkdir(tlsDir);
    ca = await createCa('db.prod pgpilot CA', 86400);
    await writeLeaf(await issue());
    // The operator's TLS parameters, with this test's file paths.
    const p = postgresParameters(spec);
    server = await TestPostgres.create(path.join(dir, 'db'), {
      ssl: p.ssl!,
      ssl_min_protocol_version: p.ssl_min_protocol_version!,
      ssl_cert_file: path.join(tlsDir, 'tls.crt'),
      ssl_key_file: path.join(tlsDir, 'tls.key'),
      ssl_ca_file: path.join(tlsDir, 'ca.crt'),
    });
    // pg_hba.conf with TLS required; the fixture's socket login (trust) stays first for the test's own setup.
    await writeFile(path.join(server.pgdata, 'pg_hba.conf'), `local all all trust\n${renderPgHba(spec, true)}`);
    await server.query('SELECT pg_reload_conf()');
  }, 120_000);

  afterAll(async () => {
    await server?.stop();
    await removeDir(dir);
  });

  it('refuses a plain TCP client (hostssl only)', async () => {
    await expect(withClient(server.connectOptions(), (c) => c.query('SELECT 1'))).rejects.toThrow(/pg_hba\.conf.*(no encryption|SSL off)/);
  });

  it('accepts verify-full with the CA and a Service name, over TLS 1.3', async () => {
    const rows = await withClient(tls(), async (c) => (await c.query('SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()')).rows);
    expect(rows).toEqual([{ ssl: true, version: 'TLSv1.3' }]);
  });

  it('takes a libpq URI with the Service name as host and the address as hostaddr (the form the sandbox prints)', async () => {
    const uri = `postgresql://postgres:${encodeURIComponent(server.superuser.password)}@${SERVER_NAME}:${server.port}/postgres?hostaddr=127.0.0.1&sslmode=verify-full&sslrootcert=${encodeURIComponent(path.join(tlsDir, 'ca.crt'))}`;
    // sslcert: psql runs as postgres with root's HOME here, whose ~/.postgresql it may not read.
    expect((await runPgTool('psql', [`${uri}&sslcert=${encodeURIComponent(path.join(dir, 'none.crt'))}`, '-XAtc', 'SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()'])).trim()).toBe('t');
  });

  it('refuses TLS 1.2, and a client fails verification against another CA or name', async () => {
    const pg = (await import('pg')).default;
    const attempt = async (ssl: object) => {
      const c = new pg.Client({ host: '127.0.0.1', port: server.port, user: 'postgres', password: server.superuser.password, database: 'postgres', ssl, connectionTimeoutMillis: 3000 });
      c.on('error', () => {});
      try {
        await c.connect();
      } finally {
        await c.end().catch(() => {});
      }
    };
    await expect(attempt({ ca: ca.cert, servername: SERVER_NAME, maxVersion: 'TLSv1.2' })).rejects.toThrow(/protocol|version/i);
    const other = await createCa('other CA', 3600);
    await expect(attempt({ ca: other.cert, servername: SERVER_NAME })).rejects.toThrow(/certificate/i);
    await expect(attempt({ ca: ca.cert, servername: 'db-rw.elsewhere.svc' })).rejects.toThrow(/altnames|Hostname/i);
  });

  it('admits replication with the replication user\'s client certificate (pg_basebackup, verify-full, a root-owned 0640 key), and no password', async () => {
    await withClient(tls(), (c) => c.query(`CREATE ROLE ${REPLICATION_USER} WITH REPLICATION LOGIN PASSWORD 'secret-password'`));
    const clientDir = path.join(dir, 'client');
    await mkdir(clientDir);
    const leaf = await issueCertificate(ca, { commonName: REPLICATION_USER, usage: 'client', validitySeconds: 3600 });
    await writeFile(path.join(clientDir, 'tls.crt'), leaf.cert);
    await writeFile(path.join(clientDir, 'tls.key'), leaf.key);
    await giveToPostgres(clientDir);
    if (pgOwner) await chown(path.join(clientDir, 'tls.key'), 0, pgOwner.gid);
    await chmod(path.join(clientDir, 'tls.key'), pgOwner ? 0o640 : 0o600);
    const libpq = { caFile: path.join(tlsDir, 'ca.crt'), serverName: SERVER_NAME, client: { certFile: path.join(clientDir, 'tls.crt'), keyFile: path.join(clientDir, 'tls.key') } };
    const target = path.join(dir, 'clone');
    const args = basebackupArgs({ pgdata: target, walDir: undefined }, { host: '127.0.0.1', port: server.port }, REPLICATION_USER, libpq);
    await runPgTool('pg_basebackup', args);
    expect(existsSync(path.join(target, 'PG_VERSION'))).toBe(true);
    // Without the certificate, the password is not accepted for replication.
    const withoutCert = basebackupArgs({ pgdata: path.join(dir, 'clone-2'), walDir: undefined }, { host: '127.0.0.1', port: server.port }, REPLICATION_USER, { caFile: libpq.caFile, serverName: SERVER_NAME });
    await expect(runPgTool('pg_basebackup', withoutCert)).rejects.toThrow(/certificate|password/i);
  });

  it("proves an instance's identity before follow uses a credential: the cluster CA's certificate for the cluster's name, or UnverifiedServer", async () => {
    const at = (t: { ca: string; serverName: string }) => servedCertificate('127.0.0.1', server.port, t, 5000);
    expect((await at({ ca: ca.cert, serverName: SERVER_NAME })).subject).toBeDefined();
    const other = await createCa('another cluster', 3600);
    await expect(at({ ca: other.cert, serverName: SERVER_NAME })).rejects.toBeInstanceOf(UnverifiedServer);
    await expect(at({ ca: ca.cert, serverName: 'db-rw.elsewhere.svc' })).rejects.toBeInstanceOf(UnverifiedServer);
    // Nobody listening is not a verdict on identity.
    const closed = await servedCertificate('127.0.0.1', 1, { ca: ca.cert, serverName: SERVER_NAME }, 2000).catch((e: unknown) => e);
    expect(closed).toBeInstanceOf(Error);
    expect(closed).not.toBeInstanceOf(UnverifiedServer);
  });

  it('serves a renewed certificate after pg_reload_conf, without a restart', async () => {
    const started = await withClient(tls(), async (c) => (await c.query<{ t: string }>('SELECT pg_postmaster_start_time()::text AS t')).rows[0]!.t);
    const renewed = await issue();
    const serial = certificateInfo(renewed.cert).serialNumber.toLowerCase().replace(/^0+/, '');
    expect(await servedSerial(server.port, ca.cert)).not.toBe(serial);
    await writeLeaf(renewed);
    await withClient(tls(), (c) => c.query('SELECT pg_reload_conf()'));
    expect(await servedSerial(server.port, ca.cert)).toBe(serial);
    expect(await withClient(tls(), async (c) => (await c.query<{ t: string }>('SELECT pg_postmaster_start_time()::text AS t')).rows[0]!.t)).toBe(started);
  });
});
