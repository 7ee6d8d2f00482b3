// Growing the instances' claims in place (the StatefulSets' claim templates are immutable): the
// one path for a larger spec size (install) and for storage auto-grow (autopilot). A claim asks
// for the larger of the spec size and the size auto-grow chose (status.storage).
//
// A StorageClass that cannot expand makes the apiserver refuse the patch (403 from the
// PersistentVolumeClaimResize admission, 422 for a claim that is not bound). Such a refusal is
// remembered per claim and size for REFUSAL_RETRY_MS in this operator process, as the observer
// remembers agent answers: the claim is not patched again meanwhile (no retry storm), and the
// autopilot reconciler reports it in StorageFull. An operator restart tries once more.
import { PatchStrategy, setHeaderOptions, type V1PersistentVolumeClaim } from '@kubernetes/client-node';
import type { ClusterStatus } from '../api/cluster.js';
import { names } from '../api/names.js';
import { parseQuantity } from '../api/quantity.js';
import { apiErrorMessage } from '../runtime/apply.js';
import { apiStatus } from '../runtime/api-status.js';
import { claimSize, type VolumeKind } from './storage-autogrow-plan.js';
import type { ReconcileContext } from './types.js';

/** A refused expansion is tried again after this long (the StorageClass may have been changed to allow it). */
export const REFUSAL_RETRY_MS = 15 * 60_000;

interface Refusal {
  bytes: number;
  at: number;
  message: string;
}

/** Refused expansions by claim uid (per operator process). */
const refusals = new Map<string, Refusal>();

/** "pgdata-prod-db-1-0" → "pgdata". */
export function volumeOfClaim(pvc: V1PersistentVolumeClaim): string {
  return pvc.metadata!.name!.slice(0, pvc.metadata!.name!.indexOf('-'));
}

export const CLAIM_VOLUME: Record<VolumeKind, string> = { data: names.dataVolume, wal: names.walVolume };

/** What each volume's claims should request: max(spec size, the size auto-grow chose). */
export function claimSizes(spec: { storage: { size: string }; walStorage?: { size: string } }, status: ClusterStatus): Record<string, string | undefined> {
  return {
    [names.dataVolume]: claimSize(spec.storage.size, status.storage?.data?.size),
    [names.walVolume]: spec.walStorage ? claimSize(spec.walStorage.size, status.storage?.wal?.size) : undefined,
  };
}

/** The refusal that holds a claim back from `bytes` now, if any. */
export function refusalOf(pvc: V1PersistentVolumeClaim, bytes: number, now = Date.now()): string | undefined {
  const r = refusals.get(pvc.metadata?.uid ?? '');
  return r && r.bytes <= bytes && now - r.at < REFUSAL_RETRY_MS ? r.message : undefined;
}

export interface GrowthResult {
  grown: string[];
  /** Claims the apiserver refused to expand (now or recently), with its words. */
  refused: { claim: string; message: string; fresh: boolean }[];
}

/** Patch every claim of `ctx.observed` that asks for less than `sizes` says (by claim template name). */
export async function growClaims(ctx: ReconcileContext, sizes: Record<string, string | undefined>): Promise<GrowthResult> {
  const ns = ctx.cluster.metadata.namespace!;
  const out: GrowthResult = { grown: [], refused: [] };
  const grow = ctx.observed.instances.flatMap((i) => i.claims).filter((pvc) => {
    const want = sizes[volumeOfClaim(pvc)];
    const have = pvc.spec?.resources?.requests?.storage;
    return want && have && parseQuantity(want) > parseQuantity(have);
  });
  await Promise.all(
    grow.map(async (pvc) => {
      const name = pvc.metadata!.name!;
      const size = sizes[volumeOfClaim(pvc)]!;
      const bytes = parseQuantity(size);
      const known = refusalOf(pvc, bytes);
      if (known) {
        out.refused.push({ claim: name, message: known, fresh: false });
        return;
      }
      try {
        await ctx.clients.core.patchNamespacedPersistentVolumeClaim(
          { name, namespace: ns, body: { spec: { resources: { requests: { storage: size } } } } },
          setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
        );
      } catch (err) {
        const code = apiStatus(err);
        if (code !== 403 && code !== 422) throw err;
        const message = apiErrorMessage(err);
        refusals.set(pvc.metadata!.uid!, { bytes, at: Date.now(), message });
        out.refused.push({ claim: name, message, fresh: true });
        return;
      }
      refusals.delete(pvc.metadata!.uid!);
      ctx.wrote(`PersistentVolumeClaim/${name}`);
      out.grown.push(name);
    }),
  );
  return out;
}
