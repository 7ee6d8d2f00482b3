// Where backups go (spec.backup, the operator-wide default store), recovery sources, and what pods get to reach them (pure).
import { describe, expect, it } from 'vitest';
import type { PostgreSQLBackup } from '../api/backup.js';
import { DEFAULTS, type S3Target } from '../api/cluster.js';
import {
  BACKUP_CREDENTIALS_MOUNT,
  BACKUP_VOLUME_MOUNT,
  RESTORE_CREDENTIALS_MOUNT,
  RESTORE_VOLUME_MOUNT,
  defaultStoreCredentials,
  defaultStoreRefusal,
  resolveBackupTarget,
  resolveRecoverySource,
  restoreAccess,
} from './backup-target.js';
import { names } from '../api/names.js';
import { seedCluster } from '../../test/support/cluster-fixtures.js';
import { CREDS, DESTINATION, envOf, locationOf, pgBackup, S3, s3Cluster, target, withBackup } from '../../test/support/builder-fixtures.js';

/** A default store that the cluster's namespace (production) may use. */
const open = (store: S3Target) => ({ store, namespaces: ['production'], namespaceCredentials: {} });

describe('resolveBackupTarget', () => {
  it('is null while backups are disabled, even with a target or a default store', () => {
    expect(resolveBackupTarget(withBackup({ enabled: false, s3: S3 }), open(S3))).toBeNull();
    expect(resolveBackupTarget(withBackup(undefined), open(S3))).toBeNull(); // DEFAULTS.backupEnabled is false
  });

  it('is null when enabled with neither a target of its own nor a default store', () => {
    expect(resolveBackupTarget(withBackup({ enabled: true }))).toBeNull();
    expect(resolveBackupTarget(seedCluster())).toBeNull();
  });

  it('S3: the location JSON at <default prefix>/<namespace>/<cluster> names credential files of a read-only Secret volume; no credential variables', () => {
    const t = target();
    expect(t.origin).toBe('cluster');
    expect(t.url).toBe('s3://pg-backups/pgpilot/production/prod-db');
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
        accessKeyIdFile: `${BACKUP_CREDENTIALS_MOUNT}/ACCESS_KEY_ID`,
        secretAccessKeyFile: `${BACKUP_CREDENTIALS_MOUNT}/ACCESS_SECRET_KEY`,
      },
    });
    // The only variable is the location: no value and no secretKeyRef that postgres would inherit.
    expect(t.env.map((e) => e.name)).toEqual(['PGPILOT_BACKUP_LOCATION']);
    expect(t.env.some((e) => e.valueFrom)).toBe(false);
    expect(t.volumes).toEqual([
      { name: 'backup-credentials', secret: { secretName: CREDS, defaultMode: 0o440, optional: true, items: [{ key: 'ACCESS_KEY_ID', path: 'ACCESS_KEY_ID' }, { key: 'ACCESS_SECRET_KEY', path: 'ACCESS_SECRET_KEY' }] } },
    ]);
    expect(t.mounts).toEqual([{ name: 'backup-credentials', mountPath: BACKUP_CREDENTIALS_MOUNT, readOnly: true }]);
  });

  it('S3: a custom prefix (slashes trimmed) and custom credential keys are the file names; no credential in the JSON', () => {
    const t = target(s3Cluster({ ...S3, path: '/team-a/pg/', credentials: { secretName: CREDS, accessKeyIdKey: 'id', secretAccessKeyKey: 'secret' } }));
    expect(t.location.path).toBe('team-a/pg/production/prod-db');
    expect(locationOf(t.env).path).toBe('team-a/pg/production/prod-db');
    expect(locationOf(t.env).store).toMatchObject({ accessKeyIdFile: `${BACKUP_CREDENTIALS_MOUNT}/id`, secretAccessKeyFile: `${BACKUP_CREDENTIALS_MOUNT}/secret` });
    expect(t.volumes[0]!.secret!.items).toEqual([{ key: 'id', path: 'id' }, { key: 'secret', path: 'secret' }]);
    const json = envOf(t.env, 'PGPILOT_BACKUP_LOCATION')!.value!;
    expect(json).not.toContain(CREDS);
    expect(json).not.toMatch(/"(credentials|secretName)"/);
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

  it('no target of its own, namespace opted in: the default store, with the credentials copied into <cluster>-backup-credentials', () => {
    const store: S3Target = { bucket: 'company-pg', path: 'fleet', credentials: { secretName: 'operator-s3', accessKeyIdKey: 'AK', secretAccessKeyKey: 'SK' } };
    const t = resolveBackupTarget(withBackup({ enabled: true }), open(store))!;
    expect(t).not.toBeNull();
    expect(t.origin).toBe('default');
    expect(names.backupCredentials('prod-db')).toBe('prod-db-backup-credentials');
    expect(t.s3!.credentials.secretName).toBe('prod-db-backup-credentials');
    expect(t.url).toBe('s3://company-pg/fleet/production/prod-db');
    expect(t.volumes[0]!.secret).toMatchObject({ secretName: 'prod-db-backup-credentials', items: [{ key: 'AK', path: 'AK' }, { key: 'SK', path: 'SK' }] });
    expect(locationOf(t.env).store).toMatchObject({ accessKeyIdFile: `${BACKUP_CREDENTIALS_MOUNT}/AK`, secretAccessKeyFile: `${BACKUP_CREDENTIALS_MOUNT}/SK` });
    expect(envOf(t.env, 'PGPILOT_BACKUP_LOCATION')!.value).not.toContain('operator-s3');
    // The default store object itself is not changed.
    expect(store.credentials.secretName).toBe('operator-s3');
  });

  it('a namespace given scoped credentials may use the default store, at the same <path>/<namespace>/<cluster>', () => {
    const t = resolveBackupTarget(withBackup({ enabled: true }), { store: S3, namespaces: [], namespaceCredentials: { production: 'prod-scoped' } })!;
    expect(t.origin).toBe('default');
    expect(t.location.path).toBe('pgpilot/production/prod-db');
    expect(t.s3!.credentials.secretName).toBe('prod-db-backup-credentials');
  });

  it('a namespace not opted in gets no target from the default store', () => {
    expect(resolveBackupTarget(withBackup({ enabled: true }), { store: S3, namespaces: ['staging'], namespaceCredentials: { dev: 'dev-keys' } })).toBeNull();
    expect(resolveBackupTarget(withBackup({ enabled: true }), { store: S3, namespaces: [], namespaceCredentials: {} })).toBeNull();
  });

  it("the cluster's own target wins over the default store", () => {
    expect(resolveBackupTarget(s3Cluster(), open({ bucket: 'company-pg', credentials: { secretName: 'x' } }))!.origin).toBe('cluster');
  });
});

describe('defaultStoreCredentials and defaultStoreRefusal', () => {
  const d = { store: S3, namespaces: ['team-a', 'team-b'], namespaceCredentials: { 'team-b': 'team-b-keys', 'team-c': 'team-c-keys' } };

  it('listed namespaces get the bucket-wide Secret, namespaces with scoped keys get theirs (over the list), others none', () => {
    expect(defaultStoreCredentials(d, 'team-a')).toEqual({ secretName: CREDS, scoped: false });
    expect(defaultStoreCredentials(d, 'team-b')).toEqual({ secretName: 'team-b-keys', scoped: true });
    expect(defaultStoreCredentials(d, 'team-c')).toEqual({ secretName: 'team-c-keys', scoped: true });
    expect(defaultStoreCredentials(d, 'team-d')).toBeNull();
    // Inherited object keys are not namespaces.
    expect(defaultStoreCredentials(d, 'constructor')).toBeNull();
  });

  it('a cluster relying on the default store in a namespace not opted in is told which namespace and which Helm value', () => {
    const refusal = defaultStoreRefusal(withBackup({ enabled: true }, { namespace: 'team-d' }), d)!;
    expect(refusal).toContain('namespace team-d');
    expect(refusal).toContain('backup.defaultStoreNamespaces');
    expect(refusal).toContain('backup.defaultStoreNamespaceCredentials');
    expect(refusal).toMatch(/WITHOUT backups/);
  });

  it('no refusal when the cluster does not rely on the default store, may use it, or there is none', () => {
    expect(defaultStoreRefusal(withBackup({ enabled: true }, { namespace: 'team-a' }), d)).toBeUndefined();
    expect(defaultStoreRefusal(withBackup({ enabled: true, s3: S3 }, { namespace: 'team-d' }), d)).toBeUndefined();
    expect(defaultStoreRefusal(withBackup({ enabled: true, volume: { claimName: 'nfs' } }, { namespace: 'team-d' }), d)).toBeUndefined();
    expect(defaultStoreRefusal(withBackup({ enabled: false }, { namespace: 'team-d' }), d)).toBeUndefined();
    expect(defaultStoreRefusal(withBackup({ enabled: true }, { namespace: 'team-d' }), undefined)).toBeUndefined();
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
    expect(source.store).toMatchObject({ kind: 's3', bucket: 'pg-backups', accessKeyIdFile: `${RESTORE_CREDENTIALS_MOUNT}/ACCESS_KEY_ID`, secretAccessKeyFile: `${RESTORE_CREDENTIALS_MOUNT}/ACCESS_SECRET_KEY` });
    expect(envOf(a.env, 'PGPILOT_RESTORE_BACKUP_ID')!.value).toBe('20260101T020000Z');
    expect(JSON.parse(envOf(a.env, 'PGPILOT_RESTORE_TARGET')!.value!)).toEqual(target);
    expect(a.env.map((e) => e.name).sort()).toEqual(['PGPILOT_RESTORE_BACKUP_ID', 'PGPILOT_RESTORE_SOURCE', 'PGPILOT_RESTORE_TARGET']);
    expect(a.volumes).toEqual([
      { name: 'restore-credentials', secret: { secretName: CREDS, defaultMode: 0o440, optional: true, items: [{ key: 'ACCESS_KEY_ID', path: 'ACCESS_KEY_ID' }, { key: 'ACCESS_SECRET_KEY', path: 'ACCESS_SECRET_KEY' }] } },
    ]);
    expect(a.mounts).toEqual([{ name: 'restore-credentials', mountPath: RESTORE_CREDENTIALS_MOUNT, readOnly: true }]);
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
