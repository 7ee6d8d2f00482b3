// The replica-autoscaling part of the `autopilot` benchmark: the process kubelet with
// metrics-server v0.8.0 and the real HPA controller. A 2-instance cluster (synchronous commit,
// ANY 1) with spec.autoscaling {min 2, max 4, CPU 70 %, scale-down window 0 s}; per trial, a CPU
// load on the replicas through -ro (harness/cpu-load.ts), then:
//   scale_up_s      load start → a new replica streaming (status.streamingReplicas grows);
//   hpa_reaction_s  load start → spec.instances raised by the HPA (metric resolution 10 s, HPA sync 15 s);
//   clone_s         spec.instances raised → that replica streaming;
//   scale_down_s    load stop → back to 2 ready instances.
// PGPILOT_BENCH_TRIALS (default 3) trials; medians and maxima reported.
import { setTimeout as sleep } from 'node:timers/promises';
import { startCpuLoad } from '../../e2e/harness/cpu-load.js';
import { createTestNamespace, waitFor } from '../../e2e/harness/env.js';
import { HaCluster } from '../../e2e/harness/ha-cluster.js';
import { startMetricsServer } from '../../e2e/harness/metrics-server.js';
import { startOperator } from '../../e2e/harness/operator.js';
import type { ProcessKubelet } from '../../e2e/kubelet/index.js';

const TRIALS = Number(process.env.PGPILOT_BENCH_TRIALS ?? 3);
const NAME = 'bench-as';

interface Trial {
  scaleUpS: number;
  hpaReactionS: number;
  cloneS: number;
  scaleDownS: number;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s[Math.floor((s.length - 1) / 2)]! + s[Math.ceil((s.length - 1) / 2)]!) / 2 : NaN;
};
const round = (x: number) => Math.round(x * 10) / 10;
const say = (m: string) => console.error(`[bench autopilot] ${m}`);

async function trial(db: HaCluster, n: number): Promise<Trial> {
  await db.healthy(2, 300_000);
  const load = startCpuLoad(db.ro(), { clients: 1, maxMs: 240_000 });
  let raisedAt = 0;
  let streamingAt = 0;
  try {
    raisedAt = await waitFor('spec.instances raised by the HPA', async () => ((await db.get()).spec.instances ?? 0) > 2 && Date.now(), { timeoutMs: 180_000, intervalMs: 200 });
    streamingAt = await waitFor('a third instance streaming', async () => ((await db.get()).status?.streamingReplicas ?? 0) >= 2 && Date.now(), { timeoutMs: 180_000, intervalMs: 200 });
  } finally {
    await load.stop();
  }
  const stoppedAt = Date.now();
  await waitFor('back to 2 instances', async () => {
    const c = await db.get();
    return c.spec.instances === 2 && c.status?.instances === 2 && c.status.readyInstances === 2;
  }, { timeoutMs: 300_000, intervalMs: 500 });
  const t: Trial = {
    scaleUpS: (streamingAt - load.startedAt) / 1000,
    hpaReactionS: (raisedAt - load.startedAt) / 1000,
    cloneS: (streamingAt - raisedAt) / 1000,
    scaleDownS: (Date.now() - stoppedAt) / 1000,
  };
  say(`trial ${n}: scale_up ${t.scaleUpS.toFixed(1)} s (HPA ${t.hpaReactionS.toFixed(1)} s + clone ${t.cloneS.toFixed(1)} s), scale_down ${t.scaleDownS.toFixed(1)} s`);
  return t;
}

export interface AutoscaleMetrics {
  scale_up_s: number;
  scale_up_max_s: number;
  hpa_reaction_s: number;
  clone_s: number;
  scale_down_s: number;
  trials: number;
}

/** Runs the trials on a control plane and kubelet the caller started; the per-trial line for the table too. */
export async function measureAutoscale(kubeconfigPath: string, kubelet: ProcessKubelet): Promise<{ metrics: AutoscaleMetrics; perTrial: string }> {
  const metrics = await startMetricsServer({ kubeconfigPath });
  const ns = await createTestNamespace('bench-autoscale');
  const operator = await startOperator({ watchNamespaces: [ns] });
  try {
    const db = new HaCluster(kubelet, ns, NAME);
    await db.create((c) => {
      c.spec.instances = 2;
      c.spec.backup = { enabled: false };
      c.spec.highAvailability = { enabled: true, synchronousCommit: true, synchronousReplicas: 1 };
      c.spec.autoscaling = { min: 2, max: 4, targetCPUUtilizationPercentage: 70, scaleDownStabilizationSeconds: 0 };
    });
    const trials: Trial[] = [];
    for (let i = 1; i <= TRIALS; i++) {
      trials.push(await trial(db, i));
      await sleep(5000);
    }
    const col = (k: keyof Trial) => trials.map((t) => t[k]);
    const out: AutoscaleMetrics = {
      scale_up_s: round(median(col('scaleUpS'))),
      scale_up_max_s: round(Math.max(...col('scaleUpS'))),
      hpa_reaction_s: round(median(col('hpaReactionS'))),
      clone_s: round(median(col('cloneS'))),
      scale_down_s: round(median(col('scaleDownS'))),
      trials: trials.length,
    };
    return { metrics: out, perTrial: trials.map((t) => `${t.scaleUpS.toFixed(1)}/${t.scaleDownS.toFixed(1)}`).join('  ') };
  } finally {
    await operator.stop();
    await metrics.stop();
  }
}
