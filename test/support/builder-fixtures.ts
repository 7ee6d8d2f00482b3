// Inputs shared by the builder and backup-plan unit tests: an image config, a cluster with an S3
// backup target, and small accessors into built objects.
import type { V1Container, V1EnvVar, V1PodSpec, V1StatefulSet } from '@kubernetes/client-node';
import { expect } from 'vitest';
import type { PostgreSQLBackup } from '../../src/api/backup.js';
import type { ClusterSpec, PostgreSQLCluster, S3Target } from '../../src/api/cluster.js';
import { names } from '../../src/api/names.js';
import type { ArchiveLocation } from '../../src/backup/store-config.js';
import { resolveBackupTarget, type ResolvedTarget } from '../../src/builders/backup-target.js';
import { instanceStatefulSet, type ExistingClaims } from '../../src/builders/statefulset.js';
import { seedCluster } from './cluster-fixtures.js';

export const IMAGES = { instanceImageRepository: 'registry.example/pgpilot/postgresql' };

export function statefulSet(cluster: PostgreSQLCluster = seedCluster(), existing?: ExistingClaims): V1StatefulSet {
  return instanceStatefulSet(cluster, names.instance(cluster.metadata.name!, 2), IMAGES, existing);
}

export const podSpecOf = (sts: V1StatefulSet): V1PodSpec => sts.spec!.template.spec!;

export const containerOf = (sts: V1StatefulSet): V1Container => podSpecOf(sts).containers[0]!;

export const CREDS = 'minio-creds';

export const S3: S3Target = { endpoint: 'https://minio.storage:9000', bucket: 'pg-backups', forcePathStyle: true, credentials: { secretName: CREDS } };

export const withBackup = (backup: ClusterSpec['backup'], meta: Partial<PostgreSQLCluster['metadata']> = {}) => seedCluster({ backup }, meta);

export const s3Cluster = (s3: S3Target = S3) => withBackup({ enabled: true, schedule: '0 2 * * *', s3 });

export const envOf = (env: V1EnvVar[] | undefined, name: string) => env?.find((e) => e.name === name);

export const locationOf = (env: V1EnvVar[] | undefined, name = 'PGPILOT_BACKUP_LOCATION') => JSON.parse(envOf(env, name)!.value!) as ArchiveLocation;

export function target(cluster: PostgreSQLCluster = s3Cluster()): ResolvedTarget {
  const t = resolveBackupTarget(cluster);
  expect(t).not.toBeNull();
  return t!;
}

export function pgBackup(name: string, created: string, status?: PostgreSQLBackup['status'], meta: Partial<PostgreSQLBackup['metadata']> = {}): PostgreSQLBackup {
  return {
    apiVersion: 'postgres.pgpilot.io/v1',
    kind: 'PostgreSQLBackup',
    metadata: { name, namespace: 'production', uid: `uid-${name}`, creationTimestamp: created as unknown as Date, ...meta },
    spec: { cluster: { name: 'prod-db' } },
    ...(status ? { status } : {}),
  };
}

export const DESTINATION = { s3: S3, path: 'pgpilot/production/old-db' };
