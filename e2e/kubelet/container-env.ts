// A container's environment as the kubelet builds it: image ENV, HOSTNAME, the apiserver as
// KUBERNETES_SERVICE_HOST/PORT (127.0.0.1 here: no ClusterIP traffic), envFrom, then env with
// $(VAR) expansion. Service links (<SVC>_SERVICE_HOST for every Service) are not injected.
// resourceFieldRef is resolved from the container's limits/requests only when set (no node
// allocatable fallback), which is all pgpilot would read.
import type { V1Container, V1Pod } from '@kubernetes/client-node';
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
  for (const from of c.envFrom ?? []) {
    const prefix = from.prefix ?? '';
    if (from.configMapRef) {
      const cm = sources.configMap(ns, from.configMapRef.name!);
      if (!cm && !from.configMapRef.optional) throw new ContainerConfigError(`configmap "${from.configMapRef.name}" not found`);
      for (const [k, v] of Object.entries(cm?.data ?? {})) env[prefix + k] = v;
    }
    if (from.secretRef) {
      const s = sources.secret(ns, from.secretRef.name!);
      if (!s && !from.secretRef.optional) throw new ContainerConfigError(`secret "${from.secretRef.name}" not found`);
      for (const [k, v] of Object.entries(s?.data ?? {})) env[prefix + k] = Buffer.from(v, 'base64').toString('utf8');
    }
  }
  for (const e of c.env ?? []) {
    if (e.value !== undefined || !e.valueFrom) {
      env[e.name] = expandRefs(e.value ?? '', env);
      continue;
    }
    const vf = e.valueFrom;
    if (vf.fieldRef) env[e.name] = downward(pod, vf.fieldRef.fieldPath);
    else if (vf.configMapKeyRef) {
      const ref = vf.configMapKeyRef;
      const v = sources.configMap(ns, ref.name!)?.data?.[ref.key];
      if (v === undefined && !ref.optional) throw new ContainerConfigError(`couldn't find key ${ref.key} in ConfigMap ${ns}/${ref.name}`);
      if (v !== undefined) env[e.name] = v;
    } else if (vf.secretKeyRef) {
      const ref = vf.secretKeyRef;
      const v = sources.secret(ns, ref.name!)?.data?.[ref.key];
      if (v === undefined && !ref.optional) throw new ContainerConfigError(`couldn't find key ${ref.key} in Secret ${ns}/${ref.name}`);
      if (v !== undefined) env[e.name] = Buffer.from(v, 'base64').toString('utf8');
    } else if (vf.resourceFieldRef) {
      const r = vf.resourceFieldRef.resource; // e.g. limits.memory
      const [kind, res] = r.split('.') as ['limits' | 'requests', string];
      const v = c.resources?.[kind]?.[res];
      if (v !== undefined) env[e.name] = String(v);
    }
  }
  return env;
}
