// Which instance may receive its new pod template now (pure). A change that restarts pods (a new
// version, resources, a restart-requiring setting) goes through one instance at a time: replicas
// first, each back Ready and streaming before the next; then the primary — by a switchover to an
// updated replica (the default: only the switchover is felt) or an in-place restart. The plan keeps
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
   * The change lowers a setting a standby needs at least as high as its primary's (max_connections
   * and the like). A replica restarted first would refuse to start; the primary first would need a
   * writable in-place restart, which the agent's start guard (a restarted primary comes back
   * read-only until confirmed) does not allow yet. So nothing restarts, and the condition says why.
   */
  lowersStandbyMinimum?: boolean;
}

export interface RolloutPlan {
  /** Instances whose StatefulSet gets the new template in this pass (at most one). */
  update: string[];
  /** Ask ha for a switchover to this (updated, settled) replica. */
  switchoverTo?: string;
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
  // An outdated instance that is not serving anyway (crashed, or stuck on a broken template that
  // was fixed since) gets the new template at once: holding it back protects nothing.
  const broken = outdated.find((i) => !i.ready);
  if (broken) return { ...base, update: [broken.name], condition: rolling(`${done} of ${total} updated; updating ${broken.name} (not ready on its old template)`) };
  // One at a time: an updated instance still coming back holds the rest.
  const coming = input.instances.find((i) => !i.outdated && !i.settled);
  if (coming) return { ...base, condition: rolling(`${done} of ${total} updated; waiting for ${coming.name} to be ready and streaming before the next`) };
  if (input.lowersStandbyMinimum) {
    return {
      ...base,
      condition: {
        type: 'RollingUpdate',
        status: 'False',
        reason: 'LoweringNotSupported',
        message: `${done} of ${total} updated; the change lowers max_connections, max_worker_processes, max_wal_senders, max_prepared_transactions or max_locks_per_transaction, which needs the primary restarted first; pgpilot does not do that yet, so no instance restarts: set the value back (raising is fine)`,
      },
    };
  }
  const replica = outdated.find((i) => i.name !== input.primary);
  if (replica) return { ...base, update: [replica.name], condition: rolling(`${done} of ${total} updated; updating replica ${replica.name}`) };
  // Only the primary is left.
  const primary = input.primary!;
  if (input.primaryUpdateStrategy === 'supervised') {
    return { ...base, condition: { type: 'RollingUpdate', status: 'True', reason: 'WaitingForUser', message: `${done} of ${total} updated; the primary ${primary} waits for a switchover (primaryUpdateStrategy: supervised: set spec.primary)` } };
  }
  const target = input.primaryUpdateMethod === 'switchover' ? input.instances.find((i) => i.name !== primary && !i.outdated && i.settled) : undefined;
  if (target) return { ...base, switchoverTo: target.name, condition: rolling(`${done} of ${total} updated; switching over from ${primary} to ${target.name}, then updating ${primary}`) };
  return { ...base, update: [primary], condition: rolling(`${done} of ${total} updated; restarting the primary ${primary} in place`) };
}
