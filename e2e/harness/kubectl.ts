// Run the real kubectl against the e2e cluster: tests see what a user at a terminal sees.
import { spawn } from 'node:child_process';
import { kubectlPath } from '../../test/support/binaries.js';
import { kubeconfigPath } from './env.js';

export interface KubectlResult {
  code: number;
  stdout: string;
  stderr: string;
}

export async function kubectl(args: string[], input?: string): Promise<KubectlResult> {
  const bin = await kubectlPath();
  return new Promise((resolve, reject) => {
    const child = spawn(bin, ['--kubeconfig', kubeconfigPath(), ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    // kubectl may exit before it reads its input (a `get` reads none): EPIPE then is no error of ours.
    child.stdin.on('error', () => undefined);
    child.stdin.end(input ?? '');
  });
}

/** kubectl that must succeed; the error carries kubectl's own message. */
export async function kubectlOk(args: string[], input?: string): Promise<string> {
  const r = await kubectl(args, input);
  if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')} failed (${r.code}): ${r.stderr || r.stdout}`);
  return r.stdout;
}
