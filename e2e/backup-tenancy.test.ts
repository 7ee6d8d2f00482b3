// Tenant isolation of the operator-wide default backup store, end to end: a real control plane,
// the process kubelet, real PostgreSQL and s3rver. The store is opt-in per namespace: a namespace
// given scoped keys (backup.defaultStoreNamespaceCredentials) gets a copy of exactly those,
// archives WAL, takes a base backup and restores from it, with the credentials reaching pods as
// files — the postmaster's environment (/proc/<pid>/environ) holds no key. A namespace not opted
// in gets a condition naming it and the Helm value, and holds no copy of the bucket-wide keys (an
// old copy is deleted, with an Event). s3rver enforces no per-prefix policy: the scoped keys here
// are s3rver's own plus a marker that tells the copies apart (docs/backup-tenancy.md).
import { readFileSync } from 'node:fs';
import { CoreV1Api } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { names } from '../src/api/names.js';
import { clusterLabels } from '../src/api/labels.js';
import { archiveKeys } from '../src/backup/archive-layout.js';
import { openStore } from '../src/backup/open-store.js';
import type { ObjectStore } from '../src/backup/object-store.js';
import type { PostgreSQLCluster } from '../src/api/cluster.js';
import { startS3rver, S3RVER_ACCESS_KEY, S3RVER_SECRET_KEY, type S3rver } from '../test/support/s3rver.js';
import { startProcessKubelet, type ProcessKubelet } from './kubelet/index.js';
import { createTestNamespace, deleteTestNamespace, kubeConfig, kubeconfigPath, waitFor } from './harness/env.js';
import { backupFinished, backupNow, superuserConfig } from './harness/backups.js';
import { HaCluster } from './harness/ha-cluster.js';
import { DEFAULT_CHART_ARGS, OPERATOR_NAMESPACE, REPO_ROOT, ensureBuilt, installChart, startOperator, type RunningOperator } from './harness/operator.js';
import { query } from './harness/postgres.js';
import { tearDown } from './harness/teardown.js';

const BUCKET = 'pgpilot-tenancy';
const SOURCE = 'src-db';
const REFUSED = 'out-db';

/** What a process's environment holds that looks like an S3 key: names and values. */
function keysInEnvironment(pid: number): string[] {
  const vars = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').filter(Boolean);
  expect(vars.length, `environment of ${pid}`).toBeGreaterThan(0);
  return vars.filter((v) => /ACCESS_KEY|SECRET_KEY|AWS_|_S3_/i.test(v.split('=')[0]!) || v.split('=').slice(1).join('=') === S3RVER_SECRET_KEY);
}

/** The parent of a pid (/proc/<pid>/status PPid). */
function parentOf(pid: number): number {
  return Number(/^PPid:\s+(\d+)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);
}

describe('tenant isolation of the default backup store', () => {
  let nsIn: string;
  let nsOut: string;
  let kubelet: ProcessKubelet;
  let operator: RunningOperator;
  let s3: S3rver;
  let store: ObjectStore;
  let db: HaCluster;
  const core = () => kubeConfig().makeApiClient(CoreV1Api);
  const wide = () => `tenancy-wide-${nsIn.slice(-6)}`;
  const scoped = () => `tenancy-scoped-${nsIn.slice(-6)}`;
  const decode = (data: Record<string, string> | undefined) => Object.fromEntries(Object.entries(data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]));

  function defaultSpec(c: PostgreSQLCluster): void {
    c.spec.instances = 1;
    c.spec.highAvailability = { enabled: true, synchronousCommit: false };
    c.spec.backup = { enabled: true, schedule: '0 0 1 1 *', retention: 7 };
  }

  /** The operator with the default store open to `namespaces` and scoped keys for `scopedKeys`. */
  function startWith(namespaces: string[], scopedKeys: Record<string, string>): Promise<RunningOperator> {
    const defaultStore = { endpoint: s3.endpoint, bucket: BUCKET, forcePathStyle: true, checksums: 'WHEN_REQUIRED', credentials: { secretName: wide() } };
    return startOperator({
      watchNamespaces: [nsIn, nsOut],
      installChart: false,
      extraEnv: {
        PGPILOT_DEFAULT_BACKUP_STORE: JSON.stringify(defaultStore),
        PGPILOT_DEFAULT_BACKUP_STORE_NAMESPACES: namespaces.join(','),
        PGPILOT_DEFAULT_BACKUP_STORE_NAMESPACE_CREDENTIALS: JSON.stringify(scopedKeys),
      },
    });
  }

  async function restartWith(namespaces: string[], scopedKeys: Record<string, string>): Promise<void> {
    await operator.stop();
    operator = await startWith(namespaces, scopedKeys);
    console.log(`[tenancy] operator restarted (namespaces ${JSON.stringify(namespaces)}, scoped ${JSON.stringify(scopedKeys)}); log ${operator.logPath}`);
  }

  const eventOf = async (namespace: string, reason: string, about: string) =>
    (await core().listNamespacedEvent({ namespace })).items.find((e) => e.reason === reason && e.involvedObject.name === about);

  beforeAll(async () => {
    ensureBuilt();
    s3 = await startS3rver({ buckets: [BUCKET] });
    store = openStore(s3.storeConfig(BUCKET), s3.env);
    nsIn = await createTestNamespace('tenancy-in');
    nsOut = await createTestNamespace('tenancy-out');
    kubelet = await startProcessKubelet({ kubeconfigPath: kubeconfigPath(), repoRoot: REPO_ROOT, dataDir: process.env.PGPILOT_E2E_KUBELET_DIR });
    await installChart(DEFAULT_CHART_ARGS);
    // The bucket-wide keys and the keys "scoped" to nsIn (s3rver's own: it has one key pair and
    // no policies; the MARKER tells which Secret a copy came from).
    for (const [name, marker] of [[wide(), 'bucket-wide'], [scoped(), `scoped-${nsIn}`]] as const) {
      await core().createNamespacedSecret({
        namespace: OPERATOR_NAMESPACE,
        body: { metadata: { name }, stringData: { ACCESS_KEY_ID: S3RVER_ACCESS_KEY, ACCESS_SECRET_KEY: S3RVER_SECRET_KEY, MARKER: marker } },
      });
    }
    // nsIn is listed and has scoped keys (which win); nsOut is not opted in.
    operator = await startWith([nsIn], { [nsIn]: scoped() });
    console.log(`[tenancy] kubelet log ${kubelet.logPath}; operator log ${operator.logPath}; s3rver ${s3.endpoint}`);
    db = new HaCluster(kubelet, nsIn, SOURCE);
    await db.create(defaultSpec);
  }, 600_000);

  afterAll(async () => {
    await deleteTestNamespace(nsOut).catch(() => {});
    for (const name of [wide(), scoped()]) await core().deleteNamespacedSecret({ name, namespace: OPERATOR_NAMESPACE }).catch(() => {});
    await tearDown({ operator, kubelet, namespace: nsIn, s3 });
  });

  it('a namespace not opted in: a condition naming it and the Helm value, its old copy of the keys deleted with an Event, no Secret holding a key', async () => {
    // A copy left from when the namespace was allowed (as the operator labels its copies).
    const copy = names.backupCredentials(REFUSED);
    await core().createNamespacedSecret({
      namespace: nsOut,
      body: { metadata: { name: copy, labels: clusterLabels(REFUSED, 'backup') }, stringData: { ACCESS_KEY_ID: S3RVER_ACCESS_KEY, ACCESS_SECRET_KEY: S3RVER_SECRET_KEY, MARKER: 'bucket-wide' } },
    });
    const out = new HaCluster(kubelet, nsOut, REFUSED);
    await out.create(defaultSpec);
    const c = await waitFor('ContinuousArchiving DefaultStoreNotAllowed', async () => {
      const c = await out.get();
      return c.status?.conditions?.find((x) => x.type === 'ContinuousArchiving' && x.reason === 'DefaultStoreNotAllowed') ? c : undefined;
    }, { timeoutMs: 120_000, intervalMs: 500 });
    const cond = c.status!.conditions!.find((x) => x.type === 'ContinuousArchiving')!;
    expect(cond.status).toBe('False');
    expect(cond.message).toContain(`namespace ${nsOut}`);
    expect(cond.message).toContain('backup.defaultStoreNamespaces');
    expect(c.status!.conditions!.find((x) => x.type === 'LastBackupSucceeded')!.reason).toBe('DefaultStoreNotAllowed');

    await waitFor('the old copy deleted', async () => (await core().readNamespacedSecret({ name: copy, namespace: nsOut }).then(() => false, () => true)), { timeoutMs: 60_000, intervalMs: 500 });
    const events = await waitFor('Events BackupCredentialsRemoved and DefaultStoreNotAllowed', async () => {
      const list = (await core().listNamespacedEvent({ namespace: nsOut })).items;
      const removed = list.find((e) => e.reason === 'BackupCredentialsRemoved');
      const refused = list.find((e) => e.reason === 'DefaultStoreNotAllowed' && e.type === 'Warning');
      return removed && refused ? { removed, refused } : undefined;
    }, { timeoutMs: 60_000, intervalMs: 500 });
    expect(events.removed.type).toBe('Warning');
    expect(events.removed.message).toContain(copy);

    // Give the operator a few more passes, then: no Secret in the namespace holds a key or a marker.
    await out.healthy(1, 300_000);
    const secrets = (await core().listNamespacedSecret({ namespace: nsOut })).items;
    expect(secrets.length).toBeGreaterThan(0); // the cluster's own credential Secrets
    for (const s of secrets) {
      const values = Object.values(decode(s.data));
      expect(values, `Secret ${s.metadata!.name}`).not.toContain(S3RVER_SECRET_KEY);
      expect(values, `Secret ${s.metadata!.name}`).not.toContain('bucket-wide');
    }
    // Its pods mount no store credentials.
    const pod = await core().readNamespacedPod({ name: out.podOf((await out.get()).status!.currentPrimary!), namespace: nsOut });
    expect(pod.spec!.volumes!.filter((v) => v.secret?.secretName === copy)).toEqual([]);
  });

  it('a namespace with scoped keys: its copy holds exactly those, WAL is archived and a base backup taken through files, and the postmaster holds no key', async () => {
    await db.healthy(1, 300_000);
    const copy = await core().readNamespacedSecret({ name: names.backupCredentials(SOURCE), namespace: nsIn });
    expect(decode(copy.data)).toEqual({ ACCESS_KEY_ID: S3RVER_ACCESS_KEY, ACCESS_SECRET_KEY: S3RVER_SECRET_KEY, MARKER: `scoped-${nsIn}` });
    expect(copy.metadata!.annotations!['pgpilot.io/copied-from']).toBe(scoped());

    const su = await superuserConfig(kubelet, nsIn, SOURCE);
    await query(su, 'CREATE TABLE ledger (id int PRIMARY KEY)');
    await query(su, 'INSERT INTO ledger SELECT generate_series(1, 100)');
    const f = (await query<{ f: string }>(su, 'SELECT pg_walfile_name(pg_switch_wal()) AS f'))[0]!.f;
    const path = `pgpilot/${nsIn}/${SOURCE}`;
    await waitFor(`${f} archived under ${path}`, async () => (await store.head(archiveKeys.wal(path, f))) !== null, { timeoutMs: 120_000, intervalMs: 250 });
    await db.archiving();

    // The pod: credentials as a read-only Secret volume, no variable referencing a Secret key.
    const podName = db.podOf((await db.get()).status!.currentPrimary!);
    const pod = await core().readNamespacedPod({ name: podName, namespace: nsIn });
    const container = pod.spec!.containers.find((c) => c.name === 'postgres')!;
    expect((container.env ?? []).filter((e) => e.valueFrom?.secretKeyRef?.name === names.backupCredentials(SOURCE))).toEqual([]);
    expect(pod.spec!.volumes!.find((v) => v.name === 'backup-credentials')?.secret?.secretName).toBe(names.backupCredentials(SOURCE));

    // The postmaster: the parent of this session's backend. Neither it nor the agent (the
    // container's main process, whose environment it inherits) holds a key.
    const backend = Number((await query<{ pid: number }>(su, 'SELECT pg_backend_pid() AS pid'))[0]!.pid);
    const postmaster = parentOf(backend);
    expect(readFileSync(`/proc/${postmaster}/cmdline`, 'utf8')).toMatch(/postgres/);
    expect(keysInEnvironment(postmaster)).toEqual([]);
    for (const pid of kubelet.podPids(nsIn, podName)) expect(keysInEnvironment(pid)).toEqual([]);

    await backupNow(nsIn, 'tenancy-1', SOURCE);
    const b = await backupFinished(nsIn, 'tenancy-1');
    expect(b.status?.phase, b.status?.error).toBe('completed');
    expect(b.status!.destination!.path).toBe(path);
    expect(b.status!.destination!.s3!.credentials.secretName).toBe(names.backupCredentials(SOURCE));
  });

  it('a restore from that backup works, its pods reading the source credentials from files', async () => {
    const restored = new HaCluster(kubelet, nsIn, 'restored-db');
    await restored.create((c) => {
      defaultSpec(c);
      c.spec.bootstrap = { recovery: { backup: { name: 'tenancy-1' } } };
    });
    await restored.healthy(1, 300_000);
    const su = await superuserConfig(kubelet, nsIn, 'restored-db');
    expect(Number((await query<{ n: string }>(su, 'SELECT count(*) AS n FROM ledger'))[0]!.n)).toBe(100);
    // It archives to its own path, through its own copy of the scoped keys.
    const f = (await query<{ f: string }>(su, 'SELECT pg_walfile_name(pg_switch_wal()) AS f'))[0]!.f;
    await waitFor('the restored cluster archives to its own path', async () => (await store.head(archiveKeys.wal(`pgpilot/${nsIn}/restored-db`, f))) !== null, { timeoutMs: 120_000, intervalMs: 250 });
    const backend = Number((await query<{ pid: number }>(su, 'SELECT pg_backend_pid() AS pid'))[0]!.pid);
    expect(keysInEnvironment(parentOf(backend))).toEqual([]);
  });

  it('scoped keys withdrawn while the namespace stays listed: its copies are replaced by the bucket-wide keys (an Event) and archiving goes on', async () => {
    await restartWith([nsIn], {});
    const copy = await waitFor('the copy replaced by the bucket-wide keys', async () => {
      const c = await core().readNamespacedSecret({ name: names.backupCredentials(SOURCE), namespace: nsIn });
      return decode(c.data).MARKER === 'bucket-wide' ? c : undefined;
    }, { timeoutMs: 60_000, intervalMs: 500 });
    expect(copy.metadata!.annotations!['pgpilot.io/copied-from']).toBe(wide());
    expect((await waitFor('Event BackupCredentialsReplaced', () => eventOf(nsIn, 'BackupCredentialsReplaced', SOURCE), { timeoutMs: 30_000, intervalMs: 500 })).type).toBe('Normal');
    const su = await superuserConfig(kubelet, nsIn, SOURCE);
    const f = (await query<{ f: string }>(su, 'SELECT pg_walfile_name(pg_switch_wal()) AS f'))[0]!.f;
    await waitFor(`${f} archived`, async () => (await store.head(archiveKeys.wal(`pgpilot/${nsIn}/${SOURCE}`, f))) !== null, { timeoutMs: 120_000, intervalMs: 250 });
  });

  it('a namespace taken off the list loses every copy, loudly: a Warning Event per cluster and DefaultStoreNotAllowed', async () => {
    await restartWith([], {});
    for (const cluster of [SOURCE, 'restored-db']) {
      await waitFor(`${cluster}'s copy deleted`, async () => core().readNamespacedSecret({ name: names.backupCredentials(cluster), namespace: nsIn }).then(() => false, () => true), { timeoutMs: 60_000, intervalMs: 500 });
      const removed = await waitFor(`Event BackupCredentialsRemoved for ${cluster}`, () => eventOf(nsIn, 'BackupCredentialsRemoved', cluster), { timeoutMs: 30_000, intervalMs: 500 });
      expect(removed.type).toBe('Warning');
      expect(removed.message).toMatch(/WAL archiving and base backups of this cluster stop/);
    }
    const c = await waitFor('ContinuousArchiving DefaultStoreNotAllowed', async () => {
      const c = await db.get();
      return c.status?.conditions?.find((x) => x.type === 'ContinuousArchiving' && x.reason === 'DefaultStoreNotAllowed') ? c : undefined;
    }, { timeoutMs: 60_000, intervalMs: 500 });
    expect(c.status!.conditions!.find((x) => x.type === 'ContinuousArchiving')!.message).toContain(`namespace ${nsIn}`);
    expect(await eventOf(nsIn, 'DefaultStoreNotAllowed', SOURCE)).toBeDefined();
    for (const s of (await core().listNamespacedSecret({ namespace: nsIn })).items) {
      expect(Object.values(decode(s.data)), `Secret ${s.metadata!.name}`).not.toContain(S3RVER_SECRET_KEY);
    }
    // The pods roll without a backup target and the clusters keep serving.
    for (const cluster of [db, new HaCluster(kubelet, nsIn, 'restored-db')]) {
      await waitFor(`${cluster.name} rolled without store credentials`, async () => {
        const c = await cluster.get();
        const pod = await core().readNamespacedPod({ name: cluster.podOf(c.status!.currentPrimary!), namespace: nsIn }).catch(() => undefined);
        return pod && !pod.spec!.volumes!.some((v) => v.name === 'backup-credentials') && pod.status?.conditions?.some((x) => x.type === 'Ready' && x.status === 'True');
      }, { timeoutMs: 180_000, intervalMs: 1000 });
      await cluster.healthy(1, 180_000);
    }
  });
});
