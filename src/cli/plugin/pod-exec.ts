// A command run inside an instance pod through the apiserver's exec subresource (as `kubectl
// exec` does, over WebSockets), its output collected: the plugin reads the agents' statuses this
// way, since their API is reachable only from inside the cluster. Interactive sessions (psql) go
// through kubectl itself (psql.ts), which owns the terminal.
import { Writable } from 'node:stream';
import { Exec, type V1Status } from '@kubernetes/client-node';
import { errorText } from '../../util/error-text.js';
import type { Kube } from './kube.js';

export interface ExecResult {
  /** The command's exit code (0 on success); null when the status said nothing about it. */
  code: number | null;
  stdout: string;
  stderr: string;
  /** The apiserver's or kubelet's own failure (no such container, forbidden, …), if any. */
  failure?: string;
}

/** Pure: the exit code a remotecommand status carries (Success → 0; NonZeroExitCode → its cause). */
export function exitCodeOf(status: V1Status): number | null {
  if (status.status === 'Success') return 0;
  const cause = status.details?.causes?.find((c) => c.reason === 'ExitCode');
  const n = Number(cause?.message);
  return cause && Number.isInteger(n) ? n : null;
}

class Collect extends Writable {
  text = '';
  constructor(private readonly limit: number) {
    super();
  }
  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void): void {
    if (this.text.length < this.limit) this.text += chunk.toString('utf8');
    done();
  }
}

/**
 * Runs `command` in `container` of `pod` (no stdin, no tty) and resolves with what it printed and
 * how it ended; never rejects. Bounded by timeoutMs (the socket is closed then).
 */
export async function execInPod(kube: Kube, pod: string, container: string, command: string[], timeoutMs: number, maxBytes = 16 << 20): Promise<ExecResult> {
  const stdout = new Collect(maxBytes);
  const stderr = new Collect(1 << 20);
  let status: V1Status | undefined;
  let socket: Awaited<ReturnType<Exec['exec']>> | undefined;
  let timer: NodeJS.Timeout | undefined;
  try {
    socket = await new Exec(kube.kc).exec(kube.namespace, pod, container, command, stdout, stderr, null, false, (s) => (status = s));
    const ws = socket;
    await new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        status ??= { status: 'Failure', message: `no answer within ${timeoutMs / 1000} s` };
        ws.close();
        resolve();
      }, timeoutMs);
      ws.on('close', () => resolve());
      ws.on('error', () => resolve());
    });
  } catch (err) {
    return { code: null, stdout: stdout.text, stderr: stderr.text, failure: errorText(err) };
  } finally {
    clearTimeout(timer);
  }
  if (!status) return { code: null, stdout: stdout.text, stderr: stderr.text, failure: 'the exec stream closed without a status' };
  const code = exitCodeOf(status);
  return { code, stdout: stdout.text, stderr: stderr.text, ...(code === null ? { failure: status.message ?? status.reason ?? 'exec failed' } : {}) };
}
