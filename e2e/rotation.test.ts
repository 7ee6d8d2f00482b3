// Password rotation (src/reconcilers/passwords.ts, src/instance/passwords.ts) on a 2-instance
// cluster with synchronous commit and WAL archiving to S3: the generated superuser and app Secrets
// get new passwords; PostgreSQL takes them with no pod restarted and no failed login (the
// instances' logs show no "password authentication failed" until the test itself tries an old
// password), the old passwords are refused and the new ones work through -rw, the new passwords
// appear in no log, WAL still archives and the replica still streams, and the operator logged no
// failed reconcile. Then a user's own superuser Secret (spec.superuserSecret) on a 1-instance cluster.
import { readFileSync } from 'node:fs';
import { CoreV1Api, PatchStrategy, setHeaderOptions, type V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LABELS } from '../src/api/constants.js';
import type { PostgreSQLCluster } from '../src/api/cluster.js';
import { startProcessKubelet, type ProcessKubelet } from './kubelet/index.js';
import { createTestNamespace, kubeConfig, kubeconfigPath, waitFor } from './harness/env.js';
import { HaCluster } from './harness/ha-cluster.js';
import { REPO_ROOT, ensureBuilt, startOperator, type RunningOperator } from './harness/operator.js';
import { clusterTls, query, serviceClientConfig, type Credentials } from './harness/postgres.js';
import { tearDown } from './harness/teardown.js';
import { startS3rver, S3RVER_ACCESS_KEY, S3RVER_SECRET_KEY, type S3rver } from '../test/support/s3rver.js';

const NAME = 'rotor';
const OWN = 'rotor-own';
const BUCKET = 'rotation';
const AUTH_FAILED = /password authentication failed/;

describe('password rotation', () => {
  let ns: string;
  let kubelet: ProcessKubelet;
  let operator: RunningOperator;
  let s3: S3rver;
  let db: HaCluster;
  let own: HaCluster;
  const core = () => kubeConfig().makeApiClient(CoreV1Api);

  const pods = async (cluster: string) => (await core().listNamespacedPod({ namespace: ns, labelSelector: `${LABELS.cluster}=${cluster},${LABELS.component}=instance` })).items;
  const identity = (ps: V1Pod[]) => ps.map((p) => `${p.metadata!.name} ${p.metadata!.uid} restarts=${(p.status?.containerStatuses ?? []).map((s) => s.restartCount).join(',')}`).sort();
  const podLog = (pod: string) => {
    const path = kubelet.containerLogPath(ns, pod, 'postgres');
    return path ? readFileSync(path, 'utf8') : '';
  };
  const logs = async (cluster: string) => Object.fromEntries((await pods(cluster)).map((p) => [p.metadata!.name!, podLog(p.metadata!.name!)]));
  const secretPassword = async (name: string) => Buffer.from((await core().readNamespacedSecret({ name, namespace: ns })).data!.password!, 'base64').toString('utf8');
  const setPassword = async (secret: string, password: string) =>
    (await core().patchNamespacedSecret({ name: secret, namespace: ns, body: { stringData: { password } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch))).metadata!.resourceVersion!;
  // Clients use TLS (verify-full with the cluster's CA: a new cluster refuses plain TCP), known once the cluster is healthy.
  const tlsOf = new Map<string, Credentials['ssl']>();
  const rw = (cluster: string, creds: Credentials) => serviceClientConfig(kubelet, ns, `${cluster}-rw`, { ...creds, ...(tlsOf.get(cluster) ? { ssl: tlsOf.get(cluster) } : {}) });

  /** Waits until status.passwords records the role's Secret as it is now, holding `password`, and the condition is True. */
  const applied = (c: HaCluster, role: 'superuser' | 'app', secret: string, password: string, timeoutMs = 120_000) =>
    waitFor(`${c.name}: ${role} password of Secret ${secret} applied`, async () => {
      const s = await core().readNamespacedSecret({ name: secret, namespace: ns });
      if (Buffer.from(s.data!.password!, 'base64').toString('utf8') !== password) throw new Error(`Secret ${secret} lost the test's password`);
      const x = await c.get();
      const ok = x.status?.passwords?.[role]?.resourceVersion === s.metadata!.resourceVersion && x.status?.conditions?.find((k) => k.type === 'PasswordsApplied')?.status === 'True';
      return ok ? x : undefined;
    }, { timeoutMs, intervalMs: 250 });

  const rotatedEvents = async (cluster: string) =>
    (await core().listNamespacedEvent({ namespace: ns, fieldSelector: `involvedObject.name=${cluster},reason=PasswordRotated` })).items.map((e) => e.message ?? '');

  beforeAll(async () => {
    ensureBuilt();
    s3 = await startS3rver({ buckets: [BUCKET] });
    ns = await createTestNamespace('rotation');
    kubelet = await startProcessKubelet({ kubeconfigPath: kubeconfigPath(), repoRoot: REPO_ROOT });
    operator = await startOperator({ watchNamespaces: [ns] });
    console.log(`[rotation] kubelet log ${kubelet.logPath}; operator log ${operator.logPath}`);
    db = new HaCluster(kubelet, ns, NAME);
    await db.createArchived({ endpoint: s3.endpoint, accessKeyId: S3RVER_ACCESS_KEY, secretAccessKey: S3RVER_SECRET_KEY }, BUCKET, (c) => {
      c.spec.instances = 2;
      c.spec.highAvailability = { enabled: true, synchronousCommit: true, synchronousReplicas: 1, durability: 'required' };
      // Every statement and connection logged: a password or a failed login would show.
      c.spec.postgresql = { parameters: { log_statement: 'all', log_min_duration_statement: '0', log_connections: 'true' } };
    });
  }, 600_000);

  afterAll(() => tearDown({ operator, kubelet, namespace: ns, s3 }));

  it('rotates the generated superuser and app passwords with no restart and no failed login', async () => {
    const healthy = await db.healthy(2, 300_000);
    tlsOf.set(db.name, await clusterTls(ns, db.name));
    const primary = healthy.status!.currentPrimary!;
    await db.archiving();
    const superuser = `${NAME}-superuser`;
    const app = `${NAME}-app`;
    // A fresh cluster's passwords are found in place: recorded, no Event.
    const initial = await waitFor('both roles recorded', async () => {
      const x = await db.get();
      return x.status?.passwords?.superuser && x.status.passwords.app && x.status.conditions?.find((k) => k.type === 'PasswordsApplied')?.status === 'True' ? x : undefined;
    }, { timeoutMs: 60_000, intervalMs: 250 });
    expect(await rotatedEvents(NAME)).toEqual([]);
    const podsBefore = identity(await pods(NAME));
    const oldSu = { user: 'postgres', password: await secretPassword(superuser), database: 'app' };
    const oldApp = { user: 'app', password: await secretPassword(app), database: 'app' };
    expect(initial.status!.passwords!.superuser!.secret).toBe(superuser);
    await query(rw(NAME, oldSu), 'SELECT 1');

    const newSu = { ...oldSu, password: 'su-Rotated-e2e-5f3a9c1d7b' };
    const newApp = { ...oldApp, password: 'app-Rotated-e2e-8e2b4d6f0a' };
    await setPassword(superuser, newSu.password);
    await applied(db, 'superuser', superuser, newSu.password);
    await setPassword(app, newApp.password);
    await applied(db, 'app', app, newApp.password);
    // A moment for any agent login that would fail with a stale password (health runs every 250 ms).
    await new Promise((r) => setTimeout(r, 3000));
    const during = await logs(NAME);
    for (const [pod, text] of Object.entries(during)) expect(text.match(AUTH_FAILED)?.[0], `${pod}: a failed login during the rotation`).toBeUndefined();
    expect((await rotatedEvents(NAME)).sort()).toEqual([expect.stringContaining(`app password`), expect.stringContaining(`superuser password`)]);

    // New passwords work through -rw, the old ones are refused.
    await query(rw(NAME, newSu), 'SELECT 1');
    await query(rw(NAME, newApp), 'SELECT 1');
    await expect(query(rw(NAME, oldSu), 'SELECT 1')).rejects.toThrow(AUTH_FAILED);
    await expect(query(rw(NAME, oldApp), 'SELECT 1')).rejects.toThrow(AUTH_FAILED);

    // Nothing restarted.
    expect(identity(await pods(NAME))).toEqual(podsBefore);
    expect((await db.get()).status!.currentPrimary).toBe(primary);

    // WAL still archives (the agent's archiver and status calls log in as the superuser) and the replica streams.
    await query(rw(NAME, newSu), 'CREATE TABLE after_rotation (id int); INSERT INTO after_rotation VALUES (1)');
    const f = (await query<{ f: string }>(rw(NAME, newSu), 'SELECT pg_walfile_name(pg_switch_wal()) AS f'))[0]!.f;
    await waitFor(`${f} archived`, async () => {
      const last = (await db.get()).status?.archiving?.lastArchivedWal;
      return last !== undefined && last >= f;
    }, { timeoutMs: 120_000, intervalMs: 500 });
    const after = await db.healthy(2, 60_000);
    expect(after.status!.streamingReplicas).toBe(1);
    // Synchronous commit: an acknowledged INSERT means the replica confirmed it.
    await query(rw(NAME, newApp), 'CREATE TABLE t (id int); INSERT INTO t VALUES (1)');

    // The new passwords appear in no log (the old ones do not matter: the test printed none).
    const all = { ...(await logs(NAME)), operator: readFileSync(operator.logPath, 'utf8') };
    for (const [source, text] of Object.entries(all)) {
      expect(text.includes(newSu.password), `the new superuser password in ${source}`).toBe(false);
      expect(text.includes(newApp.password), `the new app password in ${source}`).toBe(false);
    }
    // The logs are the real ones: the statements of the test itself are there.
    expect(Object.values(all).some((t) => t.includes('after_rotation'))).toBe(true);
    const failedReconciles = all.operator.split('\n').filter((l) => l.includes('reconcile failed') && l.includes(NAME));
    expect(failedReconciles).toEqual([]);
    expect((await db.get()).status!.conditions!.find((c) => c.type === 'Degraded')!.status).toBe('False');
  });

  it("rotates a user's own superuser Secret", async () => {
    const secret = 'my-superuser';
    await core().createNamespacedSecret({ namespace: ns, body: { metadata: { name: secret }, type: 'kubernetes.io/basic-auth', stringData: { username: 'postgres', password: 'own-Initial-4c1e7a' } } });
    own = new HaCluster(kubelet, ns, OWN);
    await own.create((c: PostgreSQLCluster) => {
      c.spec.instances = 1;
      c.spec.backup = { enabled: false } as never;
      c.spec.highAvailability = { enabled: false };
      c.spec.superuserSecret = { name: secret };
    });
    await own.healthy(1, 300_000);
    tlsOf.set(own.name, await clusterTls(ns, own.name));
    await waitFor('own superuser recorded', async () => (await own.get()).status?.passwords?.superuser?.secret === secret, { timeoutMs: 90_000, intervalMs: 500 });
    const podsBefore = identity(await pods(OWN));
    await setPassword(secret, 'own-Rotated-9d2f6b');
    // A user's Secret is not watched: the operator looks at it again within a minute.
    await applied(own, 'superuser', secret, 'own-Rotated-9d2f6b', 150_000);
    await query(rw(OWN, { user: 'postgres', password: 'own-Rotated-9d2f6b', database: 'postgres' }), 'SELECT 1');
    await expect(query(rw(OWN, { user: 'postgres', password: 'own-Initial-4c1e7a', database: 'postgres' }), 'SELECT 1')).rejects.toThrow(AUTH_FAILED);
    // Exactly the one refusal the test just caused (once the log has it: the agent forwards postgres's output).
    const text = await waitFor('the refusal in the log', async () => {
      const t = Object.values(await logs(OWN)).join('\n');
      return AUTH_FAILED.test(t) ? t : undefined;
    }, { timeoutMs: 20_000, intervalMs: 250 });
    expect(text.match(new RegExp(AUTH_FAILED.source, 'g')) ?? []).toHaveLength(1);
    expect(text.includes('own-Rotated-9d2f6b')).toBe(false);
    expect(identity(await pods(OWN))).toEqual(podsBefore);
    expect(await rotatedEvents(OWN)).toEqual([expect.stringContaining(`Secret ${secret}`)]);
  });
});
