// Names that the CRD, the operator and the chart share.
export const API_GROUP = 'postgres.pgpilot.io';
export const API_VERSION = 'v1';
export const API_GROUP_VERSION = `${API_GROUP}/${API_VERSION}`;
/** The older shape of PostgreSQLCluster, served beside v1 and converted by the operator's webhook (docs/api-versions.md). */
export const API_VERSION_V1BETA1 = 'v1beta1';
export const API_GROUP_VERSION_V1BETA1 = `${API_GROUP}/${API_VERSION_V1BETA1}`;

export const CLUSTER_KIND = 'PostgreSQLCluster';
export const CLUSTER_PLURAL = 'postgresqlclusters';
export const CLUSTER_SINGULAR = 'postgresqlcluster';
export const CLUSTER_SHORT_NAMES = ['pgc', 'pgcluster'];
export const CATEGORIES = ['all', 'pgpilot'];

export const BACKUP_KIND = 'PostgreSQLBackup';
export const BACKUP_PLURAL = 'postgresqlbackups';
export const BACKUP_SINGULAR = 'postgresqlbackup';
export const BACKUP_SHORT_NAMES = ['pgb'];

/** The one field manager every server-side apply of the operator uses. */
export const FIELD_MANAGER = 'pgpilot-operator';

/** Label and annotation keys put on every object the operator owns. */
export const LABELS = {
  name: 'app.kubernetes.io/name',
  instanceOf: 'app.kubernetes.io/instance',
  component: 'app.kubernetes.io/component',
  managedBy: 'app.kubernetes.io/managed-by',
  cluster: 'postgres.pgpilot.io/cluster',
  instance: 'postgres.pgpilot.io/instance',
  role: 'postgres.pgpilot.io/role',
  /** On a backup's Job and pods: the PostgreSQLBackup they take. */
  backupName: 'postgres.pgpilot.io/backup',
  /** On a PostgreSQLBackup created by the schedule (CronJob) rather than by a person. */
  scheduled: 'postgres.pgpilot.io/scheduled',
} as const;

export const MANAGED_BY = 'pgpilot';
/** Holds a cluster with spec.backup.onClusterDeletion: Delete until its archive is deleted. */
export const BACKUP_FINALIZER = 'postgres.pgpilot.io/delete-backups';
export const ANNOTATIONS = {
  /**
   * On the pod template: a hash of the settings that need a restart (src/postgres/restart-settings.ts).
   * Changing one changes the template and rolls the instances; any other setting is reloaded.
   */
  restartSettings: 'postgres.pgpilot.io/restart-settings',
  /**
   * On the pod template: "mutual" when its agent serves the API over HTTPS and wants the operator's
   * client certificate (POD_ENV.agentTlsDir is set beside it). What the operator reads: its pod cache
   * keeps metadata and status, not the spec. A pod made before agent TLS has none (plain HTTP).
   */
  agentTls: 'postgres.pgpilot.io/agent-tls',
  /** On the pod template: the values a standby needs at least as high as its primary's (the order of a rollout). */
  standbyMinimums: 'postgres.pgpilot.io/standby-minimums',
  /**
   * The Job that runs a backup, on its PostgreSQLBackup: set by the scheduled Job's pod on the
   * PostgreSQLBackup it creates, so the operator does not start a second Job for it.
   */
  backupJob: 'postgres.pgpilot.io/job',
  /**
   * On the cluster (set by `kubectl pgpilot restart`, as `kubectl rollout restart` sets it on a
   * Deployment): copied into every instance's pod template, so a new value rolls the instances
   * through the rollout (replicas first, a switchover, the old primary last).
   */
  restartedAt: 'kubectl.kubernetes.io/restartedAt',
  /** On a major upgrade's Jobs: the upgrade they belong to (status.majorUpgrade.startedAt); another value is a stale Job. */
  upgradeStartedAt: 'postgres.pgpilot.io/upgrade-started-at',
  /**
   * On the cluster (set by `kubectl pgpilot fence|unfence`, as CloudNativePG's cnpg.io/fencedInstances):
   * a JSON array of instance names, e.g. ["prod-db-2"]. A fenced instance's PostgreSQL is stopped
   * cleanly and kept stopped by its agent; its pod keeps running, not Ready, with no role label (out
   * of every Service); it is never a failover or switchover target, and never restarted, re-cloned
   * or rewound while fenced. A fenced primary is not failed over: the cluster has no writable
   * primary until it is unfenced, and then it is the primary again with the same data. Removing a
   * name unfences the instance. The rollout, hibernation and a major upgrade wait while any
   * instance is fenced (status.fencedInstances, the Fenced condition). Not an array of instance
   * names of this cluster: nothing is fenced or unfenced by it (the Fenced condition says why).
   */
  fencedInstances: 'postgres.pgpilot.io/fenced-instances',
  /**
   * On the cluster (set by `kubectl pgpilot restart CLUSTER INSTANCE`): a JSON object of instance
   * name → RFC 3339 time, e.g. {"prod-db-2": "2026-01-02T03:04:05Z"}. Each value goes into that
   * instance's pod template only (as instanceRestartedAt), so a new value restarts that instance
   * alone through the rollout (a replica in place; the primary after a switchover to a ready
   * replica). Not such an object, or naming an instance the cluster does not have: nothing
   * restarts (Degraded, reason InvalidRestartAnnotation, and a Warning Event).
   */
  restartInstances: 'postgres.pgpilot.io/restart-instances',
  /** On one instance's pod template: its value of restartInstances (a new value restarts that instance). */
  instanceRestartedAt: 'postgres.pgpilot.io/restartedAt',
  /**
   * On the cluster (set by `kubectl pgpilot reload`): an RFC 3339 time. When it differs from
   * status.lastReload.requestedAt, the operator asks every running instance's agent to reload now
   * (re-read the mounted configuration, pg_hba.conf, custom queries; pg_reload_conf()) and records
   * status.lastReload. An instance not running then reads its configuration when it starts.
   */
  reloadRequestedAt: 'postgres.pgpilot.io/reload-requested-at',
  /**
   * Set by the conversion webhook on a PostgreSQLCluster read as v1beta1: JSON of the v1 fields
   * v1beta1 cannot express (storage.autoGrow, storage.pvcRetentionPolicy), restored when the
   * object is converted back to v1 and then removed (src/api/conversion.ts).
   */
  conversionData: 'postgres.pgpilot.io/conversion-data',
} as const;

/** Roles an instance pod can carry in LABELS.role; Services select on them. */
export const ROLE_PRIMARY = 'primary';
export const ROLE_REPLICA = 'replica';

/** Ports inside every PostgreSQL pod. */
export const POSTGRES_PORT = 5432;
export const AGENT_PORT = 8000;
/** The agent's Prometheus exporter (GET /metrics, no auth): postgres_exporter's conventional port. */
export const METRICS_PORT = 9187;
