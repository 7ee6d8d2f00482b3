// monitoring: the cluster's PodMonitor (builders/pod-monitor.ts) while the Prometheus Operator's
// CRDs exist (the controller discovers them, optional-kinds.ts) and monitoring is on; removed when
// monitoring is turned off. Without those CRDs it does nothing: the pods' prometheus.io/*
// annotations are there for annotation-based scraping. Always: the MonitoringQueriesValid condition
// from what the agents report about the custom queries (custom-queries-condition.ts).
import { podMonitor } from '../builders/pod-monitor.js';
import { apiStatus } from '../runtime/api-status.js';
import { errorText } from '../util/error-text.js';
import { customQueriesCondition } from './custom-queries-condition.js';
import type { ReconcileContext, Reconciler, ReconcilerResult } from './types.js';

async function reconcilePodMonitor(ctx: ReconcileContext): Promise<void> {
  const { namespace, name } = ctx.cluster.metadata;
  if (ctx.spec.monitoring.enabled) return ctx.apply('PodMonitor', podMonitor(ctx.cluster));
  const live = ctx.cache.get('PodMonitor', namespace!, name!);
  if (live) await ctx.remove(live);
}

/**
 * With custom queries, look again this often: the ConfigMaps are the user's (no watch event of
 * ours fires when one changes), and only a pass asks the agents what they found in them.
 */
export const CUSTOM_QUERIES_RECHECK_MS = 30_000;

export const monitoringReconciler: Reconciler = {
  name: 'monitoring',
  statusFields: [],
  async reconcile(ctx: ReconcileContext): Promise<ReconcilerResult> {
    const conditions = [customQueriesCondition(ctx.cluster.spec, ctx.observed.instances)];
    const recheck = ctx.cluster.spec.monitoring?.customQueries?.length ? { requeueAfterMs: CUSTOM_QUERIES_RECHECK_MS } : {};
    if (!ctx.cache.watching('PodMonitor')) return { conditions, ...recheck };
    try {
      await reconcilePodMonitor(ctx);
    } catch (err) {
      // The CRD was deleted since the last discovery (which stops watching it within
      // PGPILOT_DISCOVERY_SECONDS): nothing to do, and not the cluster's failure.
      if (apiStatus(err) !== 404) throw err;
      ctx.log.info({ err: errorText(err) }, 'the PodMonitor API is gone; skipping it until it is served again');
    }
    return { conditions, ...recheck };
  },
};
