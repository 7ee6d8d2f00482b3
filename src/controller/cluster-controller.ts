// The cluster controller: informers on clusters and everything they own feed a keyed work queue;
// each reconcile runs the reconcilers in order and writes status only when it changed.
import { ApiException, PatchStrategy, setHeaderOptions, type KubernetesObject } from '@kubernetes/client-node';
import { isDeepStrictEqual } from 'node:util';
import type { ClusterStatus, PostgreSQLCluster } from '../api/cluster.js';
import { SpecError } from '../api/spec-error.js';
import { API_GROUP, API_GROUP_VERSION, API_VERSION, CLUSTER_KIND, CLUSTER_PLURAL, LABELS, MANAGED_BY } from '../api/constants.js';
import { apiErrorMessage } from '../runtime/apply.js';
import type { EventRecorder } from '../runtime/events.js';
import { ResilientInformer } from '../runtime/informer.js';
import type { KubeClients } from '../runtime/kube.js';
import type { Logger } from '../runtime/logger.js';
import type { OperatorMetrics } from '../runtime/metrics.js';
import { WorkQueue, type WorkResult } from '../runtime/workqueue.js';
import { findCondition } from '../reconcilers/conditions.js';
import { AgentClient } from '../instance/agent-client.js';
import { AgentTokens, createHaReconciler } from '../reconcilers/ha.js';
import { installReconciler } from '../reconcilers/install.js';
import { PrimaryMonitor } from '../reconcilers/primary-monitor.js';
import { computeStatus } from '../reconcilers/status.js';
import { ReconcileError, type ConditionInput, type OperatorConfig, type OwnedCache, type OwnedKind, type ReconcileContext, type Reconciler } from '../reconcilers/types.js';
import { BACKUP_RESOURCE, CACHE_TRIMS, CLUSTER_RESOURCE, OWNED_RESOURCES } from './owned-kinds.js';
import type { PostgreSQLBackup } from '../api/backup.js';
import { createBackupReconciler, finalizeBackups } from '../reconcilers/backup.js';

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
  /** Primary Lease holders by cluster uid, kept by the ha reconciler. */
  private readonly primaries = new Map<string, string>();
  /** In the order DESIGN.md gives (install → ha → … → status); later issues add backup, upgrade, … */
  private readonly reconcilers: Reconciler[];

  constructor(private readonly opts: ControllerOptions) {
    this.queue = new WorkQueue((key) => this.reconcileKey(key), {
      concurrency: opts.concurrency,
      onDepth: (d) => opts.metrics.queueDepth.set(d),
      onRetry: (key, attempt, delayMs, err) => {
        opts.metrics.queueRetries.inc();
        opts.log.warn({ cluster: key, attempt, retryInMs: delayMs, err: apiErrorMessage(err) }, 'reconcile failed; retrying with backoff');
      },
    });
    const agent = new AgentClient();
    this.monitor = new PrimaryMonitor(agent, (key, event) => {
      if (event === 'failed') opts.log.warn({ cluster: key }, 'primary failed its heartbeat and a direct PostgreSQL check');
      this.queue.add(key);
    });
    this.reconcilers = [
      installReconciler,
      createHaReconciler({ agent, tokens: new AgentTokens(opts.clients.core), monitor: this.monitor, coordination: opts.clients.coordination, holders: this.primaries }),
      createBackupReconciler(),
    ];
    const scopes = opts.namespaces.length > 0 ? opts.namespaces : [undefined];
    const common = { kc: opts.clients.kc, log: opts.log, metrics: opts.metrics, relistMs: opts.relistMs };
    for (const namespace of scopes) {
      const ci = new ResilientInformer<PostgreSQLCluster>({ ...common, type: CLUSTER_RESOURCE, namespace });
      for (const ev of ['add', 'update', 'delete'] as const) ci.on(ev, (c) => this.enqueue(c));
      this.clusterInformers.push(ci);
      const bi = new ResilientInformer<PostgreSQLBackup>({ ...common, type: BACKUP_RESOURCE, namespace });
      for (const ev of ['add', 'update', 'delete'] as const) bi.on(ev, (b) => this.enqueueBackupCluster(b));
      this.backupInformers.push(bi);
      for (const [kind, type] of Object.entries(OWNED_RESOURCES) as Array<[OwnedKind, (typeof OWNED_RESOURCES)[OwnedKind]]>) {
        const trim = CACHE_TRIMS[kind] as ((o: KubernetesObject) => void) | undefined;
        const inf = new ResilientInformer<KubernetesObject>({ ...common, type, namespace, labelSelector: `${LABELS.managedBy}=${MANAGED_BY}`, trim });
        for (const ev of ['add', 'update', 'delete'] as const) inf.on(ev, (o) => this.enqueueOwner(o));
        const list = this.owned.get(kind) ?? [];
        list.push(inf);
        this.owned.set(kind, list);
      }
    }
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
    await Promise.all(this.allInformers().map((i) => i.stop()));
  }

  clusters(): PostgreSQLCluster[] {
    return this.clusterInformers.flatMap((i) => [...i.list()]);
  }

  get<T extends KubernetesObject>(kind: OwnedKind, namespace: string, name: string): T | undefined {
    for (const inf of this.owned.get(kind) ?? []) {
      const o = inf.get(name, namespace);
      if (o) return o as T;
    }
    return undefined;
  }

  listForCluster<T extends KubernetesObject>(kind: OwnedKind, namespace: string, cluster: string): T[] {
    return (this.owned.get(kind) ?? []).flatMap((inf) => inf.list(namespace).filter((o) => o.metadata?.labels?.[LABELS.cluster] === cluster)) as T[];
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
    // Owned objects go with it (ownerReferences); only an archive to delete needs the operator.
    if (cluster.metadata.deletionTimestamp) return finalizeBackups(this.context(cluster, log));
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

  private context(cluster: PostgreSQLCluster, log: Logger): ReconcileContext {
    return {
      cluster,
      clients: this.opts.clients,
      cache: this,
      config: this.opts.config,
      log,
      events: this.opts.events,
      facts: { writes: [] },
      knownPrimary: this.primaries.get(cluster.metadata.uid!),
    };
  }

  /** One pass over a cluster. Throws (to retry with backoff) after recording why in status. */
  async reconcile(cluster: PostgreSQLCluster, log: Logger): Promise<WorkResult> {
    const ctx = this.context(cluster, log);
    const conditions: ConditionInput[] = [];
    let failure: { reason: string; message: string } | undefined;
    let requeueAfterMs: number | undefined;
    let error: unknown;
    for (const r of this.reconcilers) {
      try {
        const res = await r.reconcile(ctx);
        conditions.push(...(res.conditions ?? []));
        if (res.requeueAfterMs) requeueAfterMs = Math.min(requeueAfterMs ?? Infinity, res.requeueAfterMs);
      } catch (err) {
        error = err;
        failure =
          err instanceof ReconcileError
            ? { reason: err.reason, message: err.message }
            : err instanceof SpecError
              ? { reason: 'InvalidSpec', message: err.message }
              : { reason: 'ReconcileFailed', message: `${r.name}: ${apiErrorMessage(err)}` };
        break;
      }
    }
    if (ctx.facts.writes.length > 0) log.info({ writes: ctx.facts.writes }, 'applied changes');
    const instanceNames = ctx.facts.instanceNames ?? cluster.status?.instanceNames ?? [];
    const status = computeStatus({ cluster, cache: this, instanceNames, conditions, failure, writes: ctx.facts.writes, now: new Date(), primary: ctx.facts.primary, streamingReplicas: ctx.facts.streamingReplicas, runningVersion: ctx.facts.runningVersion, backupStatus: ctx.facts.backupStatus, recoverySource: ctx.facts.recoverySource });
    log.debug({ phase: status.phase, conditions: status.conditions?.map((c) => `${c.type}=${c.status}/${c.reason}`), writes: ctx.facts.writes.length }, 'reconciled');
    await this.writeStatus(cluster, status, log);
    await this.recordTransitions(cluster, status);
    if (error) throw error;
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
      if (err instanceof ApiException && err.code === 404) return; // deleted meanwhile
      log.warn({ err: apiErrorMessage(err) }, 'could not write status');
      throw err;
    }
  }

  /** Events for the transitions a person watches: Ready, Degraded, phase. */
  private async recordTransitions(cluster: PostgreSQLCluster, status: ClusterStatus): Promise<void> {
    const target = { apiVersion: API_GROUP_VERSION, kind: CLUSTER_KIND, metadata: cluster.metadata };
    const before = cluster.status?.conditions;
    const degraded = findCondition(status.conditions, 'Degraded');
    if (degraded?.status === 'True' && (findCondition(before, 'Degraded')?.status !== 'True' || findCondition(before, 'Degraded')?.reason !== degraded.reason)) {
      await this.opts.events.record(target, 'Warning', degraded.reason, degraded.message);
    }
    if (degraded?.status === 'False' && findCondition(before, 'Degraded')?.status === 'True') {
      await this.opts.events.record(target, 'Normal', 'Recovered', 'The problem reported earlier is resolved');
    }
    if (status.phase !== cluster.status?.phase) {
      const ready = findCondition(status.conditions, 'Ready');
      await this.opts.events.record(target, status.phase === 'Healthy' ? 'Normal' : 'Normal', `Phase${status.phase}`, `Cluster is ${status.phase}: ${ready?.message ?? ''}`);
    }
  }
}
