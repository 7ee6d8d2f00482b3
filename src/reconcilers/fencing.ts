// fencing: the annotation postgres.pgpilot.io/fenced-instances, carried out by fencing-plan.ts from
// what the pass observed: fence and unfence calls to the agents (each waited for briefly; the next
// pass looks again), status.fencedInstances (read by rollout, ha, hibernation and the major
// upgrade in this pass and the next), the Fenced condition and an Event per fence and unfence.
// Runs after hibernation and the major upgrade (while either has the instances in hand, nothing
// changes) and before rollout and ha.
import { ANNOTATIONS } from '../api/constants.js';
import type { AgentClient } from '../instance/agent-client.js';
import { findCondition } from './conditions.js';
import { planFencing } from './fencing-plan.js';
import { upgradeActive } from './major-upgrade-plan.js';
import { stopCall } from './stop-calls.js';
import type { ReconcileContext, Reconciler, ReconcilerResult } from './types.js';

/** Why fencing changes wait in this pass, if they do. */
function heldBy(ctx: ReconcileContext): string | undefined {
  const { hibernation, majorUpgrade } = ctx.status;
  if (hibernation) return `the cluster ${hibernation.phase === 'Waking' ? 'wakes from hibernation' : 'hibernates'} (spec.hibernation): fencing changes wait until it is awake`;
  if (upgradeActive(majorUpgrade)) return `a major version upgrade is under way (${majorUpgrade!.phase}): fencing changes wait until it ends`;
  return undefined;
}

export function createFencingReconciler(deps: { agent: AgentClient }): Reconciler {
  return {
    name: 'fencing',
    statusFields: ['fencedInstances'],
    async reconcile(ctx: ReconcileContext): Promise<ReconcilerResult> {
      const previous = findCondition(ctx.cluster.status?.conditions, 'Fenced');
      const plan = planFencing({
        annotation: ctx.cluster.metadata.annotations?.[ANNOTATIONS.fencedInstances],
        instanceNames: ctx.observed.instanceNames,
        previous: ctx.status.fencedInstances,
        instances: ctx.observed.instances.map((i) => ({
          name: i.name,
          ...(i.agent ? { agent: { fenced: i.agent.fenced, running: i.agent.running, fencing: i.agent.operation?.kind === 'fence' && i.agent.operation.state === 'running' } } : {}),
        })),
        primary: ctx.observed.primary,
        held: heldBy(ctx),
        ...(previous ? { previousCondition: { reason: previous.reason, message: previous.message } } : {}),
      });
      for (const a of plan.actions) {
        ctx.log.info({ instance: a.instance }, `${a.kind} (${ANNOTATIONS.fencedInstances})`);
        await stopCall(ctx, deps.agent, a.kind, a.instance);
      }
      for (const e of plan.events) await ctx.event(e.type, e.reason, e.message);
      return {
        conditions: [plan.condition],
        status: { fencedInstances: plan.fenced.length ? plan.fenced : undefined },
        ...(plan.requeueAfterMs ? { requeueAfterMs: plan.requeueAfterMs } : {}),
      };
    },
  };
}
