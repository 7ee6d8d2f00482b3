// `kubectl pgpilot restart CLUSTER`: a rolling restart through the operator, as `kubectl rollout
// restart` does for a Deployment: the annotation kubectl.kubernetes.io/restartedAt on the cluster
// (the operator copies it into every instance's pod template, so the rollout restarts the
// replicas one at a time, switches over, and restarts the old primary last), then follows until
// every instance pod carries it, is ready, and the cluster is Healthy with no rollout left.
// `restart CLUSTER INSTANCE`: that instance alone, through the annotation
// postgres.pgpilot.io/restart-instances (its value goes into that instance's pod template only).
import type { V1Pod } from '@kubernetes/client-node';
import type { PostgreSQLCluster } from '../../api/cluster.js';
import { ANNOTATIONS } from '../../api/constants.js';
import { parseRestartInstances } from '../../api/cluster-annotations.js';
import { EXIT, PluginError } from './errors.js';
import { checkInstance, instancesOf, podOf, podReady as ready, updateAnnotation } from './instances.js';
import type { Kube } from './kube.js';
import { follow, type Progress, type Step } from './ui.js';

/** Judges one look (pure): how many instance pods run the restarted template, ready. */
export function restartStep(c: PostgreSQLCluster, pods: V1Pod[], at: string): Step<PostgreSQLCluster> {
  const want = c.status?.instanceNames?.length ?? c.spec.instances ?? 1;
  const restarted = pods.filter((p) => p.metadata?.annotations?.[ANNOTATIONS.restartedAt] === at && ready(p) && !p.metadata?.deletionTimestamp).length;
  const line = `${c.metadata.name}: ${restarted} of ${want} instances restarted, phase ${c.status?.phase ?? 'Unknown'}${c.status?.rollout?.updating ? `, restarting ${c.status.rollout.updating}` : ''}`;
  if (restarted >= want && c.status?.phase === 'Healthy' && !c.status.rollout) return { state: 'done', line, value: c };
  return { state: 'waiting', line };
}

export async function runRestart(kube: Kube, name: string, o: { timeoutMs: number; wait: boolean; now?: Date }, out: (line: string) => void, progress: Progress, signal?: AbortSignal): Promise<void> {
  const at = (o.now ?? new Date()).toISOString();
  await kube.patchCluster(name, { metadata: { annotations: { [ANNOTATIONS.restartedAt]: at } } });
  out(`${name}: restart requested (${ANNOTATIONS.restartedAt}=${at}): replicas first, then a switchover and the old primary`);
  if (!o.wait) return;
  await follow({
    what: `every instance of ${name} to restart`,
    timeoutMs: o.timeoutMs,
    poll: async () => ({ c: await kube.getCluster(name), pods: await kube.instancePods(name) }),
    judge: ({ c, pods }) => restartStep(c, pods, at),
    progress,
    signal,
  });
  progress.end();
  out(`${name}: every instance restarted (${progress.seconds()} s)`);
}
/** Judges one look after a restart of one instance (pure): its pod carries the value, is Ready, and the cluster is Healthy with no rollout. */
export function restartInstanceStep(c: PostgreSQLCluster, pods: V1Pod[], instance: string, at: string): Step<PostgreSQLCluster> {
  const pod = podOf(pods, instance);
  const carries = pod?.metadata?.annotations?.[ANNOTATIONS.instanceRestartedAt] === at;
  const restarted = carries && ready(pod);
  const s = c.status ?? {};
  const rolling = [...(s.rollout?.switchoverTo ? [`switching over to ${s.rollout.switchoverTo}`] : []), ...(s.rollout?.updating ? [`restarting ${s.rollout.updating}`] : [])];
  const line = [`${instance}: ${restarted ? 'restarted' : carries ? 'restarted, not Ready yet' : 'not restarted yet'}`, `primary ${s.currentPrimary ?? 'none'}`, `phase ${s.phase ?? 'Unknown'}`, ...rolling].join(', ');
  if (restarted && s.phase === 'Healthy' && !s.rollout) return { state: 'done', line, value: c };
  return { state: 'waiting', line };
}

/** The restart-instances annotation with `instance` at `at` (the other valid entries kept; an invalid value is replaced). */
export function restartInstancesValue(c: PostgreSQLCluster, instance: string, at: string): string {
  const parsed = parseRestartInstances(c.metadata.annotations?.[ANNOTATIONS.restartInstances], instancesOf(c));
  return JSON.stringify({ ...(parsed.ok ? parsed.value : {}), [instance]: at });
}

/** `restart CLUSTER INSTANCE`: that instance alone, through the rollout (a replica in place, the primary after a switchover). */
export async function runRestartInstance(kube: Kube, name: string, instance: string, o: { timeoutMs: number; wait: boolean; now?: Date }, out: (line: string) => void, progress: Progress, signal?: AbortSignal): Promise<void> {
  const at = (o.now ?? new Date()).toISOString();
  let wasPrimary = false;
  await updateAnnotation(kube, name, ANNOTATIONS.restartInstances, (c) => {
    checkInstance(c, instance);
    if (c.status?.fencedInstances?.includes(instance)) throw new PluginError(`${instance} is fenced: it restarts only once unfenced (kubectl pgpilot unfence ${name} ${instance})`, EXIT.failed);
    wasPrimary = c.status?.currentPrimary === instance;
    return restartInstancesValue(c, instance, at);
  });
  out(`${name}: restart of ${instance} requested (${ANNOTATIONS.restartInstances}: ${instance}=${at})${wasPrimary ? ': it is the primary, so a ready replica takes over first (a switchover)' : ''}`);
  if (!o.wait) return;
  await follow({
    what: `${instance} to restart`,
    timeoutMs: o.timeoutMs,
    poll: async () => ({ c: await kube.getCluster(name), pods: await kube.instancePods(name) }),
    judge: ({ c, pods }) => restartInstanceStep(c, pods, instance, at),
    progress,
    signal,
  });
  progress.end();
  out(`${instance} restarted (${progress.seconds()} s)`);
}
