// `pgpilot backup` decisions (pure): the scheduled PostgreSQLBackup, checks of a named one, which
// instance to back up, status.destination, the status patches, the failure sentences, which
// resources expire with their base backups.
import type { V1Pod, V1PodSpec } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import type { PostgreSQLBackup } from '../api/backup.js';
import { ANNOTATIONS, LABELS } from '../api/constants.js';
import type { BackupManifest } from '../backup/archive-layout.js';
import {
  backupDestination,
  backupTargetOf,
  chooseInstance,
  claimFromPodSpec,
  completedMessage,
  completedStatus,
  describeBackupFailure,
  expiredBackupResources,
  expiredMessage,
  failedStatus,
  formatBytes,
  instancePod,
  namedBackupProblem,
  runningStatus,
  s3CredentialsFromPodSpec,
  scheduledBackupResource,
  secondsBetween,
  Throttle,
  type InstancePod,
} from './backup-run.js';
import type { ArchiveLocation, S3StoreConfig } from '../backup/store-config.js';
import { seedCluster } from '../../test/support/cluster-fixtures.js';

const pod = (instance: string, o: { role?: string; ready?: boolean; ip?: string | null; phase?: string; terminating?: boolean } = {}): InstancePod => ({
  instance,
  pod: `${instance}-0`,
  role: o.role,
  ready: o.ready ?? true,
  ip: o.ip === null ? undefined : (o.ip ?? `10.0.0.${instance.slice(-1)}`),
  phase: o.phase ?? 'Running',
  terminating: o.terminating ?? false,
});

describe('the PostgreSQLBackup of a scheduled run', () => {
  it('is named after the Job, labelled as scheduled, annotated with its Job, and not owned by the cluster', () => {
    const b = scheduledBackupResource('prod-db', 'production', 'prod-db-backup-29012345');
    expect(b).toEqual({
      apiVersion: 'postgres.pgpilot.io/v1',
      kind: 'PostgreSQLBackup',
      metadata: {
        name: 'prod-db-backup-29012345',
        namespace: 'production',
        labels: {
          'app.kubernetes.io/name': 'postgresql',
          'app.kubernetes.io/instance': 'prod-db',
          'app.kubernetes.io/component': 'backup',
          'app.kubernetes.io/managed-by': 'pgpilot',
          'postgres.pgpilot.io/cluster': 'prod-db',
          'postgres.pgpilot.io/scheduled': 'true',
        },
        annotations: { [ANNOTATIONS.backupJob]: 'prod-db-backup-29012345' },
      },
      spec: { cluster: { name: 'prod-db' } },
    });
    expect(b.metadata.ownerReferences).toBeUndefined();
  });

  it('a named backup must exist and belong to the cluster', () => {
    const b = { metadata: { name: 'manual' }, spec: { cluster: { name: 'other-db' } } } as PostgreSQLBackup;
    expect(namedBackupProblem(null, 'manual', 'prod-db', 'production')).toBe('PostgreSQLBackup production/manual does not exist (--backup manual)');
    expect(namedBackupProblem(b, 'manual', 'prod-db', 'production')).toBe('PostgreSQLBackup production/manual is a backup of cluster other-db, not of prod-db (--cluster prod-db)');
    expect(namedBackupProblem({ ...b, spec: { cluster: { name: 'prod-db' } } }, 'manual', 'prod-db', 'production')).toBeNull();
  });

  it('the target: the backup\'s own, else the cluster\'s, else prefer-standby', () => {
    const b = { metadata: { name: 'x' }, spec: { cluster: { name: 'prod-db' } } } as PostgreSQLBackup;
    const c = seedCluster();
    expect(backupTargetOf(b, c)).toBe('prefer-standby');
    expect(backupTargetOf(b, null)).toBe('prefer-standby');
    expect(backupTargetOf(b, seedCluster({ backup: { enabled: true, target: 'primary' } }))).toBe('primary');
    expect(backupTargetOf({ ...b, spec: { ...b.spec, target: 'prefer-standby' } }, seedCluster({ backup: { target: 'primary' } }))).toBe('prefer-standby');
  });
});

describe('instance pods', () => {
  it('reads instance, role, readiness, IP and termination from a pod', () => {
    const p: V1Pod = {
      metadata: { name: 'prod-db-2-0', labels: { [LABELS.instance]: 'prod-db-2', [LABELS.role]: 'replica' }, deletionTimestamp: new Date() },
      status: { phase: 'Running', podIP: '10.1.2.3', conditions: [{ type: 'Ready', status: 'True' }] },
    };
    expect(instancePod(p)).toEqual({ instance: 'prod-db-2', pod: 'prod-db-2-0', role: 'replica', ready: true, ip: '10.1.2.3', phase: 'Running', terminating: true });
    expect(instancePod({ metadata: { name: 'x-1-0' }, status: { conditions: [{ type: 'Ready', status: 'False' }] } })).toMatchObject({ instance: 'x-1-0', role: undefined, ready: false, ip: undefined });
  });
});

describe('chooseInstance', () => {
  const primary = pod('prod-db-1', { role: 'primary' });
  const r2 = pod('prod-db-2', { role: 'replica' });
  const r3 = pod('prod-db-3', { role: 'replica' });

  it('prefer-standby takes a ready replica (the first by name) and returns the primary for the WAL switch', () => {
    const c = chooseInstance([r3, primary, r2], 'prod-db-1', 'prefer-standby');
    expect(c).toEqual({ ok: true, instance: r2, fromReplica: true, primary });
  });

  it('orders instances numerically (prod-db-10 after prod-db-9)', () => {
    const r9 = pod('prod-db-9', { role: 'replica' });
    const r10 = { ...pod('prod-db-10', { role: 'replica' }), ip: '10.0.0.10' };
    expect(chooseInstance([r10, r9, primary], 'prod-db-1', 'prefer-standby')).toMatchObject({ instance: { instance: 'prod-db-9' } });
  });

  it('prefer-standby skips replicas that are not ready, have no IP or are terminating, then takes the primary', () => {
    const pods = [primary, pod('prod-db-2', { role: 'replica', ready: false }), pod('prod-db-3', { role: 'replica', ip: null }), pod('prod-db-4', { role: 'replica', terminating: true })];
    expect(chooseInstance(pods, 'prod-db-1', 'prefer-standby')).toEqual({ ok: true, instance: primary, fromReplica: false, primary });
  });

  it('a single-instance cluster backs up its primary', () => {
    expect(chooseInstance([primary], 'prod-db-1', 'prefer-standby')).toMatchObject({ ok: true, fromReplica: false, instance: primary });
  });

  it('primary takes the primary even when replicas are ready', () => {
    expect(chooseInstance([primary, r2, r3], 'prod-db-1', 'primary')).toEqual({ ok: true, instance: primary, fromReplica: false, primary });
  });

  it('the primary is the instance status.currentPrimary names; a pod still labelled primary after a failover is not a replica to use', () => {
    const old = pod('prod-db-1', { role: 'primary' });
    const promoted = pod('prod-db-2', { role: 'primary' });
    expect(chooseInstance([old, promoted], 'prod-db-2', 'primary')).toMatchObject({ ok: true, instance: { instance: 'prod-db-2' } });
    // The current primary labelled replica (labels lag) is not taken as a replica.
    expect(chooseInstance([pod('prod-db-1', { role: 'replica' })], 'prod-db-1', 'prefer-standby')).toMatchObject({ ok: true, fromReplica: false, instance: { instance: 'prod-db-1' } });
  });

  it('without status.currentPrimary, the one pod labelled primary', () => {
    expect(chooseInstance([r2, primary], undefined, 'primary')).toMatchObject({ ok: true, instance: primary });
    const two = chooseInstance([primary, pod('prod-db-2', { role: 'primary' })], undefined, 'primary');
    expect(two).toEqual({ ok: false, error: expect.stringContaining('target primary needs a primary (2 pods are labelled primary), ready') });
  });

  it('a replica backup without a ready primary has no primary for the WAL switch', () => {
    const c = chooseInstance([pod('prod-db-1', { role: 'primary', ready: false }), r2], 'prod-db-1', 'prefer-standby');
    expect(c).toEqual({ ok: true, instance: r2, fromReplica: true, primary: undefined });
  });

  it('with no ready instance, says which instances exist and their state', () => {
    const c = chooseInstance([pod('prod-db-1', { role: 'primary', ready: false, phase: 'Pending', ip: null }), pod('prod-db-2', { role: 'replica', ready: false })], 'prod-db-1', 'prefer-standby');
    expect(c).toEqual({
      ok: false,
      error:
        'no instance to take the backup from: target prefer-standby needs a ready replica or the primary prod-db-1, ready; ' +
        'instances: prod-db-1 (primary, Pending, not ready, no pod IP); prod-db-2 (replica, Running, not ready)',
    });
    expect(chooseInstance([r2], 'prod-db-1', 'primary')).toEqual({
      ok: false,
      error: 'no instance to take the backup from: target primary needs the primary prod-db-1, ready; instances: prod-db-2 (replica, Running, ready)',
    });
    expect(chooseInstance([], undefined, 'primary')).toEqual({ ok: false, error: 'no instance to take the backup from: target primary needs a primary, ready; no instance pods were found' });
  });
});

describe('status.destination', () => {
  const s3Location: ArchiveLocation = {
    store: {
      kind: 's3',
      endpoint: 'https://minio.storage:9000',
      bucket: 'backups',
      region: 'eu-west-1',
      forcePathStyle: true,
      checksums: 'WHEN_REQUIRED',
      serverSideEncryption: { algorithm: 'AES256' },
      accessKeyIdFile: '/var/run/pgpilot/backup-s3/AK',
      secretAccessKeyFile: '/var/run/pgpilot/backup-s3/SK',
    },
    path: 'pgpilot/production/prod-db',
  };
  const podSpec: V1PodSpec = {
    containers: [
      {
        name: 'backup',
        volumeMounts: [
          { name: 'backup-target', mountPath: '/var/lib/pgpilot/backup' },
          { name: 'backup-credentials', mountPath: '/var/run/pgpilot/backup-s3', readOnly: true },
        ],
      },
    ],
    volumes: [
      { name: 'backup-target', persistentVolumeClaim: { claimName: 'nfs-backups' } },
      { name: 'backup-credentials', secret: { secretName: 'prod-db-backup-credentials', items: [{ key: 'AK', path: 'AK' }, { key: 'SK', path: 'SK' }] } },
    ],
  };
  const s3 = { endpoint: 'https://minio.storage:9000', bucket: 'backups', region: 'eu-west-1', forcePathStyle: true, checksums: 'WHEN_REQUIRED', serverSideEncryption: { algorithm: 'AES256' } };

  it('s3: the store as this pod reaches it, with the Secret volume behind its credential files', () => {
    expect(backupDestination(s3Location, 'prod-db', seedCluster().spec, podSpec)).toEqual({
      s3: { ...s3, credentials: { secretName: 'prod-db-backup-credentials', accessKeyIdKey: 'AK', secretAccessKeyKey: 'SK' } },
      path: 'pgpilot/production/prod-db',
    });
  });

  it('s3 with credential variables (a pod of an older version): the Secret behind their references', () => {
    const { accessKeyIdFile: _f, secretAccessKeyFile: _g, ...rest } = s3Location.store as S3StoreConfig & { accessKeyIdFile: string; secretAccessKeyFile: string };
    const store: S3StoreConfig = { ...rest, accessKeyIdEnv: 'A', secretAccessKeyEnv: 'B' };
    const spec: V1PodSpec = { containers: [{ name: 'c', env: [
      { name: 'A', valueFrom: { secretKeyRef: { name: 'one', key: 'a' } } },
      { name: 'B', valueFrom: { secretKeyRef: { name: 'one', key: 'b' } } },
    ] }] };
    expect(s3CredentialsFromPodSpec(spec, store)).toEqual({ secretName: 'one', accessKeyIdKey: 'a', secretAccessKeyKey: 'b' });
  });

  it('s3 without the pod spec: the cluster\'s own spec.backup.s3 credentials, else the copy of the default store\'s', () => {
    const own = seedCluster({ backup: { enabled: true, s3: { bucket: 'backups', credentials: { secretName: 'minio-creds', accessKeyIdKey: 'id' } } } });
    expect(backupDestination(s3Location, 'prod-db', own.spec, undefined).s3!.credentials).toEqual({ secretName: 'minio-creds', accessKeyIdKey: 'id' });
    expect(backupDestination(s3Location, 'prod-db', seedCluster().spec, undefined).s3!.credentials).toEqual({ secretName: 'prod-db-backup-credentials' });
    // spec.backup.s3 names another bucket (changed since the Job was made): not these credentials.
    const moved = seedCluster({ backup: { enabled: true, s3: { bucket: 'elsewhere', credentials: { secretName: 'other' } } } });
    expect(backupDestination(s3Location, 'prod-db', moved.spec, undefined).s3!.credentials).toEqual({ secretName: 'prod-db-backup-credentials' });
  });

  it('volume: the claim mounted at the store path, else spec.backup.volume, else the path alone', () => {
    const vol: ArchiveLocation = { store: { kind: 'volume', path: '/var/lib/pgpilot/backup' }, path: 'pgpilot/production/prod-db' };
    expect(backupDestination(vol, 'prod-db', undefined, podSpec)).toEqual({ volume: { claimName: 'nfs-backups' }, path: 'pgpilot/production/prod-db' });
    expect(backupDestination(vol, 'prod-db', seedCluster({ backup: { volume: { claimName: 'from-spec' } } }).spec, undefined)).toEqual({ volume: { claimName: 'from-spec' }, path: 'pgpilot/production/prod-db' });
    expect(backupDestination(vol, 'prod-db', undefined, undefined)).toEqual({ path: 'pgpilot/production/prod-db' });
  });

  it('reads secret references and claims from a pod spec only when they are complete', () => {
    const st = s3Location.store as S3StoreConfig;
    // Files in two folders, or in a folder no Secret volume is mounted at: no Secret to name.
    expect(s3CredentialsFromPodSpec(podSpec, { ...st, secretAccessKeyFile: '/elsewhere/SK' } as S3StoreConfig)).toBeUndefined();
    expect(s3CredentialsFromPodSpec(podSpec, { ...st, accessKeyIdFile: '/elsewhere/AK', secretAccessKeyFile: '/elsewhere/SK' } as S3StoreConfig)).toBeUndefined();
    const split: V1PodSpec = { containers: [{ name: 'c', env: [
      { name: 'A', valueFrom: { secretKeyRef: { name: 'one', key: 'a' } } },
      { name: 'B', valueFrom: { secretKeyRef: { name: 'two', key: 'b' } } },
    ] }] };
    const { accessKeyIdFile: _f, secretAccessKeyFile: _g, ...rest } = st as S3StoreConfig & { accessKeyIdFile: string; secretAccessKeyFile: string };
    expect(s3CredentialsFromPodSpec(split, { ...rest, accessKeyIdEnv: 'A', secretAccessKeyEnv: 'B' })).toBeUndefined();
    expect(claimFromPodSpec(podSpec, '/var/lib/pgpilot/backup/')).toBe('nfs-backups');
    expect(claimFromPodSpec(podSpec, '/elsewhere')).toBeUndefined();
  });
});

const manifest: BackupManifest = {
  id: '20261125T020000Z',
  cluster: 'prod-db',
  namespace: 'production',
  backupName: 'prod-db-backup-29012345',
  systemIdentifier: '7312345678901234567',
  postgresVersion: '15.10',
  instance: 'prod-db-2',
  fromReplica: true,
  timeline: 3,
  startLsn: '0/5000028',
  stopLsn: '0/5000138',
  startWal: '000000030000000000000005',
  stopWal: '000000030000000000000005',
  startTime: '2026-11-25T02:00:00.123Z',
  stopTime: '2026-11-25T02:00:04.500Z',
  compression: { algorithm: 'gzip', level: 1 },
  dataBytes: 55_154_688,
  storedBytes: 5_347_737,
  dataSha256: 'a'.repeat(64),
  storedSha256: 'b'.repeat(64),
};

describe('status patches', () => {
  const destination = { s3: { bucket: 'backups', credentials: { secretName: 's' } }, path: 'pgpilot/production/prod-db' };

  it('running: a new attempt, with what an earlier attempt left removed', () => {
    expect(
      runningStatus({ startedAt: new Date('2026-11-25T02:00:00Z'), previousAttempts: 1, job: 'prod-db-backup-29012345', destination, instance: 'prod-db-2', fromReplica: true }),
    ).toEqual({
      phase: 'running',
      startedAt: '2026-11-25T02:00:00.000Z',
      attempts: 2,
      job: 'prod-db-backup-29012345',
      destination,
      instance: 'prod-db-2',
      fromReplica: true,
      progressBytes: 0,
      stoppedAt: null,
      durationSeconds: null,
      error: null,
    });
    expect(runningStatus({ startedAt: new Date(0), previousAttempts: undefined, job: undefined, destination, instance: undefined, fromReplica: undefined })).toMatchObject({
      attempts: 1,
      job: null,
      instance: null,
      fromReplica: null,
    });
  });

  it('completed: everything a restore and a person need, from the manifest', () => {
    expect(completedStatus(manifest, 4.6)).toEqual({
      phase: 'completed',
      backupId: '20261125T020000Z',
      instance: 'prod-db-2',
      fromReplica: true,
      stoppedAt: '2026-11-25T02:00:04.500Z',
      durationSeconds: 4.6,
      timeline: 3,
      startLsn: '0/5000028',
      stopLsn: '0/5000138',
      startWal: '000000030000000000000005',
      stopWal: '000000030000000000000005',
      dataBytes: 55_154_688,
      storedBytes: 5_347_737,
      dataSha256: 'a'.repeat(64),
      progressBytes: 55_154_688,
      error: null,
    });
    expect(completedMessage(manifest, 4.6)).toBe('Base backup 20261125T020000Z of prod-db-2: 52.6 MiB in 4.6 s');
  });

  it('failed: the error (bounded), when, how long, how far it got', () => {
    expect(failedStatus('pg_basebackup failed', new Date('2026-11-25T02:01:00Z'), 60, 1024)).toEqual({
      phase: 'failed',
      error: 'pg_basebackup failed',
      stoppedAt: '2026-11-25T02:01:00.000Z',
      durationSeconds: 60,
      progressBytes: 1024,
    });
    expect(failedStatus('x', new Date(0), 0, undefined)).not.toHaveProperty('progressBytes');
    expect(failedStatus('e'.repeat(20_000), new Date(0), 0, undefined).error).toHaveLength(8192);
  });

  it('sizes and durations', () => {
    expect([0, 1023, 1536, 55_154_688, 3 * 2 ** 40].map(formatBytes)).toEqual(['0 B', '1023 B', '1.5 KiB', '52.6 MiB', '3.0 TiB']);
    expect(secondsBetween(1000, 5649)).toBe(4.6);
    expect(secondsBetween(5, 1)).toBe(0);
  });

  it('progress is written at most once per interval', () => {
    const t = new Throttle(5000);
    expect([0, 100, 4999, 5000, 9999, 10_000].map((ms) => t.due(ms))).toEqual([true, false, false, true, false, true]);
  });
});

describe('failure messages', () => {
  const ctx = { instance: pod('prod-db-2', { role: 'replica' }), endpoint: { host: '10.0.0.2', port: 5432 }, fromReplica: true, replicationUser: 'streaming_replica', superuser: 'postgres' };

  it('name the instance and what failed, with a hint for wrong credentials', () => {
    const err = new Error('base backup 20261125T020000Z failed: pg_basebackup failed (exit code 1): pg_basebackup: error: FATAL:  password authentication failed for user "streaming_replica"');
    expect(describeBackupFailure(err, ctx)).toBe(
      'base backup of instance prod-db-2 (replica, 10.0.0.2:5432) failed: base backup 20261125T020000Z failed: pg_basebackup failed (exit code 1): pg_basebackup: error: FATAL:  password authentication failed for user "streaming_replica"' +
        " — the replication credentials mounted in the backup pod do not match role streaming_replica's password: check the cluster's replication Secret",
    );
    expect(describeBackupFailure(new Error('password authentication failed for user "postgres"'), ctx)).toContain("the superuser credentials mounted in the backup pod do not match role postgres's password");
  });

  it('an unreachable server', () => {
    expect(describeBackupFailure(new Error('connect ECONNREFUSED 10.0.0.2:5432'), ctx)).toBe(
      'base backup of instance prod-db-2 (replica, 10.0.0.2:5432) failed: connect ECONNREFUSED 10.0.0.2:5432 — PostgreSQL at 10.0.0.2:5432 is not reachable: is instance prod-db-2 running, and does a NetworkPolicy allow the backup pod in?',
    );
    expect(describeBackupFailure(new Error('Connection terminated due to connection timeout'), { ...ctx, fromReplica: false })).toMatch(/^base backup of instance prod-db-2 \(primary, .* is not reachable/);
  });

  it('other errors as they are', () => {
    expect(describeBackupFailure(new Error('s3://b: put x: bucket b does not exist'), ctx)).toBe('base backup of instance prod-db-2 (replica, 10.0.0.2:5432) failed: s3://b: put x: bucket b does not exist');
  });
});

describe('retention → PostgreSQLBackups to delete', () => {
  const res = (name: string, cluster: string, backupId?: string, path?: string): PostgreSQLBackup => ({
    metadata: { name, uid: `uid-${name}` },
    spec: { cluster: { name: cluster } },
    status: { phase: backupId ? 'completed' : 'failed', ...(backupId ? { backupId } : {}), ...(path ? { destination: { path } } : {}) },
  });
  const PATH = 'pgpilot/production/prod-db';

  it('those of this cluster and archive whose base backup was deleted', () => {
    const all = [
      res('old-1', 'prod-db', '20261120T020000Z', PATH),
      res('old-2', 'prod-db', '20261121T020000Z'),
      res('kept', 'prod-db', '20261124T020000Z', PATH),
      res('failed', 'prod-db'),
      res('other-cluster', 'other-db', '20261120T020000Z', 'pgpilot/production/other-db'),
      res('other-store', 'prod-db', '20261121T020000Z', 'elsewhere/production/prod-db'),
    ];
    const gone = expiredBackupResources(all, 'prod-db', new Set(['20261120T020000Z', '20261121T020000Z']), PATH);
    expect(gone.map((r) => r.metadata.name)).toEqual(['old-1', 'old-2']);
    expect(expiredBackupResources(all, 'prod-db', new Set(), PATH)).toEqual([]);
  });

  it('the event says what went', () => {
    expect(expiredMessage('7d', { backups: 2, incompleteBackups: 0, walFiles: 35 }, 2)).toBe(
      'Retention 7d: removed 2 base backups, 0 incomplete backup folders, 35 WAL files and 2 PostgreSQLBackups',
    );
    expect(expiredMessage('1 backup', { backups: 1, incompleteBackups: 1, walFiles: 1 }, 1)).toBe(
      'Retention 1 backup: removed 1 base backup, 1 incomplete backup folder, 1 WAL file and 1 PostgreSQLBackup',
    );
  });
});

