import { describe, expect, it } from 'vitest';
import type { PostgreSQLCluster } from '../api/cluster.js';
import { autoscalingMin, horizontalPodAutoscaler } from './hpa.js';

const cluster = (spec: Partial<PostgreSQLCluster['spec']> = {}): PostgreSQLCluster => ({
  apiVersion: 'postgres.pgpilot.io/v1',
  kind: 'PostgreSQLCluster',
  metadata: { name: 'prod-db', namespace: 'production', uid: 'u1' },
  spec: { version: '16', instances: 2, storage: { size: '1Gi' }, ...spec },
});

describe('horizontalPodAutoscaler', () => {
  it('is absent without spec.autoscaling', () => {
    expect(horizontalPodAutoscaler(cluster())).toBeUndefined();
  });

  it('targets the cluster\'s scale subresource with a CPU utilisation target, owned by the cluster', () => {
    const hpa = horizontalPodAutoscaler(cluster({ autoscaling: { min: 2, max: 5, targetCPUUtilizationPercentage: 70 } }))!;
    expect(hpa.apiVersion).toBe('autoscaling/v2');
    expect(hpa.metadata).toMatchObject({ name: 'prod-db', namespace: 'production', labels: { 'app.kubernetes.io/managed-by': 'pgpilot', 'postgres.pgpilot.io/cluster': 'prod-db' } });
    expect(hpa.metadata!.ownerReferences).toEqual([expect.objectContaining({ kind: 'PostgreSQLCluster', name: 'prod-db', uid: 'u1', controller: true })]);
    expect(hpa.spec).toEqual({
      scaleTargetRef: { apiVersion: 'postgres.pgpilot.io/v1', kind: 'PostgreSQLCluster', name: 'prod-db' },
      minReplicas: 2,
      maxReplicas: 5,
      metrics: [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 70 } } }],
    });
  });

  it('defaults the target to 80 % and min to what synchronous commit needs; sets the scale-down window when given', () => {
    const hpa = horizontalPodAutoscaler(cluster({ autoscaling: { max: 4, scaleDownStabilizationSeconds: 15 }, highAvailability: { synchronousCommit: true, synchronousReplicas: 2 } }))!;
    expect(hpa.spec!.minReplicas).toBe(3);
    expect(hpa.spec!.metrics![0]!.resource!.target.averageUtilization).toBe(80);
    expect(hpa.spec!.behavior).toEqual({ scaleDown: { stabilizationWindowSeconds: 15 } });
    expect(autoscalingMin(cluster({ autoscaling: { max: 3 } }))).toBe(1);
  });
});
