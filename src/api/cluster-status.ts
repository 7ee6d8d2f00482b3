// The PostgreSQLCluster's status: what the operator observed, and the conditions (each owned by one
// reconciler: src/reconcilers/conditions.ts).
import { Type, type Static } from '@sinclair/typebox';
import { RecoverySourceSchema } from './recovery.js';
import { StorageStatusSchema } from './autogrow.js';
import { Obj, StringEnum } from './schema-helpers.js';
import { AnomaliesStatusSchema } from './anomalies.js';
import { TlsStatusSchema } from './tls.js';

export const ConditionSchema = Obj('A status condition (metav1.Condition).', {
  type: Type.String({ description: 'Condition type, e.g. Ready.', maxLength: 316 }),
  status: StringEnum(['True', 'False', 'Unknown'] as const, { description: 'True, False or Unknown.' }),
  reason: Type.String({ description: 'Machine-readable CamelCase reason.', maxLength: 1024 }),
  message: Type.String({ description: 'What a person can act on.', maxLength: 32768 }),
  lastTransitionTime: Type.String({ description: 'When status last changed.', format: 'date-time' }),
  observedGeneration: Type.Optional(Type.Integer({ description: 'The generation the condition was computed from.', minimum: 0 })),
});

/** status.archiving: continuous WAL archiving as the primary last reported it. */
export const ArchivingStatusSchema = Obj('Continuous WAL archiving, as the primary last reported it.', {
  lastArchivedWal: Type.Optional(Type.String({ description: 'Newest WAL file archived.' })),
  lastArchivedTime: Type.Optional(Type.String({ description: 'When it was archived.', format: 'date-time' })),
  lastFailedWal: Type.Optional(Type.String({ description: 'Newest WAL file whose archiving failed.' })),
  lastFailureTime: Type.Optional(Type.String({ description: 'When archiving last failed.', format: 'date-time' })),
  lastFailure: Type.Optional(Type.String({ description: 'Why archiving last failed.', maxLength: 32768 })),
  backlogSegments: Type.Optional(Type.Integer({ description: 'Completed WAL segments waiting to be archived.', minimum: 0 })),
  walBytes: Type.Optional(Type.Integer({ description: 'Size of pg_wal on the primary, in bytes.', minimum: 0 })),
  walVolumeUsedPercent: Type.Optional(Type.Integer({ description: 'How full the volume holding pg_wal on the primary is, in percent.', minimum: 0, maximum: 100 })),
});

/** status.passwords.<role>: the Secret version whose password PostgreSQL has. */
export const AppliedPasswordSchema = Obj('The Secret version whose password PostgreSQL has for this role.', {
  secret: Type.String({ description: 'The Secret the password came from.', maxLength: 253 }),
  resourceVersion: Type.String({ description: "The Secret's resourceVersion when its password was applied.", maxLength: 64 }),
  appliedAt: Type.String({ description: 'When it was applied (or found already in place).', format: 'date-time' }),
});
export type AppliedPassword = Static<typeof AppliedPasswordSchema>;

export const MAJOR_UPGRADE_PHASES = ['Checking', 'Stopping', 'Upgrading', 'Starting', 'ResyncingReplicas', 'BackingUp', 'Succeeded', 'Failed'] as const;

export const MajorUpgradeStatusSchema = Obj('The newest major version upgrade (pg_upgrade): its stage, or how it ended.', {
  phase: StringEnum(MAJOR_UPGRADE_PHASES, {
    description:
      'Checking (pg_upgrade --check in a Job, the cluster runs on), Stopping (every instance stops cleanly; writes are refused from here), Upgrading (pg_upgrade in a Job on the primary\'s volume), Starting (the primary starts on the new version), ResyncingReplicas (the replicas are cloned on the new version), BackingUp (the first base backup of the new version), Succeeded, or Failed (with the reason; before the new version started, the cluster runs the old one again).',
  }),
  from: Type.String({ description: 'The version that ran when the upgrade started.', maxLength: 64 }),
  to: Type.String({ description: 'The version asked for (spec.version).', maxLength: 64 }),
  fromImage: Type.String({ description: 'Instance image of the old version (the upgrade Job copies its binaries).', maxLength: 512 }),
  toImage: Type.String({ description: 'Instance image of the new version.', maxLength: 512 }),
  mode: StringEnum(['link', 'copy'] as const, { description: 'pg_upgrade --link or --copy.' }),
  generation: Type.Optional(Type.Integer({ description: 'The spec generation that asked for it: a failed upgrade is tried again once the spec is edited.', minimum: 0 })),
  primary: Type.Optional(Type.String({ description: 'The instance whose data is upgraded (the primary when the instances stopped).' })),
  reason: Type.Optional(Type.String({ description: 'Why it failed: UpgradeCheckFailed (pg_upgrade --check refused, nothing stopped) or UpgradeFailed (the upgrade Job failed; the old version runs again).', maxLength: 64 })),
  message: Type.String({ description: 'What happens now, or why it failed (pg_upgrade\'s own words).', maxLength: 32768 }),
  startedAt: Type.String({ description: 'When the upgrade started (the check).', format: 'date-time' }),
  stoppedAt: Type.Optional(Type.String({ description: 'When the instances were asked to stop (writes are refused from then on).', format: 'date-time' })),
  primaryStartedAt: Type.Optional(Type.String({ description: 'When the primary ran on the new version (writes are accepted again).', format: 'date-time' })),
  finishedAt: Type.Optional(Type.String({ description: 'When it succeeded or failed.', format: 'date-time' })),
  postUpgrade: Type.Optional(Type.String({ description: 'The primary\'s post-upgrade work (extension updates pg_upgrade asks for, vacuumdb --analyze-in-stages, removing the old data directory), as its agent reports it.', maxLength: 32768 })),
  previousArchive: Type.Optional(Type.String({ description: 'Where the backups and WAL of the old version stay (a restore of those produces a cluster of the old version).' })),
  backup: Type.Optional(Type.String({ description: 'The PostgreSQLBackup taken of the new version; recoverability restarts from it.' })),
});

export const HibernationStatusSchema = Obj('Hibernation under way or in effect (spec.hibernation); absent while the cluster runs.', {
  phase: StringEnum(['Hibernating', 'Hibernated', 'Waking'] as const, {
    description: 'Hibernating (every instance stopping, the primary first and cleanly), Hibernated (no instance runs; the claims and the primary Lease are kept), Waking (every instance starting, the same primary first).',
  }),
  primary: Type.Optional(Type.String({ description: 'The primary when the cluster went to sleep: it is the primary again when it wakes.' })),
  since: Type.String({ description: 'When the phase began.', format: 'date-time' }),
});

export const TuningStatusSchema = Obj('The settings tuned from the instance\'s resources (spec.postgresql.tuning) and why; spec.postgresql.parameters win.', {
  profile: Type.String({ description: 'Workload profile the values follow.', maxLength: 16 }),
  storageType: Type.String({ description: 'Storage kind the I/O settings follow.', maxLength: 16 }),
  memory: Type.Optional(Type.String({ description: 'Memory the values come from (resources limits, else requests).', maxLength: 64 })),
  cpu: Type.Optional(Type.String({ description: 'CPU the values come from (resources limits, else requests).', maxLength: 64 })),
  connections: Type.Integer({ description: 'max_connections the per-connection memory is sized for.', minimum: 0 }),
  settings: Type.Array(
    Obj('One tuned setting.', {
      name: Type.String({ description: 'The postgresql.conf parameter.', maxLength: 128 }),
      value: Type.String({ description: 'The value in effect (the user\'s, when spec.postgresql.parameters sets it).', maxLength: 256 }),
      tuned: Type.Optional(Type.String({ description: 'The value the tuning computed, when a user parameter replaced it.', maxLength: 256 })),
      reason: Type.String({ description: 'Why this value.', maxLength: 1024 }),
    }),
    { description: 'Each tuned setting, by name.', maxItems: 64 },
  ),
});

export const ClusterStatusSchema = Obj('Observed state of the cluster, written by the operator.', {
  phase: Type.Optional(Type.String({ description: 'Summary: Provisioning, Healthy, Degraded, Scaling, Upgrading (a major version upgrade has instances stopped or cloning), Hibernating, Hibernated, Waking (spec.hibernation), or Deleting.' })),
  observedGeneration: Type.Optional(Type.Integer({ description: 'The spec generation this status reflects.' })),
  instances: Type.Optional(Type.Integer({ description: 'Number of instances that exist (scale subresource).' })),
  readyInstances: Type.Optional(Type.Integer({ description: 'Number of instances that are ready.' })),
  streamingReplicas: Type.Optional(Type.Integer({ description: 'Replicas streaming from the primary when last observed (with durability preferred, fewer than synchronousReplicas relaxes synchronous commit).' })),
  selector: Type.Optional(Type.String({ description: 'Label selector of the instance pods (scale subresource).' })),
  instanceNames: Type.Optional(Type.Array(Type.String(), { description: 'Names of the instances, in ordinal order.' })),
  firstReadyTime: Type.Optional(Type.String({ description: 'When every instance was first ready; until then the cluster is Provisioning.', format: 'date-time' })),
  currentPrimary: Type.Optional(Type.String({ description: 'Instance that is the primary now.' })),
  targetPrimary: Type.Optional(Type.String({ description: 'Instance that should be the primary (differs from currentPrimary during failover or switchover).' })),
  version: Type.Optional(Type.String({ description: 'PostgreSQL version the primary reports running (spec.version is the one asked for).', maxLength: 64 })),
  secrets: Type.Optional(
    Obj('Secrets holding credentials.', {
      superuser: Type.Optional(Type.String({ description: 'Secret with the postgres superuser\'s credentials.' })),
      replication: Type.Optional(Type.String({ description: 'Secret with the replication user\'s credentials.' })),
      app: Type.Optional(Type.String({ description: 'Secret with the application user\'s credentials and connection URI.' })),
    }),
  ),
  rollout: Type.Optional(
    Obj('A change that restarts pods, going through the instances one at a time (replicas first, the primary last).', {
      updated: Type.Integer({ description: 'Instances running the current pod template.', minimum: 0 }),
      total: Type.Integer({ description: 'Instances of the cluster.', minimum: 0 }),
      updating: Type.Optional(Type.String({ description: 'The instance that receives the new pod template in this step.' })),
      switchoverTo: Type.Optional(Type.String({ description: 'The updated replica the primary role moves to before the old primary is updated.' })),
      primaryRestart: Type.Optional(
        Obj('A restart of the primary in place: failover is held back until `until`; the primary was given a shorter permit to start writable.', {
          instance: Type.String({ description: 'The primary being restarted.' }),
          until: Type.String({ description: 'Until when failover of this primary is held back.', format: 'date-time' }),
        }),
      ),
    }),
  ),
  majorUpgrade: Type.Optional(MajorUpgradeStatusSchema),
  hibernation: Type.Optional(HibernationStatusSchema),
  tuning: Type.Optional(TuningStatusSchema),
  tls: Type.Optional(TlsStatusSchema),
  fencedInstances: Type.Optional(
    Type.Array(Type.String(), {
      description:
        'Instances fenced through the annotation postgres.pgpilot.io/fenced-instances (PostgreSQL stopped and kept stopped, pod not Ready, out of every Service, never a failover target), including those being unfenced until their agent has lifted the fence.',
    }),
  ),
  lastReload: Type.Optional(
    Obj('The last configuration reload asked for with the annotation postgres.pgpilot.io/reload-requested-at.', {
      requestedAt: Type.String({ description: 'The annotation\'s value this reload answered.', maxLength: 64 }),
      completedAt: Type.String({ description: 'When every running instance had been asked to reload.', format: 'date-time' }),
      instances: Type.Array(Type.String(), { description: 'Instances whose agent reloaded (pg_reload_conf()). An instance not running then reads its configuration when it starts.' }),
      failed: Type.Optional(Type.Array(Type.String(), { description: 'Running instances whose reload failed, each with the reason.' })),
    }),
  ),
  passwords: Type.Optional(
    Obj('Role passwords the operator has set in PostgreSQL from their Secrets (rotation: change the Secret). Only Secret versions, never secret material.', {
      superuser: Type.Optional(AppliedPasswordSchema),
      app: Type.Optional(AppliedPasswordSchema),
    }),
  ),
  archiveSuffix: Type.Optional(
    Type.String({ description: 'Set by a major upgrade (e.g. "pg17"): the upgraded database is another system, so WAL and base backups go to <archive path>/<suffix> from then on, and the older major\'s backups stay restorable where they were.', pattern: '^pg[0-9]+$', maxLength: 8 }),
  ),
  recoverySource: Type.Optional(
    Obj('The archive and base backup the cluster was restored from (spec.bootstrap.recovery resolved once; the instances keep using it even if that PostgreSQLBackup is deleted later).', {
      ...RecoverySourceSchema.properties,
      backupId: Type.Optional(Type.String({ description: 'The base backup restored, when one was named.' })),
    }),
  ),
  archivePath: Type.Optional(Type.String({ description: 'Where the WAL and base backups of this cluster go, e.g. "s3://bucket/pgpilot/production/prod-db".' })),
  firstRecoverabilityPoint: Type.Optional(Type.String({ description: 'Earliest time the cluster can be recovered to (the end of the oldest kept base backup).', format: 'date-time' })),
  lastRecoverabilityPoint: Type.Optional(Type.String({ description: 'Latest time the cluster can be recovered to (the newest archived WAL).', format: 'date-time' })),
  lastSuccessfulBackup: Type.Optional(Type.String({ description: 'When the newest completed base backup ended.', format: 'date-time' })),
  lastBackup: Type.Optional(Type.String({ description: 'Name of the newest PostgreSQLBackup of this cluster that finished (completed or failed).' })),
  nextScheduledBackup: Type.Optional(Type.String({ description: 'When the next scheduled base backup starts.', format: 'date-time' })),
  archiving: Type.Optional(ArchivingStatusSchema),
  anomalies: Type.Optional(AnomaliesStatusSchema),
  storage: Type.Optional(StorageStatusSchema),
  conditions: Type.Optional(
    Type.Array(ConditionSchema, {
      description: 'Ready, Progressing, Degraded and the conditions of each concern.',
      'x-kubernetes-list-type': 'map',
      'x-kubernetes-list-map-keys': ['type'],
    }),
  ),
});

export type ClusterStatus = Static<typeof ClusterStatusSchema>;
export type Condition = Static<typeof ConditionSchema>;
export type ArchivingStatus = Static<typeof ArchivingStatusSchema>;
export type MajorUpgradeStatus = Static<typeof MajorUpgradeStatusSchema>;
export type HibernationStatus = Static<typeof HibernationStatusSchema>;
export type TuningStatus = Static<typeof TuningStatusSchema>;
export type MajorUpgradePhase = MajorUpgradeStatus['phase'];
