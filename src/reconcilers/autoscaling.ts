// autoscaling: spec.autoscaling's HorizontalPodAutoscaler (builders/hpa.ts), applied while the
// block is there and removed when it goes; the Autoscaling condition (autoscaling-plan.ts) with the
// HPA's view and whether spec.instances is held at the minimum synchronous commit needs. The
// instances themselves follow spec.instances through the observation's plan (one new instance at
// a time, never the primary removed): an HPA the user made (`kubectl autoscale pgc`) works the
// same way through the scale subresource.
import type { V2HorizontalPodAutoscaler } from '@kubernetes/client-node';
import { names } from '../api/names.js';
import { horizontalPodAutoscaler } from '../builders/hpa.js';
import { autoscalingCondition } from './autoscaling-plan.js';
import type { ReconcileContext, Reconciler, ReconcilerResult } from './types.js';

/** While an HPA is owned, look again this often: its status (the condition's numbers) changes without an event of ours. */
export const AUTOSCALING_RECHECK_MS = 30_000;

export const autoscalingReconciler: Reconciler = {
  name: 'autoscaling',
  statusFields: [],
  async reconcile(ctx: ReconcileContext): Promise<ReconcilerResult> {
    const { cluster, spec, observed } = ctx;
    const ns = cluster.metadata.namespace!;
    const name = names.hpa(cluster.metadata.name!);
    const desired = horizontalPodAutoscaler(cluster);
    const live = ctx.cache.get<V2HorizontalPodAutoscaler>('HorizontalPodAutoscaler', ns, name);
    if (desired) await ctx.apply('HorizontalPodAutoscaler', desired);
    else if (live) await ctx.remove({ apiVersion: 'autoscaling/v2', kind: 'HorizontalPodAutoscaler', metadata: { name, namespace: ns } });
    const condition = autoscalingCondition({
      ...(spec.autoscaling ? { autoscaling: spec.autoscaling } : {}),
      instances: spec.instances,
      ...(observed.heldAt !== undefined ? { heldAt: observed.heldAt } : {}),
      synchronousReplicas: spec.highAvailability.synchronousReplicas,
      ...(desired && live ? { hpa: live } : {}),
      hpaName: name,
      cpuRequest: !!(spec.resources?.requests?.cpu ?? spec.resources?.limits?.cpu),
      deferred: observed.deferred,
      waitingFor: observed.waitingFor,
    });
    return { conditions: [condition], ...(desired ? { requeueAfterMs: AUTOSCALING_RECHECK_MS } : {}) };
  },
};
