// What every reconciler receives and returns. A pass observes the cluster once (observe.ts), then
// runs the reconcilers in order (install → ha → backup), each converging one concern and reporting
// the conditions and status fields it owns; the status step (status.ts) finishes the status.
import type { KubernetesObject } from '@kubernetes/client-node';
import type { PostgreSQLCluster } from '../api/cluster.js';
import type { ResolvedSpec } from '../api/resolve-spec.js';
import type { KubeClients } from '../runtime/kube.js';
import type { Logger } from '../runtime/logger.js';
import type { EventType } from '../runtime/events.js';
import type { InstanceImageConfig } from '../builders/statefulset.js';
import type { PostgreSQLBackup } from '../api/backup.js';
import type { ClusterStatus } from '../api/cluster.js';
import type { DefaultBackupStore } from '../builders/backup-target.js';
import type { ConditionInput } from './conditions.js';
import type { Observation } from './observe.js';

export type BackupStatusFields = Pick<
  ClusterStatus,
  'archivePath' | 'firstRecoverabilityPoint' | 'lastRecoverabilityPoint' | 'lastSuccessfulBackup' | 'lastBackup' | 'nextScheduledBackup' | 'archiving'
>;

export type OwnedKind =
  | 'StatefulSet'
  | 'Service'
  | 'Secret'
  | 'ConfigMap'
  | 'PodDisruptionBudget'
  | 'ServiceAccount'
  | 'Role'
  | 'RoleBinding'
  | 'PersistentVolumeClaim'
  | 'Pod'
  | 'CronJob'
  | 'Job'
  /** Only while the Prometheus Operator's CRDs exist (OwnedCache.watching). */
  | 'PodMonitor'
  | 'HorizontalPodAutoscaler'
  | 'NetworkPolicy';

/** Read access to the informer caches of everything a cluster owns. */
export interface OwnedCache {
  get<T extends KubernetesObject>(kind: OwnedKind, namespace: string, name: string): T | undefined;
  /** Objects of a kind labelled as belonging to the cluster. */
  listForCluster<T extends KubernetesObject>(kind: OwnedKind, namespace: string, cluster: string): T[];
  /** Whether the kind's informers run and have listed (an optional kind's CRD exists). */
  watching(kind: OwnedKind): boolean;
  /** PostgreSQLBackups of a cluster (spec.cluster.name), and one by name. */
  backupsOf(namespace: string, cluster: string): PostgreSQLBackup[];
  getBackup(namespace: string, name: string): PostgreSQLBackup | undefined;
}

export interface OperatorConfig extends InstanceImageConfig {
  operatorImage: string;
  /** The operator-wide default backup store (Helm value backup.defaultStore) and the namespaces that may use it. */
  defaultBackupStore?: DefaultBackupStore;
  /** Namespace of the operator (where the default store's credentials Secret lives). */
  operatorNamespace?: string;
  /** Certificate lifetimes of the clusters' PKI (defaults: CA 10 years, leaves 90 days). */
  tls?: { caSeconds?: number; leafSeconds?: number };
}

/** A field of the cluster's status. Each belongs to one reconciler (its `statusFields`) or to the status step. */
export type StatusField = keyof ClusterStatus;

export interface ReconcileContext {
  cluster: PostgreSQLCluster;
  /** cluster.spec with every default applied, resolved once for the pass. */
  spec: ResolvedSpec;
  clients: KubeClients;
  cache: OwnedCache;
  config: OperatorConfig;
  log: Logger;
  /** What this pass observed before any reconciler ran (observe.ts). */
  observed: Observation;
  /** The status as it stands in this pass: the last written one plus what earlier reconcilers set. */
  status: ClusterStatus;
  /** Server-side apply of an object the cluster owns when it differs from the cached one; recorded as a write. */
  apply(kind: OwnedKind, desired: KubernetesObject): Promise<void>;
  /** Delete an object (gone already counts as done); recorded as a write. */
  remove(obj: KubernetesObject): Promise<void>;
  /** Record a write made some other way (a patch, a create): Progressing reports them. */
  wrote(what: string): void;
  /** Objects written in this pass. */
  readonly writes: readonly string[];
  /** An Event on the cluster. */
  event(type: EventType, reason: string, message: string): Promise<void>;
}

export interface ReconcilerResult {
  /** Conditions this reconciler evaluated; it may report only the types it owns (conditions.ts). */
  conditions?: ConditionInput[];
  /**
   * Values of this reconciler's status fields. Absent: they stay as they were. Present: every one
   * of its statusFields is set from it (a field missing from the object is removed).
   */
  status?: Partial<ClusterStatus>;
  requeueAfterMs?: number;
  /**
   * End the pass here without an error (an operation in progress holds the others back): the
   * reconcilers after this one do not run and their conditions turn Unknown with this reason.
   */
  stop?: { reason: string; message: string };
  /**
   * A problem a person must fix that holds back only this reconciler's work (a change pgpilot
   * cannot make): Degraded with this reason, while the rest of the pass goes on and nothing is
   * retried with backoff. An error a reconciler throws comes first.
   */
  degraded?: { reason: string; message: string };
}

export interface Reconciler {
  name: string;
  /** The status fields this reconciler owns and returns in `status`. */
  statusFields: readonly StatusField[];
  reconcile(ctx: ReconcileContext): Promise<ReconcilerResult>;
  /** Runs instead of reconcile while the cluster is being deleted; requeue until it has let go. */
  finalize?(ctx: ReconcileContext): Promise<{ requeueAfterMs?: number }>;
}

/** An error a person must fix (a missing Secret, …): Degraded with this reason, retried with backoff. */
export class ReconcileError extends Error {
  constructor(
    readonly reason: string,
    message: string,
    /** Conditions the reconciler evaluated before it gave up (they are reported, not lost). */
    readonly conditions: ConditionInput[] = [],
  ) {
    super(message);
  }
}
