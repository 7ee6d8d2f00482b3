// rollout: decides, before install applies anything, which instance receives a new pod template
// now (rollout-plan.ts: one at a time, replicas first, the primary last — or first, in place, for
// a lowered max_connections & co.), and says so: the RollingUpdate condition, status.rollout (read
// by install for the instance to update and by ha for the switchover to ask for and for a held
// failover, in the same pass) and an Event per step. A primary restarted in place is prepared
// first (primary-restart.ts).
import type { AgentClient } from '../instance/agent-client.js';
import { desiredInstanceSets, instanceRestarts, rolloutInstances, rolloutPlan } from './instance-sets.js';
import { primaryRestartStep } from './primary-restart.js';
import { majorOf, upgradeDirective } from './major-upgrade-plan.js';
import type { ReconcileContext, Reconciler, ReconcilerResult } from './types.js';
import { passBackupTarget } from './pass-target.js';

/** While a rollout runs, look again this often (an instance coming back fires events, a replica catching up does not). */
const ROLLING_MS = 2000;
/** A primary restart waits for its recorded hold to be read back: soon. */
const HOLD_RECORDED_MS = 300;

/**
 * spec.version names another major than the one running (status.version, what the primary
 * reports). A higher one is a major upgrade (major-upgrade.ts decides what each instance runs
 * meanwhile: nothing rolls); a lower one cannot be done (the CRD refuses it, unless the running
 * version changed since) and restarts nothing.
 */
function majorChange(ctx: ReconcileContext): ReconcilerResult | undefined {
  const runs = ctx.status.version;
  const asked = ctx.cluster.spec.version;
  if (upgradeDirective(ctx.status.majorUpgrade, { version: asked, running: runs, generation: ctx.cluster.metadata.generation }, ctx.observed.primary ?? '')) {
    const message = `A major version upgrade decides what each instance runs (status.majorUpgrade, the Upgrading condition); nothing rolls meanwhile`;
    return { conditions: [{ type: 'RollingUpdate', status: 'False', reason: 'MajorUpgrade', message }], status: { rollout: undefined } };
  }
  const [wanted, running] = [majorOf(asked), majorOf(runs)];
  if (wanted === undefined || running === undefined || wanted >= running) return undefined;
  const message = `spec.version asks for ${asked} while PostgreSQL ${runs} runs: an older major cannot read a newer one's data, so no instance restarts; set spec.version to a ${running}.x release`;
  return {
    conditions: [{ type: 'RollingUpdate', status: 'False', reason: 'MajorDowngradeRefused', message }],
    status: { rollout: undefined },
    degraded: { reason: 'MajorDowngradeRefused', message },
  };
}

export function createRolloutReconciler(deps: { agent: AgentClient }): Reconciler {
  return {
    name: 'rollout',
    statusFields: ['rollout'],
    async reconcile(ctx: ReconcileContext): Promise<ReconcilerResult> {
      const held = majorChange(ctx);
      if (held) return held;
      // An invalid restart-instances annotation restarts nothing (instance-sets.ts) and says why.
      const restarts = instanceRestarts(ctx);
      const invalid = restarts.ok ? undefined : { reason: 'InvalidRestartAnnotation', message: `${restarts.problem}. No instance restarts for it` };
      // The recovery source install resolved in an earlier pass (a new cluster has nothing to roll yet).
      const sets = desiredInstanceSets(ctx, passBackupTarget(ctx), ctx.status.recoverySource);
      const instances = rolloutInstances(sets, ctx.observed.primary);
      const plan = rolloutPlan(ctx, instances, sets);
      const restart = await primaryRestartStep(ctx, deps.agent, plan, instances);
      const update = restart.proceed ? plan.update : [];
      const condition = restart.waiting ? { ...plan.condition, message: `${plan.condition.message} (${restart.waiting})` } : plan.condition;
      if (update.length > 0 || plan.switchoverTo) {
        ctx.log.info({ update, switchoverTo: plan.switchoverTo, updated: plan.done, total: plan.total }, condition.message);
        await ctx.event('Normal', 'RollingUpdate', condition.message);
      }
      const rolling = plan.done < plan.total || !!restart.record;
      const rollout = {
        updated: plan.done,
        total: plan.total,
        ...(update[0] ? { updating: update[0] } : {}),
        ...(plan.switchoverTo ? { switchoverTo: plan.switchoverTo } : {}),
        ...(restart.record ? { primaryRestart: restart.record } : {}),
      };
      const requeueAfterMs = restart.waiting ? HOLD_RECORDED_MS : ROLLING_MS;
      return { conditions: [condition], status: { rollout: rolling ? rollout : undefined }, ...(rolling ? { requeueAfterMs } : {}), ...(invalid ? { degraded: invalid } : {}) };
    },
  };
}
