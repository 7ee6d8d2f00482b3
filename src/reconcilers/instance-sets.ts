// The StatefulSet each instance should have, and how far the instances are from it: what install
// applies (gated by the rollout plan) and what the rollout reconciler reports, computed the same
// way by both from the pass's observation.
import type { V1StatefulSet } from '@kubernetes/client-node';
import type { RecoverySourceStatus, ResolvedTarget } from '../builders/backup-target.js';
import { restoreAccess } from '../builders/backup-target.js';
import { instanceStatefulSet, type ExistingClaims } from '../builders/statefulset.js';
import { isSubset } from '../runtime/compare.js';
import type { InstanceObservation } from './observe.js';
import { planRollout, type RolloutInstance, type RolloutPlan } from './rollout-plan.js';
import type { ReconcileContext } from './types.js';
import { ANNOTATIONS } from '../api/constants.js';
import { parseRestartInstances, type Parsed } from '../api/cluster-annotations.js';
import { loweredStandbyMinimums } from '../postgres/restart-settings.js';
import { upgradeDirective, type InstanceDirective } from './major-upgrade-plan.js';
import { hibernationDirective } from './hibernation-plan.js';

export interface InstanceSet {
  instance: InstanceObservation;
  desired: V1StatefulSet;
  /** What a major upgrade has this instance run (applied at once, not through the rollout). */
  upgrade?: InstanceDirective;
}

function liveClaims(sts: V1StatefulSet | undefined): ExistingClaims {
  const out: ExistingClaims = {};
  for (const t of sts?.spec?.volumeClaimTemplates ?? []) {
    out[t.metadata!.name!] = { size: t.spec?.resources?.requests?.storage, storageClass: t.spec?.storageClassName };
  }
  return out;
}

/**
 * The cluster's restart-instances annotation against the instances the pass works with. Invalid:
 * no instance gets a value from it (a value already in a pod template stays: nothing restarts).
 */
export function instanceRestarts(ctx: ReconcileContext): Parsed<Record<string, string>> {
  return parseRestartInstances(ctx.cluster.metadata.annotations?.[ANNOTATIONS.restartInstances], ctx.observed.instanceNames);
}

export function desiredInstanceSets(ctx: ReconcileContext, target: ResolvedTarget | null, source: RecoverySourceStatus | undefined): InstanceSet[] {
  const restore = source ? restoreAccess(ctx.cluster, source) : null;
  const running = { version: ctx.cluster.spec.version, running: ctx.status.version, generation: ctx.cluster.metadata.generation };
  const restarts = instanceRestarts(ctx);
  return ctx.observed.instances.map((instance) => {
    // Hibernation first (it waits for an upgrade to finish), then a major upgrade.
    const upgrade = hibernationDirective(ctx.status.hibernation) ?? upgradeDirective(ctx.status.majorUpgrade, running, instance.name);
    // The image the upgrade names (the old version's until the primary's data is upgraded).
    const cluster = upgrade && upgrade.image !== 'hold' ? { ...ctx.cluster, spec: { ...ctx.cluster.spec, imageName: upgrade.image } } : ctx.cluster;
    const restartedAt = restarts.ok ? restarts.value[instance.name] : undefined;
    const desired = instanceStatefulSet(cluster, instance.name, ctx.config, liveClaims(instance.statefulSet), { target, restore }, restartedAt ? { restartedAt } : {});
    // hold: the template it runs now (a pending change waits until the cluster runs normally again).
    const live = instance.statefulSet?.spec?.template;
    if (upgrade?.image === 'hold' && live) desired.spec!.template = live;
    if (upgrade && !upgrade.running) desired.spec!.replicas = 0;
    return { instance, desired, ...(upgrade ? { upgrade } : {}) };
  });
}

/** install holds the set back until the rollout reaches it; an upgrade or hibernation decides at once. */
export function heldBack(s: InstanceSet, updating: string | undefined): boolean {
  return !s.upgrade && templateOutdated(s) && s.instance.name !== updating;
}

/** The pod template differs from the desired one (a restart of that instance). */
export function templateOutdated(s: InstanceSet): boolean {
  const live = s.instance.statefulSet;
  return !!live && !isSubset(s.desired.spec!.template, live.spec?.template);
}

/** The StatefulSet controller has not yet replaced the pod with one of its current template. */
function replacing(sts: V1StatefulSet | undefined): boolean {
  const st = sts?.status;
  if (!sts || !st) return false;
  if ((st.observedGeneration ?? 0) < (sts.metadata?.generation ?? 0)) return true;
  return !!st.updateRevision && !!st.currentRevision && st.updateRevision !== st.currentRevision;
}

/** The StatefulSet's pod runs its current template and is ready. */
function podReady(sts: V1StatefulSet | undefined): boolean {
  return (sts?.status?.readyReplicas ?? 0) >= 1 && !replacing(sts);
}

export function rolloutInstances(sets: InstanceSet[], primary: string | undefined): RolloutInstance[] {
  return sets.map((s) => {
    const a = s.instance.agent;
    const ready = podReady(s.instance.statefulSet);
    // A replica still running above its configuration (standby-minimums.ts) restarts once more by itself.
    const working = s.instance.name === primary ? a?.role === 'primary' && !a.fenced && a.running : !!a?.streaming && !a.provisionalSettings;
    return { name: s.instance.name, outdated: templateOutdated(s), updating: replacing(s.instance.statefulSet), ready, settled: ready && !!working };
  });
}

/** The standby minimums the change lowers on an outdated instance (rollout-plan.ts: the primary goes first). */
function loweredMinimums(sets: InstanceSet[]): string[] {
  const of = (sts: V1StatefulSet | undefined) => sts?.spec?.template?.metadata?.annotations?.[ANNOTATIONS.standbyMinimums];
  return [...new Set(sets.flatMap((s) => (templateOutdated(s) ? loweredStandbyMinimums(of(s.instance.statefulSet), of(s.desired) ?? '') : [])))];
}

export function rolloutPlan(ctx: ReconcileContext, instances: RolloutInstance[], sets: InstanceSet[]): RolloutPlan {
  return planRollout({
    instances,
    primary: ctx.observed.primary,
    lowered: loweredMinimums(sets),
    primaryUpdateMethod: ctx.spec.primaryUpdateMethod,
    primaryUpdateStrategy: ctx.spec.primaryUpdateStrategy,
    fenced: ctx.status.fencedInstances ?? [],
  });
}
