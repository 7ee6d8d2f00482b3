// `kubectl pgpilot fence|unfence CLUSTER INSTANCE`: adds the instance to (or removes it from) the
// cluster's annotation postgres.pgpilot.io/fenced-instances, keeping the other entries, and
// follows until the operator has done it. Fenced: the instance's PostgreSQL is stopped, its pod
// not Ready and with no role label (in no Service). Unfenced: its pod Ready again and — a replica —
// streaming from the primary, or — the primary — accepting writes with the cluster Healthy.
import type { V1Pod } from '@kubernetes/client-node';
import { parseFencedInstances } from '../../api/cluster-annotations.js';
import type { PostgreSQLCluster } from '../../api/cluster.js';
import { ANNOTATIONS, LABELS } from '../../api/constants.js';
import { EXIT, PluginError } from './errors.js';
import { checkInstance, instancesOf, podOf, podReady, updateAnnotation } from './instances.js';
import type { Kube } from './kube.js';
import { follow, type Progress, type Step } from './ui.js';

/** The annotation's new value (null: no instance left), from the cluster as read; an invalid value is not overwritten. */
export function fencedList(c: PostgreSQLCluster, instance: string, fence: boolean): string | null {
  const parsed = parseFencedInstances(c.metadata.annotations?.[ANNOTATIONS.fencedInstances], instancesOf(c));
  if (!parsed.ok) throw new PluginError(`${parsed.problem}; fix or remove it first (kubectl annotate pgc ${c.metadata.name} ${ANNOTATIONS.fencedInstances}-)`, EXIT.failed);
  const list = fence ? [...new Set([...parsed.value, instance])] : parsed.value.filter((n) => n !== instance);
  return list.length ? JSON.stringify(instancesOf(c).filter((n) => list.includes(n))) : null;
}

const condition = (c: PostgreSQLCluster, type: string) => c.status?.conditions?.find((x) => x.type === type);
const podState = (pod: V1Pod | undefined) => (!pod ? 'absent' : podReady(pod) ? 'Ready' : 'not Ready');

/** Judges one look after a fence (pure): the operator lists it, its pod is not Ready and carries no role. */
export function fenceStep(c: PostgreSQLCluster, pods: V1Pod[], instance: string): Step<PostgreSQLCluster> {
  const pod = podOf(pods, instance);
  const listed = c.status?.fencedInstances?.includes(instance) ?? false;
  const role = pod?.metadata?.labels?.[LABELS.role];
  const line = `${instance}: ${listed ? 'fenced by the operator' : 'not fenced yet'}, pod ${podState(pod)}${role ? `, role ${role}` : ''}`;
  if (listed && pod && !podReady(pod) && !role) return { state: 'done', line, value: c };
  return { state: 'waiting', line };
}

/**
 * Judges one look after an unfence (pure): the operator no longer lists it, its pod is Ready;
 * a replica streams (ReplicasStreaming does not name it), the primary accepts writes and the
 * cluster is Healthy.
 */
export function unfenceStep(c: PostgreSQLCluster, pods: V1Pod[], instance: string, wasPrimary: boolean): Step<PostgreSQLCluster> {
  const pod = podOf(pods, instance);
  const listed = c.status?.fencedInstances?.includes(instance) ?? false;
  const status = c.status ?? {};
  const line = `${instance}: ${listed ? 'still fenced (unfencing)' : 'unfenced'}, pod ${podState(pod)}, primary ${status.currentPrimary ?? 'none'}, phase ${status.phase ?? 'Unknown'}`;
  if (listed || !podReady(pod)) return { state: 'waiting', line };
  if (wasPrimary || instance === status.currentPrimary) {
    const available = condition(c, 'PrimaryAvailable')?.status ?? 'Unknown';
    return available === 'True' && status.phase === 'Healthy' ? { state: 'done', line, value: c } : { state: 'waiting', line: `${line}, PrimaryAvailable ${available}` };
  }
  const streaming = condition(c, 'ReplicasStreaming');
  const behind = !streaming || (streaming.status !== 'True' && streaming.message.includes(`${instance} (`));
  return behind ? { state: 'waiting', line: `${line}, not streaming yet` } : { state: 'done', line: `${line}, streaming`, value: c };
}

export interface FenceOptions {
  fence: boolean;
  timeoutMs: number;
  wait: boolean;
}

export async function runFence(kube: Kube, name: string, instance: string, o: FenceOptions, out: (line: string) => void, progress: Progress, signal?: AbortSignal): Promise<void> {
  let wasPrimary = false;
  const { value } = await updateAnnotation(kube, name, ANNOTATIONS.fencedInstances, (c) => {
    checkInstance(c, instance);
    wasPrimary = c.status?.currentPrimary === instance;
    return fencedList(c, instance, o.fence);
  });
  const role = wasPrimary ? 'the primary' : 'a replica';
  out(
    o.fence
      ? `${name}: fencing ${instance} (${role}): its PostgreSQL stops and stays stopped, its pod leaves every Service${wasPrimary ? '; no failover happens: the cluster takes no writes until you unfence it' : ''} (${ANNOTATIONS.fencedInstances}=${value})`
      : `${name}: unfencing ${instance} (${role}): its PostgreSQL starts again${wasPrimary ? ' as the primary' : ' and rejoins the primary'} (${ANNOTATIONS.fencedInstances}=${value ?? 'removed'})`,
  );
  if (!o.wait) return;
  await follow({
    what: `${instance} to be ${o.fence ? 'fenced' : 'unfenced'}`,
    timeoutMs: o.timeoutMs,
    poll: async () => ({ c: await kube.getCluster(name), pods: await kube.instancePods(name) }),
    judge: ({ c, pods }) => (o.fence ? fenceStep(c, pods, instance) : unfenceStep(c, pods, instance, wasPrimary)),
    progress,
    signal,
  });
  progress.end();
  out(o.fence ? `${instance} is fenced (${progress.seconds()} s)` : `${instance} is unfenced and ${wasPrimary ? 'accepts writes as the primary' : 'streams from the primary'} (${progress.seconds()} s)`);
}
