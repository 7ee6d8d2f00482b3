// BackupKube on a real API server (client-node), with the permissions of the cluster's
// ServiceAccount (src/builders/rbac.ts): get the cluster, list pods, PostgreSQLBackups and their
// status, events.
import { ApiException, PatchStrategy, setHeaderOptions, type CoreV1Api, type CustomObjectsApi, type V1Pod } from '@kubernetes/client-node';
import type { PostgreSQLBackup } from '../api/backup.js';
import type { PostgreSQLCluster } from '../api/cluster.js';
import { API_GROUP, API_VERSION, BACKUP_PLURAL, CLUSTER_PLURAL, FIELD_MANAGER } from '../api/constants.js';
import { podSelector, selectorString } from '../api/labels.js';
import type { EventRecorder, EventTarget, EventType } from '../runtime/events.js';
import type { BackupKube, BackupStatusPatch } from './backup-run.js';

const isCode = (err: unknown, code: number) => err instanceof ApiException && err.code === code;

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
    try {
      return (await this.custom.getNamespacedCustomObject({ group: API_GROUP, version: API_VERSION, namespace: this.namespace, plural: CLUSTER_PLURAL, name })) as PostgreSQLCluster;
    } catch (err) {
      if (isCode(err, 404)) return null;
      throw err;
    }
  }

  async listInstancePods(cluster: string): Promise<V1Pod[]> {
    return (await this.core.listNamespacedPod({ namespace: this.namespace, labelSelector: selectorString(podSelector(cluster)) })).items;
  }

  async listJobPods(job: string): Promise<V1Pod[]> {
    return (await this.core.listNamespacedPod({ namespace: this.namespace, labelSelector: `job-name=${job}` })).items;
  }

  async getBackup(name: string): Promise<PostgreSQLBackup | null> {
    try {
      return (await this.custom.getNamespacedCustomObject(this.backupRef(name))) as PostgreSQLBackup;
    } catch (err) {
      if (isCode(err, 404)) return null;
      throw err;
    }
  }

  async createBackup(body: PostgreSQLBackup): Promise<PostgreSQLBackup | null> {
    try {
      return (await this.custom.createNamespacedCustomObject({ group: API_GROUP, version: API_VERSION, namespace: this.namespace, plural: BACKUP_PLURAL, body, fieldManager: FIELD_MANAGER })) as PostgreSQLBackup;
    } catch (err) {
      if (isCode(err, 409)) return null;
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
      await this.custom.deleteNamespacedCustomObject({ ...this.backupRef(name), propagationPolicy: 'Background', ...(uid ? { body: { preconditions: { uid } } } : {}) });
    } catch (err) {
      if (isCode(err, 404)) return;
      // 409: the uid precondition failed, a new resource of that name: not ours to delete.
      if (isCode(err, 409)) return;
      throw err;
    }
  }

  async recordEvent(target: EventTarget, type: EventType, reason: string, message: string): Promise<void> {
    await this.events.record(target, type, reason, message);
  }
}
