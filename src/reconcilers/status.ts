// status: phase, conditions and counts from what the other reconcilers did and the world shows.
import type { V1Pod, V1StatefulSet } from '@kubernetes/client-node';
import { DEFAULTS, type ClusterStatus, type PostgreSQLCluster } from '../api/cluster.js';
import { podSelector, selectorString } from '../api/labels.js';
import { names } from '../api/names.js';
import { secretNames } from '../builders/secrets.js';
import { mergeConditions } from './conditions.js';
import { rfc3339 } from '../runtime/time.js';
import type { BackupStatusFields, ConditionInput, OwnedCache } from './types.js';

/** Why an instance is not ready, in words a person can act on. */
export function instanceProblem(sts: V1StatefulSet | undefined, pod: V1Pod | undefined): string {
  if (!sts) return 'StatefulSet not created yet';
  if (!pod) return 'pod not created yet';
  const unscheduled = pod.status?.conditions?.find((c) => c.type === 'PodScheduled' && c.status === 'False');
  if (unscheduled) return `pod ${pod.status?.phase ?? 'Pending'}, not scheduled: ${unscheduled.message ?? unscheduled.reason ?? 'no reason given'}`;
  const waiting = pod.status?.containerStatuses?.find((c) => c.state?.waiting)?.state?.waiting;
  if (waiting) return `container waiting: ${waiting.reason ?? ''}${waiting.message ? ` (${waiting.message})` : ''}`;
  return `pod ${pod.status?.phase ?? 'Pending'}, not ready`;
}

export interface StatusInputs {
  cluster: PostgreSQLCluster;
  cache: OwnedCache;
  instanceNames: string[];
  /** Conditions reported by the reconcilers that ran before. */
  conditions: ConditionInput[];
  /** The reconcile failed: Degraded with this reason. */
  failure?: { reason: string; message: string };
  writes: string[];
  now: Date;
  /** The primary the ha reconciler established this pass, if it ran. */
  primary?: string;
  streamingReplicas?: number;
  runningVersion?: string;
  /** From the backup reconciler when it ran this pass; else the previous values stay. */
  backupStatus?: BackupStatusFields;
  recoverySource?: ClusterStatus['recoverySource'];
}

const BACKUP_FIELDS = ['archivePath', 'firstRecoverabilityPoint', 'lastRecoverabilityPoint', 'lastSuccessfulBackup', 'lastBackup', 'nextScheduledBackup', 'archiving'] as const;

function previousBackupFields(status: ClusterStatus | undefined): BackupStatusFields {
  return Object.fromEntries(BACKUP_FIELDS.filter((k) => status?.[k] !== undefined).map((k) => [k, status![k]]));
}

/** The status the cluster should show (pure apart from reading the cache). */
export function computeStatus(input: StatusInputs): ClusterStatus {
  const { cluster, cache, instanceNames } = input;
  const ns = cluster.metadata.namespace!;
  const name = cluster.metadata.name!;
  const desired = cluster.spec.instances ?? DEFAULTS.instances;
  const notReady: string[] = [];
  let ready = 0;
  let existing = 0;
  for (const instance of instanceNames) {
    const sts = cache.get<V1StatefulSet>('StatefulSet', ns, instance);
    if (sts) existing++;
    if (sts && (sts.status?.readyReplicas ?? 0) >= 1) ready++;
    else notReady.push(`${instance} (${instanceProblem(sts, cache.get<V1Pod>('Pod', ns, names.pod(instance)))})`);
  }
  const allReady = ready === desired && instanceNames.length === desired;
  const conditions: ConditionInput[] = [
    allReady
      ? { type: 'Ready', status: 'True', reason: 'AllInstancesReady', message: `${ready} of ${desired} instances ready` }
      : { type: 'Ready', status: 'False', reason: 'InstancesNotReady', message: `${ready} of ${desired} instances ready; waiting for ${notReady.join(', ') || 'instances to be created'}` },
    input.failure
      ? { type: 'Degraded', status: 'True', reason: input.failure.reason, message: input.failure.message }
      : { type: 'Degraded', status: 'False', reason: 'AsExpected', message: 'The operator has no problem to report' },
    input.writes.length > 0
      ? { type: 'Progressing', status: 'True', reason: 'Applying', message: `Updated ${input.writes.slice(0, 10).join(', ')}${input.writes.length > 10 ? ` and ${input.writes.length - 10} more` : ''}` }
      : !allReady
        ? { type: 'Progressing', status: 'True', reason: 'WaitingForInstances', message: `${ready} of ${desired} instances ready` }
        : { type: 'Progressing', status: 'False', reason: 'Converged', message: 'Every object matches the spec' },
    ...input.conditions,
  ];
  // Until every instance has been ready once, the cluster is being provisioned, whatever went wrong on the way.
  const firstReadyTime = cluster.status?.firstReadyTime ?? (allReady ? rfc3339(input.now) : undefined);
  const everHealthy = firstReadyTime !== undefined;
  const phase = cluster.metadata.deletionTimestamp
    ? 'Deleting'
    : input.failure
      ? 'Degraded'
      : allReady
        ? 'Healthy'
        : existing !== desired || instanceNames.length !== desired
          ? everHealthy
            ? 'Scaling'
            : 'Provisioning'
          : everHealthy
            ? 'Degraded'
            : 'Provisioning';
  const secrets = secretNames(cluster);
  const primary = input.primary ?? cluster.status?.currentPrimary ?? instanceNames[0];
  return {
    phase,
    observedGeneration: cluster.metadata.generation,
    instances: existing,
    readyInstances: ready,
    ...((input.streamingReplicas ?? cluster.status?.streamingReplicas) !== undefined ? { streamingReplicas: input.streamingReplicas ?? cluster.status?.streamingReplicas } : {}),
    selector: selectorString(podSelector(name)),
    instanceNames,
    ...(firstReadyTime ? { firstReadyTime } : {}),
    ...(primary ? { currentPrimary: primary, targetPrimary: cluster.spec.primary ?? primary } : {}),
    // What the instances run, as the primary reports it (spec.version is what they should run).
    ...((input.runningVersion ?? cluster.status?.version) ? { version: input.runningVersion ?? cluster.status?.version } : {}),
    secrets: { superuser: secrets.superuser, replication: secrets.replication, app: secrets.app },
    ...((input.recoverySource ?? cluster.status?.recoverySource) ? { recoverySource: input.recoverySource ?? cluster.status?.recoverySource } : {}),
    ...(input.backupStatus ?? previousBackupFields(cluster.status)),
    conditions: mergeConditions(cluster.status?.conditions, conditions, cluster.metadata.generation, input.now),
  };
}

