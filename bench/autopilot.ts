// Benchmark `autopilot`: storage auto-grow on the process kubelet (each claim a tmpfs of its size).
// Two 1-instance clusters with a 64Mi data volume on an expandable StorageClass, each filled by the
// same writer through -rw (1 KiB rows, PGPILOT_BENCH_FILL_ROWS per batch, default 256, every 100 ms):
//   - auto-grow on (threshold 70 %, +50 %, maxSize 160Mi, cooldown 5 s): grow_reaction_s is the
//     time from the data volume crossing the threshold (statfs of the PV's tmpfs, sampled every
//     100 ms) to its claim asking for more (the operator's patch), the worst of the growths;
//     enospc_with_autogrow counts the writer's full-disk errors until StorageFull says AtMaxSize
//     (goal 0);
//   - auto-grow off (the control): enospc_without counts them until the first (goal > 0).
// Then replica autoscaling on the same control plane and kubelet (bench/lib/autoscale-trials.ts):
// scale_up_s, load start → a new replica streaming, through metrics-server and the real HPA.
import { startControlPlane } from '../e2e/harness/control-plane.js';
import { claimDir, conditionOf, createExpandableStorageClass, createFillCluster, deleteStorageClass, FillWriter, GrowthWatch } from '../e2e/harness/autogrow.js';
import { E2E_KUBECONFIG_ENV, createTestNamespace, deleteTestNamespace, waitFor } from '../e2e/harness/env.js';
import { HaCluster } from '../e2e/harness/ha-cluster.js';
import { REPO_ROOT, ensureBuilt, startOperator, type RunningOperator } from '../e2e/harness/operator.js';
import { startProcessKubelet, type ProcessKubelet } from '../e2e/kubelet/index.js';
import { measureAutoscale } from './lib/autoscale-trials.js';
import { printReport } from './report.js';

const THRESHOLD = 70;
const ROWS = Number(process.env.PGPILOT_BENCH_FILL_ROWS ?? 256);
const Mi = 2 ** 20;
const round = (n: number, d = 2) => Math.round(n * 10 ** d) / 10 ** d;

async function main(): Promise<void> {
  ensureBuilt();
  const cp = await startControlPlane({});
  process.env[E2E_KUBECONFIG_ENV] = cp.kubeconfigPath;
  let kubelet: ProcessKubelet | undefined;
  let operator: RunningOperator | undefined;
  let sc: string | undefined;
  try {
    const ns = await createTestNamespace('bench-autopilot');
    sc = `autogrow-${ns}`;
    await createExpandableStorageClass(sc);
    kubelet = await startProcessKubelet({ kubeconfigPath: cp.kubeconfigPath, repoRoot: REPO_ROOT });
    operator = await startOperator({ watchNamespaces: [ns] });
    const grow = new HaCluster(kubelet, ns, 'grow');
    const fixed = new HaCluster(kubelet, ns, 'fixed');
    await createFillCluster(grow, sc, '64Mi', { enabled: true, thresholdPercent: THRESHOLD, increment: '50%', maxSize: '160Mi', cooldownSeconds: 5 });
    await createFillCluster(fixed, sc, '64Mi');
    await Promise.all([grow.healthy(1, 300_000), fixed.healthy(1, 300_000)]);

    // Auto-grow on.
    const pvc = 'pgdata-grow-1-0';
    const watch = new GrowthWatch(ns, pvc, await claimDir(ns, pvc), THRESHOLD);
    const writer = new FillWriter(grow.rw(), { batchRows: ROWS, pauseMs: 100 });
    await writer.prepare();
    watch.start();
    writer.start();
    const t0 = Date.now();
    await waitFor('StorageFull AtMaxSize', async () => conditionOf(await grow.get(), 'StorageFull')?.reason === 'AtMaxSize', { timeoutMs: 300_000, intervalMs: 250 });
    const withGrow = await writer.stop();
    await watch.stop();
    const fillS = (Date.now() - t0) / 1000;
    // Reactions of the growths whose threshold crossing a sample saw.
    const reactions = watch.growths.flatMap((g) => (g.crossedAt === undefined ? [] : [(g.grownAt - g.crossedAt) / 1000]));

    // The control: auto-grow off.
    const control = new FillWriter(fixed.rw(), { batchRows: ROWS, pauseMs: 100, stopOnEnospc: true });
    await control.prepare();
    control.start();
    await waitFor('ENOSPC without auto-grow', async () => control.report.enospc > 0, { timeoutMs: 300_000, intervalMs: 250 });
    const without = await control.stop();

    // Replica autoscaling next, with the auto-grow clusters gone (their pods would share the CPU).
    await operator.stop();
    operator = undefined;
    await deleteTestNamespace(ns, { wait: true, timeoutMs: 120_000 });
    const autoscale = await measureAutoscale(cp.kubeconfigPath, kubelet);

    const result = {
      ...autoscale.metrics,
      grow_reaction_s: round(Math.max(...reactions)),
      grow_reaction_mean_s: round(reactions.reduce((a, b) => a + b, 0) / Math.max(reactions.length, 1)),
      growths: watch.growths.length,
      enospc_with_autogrow: withGrow.enospc,
      enospc_without: without.enospc,
      max_used_percent: round(watch.maxUsedPercent, 1),
    };
    const rate = withGrow.bytes / Mi / fillS;
    printReport('autopilot', result, [
      ['grow_reaction_s (threshold crossed → claim grown, worst; goal ≤ 15)', String(result.grow_reaction_s)],
      ['grow_reaction_mean_s', String(result.grow_reaction_mean_s)],
      ['growths (64Mi → maxSize 160Mi)', watch.growths.map((g) => `${g.fromBytes / Mi}→${g.toBytes / Mi}Mi${g.crossedAt === undefined ? '' : ` in ${((g.grownAt - g.crossedAt) / 1000).toFixed(2)} s`}`).join(', ')],
      ['fullest the data volume got (%)', String(result.max_used_percent)],
      ['writer', `${(withGrow.bytes / Mi).toFixed(0)} MiB of rows in ${fillS.toFixed(0)} s (${rate.toFixed(1)} MiB/s)`],
      ['enospc_with_autogrow (goal 0)', String(result.enospc_with_autogrow)],
      ['enospc_without (the control, > 0)', `${result.enospc_without} after ${(without.bytes / Mi).toFixed(0)} MiB: ${without.errors.at(-1)?.slice(0, 120) ?? ''}`],
      ['autoscaling trials', String(result.trials)],
      ['scale_up_s (load start → new replica streaming)', `median ${result.scale_up_s} s, max ${result.scale_up_max_s} s`],
      ['  hpa_reaction_s (load start → spec.instances raised)', `median ${result.hpa_reaction_s} s`],
      ['  clone_s (raised → streaming)', `median ${result.clone_s} s`],
      ['scale_down_s (load stop → 2 ready instances)', `median ${result.scale_down_s} s`],
      ['per trial (up/down s)', autoscale.perTrial],
    ]);
  } finally {
    await operator?.stop();
    await kubelet?.stop();
    if (sc) await deleteStorageClass(sc);
    await cp.stop();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
