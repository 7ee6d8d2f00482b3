// rollout: reports the change going through the instances (the RollingUpdate condition,
// status.rollout, an Event per step) and asks ha for the switchover that lets the primary be
// updated last. install applies the new template only to the instance the same plan names.
import { resolveBackupTarget } from '../builders/backup-target.js';
import { desiredInstanceSets, rolloutPlan } from './instance-sets.js';
import type { ReconcileContext, Reconciler, ReconcilerResult } from './types.js';

/** While a rollout runs, look again this often (an instance coming back fires events, a replica catching up does not). */
const ROLLING_MS = 2000;

export const rolloutReconciler: Reconciler = {
  name: 'rollout',
  statusFields: ['rollout'],
  async reconcile(ctx: ReconcileContext): Promise<ReconcilerResult> {
    const sets = desiredInstanceSets(ctx, resolveBackupTarget(ctx.cluster, ctx.config.defaultBackupStore), ctx.status.recoverySource);
    const plan = rolloutPlan(ctx, sets);
    if (plan.update.length > 0 || plan.switchoverTo) await ctx.event('Normal', 'RollingUpdate', plan.condition.message);
    const rolling = plan.done < plan.total;
    return {
      conditions: [plan.condition],
      // ha reads switchoverTo in the next pass and switches over as if spec.primary named it.
      status: { rollout: rolling ? { updated: plan.done, total: plan.total, ...(plan.switchoverTo ? { switchoverTo: plan.switchoverTo } : {}) } : undefined },
      ...(rolling ? { requeueAfterMs: ROLLING_MS } : {}),
    };
  },
};
