// What every reconciler receives and returns. Reconcilers run in order (install → … → status);
// each reads the world through the cache, converges it, and reports conditions.
import type { KubernetesObject } from '@kubernetes/client-node';
import type { PostgreSQLCluster } from '../api/cluster.js';
import type { KubeClients } from '../runtime/kube.js';
import type { Logger } from '../runtime/logger.js';
import type { EventRecorder } from '../runtime/events.js';
import type { InstanceImageConfig } from '../builders/statefulset.js';
import type { RecoverySourceStatus, ResolvedTarget } from '../builders/backup-target.js';
import type { InstanceStatus } from '../instance/api-types.js';
import type { PostgreSQLBackup } from '../api/backup.js';
import type { ClusterStatus, S3Target } from '../api/cluster.js';

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
  | 'Job';

/** Read access to the informer caches of everything a cluster owns. */
export interface OwnedCache {
  get<T extends KubernetesObject>(kind: OwnedKind, namespace: string, name: string): T | undefined;
  /** Objects of a kind labelled as belonging to the cluster. */
  listForCluster<T extends KubernetesObject>(kind: OwnedKind, namespace: string, cluster: string): T[];
  /** PostgreSQLBackups of a cluster (spec.cluster.name), and one by name. */
  backupsOf(namespace: string, cluster: string): PostgreSQLBackup[];
  getBackup(namespace: string, name: string): PostgreSQLBackup | undefined;
}

export interface OperatorConfig extends InstanceImageConfig {
  operatorImage: string;
  /** The operator-wide default backup store (Helm value backup.defaultStore). */
  defaultBackupStore?: S3Target;
  /** Namespace of the operator (where the default store's credentials Secret lives). */
  operatorNamespace?: string;
}

export interface ReconcileContext {
  cluster: PostgreSQLCluster;
  clients: KubeClients;
  cache: OwnedCache;
  config: OperatorConfig;
  log: Logger;
  events: EventRecorder;
  /** Shared between reconcilers of one pass (e.g. the instance plan install made). */
  facts: ReconcileFacts;
  /** The primary as the primary Lease last said (fresher than status, which an informer may lag). */
  knownPrimary?: string;
}

export interface ReconcileFacts {
  instanceNames?: string[];
  /** The primary the ha reconciler established (after a failover or switchover, the new one). */
  primary?: string;
  /** Replicas the ha reconciler saw streaming. */
  streamingReplicas?: number;
  /** The PostgreSQL version the primary reports running (e.g. "15.18"). */
  runningVersion?: string;
  /** What the primary's agent reported this pass (archiving health among it). */
  primaryStatus?: InstanceStatus;
  /** Where backups and WAL go (install resolves it; null: no backups). */
  backupTarget?: ResolvedTarget | null;
  /** Status fields of the backup concern (archive path, recoverability window, next backup, …). */
  backupStatus?: BackupStatusFields;
  /** The recovery source resolved for a restored cluster (kept in status.recoverySource). */
  recoverySource?: RecoverySourceStatus;
  /** Objects written in this pass: Progressing reports them. */
  writes: string[];
}

export interface ConditionInput {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
}

export interface ReconcilerResult {
  conditions?: ConditionInput[];
  requeueAfterMs?: number;
}

export interface Reconciler {
  name: string;
  reconcile(ctx: ReconcileContext): Promise<ReconcilerResult>;
}

/** An error a person must fix (a missing Secret, …): Degraded with this reason, retried with backoff. */
export class ReconcileError extends Error {
  constructor(
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}
