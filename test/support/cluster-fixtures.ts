/**
 * Inputs shared by the unit tests: the seed manifest (examples/cluster.yaml, the product owner's
 * own example) as a typed PostgreSQLCluster, and a way to vary its spec.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import type { ClusterSpec, PostgreSQLCluster } from '../../src/api/cluster.js';

export const repoRoot: string = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export function readRepoFile(relative: string): string {
  return readFileSync(path.join(repoRoot, relative), 'utf8');
}

/** examples/cluster.yaml, parsed afresh on every call (tests may mutate it). */
export function seedManifest(): PostgreSQLCluster {
  return parse(readRepoFile('examples/cluster.yaml')) as PostgreSQLCluster;
}

export const CLUSTER_UID = '6f1c2a9e-0000-4000-8000-000000000001';

/**
 * The seed cluster as the apiserver hands it to the operator (uid and generation set), with
 * `spec` shallow-merged over the seed's spec and `metadata` over its metadata.
 */
export function seedCluster(spec: Partial<ClusterSpec> = {}, metadata: Partial<PostgreSQLCluster['metadata']> = {}): PostgreSQLCluster {
  const seed = seedManifest();
  return {
    ...seed,
    metadata: { ...seed.metadata, uid: CLUSTER_UID, generation: 1, ...metadata },
    spec: { ...seed.spec, ...spec },
  };
}

/** Deep copy through JSON: what a builder's output looks like after a round trip to the apiserver. */
export function jsonClone<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}
