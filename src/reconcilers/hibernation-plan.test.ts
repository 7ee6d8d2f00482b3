import { describe, expect, it } from 'vitest';
import { haHeldByHibernation, hibernationDirective, planHibernation, type HibernationInput } from './hibernation-plan.js';
import type { UpgradeInstance } from './major-upgrade-plan.js';

const NOW = new Date('2026-12-05T03:00:00Z');
const up = (name: string, role: 'primary' | 'replica'): UpgradeInstance => ({ name, pod: true, phase: 'Running', role, running: true, streaming: role === 'replica' });
const input = (over: Partial<HibernationInput> = {}): HibernationInput => ({
  requested: true,
  previous: undefined,
  primary: 'db-1',
  instances: [up('db-1', 'primary'), up('db-2', 'replica')],
  upgrading: false,
  now: NOW,
  ...over,
});

describe('planHibernation', () => {
  it('a running cluster stays awake while not asked', () => {
    const plan = planHibernation(input({ requested: false }));
    expect(plan).toMatchObject({ status: undefined, actions: [], condition: { type: 'Hibernated', status: 'False', reason: 'Awake' } });
  });

  it('hibernates: a checkpoint and the fence of the primary first, then waits for every pod to go', () => {
    const start = planHibernation(input());
    expect(start.status).toEqual({ phase: 'Hibernating', primary: 'db-1', since: NOW.toISOString() });
    expect(start.actions).toEqual([{ kind: 'checkpoint', instance: 'db-1' }, { kind: 'fence', instance: 'db-1' }]);
    expect(planHibernation(input({ previous: start.status })).condition.message).toContain('still running: db-1, db-2');
    const done = planHibernation(input({ previous: start.status, instances: [{ name: 'db-1', pod: false }, { name: 'db-2', pod: false }] }));
    expect(done.status?.phase).toBe('Hibernated');
    expect(done.condition).toMatchObject({ status: 'True', reason: 'Hibernated' });
    expect(done.event?.reason).toBe('Hibernated');
  });

  it('waits to begin while an instance is fenced, and says so', () => {
    const p = planHibernation(input({ fenced: ['db-2'] }));
    expect(p).toMatchObject({ status: undefined, actions: [], condition: { status: 'False', reason: 'WaitingForUnfence' } });
    expect(p.condition.message).toContain('once no instance is fenced (db-2');
  });

  it('waits for a major upgrade under way', () => {
    expect(planHibernation(input({ upgrading: true }))).toMatchObject({ status: undefined, actions: [], condition: { reason: 'WaitingForUpgrade' } });
  });

  it('wakes the same primary: unfenced once its pod runs, done when it accepts writes', () => {
    const asleep = { phase: 'Hibernated' as const, primary: 'db-1', since: NOW.toISOString() };
    const starting = planHibernation(input({ requested: false, previous: asleep, instances: [{ name: 'db-1', pod: true }] }));
    expect(starting.status?.phase).toBe('Waking');
    expect(starting.event?.reason).toBe('Waking');
    const fenced = planHibernation(input({ requested: false, previous: starting.status, instances: [{ name: 'db-1', pod: true, phase: 'Fenced' }] }));
    expect(fenced.actions).toEqual([{ kind: 'unfence', instance: 'db-1' }]);
    // Started read-only (a former primary): ha confirms it; until then it is not awake.
    const readOnly = planHibernation(input({ requested: false, previous: starting.status, instances: [{ ...up('db-1', 'replica') }] }));
    expect(readOnly.status?.phase).toBe('Waking');
    const awake = planHibernation(input({ requested: false, previous: starting.status, primary: 'db-2', instances: [up('db-1', 'primary')] }));
    expect(awake.status).toBeUndefined();
    expect(awake.condition).toMatchObject({ status: 'False', reason: 'Awake' });
  });

  it('directs the StatefulSets: same template, 0 replicas asleep, 1 waking; ha held until waking', () => {
    expect(hibernationDirective(undefined)).toBeUndefined();
    expect(hibernationDirective({ phase: 'Hibernated', since: '' })).toEqual({ image: 'hold', running: false });
    expect(hibernationDirective({ phase: 'Waking', since: '' })).toEqual({ image: 'hold', running: true });
    expect([haHeldByHibernation(undefined), haHeldByHibernation({ phase: 'Hibernating', since: '' }), haHeldByHibernation({ phase: 'Waking', since: '' })]).toEqual([false, true, false]);
  });
});
