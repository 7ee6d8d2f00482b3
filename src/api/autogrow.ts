// Storage auto-grow (spec.storage.autoGrow, spec.walStorage.autoGrow) and what the operator
// records about it (status.storage): the API half; the decisions are in
// src/reconcilers/storage-autogrow-plan.ts, the reconciler in src/reconcilers/autopilot.ts.
import { Type, type Static } from '@sinclair/typebox';
import { Obj, QUANTITY_PATTERN, cel } from './schema-helpers.js';

export const AUTOGROW_DEFAULTS = {
  enabled: false,
  thresholdPercent: 80,
  increment: '50%',
  /**
   * A growth already waits for the previous one to finish (a claim whose capacity is below its
   * request is never grown again), so the cooldown only paces growths one after another: a
   * minute lets the agents' statfs and the writer's rate show the new room before the next look,
   * without letting a runaway writer walk to maxSize in a burst. At 80 % with +50 %, the room a
   * growth adds (about half the old size) lasts far longer than a minute at any sane write rate.
   */
  cooldownSeconds: 60,
} as const;

export const AutoGrowSchema = Obj(
  'Grow the volume\'s claims in place (volume expansion, online) before it fills: when an instance\'s volume is at least thresholdPercent full, every instance\'s claim of this volume grows to min(maxSize, current size + increment). spec size stays your floor and is never rewritten: the size the operator chose is in status.storage, and a claim is the larger of the two. The StorageClass must allow volume expansion. Growth of the volume holding pg_wal because WAL archiving fails or a replication slot holds WAL is limited to one increment (growing hides the cause): the StorageFull condition says so.',
  {
    enabled: Type.Optional(Type.Boolean({ description: 'Grow the claims automatically (default false).', default: AUTOGROW_DEFAULTS.enabled })),
    thresholdPercent: Type.Optional(
      Type.Integer({
        description: 'Grow when an instance\'s volume is at least this full, in percent of its capacity as df shows it (default 80, from 50 to 95).',
        default: AUTOGROW_DEFAULTS.thresholdPercent,
        ...cel({ rule: 'self >= 50 && self <= 95', message: 'must be from 50 to 95 (percent of the volume used that triggers a growth)' }),
      }),
    ),
    increment: Type.Optional(
      Type.String({
        description: 'How much one growth adds: a percentage of the current size ("50%", the default; 1% to 999%) or a quantity ("10Gi"). Never past maxSize.',
        default: AUTOGROW_DEFAULTS.increment,
        maxLength: 32,
        ...cel({
          rule: "self.endsWith('%') ? self.matches('^[1-9][0-9]{0,2}%$') : (isQuantity(self) && quantity(self).isGreaterThan(quantity('0')))",
          message: 'must be a percentage from 1% to 999% (e.g. "50%") or a positive quantity (e.g. "10Gi"): an increment of zero would never grow',
        }),
      }),
    ),
    maxSize: Type.Optional(
      Type.String({
        description: 'The largest size auto-grow may give a claim (required when enabled, at least size). At maxSize and past thresholdPercent, the StorageFull condition says so long before the disk is full.',
        maxLength: 32,
        pattern: QUANTITY_PATTERN,
        ...cel({ rule: "isQuantity(self) && quantity(self).isGreaterThan(quantity('0'))", message: 'must be a positive Kubernetes quantity such as "500Gi"' }),
      }),
    ),
    cooldownSeconds: Type.Optional(
      Type.Integer({
        description: 'Least time between two growths of this volume, in seconds (default 60). A growth in flight (a claim not yet at its requested size) is always waited for.',
        default: AUTOGROW_DEFAULTS.cooldownSeconds,
        minimum: 0,
        maximum: 86400,
      }),
    ),
  },
  {
    ...cel({
      rule: '!has(self.enabled) || !self.enabled || has(self.maxSize)',
      message: 'maxSize is required when auto-grow is enabled: growth needs a limit',
      fieldPath: '.maxSize',
      reason: 'FieldValueRequired',
    }),
  },
);

/** On the storage object (it knows size): maxSize may not be below size. */
export const AUTOGROW_MAX_SIZE_RULE = {
  rule: '!has(self.autoGrow) || !has(self.autoGrow.maxSize) || !isQuantity(self.size) || !isQuantity(self.autoGrow.maxSize) || !quantity(self.autoGrow.maxSize).isLessThan(quantity(self.size))',
  message: 'autoGrow.maxSize must be at least size',
  messageExpression: "'autoGrow.maxSize (' + self.autoGrow.maxSize + ') must be at least size (' + self.size + '): raise maxSize with size'",
  fieldPath: '.autoGrow.maxSize',
};

export const VolumeGrowthStatusSchema = Obj('What storage auto-grow did to this volume of every instance.', {
  size: Type.String({ description: 'The size auto-grow chose for the claims (each claim is the larger of this and the spec size).', maxLength: 32 }),
  lastGrownAt: Type.String({ description: 'When it last grew the claims.', format: 'date-time' }),
  reason: Type.String({ description: 'Why it last grew them (which instance\'s volume was how full).', maxLength: 4096 }),
  walRetention: Type.Optional(
    Type.Boolean({ description: 'The last growth was for WAL kept because archiving fails or a replication slot holds it: no further growth for that reason until the cause is gone.' }),
  ),
});

export const StorageStatusSchema = Obj('Storage auto-grow: the sizes the operator chose (spec.storage.size stays the floor you set).', {
  data: Type.Optional(VolumeGrowthStatusSchema),
  wal: Type.Optional(VolumeGrowthStatusSchema),
});

export type AutoGrowSpec = Static<typeof AutoGrowSchema>;
export type VolumeGrowthStatus = Static<typeof VolumeGrowthStatusSchema>;
export type StorageStatus = Static<typeof StorageStatusSchema>;
