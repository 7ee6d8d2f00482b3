// Fencing on request (ANNOTATIONS.fencedInstances), pure: from the annotation, the instances fenced
// so far (status.fencedInstances) and what each agent says, to the fence and unfence calls, the
// status list, the Fenced condition and the Events. fencing.ts carries it out.
//
//   fence     the agent stops PostgreSQL cleanly (a fast shutdown) and keeps it stopped (a marker
//             on the volume survives a pod restart); the pod runs on, not Ready (/readyz), and ha
//             takes its role label away, never picks it for a failover or switchover, and never
//             rejoins, rewinds or re-clones it (ha-plan.ts `fenced`). A fenced primary is not failed
//             over: the cluster has no writable primary until it is unfenced.
//   unfence   the name leaves the annotation: the agent lifts the fence and starts PostgreSQL (a
//             former primary read-only, until ha confirms it holds the primary Lease and promotes
//             it, as when a hibernated cluster wakes); the name stays in status.fencedInstances
//             until the agent reports the fence lifted, so ha keeps holding back until then.
//
// While hibernation or a major upgrade has the instances in hand, nothing changes (they stop and
// start the instances themselves); both wait to begin while an instance is fenced.
import { parseFencedInstances } from '../api/cluster-annotations.js';
import { ANNOTATIONS } from '../api/constants.js';
import type { ConditionInput } from './conditions.js';

export interface FencingInstance {
  name: string;
  /** What its agent says, when it answered. */
  agent?: { fenced: boolean; fencing: boolean; running: boolean };
}

export interface FencingInput {
  /** The annotation's value (undefined: absent). */
  annotation: string | undefined;
  /** The instances of the cluster, in order. */
  instanceNames: string[];
  /** status.fencedInstances. */
  previous: string[] | undefined;
  instances: FencingInstance[];
  /** The primary the pass works from. */
  primary: string | undefined;
  /** Why fencing changes wait (hibernation, a major upgrade), if they do. */
  held?: string;
  /** The Fenced condition as last written (a Warning Event only when an invalid annotation is new). */
  previousCondition?: { reason: string; message: string };
}

export interface FencingPlan {
  /** status.fencedInstances from now on. */
  fenced: string[];
  actions: Array<{ kind: 'fence' | 'unfence'; instance: string }>;
  condition: ConditionInput;
  events: Array<{ type: 'Normal' | 'Warning'; reason: string; message: string }>;
  requeueAfterMs?: number;
}

const POLL_MS = 1000;

/** The instances fenced on purpose that ha must leave alone (status.fencedInstances after this pass). */
export const fencedOnPurpose = (status: { fencedInstances?: string[] }): string[] => status.fencedInstances ?? [];

/** Fenced: instances fenced, or being fenced or unfenced, with the state of each. */
function describe(input: FencingInput, fenced: string[], desired: Set<string>): string {
  const byName = new Map(input.instances.map((i) => [i.name, i] as const));
  const parts = fenced.map((n) => {
    const a = byName.get(n)?.agent;
    const state = !desired.has(n) ? 'unfencing' : !a ? 'fenced when its agent answers' : a.fenced && !a.fencing && !a.running ? 'fenced' : 'stopping';
    return `${n} (${state}${n === input.primary ? ', the primary' : ''})`;
  });
  const primary = input.primary && fenced.includes(input.primary) && desired.has(input.primary) ? `; the primary is fenced: the cluster has no writable primary and no failover happens until it is unfenced` : '';
  return `Fenced through ${ANNOTATIONS.fencedInstances}: ${parts.join(', ')}${primary}. A fenced instance's PostgreSQL is stopped, its pod is not Ready and in no Service; the rollout, hibernation and a major upgrade wait`;
}

type Event = FencingPlan['events'][number];
type Action = FencingPlan['actions'][number];

/** The instances to fence: a call for each whose agent answers and is not fenced yet; an Event for each new one. */
function fenceSteps(input: FencingInput, desired: Set<string>, previous: string[], byName: Map<string, FencingInstance>, actions: Action[], events: Event[]): void {
  for (const n of desired) {
    const a = byName.get(n)?.agent;
    if (a && !a.fenced && !a.fencing) actions.push({ kind: 'fence', instance: n });
    if (!previous.includes(n)) events.push({ type: 'Normal', reason: 'Fencing', message: `Fencing ${n}${n === input.primary ? ' (the primary: no failover while it is fenced)' : ''}: its PostgreSQL stops cleanly and stays stopped; its pod is not Ready and in no Service` });
  }
}

/** The instances to unfence: a call while the agent is fenced; done (an Event) once it says it is not. Returns those still unfencing. */
function unfenceSteps(input: FencingInput, desired: Set<string>, previous: string[], byName: Map<string, FencingInstance>, actions: Action[], events: Event[]): string[] {
  const unfencing: string[] = [];
  for (const n of previous.filter((p) => !desired.has(p))) {
    const a = byName.get(n)?.agent;
    if (a && !a.fenced) {
      events.push({ type: 'Normal', reason: 'Unfenced', message: `${n} is unfenced: its PostgreSQL ${a.running ? 'runs' : 'starts'} again${n === input.primary ? ' as the primary (confirmed by the operator)' : ' and rejoins the primary'}` });
      continue;
    }
    unfencing.push(n);
    if (a) actions.push({ kind: 'unfence', instance: n });
  }
  return unfencing;
}

function heldPlan(input: FencingInput, previous: string[], asked: string[] | undefined): FencingPlan {
  const wanted = asked && asked.join() !== previous.join() ? `; the change asked for (${input.annotation ?? 'none'}) waits until it ends` : '';
  const message = `${previous.length ? `Fenced: ${previous.join(', ')}` : 'No instance is fenced'}; ${input.held}${wanted}`;
  return { fenced: previous, actions: [], events: [], condition: { type: 'Fenced', status: previous.length ? 'True' : 'False', reason: previous.length ? 'InstancesFenced' : 'NoneFenced', message } };
}

export function planFencing(input: FencingInput): FencingPlan {
  const previous = (input.previous ?? []).filter((n) => input.instanceNames.includes(n));
  const parsed = parseFencedInstances(input.annotation, input.instanceNames);
  if (input.held) return heldPlan(input, previous, parsed.ok ? parsed.value : undefined);
  // Invalid: nothing fenced or unfenced by it; what was fenced stays so.
  const desired = new Set(parsed.ok ? parsed.value : previous);
  const byName = new Map(input.instances.map((i) => [i.name, i] as const));
  const actions: Action[] = [];
  const events: Event[] = [];
  fenceSteps(input, desired, previous, byName, actions, events);
  const unfencing = unfenceSteps(input, desired, previous, byName, actions, events);
  const fenced = input.instanceNames.filter((n) => desired.has(n) || unfencing.includes(n));
  let condition: ConditionInput = fenced.length
    ? { type: 'Fenced', status: 'True', reason: 'InstancesFenced', message: describe(input, fenced, desired) }
    : { type: 'Fenced', status: 'False', reason: 'NoneFenced', message: `No instance is fenced (${ANNOTATIONS.fencedInstances})` };
  if (!parsed.ok) {
    const message = `${parsed.problem}. Nothing is fenced or unfenced by it; ${fenced.length ? `still fenced: ${fenced.join(', ')}` : 'no instance is fenced'}`;
    condition = { type: 'Fenced', status: 'Unknown', reason: 'InvalidFencingAnnotation', message };
    const prev = input.previousCondition;
    if (prev?.reason !== condition.reason || prev.message !== message) events.push({ type: 'Warning', reason: 'InvalidFencingAnnotation', message });
  }
  const settled = (n: string) => desired.has(n) && !!byName.get(n)?.agent?.fenced && !byName.get(n)?.agent?.fencing;
  const settling = actions.length > 0 || !fenced.every(settled);
  return { fenced, actions, condition, events, ...(settling ? { requeueAfterMs: POLL_MS } : {}) };
}
