// The PodMonitor step (monitoring.ts): applied while the CRD is served and monitoring is on, removed when off, nothing without the CRD.
import { ApiException, type KubernetesObject } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { seedCluster } from '../../test/support/cluster-fixtures.js';
import { cacheOf } from '../../test/support/owned-cache.js';
import { specOf } from '../api/resolve-spec.js';
import { CUSTOM_QUERIES_RECHECK_MS, monitoringReconciler } from './monitoring.js';
import type { OwnedKind, ReconcileContext } from './types.js';

function run(enabled: boolean | undefined, objects: Array<[OwnedKind, KubernetesObject]>, failApply?: unknown) {
  const applied: KubernetesObject[] = [];
  const removed: KubernetesObject[] = [];
  const cluster = seedCluster(enabled === undefined ? {} : { monitoring: { enabled } });
  const ctx = {
    cluster,
    spec: specOf(cluster),
    cache: cacheOf(objects),
    apply: async (_kind: OwnedKind, o: KubernetesObject) => {
      if (failApply) throw failApply;
      applied.push(o);
    },
    log: { info: () => {} },
    observed: { instances: [] },
    remove: async (o: KubernetesObject) => void removed.push(o),
  } as unknown as ReconcileContext;
  return { done: monitoringReconciler.reconcile(ctx), applied, removed };
}

const live: KubernetesObject = { apiVersion: 'monitoring.coreos.com/v1', kind: 'PodMonitor', metadata: { name: 'prod-db', namespace: 'production' } };

describe('monitoringReconciler', () => {
  it('applies the PodMonitor while the CRD is served and monitoring is on (the default)', async () => {
    const r = run(undefined, [['PodMonitor', live]]);
    await r.done;
    expect(r.applied.map((o) => `${o.kind}/${o.metadata!.name}`)).toEqual(['PodMonitor/prod-db']);
    expect(r.removed).toEqual([]);
  });

  it('removes it when monitoring is turned off', async () => {
    const r = run(false, [['PodMonitor', live]]);
    await r.done;
    expect(r.applied).toEqual([]);
    expect(r.removed).toEqual([live]);
  });

  it('takes a 404 (the CRD deleted since the last discovery) as nothing to do, and any other error as a failure', async () => {
    await expect(run(undefined, [['PodMonitor', live]], new ApiException(404, 'Not Found', '404 page not found', {})).done).resolves.toEqual({ conditions: [{ type: 'MonitoringQueriesValid', status: 'True', reason: 'NoCustomQueries', message: 'No custom exporter queries (spec.monitoring.customQueries)' }] });
    await expect(run(undefined, [['PodMonitor', live]], new ApiException(403, 'Forbidden', 'forbidden', {})).done).rejects.toThrow();
  });

  it('does nothing while the Prometheus Operator CRDs are absent', async () => {
    const r = run(undefined, []);
    await r.done;
    expect(r.applied).toEqual([]);
    expect(r.removed).toEqual([]);
  });
});

describe('monitoringReconciler with custom queries', () => {
  it('looks again every CUSTOM_QUERIES_RECHECK_MS (the ConfigMaps are the user\'s: no event of ours fires when they change), and not without', async () => {
    const ctx = (customQueries?: Array<{ name: string }>) =>
      ({ cluster: seedCluster({ monitoring: { enabled: true, ...(customQueries ? { customQueries } : {}) } }), cache: cacheOf([]), observed: { instances: [] } }) as unknown as ReconcileContext;
    expect((await monitoringReconciler.reconcile(ctx([{ name: 'q' }]))).requeueAfterMs).toBe(CUSTOM_QUERIES_RECHECK_MS);
    expect((await monitoringReconciler.reconcile(ctx())).requeueAfterMs).toBeUndefined();
  });
});
