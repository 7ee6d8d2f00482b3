// `kubectl pgpilot backup CLUSTER [--name NAME] [--wait|--no-wait]`: creates a PostgreSQLBackup
// of the cluster and follows it to completed (exit 0) or failed (exit 1, with the reason).
import type { PostgreSQLBackup } from '../../api/backup.js';
import { MAX_BACKUP_NAME } from '../../api/backup.js';
import { API_GROUP_VERSION, BACKUP_KIND } from '../../api/constants.js';
import { usage } from './errors.js';
import type { Kube } from './kube.js';
import { follow, type Progress, type Step } from './ui.js';

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** "prod-db-20261125t140300z"-like default name: the cluster and the UTC time, at most 63 characters. */
export function defaultBackupName(cluster: string, now: Date): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, '').toLowerCase(); // 20261125t140300
  const head = cluster.slice(0, MAX_BACKUP_NAME - stamp.length - 1).replace(/-+$/, '');
  return `${head}-${stamp}`;
}

export function checkBackupName(name: string): void {
  if (name.length > MAX_BACKUP_NAME || !DNS_LABEL.test(name)) {
    throw usage(`--name must be at most ${MAX_BACKUP_NAME} lowercase letters, digits and "-", starting and ending with a letter or digit (got ${JSON.stringify(name)})`);
  }
}

export function backupManifest(cluster: string, name: string): PostgreSQLBackup {
  return { apiVersion: API_GROUP_VERSION, kind: BACKUP_KIND, metadata: { name }, spec: { cluster: { name: cluster } } };
}

function mib(bytes: number | undefined): string {
  return bytes === undefined ? '?' : `${(bytes / 1048576).toFixed(1)} MiB`;
}

/** Judges one look at a backup. */
export function backupStep(b: PostgreSQLBackup): Step<PostgreSQLBackup> {
  const s = b.status ?? {};
  const name = b.metadata.name ?? '';
  switch (s.phase) {
    case 'completed':
      return {
        state: 'done',
        value: b,
        line: `backup ${name} completed: ${mib(s.dataBytes)} of data, ${mib(s.storedBytes)} stored, from ${s.instance ?? '?'}${s.fromReplica ? ' (a replica)' : ''} in ${s.durationSeconds ?? '?'} s`,
      };
    case 'failed':
      return { state: 'failed', line: `backup ${name} failed: ${s.error ?? 'no reason recorded'}` };
    case 'running':
      return { state: 'waiting', line: `backup ${name} running on ${s.instance ?? '?'}: ${mib(s.progressBytes)} read${s.attempts && s.attempts > 1 ? `, attempt ${s.attempts}` : ''}` };
    default: {
      const why = s.conditions?.find((c) => c.status !== 'True')?.message;
      return { state: 'waiting', line: `backup ${name} ${s.phase ?? 'created'}, waiting for its Job${why ? `: ${why}` : ''}` };
    }
  }
}

export interface BackupOptions {
  name?: string;
  wait: boolean;
  timeoutMs: number;
}

export async function runBackup(kube: Kube, cluster: string, o: BackupOptions, out: (line: string) => void, progress: Progress, signal?: AbortSignal): Promise<void> {
  const name = o.name ?? defaultBackupName(cluster, new Date());
  checkBackupName(name);
  const c = await kube.getCluster(cluster);
  if (!c.spec.backup?.enabled) out(`note: spec.backup.enabled is not true on ${cluster}: the backup needs a store (spec.backup.s3/volume or the operator's default)`);
  await kube.createBackup(backupManifest(cluster, name));
  out(`created PostgreSQLBackup ${kube.namespace}/${name} of ${cluster}`);
  if (!o.wait) return;
  const done = await follow({ what: `backup ${name} to finish`, timeoutMs: o.timeoutMs, poll: () => kube.getBackup(name), judge: backupStep, progress, signal });
  progress.end();
  out(backupStep(done).line);
}
