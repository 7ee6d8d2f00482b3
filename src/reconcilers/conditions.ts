// The cluster's conditions: each type has exactly one owning reconciler (docs/adr), so two
// reconcilers can never fight over one. Merging keeps lastTransitionTime unless the status changes;
// a condition whose owner did not evaluate it this pass turns Unknown with a reason rather than
// keeping a value nobody checked; and the Events a person watches come from the transitions,
// here and nowhere else.
import type { Condition } from '../api/cluster.js';
import { rfc3339 } from '../runtime/time.js';

/** Every condition type and the reconciler that owns it. */
export const CONDITION_OWNERS = {
  Ready: 'status',
  Progressing: 'status',
  Degraded: 'status',
  PrimaryAvailable: 'ha',
  ReplicasStreaming: 'ha',
  ContinuousArchiving: 'backup',
  LastBackupSucceeded: 'backup',
  StorageAutoGrowing: 'autopilot',
  StorageFull: 'autopilot',
  RollingUpdate: 'rollout',
  Upgrading: 'upgrade',
  Hibernated: 'hibernation',
  Fenced: 'fencing',
  MonitoringQueriesValid: 'monitoring',
  // Anomalies (anomalies.ts): True while present.
  XidWraparoundRisk: 'anomalies',
  LongTransactions: 'anomalies',
  ReplicationLagging: 'anomalies',
  SlotRetainingWal: 'anomalies',
  WalGrowingArchiveFailing: 'anomalies',
  ConnectionsNearLimit: 'anomalies',
  CheckpointsForced: 'anomalies',
  Autoscaling: 'autoscaling',
  PasswordsApplied: 'passwords',
} as const;

export type ConditionType = keyof typeof CONDITION_OWNERS;
export type ConditionStatus = 'True' | 'False' | 'Unknown';

export interface ConditionInput {
  type: ConditionType;
  status: ConditionStatus;
  reason: string;
  message: string;
}

/** The condition types a reconciler owns (in a stable order). */
export function conditionsOwnedBy(reconciler: string): ConditionType[] {
  return (Object.keys(CONDITION_OWNERS) as ConditionType[]).filter((t) => CONDITION_OWNERS[t] === reconciler);
}

/** A condition its owner did not evaluate this pass: Unknown, saying why. */
export function notEvaluated(type: ConditionType, reason: string, why: string): ConditionInput {
  return { type, status: 'Unknown', reason, message: `Not evaluated in the last pass: ${why}` };
}

export function mergeConditions(previous: Condition[] | undefined, updates: ConditionInput[], generation: number | undefined, now: Date): Condition[] {
  const byType = new Map((previous ?? []).map((c) => [c.type, c] as const));
  for (const u of updates) {
    const old = byType.get(u.type);
    byType.set(u.type, {
      type: u.type,
      status: u.status,
      reason: u.reason,
      message: u.message,
      lastTransitionTime: old && old.status === u.status ? old.lastTransitionTime : rfc3339(now),
      ...(generation !== undefined ? { observedGeneration: generation } : {}),
    });
  }
  return [...byType.values()].sort((a, b) => a.type.localeCompare(b.type));
}

export function findCondition(conditions: Condition[] | undefined, type: ConditionType): Condition | undefined {
  return conditions?.find((c) => c.type === type);
}

export interface ConditionEvent {
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
}

/**
 * Conditions whose transitions a person should hear about: the status that means trouble, and the
 * reason of the Event when the trouble ends. Entering trouble (or trouble changing its reason)
 * is a Warning with the condition's own reason and message.
 */
interface Watch {
  trouble: ConditionStatus;
  recovered: string;
  recoveredMessage?: string;
  /** Reasons that are a choice, not trouble (backups switched off): no Event either way. */
  chosen?: string[];
  /** The recovery Event also says what the trouble was (each occurrence is its own Event, not a repeat the recorder drops). */
  recalled?: boolean;
}
const WATCHED: Partial<Record<ConditionType, Watch>> = {
  Degraded: { trouble: 'True', recovered: 'Recovered', recoveredMessage: 'The problem reported earlier is resolved' },
  ContinuousArchiving: { trouble: 'False', recovered: 'ArchivingResumed', chosen: ['BackupDisabled'] },
  MonitoringQueriesValid: { trouble: 'False', recovered: 'CustomQueriesValid', recoveredMessage: 'The custom exporter queries reported earlier load and run again' },
  ...Object.fromEntries(
    (['XidWraparoundRisk', 'LongTransactions', 'ReplicationLagging', 'SlotRetainingWal', 'WalGrowingArchiveFailing', 'ConnectionsNearLimit', 'CheckpointsForced'] as const).map((t) => [t, { trouble: 'True', recovered: `${t}Cleared`, recalled: true }]),
  ),
  StorageFull: { trouble: 'True', recovered: 'StorageRoomAgain', recoveredMessage: 'Every volume is below its threshold or can grow again' },
  Autoscaling: { trouble: 'False', recovered: 'AutoscalingActive', chosen: ['NotConfigured'] },
};

/** The Events for the transitions between two sets of conditions (pure). Unknown is no transition. */
export function conditionEvents(before: Condition[] | undefined, after: Condition[]): ConditionEvent[] {
  const out: ConditionEvent[] = [];
  for (const [type, watch] of Object.entries(WATCHED) as Array<[ConditionType, Watch]>) {
    const now = findCondition(after, type);
    const was = findCondition(before, type);
    if (!now || now.status === 'Unknown') continue;
    const troubled = (c: Condition | undefined) => c?.status === watch.trouble && !watch.chosen?.includes(c.reason);
    if (troubled(now) && (!troubled(was) || was!.reason !== now.reason)) {
      out.push({ type: 'Warning', reason: now.reason, message: now.message });
    } else if (now.status !== watch.trouble && troubled(was)) {
      const message = watch.recoveredMessage ?? now.message;
      out.push({ type: 'Normal', reason: watch.recovered, message: watch.recalled ? `${message} (it was: ${was!.message})` : message });
    }
  }
  return out;
}
