import { describe, expect, it } from 'vitest';
import { LABELS } from '../api/constants.js';
import { seedCluster } from '../../test/support/cluster-fixtures.js';
import { podMonitor } from './pod-monitor.js';

describe('podMonitor', () => {
  it('selects the instance pods of the cluster, scrapes their metrics port, and labels series by cluster and instance', () => {
    const pm = podMonitor(seedCluster());
    expect(pm).toMatchObject({ apiVersion: 'monitoring.coreos.com/v1', kind: 'PodMonitor', metadata: { name: 'prod-db', namespace: 'production' } });
    expect(pm.metadata!.ownerReferences![0]).toMatchObject({ kind: 'PostgreSQLCluster', name: 'prod-db', controller: true });
    expect(pm.spec.selector.matchLabels).toEqual({ [LABELS.cluster]: 'prod-db', [LABELS.component]: 'instance' });
    expect(pm.spec.podMetricsEndpoints).toEqual([
      {
        port: 'metrics',
        path: '/metrics',
        relabelings: [
          { sourceLabels: ['__meta_kubernetes_pod_label_postgres_pgpilot_io_cluster'], targetLabel: 'cluster', action: 'replace' },
          { sourceLabels: ['__meta_kubernetes_pod_label_postgres_pgpilot_io_instance'], targetLabel: 'instance', action: 'replace' },
        ],
      },
    ]);
  });
});
