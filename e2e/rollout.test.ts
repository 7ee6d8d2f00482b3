// Rolling changes on real PostgreSQL: a minor upgrade (16.13 → 16.15, real builds of both) of a
// 3-instance cluster with synchronous commit, under a write load with a ledger. Replicas first,
// one at a time, then exactly one switchover and the old primary last; no acknowledged write lost.
// Settings: a reload-only change restarts nothing; a restart-requiring one rolls; lowering
// max_connections restarts the primary first, in place. A broken template stops the rollout at
// its first instance, and reverting it heals that one. (Major versions: major-upgrade.test.ts.)
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LABELS } from '../src/api/constants.js';
import { startProcessKubelet, type ProcessKubelet } from './kubelet/index.js';
import { createTestNamespace, deleteTestNamespace, kubeconfigPath, waitFor } from './harness/env.js';
import { HaCluster } from './harness/ha-cluster.js';
import { kubectlOk } from './harness/kubectl.js';
import { REPO_ROOT, ensureBuilt, startOperator, type RunningOperator } from './harness/operator.js';
import { query } from './harness/postgres.js';

const NAME = 'roll-db';
const INSTANCES = [`${NAME}-1`, `${NAME}-2`, `${NAME}-3`];

describe('rolling changes', () => {
  let ns: string;
  let kubelet: ProcessKubelet;
  let operator: RunningOperator;
  let db: HaCluster;

  const podUids = async () => (await kubectlOk(['get', 'pods', '-n', ns, '-l', `${LABELS.cluster}=${NAME}`, '-o', 'jsonpath={range .items[*]}{.metadata.uid}{" "}{end}'])).trim().split(' ').sort();
  const setting = async (name: string) => Promise.all(INSTANCES.map(async (i) => (await query<{ v: string }>(db.podConfig(i, 5000), `SELECT current_setting('${name}') AS v`))[0]!.v));
  /** RollingUpdate Event messages in creation order (events of one second tie on their timestamps; resourceVersions grow). */
  const stepMessages = async () =>
    (await kubectlOk(['get', 'events', '-n', ns, '--field-selector', `involvedObject.name=${NAME},reason=RollingUpdate`, '-o', 'jsonpath={range .items[*]}{.metadata.resourceVersion}|{.message}{"\\n"}{end}']))
      .trim()
      .split('\n')
      .map((line) => [Number(line.slice(0, line.indexOf('|'))), line.slice(line.indexOf('|') + 1)] as const)
      .sort((a, b) => a[0] - b[0])
      .map(([, message]) => message);
  const versions = async () => Promise.all(INSTANCES.map(async (i) => (await query<{ v: string }>(db.podConfig(i, 5000), "SELECT current_setting('server_version') AS v"))[0]!.v));

  beforeAll(async () => {
    ensureBuilt();
    ns = await createTestNamespace('rollout');
    kubelet = await startProcessKubelet({ kubeconfigPath: kubeconfigPath(), repoRoot: REPO_ROOT });
    operator = await startOperator({ watchNamespaces: [ns] });
    console.log(`[rollout] kubelet log ${kubelet.logPath}; operator log ${operator.logPath}`);
    db = new HaCluster(kubelet, ns, NAME);
    await db.create((c) => {
      c.spec.version = '16.13';
      c.spec.highAvailability = { ...c.spec.highAvailability, synchronousCommit: true };
    });
  }, 600_000);

  afterAll(async () => {
    await operator?.stop();
    await kubelet?.stop();
    if (ns) await deleteTestNamespace(ns);
  });

  it('a minor upgrade goes replica by replica, then one switchover, with no acknowledged write lost', async () => {
    const before = await db.healthy(3, 300_000);
    expect(before.status!.version).toBe('16.13');
    expect(await versions()).toEqual(['16.13', '16.13', '16.13']);
    const oldPrimary = before.status!.currentPrimary!;
    const transitionsBefore = (await db.primaryLease())?.spec?.leaseTransitions ?? 0;

    const run = await db.changeUnderLoad('ledger_minor', { version: '16.15' }, 'every instance on 16.15 and the cluster Healthy', async (c) => {
      if (c.status?.phase !== 'Healthy' || c.status.rollout || c.status.readyInstances !== 3) return false;
      return (await versions().catch(() => [])).every((v) => v === '16.15');
    });
    console.log(`[rollout] minor upgrade 16.13 → 16.15: ${run.acknowledged} writes acknowledged, longest gap ${run.gapMs} ms, ${run.lost.length} lost`);
    expect(run.lost).toEqual([]);

    const after = await db.get();
    expect(after.status!.version).toBe('16.15');
    expect(after.status!.currentPrimary).not.toBe(oldPrimary);
    // Exactly one switchover: the primary Lease moved once.
    expect((await db.primaryLease())?.spec?.leaseTransitions).toBe(transitionsBefore + 1);
    expect(after.status!.conditions!.find((c) => c.type === 'RollingUpdate')).toMatchObject({ status: 'False', reason: 'UpToDate' });
    // The operator's per-cluster metrics saw it: one switchover, the cluster Ready.
    const mine = (l: Record<string, string>) => l.namespace === ns && l.cluster === NAME;
    expect(await operator.counter('pgpilot_cluster_switchovers_total', mine)).toBe(1);
    expect(await operator.counter('pgpilot_cluster_condition', (l) => mine(l) && l.type === 'Ready' && l.status === 'True')).toBe(1);
    expect(await operator.counter('pgpilot_cluster_phase', (l) => mine(l) && l.phase === 'Healthy')).toBe(1);

    // The steps, in the order the operator took them: both replicas before the switchover, the old primary after it.
    const steps = await stepMessages();
    const updating = (instance: string) => steps.findIndex((m) => new RegExp(`updated; updating (replica )?${instance}\\b`).test(m));
    const switchover = steps.findIndex((m) => m.includes(`switching over from ${oldPrimary}`));
    expect(switchover, steps.join('\n')).toBeGreaterThan(-1);
    for (const replica of INSTANCES.filter((i) => i !== oldPrimary)) {
      expect(updating(replica), steps.join('\n')).toBeGreaterThan(-1);
      expect(updating(replica), steps.join('\n')).toBeLessThan(switchover);
    }
    expect(updating(oldPrimary), steps.join('\n')).toBeGreaterThan(switchover);
  });

  it('a setting a reload applies restarts nothing; one that needs a restart, and a resources change, roll through the instances', async () => {
    await db.healthy(3);
    const before = await podUids();

    await db.patchSpec({ postgresql: { parameters: { work_mem: '8MB' } } });
    await waitFor('work_mem 8MB on every instance', async () => (await setting('work_mem').catch(() => [])).every((v) => v === '8MB'), { timeoutMs: 60_000 });
    expect(await podUids()).toEqual(before);

    await db.patchSpec({ postgresql: { parameters: { work_mem: '8MB', max_connections: '120' } } });
    await waitFor('max_connections 120 on every instance, the rollout done', async () => {
      const c = await db.get();
      if (c.status?.phase !== 'Healthy' || c.status.rollout) return false;
      return (await setting('max_connections').catch(() => [])).every((v) => v === '120');
    }, { timeoutMs: 300_000 });
    const after = await podUids();
    for (const pod of before) expect(after).not.toContain(pod);

    // A resources change (the tuned settings follow the memory limit) rolls the same way,
    // also with spec.primary pinning the primary: the rollout's switchover first, then the pinned
    // instance takes the role back (two switchovers; the rollout is not held by the pin).
    const pinned = (await db.get()).status!.currentPrimary!;
    await db.patchSpec({ primary: pinned });
    const transitions = (await db.primaryLease())?.spec?.leaseTransitions ?? 0;
    await db.patchSpec({ resources: { requests: { memory: '300Mi' }, limits: { memory: '600Mi' } } });
    await waitFor('every pod replaced for the new memory request, the rollout done, the pinned primary back', async () => {
      const c = await db.get();
      return c.status?.phase === 'Healthy' && !c.status.rollout && c.status.currentPrimary === pinned && (await podUids()).every((u) => !after.includes(u));
    }, { timeoutMs: 300_000 });
    expect((await db.primaryLease())?.spec?.leaseTransitions).toBe(transitions + 2);
    // The tuning followed the new memory, says why, and every instance runs it.
    const tuning = (await db.get()).status!.tuning!;
    // (The limit, not the request: what the instance may use.)
    expect(tuning).toMatchObject({ profile: 'mixed', memory: '600Mi' });
    expect(tuning.settings.find((x) => x.name === 'effective_cache_size')).toMatchObject({ value: '450MB', reason: expect.stringContaining('75% of 600Mi') as string });
    expect(await setting('effective_cache_size')).toEqual(['450MB', '450MB', '450MB']);
    await db.patchSpec({ primary: null });
  });

  it('lowering max_connections restarts the primary first, in place and writable (no promotion, same timeline), then the replicas; nothing lost', async () => {
    const before = await db.healthy(3);
    const primary = before.status!.currentPrimary!;
    const transitions = (await db.primaryLease())?.spec?.leaseTransitions ?? 0;
    const timeline = async () => (await query<{ t: number }>(db.podConfig(primary, 5000), 'SELECT timeline_id AS t FROM pg_control_checkpoint()'))[0]!.t;
    const timelineBefore = await timeline();
    const podsBefore = await podUids();
    const events = await stepMessages();

    const run = await db.changeUnderLoad('ledger_lower', { postgresql: { parameters: { work_mem: '8MB', max_connections: '110' } } }, 'max_connections 110 on every instance, the rollout done', async (c) => {
      if (c.status?.phase !== 'Healthy' || c.status.rollout) return false;
      return (await setting('max_connections').catch(() => [])).every((v) => v === '110');
    });
    console.log(`[rollout] lowering max_connections: ${run.acknowledged} writes acknowledged, longest gap ${run.gapMs} ms, ${run.lost.length} lost`);
    expect(run.lost).toEqual([]);
    const after = await db.get();
    // The primary kept its role: no switchover, no failover, and it came back writable rather than promoted.
    expect(after.status!.currentPrimary).toBe(primary);
    expect((await db.primaryLease())?.spec?.leaseTransitions).toBe(transitions);
    expect(await timeline()).toBe(timelineBefore);
    for (const pod of podsBefore) expect(await podUids()).not.toContain(pod);

    const steps = (await stepMessages()).slice(events.length);
    const first = steps.findIndex((m) => m.includes(`restarting the primary ${primary} in place first: the change lowers max_connections`));
    expect(first, steps.join('\n')).toBeGreaterThan(-1);
    for (const replica of INSTANCES.filter((i) => i !== primary)) {
      const at = steps.findIndex((m) => new RegExp(`updated; updating replica ${replica}\\b`).test(m));
      expect(at, steps.join('\n')).toBeGreaterThan(first);
    }
  });

  it('a rollout whose new pod never becomes ready stops there, says why, and resumes when the spec is reverted', async () => {
    await db.healthy(3);
    const podsBefore = await podUids();
    await db.patchSpec({ imageName: 'example.invalid/no-such-image:1' });
    const stuck = await waitFor('RollingUpdate waiting on the broken instance', async () => {
      const c = (await db.get()).status?.conditions?.find((x) => x.type === 'RollingUpdate');
      return c?.status === 'True' && /waiting for \S+ to (be ready|come back)/.test(c.message) ? c : undefined;
    }, { timeoutMs: 60_000 });
    const broken = /waiting for (\S+) to/.exec(stuck.message)![1]!;
    // A few more passes: still only that one instance on the new template, the rest untouched.
    await new Promise((r) => setTimeout(r, 5000));
    const during = await podUids();
    expect(during.filter((u) => !podsBefore.includes(u))).toHaveLength(1);
    expect((await db.get()).status!.rollout).toMatchObject({ updated: 0, total: 3 });
    console.log(`[rollout] stuck on ${broken}: ${stuck.message}`);

    await db.patchSpec({ imageName: null });
    const healed = await db.healthy(3, 300_000);
    expect(healed.status!.rollout).toBeUndefined();
    // Only the broken instance was replaced again; the others never restarted.
    const after = await podUids();
    expect(after.filter((u) => podsBefore.includes(u))).toHaveLength(2);
  });
});
