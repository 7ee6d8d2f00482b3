// Benchmark `upgrade`: a 3-instance cluster (PostgreSQL 16.13, synchronous commit with durability
// `preferred`: with no replica streaming, as during a major upgrade's re-clones, the primary
// accepts writes instead of waiting for one) on the process
// kubelet, its operator installed from the Helm chart as its own release (the chart's Deployment,
// in-cluster config: e2e/harness/operator-release.ts). Each trial, under a write load with a
// ledger through <cluster>-rw (HaCluster, as e2e/rollout.test.ts):
//   - a switchover to a replica (spec.primary): its longest write gap, the same-process baseline;
//   - a minor upgrade, 16.13 → 16.15 (even trials go back, 16.15 → 16.13: a minor downgrade is
//     allowed, a major one is not): the longest gap between acknowledged writes, and the time
//     from the spec patch to every instance answering on the new version with the cluster
//     Healthy and no status.rollout;
//   - acknowledged writes lost, read back id by id (the goal is 0).
// Then the operator itself is upgraded (helm upgrade to another image tag: a build that differs
// only in its version string) and the PostgreSQL pods it replaced or restarted are counted once
// the new operator has reconciled the cluster (the goal is 0; e2e/operator-upgrade.test.ts
// asserts it).
// Last (nothing after it can go back to 16), the major upgrade: the cluster loaded with pgbench -i
// -s 30 (the host's 16.15 pgbench, through -rw as the app user), then spec.version from whatever
// 16.x runs to 17.11 under the ledger load, until status.majorUpgrade.phase is Succeeded (the suite
// fails on Failed). major_downtime_s is the longest gap between acknowledged writes (first refused
// → first accepted, to within one write's latency); from status: stoppedAt → primaryStartedAt and
// startedAt → finishedAt; acknowledged writes lost (goal 0). Its floor, pg_upgrade_link_s, is
// measured on the host in the same run (bench/lib/pg-upgrade-floor.ts): the same data set in a
// local 16.15 cluster, then initdb of 17.11 + pg_upgrade --link -j 2 + the 17 server's first
// accepted connection. The goal: major_downtime_s ≤ 1.5 × pg_upgrade_link_s + 5 s.
// PGPILOT_BENCH_TRIALS (default 1) sets the number of trials. Timings are measured, never asserted.
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startControlPlane, type ControlPlane } from '../e2e/harness/control-plane.js';
import { E2E_KUBECONFIG_ENV, createTestNamespace, deleteTestNamespace } from '../e2e/harness/env.js';
import { HaCluster } from '../e2e/harness/ha-cluster.js';
import { REPO_ROOT, ensureBuilt } from '../e2e/harness/operator.js';
import { CHART_APP_VERSION, OperatorRelease, changedStatefulSets, instancePods, instanceStatefulSets, podChanges, requestPass } from '../e2e/harness/operator-release.js';
import { kubectlOk } from '../e2e/harness/kubectl.js';
import { query } from '../e2e/harness/postgres.js';
import { startProcessKubelet, type ProcessKubelet } from '../e2e/kubelet/index.js';
import type { PostgreSQLCluster } from '../src/api/cluster.js';
import type { MajorUpgradeStatus } from '../src/api/cluster-status.js';
import { cacheRoot } from '../test/support/binaries.js';
import { printReport } from './report.js';
import { measureUpgradeFloor, type UpgradeFloor } from './lib/pg-upgrade-floor.js';
import { cleanupRegistry, runTracked, runSuite } from './lib/run.js';

const TRIALS = Number(process.env.PGPILOT_BENCH_TRIALS ?? 1);
const INSTANCES = 3;
const NAME = 'bench-upg';
const OLD = '16.13';
const NEW = '16.15';
const MAJOR = '17.11';
/** pgbench -i scale of the major upgrade's data set (about 450 MB), in the cluster and on the host. */
const SCALE = 30;
/** The host's builds: pgbench for the cluster's load, the floor's old and new PostgreSQL. */
const FLOOR_FROM = '16.15.0';
const FLOOR_TO = '17.11.0';
const PGBENCH = join(cacheRoot(), 'postgresql', FLOOR_FROM, 'bin', 'pgbench');
// Setup and the operator upgrade, each trial, then the major upgrade (its load, the floor, the upgrade).
const TOTAL_TIMEOUT_MS = 30 * 60_000 + TRIALS * 15 * 60_000 + 40 * 60_000;
const say = (msg: string) => process.stderr.write(`[upgrade] ${msg}\n`);

const { onCleanup, cleanup } = cleanupRegistry(say);

interface Trial {
  from: string;
  to: string;
  switchoverGapMs: number;
  minorGapMs: number;
  minorTotalMs: number;
  acknowledged: number;
  lost: number;
}

interface OperatorUpgrade {
  from: string;
  to: string;
  /** helm upgrade started → the new operator pod Ready and leading. */
  handoverMs: number;
  /** Instance pods replaced, added, or with a container restarted. */
  restarts: number;
  details: string[];
  statefulSetsChanged: string[];
}

interface MajorUpgrade {
  from: string;
  to: string;
  /** pgbench -i -s SCALE through -rw (not measured as part of the upgrade). */
  loadMs: number;
  /** Longest gap between acknowledged writes. */
  gapMs: number;
  acknowledged: number;
  lost: number;
  status: MajorUpgradeStatus;
  /** Each status.majorUpgrade.phase as first seen (polled every 0.5 s), ms after the spec patch. */
  phasesSeen: Array<[string, number]>;
  /** The upgrade Job's own step timings (its `<step> took …` log lines). */
  jobSteps: string[];
}

/** What each instance's PostgreSQL says its version is (directly, through its pod address). */
async function versions(db: HaCluster): Promise<string[]> {
  const names = (await db.get()).status?.instanceNames ?? [];
  return Promise.all(names.map(async (i) => (await query<{ v: string }>(db.podConfig(i, 5000), "SELECT current_setting('server_version') AS v"))[0]!.v));
}

/** One trial: a switchover (the baseline), then the minor change from → to, each under a ledger load. */
async function trial(db: HaCluster, t: number, from: string, to: string): Promise<Trial> {
  const c = await db.healthy(INSTANCES, 300_000);
  const target = c.status!.instanceNames!.find((i) => i !== c.status!.currentPrimary)!;
  const sw = await db.switchover(`switch_${t}`, target);
  say(`trial ${t}: switchover → ${target}: longest write gap ${sw.gapMs} ms, ${sw.lost.length} lost`);
  // spec.primary left set pins the primary: after the rollout's own switchover, ha would move the
  // role back to it (a second switchover in the trial). Cleared, the trial measures the rollout's.
  await db.patchSpec({ primary: null });

  await db.healthy(INSTANCES, 300_000);
  // The first call of `done` comes right after the spec patch was accepted: the clock starts there.
  let patchedAt = 0;
  let doneAt = 0;
  const run = await db.changeUnderLoad(`minor_${t}`, { version: to }, `every instance on ${to} and the cluster Healthy`, async (cl: PostgreSQLCluster) => {
    patchedAt ||= Date.now();
    if (cl.status?.phase !== 'Healthy' || cl.status.rollout || cl.status.readyInstances !== INSTANCES) return false;
    const v = await versions(db).catch(() => []);
    if (v.length !== INSTANCES || !v.every((x) => x === to)) return false;
    doneAt = Date.now();
    return true;
  }, 600_000);
  say(`trial ${t}: minor ${from} → ${to}: longest write gap ${run.gapMs} ms, total ${doneAt - patchedAt} ms, ${run.acknowledged} writes acknowledged, ${run.lost.length} lost`);
  return { from, to, switchoverGapMs: sw.gapMs, minorGapMs: run.gapMs, minorTotalMs: doneAt - patchedAt, acknowledged: run.acknowledged, lost: sw.lost.length + run.lost.length };
}

/** helm upgrade of the operator to another image tag; the instance pods it replaced or restarted. */
async function operatorUpgrade(release: OperatorRelease, db: HaCluster): Promise<OperatorUpgrade> {
  await db.healthy(INSTANCES, 300_000);
  const from = CHART_APP_VERSION;
  const to = `${CHART_APP_VERSION}-bench`;
  const podsBefore = await instancePods(db.namespace, db.name);
  const setsBefore = await instanceStatefulSets(db.namespace, db.name);
  const started = Date.now();
  await release.upgrade(to);
  const op = await release.waitForOperator(to, 300_000);
  const handoverMs = Date.now() - started;
  // Two passes of the new operator (the second asked for): a rollout the first one started goes on in the second.
  await release.waitForPasses(op, 1, INSTANCES, 300_000);
  await requestPass(db.namespace, db.name);
  await release.waitForPasses(op, 2, 2 * INSTANCES, 300_000);
  await db.healthy(INSTANCES, 300_000).catch(() => undefined);
  const changes = podChanges(podsBefore, await instancePods(db.namespace, db.name));
  const details = [...changes.replaced.map((p) => `${p} replaced`), ...changes.added.map((p) => `${p} added`), ...changes.restarted];
  const statefulSetsChanged = changedStatefulSets(setsBefore, await instanceStatefulSets(db.namespace, db.name));
  say(`operator ${from} → ${to}: new operator ${op.name} leading after ${handoverMs} ms; ${changes.count} pod restart(s)/replacement(s)`);
  return { from, to, handoverMs, restarts: changes.count, details, statefulSetsChanged };
}

const between = (from: string | undefined, to: string | undefined) => (from && to ? Date.parse(to) - Date.parse(from) : NaN);

/** The message of a JSON log line of the upgrade Job ("pg_upgrade took 1.8 s"), or the line as it is. */
function jobStep(line: string): string {
  try {
    return (JSON.parse(line) as { msg: string }).msg;
  } catch {
    return line;
  }
}

/** pgbench data, then spec.version → MAJOR under the ledger load, until status.majorUpgrade says Succeeded. */
async function majorUpgrade(db: HaCluster, release: OperatorRelease, kubelet: ProcessKubelet): Promise<MajorUpgrade> {
  const c = await db.healthy(INSTANCES, 300_000);
  const from = c.status!.version ?? c.spec.version;
  const rw = db.rw();
  const loadStarted = Date.now();
  await runTracked(PGBENCH, ['-i', '-q', '-s', String(SCALE)], {
    label: `pgbench -i -s ${SCALE} through ${NAME}-rw`,
    env: { ...process.env, PGHOST: String(rw.host), PGPORT: String(rw.port), PGUSER: String(rw.user), PGPASSWORD: String(rw.password), PGDATABASE: String(rw.database) },
    timeoutMs: 1_200_000,
  });
  const loadMs = Date.now() - loadStarted;
  say(`major: ${NAME} loaded with pgbench -i -s ${SCALE} in ${loadMs} ms`);
  await db.healthy(INSTANCES, 300_000);
  let failed: MajorUpgradeStatus | undefined;
  let patchedAt = 0;
  const phasesSeen: Array<[string, number]> = [];
  let jobLog: string | undefined;
  let jobSteps: string[] = [];
  const run = await db.changeUnderLoad('major', { version: MAJOR }, `status.majorUpgrade to ${MAJOR} Succeeded (or Failed) and the cluster Healthy`, async (cl: PostgreSQLCluster) => {
    patchedAt ||= Date.now();
    const mu = cl.status?.majorUpgrade;
    if (mu?.to !== MAJOR) return false;
    if (phasesSeen.at(-1)?.[0] !== mu.phase) phasesSeen.push([mu.phase, Date.now() - patchedAt]);
    // The upgrade Job's log, read while its pod is there (the operator deletes the Job later).
    if (!jobLog && ['Upgrading', 'Starting'].includes(mu.phase)) {
      const pod = (await kubectlOk(['get', 'pods', '-n', db.namespace, '-l', `job-name=${NAME}-upgrade`, '-o', 'jsonpath={.items[0].metadata.name}']).catch(() => '')).trim();
      jobLog = pod ? kubelet.containerLogPath(db.namespace, pod, 'upgrade') : undefined;
    }
    if (jobLog && existsSync(jobLog)) jobSteps = readFileSync(jobLog, 'utf8').split('\n').map(jobStep).filter((m) => / took /.test(m));
    // waitFor retries a throw: a failure ends the wait, and is thrown once the ledger is read back.
    if (mu.phase === 'Failed' && mu.generation === cl.metadata.generation) return !!(failed = mu);
    return mu.phase === 'Succeeded' && cl.status?.phase === 'Healthy' && cl.status.readyInstances === INSTANCES;
  }, 1_800_000);
  if (failed) {
    const op = (await release.pods())[0]?.metadata?.name;
    const opLog = op ? kubelet.containerLogPath(release.opts.namespace, op, 'operator') : undefined;
    throw new Error(`the major upgrade ${from} → ${MAJOR} failed (${failed.reason ?? 'no reason'}): ${failed.message}\nstatus.majorUpgrade: ${JSON.stringify(failed)}\noperator log: ${opLog ?? '?'}; kubelet log: ${kubelet.logPath}`);
  }
  const after = await db.get();
  const v = await versions(db);
  if (!v.every((x) => x === MAJOR)) throw new Error(`after the major upgrade the instances run ${v.join(', ')}, not ${MAJOR}`);
  const status = after.status!.majorUpgrade!;
  say(`major: ${from} → ${MAJOR}: longest write gap ${run.gapMs} ms, stopped → primary started ${between(status.stoppedAt, status.primaryStartedAt)} ms, total ${between(status.startedAt, status.finishedAt)} ms, ${run.acknowledged} writes acknowledged, ${run.lost.length} lost; ${status.message}`);
  say(`major: phases seen ${phasesSeen.map(([p, ms]) => `${p} +${ms} ms`).join(', ')}; upgrade Job: ${jobSteps.join('; ') || '(its log not read)'}`);
  return { from, to: MAJOR, loadMs, gapMs: run.gapMs, acknowledged: run.acknowledged, lost: run.lost.length, status, phasesSeen, jobSteps };
}

async function setUp(): Promise<{ db: HaCluster; release: OperatorRelease; kubelet: ProcessKubelet }> {
  ensureBuilt();
  const cp: ControlPlane = await startControlPlane({});
  onCleanup('the control plane', () => cp.stop());
  process.env[E2E_KUBECONFIG_ENV] = cp.kubeconfigPath;
  const kubelet: ProcessKubelet = await startProcessKubelet({ kubeconfigPath: cp.kubeconfigPath, repoRoot: REPO_ROOT });
  onCleanup('the process kubelet', () => kubelet.stop());
  const ns = await createTestNamespace('bench-upgrade');
  const opNs = await createTestNamespace('bench-upgrade-system');
  // The namespaces go while the kubelet runs (their pods end gracefully), after the operator.
  onCleanup('the namespaces', async () => {
    await deleteTestNamespace(ns, { wait: true, timeoutMs: 120_000 });
    await deleteTestNamespace(opNs, { wait: true, timeoutMs: 60_000 });
  });
  const release = await OperatorRelease.install(kubelet, { release: `pgpilot-bench-${randomBytes(2).toString('hex')}`, namespace: opNs, watchNamespaces: [ns], logLevel: 'info' });
  onCleanup('the operator release', () => release.uninstall());
  say(`operator release ${release.opts.release} running; kubelet log ${kubelet.logPath}`);
  const db = new HaCluster(kubelet, ns, NAME);
  await db.create((c) => {
    c.spec.version = OLD;
    c.spec.instances = INSTANCES;
    c.spec.highAvailability = { ...c.spec.highAvailability, synchronousCommit: true, durability: 'preferred' };
  });
  await db.healthy(INSTANCES, 300_000);
  say(`${NAME} healthy on ${OLD}`);
  return { db, release, kubelet };
}

async function main(): Promise<void> {
  if (!existsSync(PGBENCH)) throw new Error(`${PGBENCH} missing: run scripts/ensure-postgres.sh ${FLOOR_FROM}`);
  const { db, release, kubelet } = await setUp();
  const trials: Trial[] = [];
  for (let t = 1; t <= TRIALS; t++) {
    const [from, to] = t % 2 === 1 ? [OLD, NEW] : [NEW, OLD];
    trials.push(await trial(db, t, from, to));
  }
  const op = await operatorUpgrade(release, db);
  // The floor while the cluster is idle (between the operator upgrade and the major one).
  const floor = await measureUpgradeFloor({ fromBuild: FLOOR_FROM, toBuild: FLOOR_TO, fromMajor: 16, toMajor: 17, scale: SCALE, jobs: 2, onCleanup, say });
  say(`floor: initdb ${floor.initdbMs} ms + pg_upgrade --link ${floor.pgUpgradeMs} ms + start ${floor.startMs} ms = ${floor.totalMs} ms`);
  const major = await majorUpgrade(db, release, kubelet);
  const metrics = upgradeMetrics(trials, op, major, floor);
  printReport('upgrade', metrics, reportRows(metrics, trials, op, major, floor));
}

const s = (ms: number) => Math.round(ms) / 1000;

function upgradeMetrics(trials: Trial[], op: OperatorUpgrade, major: MajorUpgrade, floor: UpgradeFloor) {
  const minorGap = Math.max(...trials.map((t) => t.minorGapMs));
  const switchoverGap = Math.max(...trials.map((t) => t.switchoverGapMs));
  return {
    trials: trials.length,
    minor_write_gap_s: s(minorGap),
    minor_total_s: s(Math.max(...trials.map((t) => t.minorTotalMs))),
    lost_acknowledged_writes: trials.reduce((n, t) => n + t.lost, 0),
    switchover_write_gap_s: s(switchoverGap),
    minor_gap_vs_switchover: Math.round((minorGap / Math.max(switchoverGap, 1)) * 100) / 100,
    restarts_on_operator_upgrade: op.restarts,
    operator_upgrade_handover_s: s(op.handoverMs),
    major_downtime_s: s(major.gapMs),
    major_stopped_to_primary_started_s: s(between(major.status.stoppedAt, major.status.primaryStartedAt)),
    major_total_s: s(between(major.status.startedAt, major.status.finishedAt)),
    major_lost_acknowledged_writes: major.lost,
    pg_upgrade_link_s: s(floor.totalMs),
    major_goal_s: s(1.5 * floor.totalMs + 5000),
    major_within_goal: major.gapMs <= 1.5 * floor.totalMs + 5000,
  };
}

function reportRows(m: ReturnType<typeof upgradeMetrics>, trials: Trial[], op: OperatorUpgrade, major: MajorUpgrade, floor: UpgradeFloor): Array<[string, string]> {
  const rows: Array<[string, string]> = trials.map((t, i) => [
    `trial ${i + 1}: minor ${t.from} → ${t.to}`,
    `write gap ${s(t.minorGapMs)} s, total ${s(t.minorTotalMs)} s; switchover gap ${s(t.switchoverGapMs)} s; ${t.acknowledged} writes acknowledged, ${t.lost} lost`,
  ]);
  rows.push(
    [`minor upgrade write gap (max of ${m.trials})`, `${m.minor_write_gap_s} s (3 instances, synchronous commit; longest gap between acknowledged writes)`],
    ['minor upgrade total (patch → all on the new version, Healthy, no rollout)', `${m.minor_total_s} s`],
    ['switchover write gap (same process, baseline)', `${m.switchover_write_gap_s} s; minor gap / switchover gap = ${m.minor_gap_vs_switchover}`],
    ['acknowledged writes lost', `${m.lost_acknowledged_writes} (goal 0)`],
    [`operator upgrade ${op.from} → ${op.to} (helm upgrade)`, `new operator leading after ${m.operator_upgrade_handover_s} s`],
    ['PostgreSQL pods restarted/replaced by the operator upgrade', `${m.restarts_on_operator_upgrade} (goal 0)${op.details.length ? `: ${op.details.join('; ')}` : ''}`],
    ['StatefulSets changed by the operator upgrade', op.statefulSetsChanged.length ? op.statefulSetsChanged.join('; ') : 'none'],
    [`major upgrade ${major.from} → ${major.to}: data set`, `pgbench -i -s ${SCALE} through -rw in ${s(major.loadMs)} s (3 instances, synchronous commit, durability preferred)`],
    ['major upgrade downtime (longest gap between acknowledged writes)', `${m.major_downtime_s} s (first write refused → first accepted, to within one write's latency); ${major.acknowledged} writes acknowledged`],
    ['major upgrade: stoppedAt → primaryStartedAt (status)', `${m.major_stopped_to_primary_started_s} s`],
    ['major upgrade: startedAt → finishedAt (status, check to Succeeded)', `${m.major_total_s} s`],
    ['major upgrade: phases as first seen (after the spec patch)', major.phasesSeen.map(([p, ms]) => `${p} +${s(ms)} s`).join(', ')],
    ['major upgrade: the upgrade Job\'s own steps', major.jobSteps.join('; ') || '(its log not read)'],
    ['major upgrade: acknowledged writes lost', `${m.major_lost_acknowledged_writes} (goal 0)`],
    [`pg_upgrade --link floor on the host (${floor.from} → ${floor.to}, same data set)`, `${m.pg_upgrade_link_s} s = initdb ${s(floor.initdbMs)} s + pg_upgrade --link -j 2 ${s(floor.pgUpgradeMs)} s + start to first connection ${s(floor.startMs)} s`],
    ['major upgrade goal (1.5 × floor + 5 s)', `${m.major_goal_s} s: ${m.major_within_goal ? 'met' : 'NOT met'} (downtime ${m.major_downtime_s} s)`],
  );
  return rows;
}

await runSuite('upgrade', main, cleanup, TOTAL_TIMEOUT_MS);
