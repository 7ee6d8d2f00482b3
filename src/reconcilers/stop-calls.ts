// The agent calls that stop and start a whole cluster on purpose (a major upgrade, hibernation):
// a checkpoint while writes are still accepted, a fence (the fast, clean stop of the primary),
// an unfence; each waited for briefly and looked at again in the next pass (a failed call is
// logged, not fatal). And the instances as those plans see them.
import type { AgentClient, AgentEndpoint } from '../instance/agent-client.js';
import { errorText } from '../util/error-text.js';
import { majorOf, type UpgradeInstance } from './major-upgrade-plan.js';
import { agentEndpoint } from './observe.js';
import type { ReconcileContext } from './types.js';

/** A fence (fast shutdown) is waited for this long in the pass; it goes on in the agent. */
const FENCE_WAIT_MS = 5000;
/** The checkpoint before a stop is waited for this long (it goes on in the server; the shutdown checkpoint does the rest). */
const CHECKPOINT_WAIT_MS = 10_000;

export type StopCall = 'checkpoint' | 'fence' | 'unfence';

/** Calls an instance's agent (nothing without a running pod); a failure is logged: the next pass looks again. */
export async function callAgent(ctx: ReconcileContext, instance: string, what: string, call: (ep: AgentEndpoint) => Promise<unknown>): Promise<void> {
  const ep = agentEndpoint(ctx.observed, instance);
  if (!ep) return;
  await call(ep).catch((err: unknown) => ctx.log.warn({ instance, call: what, err: errorText(err) }, `${what} failed; trying again in the next pass`));
}

/** A checkpoint, fence or unfence of an instance. */
export function stopCall(ctx: ReconcileContext, agent: AgentClient, kind: StopCall, instance: string): Promise<void> {
  const calls: Record<StopCall, (ep: AgentEndpoint) => Promise<unknown>> = {
    checkpoint: (ep) => agent.checkpoint(ep, CHECKPOINT_WAIT_MS),
    fence: (ep) => agent.fence(ep, FENCE_WAIT_MS, { stopSeconds: ctx.spec.stopDelaySeconds }),
    unfence: (ep) => agent.unfence(ep),
  };
  return callAgent(ctx, instance, kind, calls[kind]);
}

/** Each instance: whether its pod exists, and what its agent says. */
export function stopPlanInstances(ctx: ReconcileContext): UpgradeInstance[] {
  return ctx.observed.instances.map((i) => ({
    name: i.name,
    pod: !!i.pod,
    ...(i.agent
      ? { phase: i.agent.phase, role: i.agent.role === 'primary' ? 'primary' : 'replica', running: i.agent.running, streaming: i.agent.streaming, major: majorOf(i.agent.postgresVersion ?? undefined) }
      : {}),
  }));
}
