// ha: plans with ha-plan.ts from what the pass observed (observe.ts: every agent's status, the
// primary Lease), and carries the plan out in order: bootstrap, role labels (the rw/ro Services
// select on them), failover and switchover (claim the primary Lease → cut routing → fence →
// promote), repointing replicas, rejoining an old primary (follow → the agent checkpoints the new
// primary, pg_rewind, or a fresh clone).
// Nothing here waits on a long operation: follow is started and looked at in later passes,
// promote and fence are waited for a few seconds at most (they go on in the agent).
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import type { PostgreSQLCluster } from '../api/cluster.js';
import { LABELS, POSTGRES_PORT } from '../api/constants.js';
import { names } from '../api/names.js';
import type { AgentClient, AgentEndpoint } from '../instance/agent-client.js';
import { postgresAnswers } from '../postgres/wire-probe.js';
import type { ConditionInput } from './conditions.js';
import { planHa, type HaAction, type HaPlan, type ObservedInstance } from './ha-plan.js';
import { agentEndpointAt, type EndedOperation } from './observe.js';
import type { PrimaryLeases } from './primary-lease.js';
import { heldUntil } from './primary-restart.js';
import { haHeldByUpgrade } from './major-upgrade-plan.js';
import { haHeldByHibernation } from './hibernation-plan.js';
import { fencedOnPurpose } from './fencing-plan.js';
import type { PrimaryMonitor } from './primary-monitor.js';
import { ReconcileError, type ReconcileContext, type Reconciler, type ReconcilerResult } from './types.js';
import { errorText } from '../util/error-text.js';

/** How long a pass waits for a promotion (pg_promote takes ~0.1 s) before looking again later. */
const PROMOTE_WAIT_MS = 5000;
/** Failover: the old primary gets this long to stop; routing is cut whatever it answers. */
const FAILOVER_FENCE_WAIT_MS = 2000;
/** Switchover: a pass waits this long for the clean stop, then looks again (it goes on in the agent). */
const SWITCHOVER_FENCE_WAIT_MS = 5000;
export interface HaDeps {
  agent: AgentClient;
  monitor: PrimaryMonitor;
  leases: PrimaryLeases;
  /** When a primary the monitor was not watching (no pod, or an operator restart) was first seen down. */
  downSince?: Map<string, number>;
  /** A failover or switchover completed, taking `ms` from the claim to the promotion (the operator's metrics). */
  onRoleChange?: (cluster: PostgreSQLCluster, kind: 'failover' | 'switchover', ms: number) => void;
}

/** Events for role changes that ended in an agent (rejoins above all: they run for a while on their own). */
async function recordEnded(ctx: ReconcileContext, ended: EndedOperation[]): Promise<void> {
  for (const { instance, op } of ended) {
    const seconds = op.finishedAt ? ((Date.parse(op.finishedAt) - Date.parse(op.startedAt)) / 1000).toFixed(1) : '?';
    if (op.kind === 'follow') {
      await (op.state === 'succeeded'
        ? ctx.event('Normal', 'RejoinCompleted', `${instance} streams from ${op.target ?? 'the primary'} (${seconds} s)`)
        : ctx.event('Warning', 'RejoinFailed', `${instance} could not follow ${op.target ?? 'the primary'} (at ${op.step}, after ${seconds} s): ${op.error ?? 'no reason'}; trying again`));
    } else if (op.kind === 'isolate') {
      await ctx.event('Warning', 'SelfIsolated', `${instance} heard from no operator and had no streaming replica for too long, and restarted read-only (isolationTimeoutSeconds)`);
    } else if (op.state === 'failed') {
      await ctx.event('Warning', `${op.kind === 'promote' ? 'Promote' : 'Fence'}Failed`, `${op.kind} of ${instance} failed: ${op.error ?? 'no reason'}`);
    }
  }
}

/**
 * Since when the primary counts as failed, or undefined while it is not. The monitor's
 * confirmation comes first; without one, the server itself is asked, so a slow agent is never
 * taken for a dead primary. A primary that is still starting, or restarting in place by plan
 * (within the rollout's recorded hold), has not failed.
 */
async function primaryDownSince(deps: HaDeps, key: string, primary: ObservedInstance | undefined, restartHeld: boolean): Promise<number | undefined> {
  const downSince = (deps.downSince ??= new Map());
  const a = primary?.agent;
  const starting = a && ['AwaitingBootstrap', 'Bootstrapping', 'Starting', 'Rewinding'].includes(a.phase);
  // A planned restart in place (primary-restart.ts): the primary may come back writable until then.
  if ((a?.running && a.role === 'primary' && !a.fenced) || starting || restartHeld) {
    downSince.delete(key);
    return undefined;
  }
  const monitored = primary?.podIP ? deps.monitor.failedSince(key, primary.podIP) : undefined;
  if (monitored !== undefined) return monitored;
  if (primary?.podIP && (await postgresAnswers(primary.podIP, POSTGRES_PORT, 1000))) return undefined;
  if (!downSince.has(key)) downSince.set(key, Date.now());
  return downSince.get(key);
}

async function labelPod(ctx: ReconcileContext, instance: string, role: string | null): Promise<void> {
  await ctx.clients.core.patchNamespacedPod(
    { name: names.pod(instance), namespace: ctx.cluster.metadata.namespace!, body: { metadata: { labels: { [LABELS.role]: role } } } },
    setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
  );
  ctx.wrote(`Pod/${names.pod(instance)}`);
}

/** What the pass reports when there is nothing to plan with yet. */
function notYet(reason: string, message: string): ConditionInput[] {
  return [
    { type: 'PrimaryAvailable', status: 'Unknown', reason, message },
    { type: 'ReplicasStreaming', status: 'Unknown', reason, message },
  ];
}

/** How long a primary coming back from a stop on purpose (waking, a failed upgrade) is waited for before ha may fail over. */
const RETURN_HOLD_MS = 5 * 60_000;

/**
 * Why ha does nothing in this pass: the instances are stopped on purpose (a major upgrade's stop,
 * hibernation), or the primary they stopped is coming back (waking, or the old version after a
 * failed upgrade: fenced until unfenced, then read-only until confirmed) — replicas may be up first,
 * and promoting one would change the primary the user kept. Bounded: past RETURN_HOLD_MS, ha acts.
 */
function heldOnPurpose(ctx: ReconcileContext): { reason: string; message: string } | undefined {
  const { majorUpgrade: mu, hibernation: h } = ctx.status;
  if (haHeldByUpgrade(mu)) return { reason: 'MajorUpgrade', message: `A major version upgrade stopped the instances (${mu!.message})` };
  if (haHeldByHibernation(h)) return { reason: 'Hibernation', message: `The cluster hibernates (spec.hibernation): ${h!.phase}` };
  const back = h?.phase === 'Waking' ? { primary: h.primary, since: h.since } : mu?.phase === 'Failed' && mu.stoppedAt ? { primary: mu.primary, since: mu.finishedAt } : undefined;
  if (!back?.primary || !back.since || Date.now() - Date.parse(back.since) > RETURN_HOLD_MS) return undefined;
  const agent = ctx.observed.instances.find((i) => i.name === back.primary)?.agent;
  if (agent?.running) return undefined;
  return { reason: 'PrimaryReturning', message: `${back.primary} was stopped on purpose and is starting again; it stays the primary (ha waits for it up to ${RETURN_HOLD_MS / 60_000} minutes)` };
}

/** The plan for this pass, from the observation and the spec (pure apart from the down-check). */
async function planPass(ctx: ReconcileContext, deps: HaDeps, key: string, primary: string): Promise<HaPlan> {
  const { cluster, observed } = ctx;
  const ha = ctx.spec.highAvailability;
  const sync = ha.synchronousCommit && ha.durability === 'required';
  const fenced = fencedOnPurpose(ctx.status);
  // A primary fenced on purpose has not failed: nothing counts towards a failover meanwhile, and
  // no heartbeat watches it (a confirmed failure would keep the observation from asking its agent,
  // which the unfence needs).
  if (fenced.includes(primary)) {
    deps.downSince?.delete(key);
    deps.monitor.unwatch(key);
  }
  return planHa({
    fenced,
    instances: observed.instances,
    primary,
    // The switchover a rollout asks for (to update the primary last) first: a spec.primary that
    // pins the current primary would otherwise hold the rollout before its last step for ever.
    // Once the rollout is done, spec.primary takes the role back (a second switchover).
    requestedPrimary: ctx.status.rollout?.switchoverTo ?? cluster.spec.primary,
    haEnabled: ha.enabled,
    syncQuorum: sync ? ha.synchronousReplicas : undefined,
    primaryFailedSince: fenced.includes(primary) ? undefined : await primaryDownSince(deps, key, observed.instances.find((o) => o.name === primary), heldUntil(ctx.status.rollout?.primaryRestart, primary, Date.now()) !== undefined),
    failoverDelayMs: ha.failoverDelaySeconds * 1000,
    bootstrapMode: cluster.spec.bootstrap?.recovery ? 'restore' : 'initdb',
    now: Date.now(),
  });
}

/** Carries the actions out in order; true when one still runs in its agent (the rest waits for a later pass). */
async function carryOut(ctx: ReconcileContext, deps: HaDeps, plan: HaPlan, endpoint: (host: string) => AgentEndpoint): Promise<boolean> {
  const hostOf = (instance: string) => ctx.observed.instances.find((o) => o.name === instance)?.podIP;
  for (const action of plan.actions) {
    if ((await execute(ctx, deps, action, hostOf, endpoint)) === 'wait') return true;
  }
  return false;
}

/** Events and the Lease after the actions: a completed failover or switchover, the first primary's Lease, a confirmed holder. */
async function recordOutcome(ctx: ReconcileContext, deps: HaDeps, plan: HaPlan, waiting: boolean, started: number): Promise<void> {
  const claim = plan.actions.find((a): a is Extract<HaAction, { kind: 'claim' }> => a.kind === 'claim');
  if (claim && !waiting) {
    const ms = Date.now() - started;
    const what = claim.reason === 'failover' ? 'Failover' : 'Switchover';
    ctx.log.info({ from: claim.from, to: claim.instance, ms }, `${claim.reason} done`);
    deps.onRoleChange?.(ctx.cluster, claim.reason, ms);
    await ctx.event(claim.reason === 'failover' ? 'Warning' : 'Normal', `${what}Completed`, `${what} from ${claim.from} to ${claim.instance}: promoted in ${ms} ms`);
  }
  // The first healthy primary gets its Lease; from then on only claims move it.
  if (!ctx.observed.leaseHolder && primaryUp(plan) && !claim) await deps.leases.claim(ctx.cluster, plan.primary, plan.primary);
  const promoted = plan.actions.find((a) => a.kind === 'promote');
  if (promoted && !claim && !waiting) {
    // The holder confirmed: a claim promoted late, or a former primary that restarted read-only.
    await ctx.event('Normal', 'PrimaryConfirmed', `${promoted.instance} holds the primary Lease and was promoted (it ran read-only) in ${Date.now() - started} ms`);
  }
}

/**
 * An Event when what runs changes, saying so when it is not what spec.version asks for (the image
 * holds another minor release: status.version and the VERSION column show what runs).
 */
async function announceVersion(ctx: ReconcileContext, running: string | undefined): Promise<void> {
  if (!running || running === ctx.status.version) return;
  const asked = ctx.cluster.spec.version;
  const runs = /^\d+(\.\d+)?/.exec(running)?.[0] ?? running;
  const matches = asked.includes('.') ? runs === asked : runs.split('.')[0] === asked;
  // Another major: not a substitution (the rollout's RollingUpdate says why nothing rolls).
  if (!matches && runs.split('.')[0] !== asked.split('.')[0]) return;
  await (matches
    ? ctx.event('Normal', 'VersionRunning', `PostgreSQL ${running} runs`)
    : ctx.event('Normal', 'VersionDiffers', `spec.version asks for ${asked}; PostgreSQL ${running} runs (the nearest release the image provides)`));
}

const primaryUp = (plan: HaPlan) => plan.conditions.some((c) => c.type === 'PrimaryAvailable' && c.status === 'True');

/** A problem a person must fix, found after everything else went on (failover included). */
function refusal(ctx: ReconcileContext, plan: HaPlan): ReconcileError | undefined {
  const instances = ctx.observed.instanceNames;
  const requested = ctx.cluster.spec.primary;
  if (requested && !instances.includes(requested)) {
    return new ReconcileError('UnknownPrimary', `spec.primary names ${requested}, which is not an instance of this cluster (instances: ${instances.join(', ')}); no switchover`, plan.conditions);
  }
  const bootstrapFailed = plan.conditions.find((c) => c.reason === 'BootstrapFailed');
  return bootstrapFailed ? new ReconcileError('BootstrapFailed', bootstrapFailed.message, plan.conditions) : undefined;
}

export function createHaReconciler(deps: HaDeps): Reconciler {
  return {
    name: 'ha',
    statusFields: ['currentPrimary', 'streamingReplicas', 'version'],
    async reconcile(ctx: ReconcileContext): Promise<ReconcilerResult> {
      const { cluster, observed } = ctx;
      const key = `${cluster.metadata.namespace}/${cluster.metadata.name}`;
      const primary = observed.primary;
      if (!primary) return { conditions: notYet('NoInstances', 'The cluster has no instances yet') };
      const kept = { currentPrimary: ctx.status.currentPrimary ?? primary, streamingReplicas: ctx.status.streamingReplicas, version: ctx.status.version };
      // The instances stopped on purpose (pg_upgrade, hibernation) or the primary coming back from it: nothing to fail over.
      const held = heldOnPurpose(ctx);
      if (held) return { conditions: notYet(held.reason, held.message), status: kept };
      const token = observed.agentToken;
      if (!token) {
        // No agent token yet (install creates it): no agent was asked.
        return { conditions: notYet('AgentTokenMissing', `The agents' token (Secret ${names.agentSecret(cluster.metadata.name!)}) does not exist yet`), status: { ...kept, currentPrimary: primary } };
      }
      await recordEnded(ctx, observed.endedOperations);
      // Without the client certificate a TLS agent wants (no CA yet), the call goes without it and is refused: unreachable.
      const endpoint = (host: string): AgentEndpoint => agentEndpointAt(observed, host) ?? { host, token, isolationSeconds: observed.isolationSeconds };
      const plan = await planPass(ctx, deps, key, primary);
      const started = Date.now();
      const waiting = await carryOut(ctx, deps, plan, endpoint);
      await recordOutcome(ctx, deps, plan, waiting, started);
      const now = observed.instances.find((o) => o.name === plan.primary);
      const status = {
        currentPrimary: plan.primary,
        streamingReplicas: observed.instances.filter((o) => o.name !== plan.primary && o.agent?.streaming).length,
        // What the instances run, as the primary reports it (spec.version is what they should run).
        version: now?.agent?.postgresVersion ?? ctx.status.version,
      };
      await announceVersion(ctx, status.version);
      // Heartbeats go to whichever instance is primary now.
      if (now?.podIP && primaryUp(plan)) deps.monitor.watch(key, endpoint(now.podIP));
      const refused = refusal(ctx, plan);
      if (refused) throw refused;
      const requeueAfterMs = waiting ? 250 : plan.requeueAfterMs;
      return { conditions: plan.conditions, status, ...(requeueAfterMs ? { requeueAfterMs } : {}) };
    },
  };
}

/** Carries out one action; 'wait' when an operation it started still runs in the agent. */
async function execute(
  ctx: ReconcileContext,
  deps: HaDeps,
  action: HaAction,
  hostOf: (instance: string) => string | undefined,
  endpoint: (host: string) => AgentEndpoint,
): Promise<'done' | 'wait'> {
  const host = hostOf(action.instance);
  const log = ctx.log.child({ action: action.kind, instance: action.instance });
  switch (action.kind) {
    case 'label':
      await labelPod(ctx, action.instance, action.role);
      return 'done';
    case 'claim':
      log.warn({ from: action.from, reason: action.reason }, `${action.reason}: claiming the primary role`);
      await deps.leases.claim(ctx.cluster, action.from, action.instance);
      return 'done';
    case 'fence': {
      if (!host) return 'done';
      // Best effort (failover): the old primary gets a moment; routing is already cut.
      // Switchover: its clean stop, looked at again by later passes until it has stopped.
      const stopSeconds = ctx.spec.highAvailability.switchoverDelaySeconds;
      const answer = await (action.bestEffort ? deps.agent.fence(endpoint(host), FAILOVER_FENCE_WAIT_MS) : deps.agent.fence(endpoint(host), SWITCHOVER_FENCE_WAIT_MS, { stopSeconds })).catch((err: unknown) => {
        if (!action.bestEffort) throw err;
        log.warn({ err: errorText(err) }, 'could not fence the old primary; its routing is cut and it will be rewound when it returns');
        return undefined;
      });
      return answer && !answer.done && !action.bestEffort ? 'wait' : 'done';
    }
    default:
      if (!host) throw new ReconcileError('InstanceUnreachable', `${action.instance} has no running pod for ${action.kind}`);
  }
  log.info(`${action.kind} ${action.instance}`);
  switch (action.kind) {
    case 'bootstrap':
      await deps.agent.bootstrap(endpoint(host), action.request);
      return 'done';
    case 'promote':
      return (await deps.agent.promote(endpoint(host), PROMOTE_WAIT_MS)).done ? 'done' : 'wait';
    case 'follow':
      // Started, not waited for: its progress is in the agent's status.operation.
      try {
        await deps.agent.follow(endpoint(host), { primary: { host: action.host, port: POSTGRES_PORT }, ...(action.reclone ? { reclone: true } : {}) }, action.waitMs ?? 0);
      } catch (err) {
        log.warn({ err: errorText(err) }, 'could not start follow; trying again later');
      }
      return 'done';
  }
}
