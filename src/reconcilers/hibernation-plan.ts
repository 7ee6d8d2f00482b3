// Hibernation (spec.hibernation), step by step (pure). A hibernated cluster keeps its claims and
// its primary Lease and runs no pod:
//
//   Hibernating  a CHECKPOINT, then the primary is fenced (a fast, clean stop: its replicas receive
//                the shutdown checkpoint), every StatefulSet goes to 0; ha does nothing meanwhile
//   Hibernated   no instance runs; the condition Hibernated is True and status.phase Hibernated
//   Waking       every StatefulSet back to 1 with the template it had; the primary (the Lease
//                holder) is unfenced and, started read-only as any former primary is, confirmed by
//                ha (promote); done once it accepts writes
//
// A major upgrade under way finishes first; hibernation holds no upgrade back once the cluster runs.
import type { HibernationStatus } from '../api/cluster-status.js';
import type { ConditionInput } from './conditions.js';
import type { InstanceDirective, UpgradeInstance } from './major-upgrade-plan.js';

export interface HibernationInput {
  requested: boolean;
  previous: HibernationStatus | undefined;
  /** The primary the pass works from (the Lease holder). */
  primary: string | undefined;
  instances: UpgradeInstance[];
  /** A major upgrade has the instances in hand (major-upgrade-plan.ts upgradeActive). */
  upgrading: boolean;
  /** Instances fenced on purpose (status.fencedInstances): hibernation waits to begin until none is. */
  fenced?: string[];
  now: Date;
}

export type HibernationAction = { kind: 'checkpoint' | 'fence' | 'unfence'; instance: string };

export interface HibernationPlan {
  status: HibernationStatus | undefined;
  actions: HibernationAction[];
  condition: ConditionInput;
  event?: { reason: string; message: string };
  requeueAfterMs?: number;
}

const POLL_MS = 1000;
const hibernated = (status: 'True' | 'False', reason: string, message: string): ConditionInput => ({ type: 'Hibernated', status, reason, message });

/** StatefulSets stay as they are and go to 0 while hibernating or hibernated; back to 1 when waking. */
export function hibernationDirective(s: HibernationStatus | undefined): InstanceDirective | undefined {
  if (!s) return undefined;
  return { image: 'hold', running: s.phase === 'Waking' };
}

/** ha does nothing while the instances stop or are stopped on purpose. */
export const haHeldByHibernation = (s: HibernationStatus | undefined): boolean => !!s && s.phase !== 'Waking';

export function planHibernation(input: HibernationInput): HibernationPlan {
  const prev = input.previous;
  if (input.requested) return hibernate(input, prev);
  if (!prev) return { status: undefined, actions: [], condition: hibernated('False', 'Awake', 'The cluster runs (spec.hibernation is false)') };
  return wake(input, prev);
}

function hibernate(input: HibernationInput, prev: HibernationStatus | undefined): HibernationPlan {
  if (!prev || prev.phase === 'Waking') {
    if (input.upgrading) return { status: prev, actions: [], condition: hibernated('False', 'WaitingForUpgrade', 'spec.hibernation is true: the cluster hibernates once the major version upgrade under way is done'), requeueAfterMs: POLL_MS };
    const fenced = input.fenced ?? [];
    if (!prev && fenced.length > 0) {
      const message = `spec.hibernation is true: the cluster hibernates once no instance is fenced (${fenced.join(', ')}: remove ${fenced.length > 1 ? 'them' : 'it'} from postgres.pgpilot.io/fenced-instances)`;
      return { status: prev, actions: [], condition: hibernated('False', 'WaitingForUnfence', message), requeueAfterMs: POLL_MS };
    }
    const primary = input.primary;
    const message = `Hibernating: stopping every instance (the primary ${primary ?? '(none)'} first, cleanly); the claims and the primary stay`;
    const running = primary && input.instances.some((i) => i.name === primary && i.running);
    return {
      status: { phase: 'Hibernating', ...(primary ? { primary } : {}), since: input.now.toISOString() },
      actions: running ? [{ kind: 'checkpoint', instance: primary }, { kind: 'fence', instance: primary }] : [],
      condition: hibernated('False', 'Hibernating', message),
      event: { reason: 'Hibernating', message },
      requeueAfterMs: POLL_MS,
    };
  }
  const left = input.instances.filter((i) => i.pod).map((i) => i.name);
  if (left.length > 0) return { status: prev, actions: [], condition: hibernated('False', 'Hibernating', `Hibernating: still running: ${left.join(', ')}`), requeueAfterMs: POLL_MS };
  const message = `Hibernated: no instance runs; the claims are kept and ${prev.primary ?? 'the primary'} comes back as the primary when spec.hibernation is false`;
  if (prev.phase === 'Hibernated') return { status: prev, actions: [], condition: hibernated('True', 'Hibernated', message) };
  return { status: { ...prev, phase: 'Hibernated', since: input.now.toISOString() }, actions: [], condition: hibernated('True', 'Hibernated', message), event: { reason: 'Hibernated', message } };
}

function wake(input: HibernationInput, prev: HibernationStatus): HibernationPlan {
  const name = prev.primary ?? input.primary;
  const primary = input.instances.find((i) => i.name === name);
  const status: HibernationStatus = prev.phase === 'Waking' ? prev : { ...prev, phase: 'Waking', since: input.now.toISOString() };
  const event = prev.phase === 'Waking' ? undefined : { reason: 'Waking', message: `Waking: starting every instance, ${name ?? 'the primary'} as the primary` };
  if (primary?.phase === 'Fenced') return { status, actions: [{ kind: 'unfence', instance: primary.name }], condition: hibernated('False', 'Waking', `Waking: starting ${primary.name}`), ...(event ? { event } : {}), requeueAfterMs: POLL_MS };
  if (!(primary?.running && primary.role === 'primary')) return { status, actions: [], condition: hibernated('False', 'Waking', `Waking: waiting for ${name ?? 'the primary'} to accept writes`), ...(event ? { event } : {}), requeueAfterMs: POLL_MS };
  const message = `Awake: ${name} accepts writes again (${((input.now.getTime() - Date.parse(status.since)) / 1000).toFixed(1)} s after spec.hibernation was set to false)`;
  return { status: undefined, actions: [], condition: hibernated('False', 'Awake', message), event: { reason: 'Awake', message } };
}
