// An operator upgrade restarts no PostgreSQL pod. The operator runs as users run it — the chart's
// Deployment, on the process kubelet, with in-cluster config — as a release of its own (own
// operator namespace, watching only this test's namespace, own leader Lease). A 2-instance
// cluster becomes Healthy; the release is upgraded to another image tag (for the process kubelet
// any `*\/pgpilot:<tag>` runs this checkout, so the new build differs only in its version
// string); once the new operator pod leads and has reconciled the cluster, the instance pods are
// the same pods (UIDs), no container restarted, no StatefulSet was changed (generations), and the
// cluster is still Healthy. The negative control: the operator pod really is a new one running
// the new tag, and it really did passes over this cluster — else the test could pass vacuously.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WRITE_VERBS } from '../src/runtime/metrics.js';
import { startProcessKubelet, type ProcessKubelet } from './kubelet/index.js';
import { createTestNamespace, deleteTestNamespace, kubeconfigPath, waitFor } from './harness/env.js';
import { HaCluster } from './harness/ha-cluster.js';
import { REPO_ROOT, ensureBuilt, parseCounter } from './harness/operator.js';
import { CHART_APP_VERSION, OperatorRelease, changedStatefulSets, instancePods, instanceStatefulSets, podChanges, requestPass } from './harness/operator-release.js';

const NAME = 'upg-db';
const INSTANCES = 2;
const NEW_TAG = `${CHART_APP_VERSION}-e2e`;

describe('operator upgrade (helm upgrade to a new operator image)', () => {
  let ns: string;
  let opNs: string;
  let kubelet: ProcessKubelet;
  let release: OperatorRelease | undefined;
  let db: HaCluster;

  beforeAll(async () => {
    ensureBuilt();
    ns = await createTestNamespace('op-upgrade');
    opNs = await createTestNamespace('op-upgrade-system');
    kubelet = await startProcessKubelet({ kubeconfigPath: kubeconfigPath(), repoRoot: REPO_ROOT });
    console.log(`[operator-upgrade] kubelet log ${kubelet.logPath}`);
    release = await OperatorRelease.install(kubelet, { release: `pgpilot-upg-${randomBytes(2).toString('hex')}`, namespace: opNs, watchNamespaces: [ns] });
    db = new HaCluster(kubelet, ns, NAME);
    await db.create((c) => {
      c.spec.version = '16.13';
      c.spec.instances = INSTANCES;
    });
  }, 600_000);

  afterAll(async () => {
    await release?.uninstall();
    // The namespaces go while the kubelet runs, so their pods end gracefully.
    if (ns) await deleteTestNamespace(ns, { wait: true, timeoutMs: 120_000 }).catch((err: Error) => console.log(`[operator-upgrade] ${err.message}`));
    if (opNs) await deleteTestNamespace(opNs, { wait: true, timeoutMs: 60_000 }).catch((err: Error) => console.log(`[operator-upgrade] ${err.message}`));
    await kubelet?.stop();
  }, 300_000);

  it('restarts no PostgreSQL pod and changes no StatefulSet', async () => {
    const healthy = await db.healthy(INSTANCES, 240_000);
    const oldOperator = await release!.waitForOperator(CHART_APP_VERSION);
    const podsBefore = await instancePods(ns, NAME);
    const setsBefore = await instanceStatefulSets(ns, NAME);
    expect(Object.keys(podsBefore)).toHaveLength(INSTANCES);
    expect(Object.keys(setsBefore)).toHaveLength(INSTANCES);

    await release!.upgrade(NEW_TAG);
    const newOperator = await release!.waitForOperator(NEW_TAG);
    // The negative control: a new operator pod, running the new build, is the one leading.
    expect(newOperator.uid).not.toBe(oldOperator.uid);
    expect(newOperator.image).toBe(OperatorRelease.image(NEW_TAG));
    expect(oldOperator.image).toBe(OperatorRelease.image(CHART_APP_VERSION));
    // ...and it did passes over this cluster (it watches nothing else): it observed every
    // instance's agent and ran the reconcilers. The first comes by itself (the informer's initial
    // list); a second, asked for, would go on with a rollout the first one had started.
    await release!.waitForPasses(newOperator, 1, INSTANCES);
    await requestPass(ns, NAME);
    const metrics = await release!.waitForPasses(newOperator, 2, 2 * INSTANCES);
    const statefulSetWrites = parseCounter(metrics, 'pgpilot_kube_api_requests_total', (l) => l.resource === 'statefulsets' && WRITE_VERBS.has(l.verb!));
    const podWrites = parseCounter(metrics, 'pgpilot_kube_api_requests_total', (l) => l.resource === 'pods' && WRITE_VERBS.has(l.verb!));
    console.log(`[operator-upgrade] ${oldOperator.name} (${oldOperator.image}) → ${newOperator.name} (${newOperator.image}); the new operator wrote statefulsets ${statefulSetWrites}, pods ${podWrites} times`);

    const podsAfter = await instancePods(ns, NAME);
    const setsAfter = await instanceStatefulSets(ns, NAME);
    const changes = podChanges(podsBefore, podsAfter);
    expect(changes, JSON.stringify(changes)).toMatchObject({ replaced: [], added: [], restarted: [], count: 0 });
    expect(changedStatefulSets(setsBefore, setsAfter)).toEqual([]);
    for (const [name, s] of Object.entries(setsAfter)) expect(s.template, `${name}'s pod template`).toBe(setsBefore[name]!.template);
    expect(statefulSetWrites).toBe(0);

    const after = await db.healthy(INSTANCES, 30_000);
    expect(after.status!.rollout).toBeUndefined();
    expect(after.status!.currentPrimary).toBe(healthy.status!.currentPrimary);
  });

  it('kubectl pgpilot logs --operator: the operator pod\'s lines about this cluster, and only those', async () => {
    const run = (args: string[]) => promisify(execFile)(process.execPath, [join(REPO_ROOT, 'dist/cli/plugin/main.js'), ...args, '--kubeconfig', kubeconfigPath()], { env: { ...process.env, NO_COLOR: '1' } });
    // A change the operator applies (a reload-level setting: the ConfigMap) gives it something to log at info.
    await db.patchSpec({ postgresql: { parameters: { work_mem: '5MB' } } });
    let lines: { cluster?: string; namespace?: string; msg: string }[] = [];
    await waitFor('the operator pod logs a line about the cluster', async () => {
      const raw = await run(['logs', NAME, '-n', ns, '--operator', '--raw', '--tail', '30']);
      lines = raw.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { cluster?: string; namespace?: string; msg: string });
      return lines.some((l) => l.msg === 'applied changes');
    }, { timeoutMs: 60_000 });
    for (const l of lines) expect(l, l.msg).toMatchObject({ cluster: NAME, namespace: ns });
    const pretty = await run(['logs', NAME, '-n', ns, '--operator', '--tail', '5']);
    expect(pretty.stdout).toMatch(/^\S+Z (INFO|DEBUG|WARN|ERROR) +\S*pgpilot\S*\/operator /m);
  });
});
