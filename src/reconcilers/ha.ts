// ha: asks every instance's agent how it is, plans with ha-plan.ts, and carries the plan out in
// order: bootstrap, role labels (the rw/ro Services select on them), failover and switchover
// (claim the primary Lease → cut routing → fence → promote), repointing replicas, rejoining an old
// primary (follow → the agent checkpoints the new primary, pg_rewind, or a fresh clone).
// Nothing here waits on a long operation: follow is started and looked at in later passes,
// promote and fence are waited for a few seconds at most (they go on in the agent).
import { ApiException, PatchStrategy, setHeaderOptions, type CoordinationV1Api, type CoreV1Api, type V1Pod } from '@kubernetes/client-node';
import { API_GROUP_VERSION, CLUSTER_KIND, LABELS, POSTGRES_PORT } from '../api/constants.js';
import { DEFAULTS, type PostgreSQLCluster } from '../api/cluster.js';
import { ownerReference } from '../builders/meta.js';
import { names } from '../api/names.js';
import { AgentClient, AgentError, type AgentEndpoint } from '../instance/agent-client.js';
import { microTime } from '../runtime/time.js';
import type { InstanceStatus, OperationStatus } from '../instance/api-types.js';
import { postgresAnswers } from '../postgres/wire-probe.js';
import type { PrimaryMonitor } from './primary-monitor.js';
import { planHa, type HaAction, type ObservedInstance } from './ha-plan.js';
import { ReconcileError, type ReconcileContext, type Reconciler, type ReconcilerResult } from './types.js';

/** The Lease that records which instance is primary; promotions replace it with resourceVersion (CAS). */
export const primaryLeaseName = (cluster: string) => `${cluster}-primary`;

/** Agent API tokens by Secret, read once: the operator's caches keep no Secret data. */
export class AgentTokens {
  private readonly tokens = new Map<string, string>();
  constructor(private readonly core: CoreV1Api) {}

  async get(namespace: string, cluster: string): Promise<string | undefined> {
    const key = `${namespace}/${cluster}`;
    const known = this.tokens.get(key);
    if (known) return known;
    try {
      const secret = await this.core.readNamespacedSecret({ name: names.agentSecret(cluster), namespace });
      const token = secret.data?.token ? Buffer.from(secret.data.token, 'base64').toString('utf8') : undefined;
      if (token) this.tokens.set(key, token);
      return token;
    } catch (err) {
      if (err instanceof ApiException && err.code === 404) return undefined;
      throw err;
    }
  }

  forget(namespace: string, cluster: string): void {
    this.tokens.delete(`${namespace}/${cluster}`);
  }
}

/** How long a pass waits for a promotion (pg_promote takes ~0.1 s) before looking again later. */
const PROMOTE_WAIT_MS = 5000;
/** Failover: the old primary gets this long to stop; routing is cut whatever it answers. */
const FAILOVER_FENCE_WAIT_MS = 2000;
/** Switchover: a pass waits this long for the clean stop, then looks again (it goes on in the agent). */
const SWITCHOVER_FENCE_WAIT_MS = 5000;
/** Short: a frozen agent holds the whole pass for this long (the bridge below covers a slow one). */
const STATUS_TIMEOUT_MS = 600;
/** A status call that fails is bridged with the last answer this long and this often, if postgres answers. */
const STALE_STATUS_MS = 10_000;
const STALE_STATUS_MAX_MISSES = 2;

interface LastStatus {
  ip: string;
  status: InstanceStatus;
  at: number;
  misses: number;
}

export interface HaDeps {
  agent: AgentClient;
  tokens: AgentTokens;
  monitor: PrimaryMonitor;
  coordination: CoordinationV1Api;
  /** When a primary the monitor was not watching (no pod, or an operator restart) was first seen down. */
  downSince?: Map<string, number>;
  /** Primary Lease holders by cluster, once read or written. */
  holders?: Map<string, string>;
  /** Each instance's last status answer, by cluster uid and instance. */
  lastStatus?: Map<string, LastStatus>;
}

/**
 * Every instance's agent status, fetched concurrently with a short timeout. One failed call does
 * not make an instance unreachable (that stripped the role labels of a healthy cluster): its last
 * answer stands in for a few misses while its postgres answers on the wire. A primary the monitor
 * confirmed failed is not asked at all (a frozen one would hold the pass for the timeout). A 401
 * means the agent Secret changed: the token is read again and the call repeated once.
 */
async function observeAgents(
  deps: HaDeps,
  cluster: PostgreSQLCluster,
  pods: { name: string; ip?: string; confirmedDown: boolean }[],
  isolationSeconds: number,
): Promise<{ token: string; statuses: Map<string, InstanceStatus | undefined>; ended: { instance: string; op: OperationStatus }[] } | undefined> {
  const ns = cluster.metadata.namespace!;
  const name = cluster.metadata.name!;
  const last = (deps.lastStatus ??= new Map());
  const ask = async (token: string) =>
    Promise.all(
      pods.map(async (p) => {
        if (!p.ip || p.confirmedDown) return { p, status: undefined, unauthorized: false };
        try {
          return { p, status: await deps.agent.status({ host: p.ip, token, isolationSeconds }, STATUS_TIMEOUT_MS), unauthorized: false };
        } catch (err) {
          return { p, status: undefined, unauthorized: err instanceof AgentError && err.status === 401 };
        }
      }),
    );
  let token = await deps.tokens.get(ns, name);
  if (!token) return undefined;
  let answers = await ask(token);
  if (answers.some((a) => a.unauthorized)) {
    deps.tokens.forget(ns, name);
    const fresh = await deps.tokens.get(ns, name);
    if (!fresh) return undefined;
    token = fresh;
    answers = await ask(token);
  }
  const out = new Map<string, InstanceStatus | undefined>();
  const ended: { instance: string; op: OperationStatus }[] = [];
  const now = Date.now();
  await Promise.all(
    answers.map(async ({ p, status }) => {
      const key = `${cluster.metadata.uid}/${p.name}`;
      if (status) {
        const before = last.get(key)?.status.operation;
        const op = status.operation;
        // Ended since the last answer (a quick one may never have been seen running).
        if (last.has(key) && op && op.state !== 'running' && (before?.startedAt !== op.startedAt || before.state === 'running')) ended.push({ instance: p.name, op });
        last.set(key, { ip: p.ip!, status, at: now, misses: 0 });
        out.set(p.name, status);
        return;
      }
      const prev = last.get(key);
      const bridge = !!p.ip && !p.confirmedDown && prev && prev.ip === p.ip && prev.misses < STALE_STATUS_MAX_MISSES && now - prev.at < STALE_STATUS_MS;
      if (bridge && (await postgresAnswers(p.ip!, POSTGRES_PORT, 300))) {
        prev.misses++;
        out.set(p.name, prev.status);
        return;
      }
      last.delete(key);
      out.set(p.name, undefined);
    }),
  );
  return { token, statuses: out, ended };
}

/** Events for role changes that ended in an agent (rejoins above all: they run for a while on their own). */
async function recordEnded(ctx: ReconcileContext, ended: { instance: string; op: OperationStatus }[]): Promise<void> {
  const target = { apiVersion: API_GROUP_VERSION, kind: CLUSTER_KIND, metadata: ctx.cluster.metadata };
  for (const { instance, op } of ended) {
    const seconds = op.finishedAt ? ((Date.parse(op.finishedAt) - Date.parse(op.startedAt)) / 1000).toFixed(1) : '?';
    if (op.kind === 'follow') {
      await (op.state === 'succeeded'
        ? ctx.events.record(target, 'Normal', 'RejoinCompleted', `${instance} streams from ${op.target ?? 'the primary'} (${seconds} s)`)
        : ctx.events.record(target, 'Warning', 'RejoinFailed', `${instance} could not follow ${op.target ?? 'the primary'} (at ${op.step}, after ${seconds} s): ${op.error ?? 'no reason'}; trying again`));
    } else if (op.kind === 'isolate') {
      await ctx.events.record(target, 'Warning', 'SelfIsolated', `${instance} heard from no operator and had no streaming replica for too long, and restarted read-only (isolationTimeoutSeconds)`);
    } else if (op.state === 'failed') {
      await ctx.events.record(target, 'Warning', `${op.kind === 'promote' ? 'Promote' : 'Fence'}Failed`, `${op.kind} of ${instance} failed: ${op.error ?? 'no reason'}`);
    }
  }
}

/**
 * Since when the primary counts as failed, or undefined while it is not. The monitor's
 * confirmation comes first; without one, the server itself is asked, so a slow agent is never
 * taken for a dead primary. A primary that is still starting has not failed.
 */
async function primaryDownSince(deps: HaDeps, key: string, primary: ObservedInstance | undefined): Promise<number | undefined> {
  const downSince = (deps.downSince ??= new Map());
  const a = primary?.agent;
  const starting = a && ['AwaitingBootstrap', 'Bootstrapping', 'Starting', 'Rewinding'].includes(a.phase);
  if ((a?.running && a.role === 'primary' && !a.fenced) || starting) {
    downSince.delete(key);
    return undefined;
  }
  const monitored = primary?.podIP ? deps.monitor.failedSince(key, primary.podIP) : undefined;
  if (monitored !== undefined) return monitored;
  if (primary?.podIP && (await postgresAnswers(primary.podIP, POSTGRES_PORT, 1000))) return undefined;
  if (!downSince.has(key)) downSince.set(key, Date.now());
  return downSince.get(key);
}

function podIP(pod: V1Pod | undefined): string | undefined {
  if (!pod || pod.metadata?.deletionTimestamp || pod.status?.phase !== 'Running') return undefined;
  return pod.status?.podIP;
}

/**
 * The instance the primary Lease names: the source of truth for who is primary. Status only
 * reports it, and an informer's copy of status can lag a write by a moment — deciding from it
 * once undid a switchover. Known holders are remembered (this operator, as leader, is the only
 * writer); otherwise the Lease is read.
 */
async function leaseHolder(deps: HaDeps, cluster: PostgreSQLCluster): Promise<string | undefined> {
  // By uid: a new cluster of the same name must not inherit the old one's primary.
  const key = cluster.metadata.uid!;
  const holders = (deps.holders ??= new Map());
  if (holders.has(key)) return holders.get(key);
  try {
    const lease = await deps.coordination.readNamespacedLease({ name: primaryLeaseName(cluster.metadata.name!), namespace: cluster.metadata.namespace! });
    const holder = lease.spec?.holderIdentity ?? undefined;
    if (holder) holders.set(key, holder);
    return holder;
  } catch (err) {
    if (err instanceof ApiException && err.code === 404) return undefined;
    throw err;
  }
}

async function claimPrimary(deps: HaDeps, cluster: PostgreSQLCluster, from: string, to: string): Promise<void> {
  await replacePrimaryLease(deps, cluster, from, to);
  (deps.holders ??= new Map()).set(cluster.metadata.uid!, to);
}

async function replacePrimaryLease(deps: HaDeps, cluster: PostgreSQLCluster, from: string, to: string): Promise<void> {
  const namespace = cluster.metadata.namespace!;
  const name = primaryLeaseName(cluster.metadata.name!);
  const now = microTime(new Date());
  let lease;
  try {
    lease = await deps.coordination.readNamespacedLease({ name, namespace });
  } catch (err) {
    if (!(err instanceof ApiException && err.code === 404)) throw err;
    await deps.coordination.createNamespacedLease({
      namespace,
      body: {
        // Owned by the cluster: it goes with it.
        metadata: { name, namespace, labels: { [LABELS.cluster]: cluster.metadata.name!, [LABELS.managedBy]: 'pgpilot' }, ownerReferences: [ownerReference(cluster)] },
        spec: { holderIdentity: to, acquireTime: now, renewTime: now, leaseTransitions: 0 },
      },
    });
    return;
  }
  if (lease.spec?.holderIdentity && lease.spec.holderIdentity !== from && lease.spec.holderIdentity !== to) {
    throw new ReconcileError('PrimaryClaimConflict', `the primary Lease names ${lease.spec.holderIdentity}, not ${from}: another operator acted; re-reading`);
  }
  lease.spec = { ...lease.spec, holderIdentity: to, acquireTime: now, renewTime: now, leaseTransitions: (lease.spec?.leaseTransitions ?? 0) + 1 };
  try {
    await deps.coordination.replaceNamespacedLease({ name, namespace, body: lease });
  } catch (err) {
    if (err instanceof ApiException && err.code === 409) throw new ReconcileError('PrimaryClaimConflict', `the primary Lease changed while promoting ${to}: another operator acted; re-reading`);
    throw err;
  }
}

async function labelPod(ctx: ReconcileContext, instance: string, role: string | null): Promise<void> {
  await ctx.clients.core.patchNamespacedPod(
    { name: names.pod(instance), namespace: ctx.cluster.metadata.namespace!, body: { metadata: { labels: { [LABELS.role]: role } } } },
    setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
  );
  ctx.facts.writes.push(`Pod/${names.pod(instance)}`);
}

export function createHaReconciler(deps: HaDeps): Reconciler {
  return {
    name: 'ha',
    async reconcile(ctx: ReconcileContext): Promise<ReconcilerResult> {
      const { cluster } = ctx;
      const ns = cluster.metadata.namespace!;
      const name = cluster.metadata.name!;
      const key = `${ns}/${name}`;
      const instances = ctx.facts.instanceNames ?? [];
      if (instances.length === 0) return {};

      const holder = await leaseHolder(deps, cluster);
      const primary = holder ?? cluster.status?.currentPrimary ?? instances[0]!;
      const pods = instances.map((instance) => {
        const pod = ctx.cache.get<V1Pod>('Pod', ns, names.pod(instance));
        const ip = podIP(pod);
        return { name: instance, ip, roleLabel: pod?.metadata?.labels?.[LABELS.role], confirmedDown: instance === primary && !!ip && deps.monitor.failedSince(key, ip) !== undefined };
      });
      const ha = cluster.spec.highAvailability;
      // Sent to every agent: one instance, or HA off, has nobody else to promote — isolating would only cause an outage.
      const isolationSeconds = (ha?.enabled ?? DEFAULTS.haEnabled) && instances.length > 1 ? (ha?.isolationTimeoutSeconds ?? DEFAULTS.isolationTimeoutSeconds) : 0;
      // No agent token yet (install creates it): nothing to ask.
      const seen = await observeAgents(deps, cluster, pods, isolationSeconds);
      if (!seen) return {};
      const { token, statuses, ended } = seen;
      await recordEnded(ctx, ended);
      const observed: ObservedInstance[] = pods.map((p) => ({ name: p.name, podIP: p.ip, roleLabel: p.roleLabel, agent: statuses.get(p.name) }));
      const endpoint = (host: string): AgentEndpoint => ({ host, token, isolationSeconds });
      const sync = (ha?.synchronousCommit ?? DEFAULTS.synchronousCommit) && (ha?.durability ?? DEFAULTS.durability) === 'required';
      const plan = planHa({
        instances: observed,
        primary,
        requestedPrimary: cluster.spec.primary,
        haEnabled: ha?.enabled ?? DEFAULTS.haEnabled,
        syncQuorum: sync ? (ha?.synchronousReplicas ?? DEFAULTS.synchronousReplicas) : undefined,
        primaryFailedSince: await primaryDownSince(deps, key, observed.find((o) => o.name === primary)),
        failoverDelayMs: (ha?.failoverDelaySeconds ?? DEFAULTS.failoverDelaySeconds) * 1000,
        bootstrapMode: cluster.spec.bootstrap?.recovery ? 'restore' : 'initdb',
        now: Date.now(),
      });

      const target = { apiVersion: API_GROUP_VERSION, kind: CLUSTER_KIND, metadata: cluster.metadata };
      const hostOf = (instance: string) => observed.find((o) => o.name === instance)?.podIP;
      const started = Date.now();
      let waiting = false;
      for (const action of plan.actions) {
        // A promotion or a clean stop still running in its agent: the rest waits for a later pass.
        if ((await execute(ctx, deps, action, hostOf, endpoint)) === 'wait') {
          waiting = true;
          break;
        }
      }
      const claim = plan.actions.find((a): a is Extract<HaAction, { kind: 'claim' }> => a.kind === 'claim');
      if (claim && !waiting) {
        const ms = Date.now() - started;
        const what = claim.reason === 'failover' ? 'Failover' : 'Switchover';
        ctx.log.info({ from: claim.from, to: claim.instance, ms }, `${claim.reason} done`);
        await ctx.events.record(target, claim.reason === 'failover' ? 'Warning' : 'Normal', `${what}Completed`, `${what} from ${claim.from} to ${claim.instance}: promoted in ${ms} ms`);
      }
      // The first healthy primary gets its Lease; from then on only claims move it.
      const primaryUp = plan.conditions.some((c) => c.type === 'PrimaryAvailable' && c.status === 'True');
      if (!holder && primaryUp && !claim) await claimPrimary(deps, cluster, plan.primary, plan.primary);
      const promoted = plan.actions.find((a) => a.kind === 'promote');
      if (promoted && !claim && !waiting) {
        // The holder confirmed: a claim promoted late, or a former primary that restarted read-only.
        await ctx.events.record(target, 'Normal', 'PrimaryConfirmed', `${promoted.instance} holds the primary Lease and was promoted (it ran read-only) in ${Date.now() - started} ms`);
      }
      ctx.facts.primary = plan.primary;
      ctx.facts.streamingReplicas = observed.filter((o) => o.name !== plan.primary && o.agent?.streaming).length;
      ctx.facts.runningVersion = observed.find((o) => o.name === plan.primary)?.agent?.postgresVersion ?? undefined;
      ctx.facts.primaryStatus = observed.find((o) => o.name === plan.primary)?.agent;
      // Heartbeats go to whichever instance is primary now.
      const newPrimaryIP = hostOf(plan.primary);
      if (newPrimaryIP && primaryUp) deps.monitor.watch(key, endpoint(newPrimaryIP));
      const requested = cluster.spec.primary;
      if (requested && !instances.includes(requested)) {
        // Everything else went on (failover included); only the switchover is refused.
        throw new ReconcileError('UnknownPrimary', `spec.primary names ${requested}, which is not an instance of this cluster (instances: ${instances.join(', ')}); no switchover`);
      }
      const bootstrapFailed = plan.conditions.find((c) => c.reason === 'BootstrapFailed');
      if (bootstrapFailed) throw new ReconcileError('BootstrapFailed', bootstrapFailed.message);
      const requeueAfterMs = waiting ? 250 : plan.requeueAfterMs;
      return { conditions: plan.conditions, ...(requeueAfterMs ? { requeueAfterMs } : {}) };
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
      await claimPrimary(deps, ctx.cluster, action.from, action.instance);
      return 'done';
    case 'fence': {
      if (!host) return 'done';
      // Best effort (failover): the old primary gets a moment; routing is already cut.
      // Switchover: its clean stop, looked at again by later passes until it has stopped.
      const stopSeconds = ctx.cluster.spec.highAvailability?.switchoverDelaySeconds ?? DEFAULTS.switchoverDelaySeconds;
      const answer = await (action.bestEffort ? deps.agent.fence(endpoint(host), FAILOVER_FENCE_WAIT_MS) : deps.agent.fence(endpoint(host), SWITCHOVER_FENCE_WAIT_MS, { stopSeconds })).catch((err: unknown) => {
        if (!action.bestEffort) throw err;
        log.warn({ err: (err as Error).message }, 'could not fence the old primary; its routing is cut and it will be rewound when it returns');
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
        log.warn({ err: (err as Error).message }, 'could not start follow; trying again later');
      }
      return 'done';
  }
}
