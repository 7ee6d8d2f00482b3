/**
 * Every Kubernetes API call the operator makes has a budget: a local HTTP server that stalls
 * (never answers, or sends headers and then nothing) stands in for a hung apiserver.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { KubeConfig, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { afterEach, describe, expect, it } from 'vitest';
import { classifyRequest, KubeTimeoutError, makeClients, withTimeout } from './kube.js';
import { OperatorMetrics } from './metrics.js';
import { getJson } from './raw-request.js';

interface Stub {
  kc: KubeConfig;
  requests: IncomingMessage[];
  /** Sockets the server saw closed (the client gave up on them). */
  closed: () => number;
}

let servers: { server: Server; sockets: Set<Socket> }[] = [];

/** A loopback "apiserver" answering each request with `handle` (which may never answer). */
async function stub(handle: (req: IncomingMessage, res: ServerResponse) => void): Promise<Stub> {
  const requests: IncomingMessage[] = [];
  const sockets = new Set<Socket>();
  let closed = 0;
  const server = createServer((req, res) => {
    requests.push(req);
    handle(req, res);
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => closed++);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  servers.push({ server, sockets });
  const port = (server.address() as { port: number }).port;
  const kc = new KubeConfig();
  kc.loadFromOptions({
    // http:// needs skipTLSVerify in client-node.
    clusters: [{ name: 'stub', server: `http://127.0.0.1:${port}`, skipTLSVerify: true }],
    users: [{ name: 'u', token: 't' }],
    contexts: [{ name: 'stub', cluster: 'stub', user: 'u' }],
    currentContext: 'stub',
  });
  return { kc, requests, closed: () => closed };
}

const never = () => {};

afterEach(async () => {
  for (const { server, sockets } of servers) {
    for (const s of sockets) s.destroy();
    await new Promise((r) => server.close(r));
  }
  servers = [];
});

async function timed<T>(p: Promise<T>): Promise<{ err: unknown; ms: number }> {
  const t0 = Date.now();
  try {
    await p;
    return { err: undefined, ms: Date.now() - t0 };
  } catch (err) {
    return { err, ms: Date.now() - t0 };
  }
}

describe('Kubernetes API call timeouts', () => {
  it('a call to an apiserver that never answers rejects within its budget, naming the call', async () => {
    const { kc } = await stub(never);
    const metrics = new OperatorMetrics();
    const clients = makeClients(kc, metrics, { requestTimeoutMs: 300 });
    const { err, ms } = await timed(clients.core.readNamespacedPod({ name: 'p', namespace: 'ns' }));
    expect(err).toBeInstanceOf(KubeTimeoutError);
    expect((err as Error).message).toBe('GET /api/v1/namespaces/ns/pods/p: Kubernetes API call timed out after 300 ms');
    expect(ms).toBeGreaterThanOrEqual(250);
    expect(ms).toBeLessThan(3_000);
    const counted = (await metrics.apiRequests.get()).values.find((v) => v.labels.code === 'timeout');
    expect(counted?.labels).toMatchObject({ verb: 'get', resource: 'pods' });
  });

  it('headers followed by a stalled body time out too, and the hung connection is closed', async () => {
    const s = await stub((_req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.write('{"kind":"Pod","metadata":{"name":');
    });
    const clients = makeClients(s.kc, undefined, { requestTimeoutMs: 300 });
    const { err, ms } = await timed(clients.core.listNamespacedPod({ namespace: 'ns' }));
    expect((err as Error).message).toMatch(/^GET \/api\/v1\/namespaces\/ns\/pods: Kubernetes API call timed out after 300 ms$/);
    expect(ms).toBeLessThan(3_000);
    // A hung socket must not go back to a pool where the next call would hang on it.
    for (let i = 0; i < 40 && s.closed() === 0; i++) await sleep(50);
    expect(s.closed()).toBe(1);
  });

  it('withTimeout gives one call its own budget, and composes with setHeaderOptions', async () => {
    const s = await stub(never);
    const clients = makeClients(s.kc); // the 10 s default: the per-call budget must win
    const { err, ms } = await timed(
      clients.core.patchNamespacedPod({ name: 'p', namespace: 'ns', body: { metadata: { labels: { a: 'b' } } } }, withTimeout(200, setHeaderOptions('Content-Type', PatchStrategy.MergePatch))),
    );
    expect((err as Error).message).toBe('PATCH /api/v1/namespaces/ns/pods/p: Kubernetes API call timed out after 200 ms');
    expect(ms).toBeLessThan(3_000);
    expect(s.requests[0]?.headers['content-type']).toBe(PatchStrategy.MergePatch);
  });

  it('an answer within the budget comes back whole', async () => {
    const { kc } = await stub((_req, res) => {
      setTimeout(() => {
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: 'ns' } }));
      }, 100);
    });
    const metrics = new OperatorMetrics();
    const clients = makeClients(kc, metrics, { requestTimeoutMs: 2_000 });
    const pod = await clients.core.readNamespacedPod({ name: 'p', namespace: 'ns' });
    expect(pod.metadata?.name).toBe('p');
    const codes = (await metrics.apiRequests.get()).values.map((v) => v.labels.code);
    expect(codes).toEqual(['200']);
  });

  it('calls through the same clients share one keep-alive connection', async () => {
    const s = await stub((_req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: 'ns' } }));
    });
    let connections = 0;
    servers.at(-1)!.server.on('connection', () => connections++);
    const clients = makeClients(s.kc);
    for (let i = 0; i < 10; i++) expect((await clients.core.readNamespacedPod({ name: 'p', namespace: 'ns' })).metadata?.name).toBe('p');
    await clients.apps.listNamespacedStatefulSet({ namespace: 'ns' }).catch(() => undefined);
    expect(s.requests).toHaveLength(11);
    // client-node alone opens one per call (11); a call that follows at once may find the
    // previous connection not yet back in the pool and open a second one.
    expect(connections).toBeLessThanOrEqual(2);
  });

  it('KubernetesObjectApi calls are bounded as well', async () => {
    const { kc } = await stub(never);
    const clients = makeClients(kc, undefined, { requestTimeoutMs: 300 });
    const { err, ms } = await timed(clients.objects.read({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: 'ns' } }));
    // Its first call is the discovery of /api/v1.
    expect((err as Error).message).toMatch(/GET \/api\/v1: Kubernetes API call timed out after 300 ms/);
    expect(ms).toBeLessThan(3_000);
  });

  it('informer lists (getJson) have a deadline on the whole exchange', async () => {
    const { kc } = await stub((_req, res) => {
      // Trickles bytes: an idle timeout would never fire.
      res.writeHead(200, { 'Content-Type': 'application/json' });
      const t = setInterval(() => res.write(' '), 50);
      res.on('close', () => clearInterval(t));
    });
    const { err, ms } = await timed(getJson(kc, '/api/v1/pods', {}, { timeoutMs: 400 }));
    expect((err as Error).message).toBe('GET /api/v1/pods: Kubernetes API call timed out after 400 ms');
    expect(ms).toBeLessThan(3_000);
  });

  it('withTimeout refuses a budget that is not a positive number', () => {
    expect(() => withTimeout(0)).toThrow(/positive/);
    expect(() => withTimeout(Number.NaN)).toThrow(/positive/);
  });
});

describe('classifyRequest', () => {
  it.each([
    ['GET', '/api/v1/namespaces/ns/pods', 'list', 'pods'],
    ['GET', '/api/v1/namespaces/ns/pods?labelSelector=a%3Db', 'list', 'pods'],
    ['GET', '/api/v1/namespaces/ns/pods?watch=true&resourceVersion=5', 'watch', 'pods'],
    ['GET', '/api/v1/namespaces/ns/pods/p-0', 'get', 'pods'],
    ['GET', '/api/v1/pods', 'list', 'pods'],
    ['GET', '/apis/apps/v1/statefulsets?watch=true', 'watch', 'statefulsets'],
    ['GET', '/apis/apps/v1/namespaces/x/statefulsets/y', 'get', 'statefulsets'],
    ['POST', '/apis/apps/v1/namespaces/x/statefulsets', 'create', 'statefulsets'],
    ['PUT', '/apis/coordination.k8s.io/v1/namespaces/x/leases/l', 'update', 'leases'],
    ['patch', '/apis/postgres.pgpilot.io/v1/namespaces/ns/postgresqlclusters/c/status', 'patch', 'postgresqlclusters/status'],
    ['PATCH', '/apis/postgres.pgpilot.io/v1/namespaces/ns/postgresqlclusters/c/scale', 'patch', 'postgresqlclusters/scale'],
    ['DELETE', '/api/v1/namespaces/ns/persistentvolumeclaims/pgdata-c-1-0', 'delete', 'persistentvolumeclaims'],
    ['POST', '/api/v1/namespaces/ns/pods/p/eviction', 'create', 'pods/eviction'],
    ['GET', '/api/v1/nodes/n1', 'get', 'nodes'],
    ['GET', '/api/v1/nodes', 'list', 'nodes'],
    ['GET', '/api/v1/namespaces', 'list', 'namespaces'],
    ['GET', '/api/v1/namespaces/ns', 'get', 'namespaces'],
    ['GET', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions/postgresqlclusters.postgres.pgpilot.io', 'get', 'customresourcedefinitions'],
    ['GET', 'https://10.0.0.1:6443/apis/apps/v1/namespaces/x/statefulsets/y', 'get', 'statefulsets'],
  ])('%s %s is %s %s', (method, url, verb, resource) => {
    expect(classifyRequest(method, url)).toEqual({ verb, resource });
  });

  // Regression (fixed): classifyRequest strips "namespaces/<ns>" whenever more follows, so the namespace's own
  // subresources (status, finalize) are counted as resource "status"/"finalize" with verb "list".
  it('classifies a namespace\'s own subresources as namespaces/<sub>', () => {
    expect(classifyRequest('PUT', '/api/v1/namespaces/ns/finalize')).toEqual({ verb: 'update', resource: 'namespaces/finalize' });
    expect(classifyRequest('GET', '/api/v1/namespaces/ns/status')).toEqual({ verb: 'get', resource: 'namespaces/status' });
  });

  // Regression (fixed): a DELETE on a collection is Kubernetes' "deletecollection" verb (what RBAC and the
  // apiserver's own metrics call it); classifyRequest reports it as "delete".
  it('classifies DELETE on a collection as deletecollection', () => {
    expect(classifyRequest('DELETE', '/api/v1/namespaces/ns/pods?labelSelector=a%3Db')).toEqual({ verb: 'deletecollection', resource: 'pods' });
  });
});
