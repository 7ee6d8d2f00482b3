import { describe, expect, it } from 'vitest';
import { planRollout, type RolloutInput, type RolloutInstance } from './rollout-plan.js';

/** db-1 primary, db-2 and db-3 replicas; `outdated` names those on the old template. */
function input(outdated: string[], over: Partial<RolloutInput> = {}, states: Record<string, Partial<RolloutInstance>> = {}): RolloutInput {
  const instances = ['db-1', 'db-2', 'db-3'].map((name) => ({ name, outdated: outdated.includes(name), ready: true, settled: true, ...states[name] }));
  return { instances, primary: 'db-1', primaryUpdateMethod: 'switchover', primaryUpdateStrategy: 'unsupervised', ...over };
}

describe('planRollout', () => {
  it('does nothing when every instance runs the current template', () => {
    const p = planRollout(input([]));
    expect(p).toMatchObject({ update: [], done: 3, total: 3, condition: { type: 'RollingUpdate', status: 'False', reason: 'UpToDate' } });
    expect(p.switchoverTo).toBeUndefined();
  });

  it('updates replicas first, one at a time, the lowest first', () => {
    expect(planRollout(input(['db-1', 'db-2', 'db-3']))).toMatchObject({ update: ['db-2'], done: 0, condition: { status: 'True', reason: 'RollingUpdate' } });
    expect(planRollout(input(['db-1', 'db-3'])).update).toEqual(['db-3']);
  });

  it('waits while an updated instance comes back (not ready, or a replica not streaming yet)', () => {
    const notBack = planRollout(input(['db-1', 'db-3'], {}, { 'db-2': { ready: false, settled: false } }));
    expect(notBack.update).toEqual([]);
    expect(notBack.condition.message).toContain('waiting for db-2');
    const notStreaming = planRollout(input(['db-1', 'db-3'], {}, { 'db-2': { settled: false } }));
    expect(notStreaming.update).toEqual([]);
  });

  it('then switches over to an updated, streaming replica, and updates the old primary as a replica', () => {
    const p = planRollout(input(['db-1']));
    expect(p).toMatchObject({ update: [], switchoverTo: 'db-2', done: 2 });
    expect(p.condition.message).toContain('switching over from db-1 to db-2');
    // After the switchover db-2 is primary: db-1 is an outdated replica now.
    expect(planRollout(input(['db-1'], { primary: 'db-2' })).update).toEqual(['db-1']);
  });

  it('restarts the primary in place with primaryUpdateMethod restart, or when no updated replica can take over', () => {
    expect(planRollout(input(['db-1'], { primaryUpdateMethod: 'restart' }))).toMatchObject({ update: ['db-1'], primaryInPlace: true });
    const single = planRollout({ ...input([]), instances: [{ name: 'db-1', outdated: true, ready: true, settled: true }] });
    expect(single).toMatchObject({ update: ['db-1'], done: 0, total: 1 });
  });

  it('stops before the primary when supervised, and says what to do', () => {
    const p = planRollout(input(['db-1'], { primaryUpdateStrategy: 'supervised' }));
    expect(p).toMatchObject({ update: [], condition: { reason: 'WaitingForUser' } });
    expect(p.switchoverTo).toBeUndefined();
    expect(p.condition.message).toContain('set spec.primary');
  });

  it('updates an outdated instance that is not ready at once (a crashed pod, or a broken template fixed since)', () => {
    const p = planRollout(input(['db-1', 'db-2', 'db-3'], {}, { 'db-3': { ready: false, settled: false } }));
    expect(p.update).toEqual(['db-3']);
  });

  it('counts an instance whose pod is being replaced as not done, and waits for it, also after the last step', () => {
    const last = planRollout(input([], {}, { 'db-1': { updating: true, ready: false, settled: false } }));
    expect(last).toMatchObject({ update: [], done: 2, condition: { status: 'True', reason: 'RollingUpdate' } });
    expect(last.condition.message).toContain('waiting for db-1');
    expect(planRollout(input(['db-1', 'db-3'], {}, { 'db-2': { updating: true, ready: false, settled: false } })).update).toEqual([]);
  });

  it('restarts the primary first, in place, when the change lowers a setting replicas need at least as high; then the replicas', () => {
    const first = planRollout(input(['db-1', 'db-2', 'db-3'], { lowered: ['max_connections'] }));
    expect(first).toMatchObject({ update: ['db-1'], primaryInPlace: true, done: 0, condition: { status: 'True', reason: 'RollingUpdate' } });
    expect(first.switchoverTo).toBeUndefined();
    expect(first.condition.message).toContain('restarting the primary db-1 in place first: the change lowers max_connections');
    // Whatever primaryUpdateMethod says: a switchover would put a lowered replica first.
    expect(planRollout(input(['db-1', 'db-2'], { lowered: ['max_connections'], primaryUpdateMethod: 'switchover' })).update).toEqual(['db-1']);
    // The primary came back on the new template: the replicas follow, one at a time.
    expect(planRollout(input(['db-2', 'db-3'], { lowered: ['max_connections'] }))).toMatchObject({ update: ['db-2'] });
    expect(planRollout(input(['db-2', 'db-3'], { lowered: ['max_connections'] }, { 'db-1': { settled: false } })).update).toEqual([]);
  });

  it('supervised: a lowering waits before the primary restart, and says how to let it go', () => {
    const p = planRollout(input(['db-1', 'db-2', 'db-3'], { lowered: ['max_wal_senders'], primaryUpdateStrategy: 'supervised' }));
    expect(p).toMatchObject({ update: [], condition: { reason: 'WaitingForUser' } });
    expect(p.condition.message).toContain('set it to unsupervised');
  });

  it('only the primary restarted (restart-instances): a switchover first, never in place while a replica can take over', () => {
    const two = (states: Record<string, Partial<RolloutInstance>> = {}): RolloutInput => ({ ...input(['db-1']), instances: input(['db-1'], {}, states).instances.slice(0, 2) });
    expect(planRollout(two())).toMatchObject({ update: [], switchoverTo: 'db-2' });
    // The replica is not streaming for a moment: wait for it rather than restart the primary in place.
    const waiting = planRollout(two({ 'db-2': { settled: false } }));
    expect(waiting).toMatchObject({ update: [] });
    expect(waiting.primaryInPlace).toBeUndefined();
    expect(waiting.switchoverTo).toBeUndefined();
  });

  it('holds while an instance is fenced, and says so; even a fenced instance that is not ready is not restarted', () => {
    const p = planRollout(input(['db-1', 'db-2', 'db-3'], { fenced: ['db-3'] }, { 'db-3': { ready: false, settled: false } }));
    expect(p).toMatchObject({ update: [], condition: { status: 'True', reason: 'HeldByFence' } });
    expect(p.switchoverTo).toBeUndefined();
    expect(p.condition.message).toContain('held while db-3 is fenced');
    expect(planRollout(input([], { fenced: ['db-3'] })).condition.reason).toBe('UpToDate');
  });

  it('resumes from what it sees after a failover in the middle', () => {
    // db-2 was updated, then db-1 (old template) failed and db-3 (old template) became primary.
    const p = planRollout(input(['db-1', 'db-3'], { primary: 'db-3' }));
    expect(p.update).toEqual(['db-1']);
  });
});
