// Services of a cluster: headless (stable pod DNS), rw (the primary), ro (replicas), r (any).
import type { V1Service } from '@kubernetes/client-node';
import type { PostgreSQLCluster } from '../api/cluster.js';
import { LABELS, POSTGRES_PORT, ROLE_PRIMARY, ROLE_REPLICA } from '../api/constants.js';
import { ownedMeta } from './meta.js';
import { podSelector } from '../api/labels.js';
import { names } from '../api/names.js';

function service(cluster: PostgreSQLCluster, name: string, selector: Record<string, string>, headless = false): V1Service {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: ownedMeta(cluster, name, 'service'),
    spec: {
      ...(headless ? { clusterIP: 'None', publishNotReadyAddresses: true } : { type: 'ClusterIP' }),
      selector,
      ports: [{ name: 'postgresql', port: POSTGRES_PORT, targetPort: 'postgresql', protocol: 'TCP' }],
    },
  };
}

export function clusterServices(cluster: PostgreSQLCluster): V1Service[] {
  const name = cluster.metadata.name!;
  const pods = podSelector(name);
  return [
    service(cluster, names.headless(name), pods, true),
    service(cluster, names.rw(name), { ...pods, [LABELS.role]: ROLE_PRIMARY }),
    service(cluster, names.ro(name), { ...pods, [LABELS.role]: ROLE_REPLICA }),
    service(cluster, names.r(name), pods),
  ];
}
