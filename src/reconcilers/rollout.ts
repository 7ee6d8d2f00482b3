// rollout: decides, before install applies anything, which instance receives a new pod template
// now (rollout-plan.ts: one at a time, replicas first, the primary last), and says so: the
// RollingUpdate condition, status.rollout (read by install for the instance to update and by ha
// for the switchover to ask for, in the same pass) and an Event per step.
import { resolveBackupTarget } from '../builders/backup-target.js';
import { desiredInstanceSets, rolloutPlan } from './instance-sets.js';
import type { ReconcileContext, Reconciler, ReconcilerResult } from './types.js';

/** While a rollout runs, look again this often (an instance coming back fires events, a replica catching up does not). */
const ROLLING_MS = 2000;

export const rolloutReconciler: Reconciler = {
  name: 'rollout',
  statusFields: ['rollout'],
  async reconcile(ctx: ReconcileContext): Promise<ReconcilerResult> {
    // The recovery source install resolved in an earlier pass (a new cluster has nothing to roll yet).
    const sets = desiredInstanceSets(ctx, resolveBackupTarget(ctx.cluster, ctx.config.defaultBackupStore), ctx.status.recoverySource);
    const plan = rolloutPlan(ctx, sets);
    if (plan.update.length > 0 || plan.switchoverTo) {
      ctx.log.info({ update: plan.update, switchoverTo: plan.switchoverTo, updated: plan.done, total: plan.total }, plan.condition.message);
      await ctx.event('Normal', 'RollingUpdate', plan.condition.message);
    }
    const rolling = plan.done < plan.total;
    const rollout = { updated: plan.done, total: plan.total, ...(plan.update[0] ? { updating: plan.update[0] } : {}), ...(plan.switchoverTo ? { switchoverTo: plan.switchoverTo } : {}) };
    return { conditions: [plan.condition], status: { rollout: rolling ? rollout : undefined }, ...(rolling ? { requeueAfterMs: ROLLING_MS } : {}) };
  },
};
