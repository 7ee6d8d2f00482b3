// Helpers e2e tests use to reach the control plane the global setup started (or the cluster
// named by PGPILOT_E2E_KUBECONFIG when the caller brought one).
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { ApiException, CoreV1Api, KubeConfig, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { inject } from 'vitest';
import { apiStatus, ignoreNotFound } from '../../src/runtime/api-status.js';
import { errorText } from '../../src/util/error-text.js';

/** Environment variable naming the e2e cluster's admin kubeconfig. */
export const E2E_KUBECONFIG_ENV = 'PGPILOT_E2E_KUBECONFIG';
/** Label on every namespace a test creates, so leftovers are easy to find and sweep. */
export const E2E_NAMESPACE_LABEL = 'pgpilot.io/e2e';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Admin kubeconfig path, also provided through vitest's provide/inject. */
    pgpilotKubeconfigPath: string;
    /** Where this run's control-plane logs go ('' when an external cluster is used). */
    pgpilotLogsDir: string;
  }
}

/** The kubeconfig path: the environment first (it reaches workers), then vitest's inject. */
export function kubeconfigPath(): string {
  const fromEnv = process.env[E2E_KUBECONFIG_ENV];
  if (fromEnv) return fromEnv;
  let injected: string | undefined;
  try {
    injected = inject('pgpilotKubeconfigPath');
  } catch {
    // Not inside a vitest worker.
  }
  if (injected) return injected;
  throw new Error(`${E2E_KUBECONFIG_ENV} is not set: run e2e tests through vitest (--project e2e)`);
}

/** Admin KubeConfig of the e2e cluster (read afresh each call, so callers may mutate it). */
export function kubeConfig(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfigPath());
  return kc;
}

/** The admin bearer token (the kubeconfig's current user). */
export function adminToken(): string {
  const token = kubeConfig().getCurrentUser()?.token;
  if (!token) throw new Error('the e2e kubeconfig has no token user');
  return token;
}

/**
 * Pod Security admission (on by default in kube-apiserver) enforcing the restricted profile: every
 * pod the operator creates (instances, backup, purge and upgrade Jobs) and the chart's operator
 * Deployment must pass it, or the apiserver refuses the pod.
 */
export const RESTRICTED_POD_SECURITY_LABELS: Readonly<Record<string, string>> = {
  'pod-security.kubernetes.io/enforce': 'restricted',
  'pod-security.kubernetes.io/enforce-version': 'latest',
};

/** Creates a namespace (or labels the one that exists) with the restricted Pod Security labels. */
export async function ensureRestrictedNamespace(name: string): Promise<void> {
  const core = kubeConfig().makeApiClient(CoreV1Api);
  try {
    await core.createNamespace({ body: { metadata: { name, labels: { ...RESTRICTED_POD_SECURITY_LABELS } } } });
  } catch (err) {
    if (apiStatus(err) !== 409) throw err;
    await core.patchNamespace({ name, body: { metadata: { labels: RESTRICTED_POD_SECURITY_LABELS } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
  }
}

/**
 * Creates a namespace `<prefix>-<random>` labelled pgpilot.io/e2e=true and with the restricted Pod
 * Security profile enforced (RESTRICTED_POD_SECURITY_LABELS) — unless `restricted: false`, only for
 * tests of the process kubelet and the control plane themselves, whose pods are bare on purpose; every pod pgpilot makes
 * must pass restricted — and, by default, waits for the controller-manager to give it its
 * `default` ServiceAccount (pods are refused before).
 */
export async function createTestNamespace(prefix: string, opts: { waitForServiceAccount?: boolean; restricted?: boolean } = {}): Promise<string> {
  const base = prefix.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 50) || 'e2e';
  const name = `${base}-${randomBytes(3).toString('hex')}`;
  const core = kubeConfig().makeApiClient(CoreV1Api);
  const podSecurity = opts.restricted === false ? {} : RESTRICTED_POD_SECURITY_LABELS;
  await core.createNamespace({ body: { metadata: { name, labels: { [E2E_NAMESPACE_LABEL]: 'true', ...podSecurity } } } });
  if (opts.waitForServiceAccount !== false) {
    await waitFor(
      `ServiceAccount default in namespace ${name}`,
      () => ignoreNotFound(core.readNamespacedServiceAccount({ name: 'default', namespace: name })),
      { timeoutMs: 30_000 },
    );
  }
  return name;
}

/** Deletes a test namespace (absent is fine); with wait, until the namespace controller is done. */
export async function deleteTestNamespace(name: string, opts: { wait?: boolean; timeoutMs?: number } = {}): Promise<void> {
  const core = kubeConfig().makeApiClient(CoreV1Api);
  try {
    await core.deleteNamespace({ name });
  } catch (err) {
    if (apiStatus(err) === 404) return;
    throw err;
  }
  if (!opts.wait) return;
  await waitFor(
    `namespace ${name} to be deleted`,
    async () => (await ignoreNotFound(core.readNamespace({ name }))) === undefined,
    { timeoutMs: opts.timeoutMs ?? 60_000 },
  );
}

/**
 * Polls fn until it returns a value other than undefined/false. Errors thrown by fn count as
 * "not yet" (the cluster may be converging); on timeout the error names `what` and the last
 * value or error seen, which is usually the clue to why.
 */
export async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined | false>,
  opts: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const intervalMs = opts.intervalMs ?? 250;
  const deadline = Date.now() + timeoutMs;
  let last: string = 'never polled';
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
      last = `value ${describe(v)}`;
    } catch (err) {
      last = `error ${describeError(err)}`;
    }
    if (Date.now() >= deadline) break;
    await sleep(Math.min(intervalMs, Math.max(0, deadline - Date.now())));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last ${last}`);
}

function describe(v: unknown): string {
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}

function describeError(err: unknown): string {
  if (err instanceof ApiException) return `HTTP ${err.code}: ${String(err.body).slice(0, 500)}`;
  return errorText(err);
}
