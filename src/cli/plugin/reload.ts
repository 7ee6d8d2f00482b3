// `kubectl pgpilot reload CLUSTER`: sets the cluster's annotation
// postgres.pgpilot.io/reload-requested-at to the time now; the operator asks every running
// instance's agent to reload its configuration (pg_reload_conf()) and records status.lastReload.
// Follows until status.lastReload answers this request; a failed instance fails the command.
import type { PostgreSQLCluster } from '../../api/cluster.js';
import { ANNOTATIONS } from '../../api/constants.js';
import { EXIT, PluginError } from './errors.js';
import type { Kube } from './kube.js';
import { follow, type Progress, type Step } from './ui.js';

type LastReload = NonNullable<NonNullable<PostgreSQLCluster['status']>['lastReload']>;

/** Judges one look (pure): status.lastReload answers the request `at`. */
export function reloadStep(c: PostgreSQLCluster, at: string): Step<LastReload> {
  const last = c.status?.lastReload;
  if (last?.requestedAt !== at || !last.completedAt) return { state: 'waiting', line: `${c.metadata.name}: waiting for the operator to reload (phase ${c.status?.phase ?? 'Unknown'})` };
  const line = `${c.metadata.name}: reloaded ${last.instances.join(', ') || 'no instance'}${last.failed?.length ? `; failed: ${last.failed.join('; ')}` : ''}`;
  return last.failed?.length ? { state: 'failed', line } : { state: 'done', line, value: last };
}

export async function runReload(kube: Kube, name: string, o: { timeoutMs: number; wait: boolean; now?: Date }, out: (line: string) => void, progress: Progress, signal?: AbortSignal): Promise<void> {
  const at = (o.now ?? new Date()).toISOString();
  await kube.patchCluster(name, { metadata: { annotations: { [ANNOTATIONS.reloadRequestedAt]: at } } });
  out(`${name}: reload requested (${ANNOTATIONS.reloadRequestedAt}=${at}): every running instance re-reads its configuration`);
  if (!o.wait) return;
  const last = await follow({ what: `the operator to reload ${name}`, timeoutMs: o.timeoutMs, poll: () => kube.getCluster(name), judge: (c) => reloadStep(c, at), progress, signal });
  progress.end();
  if (last.instances.length === 0) throw new PluginError(`${name}: no instance was running to reload`, EXIT.failed);
  out(`${name}: reloaded the configuration of ${last.instances.join(', ')} (${progress.seconds()} s)`);
}
