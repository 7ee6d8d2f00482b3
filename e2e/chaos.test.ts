// Chaos: one 3-instance cluster (synchronous commit ANY 1, WAL archiving to a local S3 server)
// whose primary fails again and again — postmaster killed, pod killed, frozen, partitioned, the
// operator killed right after it claimed the primary role — cycling through the kinds, always on
// whichever instance is primary at the time. After each fault: writes resume through -rw, the old
// primary is a streaming replica again (cluster Healthy, role label `replica`), and the old
// primary acknowledged no write after another instance became primary (the old-primary probe).
// At the end every write ever acknowledged through -rw is on every instance.
//
// PGPILOT_CHAOS_FAULTS (default 15) sets the number of faults; PGPILOT_CHAOS_KINDS (comma list of
// fault kinds) the cycle, e.g. to repeat one kind while working on it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startS3rver, S3RVER_ACCESS_KEY, S3RVER_SECRET_KEY, type S3rver } from '../test/support/s3rver.js';
import { startProcessKubelet, type ProcessKubelet } from './kubelet/index.js';
import { createTestNamespace, kubeconfigPath, waitFor } from './harness/env.js';
import { FAULT_KINDS, FAULTS, HaCluster, formatFaultRun, type FaultKind, type FaultRun } from './harness/ha-cluster.js';
import { OperatorHandle, REPO_ROOT, ensureBuilt } from './harness/operator.js';
import { LedgerWriter, OldPrimaryProbe, type WriterReport } from './harness/postgres.js';
import { tearDown } from './harness/teardown.js';
import { errorText } from '../src/util/error-text.js';

const NAME = 'chaos-db';
const BUCKET = 'pgpilot-chaos';
const LEDGER = 'chaos_ledger';
const PROBE_TABLE = 'old_primary_probe';
const FAULT_COUNT = Number(process.env.PGPILOT_CHAOS_FAULTS ?? 15);
const KINDS: FaultKind[] = process.env.PGPILOT_CHAOS_KINDS
  ? process.env.PGPILOT_CHAOS_KINDS.split(',').map((k) => {
      if (!(k in FAULTS)) throw new Error(`PGPILOT_CHAOS_KINDS: unknown fault kind ${k} (kinds: ${FAULT_KINDS.join(', ')})`);
      return k as FaultKind;
    })
  : FAULT_KINDS;
const FAULT_TIMEOUT_MS = 120_000;
/** No fault starts after this much of the test (15 min timeout): the summary and the ledger check still run. */
const FAULTS_BUDGET_MS = 11 * 60_000;

describe('chaos: the primary fails again and again, and the cluster heals every time', () => {
  let ns: string;
  let kubelet: ProcessKubelet;
  let operator: OperatorHandle;
  let s3: S3rver;
  let db: HaCluster;

  beforeAll(async () => {
    ensureBuilt();
    s3 = await startS3rver({ buckets: [BUCKET] });
    ns = await createTestNamespace('chaos');
    kubelet = await startProcessKubelet({ kubeconfigPath: kubeconfigPath(), repoRoot: REPO_ROOT, dataDir: process.env.PGPILOT_E2E_KUBELET_DIR });
    // The only operator acting on the cluster (startOperator keeps the chart's Deployment at 0): the one this test kills and restarts.
    operator = await OperatorHandle.start({ watchNamespaces: [ns] });
    console.log(`[chaos] kubelet log ${kubelet.logPath}; operator log ${operator.current.logPath}; s3rver ${s3.endpoint}`);
    db = new HaCluster(kubelet, ns, NAME);
    await db.createArchived({ endpoint: s3.endpoint, accessKeyId: S3RVER_ACCESS_KEY, secretAccessKey: S3RVER_SECRET_KEY }, BUCKET);
  }, 600_000);

  afterAll(() => tearDown({ operator, kubelet, namespace: ns, s3 }));

  it(`${FAULT_COUNT} faults in a row (${KINDS.join(', ')}, …): no acknowledged write lost, no write on an old primary, every old primary rejoins`, async () => {
    const t0 = Date.now();
    await db.healthy(3, 300_000);
    console.log(`[chaos] healthy; ContinuousArchiving: ${await db.archiving()}`);
    await waitFor('the probe table, created through -rw', () => OldPrimaryProbe.prepare(db.rw(), PROBE_TABLE).then(() => true), { timeoutMs: 60_000 });
    const writer = new LedgerWriter(db.rw(), LEDGER);
    await waitFor(`table ${LEDGER} created through -rw`, () => writer.prepare().then(() => true), { timeoutMs: 60_000 });
    writer.start();

    const runs: FaultRun[] = [];
    let halted: string | undefined;
    let report: WriterReport;
    try {
      for (let i = 1; i <= FAULT_COUNT; i++) {
        const kind = KINDS[(i - 1) % KINDS.length]!;
        if (Date.now() - t0 > FAULTS_BUDGET_MS) {
          halted = `the time budget (${FAULTS_BUDGET_MS / 60_000} min) was spent after ${i - 1} fault(s); the remaining ${FAULT_COUNT - i + 1} were not run`;
          break;
        }
        let run: FaultRun;
        try {
          run = await db.runFault(kind, { writer, probeTable: PROBE_TABLE, index: i, operator, timeoutMs: FAULT_TIMEOUT_MS, log: (l) => console.log(`[chaos] ${l}`) });
        } catch (err) {
          halted = `${errorText(err)}; the remaining ${FAULT_COUNT - i + 1} fault(s) were not run`;
          break;
        }
        runs.push(run);
        console.log(`[chaos] ${formatFaultRun(run)}`);
        for (const n of run.notes) console.log(`[chaos]     note: ${n}`);
        for (const p of run.problems) console.log(`[chaos]     PROBLEM: ${p}`);
        if (Object.keys(run.probeErrors ?? {}).length) console.log(`[chaos]     probe errors: ${JSON.stringify(run.probeErrors)}`);
        expect.soft(run.problems, `fault #${i} ${kind} on ${run.oldPrimary} (→ ${run.newPrimary ?? 'no new primary'})`).toEqual([]);
        // A cluster left unhealed gets the next fault's wait for Healthy (60 s) as a last chance;
        // if it does not heal by then, the sequence stops (halted) rather than fault a broken cluster.
      }
    } finally {
      report = await writer.stop();
    }

    // Every acknowledged write, on every instance (read from each pod directly).
    await db.healthy(3, 120_000).catch(() => undefined);
    const missing = await db.missingOnEveryInstance(LEDGER, report.acknowledged, 60_000);
    const lost = Object.fromEntries(Object.entries(missing).filter(([, m]) => typeof m === 'string' || m.length > 0).map(([i, m]) => [i, typeof m === 'string' ? m : `${m.length} missing: ${m.slice(0, 20).join(', ')}${m.length > 20 ? ', …' : ''}`]));

    console.log(`\n[chaos] ${runs.length} fault(s) in ${Math.round((Date.now() - t0) / 1000)} s; ${report.acknowledged.length} writes acknowledged through -rw (${report.errors} errors on the way, longest gap ${report.longestGapMs} ms)`);
    for (const r of runs) console.log(`[chaos] ${formatFaultRun(r)}`);
    for (const k of KINDS) {
      const of = runs.filter((r) => r.kind === k);
      if (of.length) console.log(`[chaos] ${k}: ${of.filter((r) => r.problems.length === 0).length}/${of.length} clean — ${FAULTS[k].description}`);
    }
    console.log(`[chaos] acknowledged writes missing per instance: ${JSON.stringify(lost)}`);
    console.log(`[chaos] operator logs: ${[...operator.logPaths, operator.current.logPath].join(', ')}`);

    expect.soft(halted, 'the fault sequence ran to the end').toBeUndefined();
    expect.soft(runs.length, 'faults run').toBe(FAULT_COUNT);
    expect(lost, `every acknowledged write (${report.acknowledged.length}) is on every instance`).toEqual({});
  }, 15 * 60_000);
});
