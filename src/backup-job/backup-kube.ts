// BackupKube on a real API server (client-node), with the permissions of the cluster's
// ServiceAccount (src/builders/rbac.ts): get the cluster, list pods, PostgreSQLBackups and their
// status, events.
import { PatchStrategy, setHeaderOptions, type CoreV1Api, type CustomObjectsApi, type V1Pod } from '@kubernetes/client-node';
import type { PostgreSQLBackup } from '../api/backup.js';
import type { PostgreSQLCluster } from '../api/cluster.js';
import { API_GROUP, API_VERSION, BACKUP_PLURAL, CLUSTER_PLURAL, FIELD_MANAGER } from '../api/constants.js';
import { podSelector, selectorString } from '../api/labels.js';
import { apiStatus, ignoreNotFound } from '../runtime/api-status.js';
import type { EventRecorder, EventTarget, EventType } from '../runtime/events.js';
import type { BackupKube, BackupStatusPatch } from './backup-run.js';

export class ApiBackupKube implements BackupKube {
  constructor(
    private readonly core: CoreV1Api,
    private readonly custom: CustomObjectsApi,
    private readonly events: EventRecorder,
    private readonly namespace: string,
  ) {}

  private backupRef(name: string) {
    return { group: API_GROUP, version: API_VERSION, namespace: this.namespace, plural: BACKUP_PLURAL, name };
  }

  async getCluster(name: string): Promise<PostgreSQLCluster | null> {
    const cluster = await ignoreNotFound(this.custom.getNamespacedCustomObject({ group: API_GROUP, version: API_VERSION, namespace: this.namespace, plural: CLUSTER_PLURAL, name }));
    return (cluster as PostgreSQLCluster | undefined) ?? null;
  }

  async listInstancePods(cluster: string): Promise<V1Pod[]> {
    return (await this.core.listNamespacedPod({ namespace: this.namespace, labelSelector: selectorString(podSelector(cluster)) })).items;
  }

  async listJobPods(job: string): Promise<V1Pod[]> {
    return (await this.core.listNamespacedPod({ namespace: this.namespace, labelSelector: `job-name=${job}` })).items;
  }

  async getBackup(name: string): Promise<PostgreSQLBackup | null> {
    const backup = await ignoreNotFound(this.custom.getNamespacedCustomObject(this.backupRef(name)));
    return (backup as PostgreSQLBackup | undefined) ?? null;
  }

  async createBackup(body: PostgreSQLBackup): Promise<PostgreSQLBackup | null> {
    try {
      return (await this.custom.createNamespacedCustomObject({ group: API_GROUP, version: API_VERSION, namespace: this.namespace, plural: BACKUP_PLURAL, body, fieldManager: FIELD_MANAGER })) as PostgreSQLBackup;
    } catch (err) {
      if (apiStatus(err) === 409) return null;
      throw err;
    }
  }

  async patchBackupStatus(name: string, status: BackupStatusPatch): Promise<void> {
    await this.custom.patchNamespacedCustomObjectStatus({ ...this.backupRef(name), body: { status }, fieldManager: FIELD_MANAGER }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
  }

  async listBackups(): Promise<PostgreSQLBackup[]> {
    const list = (await this.custom.listNamespacedCustomObject({ group: API_GROUP, version: API_VERSION, namespace: this.namespace, plural: BACKUP_PLURAL })) as { items?: PostgreSQLBackup[] };
    return list.items ?? [];
  }

  async deleteBackup(name: string, uid: string | undefined): Promise<void> {
    try {
      await ignoreNotFound(this.custom.deleteNamespacedCustomObject({ ...this.backupRef(name), propagationPolicy: 'Background', ...(uid ? { body: { preconditions: { uid } } } : {}) }));
    } catch (err) {
      // 409: the uid precondition failed, a new resource of that name: not ours to delete.
      if (apiStatus(err) === 409) return;
      throw err;
    }
  }

  async recordEvent(target: EventTarget, type: EventType, reason: string, message: string): Promise<void> {
    await this.events.record(target, type, reason, message);
  }
}
