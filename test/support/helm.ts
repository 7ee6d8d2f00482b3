/**
 * Thin wrappers around the real `helm` binary (see binaries.ts) for the chart tests and the e2e
 * suite. Nothing here talks to a cluster unless given a kubeconfig.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { helmEnv, helmPath } from './binaries.js';

/** Absolute path of the pgpilot chart in this repository. */
export const chartDir: string = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '..',
  '..',
  'charts',
  'pgpilot',
);

export const DEFAULT_RELEASE = 'pgpilot';
export const DEFAULT_NAMESPACE = 'pgpilot-system';

export interface HelmResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunHelmOptions {
  timeoutMs?: number;
  cwd?: string;
}

/** Runs helm with a private HOME; resolves with the exit code (never rejects on a non-zero exit). */
export async function runHelm(args: string[], opts: RunHelmOptions = {}): Promise<HelmResult> {
  const helm = await helmPath();
  return new Promise((resolve, reject) => {
    execFile(
      helm,
      args,
      {
        env: helmEnv(),
        cwd: opts.cwd,
        timeout: opts.timeoutMs ?? 120_000,
        maxBuffer: 64 * 1024 * 1024,
      },
      (err, stdout, stderr) => {
        if (err === null) {
          resolve({ code: 0, stdout, stderr });
          return;
        }
        const code = (err as NodeJS.ErrnoException & { code?: unknown }).code;
        if (typeof code === 'number') {
          resolve({ code, stdout, stderr });
          return;
        }
        reject(new Error(`helm ${args.join(' ')} failed to run: ${err.message}\n${stderr}`));
      },
    );
  });
}

/** Like runHelm, but throws with helm's stderr on a non-zero exit. */
export async function helmOk(args: string[], opts: RunHelmOptions = {}): Promise<HelmResult> {
  const res = await runHelm(args, opts);
  if (res.code !== 0) {
    throw new Error(`helm ${args.join(' ')} exited ${res.code}:\n${res.stderr}${res.stdout}`);
  }
  return res;
}

function valueArgs(valuesFiles: string[], set?: Record<string, string>): string[] {
  const args: string[] = [];
  for (const f of valuesFiles) args.push('--values', path.resolve(f));
  for (const [k, v] of Object.entries(set ?? {})) args.push('--set', `${k}=${v}`);
  return args;
}

export interface RenderOptions {
  namespace?: string;
  releaseName?: string;
  includeCrds?: boolean;
}

/** Arguments of `helm template` for the pgpilot chart. */
export function templateArgs(
  valuesFiles: string[],
  set?: Record<string, string>,
  opts: RenderOptions = {},
): string[] {
  const args = [
    'template',
    opts.releaseName ?? DEFAULT_RELEASE,
    chartDir,
    '--namespace',
    opts.namespace ?? DEFAULT_NAMESPACE,
    ...valueArgs(valuesFiles, set),
  ];
  if (opts.includeCrds === true) args.push('--include-crds');
  return args;
}

/** Parses a multi-document YAML stream into objects, dropping empty documents. */
export function parseManifests(text: string): Array<Record<string, any>> {
  const out: Array<Record<string, any>> = [];
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length > 0) {
      throw new Error(`invalid YAML in rendered chart: ${doc.errors.map((e) => e.message).join('; ')}`);
    }
    const value: unknown = doc.toJS();
    if (value === null || value === undefined) continue;
    if (typeof value !== 'object' || Array.isArray(value)) {
      throw new Error(`rendered document is not an object: ${JSON.stringify(value)}`);
    }
    out.push(value as Record<string, any>);
  }
  return out;
}

/**
 * `helm template` the pgpilot chart and return every rendered object. Throws (with helm's
 * message) when rendering fails, e.g. when values.schema.json rejects a value.
 */
export async function renderChart(
  valuesFiles: string[],
  set?: Record<string, string>,
  opts: RenderOptions = {},
): Promise<Array<Record<string, any>>> {
  const res = await helmOk(templateArgs(valuesFiles, set, opts));
  return parseManifests(res.stdout);
}

export interface InstallOptions {
  valuesFiles?: string[];
  set?: Record<string, string>;
  /** Helm 4 wait strategy; default 'hookOnly' (the old `--wait=false`: do not wait for readiness). */
  wait?: 'hookOnly' | 'watcher' | 'legacy';
  /** helm's --timeout, e.g. '5m'. */
  timeout?: string;
  skipCrds?: boolean;
  extraArgs?: string[];
  /** Kill helm after this many ms (default 10 minutes). */
  processTimeoutMs?: number;
}

/** `helm install <release> charts/pgpilot --create-namespace --wait=hookOnly ...` against a kubeconfig. */
export async function helmInstall(
  kubeconfigPath: string,
  releaseName: string,
  namespace: string,
  opts: InstallOptions = {},
): Promise<HelmResult> {
  const args = [
    'install',
    releaseName,
    chartDir,
    '--kubeconfig',
    path.resolve(kubeconfigPath),
    '--namespace',
    namespace,
    '--create-namespace',
    `--wait=${opts.wait ?? 'hookOnly'}`,
    ...valueArgs(opts.valuesFiles ?? [], opts.set),
  ];
  if (opts.timeout !== undefined) args.push('--timeout', opts.timeout);
  if (opts.skipCrds === true) args.push('--skip-crds');
  args.push(...(opts.extraArgs ?? []));
  return helmOk(args, { timeoutMs: opts.processTimeoutMs ?? 600_000 });
}

export interface UninstallOptions {
  wait?: 'hookOnly' | 'watcher' | 'legacy';
  timeout?: string;
  ignoreNotFound?: boolean;
  extraArgs?: string[];
  processTimeoutMs?: number;
}

/** `helm uninstall <release>` against a kubeconfig. CRDs (from crds/) are left in place, as helm does. */
export async function helmUninstall(
  kubeconfigPath: string,
  releaseName: string,
  namespace: string,
  opts: UninstallOptions = {},
): Promise<HelmResult> {
  const args = [
    'uninstall',
    releaseName,
    '--kubeconfig',
    path.resolve(kubeconfigPath),
    '--namespace',
    namespace,
    `--wait=${opts.wait ?? 'hookOnly'}`,
  ];
  if (opts.timeout !== undefined) args.push('--timeout', opts.timeout);
  if (opts.ignoreNotFound !== false) args.push('--ignore-not-found');
  args.push(...(opts.extraArgs ?? []));
  return helmOk(args, { timeoutMs: opts.processTimeoutMs ?? 600_000 });
}
