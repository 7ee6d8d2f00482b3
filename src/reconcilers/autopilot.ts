// autopilot: the work that runs the database without a person. Today storage auto-grow
// (spec.storage.autoGrow, spec.walStorage.autoGrow): from the volumes the agents report (statfs,
// in the pass's observation) and the claims, storage-autogrow-plan.ts decides per volume; growth
// goes through the claim-growth path install uses (claim-growth.ts), the size chosen is recorded
// in status.storage (spec size stays the floor), and the conditions StorageAutoGrowing and
// StorageFull say where it stands. It never waits for a growth: it patches the claims (every
// Kubernetes call has the client's timeout) and looks again in a few seconds.
import { parseQuantity } from '../api/quantity.js';
import type { StorageStatus } from '../api/autogrow.js';
import { rfc3339 } from '../runtime/time.js';
import { CLAIM_VOLUME, growClaims, refusalOf, volumeOfClaim } from './claim-growth.js';
import {
  autoGrowSettings,
  planVolume,
  storageConditions,
  walRetentionCause,
  walWeighs,
  type AutoGrowSettings,
  type InstanceVolume,
  type VolumeDecision,
  type VolumeKind,
} from './storage-autogrow-plan.js';
import type { ReconcileContext, Reconciler, ReconcilerResult } from './types.js';

/** With auto-grow on, look this often; near a threshold (within NEAR_POINTS) or while growing, faster. */
export const AUTOGROW_POLL_MS = 10_000;
export const AUTOGROW_NEAR_POLL_MS = 3_000;
const NEAR_POINTS = 10;
/**
 * Auto-grow off: StorageFull still follows the volumes the agents report, this often (near the
 * threshold, every UNWATCHED_NEAR_POLL_MS). Without a running instance nothing is measured: no poll.
 */
export const UNWATCHED_POLL_MS = 30_000;
const UNWATCHED_NEAR_POLL_MS = 15_000;

function instanceVolumes(ctx: ReconcileContext, volume: VolumeKind): InstanceVolume[] {
  const bytes = (q: string | undefined) => (q === undefined ? undefined : parseQuantity(q));
  return ctx.observed.instances.map((i) => {
    const pvc = i.claims.find((c) => volumeOfClaim(c) === CLAIM_VOLUME[volume]);
    const usage = i.agent?.volumes?.find((v) => v.volume === volume);
    return {
      instance: i.name,
      ...(usage ? { usage } : {}),
      ...(pvc ? { requestBytes: bytes(pvc.spec?.resources?.requests?.storage), capacityBytes: bytes(pvc.status?.capacity?.storage) } : {}),
    };
  });
}

/** The words of a recent refusal to expand one of the volume's claims, if any. */
function refusal(ctx: ReconcileContext, volume: VolumeKind): string | undefined {
  for (const pvc of ctx.observed.instances.flatMap((i) => i.claims).filter((c) => volumeOfClaim(c) === CLAIM_VOLUME[volume])) {
    const r = refusalOf(pvc, Infinity);
    if (r) return r;
  }
  return undefined;
}

interface VolumeOutcome {
  decision: VolumeDecision;
  status?: StorageStatus['data'];
}

/** Decide for one volume and carry a growth out. */
async function autoGrowVolume(ctx: ReconcileContext, volume: VolumeKind, specSize: string, settings: AutoGrowSettings, now: number): Promise<VolumeOutcome> {
  const status = ctx.status.storage?.[volume];
  const primary = ctx.observed.instances.find((i) => i.name === ctx.observed.primary)?.agent;
  const holdsWal = volume === 'wal' || !ctx.cluster.spec.walStorage;
  const cause = holdsWal && walWeighs(volume, primary) ? walRetentionCause(primary) : undefined;
  const expansionRefused = refusal(ctx, volume);
  const decision = planVolume({
    volume,
    specSize,
    settings,
    ...(status ? { status } : {}),
    instances: instanceVolumes(ctx, volume),
    ...(cause ? { walRetention: cause } : {}),
    ...(expansionRefused ? { expansionRefused } : {}),
    now,
  });
  if (decision.kind !== 'grow') return { decision, ...(status ? { status } : {}) };

  const { grown, refused } = await growClaims(ctx, { [CLAIM_VOLUME[volume]]: decision.to });
  if (refused.some((r) => r.fresh)) {
    await ctx.event('Warning', 'StorageExpansionRefused', `Could not grow the ${volume} claims to ${decision.to}: ${refused[0]!.message}`);
  }
  if (grown.length === 0) {
    const words = refused[0]?.message ?? 'no claim to grow';
    return { decision: { kind: 'full', volume, reason: 'ExpansionNotSupported', message: `${decision.reason} but its claims cannot grow: ${words} (use a StorageClass with allowVolumeExpansion: true)` }, ...(status ? { status } : {}) };
  }
  const message = `Growing the ${volume} claims ${grown.join(', ')} from ${decision.from} to ${decision.to}: ${decision.reason}`;
  await ctx.event(decision.walRetention ? 'Warning' : 'Normal', decision.walRetention ? 'StorageGrownForWal' : 'StorageGrown', message);
  ctx.log.info({ volume, from: decision.from, to: decision.to, claims: grown }, 'storage auto-grow');
  return {
    decision,
    status: { size: decision.to, lastGrownAt: rfc3339(new Date(now)), reason: decision.reason, ...(decision.walRetention ? { walRetention: true } : {}) },
  };
}

/** How soon to look again: statfs changes raise no watch event. */
function pollAfter(decisions: VolumeDecision[], settings: Partial<Record<VolumeKind, AutoGrowSettings>>): number | undefined {
  const near = (d: VolumeDecision) => d.kind === 'ok' && d.hottestPercent !== undefined && d.hottestPercent >= settings[d.volume]!.thresholdPercent - NEAR_POINTS;
  const enabled = (d: VolumeDecision) => !!settings[d.volume]?.enabled;
  if (decisions.some((d) => enabled(d) && (d.kind === 'grow' || d.kind === 'growing' || d.kind === 'cooldown' || near(d)))) return AUTOGROW_NEAR_POLL_MS;
  if (decisions.some(enabled)) return AUTOGROW_POLL_MS;
  if (decisions.some((d) => d.kind === 'full' || near(d))) return UNWATCHED_NEAR_POLL_MS;
  if (decisions.some((d) => d.kind === 'ok' && d.hottestPercent !== undefined)) return UNWATCHED_POLL_MS;
  return undefined;
}

export function createAutopilotReconciler(): Reconciler {
  return {
    name: 'autopilot',
    statusFields: ['storage'],
    async reconcile(ctx: ReconcileContext): Promise<ReconcilerResult> {
      const now = Date.now();
      const { spec } = ctx.cluster;
      const volumes: Array<[VolumeKind, string, AutoGrowSettings]> = [['data', spec.storage.size, autoGrowSettings(spec.storage.autoGrow)]];
      if (spec.walStorage) volumes.push(['wal', spec.walStorage.size, autoGrowSettings(spec.walStorage.autoGrow)]);
      const outcomes = await Promise.all(volumes.map(([v, size, s]) => autoGrowVolume(ctx, v, size, s, now)));
      const settings = Object.fromEntries(volumes.map(([v, , s]) => [v, s])) as Partial<Record<VolumeKind, AutoGrowSettings>>;
      const decisions = outcomes.map((o) => o.decision);
      const storage: StorageStatus = {};
      outcomes.forEach((o, i) => {
        if (o.status) storage[volumes[i]![0]] = o.status;
      });
      const requeueAfterMs = pollAfter(decisions, settings);
      return {
        conditions: storageConditions(decisions, settings),
        status: { storage: Object.keys(storage).length ? storage : undefined },
        ...(requeueAfterMs ? { requeueAfterMs } : {}),
      };
    },
  };
}
