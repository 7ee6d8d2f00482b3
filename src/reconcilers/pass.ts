// One pass over a cluster: the reconcilers in order, each reporting the conditions and status
// fields it owns. The pass enforces the ownership (a reconciler that reports another's condition
// or field is a bug, caught by the unit tests), turns every condition nobody evaluated into
// Unknown with the reason, merges status fields generically, and stops early on an error (retried
// with backoff) or on a reconciler's request (no error: something in progress holds the rest back).
import type { ClusterStatus } from '../api/cluster.js';
import { SpecError } from '../api/spec-error.js';
import { apiErrorMessage } from '../runtime/apply.js';
import { conditionsOwnedBy, notEvaluated, type ConditionInput } from './conditions.js';
import { ReconcileError, type ReconcileContext, type Reconciler, type ReconcilerResult } from './types.js';

export interface PassOutcome {
  /** Every condition the reconcilers own: evaluated, or Unknown saying why not. */
  conditions: ConditionInput[];
  /** ctx.status at the end: the previous status with each reconciler's fields merged in. */
  status: ClusterStatus;
  /** Why the pass failed (Degraded), when it did. */
  failure?: { reason: string; message: string };
  /** The error to retry with backoff. */
  error?: unknown;
  requeueAfterMs?: number;
  /** The reconciler that stopped the pass, and why. */
  stoppedBy?: { reconciler: string; reason: string; message: string };
}

/** Degraded's reason and message for an error a reconciler threw. */
export function failureOf(reconciler: string, err: unknown): { reason: string; message: string } {
  if (err instanceof ReconcileError) return { reason: err.reason, message: err.message };
  if (err instanceof SpecError) return { reason: 'InvalidSpec', message: err.message };
  return { reason: 'ReconcileFailed', message: `${reconciler}: ${apiErrorMessage(err)}` };
}

/** Checks a result against what its reconciler owns (a programming error otherwise). */
function checkOwnership(r: Reconciler, res: ReconcilerResult): void {
  const owned = conditionsOwnedBy(r.name);
  const foreign = (res.conditions ?? []).filter((c) => !owned.includes(c.type));
  if (foreign.length > 0) throw new Error(`reconciler ${r.name} reported conditions it does not own: ${foreign.map((c) => c.type).join(', ')}`);
  const fields = Object.keys(res.status ?? {}).filter((f) => !(r.statusFields as readonly string[]).includes(f));
  if (fields.length > 0) throw new Error(`reconciler ${r.name} set status fields it does not own: ${fields.join(', ')}`);
}

/** Sets exactly the reconciler's fields from `values` (a field absent from it is removed). */
function mergeStatus(status: ClusterStatus, r: Reconciler, values: Partial<ClusterStatus>): void {
  const target = status as Record<string, unknown>;
  for (const f of r.statusFields) {
    if (values[f] === undefined) delete target[f];
    else target[f] = values[f];
  }
}

/** Conditions owned by `r` that it did not report: Unknown, with the reason. */
function unreported(r: Reconciler, reported: ConditionInput[], reason: string, why: string): ConditionInput[] {
  return conditionsOwnedBy(r.name).flatMap((type) => (reported.some((c) => c.type === type) ? [] : [notEvaluated(type, reason, why)]));
}

/** A pass whose observation failed: no reconciler runs, Degraded says why, every owned condition is Unknown. */
export function unobservedPass(reconcilers: readonly Reconciler[], ctx: ReconcileContext, err: unknown): PassOutcome {
  const failure = failureOf('observe', err);
  const conditions = reconcilers.flatMap((r) => unreported(r, [], 'NotEvaluated', `the observation failed (${failure.message})`));
  return { conditions, status: ctx.status, error: err, failure };
}

export async function runPass(reconcilers: readonly Reconciler[], ctx: ReconcileContext): Promise<PassOutcome> {
  const conditions: ConditionInput[] = [];
  const outcome: PassOutcome = { conditions, status: ctx.status };
  const fillIn = (r: Reconciler, reported: ConditionInput[], reason: string, why: string) => conditions.push(...unreported(r, reported, reason, why));
  for (const [i, r] of reconcilers.entries()) {
    let res: ReconcilerResult;
    try {
      res = await r.reconcile(ctx);
      checkOwnership(r, res);
    } catch (err) {
      outcome.error = err;
      outcome.failure = failureOf(r.name, err);
      // A reconciler may have evaluated its conditions before it failed (ha: a refused switchover).
      const partial = err instanceof ReconcileError ? err.conditions.filter((c) => conditionsOwnedBy(r.name).includes(c.type)) : [];
      conditions.push(...partial);
      fillIn(r, partial, 'NotEvaluated', `${r.name} failed (${outcome.failure.reason})`);
      for (const later of reconcilers.slice(i + 1)) fillIn(later, [], 'NotEvaluated', `${r.name} failed first (${outcome.failure.reason})`);
      return outcome;
    }
    const reported = res.conditions ?? [];
    conditions.push(...reported);
    fillIn(r, reported, 'NotEvaluated', `${r.name} did not evaluate it`);
    if (res.status) mergeStatus(ctx.status, r, res.status);
    if (res.degraded && !outcome.failure) outcome.failure = res.degraded;
    if (res.requeueAfterMs) outcome.requeueAfterMs = Math.min(outcome.requeueAfterMs ?? Infinity, res.requeueAfterMs);
    if (res.stop) {
      outcome.stoppedBy = { reconciler: r.name, ...res.stop };
      for (const later of reconcilers.slice(i + 1)) fillIn(later, [], res.stop.reason, `${r.name} holds the pass: ${res.stop.message}`);
      return outcome;
    }
  }
  return outcome;
}
