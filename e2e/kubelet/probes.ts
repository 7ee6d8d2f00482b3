// httpGet / tcpSocket / exec probes against the pod IP, with the kubelet's thresholds:
// the result flips after successThreshold successes or failureThreshold failures in a row.
import { spawn } from 'node:child_process';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect } from 'node:net';
import type { V1Container, V1Probe } from '@kubernetes/client-node';
import { errorText } from '../../src/util/error-text.js';

export interface ProbeResult {
  ok: boolean;
  message: string;
}

export interface ProbeTarget {
  podIP: string;
  container: V1Container;
  /** Main pid of the running container (exec probes enter its mount namespace). */
  pid(): number | undefined;
  env: Record<string, string>;
  /** setpriv arguments that drop to the container's user, or []. */
  privArgs: string[];
}

export function resolvePort(port: number | string, c: V1Container): number {
  if (typeof port === 'number') return port;
  if (/^\d+$/.test(port)) return Number(port);
  const found = c.ports?.find((p) => p.name === port);
  if (!found) throw new Error(`container ${c.name} has no port named ${port}`);
  return found.containerPort;
}

export async function probeOnce(probe: V1Probe, t: ProbeTarget): Promise<ProbeResult> {
  const timeoutMs = (probe.timeoutSeconds ?? 1) * 1000;
  try {
    if (probe.httpGet) {
      const g = probe.httpGet;
      const port = resolvePort(g.port as number | string, t.container);
      const https = g.scheme === 'HTTPS';
      const headers = Object.fromEntries((g.httpHeaders ?? []).map((h) => [h.name, h.value]));
      return await new Promise<ProbeResult>((resolve) => {
        const req = (https ? httpsRequest : httpRequest)(
          { host: g.host ?? t.podIP, port, path: g.path ?? '/', method: 'GET', headers, rejectUnauthorized: false, timeout: timeoutMs },
          (res) => {
            res.resume();
            const code = res.statusCode ?? 0;
            resolve({ ok: code >= 200 && code < 400, message: `HTTP probe ${g.path ?? '/'} on ${t.podIP}:${port}: status ${code}` });
          },
        );
        req.on('timeout', () => req.destroy(new Error(`timeout after ${timeoutMs} ms`)));
        req.on('error', (err) => resolve({ ok: false, message: `HTTP probe ${g.path ?? '/'} on ${t.podIP}:${port}: ${err.message}` }));
        req.end();
      });
    }
    if (probe.tcpSocket) {
      const port = resolvePort(probe.tcpSocket.port as number | string, t.container);
      const host = probe.tcpSocket.host ?? t.podIP;
      return await new Promise<ProbeResult>((resolve) => {
        const s = connect({ host, port, timeout: timeoutMs });
        s.on('connect', () => {
          s.destroy();
          resolve({ ok: true, message: `TCP ${host}:${port} open` });
        });
        s.on('timeout', () => s.destroy(new Error(`timeout after ${timeoutMs} ms`)));
        s.on('error', (err) => resolve({ ok: false, message: `TCP probe ${host}:${port}: ${err.message}` }));
      });
    }
    if (probe.exec) {
      const pid = t.pid();
      if (!pid) return { ok: false, message: 'container not running' };
      const cmd = probe.exec.command ?? [];
      return await new Promise<ProbeResult>((resolve) => {
        const child = spawn('nsenter', [`--target=${pid}`, '--mount', '--uts', '--', ...t.privArgs, ...cmd], { env: t.env, stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        child.stdout.on('data', (d: Buffer) => (out += d.toString()));
        child.stderr.on('data', (d: Buffer) => (out += d.toString()));
        const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
        child.on('error', (err) => resolve({ ok: false, message: `exec probe: ${err.message}` }));
        child.on('close', (code, sig) => {
          clearTimeout(timer);
          resolve({ ok: code === 0, message: `exec probe ${cmd.join(' ')}: ${sig ? `killed (${sig}, timeout?)` : `exit ${code}`} ${out.slice(-300).trim()}` });
        });
      });
    }
    return { ok: false, message: 'probe type not supported by the process kubelet (grpc?)' };
  } catch (err) {
    return { ok: false, message: errorText(err) };
  }
}

export type ProbeKind = 'startup' | 'liveness' | 'readiness';

/** One probe's loop; onChange fires when the thresholded result flips. */
export class ProbeLoop {
  private timer?: NodeJS.Timeout;
  private successes = 0;
  private failures = 0;
  private stopped = false;
  paused = false;
  state: boolean;
  lastMessage = '';

  constructor(
    readonly kind: ProbeKind,
    private readonly probe: V1Probe,
    private readonly target: ProbeTarget,
    private readonly onChange: (ok: boolean, message: string) => void,
  ) {
    this.state = kind === 'liveness';
  }

  start(): void {
    this.schedule((this.probe.initialDelaySeconds ?? 0) * 1000);
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.tick(), ms);
  }

  private async tick(): Promise<void> {
    if (!this.paused) {
      const r = await probeOnce(this.probe, this.target);
      if (this.stopped) return;
      this.lastMessage = r.message;
      if (r.ok) {
        this.successes++;
        this.failures = 0;
      } else {
        this.failures++;
        this.successes = 0;
      }
      const threshold = r.ok ? (this.probe.successThreshold ?? 1) : (this.probe.failureThreshold ?? 3);
      const count = r.ok ? this.successes : this.failures;
      if (r.ok !== this.state && count >= threshold) {
        this.state = r.ok;
        this.onChange(r.ok, r.message);
      }
      // A startup probe is done once it succeeded.
      if (this.kind === 'startup' && this.state) return;
    }
    this.schedule((this.probe.periodSeconds ?? 10) * 1000);
  }
}
