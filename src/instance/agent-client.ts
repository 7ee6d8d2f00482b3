// The operator's client of the instance agent API (src/instance/api-types.ts). Short timeouts:
// an agent that does not answer quickly is treated as unreachable, never waited on.
import { AGENT_PORT } from '../api/constants.js';
import type { BootstrapRequest, FollowRequest, InstanceStatus, PromoteResult } from './api-types.js';

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
}

export class AgentClient {
  constructor(private readonly timeoutMs = 2000) {}

  private async call<T>(ep: AgentEndpoint, method: 'GET' | 'POST', path: string, body?: unknown, timeoutMs = this.timeoutMs): Promise<T> {
    const url = `http://${ep.host}:${ep.port ?? AGENT_PORT}${path}`;
    let res: Response;
    try {
      res = await fetch(url, {
        method,
        headers: { authorization: `Bearer ${ep.token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
        body: body ? JSON.stringify(body) : undefined,
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (err) {
      throw new AgentError('unreachable', `${method} ${path} on ${ep.host}: ${(err as Error).message}`);
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
    return (text ? JSON.parse(text) : {}) as T;
  }

  status(ep: AgentEndpoint, timeoutMs?: number): Promise<InstanceStatus> {
    return this.call(ep, 'GET', '/v1/status', undefined, timeoutMs);
  }
  bootstrap(ep: AgentEndpoint, req: BootstrapRequest): Promise<unknown> {
    return this.call(ep, 'POST', '/v1/bootstrap', req);
  }
  promote(ep: AgentEndpoint): Promise<PromoteResult> {
    return this.call(ep, 'POST', '/v1/promote', undefined, 70_000);
  }
  follow(ep: AgentEndpoint, req: FollowRequest): Promise<unknown> {
    // A demotion may rewind or even re-clone: allow it time.
    return this.call(ep, 'POST', '/v1/follow', req, 600_000);
  }
  checkpoint(ep: AgentEndpoint): Promise<unknown> {
    return this.call(ep, 'POST', '/v1/checkpoint', undefined, 120_000);
  }
  fence(ep: AgentEndpoint, timeoutMs = 60_000): Promise<unknown> {
    return this.call(ep, 'POST', '/v1/fence', undefined, timeoutMs);
  }
  unfence(ep: AgentEndpoint): Promise<unknown> {
    return this.call(ep, 'POST', '/v1/unfence', undefined, 60_000);
  }
}
