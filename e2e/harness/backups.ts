// PostgreSQLBackups and the superuser's connection, as the backup and major upgrade tests use them.
import { CustomObjectsApi } from '@kubernetes/client-node';
import type pg from 'pg';
import type { PostgreSQLBackup } from '../../src/api/backup.js';
import { API_GROUP, API_VERSION, BACKUP_PLURAL } from '../../src/api/constants.js';
import type { ProcessKubelet } from '../kubelet/index.js';
import { kubeConfig, waitFor } from './env.js';
import { serviceClientConfig, superuserCredentials } from './postgres.js';

const custom = () => kubeConfig().makeApiClient(CustomObjectsApi);

export async function getBackup(namespace: string, name: string): Promise<PostgreSQLBackup> {
  return (await custom().getNamespacedCustomObject({ group: API_GROUP, version: API_VERSION, plural: BACKUP_PLURAL, namespace, name })) as PostgreSQLBackup;
}

/** An on-demand backup of `cluster`. */
export async function backupNow(namespace: string, name: string, cluster: string): Promise<void> {
  await custom().createNamespacedCustomObject({
    group: API_GROUP,
    version: API_VERSION,
    plural: BACKUP_PLURAL,
    namespace,
    body: { apiVersion: `${API_GROUP}/${API_VERSION}`, kind: 'PostgreSQLBackup', metadata: { name }, spec: { cluster: { name: cluster } } },
  });
}

/** The backup once it completed or failed. */
export async function backupFinished(namespace: string, name: string, timeoutMs = 240_000): Promise<PostgreSQLBackup> {
  return waitFor(`backup ${name} finished`, async () => {
    const b = await getBackup(namespace, name);
    return b.status?.phase === 'completed' || b.status?.phase === 'failed' ? b : undefined;
  }, { timeoutMs, intervalMs: 500 });
}

/** The superuser's connection through <cluster>-rw (restore points and pg_switch_wal need it). */
export async function superuserConfig(kubelet: ProcessKubelet, namespace: string, cluster: string): Promise<pg.ClientConfig> {
  return serviceClientConfig(kubelet, namespace, `${cluster}-rw`, await superuserCredentials(namespace, cluster));
}
