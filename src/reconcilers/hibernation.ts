// hibernation: spec.hibernation, carried out by hibernation-plan.ts from what the pass observed.
// Runs first: install applies what each instance runs meanwhile (hibernationDirective: the same
// template, 0 or 1 replicas), ha is held while the instances stop or are stopped, the backup
// CronJob is suspended.
import type { AgentClient } from '../instance/agent-client.js';
import { planHibernation } from './hibernation-plan.js';
import { upgradeActive } from './major-upgrade-plan.js';
import { stopCall, stopPlanInstances } from './stop-calls.js';
import type { ReconcileContext, Reconciler, ReconcilerResult } from './types.js';

export function createHibernationReconciler(deps: { agent: AgentClient }): Reconciler {
  return {
    name: 'hibernation',
    statusFields: ['hibernation'],
    async reconcile(ctx: ReconcileContext): Promise<ReconcilerResult> {
      const previous = ctx.status.hibernation;
      const plan = planHibernation({
        requested: ctx.cluster.spec.hibernation === true,
        previous,
        primary: ctx.observed.primary,
        instances: stopPlanInstances(ctx),
        upgrading: upgradeActive(ctx.status.majorUpgrade),
        fenced: ctx.status.fencedInstances ?? [],
        now: new Date(),
      });
      for (const a of plan.actions) await stopCall(ctx, deps.agent, a.kind, a.instance);
      if (plan.event) await ctx.event('Normal', plan.event.reason, plan.event.message);
      if (plan.status?.phase !== previous?.phase) ctx.log.info({ phase: plan.status?.phase ?? 'Awake' }, plan.condition.message);
      return { conditions: [plan.condition], status: { hibernation: plan.status }, ...(plan.requeueAfterMs ? { requeueAfterMs: plan.requeueAfterMs } : {}) };
    },
  };
}
