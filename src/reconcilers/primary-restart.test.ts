// A primary restarted in place (primary-restart.ts): the hold is recorded before any permit is
// asked for, the permit ends before the hold, and the record lasts until the primary is back.
import { describe, expect, it } from 'vitest';
import { AgentError, type AgentClient } from '../instance/agent-client.js';
import { HOLD_MS, MARGIN_MS, heldUntil, primaryRestartStep } from './primary-restart.js';
import type { RolloutInstance, RolloutPlan } from './rollout-plan.js';
import type { ReconcileContext } from './types.js';

const NOW = Date.parse('2026-12-04T12:00:00Z');
const log = { info: () => {}, warn: () => {} };

function ctx(primaryRestart?: { instance: string; until: string }): ReconcileContext {
  return {
    status: { rollout: primaryRestart ? { updated: 2, total: 3, primaryRestart } : undefined },
    observed: { agentToken: 't', isolationSeconds: 30, instances: [{ name: 'db-1', podIP: '127.0.0.9' }] },
    log,
  } as unknown as ReconcileContext;
}

function agent(answer: (seconds: number) => Promise<{ until: string }>): AgentClient & { asked: number[] } {
  const asked: number[] = [];
  return { asked, restartPermit: async (_ep: unknown, req: { seconds: number }) => (asked.push(req.seconds), answer(req.seconds)) } as unknown as AgentClient & { asked: number[] };
}

const inPlace: RolloutPlan = { update: ['db-1'], primaryInPlace: true, done: 0, total: 3, condition: { type: 'RollingUpdate', status: 'True', reason: 'RollingUpdate', message: '' } };
const iso = (ms: number) => new Date(ms).toISOString();
const granted = agent(async (s) => ({ until: iso(NOW + s * 1000) }));

describe('primaryRestartStep', () => {
  it('first records the hold and replaces nothing; asks no permit yet', async () => {
    const a = agent(async () => ({ until: '' }));
    const step = await primaryRestartStep(ctx(), a, inPlace, [], NOW);
    expect(step).toMatchObject({ proceed: false, record: { instance: 'db-1', until: iso(NOW + HOLD_MS) } });
    expect(step.waiting).toContain('holding failover of db-1 back');
    expect(a.asked).toEqual([]);
  });

  it('with the hold read back, asks for a permit ending MARGIN_MS before it, and proceeds', async () => {
    const a = agent(async (s) => ({ until: iso(NOW + s * 1000) }));
    const step = await primaryRestartStep(ctx({ instance: 'db-1', until: iso(NOW + HOLD_MS) }), a, inPlace, [], NOW);
    expect(step).toMatchObject({ proceed: true, record: { instance: 'db-1' } });
    expect(a.asked).toEqual([(HOLD_MS - MARGIN_MS) / 1000]);
  });

  it('renews a hold that is about to end, or one for another instance, before anything restarts', async () => {
    for (const record of [{ instance: 'db-1', until: iso(NOW + 10_000) }, { instance: 'db-2', until: iso(NOW + HOLD_MS) }]) {
      const step = await primaryRestartStep(ctx(record), granted, inPlace, [], NOW);
      expect(step).toMatchObject({ proceed: false, record: { instance: 'db-1', until: iso(NOW + HOLD_MS) } });
    }
  });

  it('a refused permit holds the restart and says why; an agent without the call is restarted anyway unless the change lowers a standby minimum', async () => {
    const record = { instance: 'db-1', until: iso(NOW + HOLD_MS) };
    const refused = await primaryRestartStep(ctx(record), agent(async () => Promise.reject(new AgentError(409, 'HTTP 409: the instance is fenced'))), inPlace, [], NOW);
    expect(refused).toMatchObject({ proceed: false });
    expect(refused.waiting).toContain('gave no restart permit');
    const old = agent(async () => Promise.reject(new AgentError(404, 'no route')));
    expect((await primaryRestartStep(ctx(record), old, inPlace, [], NOW)).proceed).toBe(true);
    expect((await primaryRestartStep(ctx(record), old, { ...inPlace, lowered: ['max_connections'] }, [], NOW)).proceed).toBe(false);
  });

  it('keeps the record while the primary comes back, and drops it once it is settled on the new template or the hold ended', async () => {
    const record = { instance: 'db-1', until: iso(NOW + HOLD_MS) };
    const waiting: RolloutPlan = { ...inPlace, update: [], primaryInPlace: undefined };
    const back = (over: Partial<RolloutInstance>): RolloutInstance[] => [{ name: 'db-1', outdated: false, ready: true, settled: true, ...over }];
    expect((await primaryRestartStep(ctx(record), granted, waiting, back({ updating: true, ready: false, settled: false }), NOW)).record).toEqual(record);
    expect((await primaryRestartStep(ctx(record), granted, waiting, back({}), NOW)).record).toBeUndefined();
    expect((await primaryRestartStep(ctx(record), granted, waiting, back({ settled: false }), NOW + HOLD_MS)).record).toBeUndefined();
  });

  it('heldUntil: only for its instance and before its time', () => {
    const record = { instance: 'db-1', until: iso(NOW + 1000) };
    expect(heldUntil(record, 'db-1', NOW)).toBe(NOW + 1000);
    expect(heldUntil(record, 'db-2', NOW)).toBeUndefined();
    expect(heldUntil(record, 'db-1', NOW + 1000)).toBeUndefined();
    expect(heldUntil(undefined, 'db-1', NOW)).toBeUndefined();
  });
});
