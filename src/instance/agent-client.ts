// The operator's client of the instance agent API (src/instance/api-types.ts). Short timeouts:
// an agent that does not answer quickly is treated as unreachable, never waited on. HTTPS with
// the operator's client certificate where the pod serves it (agent-tls.ts), plain HTTP otherwise
// (a pod made before agent TLS); connections are kept alive, so the TLS handshake is not paid per call.
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage, type RequestOptions } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { AGENT_PORT } from '../api/constants.js';
import { ISOLATION_HEADER, type BootstrapRequest, type CorrectionRequest, type CorrectionResult, type FenceRequest, type FollowRequest, type InstanceStatus, type PostUpgradeRequest, type OperationStatus, type PasswordRequest, type PasswordResult, type PromoteResult, type RestartPermit, type RestartPermitRequest } from './api-types.js';
import { errorText } from '../util/error-text.js';
import { isCertificateError } from '../runtime/tls-errors.js';

/** An operation call's answer: done (with its result) within the wait, or still running in the agent. */
export type OperationAnswer<T> = { done: true; result: T } | { done: false; operation: OperationStatus | null };

/** Time for the answer itself on top of an operation's wait. */
const ANSWER_MARGIN_MS = 2000;

export class AgentError extends Error {
  constructor(
    readonly status: number | 'unreachable',
    message: string,
    /** The TLS handshake failed on a certificate (the agent's, or ours refused): credentials may be outdated. */
    readonly certificate = false,
  ) {
    super(message);
  }
}

/** The operator's side of the agent API's TLS: its client certificate and the CA the agent's must chain to. */
export interface AgentClientTls {
  /** Distinguishes credentials (e.g. cluster and serial): connections are pooled per id. */
  id: string;
  ca: string;
  cert: string;
  key: string;
  /** The name the agent's certificate must carry (names.tlsServerName): pods are dialled by IP. */
  servername: string;
}

export interface AgentEndpoint {
  host: string;
  port?: number;
  token: string;
  /** Sent as ISOLATION_HEADER when set. */
  isolationSeconds?: number;
  /** HTTPS with this client certificate (undefined: plain HTTP). */
  tls?: AgentClientTls;
}

/** At most this many pools of TLS connections (one per cluster's credentials): the oldest goes first. */
const MAX_TLS_POOLS = 1000;

export class AgentClient {
  private readonly http = new HttpAgent({ keepAlive: true, maxFreeSockets: 4 });
  private readonly tlsPools = new Map<string, HttpsAgent>();

  constructor(private readonly timeoutMs = 2000) {}

  /**
   * The keep-alive pool of a set of client credentials. An outdated set of the same cluster is let
   * go, not destroyed: a call still running on it (a promote waiting for its answer) finishes, and
   * its idle connections close when the agent's keep-alive timeout ends them.
   */
  private pool(tls: AgentClientTls): HttpsAgent {
    let pool = this.tlsPools.get(tls.id);
    if (pool) return pool;
    const cluster = tls.id.split('#')[0];
    for (const id of this.tlsPools.keys()) {
      if (id.split('#')[0] === cluster || this.tlsPools.size >= MAX_TLS_POOLS) this.tlsPools.delete(id);
    }
    pool = new HttpsAgent({ keepAlive: true, maxFreeSockets: 4, ca: tls.ca, cert: tls.cert, key: tls.key, servername: tls.servername, minVersion: 'TLSv1.3' });
    this.tlsPools.set(tls.id, pool);
    return pool;
  }

  /** Closes every pooled connection (the operator stopping). */
  close(): void {
    this.http.destroy();
    for (const p of this.tlsPools.values()) p.destroy();
    this.tlsPools.clear();
  }

  private send(ep: AgentEndpoint, method: string, path: string, headers: Record<string, string>, payload: Buffer | undefined, timeoutMs: number): Promise<{ status: number; text: string }> {
    const options: RequestOptions = { host: ep.host, port: ep.port ?? AGENT_PORT, method, path, headers, signal: AbortSignal.timeout(timeoutMs), agent: ep.tls ? this.pool(ep.tls) : this.http };
    return new Promise((resolve, reject) => {
      const req = (ep.tls ? httpsRequest : httpRequest)(options, (res: IncomingMessage) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(payload);
    });
  }

  private async call<T>(ep: AgentEndpoint, method: 'GET' | 'POST', path: string, body?: unknown, timeoutMs = this.timeoutMs): Promise<T> {
    return (await this.exchange<T>(ep, method, path, body, timeoutMs)).body;
  }

  private async exchange<T>(ep: AgentEndpoint, method: 'GET' | 'POST', path: string, body: unknown, timeoutMs: number): Promise<{ status: number; body: T }> {
    const payload = body ? Buffer.from(JSON.stringify(body)) : undefined;
    const headers = {
      authorization: `Bearer ${ep.token}`,
      ...(ep.isolationSeconds !== undefined ? { [ISOLATION_HEADER]: String(ep.isolationSeconds) } : {}),
      ...(payload ? { 'content-type': 'application/json', 'content-length': String(payload.length) } : {}),
    };
    let res: { status: number; text: string };
    try {
      res = await this.send(ep, method, path, headers, payload, timeoutMs);
    } catch (err) {
      throw new AgentError('unreachable', `${method} ${path} on ${ep.host}: ${errorText(err)}`, !!ep.tls && isCertificateError(err));
    }
    const text = res.text;
    if (res.status < 200 || res.status >= 300) {
      let message = text;
      try {
        message = (JSON.parse(text) as { error?: string }).error ?? text;
      } catch {
        /* plain text */
      }
      throw new AgentError(res.status, `${method} ${path} on ${ep.host}: HTTP ${res.status}: ${message.slice(0, 300)}`);
    }
    return { status: res.status, body: (text ? JSON.parse(text) : {}) as T };
  }

  /** Starts (or joins) an operation and waits for it at most `waitMs`; it runs on in the agent. */
  private async operate<T>(ep: AgentEndpoint, path: string, waitMs: number, body?: unknown): Promise<OperationAnswer<T>> {
    const r = await this.exchange<T | { operation: OperationStatus | null }>(ep, 'POST', `${path}?wait=${Math.max(0, Math.round(waitMs))}`, body, waitMs + ANSWER_MARGIN_MS);
    return r.status === 202 ? { done: false, operation: (r.body as { operation: OperationStatus | null }).operation ?? null } : { done: true, result: r.body as T };
  }

  status(ep: AgentEndpoint, timeoutMs?: number): Promise<InstanceStatus> {
    return this.call(ep, 'GET', '/v1/status', undefined, timeoutMs);
  }
  bootstrap(ep: AgentEndpoint, req: BootstrapRequest): Promise<unknown> {
    return this.call(ep, 'POST', '/v1/bootstrap', req);
  }
  restartPermit(ep: AgentEndpoint, req: RestartPermitRequest): Promise<RestartPermit> {
    return this.call(ep, 'POST', '/v1/restart-permit', req);
  }
  // Operations: the caller bounds its wait; a rewind or re-clone goes on in the agent and shows
  // in status.operation.
  promote(ep: AgentEndpoint, waitMs: number): Promise<OperationAnswer<PromoteResult>> {
    return this.operate(ep, '/v1/promote', waitMs);
  }
  follow(ep: AgentEndpoint, req: FollowRequest, waitMs = 0): Promise<OperationAnswer<unknown>> {
    return this.operate(ep, '/v1/follow', waitMs, req);
  }
  fence(ep: AgentEndpoint, waitMs: number, req: FenceRequest = {}): Promise<OperationAnswer<unknown>> {
    return this.operate(ep, '/v1/fence', waitMs, req);
  }
  /** A CHECKPOINT on the instance (answered when it is done, or the timeout: it goes on). */
  checkpoint(ep: AgentEndpoint, timeoutMs: number): Promise<unknown> {
    return this.call(ep, 'POST', '/v1/checkpoint', undefined, timeoutMs);
  }
  /** Lifts the fence; the agent starts postgres (answered once it runs, or the timeout: it goes on). */
  unfence(ep: AgentEndpoint, timeoutMs = 10_000): Promise<unknown> {
    return this.call(ep, 'POST', '/v1/unfence', undefined, timeoutMs);
  }
  /** Re-reads the configuration now (pg_reload_conf()); answered once done. */
  reload(ep: AgentEndpoint, timeoutMs: number): Promise<unknown> {
    return this.call(ep, 'POST', '/v1/reload', undefined, timeoutMs);
  }

  /** An anomaly's correction (a vacuum is started in the background: its status reports it). */
  correct(ep: AgentEndpoint, req: CorrectionRequest, timeoutMs = 8000): Promise<CorrectionResult> {
    return this.call(ep, 'POST', '/v1/correct', req, timeoutMs);
  }

  /** A step of a password rotation (answered once done: each step is short). */
  password(ep: AgentEndpoint, req: PasswordRequest, timeoutMs = 6000): Promise<PasswordResult> {
    return this.call(ep, 'POST', '/v1/password', req, timeoutMs);
  }

  /** Starts the post-upgrade work of an upgraded primary in the background (its status reports it). */
  postUpgrade(ep: AgentEndpoint, req: PostUpgradeRequest): Promise<unknown> {
    return this.call(ep, 'POST', '/v1/post-upgrade', req);
  }
}
