// `kubectl pgpilot restore --from BACKUP|CLUSTER [--to-time T|--to-lsn L|--to-name N] NEW_NAME
// [--version V] [--instances N]`: creates a cluster bootstrapped from a PostgreSQLBackup
// (spec.bootstrap.recovery.backup) with the source cluster's essentials, and follows it to Ready.
import type { PostgreSQLBackup } from '../../api/backup.js';
import { MAX_CLUSTER_NAME, type ClusterSpec, type PostgreSQLCluster, type RecoveryTarget } from '../../api/cluster.js';
import { API_GROUP_VERSION, CLUSTER_KIND } from '../../api/constants.js';
import { EXIT, PluginError, usage } from './errors.js';
import type { Kube } from './kube.js';
import { follow, type Progress, type Step } from './ui.js';

const CLUSTER_NAME = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const LSN = /^[0-9A-Fa-f]{1,8}\/[0-9A-Fa-f]{1,8}$/;
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;
const VERSION = /^(14|15|16|17|18)(\.(0|[1-9][0-9]?))?$/;

export interface RestoreArgs {
  from: string;
  newName: string;
  toTime?: string;
  toLsn?: string;
  toName?: string;
  version?: string;
  instances?: string;
}

/** Pure: the recovery target of the options (at most one), or undefined to replay all WAL. */
export function recoveryTarget(a: Pick<RestoreArgs, 'toTime' | 'toLsn' | 'toName'>): RecoveryTarget | undefined {
  const given = [a.toTime && '--to-time', a.toLsn && '--to-lsn', a.toName && '--to-name'].filter(Boolean);
  if (given.length > 1) throw usage(`give at most one of --to-time, --to-lsn, --to-name (got ${given.join(' and ')})`);
  if (a.toTime !== undefined) {
    if (!RFC3339.test(a.toTime) || Number.isNaN(Date.parse(a.toTime))) throw usage(`--to-time must be an RFC 3339 time such as 2026-11-25T14:03:00Z (got ${JSON.stringify(a.toTime)})`);
    return { time: new Date(a.toTime).toISOString() };
  }
  if (a.toLsn !== undefined) {
    if (!LSN.test(a.toLsn)) throw usage(`--to-lsn must be a WAL location such as 0/3000060 (got ${JSON.stringify(a.toLsn)})`);
    return { lsn: a.toLsn.toUpperCase() };
  }
  if (a.toName !== undefined) {
    if (a.toName.length === 0 || a.toName.length > 63) throw usage('--to-name must be a restore point name of 1 to 63 characters');
    return { name: a.toName };
  }
  return undefined;
}

/** Checks NEW_NAME, --version and --instances; the instance count (default 1). */
export function checkRestoreArgs(a: RestoreArgs): number {
  if (!CLUSTER_NAME.test(a.newName) || a.newName.length > MAX_CLUSTER_NAME) {
    throw usage(`NEW_NAME must be a cluster name: at most ${MAX_CLUSTER_NAME} lowercase letters, digits and "-", starting with a letter (got ${JSON.stringify(a.newName)})`);
  }
  if (a.version !== undefined && !VERSION.test(a.version)) throw usage(`--version must be a PostgreSQL version 14 to 18, "major" or "major.minor" (got ${JSON.stringify(a.version)})`);
  const n = a.instances === undefined ? 1 : Number(a.instances);
  if (!Number.isInteger(n) || n < 1 || n > 10) throw usage(`--instances must be a whole number from 1 to 10 (got ${JSON.stringify(a.instances)})`);
  return n;
}

/** Pure: the newest completed backup of a cluster (by the time it ended), or undefined. */
export function newestCompletedBackup(backups: PostgreSQLBackup[], cluster: string): PostgreSQLBackup | undefined {
  const done = backups.filter((b) => b.spec.cluster.name === cluster && b.status?.phase === 'completed');
  const end = (b: PostgreSQLBackup) => b.status?.stoppedAt ?? b.status?.startedAt ?? '';
  return done.sort((x, y) => end(x).localeCompare(end(y))).at(-1);
}

/**
 * The version a backup restores: the source's spec.version — or, for a backup taken before the
 * source's major upgrade (stored outside the upgraded archive suffix), the version it had then.
 */
export function versionOfBackup(source: PostgreSQLCluster, backup: PostgreSQLBackup): string {
  const mu = source.status?.majorUpgrade;
  const suffix = source.status?.archiveSuffix;
  const path = backup.status?.destination?.path;
  if (mu?.phase === 'Succeeded' && suffix && path && !path.endsWith(`/${suffix}`)) return mu.from;
  return source.spec.version;
}

/** Synchronous commit needs fewer synchronous replicas than instances: fit it to the new count. */
function fitHighAvailability(ha: ClusterSpec['highAvailability'], instances: number): ClusterSpec['highAvailability'] {
  if (!ha) return undefined;
  const out = { ...ha };
  if (out.synchronousCommit) {
    if (instances <= 1) out.synchronousCommit = false;
    else if ((out.synchronousReplicas ?? 1) >= instances) out.synchronousReplicas = instances - 1;
  }
  if (instances <= 1) delete out.synchronousReplicas;
  return out;
}

/**
 * Pure: the new cluster. From the source: version (or --version), storage, WAL storage,
 * resources, PostgreSQL settings, HA settings (fitted to the instance count), image settings and
 * the backup store (the new cluster archives to its own path in the same store); never
 * spec.primary or bootstrap.
 */
export function buildRestoreCluster(o: { newName: string; namespace: string; source: PostgreSQLCluster; backup: PostgreSQLBackup; version?: string; instances: number; target?: RecoveryTarget }): PostgreSQLCluster {
  const s = o.source.spec;
  const version = o.version ?? versionOfBackup(o.source, o.backup);
  const spec: ClusterSpec = {
    version,
    instances: o.instances,
    storage: { ...s.storage },
    ...(s.walStorage ? { walStorage: { ...s.walStorage } } : {}),
    ...(s.resources ? { resources: structuredClone(s.resources) } : {}),
    ...(s.postgresql ? { postgresql: structuredClone(s.postgresql) } : {}),
    ...(s.highAvailability ? { highAvailability: fitHighAvailability(s.highAvailability, o.instances) } : {}),
    ...(s.imageName && version === s.version ? { imageName: s.imageName } : {}),
    ...(s.imagePullPolicy ? { imagePullPolicy: s.imagePullPolicy } : {}),
    ...(s.imagePullSecrets ? { imagePullSecrets: structuredClone(s.imagePullSecrets) } : {}),
    ...(s.backup ? { backup: structuredClone(s.backup) } : {}),
    bootstrap: { recovery: { backup: { name: o.backup.metadata.name! }, ...(o.target ? { target: o.target } : {}) } },
  };
  return { apiVersion: API_GROUP_VERSION, kind: CLUSTER_KIND, metadata: { name: o.newName, namespace: o.namespace }, spec };
}

/** Judges one look at the restored cluster. */
export function restoreStep(c: PostgreSQLCluster): Step<PostgreSQLCluster> {
  const s = c.status ?? {};
  const ready = s.conditions?.find((x) => x.type === 'Ready');
  const problem = s.conditions?.find((x) => x.reason === 'BootstrapFailed' || (x.type === 'Degraded' && x.status === 'True'));
  const line = `${c.metadata.name}: phase ${s.phase ?? 'Pending'}, ${s.readyInstances ?? 0}/${c.spec.instances ?? 1} ready${problem ? `; ${problem.reason}: ${problem.message}` : ready && ready.status !== 'True' ? `; ${ready.message}` : ''}`;
  if (ready?.status === 'True' && s.phase === 'Healthy') return { state: 'done', line, value: c };
  if (problem?.reason === 'BootstrapFailed') return { state: 'failed', line: `the restore failed: ${problem.message}` };
  return { state: 'waiting', line };
}

/** The backup to restore and its source cluster, from --from (a backup's name, else a cluster's). */
export async function resolveSource(kube: Kube, from: string): Promise<{ backup: PostgreSQLBackup; source: PostgreSQLCluster; why: string }> {
  const backup = await kube.getBackup(from).catch((err: unknown) => {
    if (err instanceof PluginError && err.exitCode === EXIT.notFound) return undefined;
    throw err;
  });
  if (backup) {
    if (backup.status?.phase !== 'completed') throw new PluginError(`PostgreSQLBackup ${from} is ${backup.status?.phase ?? 'pending'}, not completed: only a completed backup can be restored`, EXIT.failed);
    const source = await kube.getCluster(backup.spec.cluster.name).catch((err: unknown) => {
      if (err instanceof PluginError && err.exitCode === EXIT.notFound) {
        throw new PluginError(`the cluster ${backup.spec.cluster.name} that backup ${from} was taken of no longer exists, so its settings cannot be copied: write a PostgreSQLCluster with spec.bootstrap.recovery.backup.name: ${from} instead`, EXIT.notFound);
      }
      throw err;
    });
    return { backup, source, why: `PostgreSQLBackup ${from} of ${source.metadata.name}` };
  }
  const source = await kube.getCluster(from).catch((err: unknown) => {
    if (err instanceof PluginError && err.exitCode === EXIT.notFound) throw new PluginError(`no PostgreSQLBackup or PostgreSQLCluster named ${from} in namespace ${kube.namespace}`, EXIT.notFound);
    throw err;
  });
  const newest = newestCompletedBackup(await kube.listBackups(), from);
  if (!newest) throw new PluginError(`cluster ${from} has no completed PostgreSQLBackup to restore: take one with \`kubectl pgpilot backup ${from}\``, EXIT.failed);
  return { backup: newest, source, why: `the newest completed backup of ${from}, ${newest.metadata.name} (ended ${newest.status?.stoppedAt ?? '?'})` };
}

export async function runRestore(kube: Kube, a: RestoreArgs, o: { wait: boolean; timeoutMs: number }, out: (line: string) => void, progress: Progress, signal?: AbortSignal): Promise<void> {
  const instances = checkRestoreArgs(a);
  const target = recoveryTarget(a);
  const { backup, source, why } = await resolveSource(kube, a.from);
  const manifest = buildRestoreCluster({ newName: a.newName, namespace: kube.namespace, source, backup, version: a.version, instances, target });
  out(`restoring ${why} into ${kube.namespace}/${a.newName} (version ${manifest.spec.version}, ${instances} instance${instances === 1 ? '' : 's'}${target ? `, up to ${Object.entries(target).map(([k, v]) => `${k} ${String(v)}`).join(' ')}` : ', all archived WAL'})`);
  await kube.createCluster(manifest);
  if (!o.wait) return;
  await follow({ what: `${a.newName} to become Ready`, timeoutMs: o.timeoutMs, intervalMs: 2000, poll: () => kube.getCluster(a.newName), judge: restoreStep, progress, signal });
  progress.end();
  out(`${a.newName} is Ready (${progress.seconds()} s)`);
}
