import { describe, expect, it } from 'vitest';
import { planFencing, type FencingInput, type FencingInstance } from './fencing-plan.js';

const running = (name: string): FencingInstance => ({ name, agent: { fenced: false, fencing: false, running: true } });
const fenced = (name: string): FencingInstance => ({ name, agent: { fenced: true, fencing: false, running: false } });
const stopping = (name: string): FencingInstance => ({ name, agent: { fenced: true, fencing: true, running: false } });

function input(over: Partial<FencingInput> = {}): FencingInput {
  return { annotation: undefined, instanceNames: ['db-1', 'db-2'], previous: undefined, instances: [running('db-1'), running('db-2')], primary: 'db-1', ...over };
}

describe('planFencing', () => {
  it('nothing asked: nothing fenced, and the condition says so', () => {
    const p = planFencing(input());
    expect(p).toMatchObject({ fenced: [], actions: [], events: [], condition: { type: 'Fenced', status: 'False', reason: 'NoneFenced' } });
    expect(planFencing(input({ annotation: '[]' })).fenced).toEqual([]);
  });

  it('fences a replica: the call, the status list, an Event once, the condition naming it', () => {
    const p = planFencing(input({ annotation: '["db-2"]' }));
    expect(p.actions).toEqual([{ kind: 'fence', instance: 'db-2' }]);
    expect(p.fenced).toEqual(['db-2']);
    expect(p.events).toEqual([expect.objectContaining({ type: 'Normal', reason: 'Fencing' })]);
    expect(p.condition).toMatchObject({ status: 'True', reason: 'InstancesFenced' });
    expect(p.condition.message).toContain('db-2 (stopping)');
    // Stopping: no second call; stopped: steady, no Event, no requeue.
    expect(planFencing(input({ annotation: '["db-2"]', previous: ['db-2'], instances: [running('db-1'), stopping('db-2')] })).actions).toEqual([]);
    const steady = planFencing(input({ annotation: '["db-2"]', previous: ['db-2'], instances: [running('db-1'), fenced('db-2')] }));
    expect(steady).toMatchObject({ actions: [], events: [], fenced: ['db-2'] });
    expect(steady.requeueAfterMs).toBeUndefined();
    expect(steady.condition.message).toContain('db-2 (fenced)');
  });

  it('an instance whose agent does not answer is fenced once it does', () => {
    const p = planFencing(input({ annotation: '["db-2"]', instances: [running('db-1'), { name: 'db-2' }] }));
    expect(p).toMatchObject({ actions: [], fenced: ['db-2'] });
    expect(p.condition.message).toContain('fenced when its agent answers');
  });

  it('fencing the primary says the cluster has no writable primary', () => {
    const p = planFencing(input({ annotation: '["db-1"]' }));
    expect(p.actions).toEqual([{ kind: 'fence', instance: 'db-1' }]);
    expect(p.events[0]!.message).toContain('no failover while it is fenced');
    expect(p.condition.message).toContain('the cluster has no writable primary');
  });

  it('unfences: the call, the name kept until the agent has lifted the fence, then an Event', () => {
    const asked = planFencing(input({ annotation: '[]', previous: ['db-2'], instances: [running('db-1'), fenced('db-2')] }));
    expect(asked).toMatchObject({ actions: [{ kind: 'unfence', instance: 'db-2' }], fenced: ['db-2'], events: [] });
    expect(asked.condition.message).toContain('db-2 (unfencing)');
    const done = planFencing(input({ previous: ['db-2'], instances: [running('db-1'), { name: 'db-2', agent: { fenced: false, fencing: false, running: false } }] }));
    expect(done).toMatchObject({ actions: [], fenced: [], condition: { status: 'False', reason: 'NoneFenced' } });
    expect(done.events).toEqual([expect.objectContaining({ type: 'Normal', reason: 'Unfenced' })]);
    // No answer yet: kept, nothing called.
    expect(planFencing(input({ previous: ['db-2'], instances: [running('db-1'), { name: 'db-2' }] }))).toMatchObject({ actions: [], fenced: ['db-2'] });
  });

  it('an invalid annotation fences and unfences nothing, says why with a Warning once', () => {
    for (const [annotation, why] of [
      ['db-2', 'not valid JSON'],
      ['{"db-2":true}', 'not an array of strings'],
      ['["db-2", 3]', 'not an array of strings'],
      ['["db-9"]', 'db-9 is not an instance of this cluster'],
    ] as const) {
      const p = planFencing(input({ annotation, previous: ['db-1'], instances: [fenced('db-1'), running('db-2')] }));
      expect(p.actions).toEqual([]);
      expect(p.fenced).toEqual(['db-1']);
      expect(p.condition).toMatchObject({ type: 'Fenced', status: 'Unknown', reason: 'InvalidFencingAnnotation' });
      expect(p.condition.message).toContain(`annotation postgres.pgpilot.io/fenced-instances is ${JSON.stringify(annotation)}: ${why}`);
      expect(p.condition.message).toContain('it must be a JSON array of instance names of this cluster (db-1, db-2)');
      expect(p.condition.message).toContain('still fenced: db-1');
      expect(p.events).toEqual([expect.objectContaining({ type: 'Warning', reason: 'InvalidFencingAnnotation' })]);
      // The same problem again: no second Event.
      expect(planFencing(input({ annotation, previous: ['db-1'], instances: [fenced('db-1'), running('db-2')], previousCondition: p.condition })).events).toEqual([]);
    }
  });

  it('held by hibernation or an upgrade: nothing changes, the condition says the change waits', () => {
    const p = planFencing(input({ annotation: '["db-2"]', held: 'the cluster hibernates' }));
    expect(p).toMatchObject({ actions: [], fenced: [], events: [], condition: { status: 'False', reason: 'NoneFenced' } });
    expect(p.condition.message).toContain('the change asked for (["db-2"]) waits');
  });

  it('an instance the cluster no longer has leaves the list', () => {
    expect(planFencing(input({ previous: ['db-3'] })).fenced).toEqual([]);
  });
});
