// Which instance may receive its new pod template now (pure). A change that restarts pods (a new
// version, resources, a restart-requiring setting) goes through one instance at a time: replicas
// first, each back Ready and streaming before the next; then the primary — by a switchover to an
// updated replica (the default: only the switchover is felt) or an in-place restart. A change that
// lowers a setting a hot standby needs at least as high as its primary's (max_connections & co.)
// goes the other way: the primary first, in place, then the replicas. The plan keeps
// no state: it is decided from what the pass observed, so a failover in the middle only changes
// which instance is "the primary" for the next decision, and the rollout resumes from there.
import type { ConditionInput } from './conditions.js';

export interface RolloutInstance {
  name: string;
  /** Its StatefulSet exists and its pod template differs from the desired one. */
  outdated: boolean;
  /** Its StatefulSet has the desired template but its pod does not run it yet (being replaced). */
  updating?: boolean;
  /** Its pod runs its StatefulSet's current template and is ready. */
  ready: boolean;
  /** Ready and doing its job: the primary accepts writes, a replica streams. */
  settled: boolean;
}

export interface RolloutInput {
  instances: RolloutInstance[];
  /** The primary the pass works from. */
  primary: string | undefined;
  /** switchover (default): move the primary role to an updated replica first; restart: update it in place. */
  primaryUpdateMethod: 'switchover' | 'restart';
  /** supervised: stop before the primary until a person switches over (spec.primary). */
  primaryUpdateStrategy: 'unsupervised' | 'supervised';
  /**
   * The settings the change lowers that a hot standby needs at least as high as its primary's
   * (max_connections and the like): a replica restarted first would refuse to start, so the
   * primary restarts first, in place.
   */
  lowered?: string[];
  /** Instances fenced on purpose (status.fencedInstances): the rollout waits until none is. */
  fenced?: string[];
}

export interface RolloutPlan {
  /** Instances whose StatefulSet gets the new template in this pass (at most one). */
  update: string[];
  /** Ask ha for a switchover to this (updated, settled) replica. */
  switchoverTo?: string;
  /** update names the primary, restarted in place (primary-restart.ts holds failover back meanwhile). */
  primaryInPlace?: boolean;
  /** The standby minimums the change lowers, when that is why the primary goes first. */
  lowered?: string[];
  /** Instances running the desired template, of all. */
  done: number;
  total: number;
  condition: ConditionInput;
}

const rolling = (message: string): ConditionInput => ({ type: 'RollingUpdate', status: 'True', reason: 'RollingUpdate', message });

export function planRollout(input: RolloutInput): RolloutPlan {
  const total = input.instances.length;
  const outdated = input.instances.filter((i) => i.outdated);
  const done = total - outdated.length - input.instances.filter((i) => !i.outdated && i.updating).length;
  const base = { done, total, update: [] as string[] };
  const replacing = input.instances.find((i) => i.updating);
  if (outdated.length === 0 && replacing) return { ...base, condition: rolling(`${done} of ${total} updated; waiting for ${replacing.name} to come back on the new template`) };
  if (outdated.length === 0) {
    return { ...base, condition: { type: 'RollingUpdate', status: 'False', reason: 'UpToDate', message: `All ${total} instances run the current pod template` } };
  }
  // A fenced instance must not be restarted, and a fenced primary cannot be switched over from:
  // the whole rollout waits (nothing restarts while a person has an instance stopped on purpose).
  const fenced = input.fenced ?? [];
  if (fenced.length > 0) {
    return {
      ...base,
      condition: { type: 'RollingUpdate', status: 'True', reason: 'HeldByFence', message: `${done} of ${total} updated; held while ${fenced.join(', ')} ${fenced.length > 1 ? 'are' : 'is'} fenced (postgres.pgpilot.io/fenced-instances): unfence to go on` },
    };
  }
  // An outdated instance that is not serving anyway (crashed, or stuck on a broken template that
  // was fixed since) gets the new template at once: holding it back protects nothing.
  const broken = outdated.find((i) => !i.ready);
  if (broken) return { ...base, update: [broken.name], condition: rolling(`${done} of ${total} updated; updating ${broken.name} (not ready on its old template)`) };
  // One at a time: an updated instance still coming back holds the rest.
  const coming = input.instances.find((i) => !i.outdated && !i.settled);
  if (coming) return { ...base, condition: rolling(`${done} of ${total} updated; waiting for ${coming.name} to be ready and streaming before the next`) };
  const primary = input.primary;
  const lowered = input.lowered ?? [];
  if (lowered.length > 0 && primary && outdated.some((i) => i.name === primary)) return primaryFirst(input, base, primary, lowered);
  const replica = outdated.find((i) => i.name !== input.primary);
  if (replica) return { ...base, update: [replica.name], condition: rolling(`${done} of ${total} updated; updating replica ${replica.name}`) };
  // Only the primary is left.
  if (!primary) return { ...base, condition: rolling(`${done} of ${total} updated; waiting for a primary before updating the rest`) };
  if (input.primaryUpdateStrategy === 'supervised') {
    return { ...base, condition: { type: 'RollingUpdate', status: 'True', reason: 'WaitingForUser', message: `${done} of ${total} updated; the primary ${primary} waits for a switchover (primaryUpdateStrategy: supervised: set spec.primary)` } };
  }
  const target = input.primaryUpdateMethod === 'switchover' ? input.instances.find((i) => i.name !== primary && !i.outdated && i.settled) : undefined;
  if (target) return { ...base, switchoverTo: target.name, condition: rolling(`${done} of ${total} updated; switching over from ${primary} to ${target.name}, then updating ${primary}`) };
  return { ...base, update: [primary], primaryInPlace: true, condition: rolling(`${done} of ${total} updated; restarting the primary ${primary} in place`) };
}

/** A change that lowers standby minimums: the primary restarts in place before any replica. */
function primaryFirst(input: RolloutInput, base: Pick<RolloutPlan, 'done' | 'total' | 'update'>, primary: string, lowered: string[]): RolloutPlan {
  const { done, total } = base;
  const why = `the change lowers ${lowered.join(', ')}, which a replica can only take after its primary`;
  if (input.primaryUpdateStrategy === 'supervised') {
    return {
      ...base,
      condition: { type: 'RollingUpdate', status: 'True', reason: 'WaitingForUser', message: `${done} of ${total} updated; ${why}: the primary ${primary} must restart first, in place (writes stop meanwhile), and primaryUpdateStrategy: supervised waits for you: set it to unsupervised to go on` },
    };
  }
  return { ...base, update: [primary], primaryInPlace: true, lowered, condition: rolling(`${done} of ${total} updated; restarting the primary ${primary} in place first: ${why}`) };
}
