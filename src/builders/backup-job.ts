// The pods that take base backups: a CronJob per cluster for the schedule, and a Job per
// on-demand PostgreSQLBackup. Both run `pgpilot backup` in the instance image (it has
// pg_basebackup) as the cluster's ServiceAccount, with the replication and superuser credentials
// mounted as in instance pods and the target from backup-target.ts. Pure.
import { TLS_CA_DIR, TLS_FILES, TLS_REPLICATION_DIR } from '../api/tls.js';
import type { V1CronJob, V1Job, V1JobSpec, V1ObjectMeta } from '@kubernetes/client-node';
import type { PostgreSQLCluster } from '../api/cluster.js';
import type { PostgreSQLBackup } from '../api/backup.js';
import { API_GROUP_VERSION, BACKUP_KIND, LABELS } from '../api/constants.js';
import type { ResolvedTarget } from './backup-target.js';
import { ownedMeta } from './meta.js';
import { clusterLabels } from '../api/labels.js';
import { names } from '../api/names.js';
import { secretNames } from './secrets.js';
import { instanceImage, POSTGRES_UID, SECRETS_MOUNT, type InstanceImageConfig } from './statefulset.js';
import { POD_ENV } from '../api/pod-env.js';
import { specOf } from '../api/resolve-spec.js';

/** A failed backup pod is retried this many times before the backup is reported failed. */
export const BACKUP_BACKOFF_LIMIT = 2;
/** A base backup that runs longer than this is stopped and reported (then retried by the next run). */
const BACKUP_DEADLINE_SECONDS = 12 * 3600;


function jobSpec(cluster: PostgreSQLCluster, target: ResolvedTarget, cfg: InstanceImageConfig, args: string[]): V1JobSpec {
  const name = cluster.metadata.name!;
  const secrets = secretNames(cluster);
  return {
    backoffLimit: BACKUP_BACKOFF_LIMIT,
    activeDeadlineSeconds: BACKUP_DEADLINE_SECONDS,
    template: {
      metadata: { labels: { ...clusterLabels(name, 'backup') } },
      spec: {
        serviceAccountName: names.serviceAccount(name),
        restartPolicy: 'Never',
        securityContext: { runAsNonRoot: true, runAsUser: POSTGRES_UID, runAsGroup: POSTGRES_UID, fsGroup: POSTGRES_UID, seccompProfile: { type: 'RuntimeDefault' } },
        ...(cluster.spec.imagePullSecrets ? { imagePullSecrets: cluster.spec.imagePullSecrets } : {}),
        ...(cluster.spec.scheduling?.nodeSelector ? { nodeSelector: cluster.spec.scheduling.nodeSelector } : {}),
        ...(cluster.spec.scheduling?.tolerations ? { tolerations: cluster.spec.scheduling.tolerations } : {}),
        containers: [
          {
            name: 'backup',
            image: instanceImage(cluster, cfg),
            imagePullPolicy: specOf(cluster).imagePullPolicy,
            args: ['backup', ...args],
            env: [
              { name: POD_ENV.namespace, valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
              // The Job this pod belongs to: a scheduled run names its PostgreSQLBackup after it.
              { name: POD_ENV.jobName, valueFrom: { fieldRef: { fieldPath: "metadata.labels['job-name']" } } },
              { name: POD_ENV.secretsDir, value: SECRETS_MOUNT },
              // Its SQL connections to the instances use TLS, verified against the cluster's CA.
              { name: POD_ENV.tlsCaFile, value: `${TLS_CA_DIR}/${TLS_FILES.ca}` },
              { name: POD_ENV.tlsServerName, value: names.tlsServerName(name, cluster.metadata.namespace!) },
              { name: POD_ENV.tlsClientDir, value: TLS_REPLICATION_DIR },
              { name: POD_ENV.backupCompressionLevel, value: String(specOf(cluster).backup.compression.level) },
              { name: POD_ENV.backupRetention, value: String(specOf(cluster).backup.retention) },
              ...target.env,
            ],
            securityContext: { runAsNonRoot: true, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] }, seccompProfile: { type: 'RuntimeDefault' } },
            volumeMounts: [
              { name: 'superuser', mountPath: `${SECRETS_MOUNT}/superuser`, readOnly: true },
              { name: 'replication', mountPath: `${SECRETS_MOUNT}/replication`, readOnly: true },
              { name: 'tmp', mountPath: '/tmp' },
              { name: 'tls-ca', mountPath: TLS_CA_DIR, readOnly: true },
              { name: 'replication-tls', mountPath: TLS_REPLICATION_DIR, readOnly: true },
              ...target.mounts,
            ],
          },
        ],
        volumes: [
          { name: 'superuser', secret: { secretName: secrets.superuser } },
          { name: 'replication', secret: { secretName: secrets.replication } },
          { name: 'tmp', emptyDir: {} },
          { name: 'tls-ca', secret: { secretName: names.caCertSecret(name) } },
          // pg_basebackup logs in as the replication user with its client certificate.
          { name: 'replication-tls', secret: { secretName: names.replicationTlsSecret(name), defaultMode: 0o640 } },
          ...target.volumes,
        ],
      },
    },
  };
}

/** The schedule's CronJob: each run creates a PostgreSQLBackup named after its Job and takes it. */
/** `suspend`: no run starts (a hibernated cluster has no instance to back up). */
export function backupCronJob(cluster: PostgreSQLCluster, target: ResolvedTarget, cfg: InstanceImageConfig, suspend = false): V1CronJob {
  const name = cluster.metadata.name!;
  return {
    apiVersion: 'batch/v1',
    kind: 'CronJob',
    metadata: ownedMeta(cluster, names.backupCronJob(name), 'backup'),
    spec: {
      schedule: specOf(cluster).backup.schedule,
      timeZone: 'Etc/UTC',
      suspend,
      // One base backup at a time; a run missed by more than an hour waits for the next.
      concurrencyPolicy: 'Forbid',
      startingDeadlineSeconds: 3600,
      successfulJobsHistoryLimit: 3,
      failedJobsHistoryLimit: 3,
      jobTemplate: { metadata: { labels: { ...clusterLabels(name, 'backup'), [LABELS.scheduled]: 'true' } }, spec: jobSpec(cluster, target, cfg, ['--cluster', name]) },
    },
  };
}

/** Deletes a deleted cluster's archive (onClusterDeletion: Delete); owned by the cluster, which a finalizer holds meanwhile. */
export function purgeJob(cluster: PostgreSQLCluster, target: ResolvedTarget, cfg: InstanceImageConfig): V1Job {
  const name = cluster.metadata.name!;
  return { apiVersion: 'batch/v1', kind: 'Job', metadata: ownedMeta(cluster, names.purgeJob(name), 'backup'), spec: jobSpec(cluster, target, cfg, ['--cluster', name, '--purge']) };
}

/** The Job of an on-demand PostgreSQLBackup; named after it and owned by it (it goes when the backup goes). */
export function onDemandBackupJob(cluster: PostgreSQLCluster, backup: PostgreSQLBackup, target: ResolvedTarget, cfg: InstanceImageConfig): V1Job {
  const name = cluster.metadata.name!;
  const metadata: V1ObjectMeta = {
    name: backup.metadata!.name!,
    namespace: cluster.metadata.namespace,
    labels: { ...clusterLabels(name, 'backup'), [LABELS.backupName]: backup.metadata!.name! },
    ownerReferences: [{ apiVersion: API_GROUP_VERSION, kind: BACKUP_KIND, name: backup.metadata!.name!, uid: backup.metadata!.uid!, controller: true, blockOwnerDeletion: true }],
  };
  return { apiVersion: 'batch/v1', kind: 'Job', metadata, spec: { ...jobSpec(cluster, target, cfg, ['--cluster', name, '--backup', backup.metadata!.name!]), ttlSecondsAfterFinished: 7 * 24 * 3600 } };
}
