/**
 * The fields a console (OperatorHub / the OpenShift console) shows for each owned API, with their
 * UI widgets (x-descriptors, from OLM's descriptor list:
 * https://github.com/openshift/console/blob/master/frontend/packages/operator-lifecycle-manager/src/components/descriptors/reference/reference.md).
 * test/bundle checks that every path exists in the CRD's schema.
 */

export interface Descriptor {
  path: string;
  displayName: string;
  description: string;
  'x-descriptors'?: string[];
}

const number = ['urn:alm:descriptor:com.tectonic.ui:number'];
const text = ['urn:alm:descriptor:com.tectonic.ui:text'];
const toggle = ['urn:alm:descriptor:com.tectonic.ui:booleanSwitch'];
const advanced = 'urn:alm:descriptor:com.tectonic.ui:advanced';

export const CLUSTER_SPEC_DESCRIPTORS: Descriptor[] = [
  { path: 'version', displayName: 'PostgreSQL version', description: 'PostgreSQL version to run, "major.minor" or "major" (13-18); a higher major upgrades the cluster with pg_upgrade.', 'x-descriptors': text },
  { path: 'instances', displayName: 'Instances', description: 'Number of PostgreSQL instances: one primary and instances-1 streaming replicas.', 'x-descriptors': ['urn:alm:descriptor:com.tectonic.ui:podCount'] },
  { path: 'storage.size', displayName: 'Storage size', description: 'Size of each instance\'s data volume; it may grow but never shrink.', 'x-descriptors': text },
  { path: 'storage.storageClass', displayName: 'Storage class', description: 'StorageClass of the data volumes; empty means the default class.', 'x-descriptors': ['urn:alm:descriptor:io.kubernetes:StorageClass'] },
  { path: 'resources', displayName: 'Resources', description: 'CPU and memory requests and limits of every PostgreSQL container.', 'x-descriptors': ['urn:alm:descriptor:com.tectonic.ui:resourceRequirements'] },
  { path: 'highAvailability.enabled', displayName: 'High availability', description: 'Automatic failover to a replica when the primary fails.', 'x-descriptors': toggle },
  { path: 'highAvailability.synchronousCommit', displayName: 'Synchronous commit', description: 'Commits wait for a quorum of synchronous replicas, so a failover loses no acknowledged write.', 'x-descriptors': toggle },
  { path: 'highAvailability.synchronousReplicas', displayName: 'Synchronous replicas', description: 'Replicas that must confirm each commit (ANY n quorum).', 'x-descriptors': [...number, advanced] },
  { path: 'backup.enabled', displayName: 'Backups', description: 'Continuous WAL archiving and scheduled base backups to S3 or a volume.', 'x-descriptors': toggle },
  { path: 'backup.schedule', displayName: 'Backup schedule', description: 'Cron schedule of the base backups.', 'x-descriptors': text },
  { path: 'backup.retention', displayName: 'Backup retention', description: 'How long backups are kept (days, or a duration such as 30d), for point-in-time recovery.', 'x-descriptors': text },
  { path: 'monitoring.enabled', displayName: 'Monitoring', description: 'Built-in Prometheus exporter in every instance, and a PodMonitor when the Prometheus Operator is installed.', 'x-descriptors': toggle },
  { path: 'primary', displayName: 'Primary', description: 'Instance that should be primary: changing it performs a switchover.', 'x-descriptors': [...text, advanced] },
  { path: 'superuserSecret.name', displayName: 'Superuser Secret', description: 'Secret holding the superuser password; generated when not given.', 'x-descriptors': ['urn:alm:descriptor:io.kubernetes:Secret', advanced] },
];

export const CLUSTER_STATUS_DESCRIPTORS: Descriptor[] = [
  { path: 'phase', displayName: 'Phase', description: 'Where the cluster is in its life.', 'x-descriptors': ['urn:alm:descriptor:io.kubernetes.phase'] },
  { path: 'conditions', displayName: 'Conditions', description: 'Ready, Progressing, Degraded, PrimaryAvailable, ReplicasStreaming, ContinuousArchiving, LastBackupSucceeded, Upgrading, ...', 'x-descriptors': ['urn:alm:descriptor:io.kubernetes.conditions'] },
  { path: 'currentPrimary', displayName: 'Primary', description: 'The instance that is primary now.', 'x-descriptors': text },
  { path: 'readyInstances', displayName: 'Ready instances', description: 'Instances that are ready.', 'x-descriptors': number },
  { path: 'streamingReplicas', displayName: 'Streaming replicas', description: 'Replicas streaming from the primary.', 'x-descriptors': number },
  { path: 'version', displayName: 'Running version', description: 'PostgreSQL version the primary runs.', 'x-descriptors': text },
  { path: 'lastSuccessfulBackup', displayName: 'Last successful backup', description: 'When the last base backup completed.', 'x-descriptors': text },
  { path: 'firstRecoverabilityPoint', displayName: 'First recoverability point', description: 'Earliest time the cluster can be restored to.', 'x-descriptors': text },
  { path: 'lastRecoverabilityPoint', displayName: 'Last recoverability point', description: 'Latest time the cluster can be restored to (the newest archived WAL).', 'x-descriptors': text },
];

export const BACKUP_SPEC_DESCRIPTORS: Descriptor[] = [
  { path: 'cluster.name', displayName: 'Cluster', description: 'The PostgreSQLCluster to back up, in the same namespace.', 'x-descriptors': ['urn:alm:descriptor:io.kubernetes:postgres.pgpilot.io:v1:PostgreSQLCluster'] },
  { path: 'target', displayName: 'Target', description: 'Instance to back up: prefer-standby or primary.', 'x-descriptors': ['urn:alm:descriptor:com.tectonic.ui:select:prefer-standby', 'urn:alm:descriptor:com.tectonic.ui:select:primary'] },
];

export const BACKUP_STATUS_DESCRIPTORS: Descriptor[] = [
  { path: 'phase', displayName: 'Phase', description: 'pending, running, completed or failed.', 'x-descriptors': ['urn:alm:descriptor:io.kubernetes.phase'] },
  { path: 'conditions', displayName: 'Conditions', description: 'The backup\'s conditions.', 'x-descriptors': ['urn:alm:descriptor:io.kubernetes.conditions'] },
  { path: 'startedAt', displayName: 'Started', description: 'When the backup started.', 'x-descriptors': text },
  { path: 'stoppedAt', displayName: 'Stopped', description: 'When the backup finished.', 'x-descriptors': text },
  { path: 'storedBytes', displayName: 'Stored bytes', description: 'Bytes stored (compressed).', 'x-descriptors': number },
  { path: 'error', displayName: 'Error', description: 'Why the backup failed.', 'x-descriptors': text },
];

/** A Kubernetes resource type an owned API creates or uses (a console lists them on the operand's Resources tab). */
export interface ResourceReference {
  kind: string;
  name: string;
  version: string;
}

const ref = (kind: string): ResourceReference => ({ kind, name: '', version: 'v1' });

/**
 * What the operator creates for a cluster (README, "What the operator creates for a cluster"), each
 * at the API version it uses (v1 of its group, as a console's models name them). Besides the console,
 * this is what tells operator-framework/api's deprecated-API check which version the operator's
 * RBAC rules on batch/cronjobs, policy/poddisruptionbudgets and events mean: rules carry no version,
 * so without these it warns about their v1beta1 APIs removed in Kubernetes 1.25.
 */
export const CLUSTER_RESOURCES: ResourceReference[] = [
  'StatefulSet',
  'Pod',
  'PersistentVolumeClaim',
  'Service',
  'Secret',
  'ConfigMap',
  'ServiceAccount',
  'Role',
  'RoleBinding',
  'PodDisruptionBudget',
  'Lease',
  'CronJob',
  'Job',
  'Event',
].map(ref).concat([{ kind: 'HorizontalPodAutoscaler', name: '', version: 'v2' }]);

/** A backup is taken by a Job (and its pod); Events report how it went. */
export const BACKUP_RESOURCES: ResourceReference[] = ['Job', 'Pod', 'Event'].map(ref);
