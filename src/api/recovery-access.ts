// Which recovery sources a cluster's namespace may read (spec.bootstrap.recovery): the rule the
// validating webhook and the operator both enforce (a webhook can be bypassed or down). Pure.
//
// The operator-wide default store (Helm value backup.defaultStore) holds every namespace's
// archives under <path>/<namespace>/<cluster>, reachable with the same keys: a cluster whose
// recovery source is that store may only name an archive under its own namespace's prefix. A
// source in another store (its own bucket or endpoint, with a credentials Secret in the cluster's
// namespace) may be read as far as those credentials reach; so may a volume (a claim in the
// cluster's namespace). docs/api-versions.md, "The validating webhook".
import { DEFAULTS, type RecoverySource, type S3Target } from './cluster.js';

/** The archive named by a recovery: spec.bootstrap.recovery.source, or what a PostgreSQLBackup resolved to. */
export type RecoverySourceLike = Pick<RecoverySource, 's3' | 'volume' | 'path'>;

const trimSlashes = (p: string) => p.replace(/^\/+|\/+$/g, '');
/** An endpoint as a comparable key: scheme and host lowercased, no trailing slash; AWS (none) is "". */
const endpointKey = (e: string | undefined) => (e ?? '').trim().replace(/\/+$/, '').toLowerCase();

/** Whether an S3 source is the default store: the same bucket on the same endpoint (whatever Secret it names). */
export function isDefaultStore(s3: S3Target, defaultStore: S3Target | undefined): boolean {
  return !!defaultStore && s3.bucket === defaultStore.bucket && endpointKey(s3.endpoint) === endpointKey(defaultStore.endpoint);
}

/** The prefix of `namespace`'s archives in the default store: "<path>/<namespace>/". */
export function namespacePrefix(defaultStore: S3Target, namespace: string): string {
  return `${trimSlashes(defaultStore.path ?? DEFAULTS.backupPath)}/${namespace}/`;
}

/**
 * Why a cluster in `namespace` may not recover from `source` (undefined: it may). `field` names
 * the field in the message (the source as the user wrote it, or the PostgreSQLBackup it came from).
 */
export function recoverySourceProblem(
  namespace: string,
  source: RecoverySourceLike,
  defaultStore: S3Target | undefined,
  field = 'spec.bootstrap.recovery.source',
): string | undefined {
  if (!source.s3 || !isDefaultStore(source.s3, defaultStore)) return undefined;
  const prefix = namespacePrefix(defaultStore!, namespace);
  // STORE_PATH_PATTERN already refuses "." and ".." segments: a prefix match cannot climb out.
  if (trimSlashes(source.path).startsWith(prefix)) return undefined;
  return (
    `${field}.path "${source.path}" is not an archive of namespace ${namespace}: ${field}.s3 names the operator's default backup store (bucket "${defaultStore!.bucket}"), ` +
    `from which a cluster may only recover archives of its own namespace, under "${prefix}" (e.g. "${prefix}<cluster>"). ` +
    `To recover from elsewhere, name a store of your own (another bucket or endpoint, with a credentials Secret in namespace ${namespace})`
  );
}
