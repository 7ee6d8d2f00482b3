// A real Kubernetes control plane on loopback for the e2e suite: etcd, kube-apiserver,
// kube-controller-manager and kube-scheduler as child processes of the test run.
// No container runtime exists here, so there is no kubelet; the process kubelet of the
// harness registers Nodes and runs pods on its own, and serves the kubelet API (logs, exec)
// with certificates of this control plane's CA (pki.ts).
import { spawn, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { closeSync, createWriteStream, existsSync, openSync, readFileSync, rmSync } from 'node:fs';
import { access, mkdir, mkdtemp, readFile, rm, writeFile, constants as fsConstants } from 'node:fs/promises';
import { request as httpsRequest } from 'node:https';
import { request as httpRequest } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { KubeConfig } from '@kubernetes/client-node';
import { errorText } from '../../src/util/error-text.js';
import { makeClusterPki } from './pki.js';

export interface ControlPlaneOptions {
  /** Run kube-scheduler (default true). */
  scheduler?: boolean;
  /** Run kube-controller-manager (default true). */
  controllerManager?: boolean;
  /** Where process output goes; created if missing and never deleted by stop() when given. */
  logsDir?: string;
}

export interface ControlPlaneProcess {
  name: string;
  pid: number;
  logPath: string;
}

export interface ControlPlane {
  /** https://127.0.0.1:PORT */
  server: string;
  /** Admin kubeconfig (token user in system:masters, TLS verification off). */
  kubeconfigPath: string;
  kubeConfig: KubeConfig;
  adminToken: string;
  /** Temp dir with certs, keys, kubeconfig and etcd data; removed by stop(). */
  dataDir: string;
  logsDir: string;
  binDir: string;
  /** The PEM bundle (serving cert + its self-signed CA) the apiserver serves; also kube-root-ca.crt. */
  caFile: string;
  /** Processes in start order. */
  processes: ControlPlaneProcess[];
  /** Milliseconds from startControlPlane() to a usable cluster (binaries already built). */
  startupMs: number;
  /** Resident memory per process in bytes, read from /proc. */
  rss(): Promise<Record<string, number>>;
  stop(opts?: { keepLogs?: boolean }): Promise<void>;
}

const BUILD_SCRIPT = fileURLToPath(new URL('../controlplane/build-k8s.sh', import.meta.url));
const SERVICE_ACCOUNT_ISSUER = 'https://kubernetes.default.svc.cluster.local';
export const SERVICE_CLUSTER_IP_RANGE = '10.96.0.0/16';
const STOP_GRACE_MS = 10_000;

/** A started child process with its exit as a promise, so waits can race against a crash. */
interface Proc extends ControlPlaneProcess {
  child: ChildProcess;
  exited: Promise<number | string | null>;
  alive: () => boolean;
}

// Children still running. If the test runner exits without teardown (vitest calls process.exit
// when teardown overruns teardownTimeout), kill them so no apiserver outlives the run.
const live = new Set<Proc>();
// Temp dirs of running control planes (etcd's may sit in /dev/shm, i.e. RAM): removed on exit.
const liveDirs = new Set<string>();
let exitHookInstalled = false;
function killAll(signal: NodeJS.Signals): void {
  for (const p of live) {
    try {
      process.kill(p.pid, signal);
    } catch {
      /* already gone */
    }
  }
}
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    killAll('SIGKILL');
    for (const dir of liveDirs) rmSync(dir, { recursive: true, force: true });
  });
  // A signal's default action ends Node without 'exit' handlers, leaving the children behind.
  // Take the children down, then, if nobody else handles the signal, die of it as before.
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      killAll('SIGKILL');
      if (process.listenerCount(sig) === 0) {
        for (const dir of liveDirs) rmSync(dir, { recursive: true, force: true });
        process.kill(process.pid, sig);
      }
    });
  }
}

/**
 * Runs build-k8s.sh (fast when the binaries are cached) and returns the directory it prints.
 * Its own progress lines also go to the console: a cold build takes several minutes.
 */
export async function ensureBinaries(logsDir: string): Promise<string> {
  const logPath = join(logsDir, 'build-k8s.log');
  const log = createWriteStream(logPath, { flags: 'a' });
  try {
    const child = spawn('bash', [BUILD_SCRIPT], { stdio: ['ignore', 'pipe', 'pipe'], detached: false });
    let out = '';
    child.stdout?.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr?.setEncoding('utf8').on('data', (d: string) => {
      log.write(d);
      for (const line of d.split('\n')) if (line.startsWith('build-k8s:')) process.stderr.write(`${line}\n`);
    });
    const code = await new Promise<number | null>((resolve, reject) => {
      child.on('error', reject);
      child.on('close', resolve);
    });
    const binDir = out.trim().split('\n').pop()?.trim() ?? '';
    if (code !== 0 || !binDir) {
      await new Promise((r) => log.end(r));
      throw new Error(`build-k8s.sh failed (exit ${code}); see ${logPath}:\n${tail(logPath)}`);
    }
    return binDir;
  } finally {
    log.end();
  }
}

/** etcd: the one next to the Kubernetes binaries when the build script made one, else Debian's. */
function findEtcd(binDir: string): string {
  for (const p of [process.env.PGPILOT_ETCD, join(binDir, 'etcd'), '/usr/bin/etcd', '/usr/local/bin/etcd']) {
    if (p && existsSync(p)) return p;
  }
  throw new Error('etcd not found: install Debian etcd-server or set PGPILOT_ETCD');
}

/** A port the kernel just handed out on 127.0.0.1; released immediately for the child to bind. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

/** Distinct free ports: holding each listener until all are chosen avoids handing out one twice. */
async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: n }, () => {
      const srv = createServer();
      return new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
        srv.on('error', reject);
        srv.listen(0, '127.0.0.1', () => resolve(srv));
      });
    }),
  );
  const ports = servers.map((s) => {
    const a = s.address();
    if (typeof a !== 'object' || !a) throw new Error('no port');
    return a.port;
  });
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

/** Last lines of a log file, for error messages that point at the cause. */
function tail(path: string, lines = 30): string {
  try {
    return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** Spawns a binary with stdout and stderr appended to logsDir/<name>.log. */
function launch(name: string, bin: string, args: string[], logsDir: string, cwd: string): Proc {
  const logPath = join(logsDir, `${name}.log`);
  const fd = openSync(logPath, 'a');
  let child: ChildProcess;
  try {
    // cwd in the data dir: some components drop files relative to it.
    child = spawn(bin, args, { stdio: ['ignore', fd, fd], detached: false, cwd });
  } finally {
    closeSync(fd); // the child holds its own copy
  }
  let done = false;
  // Listen before anything can throw: an unheard 'error' event (e.g. ENOENT) would crash the run.
  const exited = new Promise<number | string | null>((resolve) => {
    child.on('error', (err) => {
      done = true;
      resolve(String(err));
    });
    child.on('exit', (code, signal) => {
      done = true;
      resolve(code ?? signal);
    });
  });
  if (child.pid === undefined) throw new Error(`could not start ${name} (${bin})`);
  const proc: Proc = { name, pid: child.pid, logPath, child, exited, alive: () => !done };
  live.add(proc);
  void exited.then(() => live.delete(proc));
  return proc;
}

/** GET over http(s) to loopback, accepting the self-signed serving certs; resolves status + body. */
function get(url: string, token?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const headers: Record<string, string> = token ? { Authorization: `Bearer ${token}` } : {};
    const req = (u.protocol === 'https:' ? httpsRequest : httpRequest)(
      u,
      { method: 'GET', headers, rejectUnauthorized: false, timeout: 5_000 },
      (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

/** Polls url until it answers 200; fails fast with the log tail if the process dies meanwhile. */
async function waitHealthy(proc: Proc, url: string, timeoutMs: number, token?: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    if (!proc.alive()) {
      throw new Error(`${proc.name} exited (${await proc.exited}) during startup; ${proc.logPath}:\n${tail(proc.logPath)}`);
    }
    try {
      const r = await get(url, token);
      if (r.status === 200) return;
      last = `HTTP ${r.status}: ${r.body.slice(0, 2000)}`;
    } catch (err) {
      last = errorText(err);
    }
    await sleep(100);
  }
  throw new Error(`${proc.name} not healthy at ${url} after ${timeoutMs} ms (last: ${last}); ${proc.logPath}:\n${tail(proc.logPath)}`);
}

/** SIGTERM, then SIGKILL after the grace period; only ever signals our own child by pid. */
async function terminate(proc: Proc, graceMs = STOP_GRACE_MS): Promise<void> {
  if (!proc.alive()) return;
  try {
    process.kill(proc.pid, 'SIGTERM');
  } catch {
    return;
  }
  const timer = setTimeout(() => {
    try {
      if (proc.alive()) process.kill(proc.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }, graceMs);
  await proc.exited;
  clearTimeout(timer);
}

/** etcd's data is throwaway: tmpfs makes its fsyncs free (etcd 3.4 has no --unsafe-no-fsync). */
async function etcdParentDir(fallback: string): Promise<string> {
  try {
    await access('/dev/shm', fsConstants.W_OK);
    return '/dev/shm';
  } catch {
    return fallback;
  }
}

function kubeconfigYaml(server: string, token: string): string {
  // Written by hand so Go (controller-manager, scheduler) and client-node read the same file.
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    '- name: pgpilot-e2e',
    '  cluster:',
    `    server: ${server}`,
    '    insecure-skip-tls-verify: true',
    'users:',
    '- name: admin',
    '  user:',
    `    token: ${token}`,
    'contexts:',
    '- name: pgpilot-e2e',
    '  context:',
    '    cluster: pgpilot-e2e',
    '    user: admin',
    'current-context: pgpilot-e2e',
    '',
  ].join('\n');
}

/** Resident set size of a pid in bytes (VmRSS from /proc), 0 when it is gone. */
async function rssOf(pid: number): Promise<number> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const m = /VmRSS:\s+(\d+) kB/.exec(status);
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

export async function startControlPlane(opts: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const t0 = Date.now();
  installExitHook();
  const ownLogsDir = !opts.logsDir;
  const logsDir = opts.logsDir ?? (await mkdtemp(join(tmpdir(), 'pgpilot-cp-logs-')));
  await mkdir(logsDir, { recursive: true });
  const binDir = await ensureBinaries(logsDir);
  const tBuilt = Date.now();

  const dataDir = await mkdtemp(join(tmpdir(), 'pgpilot-cp-'));
  const etcdDir = await mkdtemp(join(await etcdParentDir(dataDir), 'pgpilot-etcd-'));
  liveDirs.add(dataDir).add(etcdDir);
  const procs: Proc[] = [];

  // Removes what this run made; logs stay when asked to or when the caller owns them.
  const cleanup = async (keepLogs: boolean) => {
    for (const p of [...procs].reverse()) await terminate(p);
    await rm(dataDir, { recursive: true, force: true });
    await rm(etcdDir, { recursive: true, force: true });
    liveDirs.delete(dataDir);
    liveDirs.delete(etcdDir);
    if (ownLogsDir && !keepLogs) await rm(logsDir, { recursive: true, force: true });
  };

  try {
    const [etcdClient, etcdPeer, apiPort, kcmPort, schedPort] = (await freePorts(5)) as [number, number, number, number, number];
    const server = `https://127.0.0.1:${apiPort}`;

    // Credentials: a static admin token (system:masters bypasses RBAC) and the service-account
    // key pair the apiserver signs tokens with and the controller-manager signs token Secrets with.
    const adminToken = randomBytes(24).toString('hex');
    const tokenFile = join(dataDir, 'tokens.csv');
    await writeFile(tokenFile, `${adminToken},admin,admin-uid,"system:masters"\n`, { mode: 0o600 });
    const { publicKey, privateKey } = generateKeyPairSync('rsa', {
      modulusLength: 2048,
      publicKeyEncoding: { type: 'spki', format: 'pem' },
      privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    });
    const saPub = join(dataDir, 'sa.pub');
    const saKey = join(dataDir, 'sa.key');
    await writeFile(saPub, publicKey);
    await writeFile(saKey, privateKey, { mode: 0o600 });
    const kubeconfigPath = join(dataDir, 'admin.kubeconfig');
    await writeFile(kubeconfigPath, kubeconfigYaml(server, adminToken), { mode: 0o600 });
    const certDir = join(dataDir, 'apiserver-certs');
    const pki = await makeClusterPki(join(dataDir, 'pki'));

    const etcd = launch(
      'etcd',
      findEtcd(binDir),
      [
        '--name=pgpilot-e2e',
        `--data-dir=${etcdDir}`,
        `--listen-client-urls=http://127.0.0.1:${etcdClient}`,
        `--advertise-client-urls=http://127.0.0.1:${etcdClient}`,
        `--listen-peer-urls=http://127.0.0.1:${etcdPeer}`,
        `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeer}`,
        `--initial-cluster=pgpilot-e2e=http://127.0.0.1:${etcdPeer}`,
        '--initial-cluster-state=new',
        // Periodic progress notifications keep the apiserver's watch cache current; etcd 3.4.23
        // lacks on-demand RequestWatchProgress (the apiserver logs it and falls back to etcd reads).
        '--experimental-watch-progress-notify-interval=5s',
        '--logger=zap',
        '--log-outputs=stderr',
      ],
      logsDir,
      dataDir,
    );
    procs.push(etcd);
    await waitHealthy(etcd, `http://127.0.0.1:${etcdClient}/health`, 30_000);

    const apiserver = launch(
      'kube-apiserver',
      join(binDir, 'kube-apiserver'),
      [
        `--etcd-servers=http://127.0.0.1:${etcdClient}`,
        '--bind-address=127.0.0.1',
        '--advertise-address=127.0.0.1',
        `--secure-port=${apiPort}`,
        // Self-signed serving cert + CA for localhost/127.0.0.1, generated into cert-dir.
        `--cert-dir=${certDir}`,
        `--token-auth-file=${tokenFile}`,
        '--authorization-mode=Node,RBAC',
        `--service-account-key-file=${saPub}`,
        `--service-account-signing-key-file=${saKey}`,
        `--service-account-issuer=${SERVICE_ACCOUNT_ISSUER}`,
        `--service-cluster-ip-range=${SERVICE_CLUSTER_IP_RANGE}`,
        // Endpoints of the `kubernetes` Service may not be loopback addresses, and nothing could
        // reach a ClusterIP here anyway: skip the reconciler instead of logging errors forever.
        '--endpoint-reconciler-type=none',
        '--allow-privileged=true',
        '--profiling=false',
        // The process kubelet's API (logs, exec): reached at the Node's InternalIP (127.0.0.1),
        // its serving certificate checked against our CA, our client certificate presented; the
        // kubelet admits clients of the --client-ca-file (see e2e/kubelet/kubelet-server.ts).
        `--client-ca-file=${pki.caCert}`,
        `--kubelet-client-certificate=${pki.kubeletClientCert}`,
        `--kubelet-client-key=${pki.kubeletClientKey}`,
        `--kubelet-certificate-authority=${pki.caCert}`,
        '--kubelet-preferred-address-types=InternalIP',
        // The aggregation layer (metrics-server's APIService, harness/metrics-server.ts): the
        // apiserver proxies with this client certificate and the user in X-Remote-* headers.
        `--requestheader-client-ca-file=${pki.frontProxyCaCert}`,
        '--requestheader-allowed-names=front-proxy-client',
        '--requestheader-username-headers=X-Remote-User',
        '--requestheader-group-headers=X-Remote-Group',
        '--requestheader-extra-headers-prefix=X-Remote-Extra-',
        `--proxy-client-cert-file=${pki.proxyClientCert}`,
        `--proxy-client-key-file=${pki.proxyClientKey}`,
      ],
      logsDir,
      dataDir,
    );
    procs.push(apiserver);
    await waitHealthy(apiserver, `${server}/readyz`, 60_000, adminToken);
    const caFile = join(certDir, 'apiserver.crt');

    // Both read the admin kubeconfig; delegated authn/authz of their own health endpoints goes
    // through the same apiserver, which keeps them from guessing an in-cluster config.
    const componentArgs = (port: number) => [
      `--kubeconfig=${kubeconfigPath}`,
      `--authentication-kubeconfig=${kubeconfigPath}`,
      `--authorization-kubeconfig=${kubeconfigPath}`,
      '--bind-address=127.0.0.1',
      `--secure-port=${port}`,
      '--leader-elect=false',
    ];
    const waits: Promise<void>[] = [];
    if (opts.controllerManager !== false) {
      const flexDir = join(dataDir, 'flexvolume');
      await mkdir(flexDir, { recursive: true });
      const kcm = launch(
        'kube-controller-manager',
        join(binDir, 'kube-controller-manager'),
        [
          ...componentArgs(kcmPort),
          `--cert-dir=${join(dataDir, 'kcm-certs')}`,
          `--service-account-private-key-file=${saKey}`,
          `--root-ca-file=${caFile}`,
          '--use-service-account-credentials=false',
          `--service-cluster-ip-range=${SERVICE_CLUSTER_IP_RANGE}`,
          // Default controller set: namespace, garbagecollector, statefulset, job, cronjob,
          // endpointslice, serviceaccount, serviceaccount-token, root-ca-cert-publisher, ...
          '--controllers=*',
          `--flex-volume-plugin-dir=${flexDir}`,
          // Signs CertificateSigningRequests (the process kubelet's serving certificate).
          `--cluster-signing-cert-file=${pki.caCert}`,
          `--cluster-signing-key-file=${pki.caKey}`,
          // The default 20 QPS makes the StatefulSet controller take minutes to create the pods
          // and claims of hundreds of clusters (the scale benchmark); large clusters raise it too.
          '--kube-api-qps=100',
          '--kube-api-burst=200',
        ],
        logsDir,
        dataDir,
      );
      procs.push(kcm);
      waits.push(waitHealthy(kcm, `https://127.0.0.1:${kcmPort}/healthz`, 60_000));
    }
    if (opts.scheduler !== false) {
      const sched = launch(
        'kube-scheduler',
        join(binDir, 'kube-scheduler'),
        [...componentArgs(schedPort), `--cert-dir=${join(dataDir, 'scheduler-certs')}`],
        logsDir,
        dataDir,
      );
      procs.push(sched);
      waits.push(waitHealthy(sched, `https://127.0.0.1:${schedPort}/healthz`, 60_000));
    }
    await Promise.all(waits);

    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromFile(kubeconfigPath);
    if (opts.controllerManager !== false) {
      // The controllers are really working once the default namespace has its ServiceAccount.
      await waitForDefaultServiceAccount(server, adminToken, procs, 60_000);
    }

    const startupMs = Date.now() - tBuilt;
    let stopped: Promise<void> | undefined;
    return {
      server,
      kubeconfigPath,
      kubeConfig,
      adminToken,
      dataDir,
      logsDir,
      binDir,
      caFile,
      processes: procs.map(({ name, pid, logPath }) => ({ name, pid, logPath })),
      startupMs,
      rss: async () => Object.fromEntries(await Promise.all(procs.map(async (p) => [p.name, await rssOf(p.pid)] as const))),
      stop: (o = {}) => (stopped ??= cleanup(o.keepLogs ?? false)),
    };
  } catch (err) {
    // Keep the logs: they explain the failure.
    await cleanup(true).catch(() => undefined);
    const msg = errorText(err);
    throw new Error(`control plane failed to start after ${Date.now() - t0} ms (logs in ${logsDir}): ${msg}`, { cause: err });
  }
}

async function waitForDefaultServiceAccount(server: string, token: string, procs: Proc[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    const dead = procs.find((p) => !p.alive());
    if (dead) throw new Error(`${dead.name} exited during startup; ${dead.logPath}:\n${tail(dead.logPath)}`);
    try {
      const r = await get(`${server}/api/v1/namespaces/default/serviceaccounts/default`, token);
      if (r.status === 200) return;
      last = `HTTP ${r.status}`;
    } catch (err) {
      last = errorText(err);
    }
    await sleep(100);
  }
  throw new Error(`default ServiceAccount not created within ${timeoutMs} ms (last: ${last})`);
}
