// The PostgreSQLBackup API: one base backup of a cluster, asked for by a person (`kubectl create`,
// `pgpilot backup`) or by the cluster's schedule. The spec says which cluster and is immutable;
// the status is the backup's record, complete enough for a restore after the cluster is gone.
// One TypeBox definition gives the types and the CRD (src/api/crd.ts). Edit here, then `npm run gen`.
import { Type, type Static } from '@sinclair/typebox';
import type { ObjectMetaLike } from './cluster.js';
import { ConditionSchema } from './cluster-status.js';
import { BackupTargetSchema, S3TargetSchema, VolumeTargetSchema } from './stores.js';
import { Obj, StringEnum, cel } from './schema-helpers.js';

export const BACKUP_PHASES = ['pending', 'running', 'completed', 'failed'] as const;

/** Longest backup name: it is a label value (LABELS.backupName) on the backup's Job and pods. */
export const MAX_BACKUP_NAME = 63;

export const BackupResourceSpecSchema = Obj(
  'Which cluster to back up. The spec cannot change once created: a backup is taken once (create another PostgreSQLBackup for another backup).',
  {
    cluster: Obj(
      'The PostgreSQLCluster to back up, in the same namespace.',
      {
        name: Type.String({ description: 'Name of the PostgreSQLCluster.', minLength: 1, maxLength: 253 }),
      },
      { ...cel({ rule: 'self == oldSelf', message: 'spec.cluster cannot change: a backup belongs to the cluster it was taken of' }) },
    ),
    target: Type.Optional(
      BackupTargetSchema(
        'Which instance to take the backup from, overriding the cluster\'s spec.backup.target: prefer-standby (a healthy streaming replica when there is one, else the primary) or primary.',
      ),
    ),
  },
  { ...cel({ rule: 'self == oldSelf', message: 'spec cannot change after the PostgreSQLBackup is created: create a new PostgreSQLBackup instead' }) },
);

export const BackupDestinationSchema = Obj(
  'Where the backup was stored, so that it can be restored after its cluster is gone: exactly one of s3 or volume, and the cluster\'s archive path in it.',
  {
    s3: Type.Optional(S3TargetSchema),
    volume: Type.Optional(VolumeTargetSchema),
    path: Type.String({ description: 'The cluster\'s archive path inside the store, e.g. "pgpilot/production/prod-db" (usable as spec.bootstrap.recovery.source.path).' }),
  },
);

export const BackupStatusSchema = Obj('Observed state of the backup, written by the operator and the backup Job.', {
  phase: Type.Optional(
    StringEnum(BACKUP_PHASES, { description: 'pending (waiting for its Job), running, completed or failed.' }),
  ),
  backupId: Type.Optional(Type.String({ description: 'Id of the base backup in the archive: its UTC start time, e.g. "20261125T020000Z".' })),
  instance: Type.Optional(Type.String({ description: 'Instance the backup was taken from.' })),
  fromReplica: Type.Optional(Type.Boolean({ description: 'Whether that instance was a streaming replica at the time.' })),
  destination: Type.Optional(BackupDestinationSchema),
  startedAt: Type.Optional(Type.String({ description: 'When the backup started.', format: 'date-time' })),
  stoppedAt: Type.Optional(Type.String({ description: 'When the backup ended (completed: the earliest time it can be recovered to).', format: 'date-time' })),
  durationSeconds: Type.Optional(Type.Number({ description: 'How long the backup took, in seconds.', minimum: 0 })),
  timeline: Type.Optional(Type.Integer({ description: 'PostgreSQL timeline the backup was taken on.', minimum: 1 })),
  startLsn: Type.Optional(Type.String({ description: 'WAL location where the backup started.' })),
  stopLsn: Type.Optional(Type.String({ description: 'WAL location where the backup ended; recovery must replay at least to here.' })),
  startWal: Type.Optional(Type.String({ description: 'First WAL segment the backup needs.' })),
  stopWal: Type.Optional(Type.String({ description: 'WAL segment holding stopLsn.' })),
  dataBytes: Type.Optional(Type.Integer({ description: 'Size of the backed-up data (tar, uncompressed), in bytes.', minimum: 0 })),
  storedBytes: Type.Optional(Type.Integer({ description: 'Size stored (compressed), in bytes.', minimum: 0 })),
  progressBytes: Type.Optional(Type.Integer({ description: 'Bytes of data read so far while running.', minimum: 0 })),
  dataSha256: Type.Optional(Type.String({ description: 'sha256 (hex) of the uncompressed data.', maxLength: 64 })),
  job: Type.Optional(Type.String({ description: 'Name of the Job that runs the backup.' })),
  attempts: Type.Optional(Type.Integer({ description: 'How many times the backup was started.', minimum: 0 })),
  error: Type.Optional(Type.String({ description: 'Why the backup failed (phase failed).', maxLength: 32768 })),
  conditions: Type.Optional(
    Type.Array(ConditionSchema, {
      description: 'Conditions of the backup.',
      'x-kubernetes-list-type': 'map',
      'x-kubernetes-list-map-keys': ['type'],
    }),
  ),
});

export const BackupSchema = Obj(
  'One base backup of a PostgreSQLCluster, stored in the cluster\'s backup store.',
  {
    apiVersion: Type.Optional(Type.String({ description: 'postgres.pgpilot.io/v1' })),
    kind: Type.Optional(Type.String({ description: 'PostgreSQLBackup' })),
    metadata: Type.Optional(Type.Unsafe<ObjectMetaLike>({ type: 'object' })),
    spec: BackupResourceSpecSchema,
    status: Type.Optional(BackupStatusSchema),
  },
  {
    ...cel({
      rule: `self.metadata.name.size() <= ${MAX_BACKUP_NAME}`,
      message: `metadata.name must be at most ${MAX_BACKUP_NAME} characters (it is a label value on the backup's Job and pods)`,
    }),
  },
);

export type BackupPhase = (typeof BACKUP_PHASES)[number];
export type BackupResourceSpec = Static<typeof BackupResourceSpecSchema>;
export type BackupDestination = Static<typeof BackupDestinationSchema>;
export type BackupStatus = Static<typeof BackupStatusSchema>;
export type PostgreSQLBackup = Static<typeof BackupSchema> & { metadata: ObjectMetaLike };
