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
import { upgradeActive } from './major-upgrade-plan.js';
import { effectiveInstances } from '../builders/instance-plan.js';

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

/** How many instances exist and are ready, and why the others are not. */
interface InstanceCounts {
  desired: number;
  existing: number;
  ready: number;
  notReady: string[];
  /** Every desired instance exists and is ready. */
  allReady: boolean;
}

function countInstances(desired: number, observed: StatusInputs['observed']): InstanceCounts {
  const notReady: string[] = [];
  let ready = 0;
  let existing = 0;
  for (const i of observed.instances) {
    const sts = i.statefulSet;
    if (sts) existing++;
    if (sts && (sts.status?.readyReplicas ?? 0) >= 1) ready++;
    else notReady.push(`${i.name} (${instanceProblem(sts, i.pod)})`);
  }
  return { desired, existing, ready, notReady, allReady: ready === desired && observed.instanceNames.length === desired };
}

function readyCondition(n: InstanceCounts): ConditionInput {
  const counted = `${n.ready} of ${n.desired} instances ready`;
  return n.allReady
    ? { type: 'Ready', status: 'True', reason: 'AllInstancesReady', message: counted }
    : { type: 'Ready', status: 'False', reason: 'InstancesNotReady', message: `${counted}; waiting for ${n.notReady.join(', ') || 'instances to be created'}` };
}

function degradedCondition(failure: StatusInputs['failure']): ConditionInput {
  return failure
    ? { type: 'Degraded', status: 'True', reason: failure.reason, message: failure.message }
    : { type: 'Degraded', status: 'False', reason: 'AsExpected', message: 'The operator has no problem to report' };
}

function progressingCondition(writes: readonly string[], n: InstanceCounts): ConditionInput {
  if (writes.length > 0) {
    const more = writes.length > 10 ? ` and ${writes.length - 10} more` : '';
    return { type: 'Progressing', status: 'True', reason: 'Applying', message: `Updated ${writes.slice(0, 10).join(', ')}${more}` };
  }
  if (!n.allReady) return { type: 'Progressing', status: 'True', reason: 'WaitingForInstances', message: `${n.ready} of ${n.desired} instances ready` };
  return { type: 'Progressing', status: 'False', reason: 'Converged', message: 'Every object matches the spec' };
}

/** Until every instance has been ready once (everHealthy), the cluster is being provisioned, whatever went wrong on the way. */
function phaseOf(deleting: boolean, failed: boolean, n: InstanceCounts, planned: number, everHealthy: boolean, upgrading: boolean, hibernation?: string): string {
  if (deleting) return 'Deleting';
  // Stopped on purpose: Hibernating, Hibernated, Waking.
  if (hibernation) return hibernation;
  if (failed) return 'Degraded';
  if (n.allReady) return 'Healthy';
  // Instances stopped or cloning on purpose (status.majorUpgrade says which stage).
  if (upgrading) return 'Upgrading';
  if (!everHealthy) return 'Provisioning';
  return n.existing !== n.desired || planned !== n.desired ? 'Scaling' : 'Degraded';
}

/** The status the cluster should show (pure). */
export function computeStatus(input: StatusInputs): ClusterStatus {
  const { cluster, observed, base } = input;
  const spec = specOf(cluster);
  // spec.instances below what synchronous commit needs is held at that minimum (instance-plan.ts).
  const n = countInstances(effectiveInstances(spec.instances, spec.highAvailability).desired, observed);
  const conditions = [readyCondition(n), degradedCondition(input.failure), progressingCondition(input.writes, n), ...input.conditions];
  const firstReadyTime = cluster.status?.firstReadyTime ?? (n.allReady ? rfc3339(input.now) : undefined);
  const phase = phaseOf(!!cluster.metadata.deletionTimestamp, !!input.failure, n, observed.instanceNames.length, firstReadyTime !== undefined, upgradeActive(base.majorUpgrade), base.hibernation?.phase);
  const secrets = secretNames(cluster);
  // Before ha first ran (an early failure), the primary the pass worked from.
  const primary = base.currentPrimary ?? observed.primary;
  return {
    ...base,
    phase,
    observedGeneration: cluster.metadata.generation,
    instances: n.existing,
    readyInstances: n.ready,
    selector: selectorString(podSelector(cluster.metadata.name!)),
    instanceNames: observed.instanceNames,
    ...(firstReadyTime ? { firstReadyTime } : {}),
    ...(primary ? { currentPrimary: primary, targetPrimary: cluster.spec.primary ?? primary } : {}),
    secrets: { superuser: secrets.superuser, replication: secrets.replication, app: secrets.app },
    conditions: mergeConditions(cluster.status?.conditions, conditions, cluster.metadata.generation, input.now),
  };
}
