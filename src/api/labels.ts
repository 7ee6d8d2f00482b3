// The labels on every object of a cluster and the selectors built from them: a contract between
// the operator (which sets them), the instance pods and Jobs (which select their peers by them)
// and users' own tooling.
import { LABELS, MANAGED_BY } from './constants.js';

export function clusterLabels(cluster: string, component: string): Record<string, string> {
  return {
    [LABELS.name]: 'postgresql',
    [LABELS.instanceOf]: cluster,
    [LABELS.component]: component,
    [LABELS.managedBy]: MANAGED_BY,
    [LABELS.cluster]: cluster,
  };
}

/** Selects every instance pod of a cluster (Services, PDB, anti-affinity, scale selector). */
export function podSelector(cluster: string): Record<string, string> {
  return { [LABELS.cluster]: cluster, [LABELS.component]: 'instance' };
}

export function selectorString(selector: Record<string, string>): string {
  return Object.entries(selector)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
}
