// TLS for PostgreSQL, run by the operator's own PKI (docs/tls.md), on a real control plane, the
// process kubelet and real PostgreSQL: a 2-instance cluster whose TLS is required (the default of
// a new cluster). A client without TLS is refused; verify-full through -rw with the published CA
// succeeds (TLS 1.3), a wrong name or TLS 1.2 does not; replication runs over TLS, the replica
// verifying the primary (verify-full) and logging in with its client certificate; with a short
// leaf lifetime (an operator setting) the server certificate is renewed: a new serial in the
// Secret and in what PostgreSQL serves, no pod restarted, postgres reloaded (not restarted), and
// new connections work. spec.tls.required: false then admits plain TCP as well. The agents' API
// serves HTTPS and answers the operator's client certificate alone.
import { CoreV1Api } from '@kubernetes/client-node';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { AGENT_PORT, LABELS } from '../src/api/constants.js';
import { names } from '../src/api/names.js';
import { AGENT_CLIENT_CN } from '../src/api/tls.js';
import { createCa, issueCertificate } from '../src/runtime/x509.js';
import { TLS_ANNOTATIONS } from '../src/reconcilers/certificates-plan.js';
import { startProcessKubelet, type ProcessKubelet } from './kubelet/index.js';
import { createTestNamespace, kubeConfig, kubeconfigPath, waitFor } from './harness/env.js';
import { HaCluster } from './harness/ha-cluster.js';
import { kubectlOk } from './harness/kubectl.js';
import { REPO_ROOT, ensureBuilt, startOperator, type RunningOperator } from './harness/operator.js';
import { instancePods, podChanges } from './harness/operator-release.js';
import { clusterTls, query, serviceClientConfig, superuserCredentials } from './harness/postgres.js';
import { tearDown } from './harness/teardown.js';
import { normSerial, servedCertificate } from '../test/support/served-certificate.js';

const NAME = 'tls-db';
/** Leaf lifetime: renewal at 2/3, every 60 s. */
const LEAF_SECONDS = 90;

const core = () => kubeConfig().makeApiClient(CoreV1Api);

describe('TLS with the operator\'s PKI', () => {
  let ns: string;
  let kubelet: ProcessKubelet;
  let operator: RunningOperator;
  let db: HaCluster;
  let ssl: { ca: string; servername: string };
  const rwPlain = (): pg.ClientConfig => {
    const { ssl: _tls, ...config } = db.rw();
    return { ...config, ssl: false };
  };

  beforeAll(async () => {
    ensureBuilt();
    ns = await createTestNamespace('tls');
    kubelet = await startProcessKubelet({ kubeconfigPath: kubeconfigPath(), repoRoot: REPO_ROOT, dataDir: process.env.PGPILOT_E2E_KUBELET_DIR });
    operator = await startOperator({ watchNamespaces: [ns], extraEnv: { PGPILOT_TLS_LEAF_LIFETIME_SECONDS: String(LEAF_SECONDS) } });
    console.log(`[tls] kubelet log ${kubelet.logPath}; operator log ${operator.logPath}`);
    db = new HaCluster(kubelet, ns, NAME);
    await db.create((c) => {
      c.spec.instances = 2;
      c.spec.highAvailability = { ...c.spec.highAvailability, synchronousReplicas: 1 };
      c.spec.backup = { enabled: false };
    });
    await db.healthy(2, 300_000);
    ssl = (await clusterTls(ns, NAME)) as { ca: string; servername: string };
  }, 600_000);

  afterAll(() => tearDown({ operator, kubelet, namespace: ns }));

  it('publishes the CA certificate for clients and shows expiry, not key material, in status', async () => {
    expect(ssl.ca).toContain('BEGIN CERTIFICATE');
    expect(ssl.servername).toBe(`${NAME}-rw.${ns}.svc`);
    const caCert = await core().readNamespacedSecret({ name: names.caCertSecret(NAME), namespace: ns });
    expect(Object.keys(caCert.data ?? {})).toEqual(['ca.crt']);
    const server = await core().readNamespacedSecret({ name: names.serverTlsSecret(NAME), namespace: ns });
    expect(Object.keys(server.data ?? {}).sort()).toEqual(['ca.crt', 'tls.crt', 'tls.key']);
    const replication = await core().readNamespacedSecret({ name: names.replicationTlsSecret(NAME), namespace: ns });
    expect(Object.keys(replication.data ?? {}).sort()).toEqual(['ca.crt', 'tls.crt', 'tls.key']);
    const tls = (await db.get()).status!.tls!;
    expect(tls.caSecret).toBe(names.caCertSecret(NAME));
    expect(Date.parse(tls.caNotAfter!) - Date.now()).toBeGreaterThan(5 * 365 * 86400_000);
    expect(Date.parse(tls.serverNotAfter!) - Date.now()).toBeLessThanOrEqual(LEAF_SECONDS * 1000);
    expect(Date.parse(tls.replicationNotAfter!) - Date.now()).toBeLessThanOrEqual(LEAF_SECONDS * 1000);
    expect(tls.requiredByDefault).toBe(true);
    expect(JSON.stringify(tls)).not.toContain('PRIVATE KEY');
    // The CA key is in no pod: the instance pods mount the server certificate Secret only.
    const pods = (await core().listNamespacedPod({ namespace: ns })).items;
    expect(pods.length).toBeGreaterThan(0);
    for (const p of pods) for (const v of p.spec?.volumes ?? []) expect(v.secret?.secretName).not.toBe(names.caSecret(NAME));
  });

  it('refuses a client without TLS while TLS is required', async () => {
    await expect(query(rwPlain(), 'SELECT 1')).rejects.toThrow(/pg_hba\.conf/);
  });

  it('accepts verify-full through -rw with the published CA, over TLS 1.3', async () => {
    const rows = await query<{ ssl: boolean; version: string }>(db.rw(), 'SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()');
    expect(rows).toEqual([{ ssl: true, version: 'TLSv1.3' }]);
    // The same through -ro (the one certificate carries every Service's name).
    expect((await query<{ ssl: boolean }>({ ...db.ro(), ssl: { ca: ssl.ca, servername: `${NAME}-ro.${ns}.svc.cluster.local` } }, 'SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()'))[0]!.ssl).toBe(true);
  });

  it('fails verification for a name the certificate does not carry, and refuses TLS 1.2', async () => {
    await expect(query({ ...db.rw(), ssl: { ca: ssl.ca, servername: 'other-db-rw.elsewhere.svc' } }, 'SELECT 1')).rejects.toThrow(/altnames|Hostname/i);
    await expect(query({ ...db.rw(), ssl: { ...ssl, maxVersion: 'TLSv1.2' } }, 'SELECT 1')).rejects.toThrow();
  });

  it('replicates over TLS: the walsender\'s connection shows ssl, and pg_hba has hostssl lines only', async () => {
    // pg_stat_replication's details and pg_hba_file_rules are the superuser's to read.
    const su = serviceClientConfig(kubelet, ns, `${NAME}-rw`, await superuserCredentials(ns, NAME));
    const replication = await waitFor('a streaming replica', async () => {
      const r = await query<{ ssl: boolean; version: string; state: string }>(
        su,
        'SELECT s.ssl, s.version, r.state FROM pg_stat_replication r JOIN pg_stat_ssl s USING (pid)',
      );
      return r.length === 1 && r[0]!.state === 'streaming' ? r : undefined;
    }, { timeoutMs: 60_000 });
    expect(replication).toEqual([{ ssl: true, version: 'TLSv1.3', state: 'streaming' }]);
    const rules = await query<{ type: string; database: string[]; user_name: string[]; auth_method: string }>(su, 'SELECT type, database, user_name, auth_method FROM pg_hba_file_rules WHERE type <> \'local\'');
    expect(rules.length).toBeGreaterThanOrEqual(2);
    expect(rules.every((r) => r.type === 'hostssl')).toBe(true);
    // Replication logs in with the client certificate (CN streaming_replica), no password.
    expect(rules.filter((r) => r.database.includes('replication'))).toEqual([{ type: 'hostssl', database: ['replication'], user_name: ['streaming_replica'], auth_method: 'cert' }]);
    // The replica verifies the primary (verify-full against the Service name) and presents its certificate.
    const { status } = await db.get();
    const replica = status!.instanceNames!.find((i) => i !== status!.currentPrimary);
    const conninfo = (await query<{ c: string }>(serviceClientConfig(kubelet, ns, `${NAME}-ro`, await superuserCredentials(ns, NAME)), 'SELECT conninfo AS c FROM pg_stat_wal_receiver'))[0]!.c;
    expect(replica).toBeDefined();
    expect(conninfo).toMatch(/sslmode=verify-full/);
    expect(conninfo).toContain(`host=${NAME}-rw.${ns}.svc`);
    expect(conninfo).toMatch(/sslcert=\S+tls\.crt/);
  });

  it("the agents' API answers the operator's client certificate only: none, another CA's or the replication user's is refused", async () => {
    const { status } = await db.get();
    const host = kubelet.podAddress(ns, db.podOf(status!.currentPrimary!))!;
    const secretData = async (name: string, key: string) => Buffer.from((await core().readNamespacedSecret({ name, namespace: ns })).data![key]!, 'base64').toString('utf8');
    const token = await secretData(names.agentSecret(NAME), 'token');
    // The agent's own certificate is the cluster's server certificate (verified here against the published CA).
    const call = (client: { cert?: string; key?: string } = {}) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        httpsRequest({ host, port: AGENT_PORT, path: '/v1/status', headers: { authorization: `Bearer ${token}` }, ca: ssl.ca, servername: ssl.servername, agent: false, ...client }, (res) => {
          let body = '';
          res.setEncoding('utf8').on('data', (c: string) => (body += c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        })
          .on('error', reject)
          .end();
      });
    expect(await call()).toMatchObject({ status: 403, body: expect.stringContaining(AGENT_CLIENT_CN) });
    const intruder = await issueCertificate(await createCa('intruder', 3600), { commonName: AGENT_CLIENT_CN, usage: 'client', validitySeconds: 3600 });
    expect((await call(intruder)).status).toBe(403);
    const replication = { cert: await secretData(names.replicationTlsSecret(NAME), 'tls.crt'), key: await secretData(names.replicationTlsSecret(NAME), 'tls.key') };
    expect(await call(replication)).toMatchObject({ status: 403, body: expect.stringContaining('streaming_replica') });
    // Plain HTTP is not served on the agent port at all.
    await expect(fetch(`http://${host}:${AGENT_PORT}/v1/status`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(5000) }).then((r) => r.status)).rejects.toThrow();
    // The kubelet probes it over HTTPS; the operator, with its own certificate, reads every agent (the cluster is healthy on their answers).
    for (const pod of (await core().listNamespacedPod({ namespace: ns, labelSelector: `${LABELS.cluster}=${NAME}` })).items) {
      expect(pod.spec!.containers[0]!.readinessProbe!.httpGet!.scheme).toBe('HTTPS');
    }
    await db.healthy(2);
    expect(readFileSync(operator.logPath, 'utf8')).not.toMatch(/HTTP 403/);
  });

  it('renews the server certificate before it expires: new serial served, no pod or postgres restarted, clients reconnect', async () => {
    const secret = async () => (await core().readNamespacedSecret({ name: names.serverTlsSecret(NAME), namespace: ns })).metadata!.annotations![TLS_ANNOTATIONS.serial]!;
    const pods = await instancePods(ns, NAME);
    const primaryIp = kubelet.podAddress(ns, db.podOf((await db.get()).status!.currentPrimary!))!;
    const served = async () => normSerial((await servedCertificate(primaryIp, 5432, ssl.ca, ssl.servername)).serialNumber);
    // PostgreSQL serves the certificate the Secret holds (an earlier renewal may be on its way).
    const before = await waitFor('PostgreSQL serving the Secret\'s certificate', async () => {
      const s = await secret();
      return (await served().catch(() => '')) === normSerial(s) ? s : undefined;
    }, { timeoutMs: 60_000, intervalMs: 500 });
    const started = (await query<{ t: string }>(db.rw(), 'SELECT pg_postmaster_start_time()::text AS t'))[0]!.t;
    // A connection open across the renewal keeps working.
    const held = new (await import('pg')).default.Client(db.rw());
    held.on('error', () => {});
    await held.connect();
    const after = await waitFor('a renewed server certificate in the Secret', async () => {
      const s = await secret();
      return s !== before ? s : undefined;
    }, { timeoutMs: (LEAF_SECONDS + 30) * 1000, intervalMs: 1000 });
    // The kubelet rewrites the mounted files, the agent notices and reloads postgres.
    await waitFor('the new certificate served by PostgreSQL', async () => (await served().catch(() => '')) === normSerial(after), { timeoutMs: 60_000, intervalMs: 500 });
    expect((await held.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    await held.end();
    expect((await query<{ t: string }>(db.rw(), 'SELECT pg_postmaster_start_time()::text AS t'))[0]!.t).toBe(started);
    expect(podChanges(pods, await instancePods(ns, NAME))).toEqual({ replaced: [], added: [], restarted: [], count: 0 });
    expect((await query<{ ssl: boolean }>(db.rw(), 'SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()'))[0]!.ssl).toBe(true);
    const events = await kubectlOk(['get', 'events', '-n', ns, '--field-selector', `involvedObject.name=${NAME},reason=ServerCertificateRenewed`, '-o', 'jsonpath={.items[*].message}']);
    expect(events).toContain('two thirds of its lifetime');
    expect((await db.get()).status!.tls!.serverSerial).toBeDefined();
  }, 300_000);

  it('with tls.required false, plain TCP and TLS are both accepted; back to true refuses plain TCP again', async () => {
    // The replica's walreceiver follows: by password while TLS is not required, by certificate when it is.
    const roSu = serviceClientConfig(kubelet, ns, `${NAME}-ro`, await superuserCredentials(ns, NAME));
    const receiver = (cert: boolean) =>
      waitFor(`the replica streaming ${cert ? 'with' : 'without'} its client certificate`, async () => {
        const r = await query<{ status: string; c: string }>(roSu, 'SELECT status, conninfo AS c FROM pg_stat_wal_receiver').catch(() => []);
        return r[0]?.status === 'streaming' && /sslcert=/.test(r[0].c) === cert ? r[0] : undefined;
      }, { timeoutMs: 60_000, intervalMs: 500 });
    await db.patchSpec({ tls: { required: false } });
    await waitFor('a plain TCP client admitted', () => query(rwPlain(), 'SELECT 1').then(() => true, () => false), { timeoutMs: 60_000, intervalMs: 500 });
    expect((await query<{ ssl: boolean }>(db.rw(), 'SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()'))[0]!.ssl).toBe(true);
    await receiver(false);
    await db.patchSpec({ tls: { required: true } });
    await waitFor('a plain TCP client refused again', () => query(rwPlain(), 'SELECT 1').then(() => false, () => true), { timeoutMs: 60_000, intervalMs: 500 });
    expect((await receiver(true)).c).toMatch(/sslmode=verify-full/);
    await db.healthy(2);
  }, 180_000);
});
