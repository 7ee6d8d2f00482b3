// `kubectl pgpilot restart CLUSTER`: a rolling restart through the operator, as `kubectl rollout
// restart` does for a Deployment: the annotation kubectl.kubernetes.io/restartedAt on the cluster
// (the operator copies it into every instance's pod template, so the rollout restarts the
// replicas one at a time, switches over, and restarts the old primary last), then follows until
// every instance pod carries it, is ready, and the cluster is Healthy with no rollout left.
import type { V1Pod } from '@kubernetes/client-node';
import type { PostgreSQLCluster } from '../../api/cluster.js';
import { ANNOTATIONS } from '../../api/constants.js';
import type { Kube } from './kube.js';
import { follow, type Progress, type Step } from './ui.js';

const ready = (p: V1Pod) => p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;

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
