// metrics-server v0.8.0 (scripts/build-metrics-server.sh) for the e2e control plane and the
// sandbox: it scrapes every Node's kubelet API (GET /metrics/resource, the process kubelet's
// resource-metrics.ts) and serves metrics.k8s.io, registered as the APIService
// v1beta1.metrics.k8s.io, so the HPA controller and `kubectl top` get pod CPU and memory.
//
// How the pieces trust each other, with nothing but the cluster's own signers:
// - metrics-server → kubelets: a client certificate from a CertificateSigningRequest for
//   kubernetes.io/kube-apiserver-client (signed by the controller-manager with the cluster CA, the
//   apiserver's client CA, which is what the process kubelet admits); the kubelets' serving
//   certificates are checked against that same CA (client-ca-file of
//   kube-system/extension-apiserver-authentication; the kubelet-serving signer is that CA too).
//   `--kubelet-preferred-address-types=InternalIP` (127.0.0.1) and the port of the Node's status.
// - apiserver → metrics-server: a Service can carry no traffic here (ClusterIPs go nowhere and
//   EndpointSlices may not hold loopback addresses), but the aggregator resolves a Service of
//   type ExternalName to https://<externalName>:<APIService port> and the availability check
//   skips the endpoint lookup for it. So: Service kube-system/metrics-server, ExternalName
//   127.0.0.1; the APIService names it with metrics-server's port and a caBundle of the CA that
//   signed metrics-server's serving certificate (SANs metrics-server.kube-system.svc — the name
//   the aggregator checks — localhost and 127.0.0.1). The apiserver proxies with its
//   --proxy-client-cert-file, and metrics-server authenticates the user from the X-Remote-*
//   headers (--requestheader-* of control-plane.ts) and authorizes it with a SubjectAccessReview.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { KubeConfig } from '@kubernetes/client-node';
import { KubeApi, isStatus } from '../kubelet/api.js';
import { errorText } from '../../src/util/error-text.js';
import { freePort } from './control-plane.js';

const run = promisify(execFile);
const OPENSSL = '/usr/bin/openssl';
const BUILD_SCRIPT = fileURLToPath(new URL('../../scripts/build-metrics-server.sh', import.meta.url));
export const METRICS_APISERVICE = 'v1beta1.metrics.k8s.io';
const SERVICE = { namespace: 'kube-system', name: 'metrics-server' };
const APISERVICE_PATH = `/apis/apiregistration.k8s.io/v1/apiservices/${METRICS_APISERVICE}`;
const SERVICE_PATH = `/api/v1/namespaces/${SERVICE.namespace}/services/${SERVICE.name}`;

export interface MetricsServerOptions {
  kubeconfigPath: string;
  /** metrics-server.log goes here (default: its temp dir, removed by stop()). */
  logsDir?: string;
  /** --metric-resolution (default 10s: the HPA sees a change within one or two scrapes). */
  metricResolution?: string;
}

export interface MetricsServer {
  port: number;
  pid: number;
  logPath: string;
  /** Removes the APIService and Service first (an unavailable aggregated API breaks discovery and namespace deletion), then the process. */
  stop(): Promise<void>;
}

/** The binary (built into the cache by scripts/build-metrics-server.sh; quick when present). */
export async function metricsServerBinary(): Promise<string> {
  const { stdout } = await run('bash', [BUILD_SCRIPT], { maxBuffer: 16 * 2 ** 20 });
  const bin = stdout.trim().split('\n').pop()?.trim();
  if (!bin) throw new Error('build-metrics-server.sh printed no path');
  return bin;
}

async function openssl(args: string[]): Promise<void> {
  await run(OPENSSL, args);
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

/** A CA of its own and a serving certificate for the names the aggregator and people use. */
async function servingCertificate(dir: string): Promise<{ ca: string; cert: string; key: string }> {
  const p = (f: string) => join(dir, f);
  await openssl(['req', '-x509', ...EC, '-keyout', p('serving-ca.key'), '-out', p('serving-ca.crt'), '-days', '365', '-subj', '/CN=metrics-server-serving-ca',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign,digitalSignature']);
  await openssl(['req', '-new', ...EC, '-keyout', p('serving.key'), '-out', p('serving.csr'), '-subj', '/CN=metrics-server']);
  await writeFile(p('serving.ext'), `basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:${SERVICE.name}.${SERVICE.namespace}.svc,DNS:localhost,IP:127.0.0.1\n`);
  await openssl(['x509', '-req', '-in', p('serving.csr'), '-CA', p('serving-ca.crt'), '-CAkey', p('serving-ca.key'), '-CAcreateserial', '-out', p('serving.crt'), '-days', '365', '-extfile', p('serving.ext')]);
  return { ca: p('serving-ca.crt'), cert: p('serving.crt'), key: p('serving.key') };
}

interface Csr {
  status?: { certificate?: string; conditions?: Array<{ type: string; message?: string }> };
}

/** A client certificate for the kubelets, from the cluster's kube-apiserver-client signer. */
async function kubeletClientCertificate(api: KubeApi, dir: string): Promise<{ cert: string; key: string }> {
  const key = join(dir, 'kubelet-client.key');
  const csrPath = join(dir, 'kubelet-client.csr');
  await openssl(['req', '-new', ...EC, '-keyout', key, '-out', csrPath, '-subj', '/CN=system:metrics-server']);
  const base = '/apis/certificates.k8s.io/v1/certificatesigningrequests';
  const name = `metrics-server-kubelet-client-${randomBytes(3).toString('hex')}`;
  const created = await api.post<Record<string, unknown>>(base, {
    apiVersion: 'certificates.k8s.io/v1',
    kind: 'CertificateSigningRequest',
    metadata: { name },
    spec: { request: (await readFile(csrPath)).toString('base64'), signerName: 'kubernetes.io/kube-apiserver-client', usages: ['digital signature', 'client auth'] },
  });
  try {
    await api.put(`${base}/${name}/approval`, { ...created, status: { conditions: [{ type: 'Approved', status: 'True', reason: 'E2EHarness', message: 'metrics-server of the e2e harness' }] } });
    const deadline = Date.now() + 20_000;
    for (;;) {
      const csr = await api.get<Csr>(`${base}/${name}`);
      if (csr.status?.certificate) {
        const cert = join(dir, 'kubelet-client.crt');
        await writeFile(cert, Buffer.from(csr.status.certificate, 'base64'));
        return { cert, key };
      }
      const failed = csr.status?.conditions?.find((c) => c.type === 'Failed' || c.type === 'Denied');
      if (failed) throw new Error(`CSR ${name} ${failed.type}: ${failed.message ?? ''}`);
      if (Date.now() > deadline) throw new Error(`CSR ${name} not signed within 20 s (the controller-manager needs --cluster-signing-cert-file)`);
      await sleep(100);
    }
  } finally {
    await api.delete(`${base}/${name}`).catch(() => undefined);
  }
}

/** Create or replace an object (the previous run's APIService may still be there). */
async function put(api: KubeApi, path: string, collection: string, body: Record<string, unknown>): Promise<void> {
  try {
    const live = await api.get<{ metadata: { resourceVersion: string } }>(path);
    await api.put(path, { ...body, metadata: { ...(body.metadata as object), resourceVersion: live.metadata.resourceVersion } });
  } catch (err) {
    if (!isStatus(err, 404)) throw err;
    await api.post(collection, body);
  }
}

/**
 * The admin kubeconfig with the apiserver's CA instead of insecure-skip-tls-verify: metrics-server
 * derives its kubelet client from it, and client-go refuses a CA file (--kubelet-certificate-authority)
 * on an insecure config. The CA is the one the controller-manager publishes (kube-root-ca.crt).
 */
async function verifyingKubeconfig(api: KubeApi, kc: KubeConfig, dir: string): Promise<string> {
  const deadline = Date.now() + 30_000;
  let ca: string | undefined;
  while (!ca) {
    ca = await api
      .get<{ data?: Record<string, string> }>('/api/v1/namespaces/kube-system/configmaps/kube-root-ca.crt')
      .then((cm) => cm.data?.['ca.crt'])
      .catch(() => undefined);
    if (ca) break;
    if (Date.now() > deadline) throw new Error('kube-system/kube-root-ca.crt not published within 30 s');
    await sleep(250);
  }
  const token = kc.getCurrentUser()?.token;
  if (!token) throw new Error('the kubeconfig has no token user');
  const path = join(dir, 'kubeconfig');
  const yaml = [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    '- name: e2e',
    '  cluster:',
    `    server: ${kc.getCurrentCluster()!.server}`,
    `    certificate-authority-data: ${Buffer.from(ca).toString('base64')}`,
    'users:',
    '- name: admin',
    '  user:',
    `    token: ${token}`,
    'contexts:',
    '- name: e2e',
    '  context: {cluster: e2e, user: admin}',
    'current-context: e2e',
    '',
  ].join('\n');
  await writeFile(path, yaml, { mode: 0o600 });
  return path;
}

interface ApiServiceStatus {
  status?: { conditions?: Array<{ type: string; status: string; reason?: string; message?: string }> };
}

/** Whether metrics.k8s.io is served now (the APIService Available). */
export async function metricsApiAvailable(kubeconfigPath: string): Promise<boolean> {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfigPath);
  try {
    const svc = await new KubeApi(kc).get<ApiServiceStatus>(APISERVICE_PATH);
    return !!svc.status?.conditions?.some((c) => c.type === 'Available' && c.status === 'True');
  } catch {
    return false;
  }
}

export async function startMetricsServer(opts: MetricsServerOptions): Promise<MetricsServer> {
  const kc = new KubeConfig();
  kc.loadFromFile(opts.kubeconfigPath);
  const api = new KubeApi(kc);
  const bin = await metricsServerBinary();
  const dir = await mkdtemp(join(tmpdir(), 'pgpilot-metrics-server-'));
  const auth = await api.get<{ data?: Record<string, string> }>('/api/v1/namespaces/kube-system/configmaps/extension-apiserver-authentication');
  const clusterCa = auth.data?.['client-ca-file'];
  if (!clusterCa) throw new Error('the apiserver has no --client-ca-file: metrics-server could not check the kubelets');
  const kubeletCa = join(dir, 'kubelet-ca.crt');
  await writeFile(kubeletCa, clusterCa);
  const [serving, client, port, kubeconfig] = await Promise.all([servingCertificate(dir), kubeletClientCertificate(api, dir), freePort(), verifyingKubeconfig(api, kc, dir)]);
  const logPath = join(opts.logsDir ?? dir, 'metrics-server.log');
  const fd = openSync(logPath, 'a');
  let child: ChildProcess;
  try {
    child = spawn(
      bin,
      [
        `--kubeconfig=${kubeconfig}`,
        `--authentication-kubeconfig=${kubeconfig}`,
        `--authorization-kubeconfig=${kubeconfig}`,
        '--bind-address=127.0.0.1',
        `--secure-port=${port}`,
        `--tls-cert-file=${serving.cert}`,
        `--tls-private-key-file=${serving.key}`,
        '--kubelet-preferred-address-types=InternalIP',
        '--kubelet-use-node-status-port',
        `--kubelet-certificate-authority=${kubeletCa}`,
        `--kubelet-client-certificate=${client.cert}`,
        `--kubelet-client-key=${client.key}`,
        `--metric-resolution=${opts.metricResolution ?? '10s'}`,
        '--kubelet-request-timeout=5s',
        '--profiling=false',
      ],
      { stdio: ['ignore', fd, fd], cwd: dir },
    );
  } finally {
    closeSync(fd);
  }
  let exited = false;
  const exit = new Promise<void>((resolve) => child.on('exit', () => ((exited = true), resolve())));
  child.on('error', () => undefined);
  const killOnExit = () => child.kill('SIGKILL');
  process.on('exit', killOnExit);

  const unregister = async () => {
    await api.delete(APISERVICE_PATH).catch(() => undefined);
    await api.delete(SERVICE_PATH).catch(() => undefined);
  };
  let stopped: Promise<void> | undefined;
  const stop = () =>
    (stopped ??= (async () => {
      await unregister();
      process.off('exit', killOnExit);
      if (!exited) {
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exit;
        clearTimeout(t);
      }
      if (!opts.logsDir) await rm(dir, { recursive: true, force: true });
    })());

  try {
    // Registered only once it serves, so discovery never sees an APIService nobody answers.
    await waitServing(port, () => exited, logPath);
    await put(api, SERVICE_PATH, `/api/v1/namespaces/${SERVICE.namespace}/services`, {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { ...SERVICE, labels: { 'app.kubernetes.io/name': 'metrics-server', 'pgpilot.io/e2e-harness': 'true' } },
      spec: { type: 'ExternalName', externalName: '127.0.0.1' },
    });
    await put(api, APISERVICE_PATH, '/apis/apiregistration.k8s.io/v1/apiservices', {
      apiVersion: 'apiregistration.k8s.io/v1',
      kind: 'APIService',
      metadata: { name: METRICS_APISERVICE, labels: { 'app.kubernetes.io/name': 'metrics-server', 'pgpilot.io/e2e-harness': 'true' } },
      spec: {
        group: 'metrics.k8s.io',
        version: 'v1beta1',
        groupPriorityMinimum: 100,
        versionPriority: 100,
        service: { ...SERVICE, port },
        caBundle: (await readFile(serving.ca)).toString('base64'),
      },
    });
    const deadline = Date.now() + 60_000;
    let last = '';
    for (;;) {
      const svc = await api.get<ApiServiceStatus>(APISERVICE_PATH).catch((err: unknown): ApiServiceStatus => ({ status: { conditions: [{ type: 'Available', status: 'Unknown', message: errorText(err) }] } }));
      const available = svc.status?.conditions?.find((c) => c.type === 'Available');
      if (available?.status === 'True') break;
      last = `${available?.reason ?? ''}: ${available?.message ?? 'no condition yet'}`;
      if (exited) throw new Error(`metrics-server exited; ${logPath}`);
      if (Date.now() > deadline) throw new Error(`APIService ${METRICS_APISERVICE} not Available within 60 s (${last}); ${logPath}`);
      await sleep(250);
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return { port, pid: child.pid!, logPath, stop };
}

/** Polls metrics-server's /readyz until it answers (any HTTP answer: TLS and the listener are up). */
async function waitServing(port: number, exited: () => boolean, logPath: string): Promise<void> {
  const { request } = await import('node:https');
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (exited()) throw new Error(`metrics-server exited during startup; ${logPath}:\n${(await readFile(logPath, 'utf8').catch(() => '')).slice(-3000)}`);
    const ok = await new Promise<boolean>((resolve) => {
      const req = request({ host: '127.0.0.1', port, path: '/livez', rejectUnauthorized: false, timeout: 2000 }, (res) => {
        res.resume();
        resolve((res.statusCode ?? 0) === 200);
      });
      req.on('error', () => resolve(false));
      req.on('timeout', () => req.destroy());
      req.end();
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`metrics-server not serving on 127.0.0.1:${port} within 60 s; ${logPath}`);
    await sleep(200);
  }
}

/**
 * metrics.k8s.io for a test: the run's metrics-server when the global setup started one (or any
 * Available APIService of that name), else one started here for this file (stop it in afterAll).
 */
export async function ensureMetricsApi(kubeconfigPath: string, logsDir?: string): Promise<{ stop(): Promise<void> }> {
  // The global setup starts it in the background: give it time before starting a second one.
  const deadline = Date.now() + (process.env.PGPILOT_E2E_METRICS_SERVER === 'starting' ? 60_000 : 0);
  for (;;) {
    if (await metricsApiAvailable(kubeconfigPath)) return { stop: async () => undefined };
    if (Date.now() >= deadline) break;
    await sleep(500);
  }
  const ms = await startMetricsServer({ kubeconfigPath, ...(logsDir ? { logsDir } : {}) });
  return { stop: () => ms.stop() };
}
