// Hibernation (spec.hibernation) of a 2-instance cluster holding data: every pod stops (the
// primary first, cleanly), the claims stay, the condition Hibernated and status.phase say so,
// scheduled backups are suspended; waking brings back the same primary with the same rows and the
// same claims, and the replica streams again.
import { BatchV1Api, CoreV1Api } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LABELS } from '../src/api/constants.js';
import { startProcessKubelet, type ProcessKubelet } from './kubelet/index.js';
import { createTestNamespace, kubeConfig, kubeconfigPath, waitFor } from './harness/env.js';
import { HaCluster } from './harness/ha-cluster.js';
import { REPO_ROOT, ensureBuilt, startOperator, type RunningOperator } from './harness/operator.js';
import { query } from './harness/postgres.js';
import { tearDown } from './harness/teardown.js';
import { startS3rver, S3RVER_ACCESS_KEY, S3RVER_SECRET_KEY, type S3rver } from '../test/support/s3rver.js';

const NAME = 'sleepy';
const BUCKET = 'hibernation';

describe('hibernation', () => {
  let ns: string;
  let kubelet: ProcessKubelet;
  let operator: RunningOperator;
  let s3: S3rver;
  let db: HaCluster;
  const core = () => kubeConfig().makeApiClient(CoreV1Api);
  const selector = (component: string) => `${LABELS.cluster}=${NAME},${LABELS.component}=${component}`;
  const pods = async () => (await core().listNamespacedPod({ namespace: ns, labelSelector: selector('instance') })).items;
  const claims = async () => (await core().listNamespacedPersistentVolumeClaim({ namespace: ns, labelSelector: `${LABELS.cluster}=${NAME}` })).items.map((c) => `${c.metadata!.name}:${c.metadata!.uid}`).sort();

  beforeAll(async () => {
    ensureBuilt();
    s3 = await startS3rver({ buckets: [BUCKET] });
    ns = await createTestNamespace('hibernation');
    kubelet = await startProcessKubelet({ kubeconfigPath: kubeconfigPath(), repoRoot: REPO_ROOT });
    operator = await startOperator({ watchNamespaces: [ns] });
    console.log(`[hibernation] kubelet log ${kubelet.logPath}; operator log ${operator.logPath}`);
    db = new HaCluster(kubelet, ns, NAME);
    await db.createArchived({ endpoint: s3.endpoint, accessKeyId: S3RVER_ACCESS_KEY, secretAccessKey: S3RVER_SECRET_KEY }, BUCKET, (c) => {
      c.spec.instances = 2;
      c.spec.highAvailability = { enabled: true, synchronousCommit: true, synchronousReplicas: 1, durability: 'preferred' };
    });
  }, 600_000);

  afterAll(() => tearDown({ operator, kubelet, namespace: ns, s3 }));

  it('stops every instance and keeps the claims; wakes with the same primary, rows and claims', async () => {
    const before = await db.healthy(2, 300_000);
    const primary = before.status!.currentPrimary!;
    await query(db.rw(), 'CREATE TABLE kept (id int PRIMARY KEY, v text); INSERT INTO kept SELECT g, md5(g::text) FROM generate_series(1, 20000) g');
    const sum = async () => (await query<{ h: string }>(db.rw(), "SELECT count(*) || ' ' || md5(string_agg(v, ',' ORDER BY id)) AS h FROM kept"))[0]!.h;
    const rows = await sum();
    const claimsBefore = await claims();
    expect(claimsBefore).toHaveLength(2);

    await db.patchSpec({ hibernation: true });
    const asleep = await waitFor('Hibernated True, no pod left', async () => {
      const c = await db.get();
      const cond = c.status?.conditions?.find((x) => x.type === 'Hibernated');
      return cond?.status === 'True' && (await pods()).length === 0 ? c : undefined;
    }, { timeoutMs: 120_000, intervalMs: 500 });
    expect(asleep.status!.phase).toBe('Hibernated');
    expect(asleep.status!.hibernation).toMatchObject({ phase: 'Hibernated', primary });
    expect(await claims()).toEqual(claimsBefore);
    const cron = await kubeConfig().makeApiClient(BatchV1Api).readNamespacedCronJob({ name: `${NAME}-backup`, namespace: ns });
    expect(cron.spec!.suspend).toBe(true);
    // Asleep means asleep: nothing restarts it.
    await new Promise((r) => setTimeout(r, 3000));
    expect(await pods()).toHaveLength(0);

    await db.patchSpec({ hibernation: false });
    const awake = await db.healthy(2, 300_000);
    expect(awake.status!.currentPrimary).toBe(primary);
    expect(awake.status!.hibernation).toBeUndefined();
    expect(awake.status!.conditions!.find((x) => x.type === 'Hibernated')).toMatchObject({ status: 'False', reason: 'Awake' });
    expect(await sum()).toBe(rows);
    expect(await claims()).toEqual(claimsBefore);
    expect(awake.status!.streamingReplicas).toBe(1);
    const cronAfter = await kubeConfig().makeApiClient(BatchV1Api).readNamespacedCronJob({ name: `${NAME}-backup`, namespace: ns });
    expect(cronAfter.spec!.suspend).toBe(false);
    // Writable again through -rw.
    await query(db.rw(), "INSERT INTO kept VALUES (0, 'after waking')");
  });
});
