// A restart of the primary in place (rollout-plan.ts: primaryUpdateMethod restart, a single
// instance, or a change that lowers max_connections & co.). Its new pod would come up read-only
// (the agent's start guard: no writable old primary) and, with a lowered standby minimum, would
// not come up at all. So, in two passes:
//   1. record in status.rollout.primaryRestart that failover of this primary is held back until a
//      deadline (ha.ts reads it) — written before anything restarts, so an operator that restarts
//      meanwhile still holds back;
//   2. once that record is read back, ask the primary's agent for a permit to start writable,
//      ending MARGIN_MS before the deadline, and let install replace its pod.
// Past the deadline, failover resumes and the old data starts read-only again. The record lasts
// while the primary comes back (until it is settled on the new template).
import { AgentError, type AgentClient } from '../instance/agent-client.js';
import { errorText } from '../util/error-text.js';
import type { RolloutInstance, RolloutPlan } from './rollout-plan.js';
import { agentEndpointAt } from './observe.js';
import type { ReconcileContext } from './types.js';

/** Failover held back this long: a pod replacement plus crash recovery, with room to spare. */
export const HOLD_MS = 150_000;
/** The agent's permit ends this long before the hold (the call's latency, clocks of two nodes). */
export const MARGIN_MS = 15_000;
/** A recorded hold with less than this left is renewed before the pod is replaced. */
const MIN_LEFT_MS = 60_000;

export interface PrimaryRestartRecord {
  instance: string;
  until: string;
}

export interface PrimaryRestartStep {
  /** status.rollout.primaryRestart after this pass. */
  record?: PrimaryRestartRecord;
  /** Whether install may replace the primary's pod in this pass. */
  proceed: boolean;
  /** Why not yet (the RollingUpdate message). */
  waiting?: string;
}

/** The recorded hold, while it lasts. */
export function heldUntil(record: PrimaryRestartRecord | undefined, instance: string, now: number): number | undefined {
  const until = record && record.instance === instance ? Date.parse(record.until) : NaN;
  return until > now ? until : undefined;
}

/** Keeps a recorded hold while its primary is not back, settled, on the new template. */
function carried(record: PrimaryRestartRecord | undefined, instances: RolloutInstance[], now: number): PrimaryRestartRecord | undefined {
  if (!record || heldUntil(record, record.instance, now) === undefined) return undefined;
  const it = instances.find((i) => i.name === record.instance);
  return it && !it.outdated && !it.updating && it.settled ? undefined : record;
}

export async function primaryRestartStep(ctx: ReconcileContext, agent: AgentClient, plan: RolloutPlan, instances: RolloutInstance[], now = Date.now()): Promise<PrimaryRestartStep> {
  const previous = ctx.status.rollout?.primaryRestart;
  if (!plan.primaryInPlace) return { record: carried(previous, instances, now), proceed: true };
  const primary = plan.update[0]!;
  const until = heldUntil(previous, primary, now);
  if (until === undefined || until - now < MIN_LEFT_MS) {
    const record = { instance: primary, until: new Date(now + HOLD_MS).toISOString() };
    return { record, proceed: false, waiting: `holding failover of ${primary} back until ${record.until} before restarting it in place` };
  }
  const record = previous!;
  const observed = ctx.observed.instances.find((i) => i.name === primary);
  const ep = observed?.podIP ? agentEndpointAt(ctx.observed, observed.podIP) : undefined;
  if (!ep) return { record, proceed: false, waiting: `waiting to reach the agent of ${primary} for a restart permit` };
  try {
    const seconds = Math.floor((until - now - MARGIN_MS) / 1000);
    const permit = await agent.restartPermit(ep, { seconds });
    ctx.log.info({ instance: primary, permitUntil: permit.until, holdUntil: record.until }, 'restart permit granted: the primary restarts writable');
    return { record, proceed: true };
  } catch (err) {
    // An agent too old to give a permit: its new pod comes back read-only and ha promotes it —
    // unless a lowered standby minimum keeps it from starting read-only at all.
    if (err instanceof AgentError && err.status === 404 && !(plan.lowered ?? []).length) return { record, proceed: true };
    return { record, proceed: false, waiting: `the primary ${primary} gave no restart permit (${errorText(err)}); trying again` };
  }
}
