// vitest globalSetup of the e2e project: one control plane for the whole run.
//
// How tests find it: this runs in vitest's main process before any worker is forked, and
// vitest 4 builds each worker's environment from process.env at fork time, so setting
// PGPILOT_E2E_KUBECONFIG here reaches the tests. The same path is also provided as
// inject('pgpilotKubeconfigPath') for code that prefers vitest's channel; env.ts reads either.
//
// PGPILOT_E2E_KUBECONFIG already set by the caller → that cluster is used and nothing starts.
// PGPILOT_E2E_KEEP_LOGS=1 keeps the logs of a passing run too.
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestProject } from 'vitest/node';
import { startControlPlane } from './control-plane.js';
import { E2E_KUBECONFIG_ENV } from './env.js';
import { startMetricsServer, type MetricsServer } from './metrics-server.js';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

export default async function setup(project: TestProject): Promise<(() => Promise<void>) | undefined> {
  const existing = process.env[E2E_KUBECONFIG_ENV];
  if (existing) {
    console.log(`[e2e] using the existing cluster of ${E2E_KUBECONFIG_ENV}=${existing}`);
    project.provide('pgpilotKubeconfigPath', existing);
    project.provide('pgpilotLogsDir', '');
    return undefined;
  }

  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const logsDir = join(REPO_ROOT, '.e2e-logs', stamp);
  await mkdir(logsDir, { recursive: true });
  console.log(`[e2e] starting the control plane; logs in ${logsDir}`);
  const cp = await startControlPlane({ logsDir });
  const rss = await cp.rss();
  const mb = (b: number) => `${Math.round(b / 2 ** 20)} MB`;
  console.log(
    `[e2e] control plane up at ${cp.server} in ${(cp.startupMs / 1000).toFixed(1)} s ` +
      `(${Object.entries(rss).map(([n, b]) => `${n} ${mb(b)}`).join(', ')})`,
  );

  // metrics-server (HPA, `kubectl top`) in the background: nothing waits for it but the tests that
  // use metrics.k8s.io (ensureMetricsApi waits while this says "starting", else starts its own).
  let metricsServer: Promise<MetricsServer | undefined> = Promise.resolve(undefined);
  if (process.env.PGPILOT_E2E_METRICS_SERVER !== 'off') {
    process.env.PGPILOT_E2E_METRICS_SERVER = 'starting';
    metricsServer = startMetricsServer({ kubeconfigPath: cp.kubeconfigPath, logsDir }).catch((err: unknown) => {
      console.log(`[e2e] metrics-server did not start (tests that need metrics.k8s.io start their own): ${String(err)}`);
      return undefined;
    });
  }

  process.env[E2E_KUBECONFIG_ENV] = cp.kubeconfigPath;
  project.provide('pgpilotKubeconfigPath', cp.kubeconfigPath);
  project.provide('pgpilotLogsDir', logsDir);

  return async () => {
    delete process.env[E2E_KUBECONFIG_ENV];
    // Logs are only worth keeping when something went wrong.
    const state = project.vitest.state;
    const failed = state.getCountOfFailedTests() > 0 || state.getFailedFilepaths().length > 0 || state.getUnhandledErrors().length > 0;
    const keep = failed || process.env.PGPILOT_E2E_KEEP_LOGS === '1';
    await (await metricsServer)?.stop();
    await cp.stop({ keepLogs: true });
    if (keep) console.log(`[e2e] control-plane logs kept in ${logsDir}`);
    else await rm(logsDir, { recursive: true, force: true });
  };
}
