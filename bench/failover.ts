// Benchmark `failover`: a 3-instance cluster with synchronous commit on the process kubelet.
//   - failover: SIGKILL of the primary under a write load through <cluster>-rw, N trials
//     (PGPILOT_BENCH_TRIALS, default 10): time from the kill to the first acknowledged write;
//   - switchover: the longest gap between acknowledged writes (3 trials);
//   - acknowledged writes lost over all trials (checked id by id);
//   - false failovers during a saturating pgbench run (PGPILOT_BENCH_PGBENCH_SECONDS, default 300).
import { spawn } from 'node:child_process';
import { startControlPlane } from '../e2e/harness/control-plane.js';
import { E2E_KUBECONFIG_ENV, createTestNamespace } from '../e2e/harness/env.js';
import { HaCluster } from '../e2e/harness/ha-cluster.js';
import { REPO_ROOT, ensureBuilt, startOperator, type RunningOperator } from '../e2e/harness/operator.js';
import { startProcessKubelet, type ProcessKubelet } from '../e2e/kubelet/index.js';
import { printReport } from './report.js';

const TRIALS = Number(process.env.PGPILOT_BENCH_TRIALS ?? 10);
const SWITCHOVERS = 3;
const PGBENCH_SECONDS = Number(process.env.PGPILOT_BENCH_PGBENCH_SECONDS ?? 300);
const PGBENCH = '/usr/lib/postgresql/15/bin/pgbench';

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: { ...process.env, ...env } });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    child.stderr.on('data', (d: Buffer) => (out += d));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`${cmd} exited ${code}: ${out.slice(-500)}`))));
  });
}

async function main(): Promise<void> {
  ensureBuilt();
  const cp = await startControlPlane({});
  process.env[E2E_KUBECONFIG_ENV] = cp.kubeconfigPath;
  let kubelet: ProcessKubelet | undefined;
  let operator: RunningOperator | undefined;
  try {
    const ns = await createTestNamespace('bench-failover');
    kubelet = await startProcessKubelet({ kubeconfigPath: cp.kubeconfigPath, repoRoot: REPO_ROOT });
    operator = await startOperator({ watchNamespaces: [ns] });
    const db = new HaCluster(kubelet, ns, 'bench-db');
    await db.create();
    await db.healthy(3, 300_000);

    const gaps: number[] = [];
    let lost = 0;
    for (let t = 1; t <= TRIALS; t++) {
      await db.healthy(3);
      const r = await db.failover(`ledger_${t}`, (pod) => kubelet!.killContainer(ns, pod));
      gaps.push(r.writeGapMs);
      lost += r.lost.length;
      process.stderr.write(`[failover] trial ${t}/${TRIALS}: ${r.oldPrimary} → ${r.newPrimary}, writes back after ${r.writeGapMs} ms, lost ${r.lost.length}\n`);
    }
    const switchoverGaps: number[] = [];
    for (let t = 1; t <= SWITCHOVERS; t++) {
      const c = await db.healthy(3);
      const target = c.status!.instanceNames!.find((i) => i !== c.status!.currentPrimary)!;
      const r = await db.switchover(`switch_${t}`, target);
      switchoverGaps.push(r.gapMs);
      lost += r.lost.length;
      process.stderr.write(`[failover] switchover ${t}/${SWITCHOVERS} → ${target}: longest write gap ${r.gapMs} ms\n`);
    }

    // Saturating load: the primary must never be mistaken for failed.
    const before = (await db.healthy(3)).status!.currentPrimary;
    const rw = db.rw();
    const env = { PGHOST: String(rw.host), PGPORT: String(rw.port), PGUSER: String(rw.user), PGPASSWORD: String(rw.password), PGDATABASE: String(rw.database) };
    await run(PGBENCH, ['-i', '-s', '10', '-q'], env);
    process.stderr.write(`[failover] pgbench -c 16 -j 2 for ${PGBENCH_SECONDS} s\n`);
    // Sample the primary throughout: a failover and a failback would cancel out in a before/after look.
    let falseFailovers = 0;
    let last = before;
    const sampler = setInterval(() => {
      void db.get().then((c) => {
        const now = c.status?.currentPrimary;
        if (now && now !== last) falseFailovers++;
        last = now ?? last;
      }).catch(() => {});
    }, 500);
    const pgbench = await run(PGBENCH, ['-c', '16', '-j', '2', '-T', String(PGBENCH_SECONDS), '-P', '30'], env).finally(() => clearInterval(sampler));
    const tps = /tps = ([0-9.]+)/.exec(pgbench)?.[1];

    const result = {
      trials: TRIALS,
      failover_p50_s: Math.round(percentile(gaps, 50)) / 1000,
      failover_max_s: Math.max(...gaps) / 1000,
      switchover_gap_s: Math.max(...switchoverGaps) / 1000,
      lost_acknowledged_writes: lost,
      false_failovers: falseFailovers,
    };
    printReport('failover', result, [
      ['failover (kill → first acknowledged write)', `p50 ${result.failover_p50_s} s, max ${result.failover_max_s} s over ${TRIALS} trials (goal p50 ≤ 2 s, max ≤ 4 s)`],
      ['all failover times (ms)', gaps.join(', ')],
      ['switchover write gap (max of 3)', `${result.switchover_gap_s} s (goal ≤ 1 s)`],
      ['acknowledged writes lost', `${lost} (goal 0; synchronous commit ANY 1)`],
      [`false failovers (pgbench ${PGBENCH_SECONDS} s, ${tps ?? '?'} tps)`, `${falseFailovers} (goal 0)`],
    ]);
  } finally {
    await operator?.stop();
    await kubelet?.stop();
    await cp.stop();
  }
}

await main().catch((err: Error) => {
  console.error(`[failover] failed: ${err.stack ?? err.message}`);
  process.exit(1);
});
