// The kinds a cluster owns, and where their informers watch.
import type { ResourceType } from '../runtime/informer.js';
import type { OwnedKind } from '../reconcilers/types.js';
import { API_GROUP, API_VERSION, BACKUP_KIND, BACKUP_PLURAL, CLUSTER_KIND, CLUSTER_PLURAL } from '../api/constants.js';

export const CLUSTER_RESOURCE: ResourceType = { group: API_GROUP, version: API_VERSION, plural: CLUSTER_PLURAL, kind: CLUSTER_KIND };

export const BACKUP_RESOURCE: ResourceType = { group: API_GROUP, version: API_VERSION, plural: BACKUP_PLURAL, kind: BACKUP_KIND };

/** Kinds watched from the start (optional-kinds.ts has those watched only while their API is served). */
export const OWNED_RESOURCES: Partial<Record<OwnedKind, ResourceType>> = {
  StatefulSet: { group: 'apps', version: 'v1', plural: 'statefulsets', kind: 'StatefulSet' },
  Service: { group: '', version: 'v1', plural: 'services', kind: 'Service' },
  Secret: { group: '', version: 'v1', plural: 'secrets', kind: 'Secret' },
  ConfigMap: { group: '', version: 'v1', plural: 'configmaps', kind: 'ConfigMap' },
  PodDisruptionBudget: { group: 'policy', version: 'v1', plural: 'poddisruptionbudgets', kind: 'PodDisruptionBudget' },
  ServiceAccount: { group: '', version: 'v1', plural: 'serviceaccounts', kind: 'ServiceAccount' },
  Role: { group: 'rbac.authorization.k8s.io', version: 'v1', plural: 'roles', kind: 'Role' },
  RoleBinding: { group: 'rbac.authorization.k8s.io', version: 'v1', plural: 'rolebindings', kind: 'RoleBinding' },
  PersistentVolumeClaim: { group: '', version: 'v1', plural: 'persistentvolumeclaims', kind: 'PersistentVolumeClaim' },
  Pod: { group: '', version: 'v1', plural: 'pods', kind: 'Pod' },
  CronJob: { group: 'batch', version: 'v1', plural: 'cronjobs', kind: 'CronJob' },
  Job: { group: 'batch', version: 'v1', plural: 'jobs', kind: 'Job' },
  HorizontalPodAutoscaler: { group: 'autoscaling', version: 'v2', plural: 'horizontalpodautoscalers', kind: 'HorizontalPodAutoscaler' },
  NetworkPolicy: { group: 'networking.k8s.io', version: 'v1', plural: 'networkpolicies', kind: 'NetworkPolicy' },
};

/**
 * What the operator's caches drop per kind: Secrets keep no credentials in the operator's memory
 * (only their existence matters to it); of Pods only metadata and status are read.
 */
export const CACHE_TRIMS: Partial<Record<OwnedKind, (obj: Record<string, unknown>) => void>> = {
  Secret: (o) => {
    delete o.data;
    delete o.stringData;
  },
  Pod: (o) => {
    delete o.spec;
  },
  // Ingress rules as client-node's model spells them (`_from` for `from`), as the builder does: the
  // serializer writes `from` on the wire, and a converged policy then compares equal to its copy.
  NetworkPolicy: (o) => {
    const ingress = (o.spec as { ingress?: Array<Record<string, unknown>> } | undefined)?.ingress ?? [];
    for (const rule of ingress) {
      if (!('from' in rule)) continue;
      rule._from = rule.from;
      delete rule.from;
    }
  },
  // Backup Jobs are created once and then only their status is read.
  Job: (o) => {
    delete o.spec;
  },
};
