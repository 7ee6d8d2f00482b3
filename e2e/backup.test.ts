// Backups end to end: a real control plane (CronJob and Job controllers), the process kubelet,
// real PostgreSQL and a real S3 server (s3rver) on loopback. A scheduled base backup, on-demand
// backups, point-in-time recovery into new clusters under a write load (time, LSN, named restore
// point — checked row by row), retention by count, and an S3 outage during archiving and during a
// backup that loses nothing. Objects in the store are compared by content hash, never by status
// codes alone.
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { gunzipSync } from 'node:zlib';
import { BatchV1Api, CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PostgreSQLBackup } from '../src/api/backup.js';
import type { PostgreSQLCluster } from '../src/api/cluster.js';
import { API_GROUP, API_VERSION, BACKUP_PLURAL, LABELS } from '../src/api/constants.js';
import { archiveKeys } from '../src/backup/archive-layout.js';
import { listBackups } from '../src/backup/catalog.js';
import { openStore } from '../src/backup/open-store.js';
import type { ObjectStore } from '../src/backup/object-store.js';
import { startS3rver, S3RVER_ACCESS_KEY, S3RVER_SECRET_KEY, type S3rver } from '../test/support/s3rver.js';
import { startProcessKubelet, type ProcessKubelet } from './kubelet/index.js';
import { createTestNamespace, kubeConfig, kubeconfigPath, waitFor } from './harness/env.js';
import { backupFinished, backupNow as createBackup, getBackup as getBackupOf, superuserConfig } from './harness/backups.js';
import { HaCluster } from './harness/ha-cluster.js';
import { REPO_ROOT, ensureBuilt, startOperator, type RunningOperator } from './harness/operator.js';
import { LedgerWriter, query } from './harness/postgres.js';
import { tearDown } from './harness/teardown.js';

const BUCKET = 'pgpilot-e2e';
const SOURCE = 'src-db';

describe('backups, WAL archiving and point-in-time recovery', () => {
  let ns: string;
  let kubelet: ProcessKubelet;
  let operator: RunningOperator;
  let s3: S3rver;
  let store: ObjectStore;
  let db: HaCluster;
  const custom = () => kubeConfig().makeApiClient(CustomObjectsApi);
  const core = () => kubeConfig().makeApiClient(CoreV1Api);
  const path = () => `pgpilot/${ns}/${SOURCE}`;

  const s3Spec = () => ({
    endpoint: s3.endpoint,
    bucket: BUCKET,
    forcePathStyle: true,
    checksums: 'WHEN_REQUIRED',
    credentials: { secretName: 's3-credentials' },
  });

  async function backups(): Promise<PostgreSQLBackup[]> {
    const list = (await custom().listNamespacedCustomObject({ group: API_GROUP, version: API_VERSION, plural: BACKUP_PLURAL, namespace: ns })) as { items: PostgreSQLBackup[] };
    return list.items.filter((b) => b.spec.cluster.name === SOURCE);
  }

  const getBackup = (name: string) => getBackupOf(ns, name);
  const backupNow = (name: string) => createBackup(ns, name, SOURCE);
  const finished = (name: string, timeoutMs?: number) => backupFinished(ns, name, timeoutMs);
  const superuser = (cluster: string) => superuserConfig(kubelet, ns, cluster);

  /** Switch to a new segment on the source and wait until the one just closed is in the store. */
  async function archiveNow(): Promise<string> {
    const su = await superuser(SOURCE);
    const f = (await query<{ f: string }>(su, 'SELECT pg_walfile_name(pg_switch_wal()) AS f'))[0]!.f;
    await waitFor(`${f} archived`, async () => (await store.head(archiveKeys.wal(path(), f))) !== null, { timeoutMs: 60_000, intervalMs: 250 });
    return f;
  }

  async function rows(cluster: HaCluster): Promise<number[]> {
    const r = await query<{ id: number }>(cluster.rw(), 'SELECT id FROM ledger ORDER BY id');
    return r.map((x) => Number(x.id));
  }

  async function restored(name: string, recovery: Record<string, unknown>): Promise<HaCluster> {
    const c = new HaCluster(kubelet, ns, name);
    await c.create((spec: PostgreSQLCluster) => {
      spec.spec.instances = 1;
      spec.spec.highAvailability = { enabled: true, synchronousCommit: false };
      spec.spec.backup = { enabled: true, schedule: '0 0 1 1 *', retention: 7, s3: s3Spec() as never };
      spec.spec.bootstrap = { recovery: recovery as never };
    });
    return c;
  }

  const range = (a: number, b: number) => Array.from({ length: b - a + 1 }, (_, i) => a + i);

  beforeAll(async () => {
    ensureBuilt();
    s3 = await startS3rver({ buckets: [BUCKET] });
    store = openStore(s3.storeConfig(BUCKET), { ...process.env, ...s3.env });
    ns = await createTestNamespace('backup');
    kubelet = await startProcessKubelet({ kubeconfigPath: kubeconfigPath(), repoRoot: REPO_ROOT, dataDir: process.env.PGPILOT_E2E_KUBELET_DIR });
    operator = await startOperator({ watchNamespaces: [ns] });
    console.log(`[backup] kubelet log ${kubelet.logPath}; operator log ${operator.logPath}; s3rver ${s3.endpoint}`);
    await core().createNamespacedSecret({
      namespace: ns,
      body: { metadata: { name: 's3-credentials' }, stringData: { ACCESS_KEY_ID: S3RVER_ACCESS_KEY, ACCESS_SECRET_KEY: S3RVER_SECRET_KEY } },
    });
    db = new HaCluster(kubelet, ns, SOURCE);
    await db.create((c) => {
      c.spec.instances = 2;
      c.spec.highAvailability = { enabled: true, synchronousCommit: false };
      // Every minute until the first scheduled backup is seen, then a yearly schedule.
      c.spec.backup = { enabled: true, schedule: '* * * * *', retention: '2 backups', s3: s3Spec() as never };
    });
  }, 600_000);

  afterAll(() => tearDown({ operator, kubelet, namespace: ns, s3 }));

  it('archives WAL continuously: every archived segment equals what PostgreSQL wrote', async () => {
    await db.healthy(2, 300_000);
    await query(db.rw(), 'CREATE TABLE ledger (id int PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp())');
    const f = await archiveNow();
    const c = await waitFor('ContinuousArchiving True', async () => {
      const c = await db.get();
      return c.status?.conditions?.find((x) => x.type === 'ContinuousArchiving')?.status === 'True' && c.status.archiving?.lastArchivedWal ? c : undefined;
    });
    expect(c.status!.archivePath).toBe(`s3://${BUCKET}/${path()}`);
    // The object is gzip of the segment, and its sha256 metadata is the hash of what was compressed.
    const key = archiveKeys.wal(path(), f);
    const raw = gunzipSync(await store.getBuffer(key));
    expect(raw.length).toBe(16 * 2 ** 20);
    expect((await store.head(key))!.metadata.sha256).toBe(createHash('sha256').update(raw).digest('hex'));
  });

  let scheduled: PostgreSQLBackup;

  it('the CronJob takes a scheduled base backup through the real CronJob and Job controllers', async () => {
    const cronJobName = `${SOURCE}-backup`;
    const cron = await waitFor('the backup CronJob', async () => (await kubeConfig().makeApiClient(BatchV1Api).readNamespacedCronJob({ name: cronJobName, namespace: ns }).catch(() => undefined)));
    expect(cron.spec!.schedule).toBe('* * * * *');
    scheduled = await waitFor('a scheduled PostgreSQLBackup completed', async () => {
      const done = (await backups()).find((b) => b.metadata?.labels?.[LABELS.scheduled] === 'true' && b.status?.phase === 'completed');
      return done;
    }, { timeoutMs: 240_000, intervalMs: 1000 });
    // No more scheduled runs: the rest of the test counts backups.
    await db.patchSpec({ backup: { schedule: '0 0 1 1 *' } });
    const st = scheduled.status!;
    expect(st.backupId).toMatch(/^\d{8}T\d{6}Z$/);
    expect(st.startLsn).toBeTruthy();
    expect(st.stopLsn).toBeTruthy();
    expect(st.storedBytes).toBeGreaterThan(0);
    const job = await kubeConfig().makeApiClient(BatchV1Api).readNamespacedJob({ name: st.job!, namespace: ns });
    expect(job.metadata!.ownerReferences?.[0]?.kind).toBe('CronJob');
    // The stored tar is what the manifest says, byte for byte.
    const data = gunzipSync(await store.getBuffer(archiveKeys.baseData(path(), st.backupId!)));
    expect(createHash('sha256').update(data).digest('hex')).toBe(st.dataSha256);
    const c = await waitFor('LastBackupSucceeded True', async () => {
      const c = await db.get();
      return c.status?.conditions?.find((x) => x.type === 'LastBackupSucceeded')?.status === 'True' ? c : undefined;
    });
    expect(c.status!.firstRecoverabilityPoint).toBe(st.stoppedAt);
    expect(c.status!.nextScheduledBackup).toBeTruthy();
  });

  const marks: { time?: string; lsn?: string } = {};

  it('point-in-time recovery under a write load, to a time, an LSN and a named restore point, holds exactly the rows committed before it', async () => {
    const su = await superuser(SOURCE);
    const insert = async (a: number, b: number) => {
      for (const id of range(a, b)) await query(db.rw(), 'INSERT INTO ledger (id) VALUES ($1)', [id]);
    };
    // The write load: one connection inserting ids 1, 2, 3, … into `load`, each acknowledgement timed.
    const load = new LedgerWriter(db.rw(), 'load');
    await load.prepare();
    load.start();
    await waitFor('the write load flowing', async () => load.acknowledged.length >= 20);
    /** Runs the mark, remembering the client time just before and just after it. */
    const mark = async (f: () => Promise<void>) => {
      const from = Date.now();
      await f();
      return { from, to: Date.now() };
    };
    await insert(1, 5);
    await sleep(1000);
    const atTime = await mark(async () => {
      marks.time = new Date().toISOString();
    });
    await sleep(1000);
    await insert(6, 10);
    const atLsn = await mark(async () => {
      marks.lsn = (await query<{ l: string }>(su, 'SELECT pg_current_wal_lsn()::text AS l'))[0]!.l;
    });
    await insert(11, 15);
    const atName = await mark(async () => {
      await query(su, "SELECT pg_create_restore_point('before-16')");
    });
    await insert(16, 20);
    await sleep(500);
    const loadReport = await load.stop();
    expect(loadReport.errors).toBe(0);
    await archiveNow();

    const from = { backup: { name: scheduled.metadata!.name } };
    const [byTime, byLsn, byName] = await Promise.all([
      restored('pitr-time', { ...from, target: { time: marks.time } }),
      restored('pitr-lsn', { ...from, target: { lsn: marks.lsn } }),
      restored('pitr-name', { ...from, target: { name: 'before-16' } }),
    ]);
    await Promise.all([byTime.healthy(1, 300_000), byLsn.healthy(1, 300_000), byName.healthy(1, 300_000)]);
    expect(await rows(byTime)).toEqual(range(1, 5));
    expect(await rows(byLsn)).toEqual(range(1, 10));
    expect(await rows(byName)).toEqual(range(1, 15));
    // The load's rows: one writer, so commit order is id order and a recovery holds ids 1..k, with
    // every id acknowledged before the mark and none whose INSERT began after it (an INSERT begins
    // once the previous id is acknowledged).
    const loadIds = async (c: HaCluster) => (await query<{ id: string }>(c.rw(), 'SELECT id FROM load ORDER BY id')).map((r) => Number(r.id));
    for (const [c, at] of [[byTime, atTime], [byLsn, atLsn], [byName, atName]] as const) {
      const ids = await loadIds(c);
      const ackedBefore = load.ackTimes.filter((t) => t < at.from).length;
      const firstAckedAfter = load.ackTimes.findIndex((t) => t > at.to) + 1; // an id (1-based)
      expect(ackedBefore).toBeGreaterThan(0);
      expect(firstAckedAfter).toBeGreaterThan(0);
      expect(ids).toEqual(range(1, ids.length));
      expect(ids.length).toBeGreaterThanOrEqual(ackedBefore);
      expect(ids.length).toBeLessThanOrEqual(firstAckedAfter);
      console.log(`[backup] ${c.name}: load rows 1..${ids.length} (acknowledged before the mark: ${ackedBefore}; first acknowledged after it: ${firstAckedAfter}; ${load.acknowledged.length} written)`);
    }
    // A restored cluster is writable with its own credentials and archives to its own path only.
    await query(byTime.rw(), 'INSERT INTO ledger (id) VALUES (1000)');
    const own = await superuser('pitr-time');
    const f = (await query<{ f: string }>(own, 'SELECT pg_walfile_name(pg_switch_wal()) AS f'))[0]!.f;
    await waitFor('the restored cluster archives to its own path', async () => (await store.head(archiveKeys.wal(`pgpilot/${ns}/pitr-time`, f))) !== null, { timeoutMs: 60_000, intervalMs: 250 });
    const source = await store.list(archiveKeys.walPrefix(path()));
    expect(source.some((o) => o.key.endsWith('00000002.history.gz'))).toBe(false);
    for (const c of ['pitr-lsn', 'pitr-name']) await custom().deleteNamespacedCustomObject({ group: API_GROUP, version: API_VERSION, plural: 'postgresqlclusters', namespace: ns, name: c });
  });

  it('a target outside the recoverable window is refused with a message that states the window', async () => {
    const c = await restored('pitr-early', { backup: { name: scheduled.metadata!.name }, target: { time: '2001-01-01T00:00:00Z' } });
    const degraded = await waitFor('the restore refused', async () => {
      const d = (await c.get()).status?.conditions?.find((x) => x.type === 'Degraded');
      return d?.status === 'True' && d.reason === 'BootstrapFailed' ? d.message : undefined;
    }, { timeoutMs: 180_000, intervalMs: 1000 });
    expect(degraded).toMatch(/window/);
    expect(degraded).toContain('2001-01-01');
    await custom().deleteNamespacedCustomObject({ group: API_GROUP, version: API_VERSION, plural: 'postgresqlclusters', namespace: ns, name: 'pitr-early' });
  });

  it('on-demand backups, and retention "2 backups" removes the oldest with the WAL only it needed', async () => {
    await backupNow('manual-1');
    expect((await finished('manual-1')).status!.phase).toBe('completed');
    await backupNow('manual-2');
    const m2 = await finished('manual-2');
    expect(m2.status!.phase).toBe('completed');
    const m1 = await getBackup('manual-1');
    // The scheduled backup expired: its resource, its objects and the WAL before manual-1's start are gone.
    await waitFor('the scheduled backup expired', async () => !(await backups()).some((b) => b.metadata!.name === scheduled.metadata!.name), { timeoutMs: 60_000 });
    // Retention removes the resources first, then the objects, then the WAL (backup-run.ts): wait for the last.
    const startWal = m1.status!.startWal!;
    const walNames = async () => (await store.list(archiveKeys.walPrefix(path()))).map((o) => o.key.split('/').pop()!.replace(/\.gz$/, '')).filter((n) => /^[0-9A-F]{24}$/.test(n));
    await waitFor('the store pruned (base backup and the WAL before manual-1)', async () => (await walNames()).every((n) => n.slice(8) >= startWal.slice(8)), { timeoutMs: 60_000 });
    const { backups: left } = await listBackups(store, path());
    expect(left.map((b) => b.id).sort()).toEqual([m1.status!.backupId, m2.status!.backupId].sort());
    expect(await store.head(archiveKeys.baseData(path(), scheduled.status!.backupId!))).toBeNull();
    const wal = await walNames();
    expect(wal).toContain(startWal);
    // The oldest kept backup still restores, to the end of the archived WAL.
    await query(db.rw(), 'INSERT INTO ledger (id) VALUES (21)');
    await archiveNow();
    const c = await restored('from-oldest', { backup: { name: 'manual-1' } });
    await c.healthy(1, 300_000);
    expect(await rows(c)).toEqual(range(1, 21));
    await custom().deleteNamespacedCustomObject({ group: API_GROUP, version: API_VERSION, plural: 'postgresqlclusters', namespace: ns, name: 'from-oldest' });
  });

  it('an S3 outage: archiving reports the failure and pg_wal growth, a backup fails and is retried later, nothing is lost', async () => {
    // Keep every backup from here on: the restore below starts from manual-2.
    await db.patchSpec({ backup: { retention: '10 backups' } });
    await s3.kill();
    for (const id of range(22, 30)) await query(db.rw(), 'INSERT INTO ledger (id) VALUES ($1)', [id]);
    const su = await superuser(SOURCE);
    for (let i = 0; i < 3; i++) await query(su, 'SELECT pg_switch_wal()');
    const failing = await waitFor('ContinuousArchiving False', async () => {
      const c = await db.get();
      const cond = c.status?.conditions?.find((x) => x.type === 'ContinuousArchiving');
      return cond?.status === 'False' && (c.status?.archiving?.backlogSegments ?? 0) > 0 ? { cond, status: c.status! } : undefined;
    }, { timeoutMs: 120_000, intervalMs: 1000 });
    expect(failing.cond.reason).toBe('ArchivingFailing');
    expect(failing.cond.message).toContain('wait in pg_wal');
    expect(failing.status.archiving!.walBytes).toBeGreaterThan(0);
    const events = await core().listNamespacedEvent({ namespace: ns, fieldSelector: `involvedObject.name=${SOURCE}` });
    expect(events.items.some((e) => e.reason === 'ArchivingFailing')).toBe(true);

    await backupNow('during-outage');
    const failed = await finished('during-outage');
    expect(failed.status!.phase).toBe('failed');
    expect(failed.status!.error).toContain(s3.endpoint.replace(/^https?:\/\//, ''));
    await waitFor('LastBackupSucceeded False', async () => (await db.get()).status?.conditions?.find((x) => x.type === 'LastBackupSucceeded')?.status === 'False');

    await s3.restart();
    await waitFor('archiving resumed by itself', async () => {
      const c = await db.get();
      return c.status?.conditions?.find((x) => x.type === 'ContinuousArchiving')?.status === 'True' && c.status.archiving?.backlogSegments === 0;
    }, { timeoutMs: 120_000, intervalMs: 1000 });
    await archiveNow();
    await backupNow('after-outage');
    expect((await finished('after-outage')).status!.phase).toBe('completed');
    // Every acknowledged row survived: restore the newest kept backup before the outage to the end of WAL.
    const c = await restored('after-outage-restore', { backup: { name: 'manual-2' } });
    await c.healthy(1, 300_000);
    expect(await rows(c)).toEqual(range(1, 30));
  });

  it('onClusterDeletion: Delete removes the archive with the cluster; Retain (the default) keeps it', async () => {
    const doomed = new HaCluster(kubelet, ns, 'after-outage-restore');
    const own = `pgpilot/${ns}/after-outage-restore`;
    await waitFor('the restored cluster has archived something', async () => (await store.list(`${own}/`)).length > 0, { timeoutMs: 60_000 });
    await doomed.patchSpec({ backup: { onClusterDeletion: 'Delete' } });
    await waitFor('the finalizer', async () => (await doomed.get()).metadata.finalizers?.includes('postgres.pgpilot.io/delete-backups'));
    await custom().deleteNamespacedCustomObject({ group: API_GROUP, version: API_VERSION, plural: 'postgresqlclusters', namespace: ns, name: 'after-outage-restore' });
    await waitFor('the cluster gone', async () => (await doomed.get().then(() => false, () => true)), { timeoutMs: 180_000, intervalMs: 1000 });
    expect(await store.list(`${own}/`)).toEqual([]);
    // The source's archive (Retain) is untouched by all of this.
    expect((await listBackups(store, path())).backups.length).toBeGreaterThan(0);
  });
});
