import { describe, expect, it } from 'vitest';
import { effectiveInstances, minimumInstances, paceCreation, planInstances } from './instance-plan.js';
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

describe('minimumInstances / effectiveInstances (synchronous commit)', () => {
  const ha = (synchronousCommit: boolean, synchronousReplicas = 1) => ({ synchronousCommit, synchronousReplicas });

  it('is the primary plus the synchronous replicas when synchronous commit is on, else 1', () => {
    expect(minimumInstances(ha(false, 3))).toBe(1);
    expect(minimumInstances(ha(true, 1))).toBe(2);
    expect(minimumInstances(ha(true, 3))).toBe(4);
  });

  it('holds spec.instances below the minimum at the minimum, and says so', () => {
    expect(effectiveInstances(1, ha(true, 1))).toEqual({ desired: 2, heldAt: 2 });
    expect(effectiveInstances(2, ha(true, 2))).toEqual({ desired: 3, heldAt: 3 });
    expect(effectiveInstances(2, ha(true, 1))).toEqual({ desired: 2 });
    expect(effectiveInstances(1, ha(false))).toEqual({ desired: 1 });
  });
});

describe('paceCreation (one new instance at a time)', () => {
  const inst = (...ordinals: number[]) => ordinals.map((o) => names.instance('db', o));
  const none = new Set<string>();

  it('creates every instance of a new cluster at once (not paced)', () => {
    const plan = planInstances('db', [], 3);
    expect(paceCreation(plan, new Set(inst(1, 2, 3)), false)).toEqual({ plan, deferred: [], waitingFor: [] });
  });

  it('creates only the lowest new instance when every kept one is ready', () => {
    const paced = paceCreation(planInstances('db', inst(1, 2), 4, 'db-1'), none, true);
    expect(paced.plan.create).toEqual(inst(3));
    expect(paced.deferred).toEqual(inst(4));
    expect(paced.waitingFor).toEqual([]);
    expect(paced.plan.keep).toEqual(inst(1, 2));
  });

  it('creates nothing while a kept instance is not ready (a replica still cloning)', () => {
    const paced = paceCreation(planInstances('db', inst(1, 2, 3), 4, 'db-1'), new Set(inst(3)), true);
    expect(paced.plan.create).toEqual([]);
    expect(paced.deferred).toEqual(inst(4));
    expect(paced.waitingFor).toEqual(inst(3));
  });

  it('never holds back a scale-down, and never removes the primary on it', () => {
    const paced = paceCreation(planInstances('db', inst(1, 2, 3, 4), 2, 'db-4'), new Set(inst(3)), true);
    expect(paced.plan.remove).toEqual(inst(3, 2));
    expect(paced.plan.keep).toEqual(inst(1, 4));
    expect(paced.deferred).toEqual([]);
  });

  it('scaling 2 → 4 step by step: one clone at a time, the primary kept throughout', () => {
    let existing = inst(1, 2);
    const notReady = new Set<string>();
    const created: string[][] = [];
    for (let pass = 0; pass < 6; pass++) {
      const { plan } = paceCreation(planInstances('db', existing, 4, 'db-1'), notReady, true);
      expect(plan.create.length).toBeLessThanOrEqual(1);
      expect(plan.keep).toContain('db-1');
      if (plan.create.length) created.push(plan.create);
      // A new instance is created not ready; it is ready by the next-but-one pass.
      notReady.clear();
      for (const n of plan.create) notReady.add(n);
      existing = [...plan.keep, ...plan.create];
      if (pass % 2 === 1) notReady.clear();
    }
    expect(created).toEqual([inst(3), inst(4)]);
    expect(existing.sort()).toEqual(inst(1, 2, 3, 4));
  });
});
