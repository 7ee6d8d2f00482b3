// A real replicated PostgreSQL cluster: the operator (chart RBAC), the process kubelet running the
// instance agents and PostgreSQL, the service proxy in front of <cluster>-rw/-ro. Failover under a
// write load loses no acknowledged write (synchronous commit, ANY 1), switchover, scaling, and an
// operator restart in the middle of a failover.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startProcessKubelet, type ProcessKubelet } from './kubelet/index.js';
import { createTestNamespace, kubeconfigPath, waitFor } from './harness/env.js';
import { HaCluster } from './harness/ha-cluster.js';
import { kubectlOk } from './harness/kubectl.js';
import { REPO_ROOT, ensureBuilt, startOperator, undeclaredApiCalls, type RunningOperator } from './harness/operator.js';
import { query } from './harness/postgres.js';
import { tearDown } from './harness/teardown.js';

const NAME = 'ha-db';

describe('high availability on real PostgreSQL', () => {
  let ns: string;
  let kubelet: ProcessKubelet;
  let operator: RunningOperator;
  let db: HaCluster;

  beforeAll(async () => {
    ensureBuilt();
    ns = await createTestNamespace('ha');
    // PGPILOT_E2E_KUBELET_DIR keeps the kubelet's pods, volumes and logs after the run (for debugging).
    kubelet = await startProcessKubelet({ kubeconfigPath: kubeconfigPath(), repoRoot: REPO_ROOT, dataDir: process.env.PGPILOT_E2E_KUBELET_DIR });
    operator = await startOperator({ watchNamespaces: [ns] });
    console.log(`[ha] kubelet log ${kubelet.logPath}; operator log ${operator.logPath}`);
    db = new HaCluster(kubelet, ns, NAME);
    await db.create();
  }, 600_000);

  afterAll(() => tearDown({ operator, kubelet, namespace: ns }));

  it('reaches Ready with one primary and two streaming replicas; writes through -rw are read through -ro', async () => {
    const c = await db.healthy(3, 300_000);
    expect(c.status!.currentPrimary).toBe(`${NAME}-1`);
    await query(db.rw(), 'CREATE TABLE hello (v text)');
    await query(db.rw(), "INSERT INTO hello VALUES ('world')");
    const rows = await waitFor('the row on a replica', async () => {
      const r = await query<{ v: string }>(db.ro(), 'SELECT v FROM hello').catch(() => []);
      return r.length ? r : undefined;
    });
    expect(rows).toEqual([{ v: 'world' }]);
    expect((await query<{ r: boolean }>(db.ro(), 'SELECT pg_is_in_recovery() AS r'))[0]!.r).toBe(true);
    expect((await query<{ r: boolean }>(db.rw(), 'SELECT pg_is_in_recovery() AS r'))[0]!.r).toBe(false);
    // The seed asks for 14.5: a real PostgreSQL 14 runs (the nearest 14 installed), and status says which.
    const version = (await query<{ v: string }>(db.rw(), "SELECT current_setting('server_version') AS v"))[0]!.v;
    expect(version).toMatch(/^14\.\d+/);
    expect((await db.get()).status!.version).toBe(version);
    const events = await waitFor('the VersionDiffers Event', async () => {
      const out = await kubectlOk(['get', 'events', '-n', ns, '--field-selector', `involvedObject.name=${NAME},reason=VersionDiffers`, '-o', 'jsonpath={.items[*].message}']);
      return out.trim() ? out : undefined;
    });
    expect(events).toContain(`spec.version asks for 14.5; PostgreSQL ${version} runs`);
  });

  it('SIGKILL of the primary under writes: a new primary, no acknowledged write lost, the old one rejoins', async () => {
    await db.healthy(3);
    const r = await db.failover('ledger_kill', (pod) => kubelet.killContainer(ns, pod));
    expect(r.newPrimary).not.toBe(r.oldPrimary);
    expect(r.acknowledged).toBeGreaterThan(20);
    expect(r.lost).toEqual([]);
    expect((await db.healthy(3)).status!.currentPrimary).toBe(r.newPrimary);
    console.log(`[ha] SIGKILL failover ${r.oldPrimary} → ${r.newPrimary}: writes resumed after ${r.writeGapMs} ms`);
  });

  it('a frozen (SIGSTOP) primary is replaced the same way, and rejoins when it thaws', async () => {
    await db.healthy(3);
    const r = await db.failover('ledger_freeze', (pod) => kubelet.freeze(ns, pod), (pod) => kubelet.thaw(ns, pod));
    expect(r.newPrimary).not.toBe(r.oldPrimary);
    expect(r.lost).toEqual([]);
    expect((await db.healthy(3)).status!.currentPrimary).toBe(r.newPrimary);
    console.log(`[ha] SIGSTOP failover ${r.oldPrimary} → ${r.newPrimary}: writes resumed after ${r.writeGapMs} ms`);
  });

  it('switches over through spec.primary without losing a write', async () => {
    const before = await db.healthy(3);
    const target = before.status!.instanceNames!.find((i) => i !== before.status!.currentPrimary)!;
    const r = await db.switchover('ledger_switchover', target);
    expect(r.lost).toEqual([]);
    expect((await db.healthy(3)).status!.currentPrimary).toBe(target);
    console.log(`[ha] switchover to ${target}: longest write gap ${r.gapMs} ms`);
  });

  it('an unknown spec.primary is Degraded with the reason, and nothing moves', async () => {
    const before = await db.healthy(3);
    const primary = before.status!.currentPrimary!;
    await db.patchSpec({ primary: `${NAME}-9` });
    const degraded = await waitFor('Degraded UnknownPrimary', async () => {
      const d = (await db.get()).status?.conditions?.find((c) => c.type === 'Degraded');
      return d?.status === 'True' && d.reason === 'UnknownPrimary' ? d : undefined;
    });
    expect(degraded.message).toContain(`spec.primary names ${NAME}-9, which is not an instance of this cluster`);
    expect((await db.get()).status!.currentPrimary).toBe(primary);
    await db.patchSpec({ primary });
    await waitFor('Degraded cleared', async () => (await db.get()).status?.conditions?.find((c) => c.type === 'Degraded')?.status === 'False', { timeoutMs: 120_000 });
  });

  it('scales 3 → 5 → 2, never removing the primary', async () => {
    await kubectlOk(['scale', 'pgc', NAME, '-n', ns, '--replicas=5']);
    await db.healthy(5, 240_000);
    const primary = (await db.get()).status!.currentPrimary!;
    await kubectlOk(['scale', 'pgc', NAME, '-n', ns, '--replicas=2']);
    const c = await db.healthy(2, 240_000);
    expect(c.status!.instanceNames).toContain(primary);
    expect(c.status!.currentPrimary).toBe(primary);
  });

  it('made only API calls that the chart grants and src/api/permissions.ts declares', async () => {
    const text = await operator.metricsText();
    expect(text).toContain('pgpilot_kube_api_requests_total{');
    expect(undeclaredApiCalls(text)).toEqual([]);
  });

  it('an operator restart in the middle of a failover converges', async () => {
    const before = await db.healthy(2);
    const oldPrimary = before.status!.currentPrimary!;
    await kubelet.killContainer(ns, `${oldPrimary}-0`);
    await operator.stop();
    operator = await startOperator({ watchNamespaces: [ns] });
    // Status may still read Healthy from before the kill: converged means -rw serves again.
    const rows = await waitFor('a read through -rw', async () => query<{ n: string }>(db.rw(), 'SELECT count(*) AS n FROM hello').catch(() => undefined), { timeoutMs: 120_000, intervalMs: 250 });
    expect(Number(rows[0]!.n)).toBe(1);
    const c = await db.healthy(2, 120_000);
    console.log(`[ha] after the operator restart the primary is ${c.status!.currentPrimary} (was ${oldPrimary})`);
  });
});
