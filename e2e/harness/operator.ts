// The operator under test: installed with the real Helm chart (CRDs, RBAC, Deployment), then run
// as a local process with the chart's ServiceAccount token, so the chart's RBAC is what it gets.
// The chart's own Deployment is scaled to 0 meanwhile: the process kubelet would run its pod, and
// that second operator (watching every namespace) would act on the same clusters as the one under
// test — two operators issuing role changes at once. Tests of the chart's pod install it with the
// default replicaCount again.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, readFileSync, statSync, readdirSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ApiextensionsV1Api, CoreV1Api, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { parse } from 'yaml';
import { LEADER_ELECTION_PERMISSIONS, OPERATOR_PERMISSIONS, grantsOf } from '../../src/api/permissions.js';
import { WRITE_VERBS } from '../../src/runtime/metrics.js';
import { helmOk, chartDir } from '../../test/support/helm.js';
import { freePort } from './control-plane.js';
import { ensureRestrictedNamespace, kubeConfig, kubeconfigPath, waitFor } from './env.js';

export const REPO_ROOT = resolve(import.meta.dirname, '../..');
export const OPERATOR_NAMESPACE = 'pgpilot-system';
export const RELEASE = 'pgpilot';
const MAIN = join(REPO_ROOT, 'dist/cli/main.js');

function newestMtime(dir: string): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    newest = Math.max(newest, e.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
  }
  return newest;
}

/** Build dist/ when it is missing or older than src/ (tests run the built operator, as the image does). */
export function ensureBuilt(): void {
  if (existsSync(MAIN) && statSync(MAIN).mtimeMs >= newestMtime(join(REPO_ROOT, 'src'))) return;
  execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: REPO_ROOT, stdio: 'inherit' });
}

/** `helm upgrade --install` of the chart (idempotent, so every test file may call it). */
export async function installChart(extraArgs: string[] = []): Promise<void> {
  // The chart's Deployment must pass the restricted Pod Security profile too.
  await ensureRestrictedNamespace(OPERATOR_NAMESPACE);
  await helmOk(
    // --reset-values: helm upgrade given no values reuses the last release's, so what one file set
    // (webhook.enabled=false) would leak into the next file's "chart defaults".
    ['upgrade', '--install', RELEASE, chartDir, '--kubeconfig', kubeconfigPath(), '--namespace', OPERATOR_NAMESPACE, '--create-namespace', '--wait=hookOnly', '--reset-values', ...extraArgs],
    { timeoutMs: 300_000 },
  );
}

/** A kubeconfig that authenticates as the chart's operator ServiceAccount. */
async function serviceAccountKubeconfig(dir: string): Promise<string> {
  const core = kubeConfig().makeApiClient(CoreV1Api);
  const tr = await core.createNamespacedServiceAccountToken({
    name: RELEASE,
    namespace: OPERATOR_NAMESPACE,
    body: { spec: { audiences: [], expirationSeconds: 24 * 3600 } },
  });
  const admin = kubeConfig();
  const server = admin.getCurrentCluster()!.server;
  const yaml = [
    'apiVersion: v1',
    'kind: Config',
    'clusters: [{name: e2e, cluster: {server: "' + server + '", insecure-skip-tls-verify: true}}]',
    'users: [{name: operator, user: {token: "' + tr.status!.token + '"}}]',
    'contexts: [{name: operator, context: {cluster: e2e, user: operator}}]',
    'current-context: operator',
    '',
  ].join('\n');
  const path = join(dir, 'operator.kubeconfig');
  await writeFile(path, yaml, { mode: 0o600 });
  return path;
}

export interface OperatorOptions {
  /** Namespaces to manage (each test file passes its own, so operators don't overlap). */
  watchNamespaces: string[];
  leaseName?: string;
  concurrency?: number;
  extraEnv?: Record<string, string>;
  /** helm upgrade --install first (default true); a restart of an operator already installed skips it. */
  installChart?: boolean;
  /**
   * Extra `helm upgrade --install` arguments. By default the chart goes in without its webhooks
   * (webhook.enabled=false): the local operator does not serve them, and a validating webhook
   * nobody answers would only slow every creation down. e2e/conversion.test.ts turns them on.
   */
  chartArgs?: string[];
}

/** How startOperator installs the chart unless told otherwise. */
export const DEFAULT_CHART_ARGS = ['--set', 'replicaCount=0', '--set', 'webhook.enabled=false'];

const CLUSTER_CRD_FILE = join(REPO_ROOT, 'crds', 'postgresqlclusters.postgres.pgpilot.io.yaml');

/**
 * The cluster CRD's conversion back to what crds/ says (the chart's webhook Service), for a test
 * that pointed it elsewhere (an operator outside the cluster injects a URL; OLM's Service): helm 4
 * applies crds/ server-side at each new release's install, and a URL left beside the Service it
 * applies makes the CRD invalid ("exactly one of url or service").
 */
export async function restoreCrdConversion(): Promise<void> {
  const crd = parse(readFileSync(CLUSTER_CRD_FILE, 'utf8')) as { metadata: { name: string }; spec: { conversion: { webhook: { clientConfig: Record<string, unknown> } } } };
  const conversion = structuredClone(crd.spec.conversion);
  conversion.webhook.clientConfig = { url: null, caBundle: null, ...conversion.webhook.clientConfig };
  const kc = kubeConfig();
  await kc.makeApiClient(ApiextensionsV1Api).patchCustomResourceDefinition({ name: crd.metadata.name, body: { spec: { conversion } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
}

export interface RunningOperator {
  pid: number;
  port: number;
  logPath: string;
  metricsText(): Promise<string>;
  /** Sum of a counter's samples whose labels match. */
  counter(name: string, match?: (labels: Record<string, string>) => boolean): Promise<number>;
  /** create/update/patch/delete calls, except the leader Lease's renewals. */
  writeCalls(): Promise<number>;
  stop(): Promise<void>;
  /** SIGKILL, as a crash: no cleanup, the leader Lease stays held until it expires. Resolves once it exited. */
  kill(): Promise<void>;
  rssBytes(): number;
}

export function parseCounter(text: string, name: string, match: (labels: Record<string, string>) => boolean = () => true): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-z_]+)(?:\{(.*)\})? ([0-9.e+-]+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const labels: Record<string, string> = {};
    for (const kv of (m[2] ?? '').matchAll(/([a-z_]+)="([^"]*)"/g)) labels[kv[1]!] = kv[2]!;
    if (match(labels)) sum += Number(m[3]);
  }
  return sum;
}

/**
 * What the operator's request counter (pgpilot_kube_api_requests_total) shows beyond its declared
 * permissions: a call refused by RBAC (403), or a verb on a resource that src/api/permissions.ts
 * does not grant (the counter has no group: resources are matched by name).
 */
export function undeclaredApiCalls(metricsText: string): string[] {
  const declared = new Set([...grantsOf(OPERATOR_PERMISSIONS), ...grantsOf(LEADER_ELECTION_PERMISSIONS)].map((g) => g.slice(g.indexOf('/') + 1)));
  const problems: string[] = [];
  for (const line of metricsText.split('\n')) {
    if (!line.startsWith('pgpilot_kube_api_requests_total{')) continue;
    const labels = Object.fromEntries([...line.matchAll(/([a-z_]+)="([^"]*)"/g)].map((m) => [m[1]!, m[2]!]));
    if (labels.code === '403') problems.push(`refused: ${line}`);
    // Discovery documents (/apis/<group>/<version>, optional-kinds.ts): readable by every authenticated user.
    if (labels.resource === 'unknown' && labels.verb === 'list') continue;
    if (!declared.has(`${labels.resource}:${labels.verb}`)) problems.push(`not declared in src/api/permissions.ts: ${line}`);
  }
  return problems;
}

/** Install the chart (once per cluster) and start an operator process scoped to the given namespaces. */
export async function startOperator(opts: OperatorOptions): Promise<RunningOperator> {
  ensureBuilt();
  if (opts.installChart !== false) await installChart(opts.chartArgs ?? DEFAULT_CHART_ARGS);
  const dir = await mkdtemp(join(tmpdir(), 'pgpilot-op-'));
  const kubeconfig = await serviceAccountKubeconfig(dir);
  const port = await freePort();
  const logPath = join(dir, 'operator.log');
  const log = createWriteStream(logPath);
  const child: ChildProcess = spawn(process.execPath, [MAIN, 'operator', '--kubeconfig', kubeconfig], {
    env: {
      ...process.env,
      PGPILOT_NAMESPACE: OPERATOR_NAMESPACE,
      PGPILOT_WATCH_NAMESPACES: opts.watchNamespaces.join(','),
      PGPILOT_LEASE_NAME: opts.leaseName ?? `pgpilot-${opts.watchNamespaces.join('-')}`.slice(0, 63),
      PGPILOT_HTTP_PORT: String(port),
      PGPILOT_LOG_LEVEL: 'debug',
      PGPILOT_CONCURRENCY: String(opts.concurrency ?? 10),
      ...opts.extraEnv,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.pipe(log);
  child.stderr!.pipe(log);
  let exited = false;
  child.on('exit', () => (exited = true));
  const metricsText = async () => {
    const res = await fetch(`http://127.0.0.1:${port}/metrics`);
    return res.text();
  };
  await waitFor(`operator (pid ${child.pid}) ready on :${port}; log ${logPath}`, async () => {
    if (exited) throw new Error(`operator exited early; see ${logPath}`);
    const res = await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined);
    return res?.status === 200;
  }, { timeoutMs: 60_000, intervalMs: 200 });
  const running: RunningOperator = {
    pid: child.pid!,
    port,
    logPath,
    metricsText,
    counter: async (name, match) => parseCounter(await metricsText(), name, match),
    writeCalls: async () =>
      parseCounter(await metricsText(), 'pgpilot_kube_api_requests_total', (l) => WRITE_VERBS.has(l.verb!) && l.resource !== 'leases'),
    rssBytes: () => {
      const status = execFileSync('cat', [`/proc/${child.pid}/status`]).toString();
      return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
    },
    stop: async () => {
      if (exited) return;
      const done = new Promise<void>((r) => child.once('exit', () => r()));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await done;
      clearTimeout(timer);
      log.end();
    },
    kill: async () => {
      if (exited) return;
      const done = new Promise<void>((r) => child.once('exit', () => r()));
      child.kill('SIGKILL');
      await done;
      log.end();
    },
  };
  return running;
}

/**
 * The operator of a test that crashes it on purpose: `current` is the running process;
 * killAndRestart() SIGKILLs it and starts a new one with the same options (as a Deployment's
 * restart would: the new process must first win the leader Lease the dead one still holds).
 */
export class OperatorHandle {
  private constructor(
    private readonly opts: OperatorOptions,
    public current: RunningOperator,
  ) {}

  static async start(opts: OperatorOptions): Promise<OperatorHandle> {
    return new OperatorHandle(opts, await startOperator(opts));
  }

  /** Every operator log of this handle, oldest first. */
  readonly logPaths: string[] = [];

  /** SIGKILL now (synchronously sent; resolves once it exited). */
  kill(): Promise<void> {
    this.logPaths.push(this.current.logPath);
    return this.current.kill();
  }

  /** Start a new operator process (after kill()). */
  async restart(): Promise<RunningOperator> {
    this.current = await startOperator({ ...this.opts, installChart: false });
    return this.current;
  }

  async killAndRestart(): Promise<RunningOperator> {
    await this.kill();
    return this.restart();
  }

  stop(): Promise<void> {
    return this.current.stop();
  }
}

