// What the commands that name an instance share: the instance checked against the cluster's
// (a usage error naming those that exist), its pod judged from a list, and a cluster annotation
// changed by read-modify-write (a merge patch carrying the resourceVersion it read, so an
// entry someone else added meanwhile is never lost: a conflict reads again).
import type { V1Pod } from '@kubernetes/client-node';
import type { PostgreSQLCluster } from '../../api/cluster.js';
import { LABELS } from '../../api/constants.js';
import { names } from '../../api/names.js';
import { PluginError, usage } from './errors.js';
import type { Kube } from './kube.js';

/** The instances of a cluster: status.instanceNames, else <name>-1 … <name>-<spec.instances>. */
export function instancesOf(c: PostgreSQLCluster): string[] {
  const listed = c.status?.instanceNames;
  if (listed && listed.length > 0) return listed;
  return Array.from({ length: c.spec.instances ?? 1 }, (_, i) => `${c.metadata.name}-${i + 1}`);
}

/** The instance, if the cluster has it; a usage error (exit 2) naming those it has otherwise. */
export function checkInstance(c: PostgreSQLCluster, instance: string): string {
  const known = instancesOf(c);
  if (!known.includes(instance)) throw usage(`${instance} is not an instance of ${c.metadata.name} (instances: ${known.join(', ') || 'none'})`);
  return instance;
}

export const podReady = (p: V1Pod | undefined): boolean => !!p && !p.metadata?.deletionTimestamp && (p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false);

/** The pod of an instance among a cluster's pods. */
export const podOf = (pods: V1Pod[], instance: string): V1Pod | undefined => pods.find((p) => p.metadata?.labels?.[LABELS.instance] === instance || p.metadata?.name === names.pod(instance));

const CONFLICT = /\(HTTP 409\)/;

/**
 * Sets one annotation of the cluster to what `change` makes of the cluster read (null removes
 * it), patching with that read's resourceVersion; a conflict (someone changed the cluster
 * meanwhile) reads again, a few times. Returns the cluster as patched and the value written.
 */
export async function updateAnnotation(kube: Kube, name: string, key: string, change: (c: PostgreSQLCluster) => string | null): Promise<{ cluster: PostgreSQLCluster; value: string | null }> {
  for (let attempt = 1; ; attempt++) {
    const c = await kube.getCluster(name);
    const value = change(c);
    try {
      const cluster = await kube.patchCluster(name, { metadata: { resourceVersion: c.metadata.resourceVersion, annotations: { [key]: value } } });
      return { cluster, value };
    } catch (err) {
      if (attempt >= 5 || !(err instanceof PluginError) || !CONFLICT.test(err.message)) throw err;
    }
  }
}
