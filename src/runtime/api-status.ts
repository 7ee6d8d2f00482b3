// client-node throws an ApiException carrying the HTTP status of a failed call. Callers mostly
// ask one question of it: is the object there (404 is an answer, not a failure)?
import { ApiException } from '@kubernetes/client-node';

/** The HTTP status of a failed client-node call, or undefined for any other error. */
export function apiStatus(err: unknown): number | undefined {
  return err instanceof ApiException ? err.code : undefined;
}

/** The call's result, or undefined when the object does not exist (HTTP 404); other errors are thrown. */
export async function ignoreNotFound<T>(call: Promise<T>): Promise<T | undefined> {
  try {
    return await call;
  } catch (err) {
    if (apiStatus(err) === 404) return undefined;
    throw err;
  }
}
