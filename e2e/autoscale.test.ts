// Replica autoscaling with Kubernetes' own machinery: metrics-server (v0.8.0, built from its Go
// module) scrapes the process kubelet's /metrics/resource and serves metrics.k8s.io; `kubectl top`
// reads it; the real HPA controller of kube-controller-manager scales a PostgreSQLCluster through
// its scale subresource. Under a CPU load on the replicas (through -ro) an HPA made with `kubectl
// autoscale pgc` takes the cluster from 2 to 4 instances — the operator adds them one at a time —
// and back to 2 when the load ends, never touching the primary. Then: spec.instances written below
// what synchronous commit needs is held at the minimum (Autoscaling condition), and spec.autoscaling
// makes the operator own an HPA, removed with the block.
import { afterAll, beforeAll, describe, expect, inject, it, onTestFinished } from 'vitest';
import { AutoscalingV2Api, CoreV1Api } from '@kubernetes/client-node';
import type { PostgreSQLCluster } from '../src/api/cluster.js';
import { startProcessKubelet, type ProcessKubelet } from './kubelet/index.js';
import { startCpuLoad } from './harness/cpu-load.js';
import { createTestNamespace, kubeConfig, kubeconfigPath, waitFor } from './harness/env.js';
import { HaCluster } from './harness/ha-cluster.js';
import { kubectl, kubectlOk } from './harness/kubectl.js';
import { ensureMetricsApi } from './harness/metrics-server.js';
import { REPO_ROOT, ensureBuilt, startOperator, type RunningOperator } from './harness/operator.js';
import { query } from './harness/postgres.js';
import { ScaleWatch } from './harness/scale-watch.js';
import { tearDown } from './harness/teardown.js';

const NAME = 'as-db';
const condition = (c: PostgreSQLCluster, type: string) => c.status?.conditions?.find((x) => x.type === type);

describe('replica autoscaling (metrics-server, HPA, scale subresource)', () => {
  let ns: string;
  let kubelet: ProcessKubelet;
  let operator: RunningOperator;
  let metrics: { stop(): Promise<void> };
  let db: HaCluster;
  let primaryUid: string;

  beforeAll(async () => {
    ensureBuilt();
    ns = await createTestNamespace('autoscale');
    kubelet = await startProcessKubelet({ kubeconfigPath: kubeconfigPath(), repoRoot: REPO_ROOT });
    metrics = await ensureMetricsApi(kubeconfigPath(), inject('pgpilotLogsDir') || undefined);
    operator = await startOperator({ watchNamespaces: [ns] });
    console.log(`[autoscale] kubelet log ${kubelet.logPath}; operator log ${operator.logPath}`);
    db = new HaCluster(kubelet, ns, NAME);
    // Synchronous commit with one synchronous replica: 2 instances is the least it can run with.
    // No backups: nothing else competes for the 2 cores.
    await db.create((c) => {
      c.spec.instances = 2;
      c.spec.backup = { enabled: false };
      c.spec.highAvailability = { enabled: true, synchronousCommit: true, synchronousReplicas: 1 };
    });
    await db.healthy(2, 300_000);
    const pod = await kubeConfig().makeApiClient(CoreV1Api).readNamespacedPod({ namespace: ns, name: `${NAME}-1-0` });
    primaryUid = pod.metadata!.uid!;
  }, 600_000);

  afterAll(async () => {
    await tearDown({ operator, kubelet, namespace: ns });
    await metrics?.stop();
  });

  it('kubectl top pods shows the instance pods (CPU and memory from the process kubelet\'s cgroups); kubectl logs works', async () => {
    const out = await waitFor(
      'both instance pods in kubectl top pods',
      async () => {
        const r = await kubectl(['top', 'pods', '-n', ns, '--no-headers']);
        return r.code === 0 && r.stdout.includes(`${NAME}-1-0`) && r.stdout.includes(`${NAME}-2-0`) ? r.stdout : undefined;
      },
      { timeoutMs: 90_000, intervalMs: 2000 },
    );
    for (const line of out.trim().split('\n')) expect(line.trim()).toMatch(/^\S+\s+\d+m\s+\d+Mi$/);
    const containers = await kubectlOk(['top', 'pods', '-n', ns, `${NAME}-1-0`, '--containers', '--no-headers']);
    expect(containers).toMatch(new RegExp(`^${NAME}-1-0\\s+postgres\\s+\\d+m\\s+\\d+Mi`, 'm'));
    expect(await kubectlOk(['top', 'node', kubelet.nodeName, '--no-headers'])).toContain(kubelet.nodeName);
    const logs = await kubectlOk(['logs', '-n', ns, `${NAME}-1-0`, '-c', 'postgres', '--tail=20']);
    expect(logs.trim().length).toBeGreaterThan(0);
  });

  it('kubectl autoscale pgc: 2 → 4 instances under CPU load through -ro, one new instance at a time, back to 2 after the load; the primary is never touched', async () => {
    await kubectlOk(['autoscale', 'pgc', NAME, '-n', ns, '--min=2', '--max=4', '--cpu-percent=70']);
    // Scale down soon after the load ends (Kubernetes' default waits 5 minutes).
    await kubectlOk(['patch', 'hpa', NAME, '-n', ns, '--type=merge', '-p', JSON.stringify({ spec: { behavior: { scaleDown: { stabilizationWindowSeconds: 0 } } } })]);
    const hpas = kubeConfig().makeApiClient(AutoscalingV2Api);
    const watch = new ScaleWatch(ns, NAME, `${NAME}-1-0`);
    const load = startCpuLoad(db.ro(), { clients: 1, maxMs: 200_000 });
    let scaleUpS = 0;
    // The HPA made by kubectl is not the operator's: remove it whatever happens, or the next test reads it.
    onTestFinished(async () => {
      await watch.stop();
      await kubectlOk(['delete', 'hpa', NAME, '-n', ns, '--ignore-not-found']);
    });
    try {
      // The HPA sees the replicas' CPU (metrics.k8s.io) and writes spec.instances = 4 through the scale subresource.
      await waitFor('the HPA to ask for 4 instances', async () => (await hpas.readNamespacedHorizontalPodAutoscaler({ namespace: ns, name: NAME })).status?.desiredReplicas === 4, { timeoutMs: 120_000, intervalMs: 1000 });
      expect((await db.get()).spec.instances).toBe(4);
      const third = await waitFor('a third instance streaming', async () => {
        const c = await db.get();
        return (c.status?.streamingReplicas ?? 0) >= 2 ? Date.now() : undefined;
      }, { timeoutMs: 120_000, intervalMs: 250 });
      scaleUpS = (third - load.startedAt) / 1000;
      await db.healthy(4, 180_000);
    } finally {
      await load.stop();
    }
    console.log(`[autoscale] scale_up_s (load start → third instance streaming) ${scaleUpS.toFixed(1)}; queries by server ${JSON.stringify(Object.fromEntries(load.byServer))}`);
    // After the load: the HPA scales back to its minimum; the operator removes the two highest ordinals.
    await waitFor('the HPA back at 2', async () => (await db.get()).spec.instances === 2, { timeoutMs: 150_000, intervalMs: 1000 });
    const after = await db.healthy(2, 120_000);
    const record = await watch.stop();
    const seen = JSON.stringify({ instances: Object.fromEntries(record.instances), samples: record.samples, failed: record.failedSamples, lastError: record.lastError });
    console.log(`[autoscale] watch ${seen}`);

    expect(after.status!.instanceNames).toEqual([`${NAME}-1`, `${NAME}-2`]);
    expect(after.status!.currentPrimary).toBe(`${NAME}-1`);
    expect([...record.primaryPodUids]).toEqual([primaryUid]);
    // One new instance at a time: never two instances not ready at once, and -4 only after -3 was ready.
    expect(record.maxNotReady, `not ready together: ${record.maxNotReadyAt.join(', ')}`).toBeLessThanOrEqual(1);
    const t3 = record.instances.get(`${NAME}-3`);
    const t4 = record.instances.get(`${NAME}-4`);
    expect(t3?.ready, seen).toBeDefined();
    expect(t4?.created, seen).toBeGreaterThanOrEqual(t3!.ready!);
    expect(t3?.removed, seen).toBeDefined();
    expect(t4?.removed, seen).toBeDefined();
    // The load ran on replicas only (-ro), never on the primary.
    const primaryIp = kubelet.podAddress(ns, `${NAME}-1-0`);
    expect(load.byServer.get(primaryIp!) ?? 0).toBe(0);
  });

  it('spec.instances written below what synchronous commit needs is accepted and held at the minimum, with the Autoscaling condition saying why', async () => {
    await kubectlOk(['scale', 'pgc', NAME, '-n', ns, '--replicas=1']);
    const held = await waitFor('Autoscaling HeldAtMinimum', async () => {
      const c = await db.get();
      return condition(c, 'Autoscaling')?.reason === 'HeldAtMinimum' ? c : undefined;
    }, { timeoutMs: 60_000, intervalMs: 500 });
    expect(condition(held, 'Autoscaling')!.message).toContain('spec.instances is 1, fewer than the 2 instances synchronous commit needs');
    // Nothing was removed: still 2 healthy instances, the same primary pod.
    const c = await db.healthy(2, 30_000);
    expect(c.status!.instances).toBe(2);
    expect(c.status!.phase).toBe('Healthy');
    const pod = await kubeConfig().makeApiClient(CoreV1Api).readNamespacedPod({ namespace: ns, name: `${NAME}-1-0` });
    expect(pod.metadata!.uid).toBe(primaryUid);
    const events = await kubectlOk(['get', 'events', '-n', ns, '--field-selector', `involvedObject.name=${NAME},reason=HeldAtMinimum`, '-o', 'jsonpath={.items[*].message}']);
    expect(events).toContain('held at 2');
    await kubectlOk(['scale', 'pgc', NAME, '-n', ns, '--replicas=2']);
    await waitFor('Autoscaling no longer held', async () => condition(await db.get(), 'Autoscaling')?.reason === 'NotConfigured', { timeoutMs: 60_000, intervalMs: 500 });
  });

  it('spec.autoscaling: the operator owns an HPA on the scale subresource (CPU target, min, max), reports it, and removes it with the block', async () => {
    await db.patchSpec({ autoscaling: { min: 2, max: 3, targetCPUUtilizationPercentage: 75, scaleDownStabilizationSeconds: 30 } });
    const hpas = kubeConfig().makeApiClient(AutoscalingV2Api);
    const hpa = await waitFor('the operator\'s HPA', async () => {
      const h = await hpas.readNamespacedHorizontalPodAutoscaler({ namespace: ns, name: NAME }).catch(() => undefined);
      return h?.metadata?.ownerReferences?.length ? h : undefined;
    }, { timeoutMs: 60_000, intervalMs: 500 });
    expect(hpa.metadata!.ownerReferences?.[0]).toMatchObject({ kind: 'PostgreSQLCluster', name: NAME, controller: true });
    expect(hpa.spec).toMatchObject({
      scaleTargetRef: { apiVersion: 'postgres.pgpilot.io/v1', kind: 'PostgreSQLCluster', name: NAME },
      minReplicas: 2,
      maxReplicas: 3,
      metrics: [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 75 } } }],
      behavior: { scaleDown: { stabilizationWindowSeconds: 30 } },
    });
    // The HPA controller reads metrics.k8s.io and the scale subresource: the condition shows what it measured.
    const active = await waitFor('Autoscaling ScalingActive with a CPU reading', async () => {
      const c = condition(await db.get(), 'Autoscaling');
      return c?.reason === 'ScalingActive' && /CPU \d+% of request/.test(c.message) ? c : undefined;
    }, { timeoutMs: 120_000, intervalMs: 1000 });
    expect(active.message).toMatch(/^HPA as-db: 2 instances \(CPU \d+% of request, target 75%; min 2, max 3\)/);
    await db.patchSpec({ autoscaling: null });
    await waitFor('the HPA removed', async () => (await hpas.readNamespacedHorizontalPodAutoscaler({ namespace: ns, name: NAME }).then(() => false, () => true)), { timeoutMs: 60_000, intervalMs: 500 });
    await waitFor('Autoscaling NotConfigured', async () => condition(await db.get(), 'Autoscaling')?.reason === 'NotConfigured', { timeoutMs: 60_000, intervalMs: 500 });
    // Idle, it was never scaled: still the same 2 instances and primary.
    expect((await db.healthy(2, 30_000)).status!.currentPrimary).toBe(`${NAME}-1`);
    expect((await query<{ n: number }>(db.rw(), 'SELECT 1 AS n'))[0]!.n).toBe(1);
  });
});
