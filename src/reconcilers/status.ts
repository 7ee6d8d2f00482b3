// The status step, after the reconcilers: phase, Ready/Progressing/Degraded and the counts, from
// what the pass observed and what the reconcilers reported.
import type { V1Pod, V1StatefulSet } from '@kubernetes/client-node';
import type { ClusterStatus, PostgreSQLCluster } from '../api/cluster.js';
import { podSelector, selectorString } from '../api/labels.js';
import { secretNames } from '../builders/secrets.js';
import { rfc3339 } from '../runtime/time.js';
import { mergeConditions, type ConditionInput } from './conditions.js';
import type { Observation } from './observe.js';
import { specOf } from '../api/resolve-spec.js';

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
  observed: Pick<Observation, 'instanceNames' | 'instances' | 'primary'>;
  /** The status after the reconcilers: the previous one with the fields they own merged in. */
  base: ClusterStatus;
  /** Conditions reported by the reconcilers (or Unknown for those not evaluated). */
  conditions: ConditionInput[];
  /** The reconcile failed: Degraded with this reason. */
  failure?: { reason: string; message: string };
  writes: readonly string[];
  now: Date;
}

/** Fields the status step owns; the rest belong to the reconcilers (their statusFields). */
export const STATUS_STEP_FIELDS = ['phase', 'observedGeneration', 'instances', 'readyInstances', 'selector', 'instanceNames', 'firstReadyTime', 'targetPrimary', 'secrets', 'conditions'] as const;

/** The status the cluster should show (pure). */
export function computeStatus(input: StatusInputs): ClusterStatus {
  const { cluster, observed, base } = input;
  const name = cluster.metadata.name!;
  const { instanceNames } = observed;
  const desired = specOf(cluster).instances;
  const notReady: string[] = [];
  let ready = 0;
  let existing = 0;
  for (const i of observed.instances) {
    const sts = i.statefulSet;
    if (sts) existing++;
    if (sts && (sts.status?.readyReplicas ?? 0) >= 1) ready++;
    else notReady.push(`${i.name} (${instanceProblem(sts, i.pod)})`);
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
  // Before ha first ran (an early failure), the primary the pass worked from.
  const primary = base.currentPrimary ?? observed.primary;
  return {
    ...base,
    phase,
    observedGeneration: cluster.metadata.generation,
    instances: existing,
    readyInstances: ready,
    selector: selectorString(podSelector(name)),
    instanceNames,
    ...(firstReadyTime ? { firstReadyTime } : {}),
    ...(primary ? { currentPrimary: primary, targetPrimary: cluster.spec.primary ?? primary } : {}),
    secrets: { superuser: secrets.superuser, replication: secrets.replication, app: secrets.app },
    conditions: mergeConditions(cluster.status?.conditions, conditions, cluster.metadata.generation, input.now),
  };
}
