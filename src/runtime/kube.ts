// Kubernetes clients for the operator: every request counted by verb, resource and status, and
// every request bounded by a timeout (client-node gives none).
import {
  AdmissionregistrationV1Api,
  ApiextensionsV1Api,
  AppsV1Api,
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  IsomorphicFetchHttpLibrary,
  KubeConfig,
  KubernetesObjectApi,
  Observable,
  PolicyV1Api,
  RbacAuthorizationV1Api,
  ResponseContext,
  SelfDecodingBody,
  ServerConfiguration,
  createConfiguration,
  wrapHttpLibrary,
  type Configuration,
  type ConfigurationOptions,
  type ObservableMiddleware,
  type RequestContext,
} from '@kubernetes/client-node';
import type { OperatorMetrics } from './metrics.js';

export interface KubeClients {
  kc: KubeConfig;
  core: CoreV1Api;
  apps: AppsV1Api;
  policy: PolicyV1Api;
  rbac: RbacAuthorizationV1Api;
  coordination: CoordinationV1Api;
  custom: CustomObjectsApi;
  objects: KubernetesObjectApi;
  /** The webhooks' CA injection: the CRD (conversion) and the ValidatingWebhookConfiguration. */
  apiextensions: ApiextensionsV1Api;
  admission: AdmissionregistrationV1Api;
}

/** In-cluster config in a pod, else the given path, else KUBECONFIG / ~/.kube/config. */
export function loadKubeConfig(path?: string): KubeConfig {
  const kc = new KubeConfig();
  if (path) kc.loadFromFile(path);
  else kc.loadFromDefault();
  return kc;
}

/** "GET /apis/apps/v1/namespaces/x/statefulsets/y" → { verb: 'get', resource: 'statefulsets' }. */
export function classifyRequest(method: string, url: string): { verb: string; resource: string } {
  const u = new URL(url, 'http://x');
  const parts = u.pathname.split('/').filter(Boolean);
  // /api/v1/... or /apis/<group>/<version>/...
  let rest = parts[0] === 'api' ? parts.slice(2) : parts.slice(3);
  // namespaces/<ns>/<resource>/... is a namespaced resource; namespaces/<ns>/status is the namespace's own.
  const namespaceSubresource = rest.length === 3 && ['status', 'finalize'].includes(rest[2]!);
  if (rest[0] === 'namespaces' && rest.length >= 3 && !namespaceSubresource) rest = rest.slice(2);
  const resource = rest.length >= 3 ? `${rest[0]}/${rest[2]}` : (rest[0] ?? 'unknown');
  const named = rest.length >= 2;
  const m = method.toUpperCase();
  const verb =
    m === 'GET' ? (u.searchParams.get('watch') === 'true' ? 'watch' : named ? 'get' : 'list')
    : m === 'POST' ? 'create'
    : m === 'PUT' ? 'update'
    : m === 'PATCH' ? 'patch'
    : m === 'DELETE' ? (named ? 'delete' : 'deletecollection')
    : m.toLowerCase();
  return { verb, resource };
}

/**
 * client-node (2.x, undici) gives every request a new undici Agent of its own (its
 * applySecurityAuthentication builds one per call), so each call would pay a TCP and TLS handshake
 * (measured with 1.x's per-request https.Agent: reconcile p50 417 ms at 40 clusters) and leave an
 * idle socket behind. Requests for the same cluster and user share the first one instead, as
 * client-node itself does for its https.Agent (like client-go, a rotated CA or client certificate
 * needs a restart). Requests without TLS settings carry no dispatcher and use undici's global one.
 */
class SharedDispatchers {
  private readonly byIdentity = new Map<string, NonNullable<ReturnType<RequestContext['getDispatcher']>>>();

  constructor(private readonly kc: KubeConfig) {}

  reuse(request: RequestContext): void {
    const own = request.getDispatcher();
    if (!own) return;
    const cluster = this.kc.getCurrentCluster();
    const key = JSON.stringify([cluster?.name ?? null, cluster?.server ?? null, this.kc.getCurrentUser()?.name ?? null]);
    const shared = this.byIdentity.get(key);
    if (shared) request.setDispatcher(shared);
    else this.byIdentity.set(key, own);
  }
}

/** Budget of an ordinary API call, from sending the request to the last byte of the response. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;

/** A Kubernetes API call that got no complete answer within its budget. */
export class KubeTimeoutError extends Error {
  override readonly name = 'KubeTimeoutError';
  constructor(
    readonly method: string,
    readonly path: string,
    readonly timeoutMs: number,
  ) {
    super(`${method} ${path}: Kubernetes API call timed out after ${timeoutMs} ms`);
  }
}

export function isKubeTimeout(err: unknown): err is KubeTimeoutError {
  return err instanceof KubeTimeoutError;
}

// Per-call budgets set by withTimeout(), read by the HTTP library below. Keyed by the request
// itself so that overlapping calls never see each other's budget.
const callTimeouts = new WeakMap<RequestContext, number>();

/**
 * Per-call options giving this one call its own budget instead of the clients' default, e.g.
 * `api.readNamespacedLease({ name, namespace }, withTimeout(ms))`. Composes with
 * setHeaderOptions (pass its result as `opt`, or this one's to it). Only for clients made by
 * makeClients: other clients ignore it.
 */
export function withTimeout(ms: number, opt?: ConfigurationOptions<ObservableMiddleware>): ConfigurationOptions<ObservableMiddleware> {
  if (!(ms > 0)) throw new Error(`withTimeout: the timeout must be a positive number of milliseconds, got ${ms}`);
  const budget: ObservableMiddleware = {
    pre: (request) => {
      callTimeouts.set(request, Math.ceil(ms));
      return new Observable(Promise.resolve(request));
    },
    post: (response) => new Observable(Promise.resolve(response)),
  };
  // 'append' as setHeaderOptions does: per-call middleware adds to, never replaces, the rest.
  return { ...opt, middleware: [...(opt?.middleware ?? []), budget], middlewareMergeStrategy: 'append' };
}

export interface KubeClientOptions {
  /** Default budget of every call made through these clients (watches do not use them). */
  requestTimeoutMs?: number;
}

function clientConfiguration(kc: KubeConfig, metrics: OperatorMetrics | undefined, opts: KubeClientOptions): Configuration {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('kubeconfig has no current cluster: set a context or pass --kubeconfig');
  const defaultTimeoutMs = opts.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  if (!(defaultTimeoutMs > 0)) throw new Error(`requestTimeoutMs must be a positive number of milliseconds, got ${defaultTimeoutMs}`);
  const fetchLibrary = new IsomorphicFetchHttpLibrary();
  const dispatchers = new SharedDispatchers(kc);
  // Wrapping the HTTP library sees each request with its own response, even when calls overlap.
  // Every typed client (and KubernetesObjectApi) sends through it, so the budget below applies
  // to all of their calls. Watches and informer lists do not come through here (client-node's
  // Watch has its own fetch; lists use raw-request.ts): they are long-lived or budgeted there.
  const httpApi = wrapHttpLibrary({
    async send(request: RequestContext): Promise<ResponseContext> {
      dispatchers.reuse(request);
      const method = String(request.getHttpMethod());
      const url = request.getUrl();
      const { verb, resource } = classifyRequest(method, url);
      const timeoutMs = callTimeouts.get(request) ?? defaultTimeoutMs;
      // client-node sends no timeout of its own: without this, a call to an apiserver that stops
      // answering (half-open connection, overloaded or partitioned apiserver) hangs forever, and
      // with it a reconcile or a leader's Lease renewal. undici aborts the request and
      // destroys the socket when the signal fires, so a hung socket never returns to the pool.
      const deadline = new AbortController();
      const timer = setTimeout(() => deadline.abort(new KubeTimeoutError(method, new URL(url).pathname, timeoutMs)), timeoutMs);
      const callerSignal = request.getSignal();
      request.setSignal(callerSignal ? AbortSignal.any([callerSignal, deadline.signal]) : deadline.signal);
      try {
        const response = await untilAborted(fetchLibrary.send(request).toPromise(), deadline.signal);
        // Read the body within the same budget: headers followed by a stalled body would
        // otherwise hang the caller later, in deserialization, where no timer runs.
        // (client-node 2.0.1's body.binary() calls node-fetch's resp.buffer(), which undici's
        // Response lacks: read the stream.)
        const data = await untilAborted(readAll(response.body.stream()), deadline.signal);
        metrics?.apiRequests.inc({ verb, resource, code: String(response.httpStatusCode) });
        return new ResponseContext(response.httpStatusCode, response.headers, new SelfDecodingBody(Promise.resolve(data)));
      } catch (err) {
        if (deadline.signal.aborted) {
          metrics?.apiRequests.inc({ verb, resource, code: 'timeout' });
          // fetch rejects with a generic AbortError (or our reason); say what timed out instead.
          throw deadline.signal.reason as KubeTimeoutError;
        }
        metrics?.apiRequests.inc({ verb, resource, code: 'error' });
        throw err;
      } finally {
        clearTimeout(timer);
      }
    },
  });
  return createConfiguration({ baseServer: new ServerConfiguration(cluster.server, {}), authMethods: { default: kc }, httpApi });
}

/** Every byte of a response body (none when the response has no body). */
async function readAll(body: ReadableStream<Uint8Array> | null | undefined): Promise<Buffer> {
  if (!body) return Buffer.alloc(0);
  const chunks: Uint8Array[] = [];
  for await (const chunk of body) chunks.push(chunk);
  return Buffer.concat(chunks);
}

/** The promise, or a rejection with the signal's reason as soon as it aborts (whichever is first). */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

/**
 * Typed clients sharing one configuration: keep-alive connections, request metrics, and a
 * budget on every call (DEFAULT_REQUEST_TIMEOUT_MS unless opts or withTimeout() say otherwise).
 */
export function makeClients(kc: KubeConfig, metrics?: OperatorMetrics, opts: KubeClientOptions = {}): KubeClients {
  const config = clientConfiguration(kc, metrics, opts);
  return {
    kc,
    core: new CoreV1Api(config),
    apps: new AppsV1Api(config),
    policy: new PolicyV1Api(config),
    rbac: new RbacAuthorizationV1Api(config),
    coordination: new CoordinationV1Api(config),
    custom: new CustomObjectsApi(config),
    objects: new KubernetesObjectApi(config),
    apiextensions: new ApiextensionsV1Api(config),
    admission: new AdmissionregistrationV1Api(config),
  };
}
