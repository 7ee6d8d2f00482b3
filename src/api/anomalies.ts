// spec.autopilot.anomalies (what counts as an anomaly, which corrections the operator may make)
// and status.anomalies (what detection keeps between passes and what the corrections did).
// docs/anomalies.md describes each anomaly; src/reconcilers/anomalies-plan.ts decides.
import { Type, type Static } from '@sinclair/typebox';
import { Obj, QUANTITY_PATTERN, cel } from './schema-helpers.js';

/** Defaults a production cluster expects (docs/anomalies.md). */
export const ANOMALY_DEFAULTS = {
  enabled: true,
  checkIntervalSeconds: 30,
  xidAge: 1_000_000_000,
  transactionSeconds: 3600,
  idleInTransactionSeconds: 600,
  replicationLag: '1Gi',
  slotRetainedWal: '5Gi',
  connectionsPercent: 90,
  checkpointsRequestedPercent: 50,
  checkpointsMinimum: 5,
  checkpointsWindowSeconds: 3600,
  archiveBacklogSegments: 4,
  corrections: { raiseMaxWalSize: true, terminateIdleInTransaction: true, vacuumFreeze: true, dropInactiveSlots: false },
} as const;

const Bytes = (description: string, def: string) =>
  Type.String({
    description,
    default: def,
    maxLength: 32,
    pattern: QUANTITY_PATTERN,
    ...cel({ rule: 'isQuantity(self) && quantity(self).isGreaterThan(quantity("0"))', message: 'must be a positive Kubernetes quantity such as "1Gi"' }),
  });

const Seconds = (description: string, def: number, minimum: number, maximum: number) => Type.Integer({ description, default: def, minimum, maximum });

const Corrections = Obj('What the operator may do about an anomaly by itself. Each is on by default except dropInactiveSlots; set one to false to only be told.', {
  raiseMaxWalSize: Type.Optional(
    Type.Boolean({
      description:
        'CheckpointsForced: double max_wal_size (reloaded, no restart), at most half of the volume holding pg_wal; the value and why are in status.anomalies.maxWalSize. It sits above the tuned value; spec.postgresql.parameters.max_wal_size still wins (and stops the raise).',
      default: ANOMALY_DEFAULTS.corrections.raiseMaxWalSize,
    }),
  ),
  terminateIdleInTransaction: Type.Optional(
    Type.Boolean({ description: 'LongTransactions: terminate (pg_terminate_backend) sessions idle in a transaction for longer than idleInTransactionSeconds; an Event names each.', default: ANOMALY_DEFAULTS.corrections.terminateIdleInTransaction }),
  ),
  vacuumFreeze: Type.Optional(
    Type.Boolean({ description: 'XidWraparoundRisk: run VACUUM (FREEZE) on the primary in each database past xidAge, oldest first, in the background (progress in the primary\'s agent status).', default: ANOMALY_DEFAULTS.corrections.vacuumFreeze }),
  ),
  dropInactiveSlots: Type.Optional(
    Type.Boolean({
      description: 'SlotRetainingWal: drop a replication slot that is inactive and retains more than slotRetainedWal, with an Event naming it. Off by default: whatever used the slot must start over (a logical subscriber loses its place).',
      default: ANOMALY_DEFAULTS.corrections.dropInactiveSlots,
    }),
  ),
});

export const AnomaliesSpecSchema = Obj(
  'Anomaly detection from the instances\' agents: each anomaly is a condition (True while present, with the instance, the object and the numbers), an Event when it appears and when it clears, and the pgpilot_cluster_condition metric (docs/anomalies.md).',
  {
    enabled: Type.Optional(Type.Boolean({ description: 'Detect anomalies (and make the corrections allowed below). false: the anomaly conditions are Unknown.', default: ANOMALY_DEFAULTS.enabled })),
    checkIntervalSeconds: Type.Optional(Seconds('How often the operator looks at the agents\' health snapshots (refreshed every 5 s) when nothing else happens.', ANOMALY_DEFAULTS.checkIntervalSeconds, 5, 3600)),
    xidAge: Type.Optional(
      Type.Integer({ description: 'XidWraparoundRisk: age(datfrozenxid) of a database on the primary at or above this (wraparound stops writes at about 2.1 billion; autovacuum freezes from 200 million).', default: ANOMALY_DEFAULTS.xidAge, minimum: 10_000, maximum: 2_000_000_000 }),
    ),
    transactionSeconds: Type.Optional(Seconds('LongTransactions: an active transaction open this long.', ANOMALY_DEFAULTS.transactionSeconds, 1, 7 * 86400)),
    idleInTransactionSeconds: Type.Optional(Seconds('LongTransactions: a session idle in a transaction this long (and the limit of terminateIdleInTransaction).', ANOMALY_DEFAULTS.idleInTransactionSeconds, 1, 7 * 86400)),
    replicationLag: Type.Optional(Bytes('ReplicationLagging: WAL a replica has not replayed yet, as the primary sees it (a quantity of bytes).', ANOMALY_DEFAULTS.replicationLag)),
    slotRetainedWal: Type.Optional(Bytes('SlotRetainingWal: WAL a replication slot keeps on the primary (a quantity of bytes).', ANOMALY_DEFAULTS.slotRetainedWal)),
    connectionsPercent: Type.Optional(Type.Integer({ description: 'ConnectionsNearLimit: client connections on an instance at or above this share of max_connections.', default: ANOMALY_DEFAULTS.connectionsPercent, minimum: 10, maximum: 100 })),
    checkpointsRequestedPercent: Type.Optional(
      Type.Integer({ description: 'CheckpointsForced: requested checkpoints (WAL volume, CHECKPOINT) at or above this share of all checkpoints on the primary in a window.', default: ANOMALY_DEFAULTS.checkpointsRequestedPercent, minimum: 1, maximum: 100 }),
    ),
    checkpointsMinimum: Type.Optional(
      Type.Integer({ description: 'CheckpointsForced: a window is judged once it holds this many checkpoints (fewer in checkpointsWindowSeconds: not forced).', default: ANOMALY_DEFAULTS.checkpointsMinimum, minimum: 1, maximum: 1000 }),
    ),
    checkpointsWindowSeconds: Type.Optional(Seconds('CheckpointsForced: the longest window; one with fewer than checkpointsMinimum checkpoints ends after this long and clears the condition.', ANOMALY_DEFAULTS.checkpointsWindowSeconds, 10, 7 * 86400)),
    archiveBacklogSegments: Type.Optional(
      Type.Integer({ description: 'WalGrowingArchiveFailing: archiving fails and at least this many completed WAL segments wait in pg_wal on the primary.', default: ANOMALY_DEFAULTS.archiveBacklogSegments, minimum: 1, maximum: 100000 }),
    ),
    corrections: Type.Optional(Corrections),
  },
);

export const AutopilotSpecSchema = Obj('What the operator watches and corrects by itself.', {
  anomalies: Type.Optional(AnomaliesSpecSchema),
});

export type AnomaliesSpec = Static<typeof AnomaliesSpecSchema>;

type Widen<T> = T extends string ? string : T extends number ? number : T extends boolean ? boolean : never;

/** spec.autopilot.anomalies with every default applied. */
export type ResolvedAnomalies = { -readonly [K in Exclude<keyof typeof ANOMALY_DEFAULTS, 'corrections'>]: Widen<(typeof ANOMALY_DEFAULTS)[K]> } & {
  corrections: { -readonly [K in keyof typeof ANOMALY_DEFAULTS.corrections]: boolean };
};

const defined = <T extends object>(o: T): Partial<T> => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;

export function resolveAnomalies(spec: { autopilot?: { anomalies?: AnomaliesSpec } }): ResolvedAnomalies {
  const { corrections, ...rest } = spec.autopilot?.anomalies ?? {};
  return { ...ANOMALY_DEFAULTS, ...defined(rest), corrections: { ...ANOMALY_DEFAULTS.corrections, ...defined(corrections ?? {}) } };
}

const Correction = Obj('A correction the operator made.', {
  action: Type.String({ description: 'raiseMaxWalSize, terminateIdleInTransaction, vacuumFreeze or dropSlot.', maxLength: 64 }),
  instance: Type.String({ description: 'The instance it was made on (all: every instance).', maxLength: 64 }),
  time: Type.String({ description: 'When.', format: 'date-time' }),
  message: Type.String({ description: 'What was done.', maxLength: 2048 }),
});

export const AnomaliesStatusSchema = Obj('What anomaly detection keeps between passes, and what its corrections did.', {
  checkpointWindow: Type.Optional(
    Obj('The open window of CheckpointsForced: the primary\'s checkpoint counters when it began.', {
      instance: Type.String({ description: 'The primary whose counters these are (a new primary starts a new window).', maxLength: 64 }),
      timed: Type.Integer({ description: 'Scheduled checkpoints so far (cumulative).', minimum: 0 }),
      requested: Type.Integer({ description: 'Requested checkpoints so far (cumulative).', minimum: 0 }),
      statsReset: Type.Optional(Type.String({ description: 'When the counters were last reset (a reset starts a new window).', maxLength: 64 })),
      since: Type.String({ description: 'When the window began.', format: 'date-time' }),
    }),
  ),
  lastCheckpointWindow: Type.Optional(
    Obj('The last window judged.', {
      instance: Type.String({ description: 'The primary.', maxLength: 64 }),
      timed: Type.Integer({ description: 'Scheduled checkpoints in the window.', minimum: 0 }),
      requested: Type.Integer({ description: 'Requested checkpoints in the window.', minimum: 0 }),
      seconds: Type.Integer({ description: 'How long the window was.', minimum: 0 }),
      forced: Type.Boolean({ description: 'Whether requested checkpoints reached checkpointsRequestedPercent.' }),
      closedAt: Type.String({ description: 'When it was judged.', format: 'date-time' }),
    }),
  ),
  maxWalSize: Type.Optional(
    Obj('max_wal_size as raised by the raiseMaxWalSize correction (above the tuned value, below spec.postgresql.parameters).', {
      value: Type.String({ description: 'The value every instance runs, e.g. "512MB".', maxLength: 32 }),
      reason: Type.String({ description: 'Why.', maxLength: 1024 }),
      since: Type.String({ description: 'When it was last raised.', format: 'date-time' }),
    }),
  ),
  corrections: Type.Optional(Type.Array(Correction, { description: 'The latest corrections, newest last (at most 10).', maxItems: 10 })),
});

export type AnomaliesStatus = Static<typeof AnomaliesStatusSchema>;
