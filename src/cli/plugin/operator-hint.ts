// When a command that follows the operator's work times out, the likeliest cause is an operator
// that does not run: the timeout's message then says what is known of it (version.ts).
import { EXIT, PluginError } from './errors.js';
import type { Kube } from './kube.js';
import { operatorVersion } from './version.js';

/** The timeout's message, with what is known of the operator when no operator pod runs (pure). */
export function timeoutWithHint(message: string, operator: string | undefined): string {
  return operator?.startsWith('operator not running') ? `${message}; is the operator running? ${operator}` : message;
}

/** Runs a following command; a timeout says whether an operator pod runs. */
export async function withOperatorHint<T>(kube: Kube, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    if (!(err instanceof PluginError) || err.exitCode !== EXIT.failed || !err.message.startsWith('timed out')) throw err;
    const operator = await operatorVersion(kube).catch(() => undefined);
    throw new PluginError(timeoutWithHint(err.message, operator), EXIT.failed);
  }
}
