import { describe, expect, it } from 'vitest';
import { planInstances } from './instance-plan.js';
import { instanceOrdinal, names } from '../api/names.js';

describe('planInstances', () => {
  const inst = (...ordinals: number[]) => ordinals.map((o) => names.instance('db', o));

  it('creates instances 1..n for a new cluster', () => {
    expect(planInstances('db', [], 3)).toEqual({ keep: [], create: inst(1, 2, 3), remove: [] });
  });

  it('changes nothing when the count matches', () => {
    expect(planInstances('db', inst(1, 2, 3), 3, 'db-1')).toEqual({ keep: inst(1, 2, 3), create: [], remove: [] });
  });

  it('scales up into the lowest free ordinals, filling gaps first', () => {
    expect(planInstances('db', inst(1, 3), 4)).toEqual({ keep: inst(1, 3), create: inst(2, 4), remove: [] });
    expect(planInstances('db', inst(2, 5), 3)).toEqual({ keep: inst(2, 5), create: inst(1), remove: [] });
  });

  it('scales down from the highest ordinal first', () => {
    expect(planInstances('db', inst(1, 2, 3, 4, 5), 3, 'db-1')).toEqual({ keep: inst(1, 2, 3), create: [], remove: inst(5, 4) });
  });

  it('never removes the primary, even when it has the highest ordinal', () => {
    expect(planInstances('db', inst(1, 2, 3), 2, 'db-3')).toEqual({ keep: inst(1, 3), create: [], remove: inst(2) });
    expect(planInstances('db', inst(1, 2, 3), 1, 'db-2')).toEqual({ keep: inst(2), create: [], remove: inst(3, 1) });
  });

  it('ignores names that are not instances of this cluster', () => {
    expect(planInstances('db', ['db-1', 'db-replica', 'other-1', 'db-1-2'], 1)).toEqual({ keep: inst(1), create: [], remove: [] });
  });

  it('holds its invariants for every set of ordinals 1..6, size 1..6 and choice of primary', () => {
    const subsets = Array.from({ length: 64 }, (_, mask) => [1, 2, 3, 4, 5, 6].filter((o) => mask & (1 << (o - 1))));
    for (const existing of subsets) {
      for (const desired of [1, 2, 3, 4, 5, 6]) {
        for (const primaryOrdinal of [undefined, ...existing]) {
          const primary = primaryOrdinal === undefined ? undefined : names.instance('db', primaryOrdinal);
          const plan = planInstances('db', inst(...existing), desired, primary);
          const label = `existing=${existing} desired=${desired} primary=${primary}`;
          const after = [...plan.keep, ...plan.create].map((n) => instanceOrdinal('db', n)!);
          expect(after.length, label).toBe(desired);
          expect(new Set(after).size, label).toBe(desired);
          expect([...plan.keep, ...plan.remove].sort(), label).toEqual(inst(...existing).sort());
          if (primary) expect(plan.keep, label).toContain(primary);
          // Removed: the highest ordinals other than the primary, highest first.
          const removable = existing.filter((o) => o !== primaryOrdinal).sort((a, b) => b - a);
          expect(plan.remove, label).toEqual(inst(...removable.slice(0, plan.remove.length)));
          // Created: the lowest ordinals not in use.
          const free = [1, 2, 3, 4, 5, 6, 7].filter((o) => !existing.includes(o));
          expect(plan.create, label).toEqual(inst(...free.slice(0, plan.create.length)));
        }
      }
    }
  });
});
