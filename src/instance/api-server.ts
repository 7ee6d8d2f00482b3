// The agent's HTTP API (see api-types.ts): routing, bearer-token auth, JSON bodies and errors.
// Served on the pod IP — HTTPS with the operator's client certificate required for /v1/* when the
// pod has its server certificate (agent-tls.ts) — and, for programs inside the pod, on a Unix
// socket, where the token alone is asked for.
import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { unlink } from 'node:fs/promises';
import type { Logger } from '../runtime/logger.js';
import { ISOLATION_HEADER, type BootstrapRequest, type CorrectionRequest, type CorrectionResult, type FenceRequest, type FollowRequest, type InstanceStatus, type OperationStatus, type PasswordRequest, type PasswordResult, type PostUpgradeRequest, type PromoteResult, type RestartPermit, type RestartPermitRequest } from './api-types.js';
import { bearerMatches, HttpError, parseBootstrapRequest, parseCorrectionRequest, parseFenceRequest, parseFollowRequest, parsePasswordRequest, parsePostUpgradeRequest, parseRestartPermitRequest, parseWait } from './requests.js';
import { MAX_PERMIT_SECONDS } from './restart-permit.js';
import { MAX_HOLD_MS } from './passwords.js';
import { listen } from '../runtime/http-server.js';
import { errorText } from '../util/error-text.js';
import { operatorCertificateProblem, readAgentTls, watchAgentTls } from './agent-tls.js';

export interface AgentApi {
  healthy(): boolean;
  ready(): boolean;
  status(): Promise<InstanceStatus>;
  /** Resolves once the bootstrap has been accepted (it continues in the background). */
  bootstrap(req: BootstrapRequest): Promise<void>;
  /** The operations: each promise settles when the operation ends (it runs on without the caller). */
  promote(): Promise<PromoteResult>;
  follow(req: FollowRequest): Promise<void>;
  checkpoint(): Promise<void>;
  fence(req: FenceRequest): Promise<void>;
  /** The current or last operation, for a 202 answer. */
  operation(): OperationStatus | null;
  /**
   * Called on every authenticated request (the operator can reach this instance), with the
   * self-isolation timeout it sent in ISOLATION_HEADER, if a valid one.
   */
  contact?(isolationSeconds: number | undefined): void;
  unfence(): Promise<void>;
  reload(): Promise<void>;
  restartPermit(req: RestartPermitRequest): Promise<RestartPermit>;
  /** Starts an upgraded primary's post-upgrade work in the background. */
  postUpgrade(req: PostUpgradeRequest): Promise<void>;
  /** An anomaly's correction (health.ts): [200 or 202, what was done]. Optional: test doubles may lack it. */
  correct?(req: CorrectionRequest): Promise<[number, CorrectionResult]>;
  /** A step of a password rotation (passwords.ts). Optional: test doubles may lack it. */
  password?(req: PasswordRequest): Promise<PasswordResult>;
}

export interface ApiServerOptions {
  host: string;
  port: number;
  api: AgentApi;
  /** Read per request, so a rotated Secret applies at once. */
  token: () => Promise<string>;
  log: Logger;
  /** HTTPS on host:port with the server certificate, key and client CA in this directory, reloaded on change (undefined: plain HTTP). */
  tlsDir?: string;
}

const MAX_BODY = 64 * 1024;

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) throw new HttpError(413, 'request body too large');
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8').trim();
  if (!text) return {};
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new HttpError(400, 'body is not valid JSON');
  }
}

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body) + '\n');
}

type Route = (req: IncomingMessage) => Promise<[number, unknown]>;

/**
 * Waits for an operation at most `waitMs` (undefined: until it ends): [200, result] when it
 * ended in time (its error is thrown), [202, the operation] otherwise — it keeps running.
 */
export async function awaitOperation<T>(op: Promise<T>, waitMs: number | undefined, current: () => OperationStatus | null): Promise<[number, unknown]> {
  // The operation may fail after we answered 202: its error is in status, not an unhandled rejection.
  op.catch(() => undefined);
  if (waitMs === undefined) return [200, await op];
  let timer: NodeJS.Timeout | undefined;
  const timedOut = Symbol('timeout');
  const first = await Promise.race([op, new Promise<typeof timedOut>((r) => (timer = setTimeout(() => r(timedOut), waitMs)))]).finally(() => clearTimeout(timer));
  return first === timedOut ? [202, { accepted: true, operation: current() }] : [200, first];
}

/** Checks the bearer token (read per request); false when it has answered 401 or 500 already. */
async function authorized(req: IncomingMessage, res: ServerResponse, o: Pick<ApiServerOptions, 'token' | 'log'>): Promise<boolean> {
  let token: string;
  try {
    token = await o.token();
  } catch (err) {
    o.log.error({ err: errorText(err) }, 'cannot read the agent token');
    send(res, 500, { error: 'the agent token is not available' });
    return false;
  }
  if (!bearerMatches(req.headers.authorization, token)) {
    send(res, 401, { error: 'missing or invalid bearer token' });
    return false;
  }
  return true;
}

/** The self-isolation timeout the operator sent: whole seconds from 0 to 3600, else undefined. */
function isolationSeconds(header: string | string[] | undefined): number | undefined {
  const isolation = Number(header ?? NaN);
  return Number.isInteger(isolation) && isolation >= 0 && isolation <= 3600 ? isolation : undefined;
}

/** Runs an authorized route and sends its answer or its error; calls other than GET are logged. */
async function answer(req: IncomingMessage, res: ServerResponse, name: string, route: Route, log: Logger): Promise<void> {
  const started = Date.now();
  try {
    const [status, body] = await route(req);
    if (req.method !== 'GET') log.info({ route: name, status, ms: Date.now() - started }, 'api call');
    send(res, status, body);
  } catch (err) {
    const status = err instanceof HttpError ? err.status : 500;
    const message = errorText(err);
    log[status >= 500 ? 'error' : 'warn']({ route: name, status, err: message, ms: Date.now() - started }, 'api call failed');
    send(res, status, { error: message });
  }
}

/**
 * Why a connection may not call /v1/* at all, whatever its token (undefined: it may): over TLS,
 * a client certificate that is not the operator's.
 */
type TransportCheck = (req: IncomingMessage) => string | undefined;

/** The API on host:port: HTTPS requiring the operator's certificate for /v1/* with o.tls, else HTTP. */
export async function startApiServer(o: ApiServerOptions): Promise<Server> {
  if (!o.tlsDir) return listen(createServer(requestListener(o, () => undefined)), o.port, o.host);
  const files = await readAgentTls(o.tlsDir);
  const options = { ...files, requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.3' as const };
  const server = await listen(createHttpsServer(options, requestListener(o, operatorCertificateProblem)), o.port, o.host);
  server.on('close', watchAgentTls(server, o.tlsDir, files, o.log));
  return server;
}

/** The API on a Unix socket (a stale one of an earlier start of the container replaced): the token alone. */
export async function startLocalApiServer(o: Omit<ApiServerOptions, 'host' | 'port' | 'tlsDir'>, socketPath: string): Promise<Server> {
  await unlink(socketPath).catch(() => undefined);
  const server = createServer(requestListener(o, () => undefined));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return server;
}

function requestListener(o: Omit<ApiServerOptions, 'host' | 'port' | 'tlsDir'>, transport: TransportCheck): RequestListener {
  const { api } = o;
  const ok = { ok: true };
  const routes: Record<string, Route> = {
    'GET /v1/status': async () => [200, await api.status()],
    'POST /v1/bootstrap': async (req) => {
      await api.bootstrap(parseBootstrapRequest(await readJson(req)));
      return [202, { accepted: true }];
    },
    // The wait is parsed before the operation starts: a bad request starts nothing.
    'POST /v1/promote': async (req) => {
      const wait = parseWait(req.url);
      return awaitOperation(api.promote(), wait, () => api.operation());
    },
    'POST /v1/follow': async (req) => {
      const wait = parseWait(req.url);
      const body = parseFollowRequest(await readJson(req));
      return awaitOperation(api.follow(body).then(() => ok), wait, () => api.operation());
    },
    'POST /v1/checkpoint': async () => (await api.checkpoint(), [200, ok]),
    'POST /v1/fence': async (req) => {
      const wait = parseWait(req.url);
      const body = parseFenceRequest(await readJson(req));
      return awaitOperation(api.fence(body).then(() => ok), wait, () => api.operation());
    },
    'POST /v1/unfence': async () => (await api.unfence(), [200, ok]),
    'POST /v1/reload': async () => (await api.reload(), [200, ok]),
    'POST /v1/restart-permit': async (req) => [200, await api.restartPermit(parseRestartPermitRequest(await readJson(req), MAX_PERMIT_SECONDS))],
    'POST /v1/post-upgrade': async (req) => (await api.postUpgrade(parsePostUpgradeRequest(await readJson(req))), [202, ok]),
    'POST /v1/correct': async (req) => {
      const body = parseCorrectionRequest(await readJson(req));
      if (!api.correct) throw new HttpError(404, 'this agent makes no corrections');
      return api.correct(body);
    },
    'POST /v1/password': async (req) => {
      const body = parsePasswordRequest(await readJson(req), MAX_HOLD_MS);
      if (!api.password) throw new HttpError(404, 'this agent rotates no passwords');
      return [200, await api.password(body)];
    },
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    if (req.method === 'GET' && (path === '/healthz' || path === '/readyz')) {
      const good = path === '/healthz' ? api.healthy() : api.ready();
      res.writeHead(good ? 200 : 503, { 'content-type': 'text/plain' }).end(good ? 'ok\n' : 'not ready\n');
      return;
    }
    const route = routes[`${req.method} ${path}`];
    if (!route) {
      send(res, path.startsWith('/v1/') && Object.keys(routes).some((r) => r.endsWith(` ${path}`)) ? 405 : 404, { error: `no route ${req.method} ${path}` });
      return;
    }
    const refused = transport(req);
    if (refused) {
      send(res, 403, { error: refused });
      return;
    }
    if (!(await authorized(req, res, o))) return;
    api.contact?.(isolationSeconds(req.headers[ISOLATION_HEADER]));
    await answer(req, res, `${req.method} ${path}`, route, o.log);
  };

  return (req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) send(res, 500, { error: String(err) });
    });
  };
}
