/**
 * The OLM bundle checker (test/bundle/validator, built by scripts/build-bundle-validator.sh into the
 * test cache): builds it when missing, runs it on a bundle directory and returns its findings.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parseJson } from '../../src/util/json.js';

const execFileAsync = promisify(execFile);
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface Finding {
  validator: string;
  object: string;
  type: string;
  field?: string;
  detail: string;
}

export interface ValidatorReport {
  errors: Finding[];
  warnings: Finding[];
}

/** The checker's path, built first if this version of its source is not in the cache yet. */
export async function ensureBundleValidator(): Promise<string> {
  const { stdout } = await execFileAsync('bash', [path.join(REPO_ROOT, 'scripts/build-bundle-validator.sh')], {
    cwd: REPO_ROOT,
    timeout: 900_000,
    maxBuffer: 16 * 1024 * 1024,
  });
  const bin = stdout.trim().split('\n').pop();
  if (!bin) throw new Error('scripts/build-bundle-validator.sh printed no path');
  return bin;
}

/** Runs the checker (the Kubernetes version is the e2e control plane's minor) on dir. */
export async function validateBundle(bin: string, dir: string, k8sVersion: string): Promise<ValidatorReport> {
  const result = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve, reject) => {
    execFile(bin, ['-k8s-version', k8sVersion, dir], { timeout: 60_000, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err === null) return resolve({ code: 0, stdout, stderr });
      const code = (err as NodeJS.ErrnoException & { code?: unknown }).code;
      if (typeof code === 'number') return resolve({ code, stdout, stderr });
      reject(new Error(`${bin} failed to run: ${err.message}\n${stderr}`));
    });
  });
  if (result.code !== 0 && result.code !== 1) throw new Error(`${bin} ${dir} exited ${result.code}:\n${result.stderr}${result.stdout}`);
  return parseJson<ValidatorReport>(result.stdout, `${bin} ${dir}`);
}
