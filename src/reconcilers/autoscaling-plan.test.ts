import { describe, expect, it } from 'vitest';
import type { V2HorizontalPodAutoscaler } from '@kubernetes/client-node';
import { autoscalingCondition, type AutoscalingInput } from './autoscaling-plan.js';

const base = (over: Partial<AutoscalingInput> = {}): AutoscalingInput => ({
  autoscaling: { min: 2, max: 4, targetCPUUtilizationPercentage: 70 },
  instances: 2,
  synchronousReplicas: 1,
  hpaName: 'db',
  cpuRequest: true,
  deferred: [],
  waitingFor: [],
  ...over,
});

const hpa = (status: V2HorizontalPodAutoscaler['status']): V2HorizontalPodAutoscaler => ({
  spec: { scaleTargetRef: { kind: 'PostgreSQLCluster', name: 'db' }, minReplicas: 2, maxReplicas: 4, metrics: [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 70 } } }] },
  status,
});

describe('autoscalingCondition', () => {
  it('says when spec.instances is held at the synchronous-commit minimum, and what to do', () => {
    const c = autoscalingCondition(base({ autoscaling: undefined, instances: 1, heldAt: 2 }));
    expect(c).toMatchObject({ type: 'Autoscaling', status: 'False', reason: 'HeldAtMinimum' });
    expect(c.message).toBe(
      'spec.instances is 1, fewer than the 2 instances synchronous commit needs (the primary and 1 synchronous replica): the cluster is held at 2. Give whoever wrote it (an HPA through the scale subresource, kubectl scale) a minimum of 2',
    );
    expect(autoscalingCondition(base({ instances: 2, heldAt: 3, synchronousReplicas: 2 })).message).toContain('Give the HPA db a minimum of 3');
  });

  it('is NotConfigured without spec.autoscaling (an HPA of the user\'s may still drive the scale subresource)', () => {
    expect(autoscalingCondition(base({ autoscaling: undefined }))).toMatchObject({ status: 'False', reason: 'NotConfigured' });
  });

  it('needs a CPU request, then the HPA', () => {
    expect(autoscalingCondition(base({ cpuRequest: false }))).toMatchObject({ status: 'False', reason: 'NoCPURequest' });
    expect(autoscalingCondition(base())).toMatchObject({ status: 'Unknown', reason: 'WaitingForHPA' });
  });

  it('shows the HPA\'s replicas, measured CPU and target; a scaling-inactive HPA with its reason', () => {
    const active = autoscalingCondition(base({ hpa: hpa({ currentReplicas: 2, desiredReplicas: 4, currentMetrics: [{ type: 'Resource', resource: { name: 'cpu', current: { averageUtilization: 185 } } }] }) }));
    expect(active).toMatchObject({ status: 'True', reason: 'ScalingActive', message: 'HPA db: 2 instances, wants 4 (CPU 185% of request, target 70%; min 2, max 4)' });
    const inactive = autoscalingCondition(
      base({ hpa: hpa({ currentReplicas: 2, desiredReplicas: 2, conditions: [{ type: 'ScalingActive', status: 'False', reason: 'FailedGetResourceMetric', message: 'unable to get metrics for resource cpu' }] }) }),
    );
    expect(inactive).toMatchObject({ status: 'False', reason: 'FailedGetResourceMetric', message: 'HPA db: 2 instances (CPU not measured yet, target 70%; min 2, max 4): unable to get metrics for resource cpu' });
  });

  it('tells that new instances come one at a time', () => {
    const c = autoscalingCondition(base({ hpa: hpa({ currentReplicas: 3, desiredReplicas: 4 }), deferred: ['db-4'], waitingFor: ['db-3'] }));
    expect(c.message).toMatch(/; adding one instance at a time: waiting for db-3 to be ready before creating db-4$/);
  });
});
