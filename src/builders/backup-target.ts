// Where a cluster's backups and WAL go, resolved from spec.backup (or the operator-wide default
// store), and how pods reach it: the location as JSON in an environment variable, credentials as
// secretKeyRef environment variables (never in the JSON), a volume for the PersistentVolume
// target. The same shapes describe a recovery source (spec.bootstrap.recovery), under another
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

/** The S3 store config pods get; credentials are read from `<envPrefix>ACCESS_KEY_ID` / `…SECRET_ACCESS_KEY`. */
export function s3StoreConfig(s3: S3Target, envPrefix: string): S3StoreConfig {
  return {
    kind: 's3',
    ...(s3.endpoint ? { endpoint: s3.endpoint } : {}),
    bucket: s3.bucket,
    region: s3.region ?? DEFAULTS.region,
    forcePathStyle: s3.forcePathStyle ?? false,
    checksums: s3.checksums ?? DEFAULTS.checksums,
    ...(s3.serverSideEncryption ? { serverSideEncryption: s3.serverSideEncryption } : {}),
    ...(s3.insecureSkipTlsVerify ? { insecureSkipTlsVerify: true } : {}),
    accessKeyIdEnv: `${envPrefix}ACCESS_KEY_ID`,
    secretAccessKeyEnv: `${envPrefix}SECRET_ACCESS_KEY`,
  };
}

/**
 * How a pod reaches `store` at `path`: the location JSON in `locationEnv`, credentials from the
 * Secret under `envPrefix`, and the claim mounted at `mountPath` for a volume target.
 */
export function podAccess(store: StoreSpec, path: string, locationEnv: string, envPrefix: string, volumeName: string, mountPath: string): PodAccess & { location: ArchiveLocation; url: string } {
  if (store.s3) {
    const s3 = store.s3;
    const location: ArchiveLocation = { store: s3StoreConfig(s3, envPrefix), path };
    const ref = (key: string) => ({ secretKeyRef: { name: s3.credentials.secretName, key } });
    return {
      location,
      url: `s3://${s3.bucket}/${path}`,
      env: [
        { name: locationEnv, value: JSON.stringify(location) },
        { name: `${envPrefix}ACCESS_KEY_ID`, valueFrom: ref(s3.credentials.accessKeyIdKey ?? DEFAULTS.accessKeyIdKey) },
        { name: `${envPrefix}SECRET_ACCESS_KEY`, valueFrom: ref(s3.credentials.secretAccessKeyKey ?? DEFAULTS.secretAccessKeyKey) },
      ],
      volumes: [],
      mounts: [],
    };
  }
  const location: ArchiveLocation = { store: { kind: 'volume', path: mountPath }, path };
  return {
    location,
    url: `pvc://${store.volume.claimName}/${path}`,
    env: [{ name: locationEnv, value: JSON.stringify(location) }],
    volumes: [{ name: volumeName, persistentVolumeClaim: { claimName: store.volume.claimName } }],
    mounts: [{ name: volumeName, mountPath }],
  };
}

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
 * store (whose credentials the operator copies into the cluster's namespace), else null — backups
 * enabled without a target run without backups and say so in a condition.
 */
export function resolveBackupTarget(cluster: PostgreSQLCluster, defaultStore?: S3Target): ResolvedTarget | null {
  const b = cluster.spec.backup;
  if (!specOf(cluster).backup.enabled) return null;
  const env = POD_ENV.backupLocation;
  if (b?.s3) {
    return { ...podAccess({ s3: b.s3 }, clusterArchivePath(cluster, b.s3.path), env, POD_ENV.backupS3Prefix, 'backup-target', BACKUP_VOLUME_MOUNT), origin: 'cluster', s3: b.s3 };
  }
  if (b?.volume) {
    return { ...podAccess({ volume: b.volume }, clusterArchivePath(cluster, b.volume.path), env, POD_ENV.backupS3Prefix, 'backup-target', BACKUP_VOLUME_MOUNT), origin: 'cluster', volume: b.volume };
  }
  if (defaultStore) {
    const s3: S3Target = { ...defaultStore, credentials: { ...defaultStore.credentials, secretName: names.backupCredentials(cluster.metadata.name!) } };
    return { ...podAccess({ s3 }, clusterArchivePath(cluster, s3.path), env, POD_ENV.backupS3Prefix, 'backup-target', BACKUP_VOLUME_MOUNT), origin: 'default', s3 };
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
  const access = podAccess(store, source.path, POD_ENV.restoreSource, POD_ENV.restoreS3Prefix, 'restore-source', RESTORE_VOLUME_MOUNT);
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
