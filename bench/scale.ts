// Benchmark `scale`: N clusters (default 300, the seed shape: 3 instances each) created at once
// against a real control plane on loopback; the operator runs as a process with the chart's RBAC.
// Reports time until all are converged, reconcile rate and latency, operator RSS, and the write
// calls a restarted operator makes once everything is converged (the goal is zero).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CustomObjectsApi } from '@kubernetes/client-node';
import { parse } from 'yaml';
import { API_GROUP, API_VERSION, CLUSTER_PLURAL } from '../src/api/constants.js';
import type { PostgreSQLCluster } from '../src/api/cluster.js';
import { startControlPlane } from '../e2e/harness/control-plane.js';
import { E2E_KUBECONFIG_ENV, createTestNamespace, kubeConfig, waitFor } from '../e2e/harness/env.js';
import { REPO_ROOT, startOperator, type RunningOperator } from '../e2e/harness/operator.js';
import { histogramQuantile, printReport, runLimited } from './report.js';

const CLUSTERS = Number(process.env.PGPILOT_BENCH_CLUSTERS ?? 300);
const CREATE_PARALLELISM = 20;

function converged(c: PostgreSQLCluster): boolean {
  const progressing = c.status?.conditions?.find((x) => x.type === 'Progressing');
  // Every owned object exists and the last pass wrote nothing; pods wait for a kubelet (none here).
  return c.status?.observedGeneration === 1 && c.status.instances === 3 && progressing?.reason === 'WaitingForInstances';
}

async function main(): Promise<void> {
  const cp = await startControlPlane({});
  process.env[E2E_KUBECONFIG_ENV] = cp.kubeconfigPath;
  let operator: RunningOperator | undefined;
  try {
    const ns = await createTestNamespace('bench-scale');
    operator = await startOperator({ watchNamespaces: [ns], concurrency: 10 });
    const custom = kubeConfig().makeApiClient(CustomObjectsApi);
    const seed = parse(readFileSync(join(REPO_ROOT, 'examples/cluster.yaml'), 'utf8')) as PostgreSQLCluster;

    let rssMax = operator.rssBytes();
    const sampler = setInterval(() => (rssMax = Math.max(rssMax, operator!.rssBytes())), 250);
    const start = Date.now();
    await runLimited(CLUSTERS, CREATE_PARALLELISM, async (i) => {
      const body = { ...structuredClone(seed), metadata: { name: `db-${i}`, namespace: ns } };
      await custom.createNamespacedCustomObject({ group: API_GROUP, version: API_VERSION, plural: CLUSTER_PLURAL, namespace: ns, body });
    });
    const createdS = (Date.now() - start) / 1000;
    let lastCount = 0;
    await waitFor(
      `${CLUSTERS} clusters converged`,
      async () => {
        const list = (await custom.listNamespacedCustomObject({ group: API_GROUP, version: API_VERSION, plural: CLUSTER_PLURAL, namespace: ns })) as { items: PostgreSQLCluster[] };
        const done = list.items.filter(converged).length;
        if (done !== lastCount) process.stderr.write(`\r[scale] converged ${done}/${CLUSTERS} after ${((Date.now() - start) / 1000).toFixed(1)} s`);
        lastCount = done;
        return done === CLUSTERS;
      },
      { timeoutMs: 600_000, intervalMs: 500 },
    );
    const convergeS = (Date.now() - start) / 1000;
    process.stderr.write('\n');
    clearInterval(sampler);
    const metrics = await operator.metricsText();
    const reconciles = await operator.counter('pgpilot_reconcile_total');

    // Converged, then quiet: the StatefulSet controller's late claims and pods have been handled
    // when the operator's write count stays still for a few seconds.
    await waitForQuiet(operator, 3000);
    // A restarted operator must find nothing to change.
    await operator.stop();
    operator = await startOperator({ watchNamespaces: [ns], concurrency: 10 });
    await waitFor('every cluster reconciled after the restart', async () => (await operator!.counter('pgpilot_reconcile_total')) >= CLUSTERS, { timeoutMs: 300_000 });
    const steadyWrites = await operator.writeCalls();
    const writeKinds = writeBreakdown(await operator.metricsText());

    const result = {
      clusters: CLUSTERS,
      converge_s: round(convergeS),
      reconciles_per_s: round(reconciles / convergeS),
      reconcile_p50_ms: round(histogramQuantile(metrics, 'pgpilot_reconcile_duration_seconds', 0.5) * 1000),
      reconcile_p99_ms: round(histogramQuantile(metrics, 'pgpilot_reconcile_duration_seconds', 0.99) * 1000),
      rss_mb: round(rssMax / 2 ** 20),
      steady_state_writes: steadyWrites,
    };
    printReport('scale', result, [
      ['clusters created at once', `${CLUSTERS} (3 instances each; creates took ${round(createdS)} s)`],
      ['all converged after', `${result.converge_s} s (goal ≤ 60 s)`],
      ['reconciles', `${reconciles} (${result.reconciles_per_s}/s)`],
      ['reconcile p50 / p99', `${result.reconcile_p50_ms} ms / ${result.reconcile_p99_ms} ms (goal p99 ≤ 250 ms)`],
      ['operator RSS (max)', `${result.rss_mb} MB (goal < 200 MB)`],
      ['writes after restart', `${steadyWrites} (goal 0)${writeKinds ? `: ${writeKinds}` : ''}`],
    ]);
  } finally {
    await operator?.stop();
    await cp.stop();
  }
}

async function waitForQuiet(op: RunningOperator, quietMs: number): Promise<void> {
  let last = await op.writeCalls();
  let since = Date.now();
  await waitFor('operator quiet (no write calls)', async () => {
    const now = await op.writeCalls();
    if (now !== last) {
      last = now;
      since = Date.now();
    }
    return Date.now() - since >= quietMs;
  }, { timeoutMs: 300_000, intervalMs: 250 });
}

/** "patch postgresqlclusters/status × 3, …" from the API-call counter. */
function writeBreakdown(text: string): string {
  const parts: string[] = [];
  for (const m of text.matchAll(/^pgpilot_kube_api_requests_total\{verb="(create|update|patch|delete)",resource="([^"]+)",code="([^"]+)"\} (\d+)$/gm)) {
    if (m[2] !== 'leases') parts.push(`${m[1]} ${m[2]} (${m[3]}) × ${m[4]}`);
  }
  return parts.join(', ');
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}

await main();
