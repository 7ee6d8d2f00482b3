// `pgpilot backup --purge`: a deleted cluster whose spec.backup.onClusterDeletion is Delete takes
// its archive with it — every object under its path and its PostgreSQLBackup resources. The
// operator runs it in a Job while a finalizer holds the cluster.
import type { Logger } from '../runtime/logger.js';
import type { BackupKube } from './backup-run.js';
import type { ObjectStore } from '../backup/object-store.js';

export interface PurgeResult {
  objects: number;
  resources: number;
}

export async function purgeArchive(o: { store: ObjectStore; path: string; kube: BackupKube; cluster: string; log: Logger }): Promise<PurgeResult> {
  // Resources first: none may point at data that is already gone.
  const backups = (await o.kube.listBackups()).filter((b) => b.spec.cluster.name === o.cluster);
  for (const b of backups) await o.kube.deleteBackup(b.metadata.name!, b.metadata.uid);
  const objects = await o.store.list(`${o.path}/`);
  o.log.info({ location: o.store.location, path: o.path, objects: objects.length, resources: backups.length }, 'deleting the archive of a deleted cluster');
  await o.store.delete(objects.map((x) => x.key));
  const left = await o.store.list(`${o.path}/`);
  if (left.length > 0) throw new Error(`${left.length} object(s) under ${o.store.location}/${o.path} remain after the delete (first: ${left[0]!.key})`);
  return { objects: objects.length, resources: backups.length };
}
