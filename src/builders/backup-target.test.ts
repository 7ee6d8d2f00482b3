// Where backups go (spec.backup, the operator-wide default store), recovery sources, and what pods get to reach them (pure).
import { describe, expect, it } from 'vitest';
import type { PostgreSQLBackup } from '../api/backup.js';
import { DEFAULTS, type S3Target } from '../api/cluster.js';
import { BACKUP_VOLUME_MOUNT, RESTORE_VOLUME_MOUNT, resolveBackupTarget, resolveRecoverySource, restoreAccess } from './backup-target.js';
import { names } from '../api/names.js';
import { seedCluster } from '../../test/support/cluster-fixtures.js';
import { CREDS, DESTINATION, envOf, locationOf, pgBackup, S3, s3Cluster, target, withBackup } from '../../test/support/builder-fixtures.js';

describe('resolveBackupTarget', () => {
  it('is null while backups are disabled, even with a target or a default store', () => {
    expect(resolveBackupTarget(withBackup({ enabled: false, s3: S3 }), S3)).toBeNull();
    expect(resolveBackupTarget(withBackup(undefined), S3)).toBeNull(); // DEFAULTS.backupEnabled is false
  });

  it('is null when enabled with neither a target of its own nor a default store', () => {
    expect(resolveBackupTarget(withBackup({ enabled: true }))).toBeNull();
    expect(resolveBackupTarget(seedCluster())).toBeNull();
  });

  it('S3: the location JSON at <default prefix>/<namespace>/<cluster>, the credentials as secretKeyRef env with the default keys', () => {
    const t = target();
    expect(t.origin).toBe('cluster');
    expect(t.url).toBe('s3://pg-backups/pgpilot/production/prod-db');
    expect(t.volumes).toEqual([]);
    expect(t.mounts).toEqual([]);
    const location = locationOf(t.env);
    expect(location).toEqual(t.location);
    expect(location).toEqual({
      path: 'pgpilot/production/prod-db',
      store: {
        kind: 's3',
        endpoint: 'https://minio.storage:9000',
        bucket: 'pg-backups',
        region: DEFAULTS.region,
        forcePathStyle: true,
        checksums: DEFAULTS.checksums,
        accessKeyIdEnv: 'PGPILOT_BACKUP_S3_ACCESS_KEY_ID',
        secretAccessKeyEnv: 'PGPILOT_BACKUP_S3_SECRET_ACCESS_KEY',
      },
    });
    expect(envOf(t.env, 'PGPILOT_BACKUP_S3_ACCESS_KEY_ID')).toEqual({ name: 'PGPILOT_BACKUP_S3_ACCESS_KEY_ID', valueFrom: { secretKeyRef: { name: CREDS, key: 'ACCESS_KEY_ID' } } });
    expect(envOf(t.env, 'PGPILOT_BACKUP_S3_SECRET_ACCESS_KEY')).toEqual({ name: 'PGPILOT_BACKUP_S3_SECRET_ACCESS_KEY', valueFrom: { secretKeyRef: { name: CREDS, key: 'ACCESS_SECRET_KEY' } } });
    // Both credential variables are references, never literal values.
    for (const e of t.env.filter((x) => x.name !== 'PGPILOT_BACKUP_LOCATION')) expect(e.value).toBeUndefined();
  });

  it('S3: a custom prefix (slashes trimmed) and custom credential keys; no credential in the JSON', () => {
    const t = target(s3Cluster({ ...S3, path: '/team-a/pg/', credentials: { secretName: CREDS, accessKeyIdKey: 'id', secretAccessKeyKey: 'secret' } }));
    expect(t.location.path).toBe('team-a/pg/production/prod-db');
    expect(locationOf(t.env).path).toBe('team-a/pg/production/prod-db');
    expect(envOf(t.env, 'PGPILOT_BACKUP_S3_ACCESS_KEY_ID')!.valueFrom!.secretKeyRef).toEqual({ name: CREDS, key: 'id' });
    expect(envOf(t.env, 'PGPILOT_BACKUP_S3_SECRET_ACCESS_KEY')!.valueFrom!.secretKeyRef).toEqual({ name: CREDS, key: 'secret' });
    const json = envOf(t.env, 'PGPILOT_BACKUP_LOCATION')!.value!;
    expect(json).not.toContain(CREDS);
    expect(json).not.toMatch(/"(id|secret|credentials|secretName)"/);
  });

  it('a volume target: a PVC volume, its mount, and a volume store at the mount', () => {
    const t = target(withBackup({ enabled: true, volume: { claimName: 'nfs-backups', path: 'archive' } }));
    expect(t.origin).toBe('cluster');
    expect(t.url).toBe('pvc://nfs-backups/archive/production/prod-db');
    expect(t.volumes).toEqual([{ name: 'backup-target', persistentVolumeClaim: { claimName: 'nfs-backups' } }]);
    expect(t.mounts).toEqual([{ name: 'backup-target', mountPath: BACKUP_VOLUME_MOUNT }]);
    expect(locationOf(t.env)).toEqual({ store: { kind: 'volume', path: BACKUP_VOLUME_MOUNT }, path: 'archive/production/prod-db' });
    expect(t.env.map((e) => e.name)).toEqual(['PGPILOT_BACKUP_LOCATION']);
  });

  it('a volume target without a path uses the default prefix', () => {
    expect(target(withBackup({ enabled: true, volume: { claimName: 'nfs-backups' } })).location.path).toBe('pgpilot/production/prod-db');
  });

  it('no target of its own: the default store, with the credentials copied into <cluster>-backup-credentials', () => {
    const store: S3Target = { bucket: 'company-pg', path: 'fleet', credentials: { secretName: 'operator-s3', accessKeyIdKey: 'AK', secretAccessKeyKey: 'SK' } };
    const t = resolveBackupTarget(withBackup({ enabled: true }), store)!;
    expect(t).not.toBeNull();
    expect(t.origin).toBe('default');
    expect(names.backupCredentials('prod-db')).toBe('prod-db-backup-credentials');
    expect(t.s3!.credentials.secretName).toBe('prod-db-backup-credentials');
    expect(t.url).toBe('s3://company-pg/fleet/production/prod-db');
    expect(envOf(t.env, 'PGPILOT_BACKUP_S3_ACCESS_KEY_ID')!.valueFrom!.secretKeyRef).toEqual({ name: 'prod-db-backup-credentials', key: 'AK' });
    expect(envOf(t.env, 'PGPILOT_BACKUP_S3_SECRET_ACCESS_KEY')!.valueFrom!.secretKeyRef).toEqual({ name: 'prod-db-backup-credentials', key: 'SK' });
    expect(envOf(t.env, 'PGPILOT_BACKUP_LOCATION')!.value).not.toContain('operator-s3');
    // The default store object itself is not changed.
    expect(store.credentials.secretName).toBe('operator-s3');
  });

  it("the cluster's own target wins over the default store", () => {
    expect(resolveBackupTarget(s3Cluster(), { bucket: 'company-pg', credentials: { secretName: 'x' } })!.origin).toBe('cluster');
  });
});

describe('resolveRecoverySource', () => {
  const fromBackup = (name = 'nightly') => seedCluster({ bootstrap: { recovery: { backup: { name } } } });

  it('is null without spec.bootstrap.recovery', () => {
    expect(resolveRecoverySource(seedCluster(), undefined)).toBeNull();
  });

  it('takes a source as given, with its backupId', () => {
    const source = { s3: S3, path: 'pgpilot/production/old-db' };
    expect(resolveRecoverySource(seedCluster({ bootstrap: { recovery: { source } } }), undefined)).toEqual({ source });
    expect(resolveRecoverySource(seedCluster({ bootstrap: { recovery: { source, backupId: '20261125T020000Z' } } }), undefined)).toEqual({ source: { ...source, backupId: '20261125T020000Z' } });
  });

  it('a missing PostgreSQLBackup is a problem naming it and the namespace', () => {
    const r = resolveRecoverySource(fromBackup('nightly'), undefined);
    expect(r).toHaveProperty('problem');
    const problem = (r as { problem: string }).problem;
    expect(problem).toContain('"nightly"');
    expect(problem).toContain('production');
    expect(problem).toMatch(/does not exist/);
  });

  it.each<[string, PostgreSQLBackup['status']]>([
    ['pending', undefined],
    ['running', { phase: 'running' }],
    ['failed', { phase: 'failed', error: 'disk full' }],
  ])('a backup that is %s is a problem', (phase, status) => {
    const r = resolveRecoverySource(fromBackup(), pgBackup('nightly', '2026-01-01T00:00:00Z', status));
    const problem = (r as { problem: string }).problem;
    expect(problem).toContain('"nightly"');
    expect(problem).toContain(phase);
    expect(problem).toMatch(/only a completed backup can be restored/);
    if (status?.error) expect(problem).toContain('disk full');
  });

  it('a completed backup: its destination and backup id', () => {
    const b = pgBackup('nightly', '2026-01-01T00:00:00Z', { phase: 'completed', backupId: '20260101T020000Z', destination: DESTINATION, stoppedAt: '2026-01-01T02:05:00Z' });
    expect(resolveRecoverySource(fromBackup(), b)).toEqual({ source: { ...DESTINATION, backupId: '20260101T020000Z' } });
  });
});

describe('restoreAccess', () => {
  it('S3 source: PGPILOT_RESTORE_SOURCE, restore credentials, backup id and target JSON', () => {
    const target = { time: '2026-01-01T03:00:00Z', inclusive: false };
    const cluster = seedCluster({ bootstrap: { recovery: { source: DESTINATION, target } } });
    const a = restoreAccess(cluster, { ...DESTINATION, backupId: '20260101T020000Z' });
    const source = locationOf(a.env, 'PGPILOT_RESTORE_SOURCE');
    expect(source.path).toBe('pgpilot/production/old-db');
    expect(source.store).toMatchObject({ kind: 's3', bucket: 'pg-backups', accessKeyIdEnv: 'PGPILOT_RESTORE_S3_ACCESS_KEY_ID', secretAccessKeyEnv: 'PGPILOT_RESTORE_S3_SECRET_ACCESS_KEY' });
    expect(envOf(a.env, 'PGPILOT_RESTORE_S3_ACCESS_KEY_ID')!.valueFrom!.secretKeyRef).toEqual({ name: CREDS, key: 'ACCESS_KEY_ID' });
    expect(envOf(a.env, 'PGPILOT_RESTORE_BACKUP_ID')!.value).toBe('20260101T020000Z');
    expect(JSON.parse(envOf(a.env, 'PGPILOT_RESTORE_TARGET')!.value!)).toEqual(target);
    expect(a.volumes).toEqual([]);
    expect(a.mounts).toEqual([]);
  });

  it('without backup id or target those variables are absent; a volume source is mounted', () => {
    const source = { volume: { claimName: 'old-nfs' }, path: 'pgpilot/production/old-db' };
    const a = restoreAccess(seedCluster({ bootstrap: { recovery: { source } } }), source);
    expect(a.env.map((e) => e.name)).toEqual(['PGPILOT_RESTORE_SOURCE']);
    expect(locationOf(a.env, 'PGPILOT_RESTORE_SOURCE')).toEqual({ store: { kind: 'volume', path: RESTORE_VOLUME_MOUNT }, path: 'pgpilot/production/old-db' });
    expect(a.volumes).toEqual([{ name: 'restore-source', persistentVolumeClaim: { claimName: 'old-nfs' } }]);
    expect(a.mounts).toEqual([{ name: 'restore-source', mountPath: RESTORE_VOLUME_MOUNT }]);
  });
});
