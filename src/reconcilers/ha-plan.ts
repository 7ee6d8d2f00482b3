// High availability decisions, pure: from what the instances report to the ordered actions that
// converge the cluster (bootstrap, role labels, failover, switchover, repointing, rejoining).
// The reconciler in ha.ts gathers the observations and carries the actions out in order.
import type { BootstrapRequest, InstanceStatus } from '../instance/api-types.js';
import { compareLsn, lsnDiff } from '../postgres/lsn.js';
import type { ConditionInput } from './conditions.js';
import { ANNOTATIONS } from '../api/constants.js';

const FENCE_ANNOTATION = ANNOTATIONS.fencedInstances;
// Storage auto-grow's one hook here: a replica whose volume is full is never promoted.
import { volumeFull } from './storage-autogrow-plan.js';

export interface ObservedInstance {
  name: string;
  /** The pod's IP; undefined while there is no running pod. */
  podIP?: string;
  /** The role label the pod carries now (undefined: none). */
  roleLabel?: string;
  /** What the agent reports; undefined when it does not answer. */
  agent?: InstanceStatus;
}

export interface HaInput {
  instances: ObservedInstance[];
  /** status.currentPrimary (the first instance before there is one). */
  primary: string;
  /** spec.primary: a switchover request. */
  requestedPrimary?: string;
  haEnabled: boolean;
  /** ANY n quorum with durability required: failover must prove it cannot lose a commit. */
  syncQuorum?: number;
  /** When the primary monitor confirmed the primary as failed (ms since epoch), if it did. */
  primaryFailedSince?: number;
  failoverDelayMs: number;
  now: number;
  /** How the first instance gets its data: initdb, or a restore from backup (spec.bootstrap.recovery). */
  bootstrapMode?: 'initdb' | 'restore';
  /**
   * Instances fenced on purpose (status.fencedInstances, fencing-plan.ts): no role label, never a
   * failover or switchover target, never rejoined, rewound or re-cloned; a fenced primary is not
   * failed over.
   */
  fenced?: string[];
}

export type Role = 'primary' | 'replica';

export type HaAction =
  | { kind: 'bootstrap'; instance: string; request: BootstrapRequest }
  | { kind: 'label'; instance: string; role: Role | null }
  /** Claim the primary role for `instance` (serialised through the cluster's primary Lease). */
  | { kind: 'claim'; instance: string; from: string; reason: 'failover' | 'switchover' }
  /**
   * Stop the instance and keep it stopped. bestEffort (failover): a short wait, and the plan goes
   * on whatever the answer. Otherwise (switchover): the rest of the plan waits until it is stopped
   * (cleanly: the replicas receive all its WAL), looked at again in later passes.
   */
  | { kind: 'fence'; instance: string; bestEffort: boolean }
  | { kind: 'promote'; instance: string }
  /**
   * Started in the agent (repoint, rewind or re-clone); its progress shows in its status.
   * waitMs: the pass waits that long for it (a failover repoints the other replicas first).
   */
  | { kind: 'follow'; instance: string; host: string; reclone?: boolean; waitMs?: number };

export interface HaPlan {
  actions: HaAction[];
  conditions: ConditionInput[];
  /** The primary after the plan (differs from input.primary after a failover or switchover). */
  primary: string;
  /** Look again soon (waiting for a delay, a bootstrap, a lagging replica). */
  requeueAfterMs?: number;
}

const healthyPrimary = (i?: ObservedInstance) => !!i?.agent?.running && i.agent.role === 'primary' && !i.agent.fenced;
const runningReplica = (i: ObservedInstance) => !!i.agent?.running && i.agent.role === 'replica' && !i.agent.fenced;
/**
 * A replica that may take over: running, and replicating from some primary. A former primary that
 * restarted read-only follows nothing (its timeline may have forked): only the Lease holder's
 * confirmation may promote it.
 */
const candidateReplica = (i: ObservedInstance) => runningReplica(i) && i.agent!.following !== null && !i.agent!.awaitingRole && !volumeFull(i.agent);
/** An operation (promote, follow, fence, isolate) runs in the agent: leave it alone meanwhile. */
const busy = (i: ObservedInstance) => i.agent?.operation?.state === 'running';
/** How long a failover waits for each other replica to leave the old primary before promoting. */
export const REPOINT_BEFORE_PROMOTE_MS = 1000;
/** A failed follow is tried again after this long (a rewind or re-clone that failed may fail again). */
export const FOLLOW_RETRY_MS = 5000;
/** A replica this far behind the primary's WAL shows in ReplicasStreaming as lagging. */
export const LAG_THRESHOLD_BYTES = 256n * 1024n * 1024n;

/** The most advanced replica: received WAL first, then replayed, then lowest ordinal. */
export function chooseCandidate(replicas: ObservedInstance[]): ObservedInstance | undefined {
  return [...replicas].sort(
    (a, b) => compareLsn(b.agent!.receiveLsn, a.agent!.receiveLsn) || compareLsn(b.agent!.replayLsn, a.agent!.replayLsn) || a.name.localeCompare(b.name, undefined, { numeric: true }),
  )[0];
}

/** Role labels the Services select on: only a healthy primary gets `primary`, streaming-capable replicas `replica`; a fenced instance none. */
function labelActions(instances: ObservedInstance[], primary: string, primaryOk: boolean, fenced: readonly string[] = []): HaAction[] {
  const out: HaAction[] = [];
  for (const i of instances) {
    if (!i.podIP) continue;
    const want: Role | null = fenced.includes(i.name) ? null : i.name === primary ? (primaryOk ? 'primary' : null) : runningReplica(i) ? 'replica' : null;
    if ((i.roleLabel ?? null) !== want) out.push({ kind: 'label', instance: i.name, role: want });
  }
  return out;
}

/**
 * Replicas that must clone, repoint or rejoin (rewind, re-clone) to follow `primary` at `host`.
 * The agent runs each as an operation (it checkpoints the new primary itself before a rewind).
 */
function followActions(instances: ObservedInstance[], primary: string, host: string, now: number, fenced: readonly string[]): HaAction[] {
  return instances.flatMap((i) => (i.name === primary || fenced.includes(i.name) || !i.agent || !i.podIP || busy(i) ? [] : followActionFor(i, host, now)));
}

/** What one answering, idle instance other than the primary needs to follow `host`. */
function followActionFor(i: ObservedInstance, host: string, now: number): HaAction[] {
  const a = i.agent!;
  if (a.phase === 'AwaitingBootstrap') return [{ kind: 'bootstrap', instance: i.name, request: { mode: 'clone', primary: { host, port: 5432 } } }];
  const op = a.operation;
  if (op?.kind === 'follow' && op.state === 'failed' && op.finishedAt && now - Date.parse(op.finishedAt) < FOLLOW_RETRY_MS) return [];
  const stalePrimary = a.role === 'primary' || (a.fenced && a.role !== 'replica');
  const elsewhere = a.role === 'replica' && a.following !== null && !a.following.startsWith(`${host}:`);
  if (a.cannotCatchUp && a.role === 'replica' && !elsewhere) return [{ kind: 'follow', instance: i.name, host, reclone: true }];
  if (stalePrimary || elsewhere || (a.role === 'replica' && a.following === null)) return [{ kind: 'follow', instance: i.name, host }];
  return [];
}

/** How far each replica's flushed WAL is behind the primary's, by instance (from the primary's walsenders). */
function replicaLag(primary: ObservedInstance | undefined): Map<string, bigint> {
  const lag = new Map<string, bigint>();
  const current = primary?.agent?.currentLsn;
  if (!current) return lag;
  for (const peer of primary.agent!.replication) if (peer.flushLsn) lag.set(peer.applicationName, lsnDiff(current, peer.flushLsn));
  return lag;
}

const mib = (bytes: bigint) => `${(Number(bytes) / 2 ** 20).toFixed(0)} MiB`;

function notStreamingReason(i: ObservedInstance): string {
  const a = i.agent;
  if (!a) return 'agent unreachable';
  if (a.operation?.state === 'running') return `${a.operation.kind}: ${a.operation.step}`;
  if (a.cannotCatchUp) return `cannot catch up: ${a.cannotCatchUp}`;
  if (a.operation?.state === 'failed' && a.operation.kind === 'follow') return `rejoin failed: ${a.operation.error ?? 'no reason'}`;
  if (a.fenced) return 'fenced';
  return a.phase === 'Running' ? 'not streaming' : a.phase;
}

function replicasStreaming(instances: ObservedInstance[], primary: string): ConditionInput {
  const replicas = instances.filter((i) => i.name !== primary);
  const streaming = replicas.filter((i) => i.agent?.streaming);
  const notStreaming = replicas.filter((i) => !i.agent?.streaming).map((i) => `${i.name} (${notStreamingReason(i)})`);
  if (streaming.length !== replicas.length) {
    return { type: 'ReplicasStreaming', status: 'False', reason: 'ReplicasNotStreaming', message: `${streaming.length} of ${replicas.length} replicas streaming; not streaming: ${notStreaming.join(', ')}` };
  }
  const lag = replicaLag(instances.find((i) => i.name === primary));
  const behind = streaming.filter((i) => (lag.get(i.name) ?? 0n) > LAG_THRESHOLD_BYTES).map((i) => `${i.name} ${mib(lag.get(i.name)!)} behind`);
  return behind.length
    ? { type: 'ReplicasStreaming', status: 'False', reason: 'ReplicaLagging', message: `${streaming.length} of ${replicas.length} replicas streaming; lagging more than ${mib(LAG_THRESHOLD_BYTES)}: ${behind.join(', ')}` }
    : { type: 'ReplicasStreaming', status: 'True', reason: 'AllStreaming', message: `${streaming.length} of ${replicas.length} replicas streaming` };
}

/** What planHa's parts look at. */
interface Situation {
  input: HaInput;
  byName: Map<string, ObservedInstance>;
  primary: ObservedInstance | undefined;
  replicas: ObservedInstance[];
  /** Instances fenced on purpose (input.fenced). */
  fenced: readonly string[];
}

export function planHa(input: HaInput): HaPlan {
  const byName = new Map(input.instances.map((i) => [i.name, i] as const));
  const primary = byName.get(input.primary);
  const fenced = input.fenced ?? [];
  const at: Situation = { input, byName, primary, replicas: input.instances.filter((i) => i.name !== input.primary), fenced };
  const bootstrap = planBootstrap(at);
  if (bootstrap) return bootstrap;
  if (fenced.includes(input.primary)) return planPrimaryFenced(at);
  if (primary && runningReplica(primary)) return planHolderReadOnly(at, primary);
  if (healthyPrimary(primary)) return planHealthyPrimary(at, primary!);
  return planPrimaryDown(at);
}

/** 1. A new cluster, or its first bootstrap failed. */
function planBootstrap(at: Situation): HaPlan | undefined {
  const { input, primary } = at;
  // 1. A new cluster: initdb on the first instance once no instance has data.
  if (primary?.agent?.phase === 'AwaitingBootstrap' && !input.instances.some((i) => i.agent?.systemIdentifier)) {
    const restore = input.bootstrapMode === 'restore';
    return {
      actions: [{ kind: 'bootstrap', instance: primary.name, request: { mode: restore ? 'restore' : 'initdb' } }],
      conditions: [
        restore
          ? { type: 'PrimaryAvailable', status: 'False', reason: 'Restoring', message: `Restoring the database on ${primary.name} from a backup (spec.bootstrap.recovery)` }
          : { type: 'PrimaryAvailable', status: 'False', reason: 'Bootstrapping', message: `Creating the database on ${primary.name} (initdb)` },
      ],
      primary: input.primary,
      requeueAfterMs: 1000,
    };
  }

  // 1b. The first bootstrap failed (a restore target outside the window, a corrupt backup, …):
  // say why; retrying the same request would fail the same way.
  if (primary?.agent?.phase === 'Failed' && !primary.agent.systemIdentifier && !input.instances.some((i) => i.agent?.systemIdentifier)) {
    return {
      actions: [],
      conditions: [{ type: 'PrimaryAvailable', status: 'False', reason: 'BootstrapFailed', message: `${primary.name} could not create the database: ${primary.agent.lastError ?? 'no reason reported'}` }],
      primary: input.primary,
      requeueAfterMs: 10_000,
    };
  }
  return undefined;
}

/**
 * 1c. The Lease holder runs read-only: a claim whose promotion did not happen (it failed, or the
 * operator stopped in between), or a former primary that restarted read-only (the agent's start
 * guard) and waits for confirmation. Promote it — once no other instance can take writes.
 */
function planHolderReadOnly(at: Situation, primary: ObservedInstance): HaPlan {
  const { input } = at;
  const waiting = (reason: string, message: string, actions: HaAction[] = []): HaPlan => ({
    actions,
    conditions: [{ type: 'PrimaryAvailable', status: 'False', reason, message }, replicasStreaming(input.instances, input.primary)],
    primary: input.primary,
    requeueAfterMs: 200,
  });
  if (busy(primary)) return waiting('Promoting', `${input.primary} holds the primary role; waiting for its ${primary.agent!.operation!.kind} (${primary.agent!.operation!.step})`);
  const stopping = input.instances.filter((i) => i.name !== input.primary && i.agent?.operation?.kind === 'fence' && busy(i));
  if (stopping.length) return waiting('Switchover', `waiting for ${stopping.map((i) => i.name).join(', ')} to stop cleanly before promoting ${input.primary}`);
  const writable = input.instances.filter((i) => i.name !== input.primary && healthyPrimary(i));
  if (writable.length) {
    // Never two writable primaries: the other one loses its routing and is stopped first.
    return waiting(
      'FencingOldPrimary',
      `${input.primary} holds the primary role but ${writable.map((i) => i.name).join(', ')} still accepts writes; fencing it before promoting`,
      writable.flatMap((i): HaAction[] => [{ kind: 'label', instance: i.name, role: null }, { kind: 'fence', instance: i.name, bestEffort: true }]),
    );
  }
  // A holder with less WAL than another replica (a switchover whose clean stop had to become
  // immediate, say): promoting it would drop commits the other one has. Choose again.
  const best = chooseCandidate(input.instances.filter((i) => candidateReplica(i) && !busy(i) && !at.fenced.includes(i.name)));
  if (best && best.name !== input.primary && compareLsn(best.agent!.receiveLsn, primary.agent!.receiveLsn) > 0) {
    return {
      actions: [
        { kind: 'claim', instance: best.name, from: input.primary, reason: 'failover' },
        { kind: 'promote', instance: best.name },
        { kind: 'label', instance: best.name, role: 'primary' },
      ],
      conditions: [
        {
          type: 'PrimaryAvailable',
          status: 'False',
          reason: 'Failover',
          message: `${input.primary} holds the primary role but ${best.name} has more WAL (${best.agent!.receiveLsn} > ${primary.agent!.receiveLsn ?? 'none'}); promoting ${best.name} instead`,
        },
      ],
      primary: best.name,
      requeueAfterMs: 100,
    };
  }
  return {
    actions: [...labelActions(input.instances, input.primary, false, at.fenced), { kind: 'promote', instance: input.primary }, { kind: 'label', instance: input.primary, role: 'primary' }],
    conditions: [{ type: 'PrimaryAvailable', status: 'False', reason: 'Promoting', message: `${input.primary} holds the primary role and runs read-only; promoting it` }],
    primary: input.primary,
    requeueAfterMs: 100,
  };
}

/** 2. The primary runs: switchover on request, else labels and replicas that must follow it. */
function planHealthyPrimary(at: Situation, primary: ObservedInstance): HaPlan {
  const { input, byName, replicas } = at;
  const host = primary.podIP!;
  // 2. Switchover on request, to a replica that streams from the primary.
  const target = input.requestedPrimary && input.requestedPrimary !== input.primary ? byName.get(input.requestedPrimary) : undefined;
  if (target && !at.fenced.includes(target.name) && runningReplica(target) && target.agent!.streaming && !busy(target)) {
    return {
      actions: [
        { kind: 'claim', instance: target.name, from: input.primary, reason: 'switchover' },
        { kind: 'label', instance: input.primary, role: null },
        // A clean stop: walsenders ship all WAL, the shutdown checkpoint included, before exiting.
        { kind: 'fence', instance: input.primary, bestEffort: false },
        { kind: 'promote', instance: target.name },
        { kind: 'label', instance: target.name, role: 'primary' },
      ],
      conditions: [{ type: 'PrimaryAvailable', status: 'False', reason: 'Switchover', message: `Switching over from ${input.primary} to ${target.name}` }],
      primary: target.name,
      requeueAfterMs: 200,
    };
  }
  const actions = [...labelActions(input.instances, input.primary, true, at.fenced), ...followActions(input.instances, input.primary, host, input.now, at.fenced)];
  // A replica that is down or lagging is looked at again soon: its recovery fires no event.
  const replicasBehind = replicas.some((i) => !i.agent?.streaming);
  const requested = input.requestedPrimary && input.requestedPrimary !== input.primary ? input.requestedPrimary : undefined;
  const switchoverWait = !requested
    ? []
    : at.fenced.includes(requested)
      ? [`switchover to ${requested} waits until it is unfenced (${FENCE_ANNOTATION})`]
      : byName.has(requested)
      ? [`switchover to ${requested} waits until it streams from the primary`]
      : [`spec.primary names ${requested}, which is not an instance of this cluster (instances: ${input.instances.map((i) => i.name).join(', ')}); no switchover`];
  return {
    actions,
    conditions: [
      { type: 'PrimaryAvailable', status: 'True', reason: 'PrimaryRunning', message: `${input.primary} accepts writes${switchoverWait.length ? `; ${switchoverWait[0]}` : ''}` },
      replicasStreaming(input.instances, input.primary),
    ],
    primary: input.primary,
    ...(actions.length || switchoverWait.length ? { requeueAfterMs: 1000 } : replicasBehind ? { requeueAfterMs: 2000 } : {}),
  };
}

/**
 * 2b. The primary is fenced on purpose (or being unfenced): no failover — the user stopped it, as
 * CloudNativePG does; no labels on it, the replicas stay as they are.
 */
function planPrimaryFenced(at: Situation): HaPlan {
  const { input, primary } = at;
  const state = !primary?.agent ? 'its agent does not answer' : primary.agent.fenced ? 'its PostgreSQL is stopped' : `it is ${primary.agent.phase}`;
  return {
    actions: labelActions(input.instances, input.primary, false, at.fenced),
    conditions: [
      {
        type: 'PrimaryAvailable',
        status: 'False',
        reason: 'PrimaryFenced',
        message: `The primary ${input.primary} is fenced (${FENCE_ANNOTATION}; ${state}): the cluster has no writable primary, and no failover happens while it is fenced; unfence it to write again`,
      },
      replicasStreaming(input.instances, input.primary),
    ],
    primary: input.primary,
    requeueAfterMs: 2000,
  };
}

/** 3. The primary is not healthy: wait, say why not, or fail over. */
function planPrimaryDown(at: Situation): HaPlan {
  const { input, primary, replicas } = at;
  const down = (reason: string, message: string, requeueAfterMs = 500): HaPlan => ({
    actions: labelActions(input.instances, input.primary, false, at.fenced),
    conditions: [{ type: 'PrimaryAvailable', status: 'False', reason, message }, replicasStreaming(input.instances, input.primary)],
    primary: input.primary,
    requeueAfterMs,
  });
  const what = primary?.agent ? `${input.primary} is ${primary.agent.fenced ? 'fenced' : primary.agent.phase}` : `${input.primary} does not answer`;
  if (!input.instances.some((i) => i.agent)) {
    // Nothing answers (pods pending or starting, or all down): pod events bring the next look.
    return { ...down('WaitingForInstances', `No instance answers yet (${input.instances.map((i) => `${i.name}: ${i.podIP ? 'agent not answering' : 'no running pod'}`).join(', ')})`), requeueAfterMs: undefined };
  }
  if (primary?.agent && ['Bootstrapping', 'Starting', 'Rewinding'].includes(primary.agent.phase)) return down('PrimaryStarting', `${what}`, 1000);
  if (!input.haEnabled) return down('PrimaryUnavailable', `${what}; automatic failover is off (highAvailability.enabled: false)`, 2000);
  if (input.primaryFailedSince === undefined) return down('PrimaryUnhealthy', `${what}; confirming before failing over`);
  const waited = input.now - input.primaryFailedSince;
  if (waited < input.failoverDelayMs) return down('FailoverDelay', `${what}; failing over in ${Math.ceil((input.failoverDelayMs - waited) / 1000)} s (failoverDelay)`);

  const candidates = replicas.filter((i) => candidateReplica(i) && !at.fenced.includes(i.name));
  if (candidates.length === 0) return down('NoFailoverCandidate', `${what}; no replica is running to take over`, 2000);
  if (input.syncQuorum !== undefined) {
    // Every acknowledged commit is on at least n replicas: seeing R − n + 1 of them guarantees the
    // most advanced one we see has them all.
    const needed = replicas.length - input.syncQuorum + 1;
    if (candidates.length < needed) {
      return down(
        'FailoverWaitingForReplicas',
        `${what}; ${candidates.length} of ${replicas.length} replicas answer but ${needed} are needed to be sure no acknowledged commit is lost (synchronous durability: required)`,
        1000,
      );
    }
  }
  const candidate = chooseCandidate(candidates)!;
  return {
    actions: [
      // The other replicas leave the old primary first (they cascade from the candidate until it
      // is promoted): a frozen or partitioned old primary that comes back must find no replica to
      // acknowledge its commits once another instance holds the primary role.
      ...candidates
        .filter((i) => i !== candidate && !busy(i))
        .map((i): HaAction => ({ kind: 'follow', instance: i.name, host: candidate.podIP!, waitMs: REPOINT_BEFORE_PROMOTE_MS })),
      { kind: 'claim', instance: candidate.name, from: input.primary, reason: 'failover' },
      { kind: 'label', instance: input.primary, role: null },
      // An old primary that does not answer (dead, frozen, partitioned) cannot be fenced through
      // its agent: cutting its routing is the protection, and it is rewound when it returns.
      ...(primary?.agent ? [{ kind: 'fence' as const, instance: input.primary, bestEffort: true }] : []),
      { kind: 'promote', instance: candidate.name },
      { kind: 'label', instance: candidate.name, role: 'primary' },
    ],
    conditions: [{ type: 'PrimaryAvailable', status: 'False', reason: 'Failover', message: `${what}; promoting ${candidate.name} (received WAL up to ${candidate.agent!.receiveLsn ?? 'unknown'})` }],
    primary: candidate.name,
    requeueAfterMs: 100,
  };
}
