// Where a cluster's backups and WAL go, resolved from spec.backup (or the operator-wide default
// store), and how pods reach it: the location as JSON in an environment variable, credentials as
// files of a Secret volume that the JSON names (never environment variables: postgres inherits
// the agent's environment, and every backend would hold the keys), a volume for the
// PersistentVolume target. The same shapes describe a recovery source (spec.bootstrap.recovery), under another
// prefix, so a restoring pod can hold both its source and its own archive. Pure.
import type { V1EnvVar, V1Volume, V1VolumeMount } from '@kubernetes/client-node';
import { DEFAULTS, type PostgreSQLCluster, type S3Target, type VolumeTarget } from '../api/cluster.js';
import type { PostgreSQLBackup } from '../api/backup.js';
import type { ArchiveLocation, S3StoreConfig } from '../backup/store-config.js';
import { names } from '../api/names.js';
import { POD_ENV } from '../api/pod-env.js';
import { specOf } from '../api/resolve-spec.js';

/** Mount points of PersistentVolume targets inside pods. */
export const BACKUP_VOLUME_MOUNT = '/var/lib/pgpilot/backup';
export const RESTORE_VOLUME_MOUNT = '/var/lib/pgpilot/restore-source';
/** Mount points of the S3 credentials Secrets inside pods (read-only, one file per key). */
export const BACKUP_CREDENTIALS_MOUNT = '/var/run/pgpilot/backup-s3';
export const RESTORE_CREDENTIALS_MOUNT = '/var/run/pgpilot/restore-s3';
/** Readable by the owner and the pod's fsGroup (postgres), nobody else. */
const CREDENTIALS_MODE = 0o440;

/**
 * The operator-wide default store (Helm value backup.defaultStore) and who may use it. Only the
 * namespaces listed (or given credentials of their own) get it: its keys are copied into them.
 */
export interface DefaultBackupStore {
  store: S3Target;
  /** Namespaces whose clusters may use the store with its own (bucket-wide) credentials. */
  namespaces: string[];
  /** Namespace → Secret in the operator namespace with keys the store scopes to <path>/<namespace>/. */
  namespaceCredentials: Record<string, string>;
}

/**
 * The Secret (in the operator namespace) whose copy a namespace's clusters get, or null when the
 * namespace may not use the default store. Scoped credentials win over the bucket-wide ones.
 */
export function defaultStoreCredentials(d: DefaultBackupStore, namespace: string): { secretName: string; scoped: boolean } | null {
  const scoped = Object.hasOwn(d.namespaceCredentials, namespace) ? d.namespaceCredentials[namespace] : undefined;
  if (scoped) return { secretName: scoped, scoped: true };
  return d.namespaces.includes(namespace) ? { secretName: d.store.credentials.secretName, scoped: false } : null;
}

/** Why a cluster that relies on the default store has none, or undefined when it does not rely on it or may use it. */
export function defaultStoreRefusal(cluster: PostgreSQLCluster, d: DefaultBackupStore | undefined): string | undefined {
  const b = cluster.spec.backup;
  const ns = cluster.metadata.namespace!;
  if (!d || !specOf(cluster).backup.enabled || b?.s3 || b?.volume || defaultStoreCredentials(d, ns)) return undefined;
  return (
    `the cluster names no backup target of its own and namespace ${ns} may not use the operator's default backup store: ` +
    `add ${ns} to the Helm value backup.defaultStoreNamespaces (or give it scoped keys in backup.defaultStoreNamespaceCredentials), ` +
    `or set spec.backup.s3 or spec.backup.volume; until then the cluster runs WITHOUT backups`
  );
}

export interface PodAccess {
  env: V1EnvVar[];
  volumes: V1Volume[];
  mounts: V1VolumeMount[];
}

export interface ResolvedTarget extends PodAccess {
  location: ArchiveLocation;
  /** s3://bucket/path or pvc://claim/path, for status and messages. */
  url: string;
  /** Whose settings: the cluster's own or the operator-wide default. */
  origin: 'cluster' | 'default';
  /** The S3 target as resolved (credentials Secret in the cluster's namespace). */
  s3?: S3Target;
  volume?: VolumeTarget;
}

export type StoreSpec = { s3: S3Target; volume?: undefined } | { volume: VolumeTarget; s3?: undefined };

function trimSlashes(p: string): string {
  return p.replace(/^\/+|\/+$/g, '');
}

/** The S3 store config pods get: the credentials are the files of the Secret mounted at `credentialsDir`. */
export function s3StoreConfig(s3: S3Target, credentialsDir: string): S3StoreConfig {
  return {
    kind: 's3',
    ...(s3.endpoint ? { endpoint: s3.endpoint } : {}),
    bucket: s3.bucket,
    region: s3.region ?? DEFAULTS.region,
    forcePathStyle: s3.forcePathStyle ?? false,
    checksums: s3.checksums ?? DEFAULTS.checksums,
    ...(s3.serverSideEncryption ? { serverSideEncryption: s3.serverSideEncryption } : {}),
    ...(s3.insecureSkipTlsVerify ? { insecureSkipTlsVerify: true } : {}),
    accessKeyIdFile: `${credentialsDir}/${s3.credentials.accessKeyIdKey ?? DEFAULTS.accessKeyIdKey}`,
    secretAccessKeyFile: `${credentialsDir}/${s3.credentials.secretAccessKeyKey ?? DEFAULTS.secretAccessKeyKey}`,
  };
}

/** Where a pod mounts a store: the volume's name and mount path. */
interface Mount {
  volumeName: string;
  mountPath: string;
}

/**
 * How a pod reaches `store` at `path`: the location JSON in `locationEnv`; for S3 the credentials
 * Secret as a read-only volume at `credentials.mountPath` (only its two keys), for a volume target
 * the claim at `claim.mountPath`.
 */
export function podAccess(store: StoreSpec, path: string, locationEnv: string, credentials: Mount, claim: Mount): PodAccess & { location: ArchiveLocation; url: string } {
  if (store.s3) {
    const s3 = store.s3;
    const location: ArchiveLocation = { store: s3StoreConfig(s3, credentials.mountPath), path };
    const keys = [...new Set([s3.credentials.accessKeyIdKey ?? DEFAULTS.accessKeyIdKey, s3.credentials.secretAccessKeyKey ?? DEFAULTS.secretAccessKeyKey])];
    return {
      location,
      url: `s3://${s3.bucket}/${path}`,
      env: [{ name: locationEnv, value: JSON.stringify(location) }],
      // Optional: a missing Secret must not keep the pod from starting. The files are read at each
      // use, so a missing one fails archiving (a condition naming the file; WAL waits in pg_wal) or
      // a restore bootstrap, never the database; and a restored cluster's pods keep mounting their
      // recovery source's Secret long after the restore needed it (it may be gone: a namespace
      // taken off backup.defaultStoreNamespaces loses its copies).
      volumes: [{ name: credentials.volumeName, secret: { secretName: s3.credentials.secretName, defaultMode: CREDENTIALS_MODE, optional: true, items: keys.map((key) => ({ key, path: key })) } }],
      mounts: [{ name: credentials.volumeName, mountPath: credentials.mountPath, readOnly: true }],
    };
  }
  const location: ArchiveLocation = { store: { kind: 'volume', path: claim.mountPath }, path };
  return {
    location,
    url: `pvc://${store.volume.claimName}/${path}`,
    env: [{ name: locationEnv, value: JSON.stringify(location) }],
    volumes: [{ name: claim.volumeName, persistentVolumeClaim: { claimName: store.volume.claimName } }],
    mounts: [{ name: claim.volumeName, mountPath: claim.mountPath }],
  };
}

const BACKUP_MOUNTS = { credentials: { volumeName: 'backup-credentials', mountPath: BACKUP_CREDENTIALS_MOUNT }, claim: { volumeName: 'backup-target', mountPath: BACKUP_VOLUME_MOUNT } };
const RESTORE_MOUNTS = { credentials: { volumeName: 'restore-credentials', mountPath: RESTORE_CREDENTIALS_MOUNT }, claim: { volumeName: 'restore-source', mountPath: RESTORE_VOLUME_MOUNT } };

/**
 * The cluster's archive path inside a store: <prefix>/<namespace>/<cluster>, and below it
 * /<status.archiveSuffix> after a major upgrade (pg_upgrade makes another database system, which
 * gets an archive of its own; the old one stays a valid recovery source for the old version).
 */
export function clusterArchivePath(cluster: PostgreSQLCluster, prefix: string | undefined): string {
  return [trimSlashes(prefix ?? DEFAULTS.backupPath), cluster.metadata.namespace!, cluster.metadata.name!, cluster.status?.archiveSuffix].filter(Boolean).join('/');
}

/**
 * The cluster's backup target: its own spec.backup.s3 / volume, else the operator-wide default
 * store when its namespace may use it (the operator copies the credentials into the namespace),
 * else null — backups enabled without a target run without backups and say so in a condition.
 */
export function resolveBackupTarget(cluster: PostgreSQLCluster, defaultStore?: DefaultBackupStore): ResolvedTarget | null {
  const b = cluster.spec.backup;
  if (!specOf(cluster).backup.enabled) return null;
  const access = (store: StoreSpec, prefix: string | undefined) => podAccess(store, clusterArchivePath(cluster, prefix), POD_ENV.backupLocation, BACKUP_MOUNTS.credentials, BACKUP_MOUNTS.claim);
  if (b?.s3) return { ...access({ s3: b.s3 }, b.s3.path), origin: 'cluster', s3: b.s3 };
  if (b?.volume) return { ...access({ volume: b.volume }, b.volume.path), origin: 'cluster', volume: b.volume };
  if (defaultStore && defaultStoreCredentials(defaultStore, cluster.metadata.namespace!)) {
    const d = defaultStore.store;
    // The layout <path>/<namespace>/<cluster> is what scoped keys (and the recovery-source rule) rely on.
    const s3: S3Target = { ...d, credentials: { ...d.credentials, secretName: names.backupCredentials(cluster.metadata.name!) } };
    return { ...access({ s3 }, s3.path), origin: 'default', s3 };
  }
  return null;
}

/** status.recoverySource: the archive (and base backup) a restored cluster comes from. */
export type RecoverySourceStatus = NonNullable<NonNullable<PostgreSQLCluster['status']>['recoverySource']>;

/**
 * spec.bootstrap.recovery resolved to an archive: directly from `source`, or from the named
 * PostgreSQLBackup's status (which records where it was stored). `backup` is that resource, when
 * the spec names one; a problem a person must fix comes back as words.
 */
export function resolveRecoverySource(
  cluster: PostgreSQLCluster,
  backup: PostgreSQLBackup | undefined,
): { source: RecoverySourceStatus } | { problem: string } | null {
  const r = cluster.spec.bootstrap?.recovery;
  if (!r) return null;
  if (r.source) return { source: { ...r.source, ...(r.backupId ? { backupId: r.backupId } : {}) } };
  const name = r.backup!.name;
  if (!backup) return { problem: `spec.bootstrap.recovery.backup names PostgreSQLBackup "${name}", which does not exist in namespace ${cluster.metadata.namespace}` };
  const st = backup.status;
  if (st?.phase !== 'completed' || !st.destination || !st.backupId) {
    return { problem: `spec.bootstrap.recovery.backup names PostgreSQLBackup "${name}", which is ${st?.phase ?? 'pending'}${st?.error ? ` (${st.error})` : ''}: only a completed backup can be restored` };
  }
  return { source: { ...st.destination, backupId: st.backupId } };
}

/** How the first instance reaches the recovery source, and what to restore (PGPILOT_RESTORE_*). */
export function restoreAccess(cluster: PostgreSQLCluster, source: RecoverySourceStatus): PodAccess {
  const store: StoreSpec = source.s3 ? { s3: source.s3 } : { volume: source.volume! };
  const access = podAccess(store, source.path, POD_ENV.restoreSource, RESTORE_MOUNTS.credentials, RESTORE_MOUNTS.claim);
  const target = cluster.spec.bootstrap?.recovery?.target;
  return {
    env: [
      ...access.env,
      ...(source.backupId ? [{ name: POD_ENV.restoreBackupId, value: source.backupId }] : []),
      ...(target ? [{ name: POD_ENV.restoreTarget, value: JSON.stringify(target) }] : []),
    ],
    volumes: access.volumes,
    mounts: access.mounts,
  };
}
