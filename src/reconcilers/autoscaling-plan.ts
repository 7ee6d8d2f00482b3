// The Autoscaling condition (pure): what spec.autoscaling's HPA sees and asks for, and whether the
// operator holds spec.instances at the minimum synchronous commit needs (instance-plan.ts).
import type { V2HorizontalPodAutoscaler } from '@kubernetes/client-node';
import type { AutoscalingSpec } from '../api/cluster.js';
import type { ConditionInput } from './conditions.js';

export interface AutoscalingInput {
  autoscaling?: AutoscalingSpec;
  /** spec.instances as written (by a person, or an HPA through the scale subresource). */
  instances: number;
  /** Set when spec.instances is below the minimum: the number the cluster is held at. */
  heldAt?: number;
  synchronousReplicas: number;
  /** The HPA the operator owns (from its cache); undefined before it exists. */
  hpa?: V2HorizontalPodAutoscaler;
  hpaName: string;
  /** The instance containers have a CPU request (resources.requests.cpu, or limits.cpu which Kubernetes copies into requests). */
  cpuRequest: boolean;
  /** Instances to be created once `waitingFor` are ready (one new instance at a time). */
  deferred: string[];
  waitingFor: string[];
}

const cond = (status: ConditionInput['status'], reason: string, message: string): ConditionInput => ({ type: 'Autoscaling', status, reason, message });

/** "; adding one instance at a time: …" when creation waits. */
function pacing(i: AutoscalingInput): string {
  if (i.deferred.length === 0) return '';
  const waiting = i.waitingFor.length ? `waiting for ${i.waitingFor.join(', ')} to be ready before creating ${i.deferred[0]}` : `${i.deferred.join(', ')} next`;
  return `; adding one instance at a time: ${waiting}`;
}

/** "CPU 185% of request, target 70%": what the HPA measured against its target. */
function cpuSummary(hpa: V2HorizontalPodAutoscaler): string {
  const cpu = hpa.status?.currentMetrics?.find((m) => m.type === 'Resource' && m.resource?.name === 'cpu')?.resource?.current?.averageUtilization;
  const target = hpa.spec?.metrics?.find((m) => m.resource?.name === 'cpu')?.resource?.target?.averageUtilization;
  return `${cpu !== undefined ? `CPU ${cpu}% of request` : 'CPU not measured yet'}${target !== undefined ? `, target ${target}%` : ''}`;
}

/** What the HPA reports: its replicas and the CPU it measured against its target. */
function hpaSummary(hpa: V2HorizontalPodAutoscaler, name: string): string {
  const st = hpa.status;
  const wants = st?.desiredReplicas !== undefined && st.desiredReplicas !== st.currentReplicas ? `, wants ${st.desiredReplicas}` : '';
  return `HPA ${name}: ${st?.currentReplicas ?? '?'} instances${wants} (${cpuSummary(hpa)}; min ${hpa.spec?.minReplicas ?? 1}, max ${hpa.spec?.maxReplicas})`;
}

export function autoscalingCondition(i: AutoscalingInput): ConditionInput {
  if (i.heldAt !== undefined) {
    const who = i.autoscaling ? `the HPA ${i.hpaName}` : 'whoever wrote it (an HPA through the scale subresource, kubectl scale)';
    return cond(
      'False',
      'HeldAtMinimum',
      `spec.instances is ${i.instances}, fewer than the ${i.heldAt} instances synchronous commit needs (the primary and ${i.synchronousReplicas} synchronous replica${i.synchronousReplicas === 1 ? '' : 's'}): the cluster is held at ${i.heldAt}. Give ${who} a minimum of ${i.heldAt}${pacing(i)}`,
    );
  }
  if (!i.autoscaling) {
    return cond('False', 'NotConfigured', `spec.autoscaling is not set: spec.instances (${i.instances}) is carried out as written; an HPA of your own may drive it through the scale subresource${pacing(i)}`);
  }
  if (!i.cpuRequest) {
    return cond('False', 'NoCPURequest', `the HPA ${i.hpaName} cannot compute CPU utilisation: set spec.resources.requests.cpu (utilisation is a percentage of the request)`);
  }
  if (!i.hpa) return cond('Unknown', 'WaitingForHPA', `HPA ${i.hpaName} is being created`);
  const inactive = i.hpa.status?.conditions?.find((c) => c.type === 'ScalingActive' && c.status === 'False');
  if (inactive) return cond('False', inactive.reason ?? 'ScalingInactive', `${hpaSummary(i.hpa, i.hpaName)}: ${inactive.message ?? 'the HPA is not scaling'}${pacing(i)}`);
  const limited = i.hpa.status?.conditions?.find((c) => c.type === 'ScalingLimited' && c.status === 'True');
  return cond('True', 'ScalingActive', `${hpaSummary(i.hpa, i.hpaName)}${limited ? `; ${limited.message ?? 'limited'}` : ''}${pacing(i)}`);
}
