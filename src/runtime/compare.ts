// Does the live object already hold everything we would apply? A reconcile uses this to skip
// write calls in steady state. Live objects carry server defaults and fields others own, so the
// test is "desired is a subset of live", with quantities compared by value ("0.5" = "500m").
import { parseQuantity } from '../api/quantity.js';

const QUANTITY = /^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?[0-9]+)?$/;

function sameScalar(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if ((typeof a === 'string' || typeof a === 'number') && (typeof b === 'string' || typeof b === 'number')) {
    const sa = String(a);
    const sb = String(b);
    if (QUANTITY.test(sa) && QUANTITY.test(sb)) {
      // Floats: 700 × 1e-3 is 0.7000000000000001, so "0.7" and the apiserver's "700m" differ by an ulp.
      const x = parseQuantity(sa);
      const y = parseQuantity(sb);
      return Math.abs(x - y) <= 1e-9 * Math.max(Math.abs(x), Math.abs(y));
    }
  }
  return false;
}

export function isSubset(desired: unknown, live: unknown): boolean {
  if (desired === undefined) return true;
  if (desired === null || typeof desired !== 'object') return sameScalar(desired, live);
  if (Array.isArray(desired)) {
    if (!Array.isArray(live) || live.length !== desired.length) return false;
    return desired.every((d, i) => isSubset(d, live[i]));
  }
  if (live === null || typeof live !== 'object' || Array.isArray(live)) return false;
  const l = live as Record<string, unknown>;
  return Object.entries(desired as Record<string, unknown>).every(([k, v]) => isSubset(v, l[k]));
}

/** What of an object's metadata we set and therefore compare. */
export function comparable(obj: { metadata?: Record<string, unknown> } & Record<string, unknown>): Record<string, unknown> {
  // Items of a list carry no apiVersion/kind, so informer caches lack them: never compare those.
  const { metadata, status: _status, apiVersion: _apiVersion, kind: _kind, ...rest } = obj;
  return {
    ...rest,
    metadata: { labels: metadata?.labels, annotations: metadata?.annotations, ownerReferences: metadata?.ownerReferences },
  };
}

export function needsApply(desired: Record<string, unknown>, live: Record<string, unknown> | undefined): boolean {
  if (!live) return true;
  return !isSubset(comparable(desired), live);
}
