// The cluster controller: informers on clusters and everything they own feed a keyed work queue;
// each reconcile runs the reconcilers in order and writes status only when it changed.
import { PatchStrategy, setHeaderOptions, type KubernetesObject } from '@kubernetes/client-node';
import { isDeepStrictEqual } from 'node:util';
import type { ClusterStatus, PostgreSQLCluster } from '../api/cluster.js';
import { API_GROUP, API_VERSION, CLUSTER_PLURAL, LABELS, MANAGED_BY } from '../api/constants.js';
import { resolveSpec } from '../api/resolve-spec.js';
import { apiErrorMessage } from '../runtime/apply.js';
import type { EventRecorder } from '../runtime/events.js';
import { ResilientInformer, type ResourceType } from '../runtime/informer.js';
import type { KubeClients } from '../runtime/kube.js';
import type { Logger } from '../runtime/logger.js';
import type { OperatorMetrics } from '../runtime/metrics.js';
import { WorkQueue, type WorkResult } from '../runtime/workqueue.js';
import { conditionEvents, findCondition } from '../reconcilers/conditions.js';
import { AgentClient } from '../instance/agent-client.js';
import { createHaReconciler } from '../reconcilers/ha.js';
import { installReconciler } from '../reconcilers/install.js';
import { createCertificatesReconciler } from '../reconcilers/certificates.js';
import { recoveryGateReconciler } from '../reconcilers/recovery-gate.js';
import { createRolloutReconciler } from '../reconcilers/rollout.js';
import { createMajorUpgradeReconciler } from '../reconcilers/major-upgrade.js';
import { createHibernationReconciler } from '../reconcilers/hibernation.js';
import { createFencingReconciler } from '../reconcilers/fencing.js';
import { createReloadReconciler } from '../reconcilers/reload.js';
import { createPasswordsReconciler } from '../reconcilers/passwords.js';
import { AgentTokens, Observer, type Observation } from '../reconcilers/observe.js';
import { AgentCertificates } from '../reconcilers/agent-certificates.js';
import { runPass, unobservedPass } from '../reconcilers/pass.js';
import { PrimaryLeases } from '../reconcilers/primary-lease.js';
import { PrimaryMonitor } from '../reconcilers/primary-monitor.js';
import { computeStatus } from '../reconcilers/status.js';
import type { OperatorConfig, OwnedCache, OwnedKind, ReconcileContext, Reconciler } from '../reconcilers/types.js';
import { applyIfChanged, deleteIfExists } from '../runtime/apply.js';
import { BACKUP_RESOURCE, CACHE_TRIMS, CLUSTER_RESOURCE, OWNED_RESOURCES } from './owned-kinds.js';
import type { PostgreSQLBackup } from '../api/backup.js';
import { createBackupReconciler } from '../reconcilers/backup.js';
import { monitoringReconciler } from '../reconcilers/monitoring.js';
import { createAnomaliesReconciler } from '../reconcilers/anomalies.js';
import { createAutopilotReconciler } from '../reconcilers/autopilot.js';
import { autoscalingReconciler } from '../reconcilers/autoscaling.js';
import { apiStatus } from '../runtime/api-status.js';
import { clusterEventTarget } from '../runtime/events.js';
import { ClusterMetrics } from './cluster-metrics.js';
import { OptionalKinds } from './optional-kinds.js';

export interface ControllerOptions {
  clients: KubeClients;
  config: OperatorConfig;
  log: Logger;
  metrics: OperatorMetrics;
  events: EventRecorder;
  /** Empty: all namespaces. */
  namespaces: string[];
  concurrency: number;
  resyncMs: number;
  relistMs?: number;
  /** How often optional APIs (optional-kinds.ts) are looked for again. */
  discoveryMs?: number;
}


/** Coalescing window for events of owned objects; changes to the cluster itself go at once. */
const OWNED_EVENT_DELAY_MS = 250;

/** While instances are not ready, look again this often even without events. */
const WAITING_REQUEUE_MS = 30_000;

export class ClusterController implements OwnedCache {
  private readonly clusterInformers: Array<ResilientInformer<PostgreSQLCluster>> = [];
  /** Every PostgreSQLBackup in scope: they are not owned by their cluster (they outlive it). */
  private readonly backupInformers: Array<ResilientInformer<PostgreSQLBackup>> = [];
  private readonly owned = new Map<OwnedKind, Array<ResilientInformer<KubernetesObject>>>();
  private readonly queue: WorkQueue;
  private resyncTimer?: NodeJS.Timeout;
  private readonly monitor: PrimaryMonitor;
  private readonly agent = new AgentClient();
  private readonly observer: Observer;
  /** recovery-gate first (a forbidden recovery source gets nothing created, not even certificates), then certificates (renewal must not wait for anything), then hibernation, the major upgrade and fencing first (they decide what runs), a reload on request, rollout (which instance install may give a new pod template), then install → ha → backup → monitoring → autopilot; the status step after them. */
  private readonly reconcilers: Reconciler[];
  private readonly clusterMetrics: ClusterMetrics;
  private readonly optional: OptionalKinds;

  constructor(private readonly opts: ControllerOptions) {
    this.queue = new WorkQueue((key) => this.reconcileKey(key), {
      concurrency: opts.concurrency,
      onDepth: (d) => opts.metrics.queueDepth.set(d),
      onRetry: (key, attempt, delayMs, err) => {
        opts.metrics.queueRetries.inc();
        opts.log.warn({ cluster: key, attempt, retryInMs: delayMs, err: apiErrorMessage(err) }, 'reconcile failed; retrying with backoff');
      },
    });
    const agent = this.agent;
    this.monitor = new PrimaryMonitor(agent, (key, event) => {
      if (event === 'failed') opts.log.warn({ cluster: key }, 'primary failed its heartbeat and a direct PostgreSQL check');
      this.queue.add(key);
    });
    const leases = new PrimaryLeases(opts.clients.coordination);
    this.observer = new Observer({ agent, tokens: new AgentTokens(opts.clients.core), certificates: new AgentCertificates(opts.clients.core, opts.config.tls?.leafSeconds), monitor: this.monitor, leases });
    this.clusterMetrics = new ClusterMetrics(opts.metrics.registry, () => this.clusters());
    const onRoleChange = this.clusterMetrics.roleChanged.bind(this.clusterMetrics);
    this.reconcilers = [recoveryGateReconciler, createCertificatesReconciler(opts.config.tls), createHibernationReconciler({ agent }), createMajorUpgradeReconciler({ agent }), createFencingReconciler({ agent }), createReloadReconciler({ agent }), createRolloutReconciler({ agent }), installReconciler, createHaReconciler({ agent, monitor: this.monitor, leases, onRoleChange }), createPasswordsReconciler({ agent }), createBackupReconciler(), monitoringReconciler, createAutopilotReconciler(), autoscalingReconciler, createAnomaliesReconciler({ agent })];
    const scopes = opts.namespaces.length > 0 ? opts.namespaces : [undefined];
    const common = { kc: opts.clients.kc, log: opts.log, metrics: opts.metrics, relistMs: opts.relistMs };
    for (const namespace of scopes) {
      const ci = new ResilientInformer<PostgreSQLCluster>({ ...common, type: CLUSTER_RESOURCE, namespace });
      for (const ev of ['add', 'update', 'delete'] as const) ci.on(ev, (c) => this.enqueue(c));
      this.clusterInformers.push(ci);
      const bi = new ResilientInformer<PostgreSQLBackup>({ ...common, type: BACKUP_RESOURCE, namespace });
      for (const ev of ['add', 'update', 'delete'] as const) bi.on(ev, (b) => this.enqueueBackupCluster(b));
      this.backupInformers.push(bi);
      for (const [kind, type] of Object.entries(OWNED_RESOURCES) as Array<[OwnedKind, ResourceType]>) {
        const trim = CACHE_TRIMS[kind] as ((o: KubernetesObject) => void) | undefined;
        const inf = new ResilientInformer<KubernetesObject>({ ...common, type, namespace, labelSelector: `${LABELS.managedBy}=${MANAGED_BY}`, trim });
        for (const ev of ['add', 'update', 'delete'] as const) inf.on(ev, (o) => this.enqueueOwner(o));
        const list = this.owned.get(kind) ?? [];
        list.push(inf);
        this.owned.set(kind, list);
      }
    }
    this.optional = new OptionalKinds({
      ...common,
      scopes,
      everyMs: opts.discoveryMs ?? 60_000,
      onObject: (o) => this.enqueueOwner(o),
      onChange: () => {
        if (this.workersStarted) for (const c of this.clusters()) this.enqueue(c);
      },
    });
  }

  private allInformers(): Array<ResilientInformer<KubernetesObject>> {
    return [
      ...(this.clusterInformers as unknown as Array<ResilientInformer<KubernetesObject>>),
      ...(this.backupInformers as unknown as Array<ResilientInformer<KubernetesObject>>),
      ...[...this.owned.values()].flat(),
    ];
  }

  /** Start the caches; resolves once every informer has listed once. */
  async startCaches(): Promise<void> {
    const informers = this.allInformers();
    await Promise.all(informers.map((i) => i.start()));
    await Promise.all(informers.map((i) => i.synced));
    await this.optional.start();
  }

  hasSynced(): boolean {
    return this.allInformers().every((i) => i.hasSynced());
  }

  /** Begin reconciling (the leader only): every known cluster now, then periodically. */
  startWorkers(): void {
    this.workersStarted = true;
    for (const c of this.clusters()) this.enqueue(c);
    this.resyncTimer = setInterval(() => {
      for (const c of this.clusters()) this.enqueue(c);
    }, this.opts.resyncMs);
    this.resyncTimer.unref();
  }
  private workersStarted = false;

  async stop(): Promise<void> {
    clearInterval(this.resyncTimer);
    this.monitor.stop();
    await this.queue.shutdown();
    await this.optional.stop();
    await Promise.all(this.allInformers().map((i) => i.stop()));
    this.agent.close();
  }

  clusters(): PostgreSQLCluster[] {
    return this.clusterInformers.flatMap((i) => [...i.list()]);
  }

  /** A kind's informers: always-owned kinds, or an optional kind while its API is served. */
  private informersOf(kind: OwnedKind): Array<ResilientInformer<KubernetesObject>> {
    return this.owned.get(kind) ?? this.optional.informers(kind);
  }

  watching(kind: OwnedKind): boolean {
    const always = this.owned.get(kind);
    return always ? always.every((i) => i.hasSynced()) : this.optional.watching(kind);
  }

  get<T extends KubernetesObject>(kind: OwnedKind, namespace: string, name: string): T | undefined {
    for (const inf of this.informersOf(kind)) {
      const o = inf.get(name, namespace);
      if (o) return o as T;
    }
    return undefined;
  }

  listForCluster<T extends KubernetesObject>(kind: OwnedKind, namespace: string, cluster: string): T[] {
    return this.informersOf(kind).flatMap((inf) => inf.list(namespace).filter((o) => o.metadata?.labels?.[LABELS.cluster] === cluster)) as T[];
  }

  backupsOf(namespace: string, cluster: string): PostgreSQLBackup[] {
    return this.backupInformers.flatMap((i) => i.list(namespace).filter((b) => b.spec?.cluster?.name === cluster));
  }

  getBackup(namespace: string, name: string): PostgreSQLBackup | undefined {
    for (const inf of this.backupInformers) {
      const b = inf.get(name, namespace);
      if (b) return b;
    }
    return undefined;
  }

  private enqueueBackupCluster(b: PostgreSQLBackup): void {
    const cluster = b.spec?.cluster?.name;
    if (!cluster || !this.workersStarted) return;
    this.queue.add(`${b.metadata!.namespace}/${cluster}`, OWNED_EVENT_DELAY_MS);
  }

  private enqueue(c: KubernetesObject): void {
    if (!this.workersStarted) return;
    this.queue.add(`${c.metadata!.namespace}/${c.metadata!.name}`);
  }

  private enqueueOwner(o: KubernetesObject): void {
    const cluster = o.metadata?.labels?.[LABELS.cluster];
    if (!cluster || !this.workersStarted) return;
    // Owned objects change in bursts (the StatefulSet controller makes a claim and a pod per
    // instance): wait a moment so one reconcile sees the whole burst.
    this.queue.add(`${o.metadata!.namespace}/${cluster}`, OWNED_EVENT_DELAY_MS);
  }

  private findCluster(namespace: string, name: string): PostgreSQLCluster | undefined {
    for (const inf of this.clusterInformers) {
      const c = inf.get(name, namespace);
      if (c) return c;
    }
    return undefined;
  }

  private async reconcileKey(key: string): Promise<WorkResult> {
    const [namespace, name] = key.split('/') as [string, string];
    const cluster = this.findCluster(namespace, name);
    this.opts.metrics.clusters.set(this.clusters().length);
    if (!cluster) return {};
    const log = this.opts.log.child({ cluster: name, namespace });
    if (cluster.metadata.deletionTimestamp) return this.finalize(cluster, log);
    const end = this.opts.metrics.reconcileDuration.startTimer();
    try {
      const result = await this.reconcile(cluster, log);
      this.opts.metrics.reconciles.inc({ result: result.requeueAfterMs ? 'requeue' : 'success' });
      return result;
    } catch (err) {
      this.opts.metrics.reconciles.inc({ result: 'error' });
      throw err;
    } finally {
      end();
    }
  }

  /** A deleted cluster: owned objects go with it (ownerReferences); reconcilers with a finalize hook let go in order. */
  private async finalize(cluster: PostgreSQLCluster, log: Logger): Promise<WorkResult> {
    this.clusterMetrics.forget(cluster);
    const ctx = this.context(cluster, log, this.observer.fromCache(cluster, this));
    for (const r of this.reconcilers) {
      if (!r.finalize) continue;
      const res = await r.finalize(ctx);
      if (res.requeueAfterMs) return { requeueAfterMs: res.requeueAfterMs };
    }
    return {};
  }

  private context(cluster: PostgreSQLCluster, log: Logger, observed: Observation): ReconcileContext {
    const writes: string[] = [];
    const target = clusterEventTarget(cluster);
    const { objects } = this.opts.clients;
    return {
      cluster,
      spec: resolveSpec(cluster.spec),
      clients: this.opts.clients,
      cache: this,
      config: this.opts.config,
      log,
      observed,
      status: structuredClone(cluster.status ?? {}),
      writes,
      wrote: (what) => void writes.push(what),
      apply: async (kind, desired) => {
        const live = this.get(kind, desired.metadata!.namespace!, desired.metadata!.name!);
        if ((await applyIfChanged(objects, desired, live)) === 'applied') writes.push(`${kind}/${desired.metadata!.name}`);
      },
      remove: async (obj) => {
        await deleteIfExists(objects, obj);
        writes.push(`${obj.kind}/${obj.metadata!.name}`);
      },
      event: (type, reason, message) => this.opts.events.record(target, type, reason, message),
    };
  }

  /** One pass over a cluster: observe, run the reconcilers, write status. Throws (to retry with backoff) after recording why in status. */
  async reconcile(cluster: PostgreSQLCluster, log: Logger): Promise<WorkResult> {
    let observed: Observation;
    let failedToObserve: unknown;
    try {
      observed = await this.observer.observe(cluster, this);
    } catch (err) {
      // The primary Lease or the agent token could not be read: the caches alone, and no reconciler runs.
      observed = this.observer.fromCache(cluster, this);
      failedToObserve = err;
    }
    const ctx = this.context(cluster, log, observed);
    const outcome = failedToObserve === undefined ? await runPass(this.reconcilers, ctx) : unobservedPass(this.reconcilers, ctx, failedToObserve);
    if (ctx.writes.length > 0) log.info({ writes: ctx.writes }, 'applied changes');
    if (outcome.stoppedBy) log.info(outcome.stoppedBy, 'pass stopped early');
    const status = computeStatus({ cluster, observed, base: outcome.status, conditions: outcome.conditions, failure: outcome.failure, writes: ctx.writes, now: new Date() });
    log.debug({ phase: status.phase, conditions: status.conditions?.map((c) => `${c.type}=${c.status}/${c.reason}`), writes: ctx.writes.length, statusCalls: observed.statusCalls }, 'reconciled');
    this.opts.metrics.agentStatusCalls.inc(observed.statusCalls);
    await this.writeStatus(cluster, status, log);
    await this.recordTransitions(cluster, status, ctx);
    if (outcome.error) throw outcome.error;
    let requeueAfterMs = outcome.requeueAfterMs;
    if (status.phase !== 'Healthy') requeueAfterMs = Math.min(requeueAfterMs ?? Infinity, WAITING_REQUEUE_MS);
    return requeueAfterMs !== undefined ? { requeueAfterMs } : {};
  }

  private async writeStatus(cluster: PostgreSQLCluster, status: ClusterStatus, log: Logger): Promise<void> {
    if (isDeepStrictEqual(cluster.status ?? {}, status)) return;
    // Merge patch: absent keys must be nulled explicitly to disappear.
    const body: Record<string, unknown> = { ...status };
    for (const k of Object.keys(cluster.status ?? {})) if (!(k in body)) body[k] = null;
    try {
      await this.opts.clients.custom.patchNamespacedCustomObjectStatus(
        { group: API_GROUP, version: API_VERSION, namespace: cluster.metadata.namespace!, plural: CLUSTER_PLURAL, name: cluster.metadata.name!, body: { status: body } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
    } catch (err) {
      if (apiStatus(err) === 404) return; // deleted meanwhile
      log.warn({ err: apiErrorMessage(err) }, 'could not write status');
      throw err;
    }
  }

  /** Events for the transitions a person watches: conditions (conditions.ts decides which) and the phase. */
  private async recordTransitions(cluster: PostgreSQLCluster, status: ClusterStatus, ctx: ReconcileContext): Promise<void> {
    for (const e of conditionEvents(cluster.status?.conditions, status.conditions ?? [])) await ctx.event(e.type, e.reason, e.message);
    if (status.phase !== cluster.status?.phase) {
      const ready = findCondition(status.conditions, 'Ready');
      await ctx.event('Normal', `Phase${status.phase}`, `Cluster is ${status.phase}: ${ready?.message ?? ''}`);
    }
  }
}
