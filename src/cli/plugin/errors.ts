// Turns failed Kubernetes API calls into PluginErrors: the exit code for the kind of failure
// (exit.ts) and a message naming the verb and resource.
import { ApiException } from '@kubernetes/client-node';
import { KubeTimeoutError } from '../../runtime/kube.js';
import { errorText } from '../../util/error-text.js';
import { EXIT, PluginError } from './exit.js';

export { EXIT, PluginError, usage, type ExitCode } from './exit.js';

/** What a call did, for its error message: "cannot patch postgresqlclusters "db" in namespace ns". */
export interface ApiCall {
  verb: string;
  resource: string;
  name?: string;
  namespace?: string;
}

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'EAI_AGAIN', 'EPIPE', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_SOCKET', 'CERT_HAS_EXPIRED', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE']);

/** The network error code in an error or its causes (fetch wraps them: "fetch failed" ← ECONNREFUSED). */
export function networkCode(err: unknown): string | undefined {
  for (let e: unknown = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && NETWORK_CODES.has(code)) return code;
  }
  return undefined;
}

/** The apiserver's own message in a failed call's body (a Status object, as JSON text). */
export function apiMessage(err: ApiException<unknown>): string {
  const body = err.body;
  if (typeof body === 'string') {
    try {
      const parsed = JSON.parse(body) as { message?: unknown };
      if (typeof parsed.message === 'string') return parsed.message;
    } catch {
      // Not JSON: the text itself.
    }
    return body.slice(0, 500);
  }
  if (body && typeof body === 'object' && typeof (body as { message?: unknown }).message === 'string') return (body as { message: string }).message;
  return `HTTP ${err.code}`;
}

function target(call: ApiCall): string {
  return `${call.resource}${call.name ? ` "${call.name}"` : ''}${call.namespace ? ` in namespace ${call.namespace}` : ''}`;
}

/** Turns a failed call into a PluginError with the exit code for its kind of failure. */
export function apiError(err: unknown, call: ApiCall, server: string): PluginError {
  if (err instanceof PluginError) return err;
  if (err instanceof KubeTimeoutError) {
    return new PluginError(`the apiserver at ${server} did not answer within ${err.timeoutMs / 1000} s (${call.verb} ${target(call)})`, EXIT.unreachable);
  }
  if (err instanceof ApiException) {
    const code = err.code;
    const said = apiMessage(err as ApiException<unknown>);
    if (code === 404) {
      if (call.name) return new PluginError(`${target(call)} not found`, EXIT.notFound);
      return new PluginError(`the apiserver has no ${call.resource}${call.namespace ? ` in namespace ${call.namespace}` : ''}: is pgpilot installed (its CRDs)? (${said})`, EXIT.notFound);
    }
    if (code === 403) return new PluginError(`forbidden: you may not ${call.verb} ${target(call)} (${said})`, EXIT.forbidden);
    if (code === 401) return new PluginError(`not authenticated: the apiserver at ${server} refused the kubeconfig's credentials (${said})`, EXIT.forbidden);
    if (code === 400 || code === 422) return new PluginError(`the apiserver refused to ${call.verb} ${target(call)}: ${said}`, EXIT.usage);
    return new PluginError(`${call.verb} ${target(call)} failed (HTTP ${code}): ${said}`, EXIT.failed);
  }
  const net = networkCode(err);
  if (net) return new PluginError(`cannot reach the apiserver at ${server} (${net}): check --kubeconfig, --context and that the cluster is up`, EXIT.unreachable);
  // fetch got no HTTP answer at all; its cause says why.
  if (err instanceof TypeError && err.message === 'fetch failed') {
    return new PluginError(`cannot reach the apiserver at ${server} (${err.cause instanceof Error ? err.cause.message : 'no answer'}): check --kubeconfig, --context and that the cluster is up`, EXIT.unreachable);
  }
  return new PluginError(`${call.verb} ${target(call)} failed: ${errorText(err)}`, EXIT.failed);
}
