// An operator installed from the Helm chart as its own release and run as the chart's Deployment
// on the process kubelet (in-cluster config, as in a real cluster), apart from the shared
// `pgpilot` release that startOperator() keeps at replicaCount 0. Its own release name, operator
// namespace, watched namespaces and leader Lease, so it never acts on another test's clusters
// and another test's operator never acts on its clusters. With watchNamespaces set, the chart
// renders only namespaced objects (Roles, not a ClusterRole), so any number of such releases can
// live on one control plane; the CRDs under crds/ are installed by helm only when absent.
//
// Also here: what an "operator upgrade restarts nothing" check compares before and after — the
// instance pods (UID, container restarts and start times) and the StatefulSets (generation).
import { AppsV1Api, CoreV1Api, CustomObjectsApi, PatchStrategy, setHeaderOptions, type V1Pod } from '@kubernetes/client-node';
import { parse } from 'yaml';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { API_GROUP, API_VERSION, CLUSTER_PLURAL, LABELS } from '../../src/api/constants.js';
import { chartDir, helmOk, runHelm } from '../../test/support/helm.js';
import type { ProcessKubelet } from '../kubelet/index.js';
import { kubeConfig, kubeconfigPath, waitFor } from './env.js';
import { parseCounter } from './operator.js';

/** The chart's appVersion: the operator image tag a release gets without image.tag. */
export const CHART_APP_VERSION = String((parse(readFileSync(join(chartDir, 'Chart.yaml'), 'utf8')) as { appVersion: string }).appVersion);
const IMAGE_REPOSITORY = 'ghcr.io/pgpilot/pgpilot';
/** The chart's default metrics.port; the operator binds its pod IP, so ports never collide. */
const METRICS_PORT = 8080;

export interface OperatorReleaseOptions {
  /** Helm release name; contains "pgpilot", so the chart's fullname (and its objects' names) is just this. */
  release: string;
  /** The release namespace (created by helm when absent): the operator pod and its leader Lease. */
  namespace: string;
  /** The only namespaces the operator watches (one Role each). */
  watchNamespaces: string[];
  /** Operator image tag (default: the chart's appVersion). */
  tag?: string;
  logLevel?: string;
}

/** The operator pod of a release, as the process kubelet runs it. */
export interface OperatorPod {
  name: string;
  uid: string;
  image: string;
  address: string;
}

export class OperatorRelease {
  private constructor(
    readonly kubelet: ProcessKubelet,
    readonly opts: OperatorReleaseOptions,
  ) {}

  /** `helm upgrade --install` with one replica, then waits until its operator pod is Ready and leads. */
  static async install(kubelet: ProcessKubelet, opts: OperatorReleaseOptions): Promise<OperatorRelease> {
    const r = new OperatorRelease(kubelet, opts);
    const tag = opts.tag ?? CHART_APP_VERSION;
    await r.helm(['upgrade', '--install', opts.release, chartDir, '--create-namespace', ...r.values(tag)]);
    await r.waitForOperator(tag);
    return r;
  }

  /** The image a tag names (the process kubelet runs any `*\/pgpilot:<tag>` as this checkout's dist/). */
  static image(tag: string): string {
    return `${IMAGE_REPOSITORY}:${tag}`;
  }

  /**
   * `helm upgrade` to another operator image tag, all other values as installed: a new operator
   * build that differs only in its version string. Returns once helm is done (the Deployment's
   * rollout goes on; waitForOperator(tag) waits for it).
   */
  async upgrade(tag: string): Promise<void> {
    await this.helm(['upgrade', this.opts.release, chartDir, ...this.values(tag)]);
  }

  async uninstall(): Promise<void> {
    await runHelm(['uninstall', this.opts.release, '--kubeconfig', kubeconfigPath(), '--namespace', this.opts.namespace, '--wait', '--timeout', '60s'], { timeoutMs: 90_000 });
  }

  /** The Deployment's pods (any state). */
  async pods(): Promise<V1Pod[]> {
    const list = await kubeConfig()
      .makeApiClient(CoreV1Api)
      .listNamespacedPod({ namespace: this.opts.namespace, labelSelector: `app.kubernetes.io/instance=${this.opts.release},app.kubernetes.io/component=operator` });
    return list.items;
  }

  /**
   * Waits until the release's only operator pod runs `tag`, is Ready and holds the leader Lease
   * (pgpilot_leader 1 on its own /metrics): every older pod of the rollout is gone.
   */
  async waitForOperator(tag: string, timeoutMs = 120_000): Promise<OperatorPod> {
    const image = OperatorRelease.image(tag);
    return waitFor(`the only operator pod of ${this.opts.release} Ready, running ${image}, leading`, async () => {
      const pods = await this.pods();
      if (pods.length !== 1) return undefined;
      const p = pods[0]!;
      const ready = p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
      if (!ready || p.metadata?.deletionTimestamp || p.spec?.containers[0]?.image !== image) return undefined;
      const pod = this.describe(p);
      return (await this.counter(pod, 'pgpilot_leader')) === 1 ? pod : undefined;
    }, { timeoutMs, intervalMs: 500 });
  }

  /** The operator pod's /metrics text (its pod address; the operator binds its pod IP). */
  async metricsText(pod: OperatorPod): Promise<string> {
    const res = await fetch(`http://${pod.address}:${METRICS_PORT}/metrics`, { signal: AbortSignal.timeout(5000) });
    if (res.status !== 200) throw new Error(`GET /metrics of ${pod.name}: HTTP ${res.status}`);
    return res.text();
  }

  async counter(pod: OperatorPod, name: string, match?: (labels: Record<string, string>) => boolean): Promise<number> {
    return parseCounter(await this.metricsText(pod), name, match);
  }

  /**
   * Waits until `pod`'s operator has finished `passes` reconciles without an error (`success`, or
   * `requeue`: a healthy cluster is looked at again within seconds) and asked the agents for
   * their status at least `agentCalls` times — it observed the instances and ran the reconcilers
   * over them (the only clusters it watches are the caller's). Returns its metrics then.
   */
  async waitForPasses(pod: OperatorPod, passes: number, agentCalls: number, timeoutMs = 120_000): Promise<string> {
    return waitFor(`${passes} reconcile pass(es) of ${pod.name} without an error`, async () => {
      const text = await this.metricsText(pod);
      const ok = parseCounter(text, 'pgpilot_reconcile_total', (l) => l.result !== 'error') >= passes && parseCounter(text, 'pgpilot_agent_status_calls_total') >= agentCalls;
      return ok ? text : undefined;
    }, { timeoutMs, intervalMs: 500 });
  }

  private describe(p: V1Pod): OperatorPod {
    const name = p.metadata!.name!;
    const address = this.kubelet.podAddress(this.opts.namespace, name) ?? p.status?.podIP;
    if (!address) throw new Error(`operator pod ${name} has no address yet`);
    return { name, uid: p.metadata!.uid!, image: p.spec!.containers[0]!.image!, address };
  }

  private values(tag: string): string[] {
    const o = this.opts;
    return [
      '--set', 'replicaCount=1',
      '--set', `image.tag=${tag}`,
      '--set-json', `watchNamespaces=${JSON.stringify(o.watchNamespaces)}`,
      '--set', `leaderElection.leaseName=${o.release}-leader`,
      '--set', `logLevel=${o.logLevel ?? 'debug'}`,
    ];
  }

  private async helm(args: string[]): Promise<void> {
    await helmOk([...args, '--kubeconfig', kubeconfigPath(), '--namespace', this.opts.namespace, '--wait=hookOnly'], { timeoutMs: 300_000 });
  }
}

/**
 * Asks for a reconcile pass of a converged cluster: an annotation changes (metadata only, the
 * generation stays) and the operator's informer enqueues the cluster on any update. A healthy
 * cluster is otherwise looked at again only at the periodic resync (minutes).
 */
export async function requestPass(namespace: string, cluster: string): Promise<void> {
  await kubeConfig()
    .makeApiClient(CustomObjectsApi)
    .patchNamespacedCustomObject(
      { group: API_GROUP, version: API_VERSION, plural: CLUSTER_PLURAL, namespace, name: cluster, body: { metadata: { annotations: { 'e2e.pgpilot.io/pass-requested': new Date().toISOString() } } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
}

// ---- before/after: what an operator upgrade must leave alone ----------------------------------

export interface PodState {
  uid: string;
  /** container name → restartCount */
  restarts: Record<string, number>;
  /** container name → state.running.startedAt (ISO), '' when not running */
  startedAt: Record<string, string>;
}

/** The instance pods of a cluster, by name. */
export async function instancePods(namespace: string, cluster: string): Promise<Record<string, PodState>> {
  const list = await kubeConfig().makeApiClient(CoreV1Api).listNamespacedPod({ namespace, labelSelector: `${LABELS.cluster}=${cluster},${LABELS.component}=instance` });
  const out: Record<string, PodState> = {};
  for (const p of list.items) {
    const statuses = [...(p.status?.initContainerStatuses ?? []), ...(p.status?.containerStatuses ?? [])];
    out[p.metadata!.name!] = {
      uid: p.metadata!.uid!,
      restarts: Object.fromEntries(statuses.map((s) => [s.name, s.restartCount])),
      startedAt: Object.fromEntries(statuses.map((s) => [s.name, s.state?.running?.startedAt ? new Date(s.state.running.startedAt).toISOString() : ''])),
    };
  }
  return out;
}

export interface StatefulSetState {
  generation: number;
  observedGeneration: number;
  /** The pod template as stored (JSON), to show what changed when a generation moved. */
  template: string;
}

/** The instance StatefulSets of a cluster, by name. */
export async function instanceStatefulSets(namespace: string, cluster: string): Promise<Record<string, StatefulSetState>> {
  const list = await kubeConfig().makeApiClient(AppsV1Api).listNamespacedStatefulSet({ namespace, labelSelector: `${LABELS.cluster}=${cluster}` });
  return Object.fromEntries(
    list.items.map((s) => [s.metadata!.name!, { generation: s.metadata!.generation ?? 0, observedGeneration: s.status?.observedGeneration ?? 0, template: JSON.stringify(s.spec!.template) }]),
  );
}

export interface PodChanges {
  /** Pods that are gone or have another UID (replaced), and pods that are new. */
  replaced: string[];
  added: string[];
  /** "<pod>/<container>: n → m" for each container whose restartCount grew or that started again. */
  restarted: string[];
  /** replaced + added + container restarts: what a person would call restarts. */
  count: number;
}

/** What happened to the pods between two instancePods() snapshots. */
export function podChanges(before: Record<string, PodState>, after: Record<string, PodState>): PodChanges {
  const replaced = Object.keys(before).filter((n) => after[n]?.uid !== before[n]!.uid);
  const added = Object.keys(after).filter((n) => !(n in before));
  const restarted: string[] = [];
  let restarts = 0;
  for (const [name, b] of Object.entries(before)) {
    const a = after[name];
    if (!a || a.uid !== b.uid) continue;
    for (const [container, n] of Object.entries(b.restarts)) {
      const m = a.restarts[container] ?? n;
      const startedAgain = a.startedAt[container] !== b.startedAt[container];
      if (m === n && !startedAgain) continue;
      restarted.push(`${name}/${container}: restartCount ${n} → ${m}${startedAgain ? `, started ${b.startedAt[container] || '-'} → ${a.startedAt[container] || '-'}` : ''}`);
      restarts += Math.max(m - n, startedAgain ? 1 : 0);
    }
  }
  return { replaced, added, restarted, count: replaced.length + added.length + restarts };
}

/** StatefulSets whose generation moved (their spec, e.g. the pod template, was changed). */
export function changedStatefulSets(before: Record<string, StatefulSetState>, after: Record<string, StatefulSetState>): string[] {
  const names = new Set([...Object.keys(before), ...Object.keys(after)]);
  return [...names].filter((n) => before[n]?.generation !== after[n]?.generation).map((n) => `${n}: generation ${before[n]?.generation ?? '-'} → ${after[n]?.generation ?? '-'}`);
}
