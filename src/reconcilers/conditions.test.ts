import { describe, expect, it } from 'vitest';
import type { Condition } from '../api/cluster.js';
import { findCondition, mergeConditions } from './conditions.js';

describe('mergeConditions', () => {
  const t0 = new Date('2024-05-01T10:00:00.123Z');
  const t1 = new Date('2024-05-01T11:00:00.456Z');
  const ready = (status: 'True' | 'False', reason = 'R', message = 'm') => ({ type: 'Ready', status, reason, message });

  it('stamps new conditions with the time (whole seconds) and generation', () => {
    expect(mergeConditions(undefined, [ready('True')], 3, t0)).toEqual([{ ...ready('True'), lastTransitionTime: '2024-05-01T10:00:00Z', observedGeneration: 3 }]);
  });

  it('keeps lastTransitionTime while the status stays, even as reason and message change', () => {
    const before = mergeConditions(undefined, [ready('False', 'A', 'first')], 1, t0);
    const after = mergeConditions(before, [ready('False', 'B', 'second')], 2, t1);
    expect(after).toEqual([{ ...ready('False', 'B', 'second'), lastTransitionTime: '2024-05-01T10:00:00Z', observedGeneration: 2 }]);
  });

  it('moves lastTransitionTime when the status changes', () => {
    const before = mergeConditions(undefined, [ready('False')], 1, t0);
    expect(findCondition(mergeConditions(before, [ready('True')], 1, t1), 'Ready')?.lastTransitionTime).toBe('2024-05-01T11:00:00Z');
  });

  it('keeps conditions it was not given, and sorts by type', () => {
    const previous: Condition[] = [{ type: 'Zeta', status: 'True', reason: 'Z', message: 'z', lastTransitionTime: '2024-01-01T00:00:00Z' }];
    const merged = mergeConditions(previous, [ready('True'), { type: 'Degraded', status: 'False', reason: 'D', message: 'd' }], 1, t0);
    expect(merged.map((c) => c.type)).toEqual(['Degraded', 'Ready', 'Zeta']);
    expect(findCondition(merged, 'Zeta')).toEqual(previous[0]);
  });

  it('omits observedGeneration without a generation', () => {
    expect(mergeConditions(undefined, [ready('True')], undefined, t0)[0]).not.toHaveProperty('observedGeneration');
  });
});
