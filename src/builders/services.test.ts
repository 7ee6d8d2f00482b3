// The Services and the PodDisruptionBudget of a cluster (pure).
import { describe, expect, it } from 'vitest';
import { LABELS } from '../api/constants.js';
import { podSelector } from '../api/labels.js';
import { podDisruptionBudget } from './pdb.js';
import { clusterServices } from './services.js';
import { seedCluster } from '../../test/support/cluster-fixtures.js';
import { containerOf, statefulSet } from '../../test/support/builder-fixtures.js';

describe('Services and disruption budget', () => {
  const byName = () => new Map(clusterServices(seedCluster()).map((s) => [s.metadata!.name!, s.spec!]));

  it('rw selects the primary, ro the replicas, r every instance', () => {
    const svc = byName();
    const pods = podSelector('prod-db');
    expect(svc.get('prod-db-rw')?.selector).toEqual({ ...pods, [LABELS.role]: 'primary' });
    expect(svc.get('prod-db-ro')?.selector).toEqual({ ...pods, [LABELS.role]: 'replica' });
    expect(svc.get('prod-db-r')?.selector).toEqual(pods);
  });

  it('headless has no cluster IP and publishes pods before they are ready', () => {
    const headless = byName().get('prod-db-headless');
    expect(headless).toMatchObject({ clusterIP: 'None', publishNotReadyAddresses: true, selector: podSelector('prod-db') });
    for (const name of ['prod-db-rw', 'prod-db-ro', 'prod-db-r']) expect(byName().get(name)?.clusterIP).toBeUndefined();
  });

  it('targets the container port named postgresql on 5432', () => {
    const containerPort = containerOf(statefulSet()).ports!.find((p) => p.name === 'postgresql');
    expect(containerPort?.containerPort).toBe(5432);
    for (const spec of byName().values()) expect(spec.ports).toEqual([{ name: 'postgresql', port: 5432, targetPort: 'postgresql', protocol: 'TCP' }]);
  });

  it('has no PDB for one instance, and maxUnavailable 1 over the instance pods otherwise', () => {
    expect(podDisruptionBudget(seedCluster(), 1)).toBeUndefined();
    for (const n of [2, 3]) {
      expect(podDisruptionBudget(seedCluster(), n)?.spec).toEqual({ maxUnavailable: 1, selector: { matchLabels: podSelector('prod-db') } });
    }
  });
});
