// The operator's client of the instance agent API (src/instance/api-types.ts). Short timeouts:
// an agent that does not answer quickly is treated as unreachable, never waited on.
import { AGENT_PORT } from '../api/constants.js';
import { ISOLATION_HEADER, type BootstrapRequest, type CorrectionRequest, type CorrectionResult, type FenceRequest, type FollowRequest, type InstanceStatus, type PostUpgradeRequest, type OperationStatus, type PasswordRequest, type PasswordResult, type PromoteResult, type RestartPermit, type RestartPermitRequest } from './api-types.js';
import { errorText } from '../util/error-text.js';

/** An operation call's answer: done (with its result) within the wait, or still running in the agent. */
export type OperationAnswer<T> = { done: true; result: T } | { done: false; operation: OperationStatus | null };

/** Time for the answer itself on top of an operation's wait. */
const ANSWER_MARGIN_MS = 2000;

export class AgentError extends Error {
  constructor(
    readonly status: number | 'unreachable',
    message: string,
  ) {
    super(message);
  }
}

export interface AgentEndpoint {
  host: string;
  port?: number;
  token: string;
  /** Sent as ISOLATION_HEADER when set. */
  isolationSeconds?: number;
}

export class AgentClient {
  constructor(private readonly timeoutMs = 2000) {}

  private async call<T>(ep: AgentEndpoint, method: 'GET' | 'POST', path: string, body?: unknown, timeoutMs = this.timeoutMs): Promise<T> {
    return (await this.exchange<T>(ep, method, path, body, timeoutMs)).body;
  }

  private async exchange<T>(ep: AgentEndpoint, method: 'GET' | 'POST', path: string, body: unknown, timeoutMs: number): Promise<{ status: number; body: T }> {
    const url = `http://${ep.host}:${ep.port ?? AGENT_PORT}${path}`;
    let res: Response;
    try {
      res = await fetch(url, {
        method,
        headers: {
          authorization: `Bearer ${ep.token}`,
          ...(ep.isolationSeconds !== undefined ? { [ISOLATION_HEADER]: String(ep.isolationSeconds) } : {}),
          ...(body ? { 'content-type': 'application/json' } : {}),
        },
        body: body ? JSON.stringify(body) : undefined,
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (err) {
      throw new AgentError('unreachable', `${method} ${path} on ${ep.host}: ${errorText(err)}`);
    }
    const text = await res.text();
    if (!res.ok) {
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
