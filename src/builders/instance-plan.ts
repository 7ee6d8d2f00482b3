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
