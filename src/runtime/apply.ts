// Server-side apply with the operator's single field manager, only when something differs.
import { ApiException, PatchStrategy, type KubernetesObject, type KubernetesObjectApi } from '@kubernetes/client-node';
import { FIELD_MANAGER } from '../api/constants.js';
import { errorText } from '../util/error-text.js';
import { apiStatus, ignoreNotFound } from './api-status.js';
import { needsApply } from './compare.js';

export type ApplyOutcome = 'unchanged' | 'applied';

export async function applyIfChanged(objects: KubernetesObjectApi, desired: KubernetesObject, live: KubernetesObject | undefined): Promise<ApplyOutcome> {
  if (!needsApply(desired as Record<string, unknown>, live as Record<string, unknown> | undefined)) return 'unchanged';
  await objects.patch(desired, undefined, undefined, FIELD_MANAGER, true, PatchStrategy.ServerSideApply);
  return 'applied';
}

/** Create once; an object that already exists (a stale cache) counts as done. */
export async function createIfMissing(objects: KubernetesObjectApi, desired: KubernetesObject): Promise<'created' | 'exists'> {
  try {
    await objects.create(desired, undefined, undefined, FIELD_MANAGER);
    return 'created';
  } catch (err) {
    if (apiStatus(err) === 409) return 'exists';
    throw err;
  }
}

/** Delete, treating "already gone" as success. */
export async function deleteIfExists(objects: KubernetesObjectApi, obj: KubernetesObject, propagationPolicy = 'Background'): Promise<void> {
  await ignoreNotFound(objects.delete(obj, undefined, undefined, undefined, undefined, propagationPolicy));
}

/** A readable message from an ApiException (whose body is a JSON string) or any error. */
export function apiErrorMessage(err: unknown): string {
  if (err instanceof ApiException) {
    try {
      const body = JSON.parse(String(err.body)) as { message?: string };
      if (body.message) return `${body.message} (HTTP ${err.code})`;
    } catch {
      /* not JSON */
    }
    return `HTTP ${err.code}: ${String(err.body).slice(0, 300)}`;
  }
  return errorText(err);
}
