// Benchmark `failover`: a 3-instance cluster with synchronous commit (ANY 1) and WAL archiving to a
// local S3 server (s3rver), on the process kubelet.
//   - faults of the primary under a write load through <cluster>-rw, PGPILOT_BENCH_TRIALS (default
//     10) of each kind — pod kill, postmaster kill, freeze, network isolation, operator killed
//     right after it claimed the primary role — each run by the harness's runFault (the same code
//     as the chaos e2e test): fault → first acknowledged write (the failover time), fault → the old
//     primary streaming again (rejoin), and the old-primary probe's commits after another instance
//     became primary;
//   - switchover: the longest gap between acknowledged writes (3 trials);
//   - acknowledged writes lost over all trials (checked id by id, on the primary and on every instance);
//   - false failovers during a saturating pgbench run (PGPILOT_BENCH_PGBENCH_SECONDS, default 300).
// A trial that leaves the cluster unhealed (stuck) is counted, and the remaining trials run on a
// new cluster.
import { spawn } from 'node:child_process';
import { startS3rver, S3RVER_ACCESS_KEY, S3RVER_SECRET_KEY, type S3rver } from '../test/support/s3rver.js';
import { startControlPlane } from '../e2e/harness/control-plane.js';
import { E2E_KUBECONFIG_ENV, createTestNamespace, waitFor } from '../e2e/harness/env.js';
import { FAULTS, HaCluster, formatFaultRun, type FaultKind, type FaultRun } from '../e2e/harness/ha-cluster.js';
import { kubectlOk } from '../e2e/harness/kubectl.js';
import { OperatorHandle, REPO_ROOT, ensureBuilt } from '../e2e/harness/operator.js';
import { LedgerWriter, OldPrimaryProbe, missingIds } from '../e2e/harness/postgres.js';
import { startProcessKubelet, type ProcessKubelet } from '../e2e/kubelet/index.js';
import { printReport } from './report.js';

const TRIALS = Number(process.env.PGPILOT_BENCH_TRIALS ?? 10);
const SWITCHOVERS = 3;
const PGBENCH_SECONDS = Number(process.env.PGPILOT_BENCH_PGBENCH_SECONDS ?? 300);
const PGBENCH = '/usr/lib/postgresql/15/bin/pgbench';
/** Pod kill first (today's failover metric), the operator kill last (it needs a new operator each time). */
const KINDS: FaultKind[] = ['pod-kill', 'postmaster-kill', 'freeze', 'isolate', 'operator-kill-after-claim'];
const FAULT_TIMEOUT_MS = 120_000;
const BUCKET = 'pgpilot-bench';
const LEDGER = 'bench_ledger';
const PROBE_TABLE = 'old_primary_probe';

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

/** One cluster and the ledger writer that runs across its faults. */
interface Generation {
  db: HaCluster;
  writer: LedgerWriter;
}

/** What the stages of the benchmark share: the namespace, the operator, making clusters, counting losses. */
interface Bench {
  ns: string;
  operator: OperatorHandle;
  /** A new healthy, archiving cluster with the probe table and a running ledger writer. */
  newGeneration(): Promise<Generation>;
  losses: Losses;
}

/** Acknowledged writes lost, counted generation by generation. */
class Losses {
  lost = 0;
  lostOnAnInstance = 0;
  /** Ledgers that could not be read back (no primary behind -rw, an instance not answering): nothing counted for them. */
  readonly unverified: string[] = [];

  /** Stops a generation's writer and counts its acknowledged writes missing on the primary (-rw) and on any instance. */
  async settle(g: Generation): Promise<void> {
    const report = await g.writer.stop();
    await g.db.healthy(3, 60_000).catch(() => undefined);
    const onPrimary = await waitFor(`ledger of ${g.db.name} read back through -rw`, () => missingIds(g.db.rw(), report.acknowledged, LEDGER).catch(() => undefined), { timeoutMs: 60_000, intervalMs: 250 }).catch(
      () => undefined,
    );
    if (onPrimary) this.lost += onPrimary.length;
    else this.unverified.push(`${g.db.name} through -rw`);
    const perInstance = await g.db.missingOnEveryInstance(LEDGER, report.acknowledged, 60_000);
    const anywhere = new Set<number>();
    for (const [instance, m] of Object.entries(perInstance)) {
      if (Array.isArray(m)) for (const id of m) anywhere.add(id);
      else this.unverified.push(`${instance} (${m})`);
    }
    this.lostOnAnInstance += anywhere.size;
    process.stderr.write(`[failover] ${g.db.name}: ${report.acknowledged.length} writes acknowledged, ${onPrimary ? onPrimary.length : 'unreadable:'} missing on the primary, ${anywhere.size} missing on some instance\n`);
  }
}

async function main(): Promise<void> {
  ensureBuilt();
  const cp = await startControlPlane({});
  process.env[E2E_KUBECONFIG_ENV] = cp.kubeconfigPath;
  let kubelet: ProcessKubelet | undefined;
  let operator: OperatorHandle | undefined;
  let s3: S3rver | undefined;
  try {
    s3 = await startS3rver({ buckets: [BUCKET] });
    const ns = await createTestNamespace('bench-failover');
    kubelet = await startProcessKubelet({ kubeconfigPath: cp.kubeconfigPath, repoRoot: REPO_ROOT });
    // The only operator (startOperator keeps the chart's Deployment at 0): the one the operator-kill fault kills.
    operator = await OperatorHandle.start({ watchNamespaces: [ns] });
    const s3Access = { endpoint: s3.endpoint, accessKeyId: S3RVER_ACCESS_KEY, secretAccessKey: S3RVER_SECRET_KEY };

    let generations = 0;
    const newGeneration = async (): Promise<Generation> => {
      const db = new HaCluster(kubelet!, ns, generations === 0 ? 'bench-db' : `bench-db-${generations + 1}`);
      generations++;
      await db.createArchived(s3Access, BUCKET);
      await db.healthy(3, 300_000);
      process.stderr.write(`[failover] ${db.name} healthy; ContinuousArchiving: ${await db.archiving()}\n`);
      await waitFor('the probe table, created through -rw', () => OldPrimaryProbe.prepare(db.rw(), PROBE_TABLE).then(() => true), { timeoutMs: 60_000 });
      const writer = new LedgerWriter(db.rw(), LEDGER);
      await waitFor(`table ${LEDGER} created through -rw`, () => writer.prepare().then(() => true), { timeoutMs: 60_000 });
      writer.start();
      return { db, writer };
    };
    const bench: Bench = { ns, operator, newGeneration, losses: new Losses() };

    const trials = await faultTrials(bench);
    const db = await healthyAfterFaults(bench, trials.last);
    const switchoverGaps = await switchovers(db, bench.losses);
    const load = await saturatingLoad(db);
    // The observation step asks each instance's agent once per pass: at most 3 here (fewer while one is down).
    const statusCalls = await operator.current.counter('pgpilot_agent_status_calls_total');
    const passes = await operator.current.counter('pgpilot_reconcile_total');
    const result = failoverMetrics(trials, switchoverGaps, bench.losses, load, statusCalls / Math.max(passes, 1));
    printReport('failover', result, reportRows(result, trials, bench.losses, load, { statusCalls, passes }));
  } finally {
    await operator?.stop();
    await kubelet?.stop();
    await s3?.stop();
    await cp.stop();
  }
}

/** The fault runs of every kind; the trials that left a cluster unhealed, and those skipped. */
interface Trials {
  runs: FaultRun[];
  unhealed: string[];
  skipped: string[];
  /** The generation the last trial ran on (its writer still running). */
  last: Generation;
}

/** TRIALS faults of each kind, each on the current generation; an unhealed cluster is replaced by a new one. */
async function faultTrials(bench: Bench): Promise<Trials> {
  const trials: Trials = { runs: [], unhealed: [], skipped: [], last: await bench.newGeneration() };
  let index = 0;
  for (const kind of KINDS) {
    let unhealedInARow = 0;
    for (let t = 1; t <= TRIALS; t++) {
      if (unhealedInARow >= 2) {
        // The same fault left two clusters in a row unhealed: more trials would only repeat that, slowly.
        trials.skipped.push(`${kind}: ${TRIALS - t + 1} trial(s)`);
        break;
      }
      index++;
      const r = await faultTrial(bench, trials.last, kind, t, index);
      if (r) trials.runs.push(r);
      unhealedInARow = !r || r.stuck ? unhealedInARow + 1 : 0;
      if (!r || r.stuck) {
        trials.unhealed.push(`${kind} #${t}`);
        process.stderr.write(`[failover] ${trials.last.db.name} did not heal: the remaining trials run on a new cluster\n`);
        await bench.losses.settle(trials.last);
        await kubectlOk(['delete', 'pgc', trials.last.db.name, '-n', bench.ns, '--wait=false']);
        trials.last = await bench.newGeneration();
      }
    }
  }
  return trials;
}

/** One fault with its report lines; undefined when runFault itself failed (the cluster was not healthy before it). */
async function faultTrial(bench: Bench, gen: Generation, kind: FaultKind, t: number, index: number): Promise<FaultRun | undefined> {
  try {
    const r = await gen.db.runFault(kind, { writer: gen.writer, probeTable: PROBE_TABLE, index, operator: bench.operator, timeoutMs: FAULT_TIMEOUT_MS });
    process.stderr.write(`[failover] ${kind} ${t}/${TRIALS}: ${formatFaultRun(r)}\n`);
    for (const p of r.problems) process.stderr.write(`[failover]     ${p}\n`);
    return r;
  } catch (err) {
    process.stderr.write(`[failover] ${kind} ${t}/${TRIALS}: ${(err as Error).message}\n`);
    return undefined;
  }
}

/** Settles the last generation; the cluster the switchovers and pgbench run on (a new one when the last fault left it broken). */
async function healthyAfterFaults(bench: Bench, last: Generation): Promise<HaCluster> {
  await bench.losses.settle(last);
  const db = last.db;
  if (await db.healthy(3, 60_000).then(() => true, () => false)) return db;
  // The switchovers and the pgbench run need a healthy cluster: the last fault left this one broken.
  process.stderr.write(`[failover] ${db.name} is not healthy (${await db.describeState()}): switchovers and pgbench run on a new cluster\n`);
  await kubectlOk(['delete', 'pgc', db.name, '-n', bench.ns, '--wait=false']);
  const fresh = await bench.newGeneration();
  await bench.losses.settle(fresh);
  return fresh.db;
}

/** SWITCHOVERS switchovers to a replica under load; the longest write gap of each. */
async function switchovers(db: HaCluster, losses: Losses): Promise<number[]> {
  const gaps: number[] = [];
  for (let t = 1; t <= SWITCHOVERS; t++) {
    const c = await db.healthy(3);
    const target = c.status!.instanceNames!.find((i) => i !== c.status!.currentPrimary)!;
    const r = await db.switchover(`switch_${t}`, target);
    gaps.push(r.gapMs);
    losses.lost += r.lost.length;
    process.stderr.write(`[failover] switchover ${t}/${SWITCHOVERS} → ${target}: longest write gap ${r.gapMs} ms\n`);
  }
  return gaps;
}

/** The pgbench run: how often the primary changed meanwhile, its throughput, why it stopped early if it did. */
interface Load {
  falseFailovers: number;
  tps: string | undefined;
  aborted: string | undefined;
}

/** Saturating load: the primary must never be mistaken for failed. */
async function saturatingLoad(db: HaCluster): Promise<Load> {
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
  // pgbench gives up on the first lost connection (a backend killed under the pod's memory
  // limit, say): reported with what it managed, not a reason to lose every other number.
  const pgbenchStarted = Date.now();
  const pgbench = await run(PGBENCH, ['-c', '16', '-j', '2', '-T', String(PGBENCH_SECONDS), '-P', '30'], env)
    .then((out) => ({ out, aborted: undefined as string | undefined }))
    .catch((err: Error) => ({ out: err.message, aborted: `${/error: .*$/m.exec(err.message)?.[0] ?? err.message.slice(0, 200)} after ${Math.round((Date.now() - pgbenchStarted) / 1000)} s` }))
    .finally(() => clearInterval(sampler));
  return { falseFailovers, tps: /tps = ([0-9.]+)/.exec(pgbench.out)?.[1], aborted: pgbench.aborted };
}

// A write gap or rejoin that never ended within the bound counts as the bound (a lower bound, marked ≥ below).
const of = (runs: FaultRun[], k: FaultKind) => runs.filter((r) => r.kind === k);
const gapsOf = (runs: FaultRun[], k: FaultKind) => of(runs, k).map((r) => r.writeGapMs ?? FAULT_TIMEOUT_MS);
const maxS = (ms: number[]) => (ms.length ? Math.max(...ms) / 1000 : NaN);
const bounded = (ms: Array<number | undefined>) => (ms.some((v) => v === undefined) ? '≥' : '');
// Rejoin is measured where there was a failover (an old primary to rejoin); trials without one are counted apart.
const failedOver = (runs: FaultRun[]) => runs.filter((r) => r.anotherPrimaryAt !== undefined);

type FailoverMetrics = ReturnType<typeof failoverMetrics>;

function failoverMetrics(trials: Trials, switchoverGaps: number[], losses: Losses, load: Load, statusCallsPerPass: number) {
  const { runs } = trials;
  const killGaps = gapsOf(runs, 'pod-kill');
  return {
    trials: TRIALS,
    failover_p50_s: Math.round(percentile(killGaps, 50)) / 1000,
    failover_max_s: maxS(killGaps),
    freeze_failover_max_s: maxS(gapsOf(runs, 'freeze')),
    isolate_failover_max_s: maxS(gapsOf(runs, 'isolate')),
    postmaster_kill_failover_max_s: maxS(gapsOf(runs, 'postmaster-kill')),
    operator_kill_failover_max_s: maxS(gapsOf(runs, 'operator-kill-after-claim')),
    rejoin_max_s: maxS(failedOver(runs).map((r) => r.rejoinMs ?? FAULT_TIMEOUT_MS)),
    switchover_gap_s: Math.max(...switchoverGaps) / 1000,
    lost_acknowledged_writes: losses.lost,
    lost_on_any_instance: losses.lostOnAnInstance,
    false_failovers: load.falseFailovers,
    pgbench_aborted: load.aborted !== undefined ? 1 : 0,
    old_primary_writes: runs.reduce((n, r) => n + r.oldPrimaryCommits.length, 0),
    rw_old_primary_writes: runs.reduce((n, r) => n + (r.rwOldPrimaryAcks ?? 0), 0),
    faults_with_problems: runs.filter((r) => r.problems.length > 0).length,
    no_failover_trials: runs.length - failedOver(runs).length,
    unhealed_trials: trials.unhealed.length,
    agent_status_calls_per_pass: Math.round(statusCallsPerPass * 100) / 100,
  };
}

function reportRows(result: FailoverMetrics, trials: Trials, losses: Losses, load: Load, agent: { statusCalls: number; passes: number }): Array<[string, string]> {
  const { runs, unhealed, skipped } = trials;
  const killGaps = gapsOf(runs, 'pod-kill');
  const rejoined = failedOver(runs);
  const rows: Array<[string, string]> = [
    ['failover, pod kill (kill → first acknowledged write)', `p50 ${result.failover_p50_s} s, max ${bounded(of(runs, 'pod-kill').map((r) => r.writeGapMs))}${result.failover_max_s} s over ${killGaps.length} trials (goal p50 ≤ 2 s, max ≤ 4 s)`],
    ['all pod-kill failover times (ms)', killGaps.join(', ')],
  ];
  for (const k of KINDS.filter((k) => k !== 'pod-kill')) {
    rows.push([`failover, ${k} (max)`, `${bounded(of(runs, k).map((r) => r.writeGapMs))}${maxS(gapsOf(runs, k))} s over ${of(runs, k).length} trials; all (ms): ${gapsOf(runs, k).join(', ')}`]);
  }
  rows.push(
    ['rejoin (fault → old primary streaming again, max)', `${bounded(rejoined.map((r) => r.rejoinMs))}${result.rejoin_max_s} s; per kind max: ${KINDS.map((k) => `${k} ${bounded(rejoined.filter((r) => r.kind === k).map((r) => r.rejoinMs))}${maxS(rejoined.filter((r) => r.kind === k).map((r) => r.rejoinMs ?? FAULT_TIMEOUT_MS))} s`).join(', ')}`],
    ['trials without a failover (the old primary came back by itself)', `${result.no_failover_trials}; per kind: ${KINDS.map((k) => `${k} ${of(runs, k).filter((r) => r.anotherPrimaryAt === undefined).length}`).join(', ')}`],
    ['switchover write gap (max of 3)', `${result.switchover_gap_s} s (goal ≤ 1 s)`],
    ['acknowledged writes lost', `${losses.lost} on the primary, ${losses.lostOnAnInstance} missing on some instance (goal 0; synchronous commit ANY 1)${losses.unverified.length ? `; not readable, not counted: ${losses.unverified.join(', ')}` : ''}`],
    ['old-primary writes (probe, acknowledged after another became primary)', `${result.old_primary_writes} (goal 0); per kind: ${KINDS.map((k) => `${k} ${of(runs, k).reduce((n, r) => n + r.oldPrimaryCommits.length, 0)}`).join(', ')}`],
    ['-rw writes the old primary acknowledged after another became primary', `${result.rw_old_primary_writes} (goal 0)`],
    ['faults with problems / unhealed', `${result.faults_with_problems} of ${runs.length} / ${unhealed.length}${unhealed.length ? ` (${unhealed.join(', ')}; each followed by a new cluster)` : ''}`],
    ['trials skipped (a kind that left 2 clusters in a row unhealed)', skipped.length ? skipped.join(', ') : 'none'],
    [`false failovers (pgbench ${PGBENCH_SECONDS} s, ${load.tps ?? '?'} tps)`, `${load.falseFailovers} (goal 0)${load.aborted ? `; pgbench aborted: ${load.aborted}` : ''}`],
  );
  rows.push(['agent status calls per reconcile pass (3 instances)', `${result.agent_status_calls_per_pass} (${agent.statusCalls} calls in ${agent.passes} passes of the last operator process; goal ≤ 3)`]);
  for (const k of KINDS) rows.push([`  ${k}`, FAULTS[k].description]);
  return rows;
}

await main().catch((err: Error) => {
  console.error(`[failover] failed: ${err.stack ?? err.message}`);
  process.exit(1);
});
