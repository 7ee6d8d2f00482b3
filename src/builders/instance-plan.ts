// Which instances a cluster should have (pure). Existing instances stay; new ones take the lowest
// free ordinals; scale-down removes the highest ordinals first and never the primary.
import { instanceOrdinal, names } from '../api/names.js';

export interface InstancePlan {
  keep: string[];
  create: string[];
  remove: string[];
}

export function planInstances(cluster: string, existing: string[], desired: number, primary?: string): InstancePlan {
  const ordinals = existing
    .map((n) => instanceOrdinal(cluster, n))
    .filter((o): o is number => o !== undefined)
    .sort((a, b) => a - b);
  const remove: string[] = [];
  const keep = [...ordinals];
  // Highest ordinal first; the primary is skipped (it leaves only after a switchover).
  for (let i = keep.length - 1; i >= 0 && keep.length > desired; i--) {
    const name = names.instance(cluster, keep[i]!);
    if (name === primary) continue;
    remove.push(name);
    keep.splice(i, 1);
  }
  const create: string[] = [];
  const used = new Set(keep);
  for (let o = 1; keep.length + create.length < desired; o++) {
    if (!used.has(o)) create.push(names.instance(cluster, o));
  }
  return { keep: keep.map((o) => names.instance(cluster, o)), create, remove };
}

/**
 * The fewest instances synchronous commit can run with: the primary plus synchronousReplicas
 * when synchronousCommit is on, else 1. spec.instances below it (written through the scale
 * subresource, e.g. by an HPA) is held at it.
 */
export function minimumInstances(ha: { synchronousCommit: boolean; synchronousReplicas: number }): number {
  return ha.synchronousCommit ? ha.synchronousReplicas + 1 : 1;
}

/** spec.instances as the operator carries it out: held at minimumInstances when below. */
export function effectiveInstances(instances: number, ha: { synchronousCommit: boolean; synchronousReplicas: number }): { desired: number; heldAt?: number } {
  const min = minimumInstances(ha);
  return instances < min ? { desired: min, heldAt: min } : { desired: instances };
}

export interface PacedPlan {
  plan: InstancePlan;
  /** Instances the plan wanted to create that wait for a later pass. */
  deferred: string[];
  /** Kept instances not ready yet, which hold creation back. */
  waitingFor: string[];
}

/**
 * One new instance at a time once the cluster is up (scaling, e.g. by an HPA): nothing is created
 * while a kept instance is not ready (a replica still cloning), and then only the lowest of the
 * new ones, so two replicas never clone from the primary at once. A new cluster (paced false)
 * creates all its instances together, as before.
 */
export function paceCreation(plan: InstancePlan, notReady: ReadonlySet<string>, paced: boolean): PacedPlan {
  if (!paced || plan.create.length === 0) return { plan, deferred: [], waitingFor: [] };
  const waitingFor = plan.keep.filter((n) => notReady.has(n));
  const allowed = waitingFor.length > 0 ? 0 : 1;
  return { plan: { ...plan, create: plan.create.slice(0, allowed) }, deferred: plan.create.slice(allowed), waitingFor };
}
