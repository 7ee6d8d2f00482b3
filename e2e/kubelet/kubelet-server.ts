// The process kubelet's HTTPS API on 127.0.0.1 (a free port, advertised in the Node's
// daemonEndpoints.kubeletEndpoint.Port): what the apiserver calls for `kubectl logs` and
// `kubectl exec`, and what metrics-server scrapes (GET /metrics/resource, resource-metrics.ts).
//
// TLS both ways, as with a real kubelet:
// - serving: a key made here and a certificate from the cluster's signer through a
//   CertificateSigningRequest (signer kubernetes.io/kubelet-serving, approved by this kubelet
//   with the admin credentials it runs on, signed by the controller-manager's csrsigning
//   controller); the apiserver checks it with --kubelet-certificate-authority. Without a signer
//   (no controller-manager) it falls back to a self-signed certificate, which an apiserver that
//   verifies will refuse.
// - client: only a client certificate from the apiserver's client CA (the `client-ca-file` of
//   kube-system/extension-apiserver-authentication, i.e. --client-ca-file) gets through the TLS
//   handshake; the apiserver presents its --kubelet-client-certificate. No further
//   authorization (a real kubelet asks the apiserver with a SubjectAccessReview).
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { Duplex } from 'node:stream';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import type { V1ContainerStatus } from '@kubernetes/client-node';
import type { Logger } from '../../src/runtime/logger.js';
import { errorText } from '../../src/util/error-text.js';
import type { KubeApi } from './api.js';
import { chooseInstance, parseLogQuery, serveContainerLog, type LogSink } from './container-logs.js';
import { ExecSession, negotiateProtocol, parseExecQuery, type ExecTarget } from './exec.js';
import { collectResourceMetrics, formatResourceMetrics, type MetricsContainer } from './resource-metrics.js';

const run = promisify(execFile);
const OPENSSL = '/usr/bin/openssl';

/** One container of a pod as the API sees it (from the pod worker). */
export interface ContainerView {
  status: V1ContainerStatus;
  running: boolean;
  logPath: string;
  /** Resolves when the current start ends (running containers only). */
  exited?: Promise<unknown>;
  /** Set while running. */
  exec?: ExecTarget;
}

export interface PodView {
  /** The container, init containers included; undefined when the pod has none of that name. */
  view(name: string): ContainerView | undefined;
}

export interface KubeletServerOptions {
  api: KubeApi;
  nodeName: string;
  /** Where the key, CSR and certificate go. */
  pkiDir: string;
  log: Logger;
  findPod(namespace: string, name: string): PodView | undefined;
  /** Every running container, for GET /metrics/resource (metrics-server). */
  metricsContainers?(): MetricsContainer[];
}

export interface KubeletServer {
  port: number;
  stop(): Promise<void>;
}

/** Starts the server; undefined (and a warning) when the cluster has no client CA to check callers with. */
export async function startKubeletServer(o: KubeletServerOptions): Promise<KubeletServer | undefined> {
  const clientCa = await apiserverClientCa(o.api).catch((err: unknown) => {
    o.log.warn({ err: errorText(err) }, 'kubelet API disabled: cannot read the apiserver client CA');
    return undefined;
  });
  if (!clientCa) {
    o.log.warn('kubelet API disabled: the apiserver has no --client-ca-file (extension-apiserver-authentication has no client-ca-file)');
    return undefined;
  }
  const { key, cert } = await servingCertificate(o);
  const sessions = new Set<ExecSession>();
  const server = createServer({ key, cert, ca: clientCa, requestCert: true, rejectUnauthorized: true }, (req, res) => {
    void handleRequest(o, req, res).catch((err: unknown) => {
      o.log.warn({ url: req.url, err: errorText(err) }, 'kubelet API request failed');
      if (!res.headersSent) plain(res, 500, errorText(err));
      else res.destroy();
    });
  });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const session = handleUpgrade(o, req, socket, head);
    if (session) {
      sessions.add(session);
      void session.done.then(() => sessions.delete(session));
    }
  });
  server.on('tlsClientError', (err) => o.log.debug({ err: err.message }, 'kubelet API: TLS handshake refused'));
  const port = await listen(server);
  o.log.info({ port }, 'kubelet API listening on 127.0.0.1');
  return {
    port,
    stop: async () => {
      for (const s of sessions) s.kill();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const a = server.address();
      if (typeof a === 'object' && a) resolve(a.port);
      else reject(new Error('kubelet API: no port'));
    });
  });
}

// ---- routes --------------------------------------------------------------------------------

function plain(res: ServerResponse, code: number, text: string): void {
  res.writeHead(code, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

/** /<verb>/<namespace>/<pod>/<container> → its parts (the verbs the apiserver proxies to). */
function routeOf(url: URL): { verb: string; namespace: string; pod: string; container: string } | undefined {
  const parts = url.pathname.split('/').slice(1).map(decodeURIComponent);
  if (parts.length !== 4 || parts.some((p) => !p)) return undefined;
  const [verb, namespace, pod, container] = parts as [string, string, string, string];
  return { verb, namespace, pod, container };
}

async function handleRequest(o: KubeletServerOptions, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'https://kubelet');
  if (url.pathname === '/healthz') return plain(res, 200, 'ok');
  if (url.pathname === '/metrics/resource' && req.method === 'GET' && o.metricsContainers) {
    const body = formatResourceMetrics(await collectResourceMetrics(o.metricsContainers()));
    res.writeHead(200, { 'Content-Type': 'text/plain; version=0.0.4; charset=utf-8', 'Content-Length': Buffer.byteLength(body) });
    return void res.end(body);
  }
  const route = routeOf(url);
  if (route?.verb === 'exec') return plain(res, 400, 'Upgrade request required');
  if (route?.verb !== 'containerLogs' || req.method !== 'GET') return plain(res, 404, '404 page not found');
  const query = parseLogQuery(url.searchParams);
  if ('error' in query) return plain(res, 400, query.error);
  const pod = o.findPod(route.namespace, route.pod);
  if (!pod) return plain(res, 404, `pod "${route.pod}" does not exist`);
  const c = pod.view(route.container);
  if (!c) return plain(res, 404, `container "${route.container}" not found in pod "${route.pod}"`);
  const choice = chooseInstance(c.status, c.running, query.previous, route.pod);
  if ('error' in choice) return plain(res, 400, choice.error);
  res.writeHead(200, { 'Content-Type': 'text/plain' });
  res.flushHeaders();
  let closed = false;
  res.on('close', () => (closed = true));
  const sink: LogSink = {
    write: (data) => res.write(data),
    drained: () => new Promise((r) => (closed ? r() : (res.once('drain', r), res.once('close', r)))),
    get closed() {
      return closed;
    },
  };
  const follow = query.follow && choice.live && c.exited ? { exited: c.exited } : undefined;
  await serveContainerLog(c.logPath, route.container, choice, query, sink, follow);
  res.end();
}

function rawResponse(socket: Duplex, code: number, reason: string, text: string): undefined {
  socket.end(`HTTP/1.1 ${code} ${reason}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(text)}\r\nConnection: close\r\n\r\n${text}`);
  return undefined;
}

/** The checks the kubelet makes before it upgrades, then the SPDY session. */
function handleUpgrade(o: KubeletServerOptions, req: IncomingMessage, socket: Duplex, head: Buffer): ExecSession | undefined {
  socket.on('error', () => undefined);
  const url = new URL(req.url ?? '/', 'https://kubelet');
  const route = routeOf(url);
  if (route?.verb !== 'exec') return rawResponse(socket, 404, 'Not Found', '404 page not found');
  if ((req.headers.upgrade ?? '').toLowerCase() !== 'spdy/3.1') return rawResponse(socket, 400, 'Bad Request', `unsupported upgrade protocol ${req.headers.upgrade ?? ''}`);
  const opts = parseExecQuery(url.searchParams);
  if ('error' in opts) return rawResponse(socket, 400, 'Bad Request', opts.error);
  const pod = o.findPod(route.namespace, route.pod);
  if (!pod) return rawResponse(socket, 404, 'Not Found', 'pod does not exist');
  const target = pod.view(route.container);
  if (!target?.running || !target.exec) return rawResponse(socket, 500, 'Internal Server Error', `container not found ("${route.container}")`);
  const offered = req.headersDistinct['x-stream-protocol-version'] ?? [];
  const protocol = negotiateProtocol(offered);
  if (!protocol) {
    return rawResponse(socket, 403, 'Forbidden', `unable to upgrade: unable to negotiate protocol: client supports [${offered.join(' ')}], server supports [v4.channel.k8s.io v3.channel.k8s.io v2.channel.k8s.io]`);
  }
  socket.write(`HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: ${protocol}\r\n\r\n`);
  o.log.info({ pod: `${route.namespace}/${route.pod}`, container: route.container, command: opts.command, tty: opts.tty, protocol }, 'exec');
  return new ExecSession(socket, protocol, opts, target.exec, o.log.child({ part: 'exec' }), head);
}

// ---- TLS material --------------------------------------------------------------------------

async function apiserverClientCa(api: KubeApi): Promise<string | undefined> {
  const cm = await api.get<{ data?: Record<string, string> }>('/api/v1/namespaces/kube-system/configmaps/extension-apiserver-authentication');
  return cm.data?.['client-ca-file'];
}

interface Csr {
  metadata: { name: string };
  status?: { certificate?: string; conditions?: { type: string; message?: string }[] };
}

/** A P-256 key and a certificate for 127.0.0.1/localhost from the cluster's kubelet-serving signer. */
async function servingCertificate(o: KubeletServerOptions): Promise<{ key: string; cert: string }> {
  await mkdir(o.pkiDir, { recursive: true, mode: 0o700 });
  const keyPath = join(o.pkiDir, 'kubelet.key');
  const csrPath = join(o.pkiDir, 'kubelet.csr');
  const subj = `/O=system:nodes/CN=system:node:${o.nodeName}`;
  const san = 'subjectAltName=IP:127.0.0.1,DNS:localhost';
  await run(OPENSSL, ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', keyPath, '-out', csrPath, '-subj', subj, '-addext', san]);
  const key = await readFile(keyPath, 'utf8');
  try {
    return { key, cert: await signThroughCluster(o, await readFile(csrPath)) };
  } catch (err) {
    o.log.warn({ err: errorText(err) }, 'kubelet serving certificate not signed by the cluster: self-signed (an apiserver that verifies kubelets will refuse it)');
    const certPath = join(o.pkiDir, 'kubelet-selfsigned.crt');
    await run(OPENSSL, ['req', '-x509', '-key', keyPath, '-out', certPath, '-days', '365', '-subj', subj, '-addext', san]);
    return { key, cert: await readFile(certPath, 'utf8') };
  }
}

async function signThroughCluster(o: KubeletServerOptions, csrPem: Buffer): Promise<string> {
  const base = '/apis/certificates.k8s.io/v1/certificatesigningrequests';
  const name = `process-kubelet-serving-${o.nodeName}-${randomBytes(3).toString('hex')}`;
  const created = await o.api.post<Csr & Record<string, unknown>>(base, {
    apiVersion: 'certificates.k8s.io/v1',
    kind: 'CertificateSigningRequest',
    metadata: { name },
    spec: { request: csrPem.toString('base64'), signerName: 'kubernetes.io/kubelet-serving', usages: ['digital signature', 'server auth'] },
  });
  try {
    const approval = { type: 'Approved', status: 'True', reason: 'ProcessKubelet', message: 'the process kubelet approves its own serving certificate' };
    await o.api.put(`${base}/${name}/approval`, { ...created, status: { conditions: [approval] } });
    const deadline = Date.now() + 20_000;
    for (;;) {
      const csr = await o.api.get<Csr>(`${base}/${name}`);
      if (csr.status?.certificate) return Buffer.from(csr.status.certificate, 'base64').toString('utf8');
      const failed = csr.status?.conditions?.find((c) => c.type === 'Failed' || c.type === 'Denied');
      if (failed) throw new Error(`CSR ${name} ${failed.type}: ${failed.message ?? ''}`);
      if (Date.now() > deadline) throw new Error(`CSR ${name} not signed within 20 s (is the controller-manager's csrsigning controller running with --cluster-signing-*-file?)`);
      await sleep(100);
    }
  } finally {
    await o.api.delete(`${base}/${name}`).catch(() => undefined);
  }
}
