// The agent's phase (InstancePhase, api-types.ts) and the one place it changes. Status, readiness
// and the role changes read it; every transition goes through setPhase, which logs it once.
import type { Logger } from '../runtime/logger.js';
import type { InstancePhase } from './api-types.js';

export class PhaseState {
  private value: InstancePhase = 'Starting';

  constructor(private readonly log: Pick<Logger, 'info'>) {}

  get current(): InstancePhase {
    return this.value;
  }

  /**
   * Moves to `next`, saying why in the log. With `onlyFrom`, only when the phase is one of those
   * (an event that must not override a phase someone else set: a postgres start during a rewind,
   * say). Returns whether it moved; moving to the phase it is in is no transition.
   */
  setPhase(next: InstancePhase, why: string, onlyFrom?: readonly InstancePhase[]): boolean {
    const from = this.value;
    if (next === from || (onlyFrom && !onlyFrom.includes(from))) return false;
    this.value = next;
    this.log.info({ phase: next, from, why }, `phase ${next}`);
    return true;
  }
}
