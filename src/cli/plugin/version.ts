// `kubectl pgpilot version`: the plugin's version and the operator's (the image tag of the pods
// the chart labels as the operator), or why it is unknown.
import type { V1Deployment, V1Pod } from '@kubernetes/client-node';
import { PluginError } from './errors.js';
import type { Kube } from './kube.js';

/** The chart's selector labels of the operator (charts/pgpilot/templates/_helpers.tpl, default nameOverride). */
export const OPERATOR_SELECTOR = 'app.kubernetes.io/name=pgpilot,app.kubernetes.io/component=operator';

/** "ghcr.io/pgpilot/pgpilot:0.1.0" → "0.1.0"; a digest stays whole; no tag → "latest". */
export function imageTag(image: string): string {
  const at = image.indexOf('@');
  if (at >= 0) return image.slice(at + 1);
  const lastSlash = image.lastIndexOf('/');
  const colon = image.lastIndexOf(':');
  return colon > lastSlash ? image.slice(colon + 1) : 'latest';
}

function operatorImage(containers: { name: string; image?: string }[] | undefined): string | undefined {
  const list = containers ?? [];
  return (list.find((c) => c.name === 'operator' || c.name === 'pgpilot') ?? list[0])?.image;
}

/** Pure: what to say about the operator, from its pods and Deployments. */
export function describeOperator(pods: V1Pod[], deployments: V1Deployment[]): string {
  const running = pods.filter((p) => p.status?.phase === 'Running' && !p.metadata?.deletionTimestamp);
  if (running.length > 0) {
    const byImage = new Map<string, string[]>();
    for (const p of running) {
      const image = operatorImage(p.spec?.containers) ?? '?';
      byImage.set(image, [...(byImage.get(image) ?? []), `${p.metadata?.namespace}/${p.metadata?.name}`]);
    }
    return [...byImage].map(([image, where]) => `${imageTag(image)} (${image}; ${where.join(', ')})`).join('; ');
  }
  const d = deployments[0];
  if (d) {
    const image = operatorImage(d.spec?.template?.spec?.containers) ?? '?';
    return `operator not running (Deployment ${d.metadata?.namespace}/${d.metadata?.name}, image ${image}, ${d.spec?.replicas ?? 1} replicas asked, ${d.status?.readyReplicas ?? 0} ready)`;
  }
  return 'operator not running (no pod or Deployment labelled as the pgpilot chart labels its operator)';
}

export async function operatorVersion(kube: Kube): Promise<string> {
  try {
    const [pods, deployments] = await Promise.all([kube.podsEverywhere(OPERATOR_SELECTOR), kube.deploymentsEverywhere(OPERATOR_SELECTOR)]);
    return describeOperator(pods, deployments);
  } catch (err) {
    if (err instanceof PluginError) return `unknown (${err.message})`;
    throw err;
  }
}
