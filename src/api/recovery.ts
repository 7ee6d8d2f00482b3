// spec.bootstrap.recovery: where a restored cluster's data comes from and where replay stops.
import { Type, type Static } from '@sinclair/typebox';
import { DEFAULTS } from './defaults.js';
import { Obj, cel } from './schema-helpers.js';
import { S3TargetSchema, StorePath, VolumeTargetSchema } from './stores.js';

/** Where recovery stops (spec.bootstrap.recovery.target); without one it replays all archived WAL. */
export const RecoveryTargetSchema = Obj(
  'Point in time to recover to: exactly one of time, lsn, xid, name or immediate. Without a target, recovery replays to the end of the archived WAL.',
  {
    time: Type.Optional(Type.String({ description: 'A time in RFC 3339, e.g. "2026-11-25T14:03:00Z" (recovery_target_time).', format: 'date-time', maxLength: 64 })),
    lsn: Type.Optional(Type.String({ description: 'A WAL location, e.g. "0/3000060" (recovery_target_lsn).', maxLength: 17, pattern: '^[0-9A-Fa-f]{1,8}/[0-9A-Fa-f]{1,8}$' })),
    xid: Type.Optional(Type.String({ description: 'A transaction id, in digits (recovery_target_xid).', minLength: 1, maxLength: 20, pattern: '^[0-9]+$' })),
    name: Type.Optional(Type.String({ description: 'A restore point created with pg_create_restore_point() (recovery_target_name).', minLength: 1, maxLength: 63 })),
    immediate: Type.Optional(
      Type.Boolean({
        description: 'true: end recovery as soon as the base backup is consistent (recovery_target = immediate). Only true may be given.',
        ...cel({ rule: 'self', message: 'immediate may only be true (omit it to recover to time, lsn, xid or name instead)' }),
      }),
    ),
    inclusive: Type.Optional(
      Type.Boolean({ description: 'true (default): stop just after the target; false: just before it (recovery_target_inclusive).', default: DEFAULTS.recoveryInclusive }),
    ),
  },
  {
    ...cel({
      rule: '[has(self.time), has(self.lsn), has(self.xid), has(self.name), has(self.immediate)].filter(x, x).size() == 1',
      message: 'recovery.target must set exactly one of time, lsn, xid, name or immediate',
    }),
  },
);

export const RecoverySourceSchema = Obj(
  'The archive of a cluster, which may no longer exist: exactly one of s3 or volume, and the archive\'s path in it.',
  {
    s3: Type.Optional(S3TargetSchema),
    volume: Type.Optional(VolumeTargetSchema),
    path: StorePath(
      'The cluster\'s archive path inside the store, in full (the store\'s own path prefix is not added), e.g. "pgpilot/production/prod-db": <prefix>/<namespace>/<cluster> of the cluster that wrote it.',
    ),
  },
  {
    ...cel({
      rule: 'has(self.s3) != has(self.volume)',
      message: 'recovery.source must set exactly one of s3 or volume',
    }),
  },
);

/** spec.bootstrap.recovery: create the cluster from a base backup plus archived WAL. */
export const RecoverySchema = Obj(
  'Create the cluster by restoring a base backup and replaying archived WAL: from a PostgreSQLBackup (backup) or from an archive (source), exactly one.',
  {
    backup: Type.Optional(
      Obj('A completed PostgreSQLBackup in this namespace to restore.', {
        name: Type.String({ description: 'Name of the PostgreSQLBackup.', minLength: 1, maxLength: 253 }),
      }),
    ),
    source: Type.Optional(RecoverySourceSchema),
    backupId: Type.Optional(
      Type.String({
        description: 'With source: the base backup to restore, by id (its UTC start time, e.g. "20261125T020000Z"). Default: the newest one that ends before the target.',
        maxLength: 16,
        pattern: '^[0-9]{8}T[0-9]{6}Z$',
      }),
    ),
    target: Type.Optional(RecoveryTargetSchema),
  },
  {
    ...cel(
      {
        rule: 'has(self.backup) != has(self.source)',
        message: 'recovery must set exactly one of backup (a PostgreSQLBackup) or source (an archive)',
      },
      {
        rule: '!has(self.backupId) || has(self.source)',
        message: 'recovery.backupId selects a base backup of recovery.source; with recovery.backup the PostgreSQLBackup names it',
        fieldPath: '.backupId',
      },
    ),
  },
);

export type RecoveryTarget = Static<typeof RecoveryTargetSchema>;
export type RecoverySource = Static<typeof RecoverySourceSchema>;
export type RecoverySpec = Static<typeof RecoverySchema>;
