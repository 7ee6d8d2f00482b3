// Anomalies caught, and corrected where it is safe (docs/anomalies.md), on one small cluster — two
// instances, WAL archived to a local S3 server, thresholds in spec.autopilot.anomalies low enough
// that each anomaly is produced in seconds. Each is made on purpose, its condition raised (the
// Warning Event of its appearance) and cleared (the Event of its clearing), and each correction
// observed: transaction IDs burnt past xidAge → VACUUM (FREEZE) → cleared; a session idle in
// transaction past its limit → terminated (its client sees the connection go); a long pg_sleep →
// LongTransactions until it ends; connections near max_connections until they close; replay
// paused on the replica while the primary writes → ReplicationLagging until it resumes; the S3
// server down while WAL is written → WalGrowingArchiveFailing until it is back; an inactive slot
// retaining WAL → dropped (dropInactiveSlots); many writes with a small max_wal_size →
// CheckpointsForced → max_wal_size raised on every instance. Outcomes are asserted, not timings.
import { CoreV1Api } from '@kubernetes/client-node';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startS3rver, S3RVER_ACCESS_KEY, S3RVER_SECRET_KEY, type S3rver } from '../test/support/s3rver.js';
import { startProcessKubelet, type ProcessKubelet } from './kubelet/index.js';
import { createTestNamespace, kubeConfig, kubeconfigPath, waitFor } from './harness/env.js';
import { HaCluster } from './harness/ha-cluster.js';
import { REPO_ROOT, ensureBuilt, startOperator, type RunningOperator } from './harness/operator.js';
import { podClientConfig, query, superuserCredentials, type Credentials } from './harness/postgres.js';
import { tearDown } from './harness/teardown.js';

const NAME = 'anom-db';
const BUCKET = 'pgpilot-anomalies';
const ANOMALIES = ['XidWraparoundRisk', 'LongTransactions', 'ReplicationLagging', 'SlotRetainingWal', 'WalGrowingArchiveFailing', 'ConnectionsNearLimit', 'CheckpointsForced'];

interface ClusterEvent {
  uid: string;
  type: string;
  reason: string;
  message: string;
}

describe('anomalies caught and corrected', () => {
  let ns: string;
  let kubelet: ProcessKubelet;
  let operator: RunningOperator;
  let s3: S3rver;
  let db: HaCluster;
  let superuser: Credentials;
  const clients: pg.Client[] = [];

  const condition = async (type: string) => (await db.get()).status?.conditions?.find((c) => c.type === type);
  const events = async (): Promise<ClusterEvent[]> =>
    (await kubeConfig().makeApiClient(CoreV1Api).listNamespacedEvent({ namespace: ns, fieldSelector: `involvedObject.name=${NAME}` })).items.map((e) => ({
      uid: e.metadata!.uid!,
      type: e.type ?? '',
      reason: e.reason ?? '',
      message: e.message ?? '',
    }));
  /** An Event of this reason not among `before` (and matching), waited for. */
  const newEvent = (before: ClusterEvent[], reason: string, match: (m: string) => boolean = () => true, timeoutMs = 90_000) =>
    waitFor(`Event ${reason}`, async () => (await events()).find((e) => e.reason === reason && match(e.message) && !before.some((b) => b.uid === e.uid)), { timeoutMs, intervalMs: 500 });
  /** The condition False again, and the Event of its clearing. */
  const cleared = async (before: ClusterEvent[], type: string, timeoutMs = 90_000) => {
    await waitFor(`${type} False`, async () => (await condition(type))?.status === 'False', { timeoutMs, intervalMs: 500 });
    await newEvent(before, `${type}Cleared`, undefined, 30_000);
  };
  const primaryName = async () => (await db.get()).status!.currentPrimary!;
  const asSuperuser = (instance: string, timeoutMs = 120_000): pg.ClientConfig => ({ ...podClientConfig(kubelet, ns, db.podOf(instance), superuser, 5000), query_timeout: timeoutMs });
  const connect = async (config: pg.ClientConfig) => {
    const c = new pg.Client(config);
    c.on('error', () => undefined);
    await c.connect();
    clients.push(c);
    return c;
  };
  const settingOn = async (instance: string, name: string) => (await query<{ v: string }>(asSuperuser(instance, 5000), `SELECT current_setting('${name}') AS v`))[0]!.v;

  beforeAll(async () => {
    ensureBuilt();
    s3 = await startS3rver({ buckets: [BUCKET] });
    ns = await createTestNamespace('anomalies');
    kubelet = await startProcessKubelet({ kubeconfigPath: kubeconfigPath(), repoRoot: REPO_ROOT });
    operator = await startOperator({ watchNamespaces: [ns] });
    console.log(`[anomalies] kubelet log ${kubelet.logPath}; operator log ${operator.logPath}; s3rver ${s3.endpoint}`);
    db = new HaCluster(kubelet, ns, NAME);
    await db.createArchived({ endpoint: s3.endpoint, accessKeyId: S3RVER_ACCESS_KEY, secretAccessKey: S3RVER_SECRET_KEY }, BUCKET, (c) => {
      c.spec.instances = 2;
      c.spec.highAvailability = { enabled: true, synchronousCommit: false };
      // 512Mi: the tuned max_wal_size is a quarter of it (128MB), the raise at most half (256MB).
      c.spec.storage = { size: '512Mi', storageClass: 'fast-ssd' };
      c.spec.postgresql = { parameters: { max_connections: '30', wal_keep_size: '64MB' } };
      c.spec.autopilot = {
        anomalies: {
          checkIntervalSeconds: 5,
          xidAge: 50_000,
          transactionSeconds: 8,
          idleInTransactionSeconds: 8,
          replicationLag: '16Mi',
          slotRetainedWal: '48Mi',
          connectionsPercent: 80,
          checkpointsRequestedPercent: 50,
          checkpointsMinimum: 4,
          checkpointsWindowSeconds: 30,
          archiveBacklogSegments: 2,
          corrections: { dropInactiveSlots: true },
        },
      };
    });
    await db.healthy(2, 300_000);
    await db.archiving();
    superuser = await superuserCredentials(ns, NAME);
  }, 600_000);

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
    await tearDown({ operator, kubelet, namespace: ns, s3 });
  });

  it('reports every anomaly condition, clear on a healthy cluster, and exports them as metrics', async () => {
    const c = await waitFor('every anomaly condition evaluated', async () => {
      const c = await db.get();
      const conds = ANOMALIES.filter((t) => t !== 'CheckpointsForced').map((t) => c.status?.conditions?.find((x) => x.type === t));
      return conds.every((x) => x?.status === 'False') ? c : undefined;
    }, { timeoutMs: 60_000 });
    for (const t of ANOMALIES) expect(c.status!.conditions!.find((x) => x.type === t), t).toBeDefined();
    const mine = (l: Record<string, string>) => l.namespace === ns && l.cluster === NAME && l.type === 'XidWraparoundRisk' && l.status === 'False';
    await waitFor('pgpilot_cluster_condition{type="XidWraparoundRisk"}', async () => (await operator.counter('pgpilot_cluster_condition', mine)) === 1, { timeoutMs: 30_000 });
  });

  it('transaction IDs past xidAge: XidWraparoundRisk, a VACUUM (FREEZE), cleared', async () => {
    const before = await events();
    const primary = await primaryName();
    await query(asSuperuser(primary), 'CREATE TABLE IF NOT EXISTS xid_burn (x int)');
    // One transaction ID per subtransaction that writes.
    for (let i = 0; i < 2; i++) await query(asSuperuser(primary), 'DO $$ BEGIN FOR i IN 1..40000 LOOP BEGIN INSERT INTO xid_burn VALUES (i); EXCEPTION WHEN others THEN NULL; END; END LOOP; END $$');
    const raised = await newEvent(before, 'XidAgeHigh');
    expect(raised.message).toContain('spec.autopilot.anomalies.xidAge 50,000');
    await newEvent(before, 'VacuumFreezeStarted');
    await cleared(before, 'XidWraparoundRisk', 120_000);
    const ages = await query<{ datname: string; age: number }>(asSuperuser(primary, 5000), 'SELECT datname, age(datfrozenxid)::int AS age FROM pg_database WHERE datallowconn');
    for (const a of ages) expect(a.age, a.datname).toBeLessThan(50_000);
    expect((await db.get()).status!.anomalies!.corrections!.some((c) => c.action === 'vacuumFreeze' && c.instance === primary)).toBe(true);
  });

  it('connections near the limit, a long transaction, replay paused, archiving down: each raised and cleared', async () => {
    const before = await events();
    const primary = await primaryName();
    const replica = (await db.get()).status!.instanceNames!.find((i) => i !== primary)!;

    // 25 of max_connections 30, one of them in a long pg_sleep.
    const conns = await Promise.all(Array.from({ length: 25 }, () => connect({ ...db.rw(), query_timeout: 120_000 })));
    const sleeping = conns[0]!.query('SELECT pg_sleep(25)');
    // Replay paused on the replica, and the S3 server down, while the primary writes.
    await query(asSuperuser(replica, 5000), 'SELECT pg_wal_replay_pause()');
    await s3.kill();
    await query(asSuperuser(primary), 'CREATE TABLE IF NOT EXISTS lag_w AS SELECT g AS id, repeat(md5(g::text), 30) AS pad FROM generate_series(1, 40000) g');
    for (let i = 0; i < 3; i++) await query(asSuperuser(primary), `INSERT INTO lag_w SELECT g, 'x' FROM generate_series(1, 10) g; SELECT pg_switch_wal()`);

    const [conn, long, lag, archive] = await Promise.all([
      newEvent(before, 'ConnectionsNearLimit'),
      newEvent(before, 'LongTransaction'),
      newEvent(before, 'ReplicaLagging'),
      newEvent(before, 'ArchiveFailing', undefined, 120_000),
    ]);
    expect(conn.message).toMatch(/of max_connections 30 in use/);
    expect(long.message).toMatch(/has been in a transaction for \d+ s \(spec\.autopilot\.anomalies\.transactionSeconds 8\)/);
    expect(lag.message).toContain(`${replica} has`);
    expect(archive.message).toMatch(/WAL archiving fails .* completed segment\(s\) wait in pg_wal/);

    await Promise.all(conns.slice(1).map((c) => c.end()));
    await query(asSuperuser(replica, 5000), 'SELECT pg_wal_replay_resume()');
    await s3.restart();
    await sleeping;
    await conns[0]!.end();
    await Promise.all([
      cleared(before, 'ConnectionsNearLimit'),
      cleared(before, 'LongTransactions'),
      cleared(before, 'ReplicationLagging'),
      cleared(before, 'WalGrowingArchiveFailing', 180_000),
    ]);
  });

  it('a session idle in transaction is terminated; an inactive slot is dropped; forced checkpoints raise max_wal_size on every instance', async () => {
    const before = await events();
    const primary = await primaryName();
    const instances = (await db.get()).status!.instanceNames!;
    for (const i of instances) expect(await settingOn(i, 'max_wal_size'), i).toBe('128MB');

    // Idle in transaction, holding a transaction ID.
    const idle = await connect(db.rw());
    let closed: Error | undefined;
    idle.on('error', (e: Error) => (closed = e));
    await idle.query('BEGIN');
    await idle.query('SELECT txid_current()');
    // An inactive physical slot that reserves WAL from now on.
    await query(asSuperuser(primary, 5000), "SELECT pg_create_physical_replication_slot('stale_slot', true)");
    // Writes: many times max_wal_size (128MB), so that checkpoints are requested by WAL volume.
    await query(asSuperuser(primary), 'CREATE TABLE IF NOT EXISTS ckpt_w (id int, pad text)');
    const writeRound = () => query(asSuperuser(primary), "INSERT INTO ckpt_w SELECT g, repeat(md5(g::text), 30) FROM generate_series(1, 70000) g; TRUNCATE ckpt_w");
    // One round past the slot's limit, and the slot gone before the others: the volume has the
    // claim's size (512Mi), and WAL the slot held for every round would fill it.
    await writeRound();
    const slot = await newEvent(before, 'SlotRetainingWal');
    expect(slot.message).toMatch(/slot stale_slot \(physical, inactive\) retains .* MiB of WAL: dropping it/);
    expect((await newEvent(before, 'ReplicationSlotDropped')).message).toContain('dropped the inactive replication slot stale_slot');
    expect(await query(asSuperuser(primary, 5000), "SELECT 1 FROM pg_replication_slots WHERE slot_name = 'stale_slot'")).toEqual([]);
    for (let i = 1; i < 6; i++) await writeRound();

    const idleEvent = await newEvent(before, 'IdleInTransaction', undefined, 60_000);
    expect(idleEvent.message).toContain('terminating them (corrections.terminateIdleInTransaction)');
    const terminated = await newEvent(before, 'IdleTransactionsTerminated');
    expect(terminated.message).toMatch(/terminated 1 session\(s\) idle in transaction for more than 8 s/);
    await waitFor('the idle client sees its connection closed', async () => closed !== undefined || (await idle.query('SELECT 1').then(() => false, () => true)), { timeoutMs: 10_000 });

    expect((await newEvent(before, 'CheckpointsForced')).message).toMatch(/\d+ of \d+ checkpoints on .* were requested/);
    expect((await newEvent(before, 'MaxWalSizeRaised')).message).toContain('from 128MB to 256MB');
    await waitFor('max_wal_size 256MB on every instance', async () => (await Promise.all(instances.map((i) => settingOn(i, 'max_wal_size').catch(() => '')))).every((v) => v === '256MB'), { timeoutMs: 60_000 });
    expect((await db.get()).status!.anomalies!.maxWalSize).toMatchObject({ value: '256MB' });

    await Promise.all([cleared(before, 'LongTransactions'), cleared(before, 'SlotRetainingWal'), cleared(before, 'CheckpointsForced', 120_000)]);
  });
});
