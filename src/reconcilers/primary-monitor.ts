// Fast, careful detection of a failed primary. Every primary gets a sub-second heartbeat to its
// agent; a missed heartbeat is confirmed by speaking PostgreSQL's protocol to the server itself
// (an SSLRequest a live postmaster answers at once, even under load or at max_connections)
// before the primary counts as failed — a slow agent alone never triggers a failover.
// The wire check starts when the heartbeat is late, not after it timed out, so a frozen primary
// (its kernel still accepts TCP, nothing answers) is confirmed within about a second.
// A primary that answers but is not a writable primary (restarted read-only, fenced) is not
// failed, but the cluster is looked at at once: the operator has something to do.
import { POSTGRES_PORT } from '../api/constants.js';
import type { AgentClient, AgentEndpoint } from '../instance/agent-client.js';
import { postgresAnswers } from '../postgres/wire-probe.js';

export interface MonitorOptions {
  intervalMs?: number;
  heartbeatTimeoutMs?: number;
  /** A heartbeat not back after this long starts the wire check alongside it. */
  confirmAfterMs?: number;
  confirmTimeoutMs?: number;
}

export type MonitorEvent = 'failed' | 'unhealthy';

interface Watched {
  ep: AgentEndpoint;
  timer: NodeJS.Timeout;
  failedSince?: number;
  busy: boolean;
}

export class PrimaryMonitor {
  private readonly watched = new Map<string, Watched>();
  private readonly interval: number;
  private readonly heartbeatTimeout: number;
  private readonly confirmTimeout: number;
  private readonly confirmAfter: number;

  constructor(
    private readonly agent: AgentClient,
    /** 'failed': confirmed failed (once per failure); 'unhealthy': answers, but not as a writable primary. */
    private readonly onEvent: (key: string, event: MonitorEvent) => void,
    opts: MonitorOptions = {},
  ) {
    this.interval = opts.intervalMs ?? 250;
    this.heartbeatTimeout = opts.heartbeatTimeoutMs ?? 400;
    this.confirmAfter = opts.confirmAfterMs ?? 150;
    // A live postmaster answers an SSLRequest in milliseconds even under pgbench load (a fork and
    // one read); 500 ms gave one false failover on a machine saturated by three test suites.
    this.confirmTimeout = opts.confirmTimeoutMs ?? 700;
  }

  /** Watch the primary of `key` at `ep` (replacing what was watched before, e.g. after a failover). */
  watch(key: string, ep: AgentEndpoint): void {
    const current = this.watched.get(key);
    if (current && current.ep.host === ep.host && current.ep.token === ep.token) return;
    this.unwatch(key);
    const w: Watched = { ep, busy: false, timer: setInterval(() => void this.beat(key, w), this.interval) };
    w.timer.unref();
    this.watched.set(key, w);
  }

  unwatch(key: string): void {
    const w = this.watched.get(key);
    if (w) clearInterval(w.timer);
    this.watched.delete(key);
  }

  /** When the watched primary of `key` was confirmed failed, if it is failed now. */
  failedSince(key: string, host: string): number | undefined {
    const w = this.watched.get(key);
    return w && w.ep.host === host ? w.failedSince : undefined;
  }

  stop(): void {
    for (const key of [...this.watched.keys()]) this.unwatch(key);
  }

  private async beat(key: string, w: Watched): Promise<void> {
    if (w.busy) return;
    w.busy = true;
    let timer: NodeJS.Timeout | undefined;
    try {
      // Bounded here too: a beat must end even if a client ignored its timeout.
      let deadline: NodeJS.Timeout | undefined;
      const heartbeat = Promise.race([
        this.agent.status(w.ep, this.heartbeatTimeout).then((s) => (s.running && s.role === 'primary' && !s.fenced ? ('healthy' as const) : ('unhealthy' as const))),
        new Promise<'down'>((r) => (deadline = setTimeout(() => r('down'), this.heartbeatTimeout + 50))),
      ])
        .catch(() => 'down' as const)
        .finally(() => clearTimeout(deadline));
      // Only a late heartbeat costs a connection to postgres (a backend fork each) before it ends.
      const first = await Promise.race([heartbeat, new Promise<'late'>((r) => (timer = setTimeout(() => r('late'), this.confirmAfter)))]);
      const wire = first === 'late' ? postgresAnswers(w.ep.host, POSTGRES_PORT, this.confirmTimeout) : undefined;
      const beat = first === 'late' ? await heartbeat : first;
      if (beat === 'healthy') {
        w.failedSince = undefined;
        return;
      }
      // Not a writable primary (read-only after a restart, fenced, postgres down): look now.
      if (beat === 'unhealthy') this.onEvent(key, 'unhealthy');
      if (await (wire ?? postgresAnswers(w.ep.host, POSTGRES_PORT, this.confirmTimeout))) {
        w.failedSince = undefined;
        return;
      }
      if (w.failedSince === undefined) {
        w.failedSince = Date.now();
        this.onEvent(key, 'failed');
      }
    } finally {
      clearTimeout(timer);
      w.busy = false;
    }
  }
}
