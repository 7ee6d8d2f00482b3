// A container's environment as the kubelet builds it: image ENV, HOSTNAME, the apiserver as
// KUBERNETES_SERVICE_HOST/PORT (127.0.0.1 here: no ClusterIP traffic), envFrom, then env with
// $(VAR) expansion. Service links (<SVC>_SERVICE_HOST for every Service) are not injected.
// resourceFieldRef is resolved from the container's limits/requests only when set (no node
// allocatable fallback), which is all pgpilot would read.
import type { V1Container, V1EnvFromSource, V1EnvVar, V1Pod } from '@kubernetes/client-node';
import type { ResolvedImage } from './images.js';
import { downward, type VolumeSources } from './volumes.js';

/** The container cannot start with this configuration yet (CreateContainerConfigError). */
export class ContainerConfigError extends Error {}

export function expandRefs(s: string, env: Record<string, string>): string {
  return s.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (all, name: string | undefined) =>
    name === undefined ? '$' : Object.prototype.hasOwnProperty.call(env, name) ? env[name]! : all,
  );
}

export function containerEnv(pod: V1Pod, c: V1Container, image: ResolvedImage, sources: VolumeSources, apiServer: URL): Record<string, string> {
  const ns = pod.metadata!.namespace!;
  const port = apiServer.port || (apiServer.protocol === 'https:' ? '443' : '80');
  const env: Record<string, string> = {
    ...image.env,
    HOSTNAME: pod.metadata!.name!,
    KUBERNETES_SERVICE_HOST: apiServer.hostname,
    KUBERNETES_SERVICE_PORT: port,
    KUBERNETES_SERVICE_PORT_HTTPS: port,
  };
  for (const from of c.envFrom ?? []) addEnvFrom(env, from, ns, sources);
  for (const e of c.env ?? []) {
    // Each value sees the variables before it ($(VAR) expansion in order).
    const v = envVarValue(e, env, pod, c, ns, sources);
    if (v !== undefined) env[e.name] = v;
  }
  return env;
}

const fromBase64 = (v: string) => Buffer.from(v, 'base64').toString('utf8');

/** One envFrom entry: every key of its ConfigMap and/or Secret, with the prefix. */
function addEnvFrom(env: Record<string, string>, from: V1EnvFromSource, ns: string, sources: VolumeSources): void {
  const prefix = from.prefix ?? '';
  if (from.configMapRef) {
    const cm = sources.configMap(ns, from.configMapRef.name!);
    if (!cm && !from.configMapRef.optional) throw new ContainerConfigError(`configmap "${from.configMapRef.name}" not found`);
    for (const [k, v] of Object.entries(cm?.data ?? {})) env[prefix + k] = v;
  }
  if (from.secretRef) {
    const s = sources.secret(ns, from.secretRef.name!);
    if (!s && !from.secretRef.optional) throw new ContainerConfigError(`secret "${from.secretRef.name}" not found`);
    for (const [k, v] of Object.entries(s?.data ?? {})) env[prefix + k] = fromBase64(v);
  }
}

/** The value of one env entry; undefined leaves the variable unset (an optional key that is absent). */
function envVarValue(e: V1EnvVar, env: Record<string, string>, pod: V1Pod, c: V1Container, ns: string, sources: VolumeSources): string | undefined {
  if (e.value !== undefined || !e.valueFrom) return expandRefs(e.value ?? '', env);
  const vf = e.valueFrom;
  if (vf.fieldRef) return downward(pod, vf.fieldRef.fieldPath);
  if (vf.configMapKeyRef) return keyRefValue(vf.configMapKeyRef, 'ConfigMap', ns, sources.configMap(ns, vf.configMapKeyRef.name!)?.data);
  if (vf.secretKeyRef) {
    const v = keyRefValue(vf.secretKeyRef, 'Secret', ns, sources.secret(ns, vf.secretKeyRef.name!)?.data);
    return v === undefined ? undefined : fromBase64(v);
  }
  if (vf.resourceFieldRef) {
    const r = vf.resourceFieldRef.resource; // e.g. limits.memory
    const [kind, res] = r.split('.') as ['limits' | 'requests', string];
    const v = c.resources?.[kind]?.[res];
    return v === undefined ? undefined : String(v);
  }
  return undefined;
}

/** A configMapKeyRef/secretKeyRef's raw value; a missing key is an error unless the ref is optional. */
function keyRefValue(ref: { name?: string; key: string; optional?: boolean }, kind: 'ConfigMap' | 'Secret', ns: string, data: Record<string, string> | undefined): string | undefined {
  const v = data?.[ref.key];
  if (v === undefined && !ref.optional) throw new ContainerConfigError(`couldn't find key ${ref.key} in ${kind} ${ns}/${ref.name}`);
  return v;
}
