// Kubernetes Events on the objects the operator manages, for the transitions a person cares
// about. Repeats of the same event within a window are dropped so a failing cluster can't flood.
import type { CoreV1Api } from '@kubernetes/client-node';
import type { PostgreSQLBackup } from '../api/backup.js';
import type { PostgreSQLCluster } from '../api/cluster.js';
import { API_GROUP_VERSION, BACKUP_KIND, CLUSTER_KIND } from '../api/constants.js';
import { errorText } from '../util/error-text.js';
import type { Logger } from './logger.js';

export interface EventTarget {
  apiVersion: string;
  kind: string;
  metadata: { name?: string; namespace?: string; uid?: string };
}

export type EventType = 'Normal' | 'Warning';

/** The target of an Event about a PostgreSQLCluster. */
export function clusterEventTarget(cluster: PostgreSQLCluster): EventTarget {
  return { apiVersion: API_GROUP_VERSION, kind: CLUSTER_KIND, metadata: cluster.metadata };
}

/** The target of an Event about a PostgreSQLBackup. */
export function backupEventTarget(backup: PostgreSQLBackup): EventTarget {
  return { apiVersion: API_GROUP_VERSION, kind: BACKUP_KIND, metadata: backup.metadata };
}

export class EventRecorder {
  private readonly recent = new Map<string, number>();

  constructor(
    private readonly core: CoreV1Api,
    private readonly component: string,
    private readonly instance: string,
    private readonly log: Logger,
    private readonly dedupeWindowMs = 5 * 60_000,
  ) {}

  async record(target: EventTarget, type: EventType, reason: string, message: string): Promise<void> {
    const { name, namespace, uid } = target.metadata;
    if (!name || !namespace) return;
    const key = `${uid}|${type}|${reason}|${message}`;
    const now = Date.now();
    const last = this.recent.get(key);
    if (last !== undefined && now - last < this.dedupeWindowMs) return;
    this.recent.set(key, now);
    if (this.recent.size > 5000) this.prune(now);
    const time = new Date();
    try {
      await this.core.createNamespacedEvent({
        namespace,
        body: {
          metadata: { generateName: `${name}.`, namespace },
          involvedObject: { apiVersion: target.apiVersion, kind: target.kind, name, namespace, uid },
          type,
          reason,
          message: message.slice(0, 1024),
          source: { component: this.component },
          reportingComponent: this.component,
          reportingInstance: this.instance,
          firstTimestamp: time,
          lastTimestamp: time,
          count: 1,
        },
      });
    } catch (err) {
      // An event that cannot be written must never fail a reconcile.
      this.log.warn({ err: errorText(err), reason }, 'could not record event');
    }
  }

  private prune(now: number): void {
    for (const [k, t] of this.recent) if (now - t >= this.dedupeWindowMs) this.recent.delete(k);
  }
}
