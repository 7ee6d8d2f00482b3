// The Prometheus Operator's real CRDs (prometheus-operator v0.85.0) in the test apiserver, coming
// and going while the operator runs (it looks every 2 s here, PGPILOT_DISCOVERY_SECONDS): without
// them nothing fails; once they exist each cluster with monitoring on gets its PodMonitor,
// accepted by the real CRD; monitoring.enabled: false removes it; the chart's ServiceMonitor for
// the operator is accepted too; custom exporter queries reach the instance from a ConfigMap and a
// broken one shows in a condition; when the CRDs go, the operator stops watching and goes on.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { LABELS } from '../src/api/constants.js';
import { helmOk, parseManifests, templateArgs } from '../test/support/helm.js';
import { createTestNamespace, deleteTestNamespace, kubeconfigPath, waitFor } from './harness/env.js';
import { HaCluster } from './harness/ha-cluster.js';
import { kubectl, kubectlOk } from './harness/kubectl.js';
import { OPERATOR_NAMESPACE, REPO_ROOT, ensureBuilt, startOperator, type RunningOperator } from './harness/operator.js';
import { PROMETHEUS_OPERATOR_CRDS, prometheusOperatorCrdFiles } from './harness/prometheus-operator.js';
import { startProcessKubelet, type ProcessKubelet } from './kubelet/index.js';

const NAME = 'mon-db';
type Obj = Record<string, any>;

describe('PodMonitors with the Prometheus Operator CRDs', () => {
  let ns: string;
  let kubelet: ProcessKubelet;
  let operator: RunningOperator;
  let db: HaCluster;
  let crdFiles: Record<(typeof PROMETHEUS_OPERATOR_CRDS)[number], string>;

  const podMonitor = async (): Promise<Obj | undefined> => {
    const r = await kubectl(['get', 'podmonitors.monitoring.coreos.com', NAME, '-n', ns, '-o', 'json']);
    return r.code === 0 ? (JSON.parse(r.stdout) as Obj) : undefined;
  };
  const crdNames = () => PROMETHEUS_OPERATOR_CRDS.map((p) => `customresourcedefinition/${p}.monitoring.coreos.com`);

  beforeAll(async () => {
    ensureBuilt();
    crdFiles = await prometheusOperatorCrdFiles();
    // Another file of the run (e2e/prometheus.test.ts) installs the CRDs and leaves them: this one
    // starts without them.
    await kubectl(['delete', '--ignore-not-found', '--wait=true', '--timeout=60s', ...crdNames()]);
    ns = await createTestNamespace('monitoring');
    kubelet = await startProcessKubelet({ kubeconfigPath: kubeconfigPath(), repoRoot: REPO_ROOT });
    operator = await startOperator({ watchNamespaces: [ns], extraEnv: { PGPILOT_DISCOVERY_SECONDS: '2' } });
    console.log(`[monitoring] kubelet log ${kubelet.logPath}; operator log ${operator.logPath}`);
    db = new HaCluster(kubelet, ns, NAME);
    await db.create((c) => {
      c.spec.version = '16';
      c.spec.instances = 1;
      c.spec.highAvailability = { enabled: true, synchronousCommit: false };
    });
  }, 600_000);

  afterAll(async () => {
    await operator?.stop();
    await kubelet?.stop();
    if (ns) await deleteTestNamespace(ns);
    await kubectl(['delete', '--ignore-not-found', '--wait=false', ...crdNames()]);
  });

  it('without the CRDs nothing fails: the cluster becomes Healthy and no PodMonitor is asked for', async () => {
    expect((await kubectl(['get', 'crd', `podmonitors.monitoring.coreos.com`])).code).not.toBe(0);
    await db.healthy(1, 300_000);
    expect(await operator.counter('pgpilot_kube_api_requests_total', (l) => l.resource === 'podmonitors')).toBe(0);
  });

  it('the CRDs appear while the operator runs: the cluster gets its PodMonitor, owned, accepted by the real CRD', async () => {
    for (const plural of PROMETHEUS_OPERATOR_CRDS) await kubectlOk(['apply', '--server-side', '--force-conflicts', '-f', crdFiles[plural]]);
    await kubectlOk(['wait', '--for=condition=Established', ...crdNames(), '--timeout=60s']);
    const pm = await waitFor('the PodMonitor of the cluster', podMonitor, { timeoutMs: 60_000 });
    expect(pm.metadata.ownerReferences[0]).toMatchObject({ kind: 'PostgreSQLCluster', name: NAME, controller: true });
    expect(pm.spec.selector.matchLabels).toEqual({ [LABELS.cluster]: NAME, [LABELS.component]: 'instance' });
    expect(pm.spec.podMetricsEndpoints[0]).toMatchObject({ port: 'metrics', path: '/metrics' });
    // It selects the running instance pod.
    const pods = await kubectlOk(['get', 'pods', '-n', ns, '-l', Object.entries(pm.spec.selector.matchLabels as Record<string, string>).map(([k, v]) => `${k}=${v}`).join(','), '-o', 'name']);
    expect(pods.trim().split('\n')).toEqual([`pod/${NAME}-1-0`]);
    // Converged: further passes write nothing to it.
    const version = pm.metadata.resourceVersion;
    await db.patchSpec({ postgresql: { parameters: { work_mem: '5MB' } } });
    await new Promise((r) => setTimeout(r, 3000));
    expect((await podMonitor())!.metadata.resourceVersion).toBe(version);
  });

  it('monitoring.enabled: false removes the PodMonitor; true brings it back', async () => {
    await db.patchSpec({ monitoring: { enabled: false } });
    await waitFor('no PodMonitor', async () => (await podMonitor()) === undefined, { timeoutMs: 60_000 });
    await db.patchSpec({ monitoring: { enabled: true } });
    await waitFor('the PodMonitor again', podMonitor, { timeoutMs: 60_000 });
  });

  it('custom queries from a ConfigMap: served by the instance, a broken one named in MonitoringQueriesValid and an Event, fixed again without a restart', async () => {
    const good = ['e2e_custom:', '  query: "SELECT 42 AS answer, \'x\' AS tag"', '  metrics:', '    - tag: { usage: LABEL, description: "a tag" }', '    - answer: { usage: GAUGE, description: "the answer" }', ''].join('\n');
    const configMap = (queries: string) => JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'mon-queries', namespace: ns }, data: { 'queries.yaml': queries } });
    await kubectlOk(['apply', '-f', '-'], configMap(good));
    await db.patchSpec({ monitoring: { enabled: true, customQueries: [{ name: 'mon-queries' }] } });
    const pod = `${NAME}-1-0`;
    const metrics = async () => {
      const ip = (await kubectlOk(['get', 'pod', pod, '-n', ns, '-o', 'jsonpath={.status.podIP}'])).trim();
      return ip ? (await (await fetch(`http://${ip}:9187/metrics`, { signal: AbortSignal.timeout(10_000) })).text()) : '';
    };
    // The ConfigMap is mounted by a new pod (a pod template change rolls the instance).
    await waitFor('the custom family served by the instance', async () => (await metrics().catch(() => '')).includes('e2e_custom_answer{tag="x"} 42'), { timeoutMs: 180_000 });
    const condition = async () => (await db.get()).status?.conditions?.find((c) => c.type === 'MonitoringQueriesValid');
    await waitFor('MonitoringQueriesValid True', async () => (await condition())?.status === 'True', { timeoutMs: 60_000 });

    await kubectlOk(['apply', '-f', '-'], configMap('e2e_custom: [not: a query'));
    const broken = await waitFor('MonitoringQueriesValid False', async () => {
      const c = await condition();
      return c?.status === 'False' ? c : undefined;
    }, { timeoutMs: 120_000 });
    expect(broken.message).toContain('mon-queries');
    const text = await metrics();
    expect(text).toMatch(/^pg_up 1$/m);
    expect(text).not.toContain('e2e_custom_answer');
    const events = await kubectlOk(['get', 'events', '-n', ns, '--field-selector', `involvedObject.name=${NAME}`, '-o', 'jsonpath={range .items[*]}{.reason}{"\\n"}{end}']);
    expect(events.split('\n')).toContain(broken.reason);

    await kubectlOk(['apply', '-f', '-'], configMap(good));
    await waitFor('MonitoringQueriesValid True again', async () => (await condition())?.status === 'True', { timeoutMs: 120_000 });
    expect(await metrics()).toContain('e2e_custom_answer{tag="x"} 42');
  });

  it("the chart's ServiceMonitor and PrometheusRule are accepted by the real CRDs (server dry run)", async () => {
    const set = { 'metrics.serviceMonitor.enabled': 'true', 'monitoring.prometheusRule.enabled': 'true', 'monitoring.prometheusRule.force': 'true' };
    const objects = parseManifests((await helmOk(templateArgs([], set, { namespace: OPERATOR_NAMESPACE }))).stdout);
    for (const kind of ['ServiceMonitor', 'PrometheusRule']) {
      const obj = objects.find((o) => o.kind === kind);
      expect(obj, kind).toBeDefined();
      const r = await kubectl(['apply', '--server-side', '--dry-run=server', '--field-manager=e2e', '-f', '-'], JSON.stringify(obj));
      expect(r.code, `${kind}: ${r.stderr}`).toBe(0);
    }
    expect(parse(readFileSync(crdFiles.servicemonitors, 'utf8')).spec.group).toBe('monitoring.coreos.com');
  });

  it('the CRDs go while the operator runs: it stops watching them and goes on reconciling', async () => {
    const logBefore = readFileSync(operator.logPath, 'utf8').length;
    await kubectlOk(['delete', ...crdNames(), '--wait=true', '--timeout=60s']);
    await waitFor('the operator stopped watching PodMonitors', async () => readFileSync(operator.logPath, 'utf8').includes('the API is gone: stopped watching it'), { timeoutMs: 60_000 });
    const generation = (await db.get()).metadata.generation!;
    await db.patchSpec({ postgresql: { parameters: { work_mem: '6MB' } } });
    await waitFor('the change reconciled', async () => {
      const c = await db.get();
      return (c.status?.observedGeneration ?? 0) > generation && c.status?.phase === 'Healthy';
    }, { timeoutMs: 60_000 });
    // A pass between the deletion and the next discovery takes the 404 as nothing to do, not as a failure.
    expect(readFileSync(operator.logPath, 'utf8').slice(logBefore)).not.toContain('reconcile failed');
  });
});
