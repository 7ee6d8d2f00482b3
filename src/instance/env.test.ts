// Settings of the instance agent from the environment (env.ts): the builder's variables with their
// defaults, backups and restores, and errors that name the variable.
import { describe, expect, it } from 'vitest';
import type { ArchiveLocation } from '../backup/store-config.js';
import { EnvError, loadSettings, parseRecoveryTarget, sameArchive } from './env.js';

const env = {
  PGPILOT_CLUSTER: 'prod-db',
  PGPILOT_INSTANCE: 'prod-db-1',
  PGPILOT_NAMESPACE: 'production',
  PGPILOT_POD_IP: '10.0.0.7',
  PGPILOT_CONFIG_DIR: '/etc/pgpilot/config',
  PGPILOT_SECRETS_DIR: '/etc/pgpilot/secrets',
  PGDATA: '/var/lib/postgresql/data/pgdata',
};

const s3 = (bucket: string, path: string, prefix: string) =>
  JSON.stringify({
    store: { kind: 's3', endpoint: 'https://minio.example:9000', bucket, region: 'us-east-1', forcePathStyle: true, checksums: 'WHEN_REQUIRED', accessKeyIdEnv: `${prefix}ACCESS_KEY_ID`, secretAccessKeyEnv: `${prefix}SECRET_ACCESS_KEY` },
    path,
  });

const backupEnv = {
  PGPILOT_BACKUP_LOCATION: s3('backups', 'pgpilot/production/prod-db', 'PGPILOT_BACKUP_S3_'),
  PGPILOT_BACKUP_S3_ACCESS_KEY_ID: 'AK',
  PGPILOT_BACKUP_S3_SECRET_ACCESS_KEY: 'SK',
};
const restoreEnv = {
  PGPILOT_RESTORE_SOURCE: s3('backups', 'pgpilot/production/old-db', 'PGPILOT_RESTORE_S3_'),
  PGPILOT_RESTORE_S3_ACCESS_KEY_ID: 'AK2',
  PGPILOT_RESTORE_S3_SECRET_ACCESS_KEY: 'SK2',
};

function envError(vars: Record<string, string | undefined>): EnvError {
  try {
    loadSettings(vars);
  } catch (err) {
    if (err instanceof EnvError) return err;
    throw err;
  }
  throw new Error('loadSettings accepted the environment');
}

/** loadSettings refuses the base env with `override` in an EnvError that names `variable`. */
function expectRefused(override: Record<string, string | undefined>, variable: string, problem: RegExp): void {
  const err = envError({ ...env, ...override });
  expect(err).toBeInstanceOf(EnvError);
  expect(err.variable).toBe(variable);
  expect(err.message).toMatch(problem);
  expect(err.message).toContain(variable);
}

describe('settings from the environment', () => {
  it('reads the builder env with defaults', () => {
    const s = loadSettings(env);
    expect(s).toMatchObject({ instance: 'prod-db-1', podIp: '10.0.0.7', agentPort: 8000, pgPort: 5432, walDir: undefined, pgBin: undefined, stopTimeoutSeconds: 30, logLevel: 'info' });
    expect(s).toMatchObject({ cluster: 'prod-db', namespace: 'production', configDir: '/etc/pgpilot/config', secretsDir: '/etc/pgpilot/secrets', pgdata: '/var/lib/postgresql/data/pgdata' });
    expect(s.initdb).toEqual({ database: 'app', owner: 'app', encoding: 'UTF8', locale: 'C.UTF-8', dataChecksums: true });
    expect(s).toMatchObject({ metricsEnabled: true, metricsPort: 9187 });
  });

  it('reads whether to serve /metrics, and on which port', () => {
    expect(loadSettings({ ...env, PGPILOT_METRICS_ENABLED: 'false' }).metricsEnabled).toBe(false);
    expect(loadSettings({ ...env, PGPILOT_METRICS_ENABLED: 'true', PGPILOT_METRICS_PORT: '9999' })).toMatchObject({ metricsEnabled: true, metricsPort: 9999 });
  });

  it('reads the files of the exporter\'s own queries (none by default), refusing relative paths', () => {
    expect(loadSettings(env).customQueries).toEqual([]);
    expect(loadSettings({ ...env, PGPILOT_CUSTOM_QUERIES: '/q/a/queries.yaml, /q/b/x.yaml,,/q/a/queries.yaml' }).customQueries).toEqual(['/q/a/queries.yaml', '/q/b/x.yaml']);
    expect(() => loadSettings({ ...env, PGPILOT_CUSTOM_QUERIES: 'q/a.yaml' })).toThrow(/PGPILOT_CUSTOM_QUERIES must be an absolute path/);
  });

  it('reads the optional ones', () => {
    const s = loadSettings({ ...env, PGPILOT_WAL_DIR: '/var/lib/postgresql/wal/pg_wal', PGPILOT_AGENT_PORT: '9000', PGPILOT_PG_PORT: '5433', PGPILOT_INITDB_DATA_CHECKSUMS: 'false', PGPILOT_STOP_TIMEOUT_SECONDS: '60' });
    expect(s).toMatchObject({ walDir: '/var/lib/postgresql/wal/pg_wal', agentPort: 9000, pgPort: 5433, stopTimeoutSeconds: 60 });
    expect(s.initdb.dataChecksums).toBe(false);
  });

  it.each([
    [{ PGPILOT_POD_IP: undefined }, 'PGPILOT_POD_IP', /is required/],
    [{ PGPILOT_POD_IP: 'pod-1' }, 'PGPILOT_POD_IP', /IP address/],
    [{ PGDATA: 'relative/dir' }, 'PGDATA', /absolute path/],
    [{ PGPILOT_AGENT_PORT: '70000' }, 'PGPILOT_AGENT_PORT', /port number/],
    [{ PGPILOT_INITDB_DATA_CHECKSUMS: 'maybe' }, 'PGPILOT_INITDB_DATA_CHECKSUMS', /true or false/],
    [{ PGPILOT_INITDB_OWNER: 'x; DROP' }, 'PGPILOT_INITDB_OWNER', /must match/],
    [{ PGPILOT_STOP_TIMEOUT_SECONDS: '-1' }, 'PGPILOT_STOP_TIMEOUT_SECONDS', /positive/],
    [{ PGPILOT_METRICS_ENABLED: 'sometimes' }, 'PGPILOT_METRICS_ENABLED', /true or false/],
    [{ PGPILOT_METRICS_PORT: '0' }, 'PGPILOT_METRICS_PORT', /port number/],
  ])('names the variable in errors (%o)', expectRefused);
});

describe('backup and restore settings from the environment', () => {
  it('has neither by default', () => {
    const s = loadSettings(env);
    expect(s.backup).toBeUndefined();
    expect(s.restore).toBeUndefined();
  });

  it('reads the archive location and the compression level', () => {
    const s = loadSettings({ ...env, ...backupEnv });
    expect(s.backup?.location.path).toBe('pgpilot/production/prod-db');
    expect(s.backup?.location.store).toMatchObject({ kind: 's3', bucket: 'backups', accessKeyIdEnv: 'PGPILOT_BACKUP_S3_ACCESS_KEY_ID' });
    expect(s.backup?.compressionLevel).toBe(1);
    expect(loadSettings({ ...env, ...backupEnv, PGPILOT_BACKUP_COMPRESSION_LEVEL: '6' }).backup?.compressionLevel).toBe(6);
    const volume = loadSettings({ ...env, PGPILOT_BACKUP_LOCATION: JSON.stringify({ store: { kind: 'volume', path: '/var/lib/pgpilot/backup' }, path: 'pgpilot/ns/db' }) });
    expect(volume.backup?.location).toEqual({ store: { kind: 'volume', path: '/var/lib/pgpilot/backup' }, path: 'pgpilot/ns/db' });
  });

  it('reads the restore source, backup id and target', () => {
    const s = loadSettings({ ...env, ...backupEnv, ...restoreEnv, PGPILOT_RESTORE_BACKUP_ID: '20261125T020000Z', PGPILOT_RESTORE_TARGET: '{"time":"2026-11-25T03:00:00Z","inclusive":false}' });
    expect(s.restore).toMatchObject({ backupId: '20261125T020000Z', target: { time: '2026-11-25T03:00:00Z', inclusive: false } });
    expect(s.restore?.source.path).toBe('pgpilot/production/old-db');
    expect(loadSettings({ ...env, ...restoreEnv }).restore).toMatchObject({ backupId: undefined, target: {} });
  });

  it.each([
    [{ PGPILOT_BACKUP_LOCATION: '{not json' }, 'PGPILOT_BACKUP_LOCATION', /not a valid archive location: not valid JSON/],
    [{ PGPILOT_BACKUP_LOCATION: s3('Bad_Bucket', 'p', 'X_') }, 'PGPILOT_BACKUP_LOCATION', /field store\.bucket/],
    [{ PGPILOT_BACKUP_LOCATION: JSON.stringify({ store: { kind: 'volume', path: '/b' }, path: '/abs' }) }, 'PGPILOT_BACKUP_LOCATION', /field path/],
    [{ ...backupEnv, PGPILOT_BACKUP_S3_SECRET_ACCESS_KEY: undefined }, 'PGPILOT_BACKUP_S3_SECRET_ACCESS_KEY', /PGPILOT_BACKUP_LOCATION names it in store\.secretAccessKeyEnv/],
    [{ ...backupEnv, PGPILOT_BACKUP_COMPRESSION_LEVEL: '0' }, 'PGPILOT_BACKUP_COMPRESSION_LEVEL', /1-9/],
    [{ ...backupEnv, PGPILOT_BACKUP_COMPRESSION_LEVEL: '10' }, 'PGPILOT_BACKUP_COMPRESSION_LEVEL', /1-9/],
    [{ ...restoreEnv, PGPILOT_RESTORE_S3_ACCESS_KEY_ID: '' }, 'PGPILOT_RESTORE_S3_ACCESS_KEY_ID', /PGPILOT_RESTORE_SOURCE names it/],
    [{ ...restoreEnv, PGPILOT_RESTORE_BACKUP_ID: 'latest' }, 'PGPILOT_RESTORE_BACKUP_ID', /backup id/],
    [{ PGPILOT_RESTORE_TARGET: '{"immediate":true}' }, 'PGPILOT_RESTORE_TARGET', /PGPILOT_RESTORE_SOURCE is not/],
    [{ PGPILOT_RESTORE_BACKUP_ID: '20261125T020000Z' }, 'PGPILOT_RESTORE_BACKUP_ID', /nothing to restore from/],
    [{ ...restoreEnv, PGPILOT_RESTORE_TARGET: '{"time":"yesterday"}' }, 'PGPILOT_RESTORE_TARGET', /not a valid recovery target: recovery target time "yesterday"/],
    [
      { ...backupEnv, ...restoreEnv, PGPILOT_RESTORE_SOURCE: backupEnv.PGPILOT_BACKUP_LOCATION, PGPILOT_RESTORE_S3_ACCESS_KEY_ID: undefined, PGPILOT_RESTORE_S3_SECRET_ACCESS_KEY: undefined },
      'PGPILOT_BACKUP_LOCATION',
      /same archive as PGPILOT_RESTORE_SOURCE.*never into its source/,
    ],
  ])('names the variable in errors (%o)', expectRefused);

  it('parses recovery targets strictly', () => {
    expect(parseRecoveryTarget(undefined)).toEqual({});
    expect(parseRecoveryTarget('{"lsn":"0/3000060"}')).toEqual({ lsn: '0/3000060' });
    expect(parseRecoveryTarget('{"name":"before-upgrade","time":null}')).toEqual({ name: 'before-upgrade' });
    expect(parseRecoveryTarget('{"immediate":true}')).toEqual({ immediate: true });
    expect(() => parseRecoveryTarget('[]')).toThrow(/JSON object/);
    expect(() => parseRecoveryTarget('{"when":"now"}')).toThrow(/unknown fields when/);
    expect(() => parseRecoveryTarget('{"xid":42}')).toThrow(/field xid must be a string/);
    expect(() => parseRecoveryTarget('{"inclusive":"yes"}')).toThrow(/field inclusive must be true or false/);
    expect(() => parseRecoveryTarget('{"time":"2026-11-25T03:00:00Z","lsn":"0/1"}')).toThrow(/one kind/);
  });

  it('tells apart archives by store and path', () => {
    const a: ArchiveLocation = JSON.parse(s3('backups', 'p/a', 'A_')) as ArchiveLocation;
    expect(sameArchive(a, JSON.parse(s3('backups', 'p/a', 'B_')) as ArchiveLocation)).toBe(true); // credentials do not matter
    expect(sameArchive(a, JSON.parse(s3('backups', 'p/b', 'A_')) as ArchiveLocation)).toBe(false);
    expect(sameArchive(a, JSON.parse(s3('other', 'p/a', 'A_')) as ArchiveLocation)).toBe(false);
    expect(sameArchive({ store: { kind: 'volume', path: '/b/' }, path: 'x' }, { store: { kind: 'volume', path: '/b' }, path: 'x' })).toBe(true);
    expect(sameArchive({ store: { kind: 'volume', path: '/b' }, path: 'x' }, a)).toBe(false);
  });
});
