// The one phase setter (phase.ts): transitions, guarded transitions, and their log lines.
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { PhaseState } from './phase.js';

/** A PhaseState whose log lines land in `lines`. */
function recorded() {
  const lines: Array<Record<string, unknown>> = [];
  const log = pino({ base: null, timestamp: false }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
  return { phase: new PhaseState(log), lines };
}

describe('PhaseState', () => {
  it('starts in Starting and logs each transition once, with where from and why', () => {
    const { phase, lines } = recorded();
    expect(phase.current).toBe('Starting');
    expect(phase.setPhase('Running', 'postgres is ready')).toBe(true);
    expect(phase.current).toBe('Running');
    expect(lines).toEqual([{ level: 30, phase: 'Running', from: 'Starting', why: 'postgres is ready', msg: 'phase Running' }]);
  });

  it('does not log a move to the phase it is in', () => {
    const { phase, lines } = recorded();
    expect(phase.setPhase('Starting', 'again')).toBe(false);
    expect(lines).toEqual([]);
  });

  it('moves only from the phases named, when named', () => {
    const { phase, lines } = recorded();
    phase.setPhase('Rewinding', 'follow');
    // A postgres start during a rewind must not end the rewind's phase.
    expect(phase.setPhase('Running', 'postgres accepts connections', ['Starting'])).toBe(false);
    expect(phase.current).toBe('Rewinding');
    expect(phase.setPhase('Failed', 'follow failed', ['Rewinding'])).toBe(true);
    expect(phase.current).toBe('Failed');
    expect(lines.map((l) => l.phase)).toEqual(['Rewinding', 'Failed']);
  });
});
