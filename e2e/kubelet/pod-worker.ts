// One pod on the process kubelet: volumes, init containers in order, containers supervised with
// restartPolicy and crash backoff (1 s doubling to 30 s; reset after 60 s of running), probes,
// status written to the apiserver, graceful termination. preStop/postStart hooks are not run.
import { mkdir, open, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { V1Container, V1ContainerState, V1ContainerStateTerminated, V1ContainerStatus, V1Pod, V1PodCondition, V1PodSpec } from '@kubernetes/client-node';
import type { Logger } from '../../src/runtime/logger.js';
import { isStatus, type KubeApi } from './api.js';
import { ContainerConfigError, containerEnv, expandRefs } from './container-env.js';
import { headerLine, isHeaderLine } from './container-logs.js';
import type { ExecTarget } from './exec.js';
import type { ContainerView } from './kubelet-server.js';
import type { MetricsContainer } from './resource-metrics.js';
import { ImagePullError, resolveImage, type ResolvedImage } from './images.js';
import { ProbeLoop, type ProbeTarget } from './probes.js';
import { launchProcess, signal, writeIdentityFiles, type Cgroups, type ExitStatus, type Mount, type ProcessUser, type SandboxProcess } from './sandbox.js';
import { PodVolumes, VolumeNotReady, type VolumeSources } from './volumes.js';
import { errorText } from '../../src/util/error-text.js';

export interface WorkerDeps {
  api: KubeApi;
  log: Logger;
  repoRoot: string;
  dataDir: string;
  shmRoot: string;
  apiServer: URL;
  sources: VolumeSources;
  cgroups: Cgroups;
  event(pod: V1Pod, type: 'Normal' | 'Warning', reason: string, message: string): void;
  /** Lines for the pod's /etc/hosts beyond its own name (Services through the proxy). */
  hosts(pod: V1Pod): string;
  /** Called after the pod's status was written (the proxy follows readiness). */
  statusWritten(pod: V1Pod): void;
}

const now = () => new Date().toISOString();
const MAX_BACKOFF_MS = 30_000;

class ContainerRuntime {
  proc?: SandboxProcess;
  cgroupDir?: string;
  restartCount = 0;
  state: V1ContainerState = { waiting: { reason: 'ContainerCreating' } };
  lastState: V1ContainerState = {};
  ready = false;
  started = false;
  probes: ProbeLoop[] = [];
  startedAt = 0;
  /** How exec enters this start of the container (set at launch). */
  execTarget?: ExecTarget;
  constructor(
    readonly spec: V1Container,
    readonly init: boolean,
    readonly logPath: string,
  ) {}
  get running(): boolean {
    return !!this.proc?.alive();
  }
  status(): V1ContainerStatus {
    return {
      name: this.spec.name,
      image: this.spec.image ?? '',
      imageID: `process://${this.spec.image ?? ''}`,
      ...(this.proc ? { containerID: `process://${this.proc.pid}` } : {}),
      ready: this.ready,
      restartCount: this.restartCount,
      started: this.started,
      state: this.state,
      lastState: this.lastState,
    };
  }
}

export class PodWorker {
  pod: V1Pod;
  readonly uid: string;
  readonly podDir: string;
  private readonly containers: ContainerRuntime[];
  private readonly inits: ContainerRuntime[];
  private volumes?: PodVolumes;
  private phase = 'Pending';
  private initialized = false;
  private startTime?: string;
  private readonly transitions = new Map<string, { status: string; time: string }>();
  private terminating?: Promise<void>;
  private refreshTimer?: NodeJS.Timeout;
  private writing = false;
  private dirty = false;
  private gone = false;
  private user?: ProcessUser;
  private hostsPath = '';
  private passwd = { passwd: '', group: '' };
  frozen = false;
  isolated = false;
  readonly done: Promise<void>;
  private readonly wakers = new Set<() => void>();

  constructor(
    pod: V1Pod,
    readonly ip: string,
    private readonly d: WorkerDeps,
  ) {
    this.pod = pod;
    this.uid = pod.metadata!.uid!;
    this.podDir = join(d.dataDir, 'pods', this.uid);
    const logs = join(this.podDir, 'logs');
    this.inits = (pod.spec!.initContainers ?? []).map((c) => new ContainerRuntime(c, true, join(logs, `${c.name}.log`)));
    this.containers = pod.spec!.containers.map((c) => new ContainerRuntime(c, false, join(logs, `${c.name}.log`)));
    this.done = this.run().catch((err: unknown) => this.log.error({ err: errorText(err) }, 'pod worker failed'));
  }

  private get log(): Logger {
    return this.d.log.child({ pod: `${this.pod.metadata!.namespace}/${this.pod.metadata!.name}` });
  }
  get key(): string {
    return `${this.pod.metadata!.namespace}/${this.pod.metadata!.name}`;
  }
  get isTerminating(): boolean {
    return this.terminating !== undefined;
  }
  /** Main pids of running containers (for tests and stop()). */
  pids(): number[] {
    return [...this.inits, ...this.containers].flatMap((c) => (c.running && c.proc ? [c.proc.pid] : []));
  }
  containerPid(name?: string): number | undefined {
    const c = name ? this.containers.find((x) => x.spec.name === name) : this.containers[0];
    return c?.running ? c.proc?.pid : undefined;
  }

  /** Running (non-init) containers as /metrics/resource reads them. */
  metricsContainers(): MetricsContainer[] {
    const { namespace, name } = this.pod.metadata!;
    return this.containers
      .filter((c) => c.running)
      .map((c) => ({ namespace: namespace!, pod: name!, container: c.spec.name, startedAtMs: c.startedAt, ...(c.cgroupDir ? { cgroupDir: c.cgroupDir } : {}) }));
  }

  /** A container (init containers too) as the kubelet API serves it. */
  view(name: string): ContainerView | undefined {
    const c = [...this.containers, ...this.inits].find((x) => x.spec.name === name);
    if (!c) return undefined;
    const running = c.running;
    return {
      status: c.status(),
      running,
      logPath: c.logPath,
      ...(running && c.proc ? { exited: c.proc.exited } : {}),
      ...(running && c.execTarget ? { exec: c.execTarget } : {}),
    };
  }

  update(pod: V1Pod): void {
    this.pod = pod;
  }

  /** The pod with the IP this kubelet gave it, which fieldRefs read before any status is written. */
  withAddresses(): V1Pod {
    return { ...this.pod, status: { ...this.pod.status, podIP: this.ip, podIPs: [{ ip: this.ip }], hostIP: '127.0.0.1' } };
  }

  // ---- lifecycle -------------------------------------------------------------------------

  private async run(): Promise<void> {
    this.startTime = now();
    await mkdir(join(this.podDir, 'logs'), { recursive: true });
    this.user = podUser(this.pod.spec!);
    this.passwd = await writeIdentityFiles(join(this.podDir, 'etc'), this.user);
    this.hostsPath = join(this.podDir, 'etc', 'hosts');
    await this.writeHosts();
    this.scheduleStatus();

    this.volumes = new PodVolumes(this.d.api, this.d.sources, this.withAddresses(), this.podDir, join(this.d.shmRoot, this.uid));
    if (!(await this.setUpVolumes(this.volumes))) return;
    this.refreshTimer = setInterval(() => void this.refresh(), 1000);

    for (const c of this.inits) {
      const ok = await this.runInit(c);
      if (!ok) return;
    }
    this.initialized = true;
    this.scheduleStatus();
    await Promise.all(this.containers.map((c) => this.supervise(c)));
    if (!this.terminating) {
      const failed = this.containers.some((c) => (c.state.terminated?.exitCode ?? 0) !== 0);
      this.phase = failed ? 'Failed' : 'Succeeded';
      this.scheduleStatus();
    }
  }

  /** Volumes: retry until every source exists (claims bound, ConfigMaps created...); false when terminated first. */
  private async setUpVolumes(volumes: PodVolumes): Promise<boolean> {
    let lastMsg = '';
    for (;;) {
      if (this.terminating) return false;
      try {
        await volumes.setup();
        return true;
      } catch (err) {
        const msg = errorText(err);
        if (!(err instanceof VolumeNotReady)) this.log.warn({ err: msg }, 'volume setup failed');
        if (msg !== lastMsg) this.d.event(this.pod, 'Warning', 'FailedMount', msg);
        lastMsg = msg;
        await this.pause(1000);
      }
    }
  }

  private async refresh(): Promise<void> {
    try {
      await this.volumes?.refresh();
      await this.writeHosts();
    } catch (err) {
      this.log.debug({ err: errorText(err) }, 'volume refresh failed');
    }
  }

  /** A per-pod /etc/hosts (rewritten in place, so the bind mount keeps seeing it). */
  private async writeHosts(): Promise<void> {
    const name = this.pod.spec!.hostname ?? this.pod.metadata!.name!;
    const sub = this.pod.spec!.subdomain;
    const fqdn = sub ? ` ${name}.${sub}.${this.pod.metadata!.namespace}.svc.cluster.local` : '';
    const text = `127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n${this.ip}\t${name}${fqdn}\n${this.d.hosts(this.pod)}`;
    await writeFile(this.hostsPath, text);
  }

  private async runInit(c: ContainerRuntime): Promise<boolean> {
    let backoff = 1000;
    for (;;) {
      const exit = await this.runOnce(c);
      if (this.terminating) return false;
      if (exit === 0) return true;
      if (this.pod.spec!.restartPolicy === 'Never') {
        this.phase = 'Failed';
        this.scheduleStatus();
        return false;
      }
      c.lastState = c.state;
      c.state = { waiting: { reason: 'CrashLoopBackOff', message: `back-off ${backoff / 1000}s restarting failed container=${c.spec.name}` } };
      this.scheduleStatus();
      await this.pause(backoff);
      backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
      c.restartCount++;
    }
  }

  private async supervise(c: ContainerRuntime): Promise<void> {
    let backoff = 1000;
    const policy = this.pod.spec!.restartPolicy ?? 'Always';
    for (;;) {
      const exit = await this.runOnce(c);
      if (this.terminating) return;
      if (policy === 'Never' || (policy === 'OnFailure' && exit === 0)) return;
      if (Date.now() - c.startedAt > 60_000) backoff = 1000;
      c.lastState = c.state.terminated ? c.state : c.lastState;
      const reason = c.state.waiting?.reason === 'ErrImagePull' ? 'ImagePullBackOff' : c.state.waiting?.reason ?? 'CrashLoopBackOff';
      c.state = { waiting: { reason, message: `back-off ${backoff / 1000}s restarting failed container=${c.spec.name} pod=${this.pod.metadata!.name}${c.state.waiting?.message ? `: ${c.state.waiting.message}` : ''}` } };
      this.scheduleStatus();
      await this.pause(backoff);
      if (this.terminating) return;
      backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
      if (exit !== undefined) c.restartCount++;
    }
  }

  /** Starts the container and waits for it to end; exit code, or undefined when it never started. */
  private async runOnce(c: ContainerRuntime): Promise<number | undefined> {
    const config = this.containerConfig(c);
    if (!config) return undefined;
    const { image, env } = config;
    if (image.substitution && c.restartCount === 0 && !c.proc) this.d.event(this.pod, 'Warning', 'ImageVersionSubstituted', image.substitution);
    const user = this.userFor(c.spec);
    const proc = await this.launch(c, config, user);
    if (!proc) return undefined;
    c.startedAt = Date.now();
    const startedAt = now();
    c.state = { running: { startedAt: startedAt as unknown as Date } };
    c.ready = false;
    c.started = false;
    this.log.info({ container: c.spec.name, pid: proc.pid, restartCount: c.restartCount }, 'container started');
    if (!c.init) {
      this.phase = 'Running';
      this.startProbes(c, env, user);
    }
    this.scheduleStatus();
    const exit = await proc.exited;
    for (const p of c.probes) p.stop();
    c.probes = [];
    if (c.cgroupDir) await this.d.cgroups.kill(c.cgroupDir); // the container ends with its main process
    else signal(-proc.pid as number, 'SIGKILL');
    const code = exitCode(exit);
    c.ready = false;
    c.started = false;
    c.state = { terminated: await terminatedState(c, proc, exit, code, startedAt) };
    this.log.info({ container: c.spec.name, exitCode: code, signal: exit.signal }, 'container exited');
    this.scheduleStatus();
    return code;
  }

  /**
   * The image, environment and volume mounts of a start; undefined (the container waiting, with
   * an event when the reason is new) when one of them cannot be had yet.
   */
  private containerConfig(c: ContainerRuntime): ContainerConfig | undefined {
    try {
      const image = resolveImage(c.spec.image ?? '', this.d.repoRoot);
      const env = containerEnv(this.withAddresses(), c.spec, image, this.d.sources, this.d.apiServer);
      const mounts = (c.spec.volumeMounts ?? []).map((m): Mount => {
        const base = this.volumes!.paths.get(m.name);
        if (!base) throw new ContainerConfigError(`container ${c.spec.name} mounts ${m.name}, which is not a volume of the pod`);
        return { hostPath: m.subPath ? join(base, m.subPath) : base, containerPath: m.mountPath, readOnly: !!m.readOnly };
      });
      return { image, env, mounts };
    } catch (err) {
      const reason = err instanceof ImagePullError ? 'ErrImagePull' : err instanceof ContainerConfigError ? 'CreateContainerConfigError' : 'CreateContainerError';
      const message = errorText(err);
      if (c.state.waiting?.message !== message) this.d.event(this.pod, 'Warning', reason === 'ErrImagePull' ? 'Failed' : reason, message);
      c.state = { waiting: { reason, message } };
      this.scheduleStatus();
      return undefined;
    }
  }

  /**
   * A fresh cgroup, the start line in the container's log, then the process; undefined when the
   * pod began terminating meanwhile. terminate() stops only processes that exist when it runs, so
   * one started after it would run on unseen: the pod never ends and its deletion never completes
   * (a StatefulSet then waits for it forever).
   */
  private async launch(c: ContainerRuntime, { image, env, mounts }: ContainerConfig, user: ProcessUser | undefined): Promise<SandboxProcess | undefined> {
    const argv = containerArgv(c.spec, image, env);
    const allMounts: Mount[] = [
      ...mounts,
      ...image.mounts,
      { hostPath: this.passwd.passwd, containerPath: '/etc/passwd', readOnly: true },
      { hostPath: this.passwd.group, containerPath: '/etc/group', readOnly: true },
      { hostPath: this.hostsPath, containerPath: '/etc/hosts', readOnly: true },
    ];
    const noNewPrivs = c.spec.securityContext?.allowPrivilegeEscalation === false;
    await this.newCgroup(c);
    await writeHeader(c.logPath, headerLine(c.spec.name, c.restartCount, argv));
    const fullEnv = { HOME: user?.uid === 26 ? '/var/lib/postgresql' : '/', ...env };
    const workingDir = c.spec.workingDir ?? image.workingDir;
    // No await between this check and the start: terminate() sees the process or we see it.
    if (this.terminating) return undefined;
    c.proc = launchProcess({
      argv,
      env: fullEnv,
      workingDir,
      mounts: allMounts,
      ...(user ? { user } : {}),
      noNewPrivs,
      hostname: this.pod.spec!.hostname ?? this.pod.metadata!.name!,
      ...(c.cgroupDir ? { cgroupDir: c.cgroupDir } : {}),
      logPath: c.logPath,
    });
    c.execTarget = { pid: c.proc.pid, ...(c.cgroupDir ? { cgroupDir: c.cgroupDir } : {}), env: fullEnv, ...(user ? { user } : {}), noNewPrivs, workingDir };
    return c.proc;
  }

  /** The cgroup of this start (the previous one removed). */
  private async newCgroup(c: ContainerRuntime): Promise<void> {
    if (c.cgroupDir) await this.d.cgroups.remove(c.cgroupDir);
    c.cgroupDir = await this.d.cgroups.make(this.uid, `${c.spec.name}-${c.restartCount}`);
    // A restart inside a partition stays partitioned; a merely frozen (hung) container restarts live.
    if (c.cgroupDir && this.isolated) await this.d.cgroups.freeze(c.cgroupDir, true);
  }

  private userFor(c: V1Container): ProcessUser | undefined {
    const uid = c.securityContext?.runAsUser;
    if (uid === undefined) return this.user;
    if (uid === 0) return undefined;
    return { uid, gid: c.securityContext?.runAsGroup ?? this.user?.gid ?? uid, groups: this.user?.groups ?? [] };
  }

  private startProbes(c: ContainerRuntime, env: Record<string, string>, user: ProcessUser | undefined): void {
    const target: ProbeTarget = {
      podIP: this.ip,
      container: c.spec,
      pid: () => (c.running ? c.proc?.pid : undefined),
      env,
      privArgs: user ? ['setpriv', `--reuid=${user.uid}`, `--regid=${user.gid}`, '--clear-groups', '--'] : [],
    };
    const startLiveAndReady = () => {
      c.started = true;
      if (c.spec.livenessProbe) {
        const p = new ProbeLoop('liveness', c.spec.livenessProbe, target, (ok, msg) => {
          if (ok) return;
          this.d.event(this.pod, 'Warning', 'Unhealthy', `Liveness probe failed: ${msg}`);
          this.log.info({ container: c.spec.name, msg }, 'liveness failed: restarting the container');
          void this.stopContainer(c, this.graceSeconds());
        });
        c.probes.push(p);
        p.start();
      }
      if (c.spec.readinessProbe) {
        const p = new ProbeLoop('readiness', c.spec.readinessProbe, target, (ok, msg) => {
          if (!ok) this.d.event(this.pod, 'Warning', 'Unhealthy', `Readiness probe failed: ${msg}`);
          c.ready = ok;
          this.scheduleStatus();
        });
        c.probes.push(p);
        p.start();
      } else c.ready = true;
      this.scheduleStatus();
    };
    if (c.spec.startupProbe) {
      const p = new ProbeLoop('startup', c.spec.startupProbe, target, (ok, msg) => {
        if (ok) startLiveAndReady();
        else {
          this.d.event(this.pod, 'Warning', 'Unhealthy', `Startup probe failed: ${msg}`);
          void this.stopContainer(c, this.graceSeconds());
        }
      });
      c.probes.push(p);
      p.start();
    } else startLiveAndReady();
    for (const p of c.probes) p.paused = this.isolated;
  }

  private graceSeconds(): number {
    return this.pod.metadata!.deletionGracePeriodSeconds ?? this.pod.spec!.terminationGracePeriodSeconds ?? 30;
  }

  /**
   * SIGTERM to the main process, then the whole container after graceSeconds. A frozen container
   * is not thawed: as with a SIGSTOPped process under a real kubelet, the SIGTERM stays pending
   * and the SIGKILL after the grace period ends it (a hung primary never wakes up to write).
   */
  private async stopContainer(c: ContainerRuntime, graceSeconds: number): Promise<void> {
    const proc = c.proc;
    if (!proc?.alive()) return;
    signal(proc.pid, 'SIGTERM');
    const timer = setTimeout(() => void this.killContainer(c), graceSeconds * 1000);
    await proc.exited;
    clearTimeout(timer);
  }

  async killContainer(c: ContainerRuntime | string | undefined): Promise<boolean> {
    const rt = typeof c === 'object' ? c : c ? this.containers.find((x) => x.spec.name === c) : this.containers[0];
    if (!rt?.proc?.alive()) return false;
    signal(rt.proc.pid, 'SIGKILL');
    if (rt.cgroupDir) await this.d.cgroups.kill(rt.cgroupDir);
    else signal(-rt.proc.pid as number, 'SIGKILL');
    return true;
  }

  /**
   * SIGKILL only the topmost processes of the container whose command name (/proc/<pid>/comm)
   * is `comm` — e.g. 'postgres': the postmaster under the instance agent, not its backends (their
   * parent is a postgres too), and not the agent. The container's main process lives on, so
   * restartPolicy plays no part: what follows is up to the main process. Returns the pids signalled.
   */
  async killTopProcesses(comm: string, container?: string): Promise<number[]> {
    const rt = container ? this.containers.find((x) => x.spec.name === container) : this.containers[0];
    if (!rt?.proc?.alive()) return [];
    const main = rt.proc.pid;
    const pids = rt.cgroupDir ? await this.d.cgroups.pids(rt.cgroupDir) : await descendantsOf(main);
    const info = new Map<number, { comm: string; ppid: number }>();
    for (const pid of new Set([...pids, main])) {
      const stat = await procStat(pid);
      if (stat) info.set(pid, stat);
    }
    const targets = [...info].filter(([pid, p]) => pid !== main && p.comm === comm && info.get(p.ppid)?.comm !== comm).map(([pid]) => pid);
    for (const pid of targets) signal(pid, 'SIGKILL');
    return targets;
  }

  async setFrozen(frozen: boolean): Promise<void> {
    this.frozen = frozen;
    for (const c of [...this.inits, ...this.containers]) {
      if (!c.proc?.alive()) continue;
      if (c.cgroupDir) await this.d.cgroups.freeze(c.cgroupDir, frozen);
      else signal(-c.proc.pid as number, frozen ? 'SIGSTOP' : 'SIGCONT');
    }
  }

  async setIsolated(isolated: boolean): Promise<void> {
    this.isolated = isolated;
    for (const c of this.containers) for (const p of c.probes) p.paused = isolated;
    await this.setFrozen(isolated);
  }

  /**
   * Graceful termination (deletion, or kubelet stop); idempotent. The kubelet's stop() passes 0
   * for frozen pods: nothing in them can act on a SIGTERM.
   */
  terminate(graceSeconds = this.graceSeconds()): Promise<void> {
    this.terminating ??= (async () => {
      for (const wake of [...this.wakers]) wake();
      clearInterval(this.refreshTimer);
      for (const c of [...this.inits, ...this.containers]) for (const p of c.probes) p.stop();
      await Promise.all([...this.inits, ...this.containers].map((c) => this.stopContainer(c, graceSeconds)));
      await this.done;
      for (const c of [...this.inits, ...this.containers]) if (c.cgroupDir) await this.d.cgroups.remove(c.cgroupDir);
      if (this.d.cgroups.root) await this.d.cgroups.remove(join(this.d.cgroups.root, this.uid));
    })();
    return this.terminating;
  }

  /** After termination of a deleted pod: the object goes (the StatefulSet controller waits for that). */
  async finalizeDeletion(): Promise<void> {
    this.gone = true;
    const { namespace, name } = this.pod.metadata!;
    try {
      await this.d.api.delete(`/api/v1/namespaces/${namespace}/pods/${name}`, {
        apiVersion: 'v1',
        kind: 'DeleteOptions',
        gracePeriodSeconds: 0,
        preconditions: { uid: this.uid },
      });
    } catch (err) {
      if (!isStatus(err, 404) && !isStatus(err, 409)) throw err;
    }
    // Volumes of the pod go; PVC data lives elsewhere; logs stay for post-mortems.
    await rm(join(this.podDir, 'volumes'), { recursive: true, force: true });
    await rm(join(this.d.shmRoot, this.uid), { recursive: true, force: true });
  }

  markGone(): void {
    this.gone = true;
  }

  /** A wait that terminate() cuts short (every container's backoff, not just the last one). */
  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(t);
        this.wakers.delete(wake);
        resolve();
      };
      const t = setTimeout(wake, ms);
      this.wakers.add(wake);
    });
  }

  // ---- status ----------------------------------------------------------------------------

  private condition(type: string, ok: boolean, reason?: string): V1PodCondition {
    const status = ok ? 'True' : 'False';
    const prev = this.transitions.get(type);
    if (!prev || prev.status !== status) this.transitions.set(type, { status, time: now() });
    return { type, status, lastTransitionTime: this.transitions.get(type)!.time as unknown as Date, ...(reason && !ok ? { reason } : {}) };
  }

  buildStatus(): Record<string, unknown> {
    const containersReady = this.containers.every((c) => c.ready);
    const scheduled = (this.pod.status?.conditions ?? []).find((c) => c.type === 'PodScheduled');
    const done = this.phase === 'Succeeded' || this.phase === 'Failed';
    return {
      phase: this.phase,
      conditions: [
        ...(scheduled ? [scheduled] : []),
        this.condition('PodReadyToStartContainers', true),
        this.condition('Initialized', this.initialized || this.inits.length === 0, 'ContainersNotInitialized'),
        this.condition('ContainersReady', containersReady && !done, done ? 'PodCompleted' : 'ContainersNotReady'),
        this.condition('Ready', containersReady && !done, done ? 'PodCompleted' : 'ContainersNotReady'),
      ],
      hostIP: '127.0.0.1',
      hostIPs: [{ ip: '127.0.0.1' }],
      podIP: this.ip,
      podIPs: [{ ip: this.ip }],
      startTime: this.startTime,
      ...(this.inits.length ? { initContainerStatuses: this.inits.map((c) => c.status()) } : {}),
      containerStatuses: this.containers.map((c) => c.status()),
    };
  }

  /** Coalesces status writes: one in flight, the latest state written after it. */
  scheduleStatus(): void {
    this.dirty = true;
    if (this.writing || this.gone) return;
    this.writing = true;
    void (async () => {
      while (this.dirty && !this.gone) {
        this.dirty = false;
        await sleep(20);
        const { namespace, name } = this.pod.metadata!;
        try {
          const updated = await this.d.api.mergePatch<V1Pod>(`/api/v1/namespaces/${namespace}/pods/${name}/status`, {
            metadata: { uid: this.uid },
            status: this.buildStatus(),
          });
          this.pod = { ...this.pod, status: updated.status! };
          this.d.statusWritten(this.pod);
        } catch (err) {
          // A recreated pod of the same name has another uid: the patch's uid then fails validation.
          if (isStatus(err, 404) || isStatus(err, 409) || (isStatus(err, 422) && /uid/i.test(errorText(err)))) this.gone = true;
          else {
            this.log.warn({ err: errorText(err) }, 'pod status write failed; retrying');
            this.dirty = true;
            await sleep(500);
          }
        }
      }
      this.writing = false;
    })();
  }
}

/** What a container start needs, gathered before anything is launched. */
interface ContainerConfig {
  image: ResolvedImage;
  env: Record<string, string>;
  mounts: Mount[];
}

/** The pod-level user (securityContext, the first container's runAsUser/runAsGroup first); undefined for root. */
function podUser(spec: V1PodSpec): ProcessUser | undefined {
  const sc = spec.securityContext ?? {};
  const uid = spec.containers[0]?.securityContext?.runAsUser ?? sc.runAsUser;
  if (uid === undefined || uid === 0) return undefined;
  const gid = spec.containers[0]?.securityContext?.runAsGroup ?? sc.runAsGroup ?? uid;
  const groups = [...new Set([...(sc.fsGroup !== undefined ? [sc.fsGroup] : []), ...(sc.supplementalGroups ?? [])])];
  return { uid, gid, groups };
}

/** command/args over the image's entrypoint/cmd (args alone keep the entrypoint), $(VAR) expanded. */
function containerArgv(spec: V1Container, image: ResolvedImage, env: Record<string, string>): string[] {
  const command = (spec.command ?? image.entrypoint).map((s) => expandRefs(s, env));
  const args = (spec.command ? (spec.args ?? []) : (spec.args ?? image.cmd)).map((s) => expandRefs(s, env));
  return [...command, ...args];
}

const SIGNALS: Record<string, number> = { SIGKILL: 9, SIGTERM: 15, SIGINT: 2, SIGABRT: 6, SIGSEGV: 11, SIGHUP: 1 };

/** The exit code as a shell reports it: 128 + the signal number when a signal ended the process. */
function exitCode(exit: ExitStatus): number {
  return exit.code ?? 128 + (SIGNALS[exit.signal ?? ''] ?? 0);
}

async function terminatedState(c: ContainerRuntime, proc: SandboxProcess, exit: ExitStatus, code: number, startedAt: string): Promise<V1ContainerStateTerminated> {
  return {
    exitCode: code,
    ...(exit.signal ? { signal: SIGNALS[exit.signal] ?? 0 } : {}),
    reason: code === 0 ? 'Completed' : 'Error',
    startedAt: startedAt as unknown as Date,
    finishedAt: now() as unknown as Date,
    containerID: `process://${proc.pid}`,
    ...(code !== 0 ? { message: await tail(c.logPath, c.spec.name) } : {}),
  };
}

/** The start's header line, on a line of its own even when the last start's output did not end one. */
async function writeHeader(path: string, header: string): Promise<void> {
  const f = await open(path, 'a+');
  try {
    const { size } = await f.stat();
    const last = Buffer.alloc(1);
    if (size > 0) await f.read(last, 0, 1, size - 1);
    await f.write(size > 0 && last[0] !== 0x0a ? `\n${header}` : header);
  } finally {
    await f.close();
  }
}

async function tail(path: string, container: string, bytes = 2048): Promise<string> {
  try {
    const f = await open(path, 'r');
    try {
      const { size } = await f.stat();
      const buf = Buffer.alloc(Math.min(bytes, size));
      await f.read(buf, 0, buf.length, size - buf.length);
      const lines = buf.toString('utf8').split('\n');
      return lines.filter((l) => !isHeaderLine(l, container)).slice(-15).join('\n').trim();
    } finally {
      await f.close();
    }
  } catch {
    return '';
  }
}

/** comm and ppid of a process from /proc/<pid>/stat (comm may hold spaces and parentheses). */
async function procStat(pid: number): Promise<{ comm: string; ppid: number } | undefined> {
  try {
    const text = await readFile(`/proc/${pid}/stat`, 'utf8');
    const open = text.indexOf('(');
    const close = text.lastIndexOf(')');
    const rest = text.slice(close + 2).split(' ');
    return { comm: text.slice(open + 1, close), ppid: Number(rest[1]) };
  } catch {
    return undefined;
  }
}

/** Every descendant of `root` (the process-group fallback has no cgroup to list). */
async function descendantsOf(root: number): Promise<number[]> {
  const parent = new Map<number, number>();
  for (const name of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(name)) continue;
    const stat = await procStat(Number(name));
    if (stat) parent.set(Number(name), stat.ppid);
  }
  const out: number[] = [];
  const frontier = [root];
  while (frontier.length) {
    const p = frontier.pop()!;
    for (const [child, pp] of parent) if (pp === p) {
      out.push(child);
      frontier.push(child);
    }
  }
  return out;
}
