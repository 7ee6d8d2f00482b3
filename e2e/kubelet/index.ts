// The process kubelet of the e2e suite: a Node whose pods run as local processes, a PV
// provisioner and a service proxy, all in the test process. See README.md for what maps to what.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig, type KubernetesObject, type V1ConfigMap, type V1PersistentVolume, type V1PersistentVolumeClaim, type V1Pod, type V1Secret, type V1Service } from '@kubernetes/client-node';
import { destination, pino, stdTimeFunctions } from 'pino';
import { ResilientInformer, type ResourceType } from '../../src/runtime/informer.js';
import type { Logger } from '../../src/runtime/logger.js';
import { KubeApi } from './api.js';
import { startKubeletServer } from './kubelet-server.js';
import { NodeAgent } from './node.js';
import { PodWorker } from './pod-worker.js';
import { Provisioner } from './provisioner.js';
import { Cgroups, signal } from './sandbox.js';
import { ServiceProxy, type ServiceAddress } from './service-proxy.js';
import { errorText } from '../../src/util/error-text.js';

export interface ProcessKubeletOptions {
  kubeconfigPath: string;
  /** Checkout whose dist/cli/main.js the pgpilot images run (build it first). */
  repoRoot: string;
  nodeName?: string;
  /** Pod dirs, PVC dirs, logs, services.json; a temp dir when omitted (removed by stop()). */
  dataDir?: string;
  /**
   * First three octets of the pod /22, e.g. '127.0.100' → 127.0.100.1–127.0.103.254. Default
   * '127.<R>.100' with R (10–249) chosen at random among second octets nothing listens on, so
   * kubelets of concurrent test runs on one machine do not hand out the same addresses.
   */
  podCidrBase?: string;
  /** First three octets of the service /22 (default '127.<R>.200', R as above). */
  serviceCidrBase?: string;
  logLevel?: 'debug' | 'info' | 'warn';
  /**
   * Run the service proxy (default true). Several kubelets (nodes) on one control plane need
   * distinct nodeName and podCidrBase, and only one of them may proxy Services.
   */
  serviceProxy?: boolean;
  /** Delete the Node and its Lease on stop() (default true). */
  removeNodeOnStop?: boolean;
}

export interface ProcessKubelet {
  nodeName: string;
  /** e.g. '127.37.100': pods get <base>.1 … <base+3>.254. */
  podCidrBase: string;
  /** e.g. '127.37.200': proxied Services get addresses from here. */
  serviceCidrBase: string;
  dataDir: string;
  logPath: string;
  /** JSON map ns/name → {host, ports, endpoints} of the proxied Services. */
  servicesFile: string;
  podAddress(namespace: string, pod: string): string | undefined;
  serviceAddress(namespace: string, name: string, port?: number | string): ServiceAddress | undefined;
  /** Main pids of the pod's running containers. */
  podPids(namespace: string, pod: string): number[];
  /** Every main pid this kubelet runs now. */
  allPids(): number[];
  containerLogPath(namespace: string, pod: string, container: string): string | undefined;
  /** SIGKILL the container's processes (restartPolicy decides what happens next). */
  killContainer(namespace: string, pod: string, container?: string): Promise<boolean>;
  /**
   * SIGKILL only the postmaster of the pod's PostgreSQL (the `postgres` process whose parent is
   * not a postgres, i.e. the child of the instance agent), leaving the agent — PID 1 of the
   * container — running. Returns the pids signalled (empty: no postmaster was running).
   */
  killPostmaster(namespace: string, pod: string, container?: string): Promise<number[]>;
  /** Freeze/thaw every process of the pod (cgroup freezer, else SIGSTOP/SIGCONT). */
  freeze(namespace: string, pod: string): Promise<void>;
  thaw(namespace: string, pod: string): Promise<void>;
  /**
   * Partition the pod: processes frozen, the proxy stops routing to it (open connections
   * closed), its probes paused and its status left as last written — what a pod on a node cut
   * off from the network looks like to clients. Its IP still accepts TCP handshakes (the kernel
   * answers while the process is frozen) but nothing is ever served.
   */
  isolatePod(namespace: string, pod: string): Promise<void>;
  heal(namespace: string, pod: string): Promise<void>;
  stop(): Promise<void>;
}

// Containers run detached (own process groups): if the test process exits without stop(), kill
// what every live kubelet started, synchronously (cgroup.kill on the kubelet's root cgroup
// reaches every container below it; the process-group fallback signals each group).
const liveKillers = new Set<() => void>();
let exitHook = false;
function onExitKill(kill: () => void): () => void {
  if (!exitHook) {
    exitHook = true;
    process.on('exit', () => {
      for (const k of liveKillers) k();
    });
  }
  liveKillers.add(kill);
  return () => liveKillers.delete(kill);
}

/**
 * A detached watchdog that outlives this process if it is killed without stop() (SIGKILL, or a
 * signal that skips 'exit' handlers, as when vitest tears a worker down): within a second of our
 * death it kills every container through the root cgroup and removes the cgroups and shm dir.
 */
function startReaper(cgroupRoot: string, shmRoot: string, volumesDir: string): number | undefined {
  const script = [
    // A zombie still answers kill -0 (and this machine's init reaps late): check its state.
    'while [ -e "/proc/$1" ] && ! grep -q "^State:[[:space:]]*Z" "/proc/$1/status" 2>/dev/null; do sleep 1; done',
    'echo 1 > "$2/cgroup.kill" 2>/dev/null',
    'sleep 1',
    'find "$2" -depth -type d -exec rmdir {} \\; 2>/dev/null',
    'rm -rf "$3"',
    // The volumes' tmpfs mounts (provisioner.ts), deepest first.
    'grep -F " $4/" /proc/mounts | cut -d" " -f2 | sort -r | while read -r m; do umount -l "$m"; done',
  ].join('\n');
  const child = spawn('/bin/sh', ['-c', script, 'pgpilot-kubelet-reaper', String(process.pid), cgroupRoot, shmRoot, volumesDir], { detached: true, stdio: 'ignore' });
  child.on('error', () => undefined);
  child.unref();
  return child.pid;
}

/** A random second octet R (10–249) such that no TCP socket is bound to any 127.R.x.y. */
function freeLoopbackOctet(): number {
  const used = new Set<number>();
  for (const file of ['/proc/net/tcp']) {
    try {
      for (const line of readFileSync(file, 'utf8').split('\n').slice(1)) {
        const local = line.trim().split(/\s+/)[1]; // e.g. 0364007F:1F40 = 127.0.100.3:8000
        if (local && local.endsWith('7F', 8)) used.add(parseInt(local.slice(4, 6), 16));
      }
    } catch {
      /* no procfs: any choice is a guess anyway */
    }
  }
  const free = Array.from({ length: 240 }, (_, i) => i + 10).filter((o) => !used.has(o));
  return free[Math.floor(Math.random() * free.length)] ?? 0;
}

/** How long stop() waits for pods to end (grace periods here are at most 60 s) before killing them. */
const STOP_DEADLINE_MS = 90_000;

const CORE = (plural: string, kind: string): ResourceType => ({ group: '', version: 'v1', plural, kind });

export async function startProcessKubelet(opts: ProcessKubeletOptions): Promise<ProcessKubelet> {
  const nodeName = opts.nodeName ?? `process-kubelet-${randomBytes(2).toString('hex')}`;
  const ownDataDir = !opts.dataDir;
  const dataDir = opts.dataDir ?? (await mkdtemp(join(tmpdir(), 'pgpilot-kubelet-')));
  await mkdir(join(dataDir, 'pods'), { recursive: true });
  await mkdir(join(dataDir, 'volumes'), { recursive: true });
  await chmod(dataDir, 0o755); // pods run as other users and must reach their volume dirs
  const shmRoot = existsSync('/dev/shm') ? join('/dev/shm', `pgpilot-kubelet-${nodeName}`) : join(dataDir, 'shm');
  await mkdir(shmRoot, { recursive: true, mode: 0o755 });
  const logPath = join(dataDir, 'kubelet.log');
  const log: Logger = pino(
    { level: opts.logLevel ?? 'info', base: { component: 'process-kubelet', node: nodeName }, timestamp: stdTimeFunctions.isoTime },
    destination({ dest: logPath, sync: false, mkdir: true }),
  );
  const kc = new KubeConfig();
  kc.loadFromFile(opts.kubeconfigPath);
  const api = new KubeApi(kc);
  const apiServer = new URL(api.server);
  const cgroups = await Cgroups.create(`pgpilot-kubelet-${nodeName}`);
  if (!cgroups.root) log.warn('no writable cgroup v2: containers are tracked by process group only');

  const informer = <T extends KubernetesObject>(type: ResourceType) => new ResilientInformer<T>({ kc, type, log, relistMs: 5 * 60_000 });
  const pods = informer<V1Pod>(CORE('pods', 'Pod'));
  const services = informer<V1Service>(CORE('services', 'Service'));
  const claims = informer<V1PersistentVolumeClaim>(CORE('persistentvolumeclaims', 'PersistentVolumeClaim'));
  const volumes = informer<V1PersistentVolume>(CORE('persistentvolumes', 'PersistentVolume'));
  const configMaps = informer<V1ConfigMap>(CORE('configmaps', 'ConfigMap'));
  const secrets = informer<V1Secret>(CORE('secrets', 'Secret'));
  const sources = {
    configMap: (ns: string, name: string) => configMaps.get(name, ns),
    secret: (ns: string, name: string) => secrets.get(name, ns),
  };

  const workers = new Map<string, PodWorker>(); // pod uid → worker
  const byName = (ns: string, name: string) => [...workers.values()].find((w) => w.pod.metadata!.namespace === ns && w.pod.metadata!.name === name && !w.isTerminating) ?? [...workers.values()].find((w) => w.pod.metadata!.namespace === ns && w.pod.metadata!.name === name);
  const mustPod = (ns: string, name: string) => {
    const w = byName(ns, name);
    if (!w) throw new Error(`pod ${ns}/${name} does not run on ${nodeName}`);
    return w;
  };

  // Pod IPs: round robin through the /22 so a recreated pod rarely gets its predecessor's IP.
  const octet = freeLoopbackOctet();
  const podCidrBase = opts.podCidrBase ?? `127.${octet}.100`;
  const serviceCidrBase = opts.serviceCidrBase ?? `127.${octet}.200`;
  const podBase = podCidrBase.split('.').map(Number) as [number, number, number];
  const usedIps = new Set<string>();
  let ipCursor = 0;
  const allocateIp = (): string => {
    for (let n = 0; n < 1016; n++) {
      const i = ipCursor++ % 1016;
      const ip = `${podBase[0]}.${podBase[1]}.${podBase[2] + Math.floor(i / 254)}.${1 + (i % 254)}`;
      if (!usedIps.has(ip)) {
        usedIps.add(ip);
        return ip;
      }
    }
    throw new Error('pod IP range exhausted');
  };

  const serviceBase = serviceCidrBase.split('.');
  const servicesFile = join(dataDir, 'services.json');
  const proxy = new ServiceProxy(
    () => services.list(),
    () => pods.list(),
    (uid) => workers.get(uid)?.isolated ?? false,
    servicesFile,
    log.child({ part: 'service-proxy' }),
    `${serviceBase[0]}.${serviceBase[1]}`,
    Number(serviceBase[2]),
  );
  const provisioner = new Provisioner(api, join(dataDir, 'volumes'), () => claims.list(), () => volumes.list(), log.child({ part: 'provisioner' }));

  const event = (pod: V1Pod, type: 'Normal' | 'Warning', reason: string, message: string) => {
    const t = new Date().toISOString();
    const ns = pod.metadata!.namespace!;
    void api
      .post(`/api/v1/namespaces/${ns}/events`, {
        apiVersion: 'v1',
        kind: 'Event',
        metadata: { generateName: `${pod.metadata!.name}.`, namespace: ns },
        involvedObject: { apiVersion: 'v1', kind: 'Pod', namespace: ns, name: pod.metadata!.name, uid: pod.metadata!.uid },
        type,
        reason,
        message,
        source: { component: 'kubelet', host: nodeName },
        firstTimestamp: t,
        lastTimestamp: t,
        count: 1,
      })
      .catch((err: unknown) => log.debug({ err: errorText(err) }, 'event not recorded'));
  };

  const deps = {
    api,
    log,
    repoRoot: opts.repoRoot,
    dataDir,
    shmRoot,
    apiServer,
    sources,
    cgroups,
    event,
    hosts: (pod: V1Pod) => proxy.hostsFor(pod),
    statusWritten: () => proxy.kick(),
  };

  let stopping = false;
  const finish = async (w: PodWorker, deleted: boolean) => {
    await w.terminate();
    if (deleted) await w.finalizeDeletion().catch((err: unknown) => log.warn({ pod: w.key, err: errorText(err) }, 'pod deletion failed'));
    workers.delete(w.uid);
    usedIps.delete(w.ip);
    proxy.kick();
  };

  const onPod = (pod: V1Pod) => {
    if (stopping || pod.spec?.nodeName !== nodeName) return;
    const uid = pod.metadata!.uid!;
    let w = workers.get(uid);
    if (!w) {
      if (pod.metadata!.deletionTimestamp) {
        // Left over from an earlier kubelet of this node: nothing runs, let it go.
        void api.delete(`/api/v1/namespaces/${pod.metadata!.namespace}/pods/${pod.metadata!.name}`, { gracePeriodSeconds: 0, preconditions: { uid } }).catch(() => undefined);
        return;
      }
      if (pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed') return;
      w = new PodWorker(pod, allocateIp(), deps);
      workers.set(uid, w);
      log.info({ pod: w.key, ip: w.ip }, 'pod admitted');
      return;
    }
    w.update(pod);
    if (pod.metadata!.deletionTimestamp && !w.isTerminating) {
      log.info({ pod: w.key, grace: pod.metadata!.deletionGracePeriodSeconds }, 'pod deleted: terminating');
      void finish(w, true);
    }
  };
  pods.on('add', onPod);
  pods.on('update', onPod);
  pods.on('delete', (pod) => {
    const w = workers.get(pod.metadata!.uid!);
    if (!w) return;
    w.markGone(); // force-deleted: no object left to write to
    void finish(w, false);
  });
  for (const inf of [pods, services]) {
    inf.on('add', () => proxy.kick());
    inf.on('update', () => proxy.kick());
    inf.on('delete', () => proxy.kick());
  }
  for (const inf of [claims, volumes] as ResilientInformer<KubernetesObject>[]) {
    inf.on('add', () => provisioner.kick());
    inf.on('update', () => provisioner.kick());
    inf.on('delete', () => provisioner.kick());
  }

  // The kubelet API (logs, exec) before the Node, whose status advertises its port.
  const server = await startKubeletServer({
    api,
    nodeName,
    pkiDir: join(dataDir, 'pki'),
    log: log.child({ part: 'kubelet-api' }),
    findPod: (ns, name) => byName(ns, name),
    metricsContainers: () => [...workers.values()].filter((w) => !w.isTerminating).flatMap((w) => w.metricsContainers()),
  });
  const node = new NodeAgent(api, nodeName, log, server?.port ?? 0);
  await node.register();
  // Caches other parts read first; pods last, so a pod never looks up a missing cache entry.
  await Promise.all([services, claims, volumes, configMaps, secrets].map((i) => i.start()));
  await pods.start();
  if (opts.serviceProxy !== false) proxy.start();
  provisioner.kick();
  const provisionTimer = setInterval(() => provisioner.kick(), 2000);
  await node.waitSchedulable(30_000);
  log.info({ dataDir, cgroups: cgroups.root ?? 'none', podCidrBase, serviceCidrBase }, 'process kubelet ready');

  const reaperPid = cgroups.root ? startReaper(cgroups.root, shmRoot, join(dataDir, 'volumes')) : undefined;
  const forget = onExitKill(() => {
    if (cgroups.root) {
      try {
        writeFileSync(join(cgroups.root, 'cgroup.kill'), '1');
      } catch {
        /* gone */
      }
    }
    for (const w of workers.values()) for (const pid of w.pids()) signal(-pid, 'SIGKILL');
  });

  let stopped: Promise<void> | undefined;
  const stop = async () => {
    stopping = true;
    clearInterval(provisionTimer);
    // Pods bound here now would never run: another file's kubelet takes them instead.
    if (opts.removeNodeOnStop !== false) await node.cordon();
    await Promise.all([pods, services, claims, volumes, configMaps, secrets].map((i) => i.stop().catch(() => undefined)));
    const terminated = Promise.all([...workers.values()].map((w) => w.terminate(w.frozen ? 0 : undefined)));
    // Grace periods are at most a minute here: past that, something is stuck — kill, never hang.
    let timer: NodeJS.Timeout | undefined;
    const late = await Promise.race([terminated.then(() => false), new Promise<boolean>((r) => (timer = setTimeout(() => r(true), STOP_DEADLINE_MS)))]);
    clearTimeout(timer);
    if (late) {
      log.warn({ pods: [...workers.values()].filter((w) => w.pids().length > 0).map((w) => w.key) }, 'pods still running past the stop deadline: killed');
      for (const w of workers.values()) for (const pid of w.pids()) signal(-pid, 'SIGKILL');
    }
    workers.clear();
    await server?.stop();
    await provisioner.stop();
    await proxy.stop();
    await node.stop(opts.removeNodeOnStop !== false);
    if (cgroups.root) await cgroups.remove(cgroups.root);
    await rm(shmRoot, { recursive: true, force: true });
    forget();
    if (reaperPid) signal(reaperPid, 'SIGKILL');
    log.info('process kubelet stopped');
    log.flush();
    if (ownDataDir && process.env.PGPILOT_E2E_KEEP_LOGS !== '1') await rm(dataDir, { recursive: true, force: true }).catch(() => undefined);
  };

  return {
    nodeName,
    podCidrBase,
    serviceCidrBase,
    dataDir,
    logPath,
    servicesFile,
    podAddress: (ns, name) => byName(ns, name)?.ip,
    serviceAddress: (ns, name, port) => proxy.serviceAddress(ns, name, port),
    podPids: (ns, name) => byName(ns, name)?.pids() ?? [],
    allPids: () => [...workers.values()].flatMap((w) => w.pids()),
    containerLogPath: (ns, name, container) => {
      const w = byName(ns, name);
      return w ? join(w.podDir, 'logs', `${container}.log`) : undefined;
    },
    killContainer: (ns, name, container) => mustPod(ns, name).killContainer(container),
    killPostmaster: (ns, name, container) => mustPod(ns, name).killTopProcesses('postgres', container),
    freeze: (ns, name) => mustPod(ns, name).setFrozen(true),
    thaw: (ns, name) => mustPod(ns, name).setFrozen(false),
    isolatePod: async (ns, name) => {
      await mustPod(ns, name).setIsolated(true);
      proxy.sync();
    },
    heal: async (ns, name) => {
      await mustPod(ns, name).setIsolated(false);
      proxy.sync();
    },
    stop: () => (stopped ??= stop()),
  };
}

