// An OwnedCache over plain arrays: the input of the pure status and observation code in unit
// tests (what the informers would hold), not a Kubernetes mock.
import type { KubernetesObject } from '@kubernetes/client-node';
import { LABELS } from '../../src/api/constants.js';
import type { OwnedCache, OwnedKind } from '../../src/reconcilers/types.js';

export function cacheOf(objects: Array<[OwnedKind, KubernetesObject]>): OwnedCache {
  return {
    get: <T extends KubernetesObject>(kind: OwnedKind, namespace: string, name: string) =>
      objects.find(([k, o]) => k === kind && o.metadata?.namespace === namespace && o.metadata?.name === name)?.[1] as T | undefined,
    listForCluster: <T extends KubernetesObject>(kind: OwnedKind, namespace: string, cluster: string) =>
      objects.filter(([k, o]) => k === kind && o.metadata?.namespace === namespace && o.metadata?.labels?.[LABELS.cluster] === cluster).map(([, o]) => o as T),
    watching: (kind: OwnedKind) => objects.some(([k]) => k === kind),
    backupsOf: () => [],
    getBackup: () => undefined,
  };
}
