// Storage auto-grow on the process kubelet, whose volumes are file systems of the claim's size
// (a tmpfs each: writing past it is ENOSPC). Two 1-instance clusters with a 64Mi data volume on an
// expandable StorageClass: with auto-grow on (threshold 60 %, up to 160Mi), a writer filling the
// data volume never sees ENOSPC, the claims grow before the disk fills and stop at maxSize with
// StorageFull saying so; with auto-grow off, the same writer gets ENOSPC, the cluster reports
// StorageFull, and raising spec.storage.size recovers it. Outcomes are asserted, never timings.
import { statfs } from 'node:fs/promises';
import { CoreV1Api } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startProcessKubelet, type ProcessKubelet } from './kubelet/index.js';
import { claimDir, conditionOf, createExpandableStorageClass, createFillCluster, deleteStorageClass, FillWriter, GrowthWatch } from './harness/autogrow.js';
import { createTestNamespace, kubeConfig, kubeconfigPath, waitFor } from './harness/env.js';
import { HaCluster } from './harness/ha-cluster.js';
import { kubectl } from './harness/kubectl.js';
import { REPO_ROOT, ensureBuilt, startOperator, type RunningOperator } from './harness/operator.js';
import { tearDown } from './harness/teardown.js';

const Mi = 2 ** 20;
const THRESHOLD = 60;

describe('storage auto-grow', () => {
  let ns: string;
  let kubelet: ProcessKubelet;
  let operator: RunningOperator;
  let sc: string;
  let grow: HaCluster;
  let fixed: HaCluster;
  const core = () => kubeConfig().makeApiClient(CoreV1Api);
  const claim = async (name: string) => core().readNamespacedPersistentVolumeClaim({ namespace: ns, name });

  beforeAll(async () => {
    ensureBuilt();
    ns = await createTestNamespace('autogrow');
    sc = `autogrow-${ns}`;
    await createExpandableStorageClass(sc);
    kubelet = await startProcessKubelet({ kubeconfigPath: kubeconfigPath(), repoRoot: REPO_ROOT });
    operator = await startOperator({ watchNamespaces: [ns] });
    console.log(`[autogrow] kubelet log ${kubelet.logPath}; operator log ${operator.logPath}`);
    grow = new HaCluster(kubelet, ns, 'grow');
    fixed = new HaCluster(kubelet, ns, 'fixed');
    await createFillCluster(grow, sc, '64Mi', { enabled: true, thresholdPercent: THRESHOLD, increment: '50%', maxSize: '160Mi', cooldownSeconds: 5 });
    await createFillCluster(fixed, sc, '64Mi');
    await Promise.all([grow.healthy(1, 180_000), fixed.healthy(1, 180_000)]);
  }, 300_000);

  afterAll(async () => {
    await tearDown({ operator, kubelet, namespace: ns });
    if (sc) await deleteStorageClass(sc);
  });

  it('refuses bad auto-grow settings, naming the field', async () => {
    const seed = parse(readFileSync(join(REPO_ROOT, 'examples/cluster.yaml'), 'utf8')) as Record<string, any>;
    const refused = async (autoGrow: Record<string, unknown>) => {
      const c = structuredClone(seed);
      c.metadata = { name: 'bad', namespace: ns };
      c.spec.storage.autoGrow = autoGrow;
      const r = await kubectl(['apply', '--dry-run=server', '-f', '-'], stringify(c));
      expect(r.code, JSON.stringify(autoGrow)).not.toBe(0);
      return r.stderr;
    };
    expect(await refused({ enabled: true, maxSize: '50Gi' })).toMatch(/spec\.storage\.autoGrow\.maxSize.*autoGrow\.maxSize \(50Gi\) must be at least size \(100Gi\)/);
    expect(await refused({ enabled: true, maxSize: '1Ti', thresholdPercent: 40 })).toMatch(/spec\.storage\.autoGrow\.thresholdPercent.*must be from 50 to 95/);
    expect(await refused({ enabled: true, maxSize: '1Ti', thresholdPercent: 99 })).toMatch(/spec\.storage\.autoGrow\.thresholdPercent.*must be from 50 to 95/);
    expect(await refused({ enabled: true, maxSize: '1Ti', increment: '0%' })).toMatch(/spec\.storage\.autoGrow\.increment.*an increment of zero would never grow/);
    expect(await refused({ enabled: true, maxSize: '1Ti', increment: '0Gi' })).toMatch(/spec\.storage\.autoGrow\.increment/);
    expect(await refused({ enabled: true })).toMatch(/spec\.storage\.autoGrow\.maxSize.*maxSize is required when auto-grow is enabled/);
  });

  it('grows the claims before the disk fills, never past maxSize, and says so at maxSize', async () => {
    const pvc = 'pgdata-grow-1-0';
    // From the size the claim was created with: the cluster's own data may cross the threshold before the writer starts.
    const watch = new GrowthWatch(ns, pvc, await claimDir(ns, pvc), THRESHOLD, 100, 64 * Mi);
    watch.start();
    const writer = new FillWriter(grow.rw(), { batchRows: 256, pauseMs: 100 });
    await writer.prepare();
    writer.start();
    let report;
    try {
      await waitFor('StorageFull AtMaxSize', async () => {
        const c = await grow.get();
        return conditionOf(c, 'StorageFull')?.reason === 'AtMaxSize' || writer.report.errors.length > 0;
      }, { timeoutMs: 150_000, intervalMs: 250 });
    } finally {
      report = await writer.stop();
      await watch.stop();
    }
    console.log(`[autogrow] wrote ${(report.bytes / Mi).toFixed(0)} MiB in ${report.batches} batches; growths ${JSON.stringify(watch.growths.map((g) => [g.fromBytes / Mi, g.toBytes / Mi, g.crossedAt === undefined ? null : g.grownAt - g.crossedAt]))}; fullest ${watch.maxUsedPercent.toFixed(1)}%`);
    expect(report.errors).toEqual([]);
    expect(report.enospc).toBe(0);

    const c = await grow.get();
    expect(conditionOf(c, 'StorageFull')).toMatchObject({ status: 'True', reason: 'AtMaxSize', message: expect.stringContaining('maxSize (160Mi)') });
    // spec stays the user's floor; the size chosen is in status; the claim and its file system are at maxSize.
    expect(c.spec.storage.size).toBe('64Mi');
    expect(c.status!.storage!.data).toMatchObject({ size: '160Mi', reason: expect.stringContaining("grow-1's data volume") });
    const grown = await claim(pvc);
    expect(grown.spec!.resources!.requests!.storage).toBe('160Mi');
    await waitFor('capacity 160Mi', async () => (await claim(pvc)).status?.capacity?.storage === '160Mi', { timeoutMs: 30_000, intervalMs: 250 });
    const fs = await statfs(await claimDir(ns, pvc));
    expect(fs.blocks * fs.bsize).toBe(160 * Mi);
    // 64 → 96 → 144 → 160, none at a full disk.
    expect(watch.growths.map((g) => [g.fromBytes / Mi, g.toBytes / Mi])).toEqual([
      [64, 96],
      [96, 144],
      [144, 160],
    ]);
    expect(watch.maxUsedPercent).toBeLessThan(100);
    const events = (await core().listNamespacedEvent({ namespace: ns, fieldSelector: 'involvedObject.name=grow' })).items.filter((e) => e.reason === 'StorageGrown');
    expect(events.length).toBeGreaterThanOrEqual(3);
    // The WAL volume was not touched (auto-grow is per volume).
    expect((await claim('pgwal-grow-1-0')).spec!.resources!.requests!.storage).toBe('1Gi');
  });

  it('without auto-grow the writer gets ENOSPC and the cluster says StorageFull; raising size recovers it', async () => {
    const writer = new FillWriter(fixed.rw(), { batchRows: 512, pauseMs: 20, stopOnEnospc: true });
    await writer.prepare();
    writer.start();
    await waitFor('ENOSPC', async () => writer.report.enospc > 0, { timeoutMs: 120_000, intervalMs: 250 });
    const report = await writer.stop();
    expect(report.enospc).toBeGreaterThan(0);
    expect(report.errors.at(-1)).toMatch(/could not extend file|No space left on device/);

    const full = await waitFor('StorageFull True', async () => {
      const c = await fixed.get();
      const cond = conditionOf(c, 'StorageFull');
      return cond?.status === 'True' ? cond : undefined;
    }, { timeoutMs: 60_000, intervalMs: 500 });
    expect(full).toMatchObject({ reason: 'AutoGrowDisabled', message: expect.stringContaining('raise spec.storage.size or turn on spec.storage.autoGrow') });

    await fixed.patchSpec({ storage: { size: '128Mi' } });
    await waitFor('claim at 128Mi', async () => (await claim('pgdata-fixed-1-0')).status?.capacity?.storage === '128Mi', { timeoutMs: 60_000, intervalMs: 250 });
    await waitFor('StorageFull False', async () => conditionOf(await fixed.get(), 'StorageFull')?.status === 'False', { timeoutMs: 60_000, intervalMs: 500 });
    // Writable again (PostgreSQL may have restarted meanwhile: retry the connection).
    const again = new FillWriter(fixed.rw(), { batchRows: 64, pauseMs: 100 });
    await waitFor('a write after the growth', async () => {
      again.start();
      await new Promise((r) => setTimeout(r, 500));
      const r = await again.stop();
      return r.batches > 0;
    }, { timeoutMs: 60_000, intervalMs: 500 });
    expect((await fixed.get()).spec.storage.size).toBe('128Mi');
  });
});
