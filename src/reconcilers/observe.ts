// The observation step: once per pass, before any reconciler runs, everything the reconcilers
// decide from — which instances the cluster should have, per instance its StatefulSet, pod,
// claims and what its agent says, and who holds the primary Lease. Agent calls are concurrent,
// bounded, and one per instance: every reconciler reads the same answers, so no decision depends
// on the order the reconcilers run in.
import { type CoreV1Api, type V1PersistentVolumeClaim, type V1Pod, type V1StatefulSet } from '@kubernetes/client-node';
import type { PostgreSQLCluster } from '../api/cluster.js';
import { ANNOTATIONS, LABELS, POSTGRES_PORT } from '../api/constants.js';
import { names } from '../api/names.js';
import { effectiveInstances, paceCreation, planInstances, type InstancePlan } from '../builders/instance-plan.js';
import { AgentError, type AgentClient, type AgentClientTls, type AgentEndpoint } from '../instance/agent-client.js';
import type { AgentCertificates } from './agent-certificates.js';
import type { InstanceStatus, OperationStatus } from '../instance/api-types.js';
import { postgresAnswers } from '../postgres/wire-probe.js';
import type { ObservedInstance } from './ha-plan.js';
import type { PrimaryLeases } from './primary-lease.js';
import type { PrimaryMonitor } from './primary-monitor.js';
import type { OwnedCache } from './types.js';
import { specOf } from '../api/resolve-spec.js';
import { ignoreNotFound } from '../runtime/api-status.js';

/** Short: a frozen agent holds the whole pass for this long (the bridge below covers a slow one). */
const STATUS_TIMEOUT_MS = 600;
/** A status call that fails is bridged with the last answer this long and this often, if postgres answers. */
const STALE_STATUS_MS = 10_000;
const STALE_STATUS_MAX_MISSES = 2;

/** What ha-plan sees of an instance (name, pod IP, role label, agent status), and more. */
export interface InstanceObservation extends ObservedInstance {
  statefulSet?: V1StatefulSet;
  pod?: V1Pod;
  claims: V1PersistentVolumeClaim[];
  /** Its agent serves HTTPS and wants the operator's client certificate (a pod made before agent TLS does not). */
  agentTls?: boolean;
}

export interface EndedOperation {
  instance: string;
  op: OperationStatus;
}

export interface Observation {
  /** Instances the cluster should have now (kept and to be created), in ordinal order. */
  instanceNames: string[];
  plan: InstancePlan;
  /** Instances spec.instances asks for beyond instanceNames, created once those are ready (one at a time). */
  deferred: string[];
  /** Instances not ready yet that hold `deferred` back. */
  waitingFor: string[];
  /** spec.instances is below what synchronous commit needs: the cluster is held at this many. */
  heldAt?: number;
  /** Every instance StatefulSet that exists, including those the plan removes. */
  statefulSets: V1StatefulSet[];
  /** One entry per name in instanceNames. */
  instances: InstanceObservation[];
  /** Who holds the primary Lease (undefined: nobody yet). */
  leaseHolder?: string;
  /** The primary the reconcilers work from: the Lease holder, else status, else the first instance. */
  primary?: string;
  /** The agents' API token (undefined until install created it: no agent was asked). */
  agentToken?: string;
  /** The operator's client certificate for the agents (undefined until the cluster's CA exists). */
  agentTls?: AgentClientTls;
  /** Self-isolation timeout sent to every agent (0: one instance or HA off). */
  isolationSeconds: number;
  /** Agent operations that ended since the previous pass (for Events). */
  endedOperations: EndedOperation[];
  /** Agent status requests made in this observation (one per reachable instance, twice after a token change). */
  statusCalls: number;
}

/** Agent API tokens by Secret, read once: the operator's caches keep no Secret data. */
export class AgentTokens {
  private readonly tokens = new Map<string, string>();
  constructor(private readonly core: CoreV1Api) {}

  async get(namespace: string, cluster: string): Promise<string | undefined> {
    const key = `${namespace}/${cluster}`;
    const known = this.tokens.get(key);
    if (known) return known;
    const secret = await ignoreNotFound(this.core.readNamespacedSecret({ name: names.agentSecret(cluster), namespace }));
    const token = secret?.data?.token ? Buffer.from(secret.data.token, 'base64').toString('utf8') : undefined;
    if (token) this.tokens.set(key, token);
    return token;
  }

  forget(namespace: string, cluster: string): void {
    this.tokens.delete(`${namespace}/${cluster}`);
  }
}

export interface ObserverDeps {
  agent: AgentClient;
  tokens: AgentTokens;
  certificates: AgentCertificates;
  monitor: PrimaryMonitor;
  leases: PrimaryLeases;
}

interface LastStatus {
  ip: string;
  status: InstanceStatus;
  at: number;
  misses: number;
}

/** The pod's agent serves mutual TLS (its template says so beside POD_ENV.agentTlsDir; the cached pod has no spec). */
function servesAgentTls(pod: V1Pod | undefined): boolean {
  return pod?.metadata?.annotations?.[ANNOTATIONS.agentTls] === 'mutual';
}

/**
 * How to call the agent of the instance whose pod has this IP: its token, the isolation timeout,
 * and the client certificate when that pod serves TLS. Undefined while that is not known.
 */
export function agentEndpointAt(o: Pick<Observation, 'agentToken' | 'agentTls' | 'isolationSeconds' | 'instances'>, host: string): AgentEndpoint | undefined {
  if (!o.agentToken) return undefined;
  const tls = o.instances.find((i) => i.podIP === host)?.agentTls;
  if (tls && !o.agentTls) return undefined;
  return { host, token: o.agentToken, isolationSeconds: o.isolationSeconds, ...(tls ? { tls: o.agentTls } : {}) };
}

/** The agent of an instance with a running pod, when the credentials to call it are known. */
export function agentEndpoint(o: Pick<Observation, 'agentToken' | 'agentTls' | 'isolationSeconds' | 'instances'>, instance: string): AgentEndpoint | undefined {
  const host = o.instances.find((i) => i.name === instance)?.podIP;
  return host ? agentEndpointAt(o, host) : undefined;
}

function podReady(pod: V1Pod | undefined): boolean {
  return !!pod && !pod.metadata?.deletionTimestamp && !!pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
}

function runningPodIP(pod: V1Pod | undefined): string | undefined {
  if (!pod || pod.metadata?.deletionTimestamp || pod.status?.phase !== 'Running') return undefined;
  return pod.status?.podIP;
}

/** The self-isolation timeout: one instance, or HA off, has nobody else to promote — isolating would only cause an outage. */
export function isolationSecondsFor(cluster: PostgreSQLCluster, instances: number): number {
  const ha = specOf(cluster).highAvailability;
  return ha.enabled && instances > 1 ? ha.isolationTimeoutSeconds : 0;
}

export class Observer {
  /** Each instance's last status answer, by cluster uid and instance. */
  private readonly last = new Map<string, LastStatus>();

  constructor(private readonly deps: ObserverDeps) {}

  /** The full observation: the cache, the primary Lease, and every agent. */
  async observe(cluster: PostgreSQLCluster, cache: OwnedCache): Promise<Observation> {
    const leaseHolder = await this.deps.leases.holder(cluster);
    const o = this.fromCache(cluster, cache, leaseHolder);
    if (o.instances.length === 0) return o;
    const key = `${cluster.metadata.namespace}/${cluster.metadata.name}`;
    // A primary the monitor confirmed failed is not asked at all (a frozen one would hold the pass for the timeout).
    const confirmedDown = (i: InstanceObservation) => i.name === o.primary && !!i.podIP && this.deps.monitor.failedSince(key, i.podIP) !== undefined;
    await this.askAgents(cluster, o, confirmedDown);
    return o;
  }

  /** What the informer caches alone say (no API or agent call): for deletion, or when the full observation failed. */
  fromCache(cluster: PostgreSQLCluster, cache: OwnedCache, leaseHolder?: string): Observation {
    const ns = cluster.metadata.namespace!;
    const name = cluster.metadata.name!;
    const statefulSets = cache.listForCluster<V1StatefulSet>('StatefulSet', ns, name).filter((s) => s.metadata?.labels?.[LABELS.component] === 'instance');
    const spec = specOf(cluster);
    const { desired, heldAt } = effectiveInstances(spec.instances, spec.highAvailability);
    const planned = planInstances(name, statefulSets.map((s) => s.metadata!.name!), desired, leaseHolder ?? cluster.status?.currentPrimary);
    // Once the cluster has been up, new instances come one at a time, each after the others are ready.
    const notReady = new Set(planned.keep.filter((i) => !podReady(cache.get<V1Pod>('Pod', ns, names.pod(i)))));
    const { plan, deferred, waitingFor } = paceCreation(planned, notReady, !!cluster.status?.firstReadyTime);
    const instanceNames = [...plan.keep, ...plan.create].sort((a, b) => a.localeCompare(b, undefined, { numeric: true }));
    const claims = cache.listForCluster<V1PersistentVolumeClaim>('PersistentVolumeClaim', ns, name);
    const instances: InstanceObservation[] = instanceNames.map((instance) => {
      const pod = cache.get<V1Pod>('Pod', ns, names.pod(instance));
      return {
        name: instance,
        statefulSet: statefulSets.find((s) => s.metadata!.name === instance),
        pod,
        podIP: runningPodIP(pod),
        agentTls: servesAgentTls(pod),
        roleLabel: pod?.metadata?.labels?.[LABELS.role],
        claims: claims.filter((c) => c.metadata?.labels?.[LABELS.instance] === instance),
      };
    });
    return {
      instanceNames,
      plan,
      deferred,
      waitingFor,
      ...(heldAt !== undefined ? { heldAt } : {}),
      statefulSets,
      instances,
      leaseHolder,
      primary: leaseHolder ?? cluster.status?.currentPrimary ?? instanceNames[0],
      isolationSeconds: isolationSecondsFor(cluster, instanceNames.length),
      endedOperations: [],
      statusCalls: 0,
    };
  }

  /**
   * Every instance's agent status, fetched concurrently with a short timeout. One failed call does
   * not make an instance unreachable (that stripped the role labels of a healthy cluster): its last
   * answer stands in for a few misses while its postgres answers on the wire. A 401 means the
   * agent Secret changed: the token is read again and the calls repeated once; a certificate
   * refused either way (the cluster's CA changed) likewise has the client certificate issued anew.
   */
  private async askAgents(cluster: PostgreSQLCluster, o: Observation, confirmedDown: (i: InstanceObservation) => boolean): Promise<void> {
    const ns = cluster.metadata.namespace!;
    const name = cluster.metadata.name!;
    const ask = async () =>
      Promise.all(
        o.instances.map(async (i) => {
          const ep = i.podIP && !confirmedDown(i) ? agentEndpointAt(o, i.podIP) : undefined;
          if (!ep) return { i, status: undefined, unauthorized: false, refused: false };
          o.statusCalls++;
          try {
            return { i, status: await this.deps.agent.status(ep, STATUS_TIMEOUT_MS), unauthorized: false, refused: false };
          } catch (err) {
            const e = err instanceof AgentError ? err : undefined;
            return { i, status: undefined, unauthorized: e?.status === 401, refused: !!e && (e.certificate || e.status === 403) };
          }
        }),
      );
    const credentials = async () => {
      o.agentToken = await this.deps.tokens.get(ns, name);
      o.agentTls = await this.deps.certificates.get(ns, name);
    };
    await credentials();
    if (!o.agentToken) return;
    let answers = await ask();
    const unauthorized = answers.some((a) => a.unauthorized);
    const refused = answers.some((a) => a.refused);
    if (unauthorized || refused) {
      if (unauthorized) this.deps.tokens.forget(ns, name);
      if (refused) this.deps.certificates.forget(ns, name);
      await credentials();
      if (!o.agentToken) return;
      answers = await ask();
    }
    const now = Date.now();
    await Promise.all(
      answers.map(async ({ i, status }) => {
        const key = `${cluster.metadata.uid}/${i.name}`;
        if (status) {
          const before = this.last.get(key)?.status.operation;
          const op = status.operation;
          // Ended since the last answer (a quick one may never have been seen running).
          if (this.last.has(key) && op && op.state !== 'running' && (before?.startedAt !== op.startedAt || before.state === 'running')) o.endedOperations.push({ instance: i.name, op });
          this.last.set(key, { ip: i.podIP!, status, at: now, misses: 0 });
          i.agent = status;
          return;
        }
        const prev = this.last.get(key);
        const bridge = !!i.podIP && !confirmedDown(i) && prev && prev.ip === i.podIP && prev.misses < STALE_STATUS_MAX_MISSES && now - prev.at < STALE_STATUS_MS;
        if (bridge && (await postgresAnswers(i.podIP!, POSTGRES_PORT, 300))) {
          prev.misses++;
          i.agent = prev.status;
          return;
        }
        this.last.delete(key);
      }),
    );
  }
}
