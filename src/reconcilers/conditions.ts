// Merging conditions: lastTransitionTime moves only when a condition's status changes.
import type { Condition } from '../api/cluster.js';
import type { ConditionInput } from './types.js';
import { rfc3339 } from '../runtime/time.js';

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

export function findCondition(conditions: Condition[] | undefined, type: string): Condition | undefined {
  return conditions?.find((c) => c.type === type);
}
