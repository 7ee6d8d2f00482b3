// Rolling changes on real PostgreSQL: a minor upgrade (16.13 → 16.15, real builds of both) of a
// 3-instance cluster with synchronous commit, under a write load with a ledger. Replicas first,
// one at a time, then exactly one switchover and the old primary last; no acknowledged write lost.
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

    // The steps, in the order the operator took them: both replicas before the switchover, the old primary after it.
    // Creation order: events of one second tie on their timestamps; resourceVersions grow with each write.
    const steps = (await kubectlOk(['get', 'events', '-n', ns, '--field-selector', `involvedObject.name=${NAME},reason=RollingUpdate`, '-o', 'jsonpath={range .items[*]}{.metadata.resourceVersion}|{.message}{"\\n"}{end}']))
      .trim()
      .split('\n')
      .map((line) => [Number(line.slice(0, line.indexOf('|'))), line.slice(line.indexOf('|') + 1)] as const)
      .sort((a, b) => a[0] - b[0])
      .map(([, message]) => message);
    const updating = (instance: string) => steps.findIndex((m) => new RegExp(`updated; updating (replica )?${instance}\\b`).test(m));
    const switchover = steps.findIndex((m) => m.includes(`switching over from ${oldPrimary}`));
    expect(switchover, steps.join('\n')).toBeGreaterThan(-1);
    for (const replica of INSTANCES.filter((i) => i !== oldPrimary)) {
      expect(updating(replica), steps.join('\n')).toBeGreaterThan(-1);
      expect(updating(replica), steps.join('\n')).toBeLessThan(switchover);
    }
    expect(updating(oldPrimary), steps.join('\n')).toBeGreaterThan(switchover);
  });

  it('a setting a reload applies restarts nothing; one that needs a restart rolls through the instances', async () => {
    await db.healthy(3);
    const pods = async () => (await kubectlOk(['get', 'pods', '-n', ns, '-l', `${LABELS.cluster}=${NAME}`, '-o', 'jsonpath={range .items[*]}{.metadata.name}={.metadata.uid}{" "}{end}'])).trim().split(' ').sort();
    const setting = async (name: string) => Promise.all(INSTANCES.map(async (i) => (await query<{ v: string }>(db.podConfig(i, 5000), `SELECT current_setting('${name}') AS v`))[0]!.v));
    const before = await pods();

    await db.patchSpec({ postgresql: { parameters: { work_mem: '8MB' } } });
    await waitFor('work_mem 8MB on every instance', async () => (await setting('work_mem').catch(() => [])).every((v) => v === '8MB'), { timeoutMs: 60_000 });
    expect(await pods()).toEqual(before);

    await db.patchSpec({ postgresql: { parameters: { work_mem: '8MB', max_connections: '120' } } });
    await waitFor('max_connections 120 on every instance, the rollout done', async () => {
      const c = await db.get();
      if (c.status?.phase !== 'Healthy' || c.status.rollout) return false;
      return (await setting('max_connections').catch(() => [])).every((v) => v === '120');
    }, { timeoutMs: 300_000 });
    const after = await pods();
    for (const pod of before) expect(after).not.toContain(pod);
  });

  it('lowering max_connections restarts nothing and says why (a primary-first restart is not built yet); setting it back clears it', async () => {
    await db.healthy(3);
    const pods = async () => (await kubectlOk(['get', 'pods', '-n', ns, '-l', `${LABELS.cluster}=${NAME}`, '-o', 'jsonpath={range .items[*]}{.metadata.uid}{" "}{end}'])).trim().split(' ').sort();
    const before = await pods();
    await db.patchSpec({ postgresql: { parameters: { work_mem: '8MB', max_connections: '110' } } });
    const held = await waitFor('RollingUpdate LoweringNotSupported', async () => {
      const c = (await db.get()).status?.conditions?.find((x) => x.type === 'RollingUpdate');
      return c?.reason === 'LoweringNotSupported' ? c : undefined;
    }, { timeoutMs: 60_000 });
    expect(held.message).toContain('max_connections');
    expect(await pods()).toEqual(before);
    await db.patchSpec({ postgresql: { parameters: { work_mem: '8MB', max_connections: '120' } } });
    await waitFor('RollingUpdate UpToDate again', async () => (await db.get()).status?.conditions?.find((x) => x.type === 'RollingUpdate')?.reason === 'UpToDate', { timeoutMs: 60_000 });
    expect((await db.healthy(3)).status!.rollout).toBeUndefined();
    expect(await pods()).toEqual(before);
  });
});
