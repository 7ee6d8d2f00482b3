// `pgpilot backup` and `pgpilot purge` settings from flags and the Job's environment.
import { describe, expect, it } from 'vitest';
import { OptionError, readBackupSettings } from './backup.js';
import { EnvError } from '../instance/env.js';

describe('settings of the backup command', () => {
  const location = { store: { kind: 's3', bucket: 'backups', region: 'us-east-1', forcePathStyle: true, checksums: 'WHEN_REQUIRED', accessKeyIdEnv: 'AK', secretAccessKeyEnv: 'SK' }, path: 'pgpilot/production/prod-db' };
  const env = {
    PGPILOT_NAMESPACE: 'production',
    PGPILOT_JOB_NAME: 'prod-db-backup-29012345',
    PGPILOT_SECRETS_DIR: '/etc/pgpilot/secrets',
    PGPILOT_BACKUP_COMPRESSION_LEVEL: '6',
    PGPILOT_BACKUP_RETENTION: '10 backups',
    PGPILOT_BACKUP_LOCATION: JSON.stringify(location),
    AK: 'id',
    SK: 'secret',
  };

  it('reads a scheduled run\'s environment', () => {
    expect(readBackupSettings({ cluster: 'prod-db' }, env)).toEqual({
      namespace: 'production',
      cluster: 'prod-db',
      backupName: undefined,
      job: 'prod-db-backup-29012345',
      secretsDir: '/etc/pgpilot/secrets',
      level: 6,
      retention: { count: 10 },
      location,
      pgBin: undefined,
      logLevel: 'info',
    });
  });

  it('retention as days, a duration or a count; level and retention have defaults', () => {
    const { PGPILOT_BACKUP_COMPRESSION_LEVEL: _l, PGPILOT_BACKUP_RETENTION: _r, ...rest } = env;
    expect(readBackupSettings({ cluster: 'prod-db' }, rest)).toMatchObject({ level: 1, retention: { days: 30 } });
    expect(readBackupSettings({ cluster: 'prod-db' }, { ...env, PGPILOT_BACKUP_RETENTION: '7' }).retention).toEqual({ days: 7 });
    expect(readBackupSettings({ cluster: 'prod-db' }, { ...env, PGPILOT_BACKUP_RETENTION: '7d' }).retention).toEqual({ days: 7 });
  });

  it('an on-demand run needs no Job name', () => {
    const { PGPILOT_JOB_NAME: _j, ...rest } = env;
    expect(readBackupSettings({ cluster: 'prod-db', backup: 'manual-1' }, rest)).toMatchObject({ backupName: 'manual-1', job: undefined });
  });

  it.each([
    [{ PGPILOT_NAMESPACE: '' }, /^environment variable PGPILOT_NAMESPACE is required$/],
    [{ PGPILOT_JOB_NAME: undefined }, /^environment variable PGPILOT_JOB_NAME is required without --backup/],
    [{ PGPILOT_SECRETS_DIR: 'relative' }, /^environment variable PGPILOT_SECRETS_DIR must be an absolute path/],
    [{ PGPILOT_BACKUP_COMPRESSION_LEVEL: '0' }, /^environment variable PGPILOT_BACKUP_COMPRESSION_LEVEL must be a gzip level from 1 to 9 \(got "0"\)/],
    [{ PGPILOT_BACKUP_RETENTION: 'forever' }, /^environment variable PGPILOT_BACKUP_RETENTION is not valid: invalid backup retention "forever"/],
    [{ PGPILOT_BACKUP_LOCATION: undefined }, /^environment variable PGPILOT_BACKUP_LOCATION is required$/],
    [{ PGPILOT_BACKUP_LOCATION: '{' }, /^environment variable PGPILOT_BACKUP_LOCATION is not valid: not valid JSON/],
    [{ PGPILOT_BACKUP_LOCATION: JSON.stringify({ ...location, path: '/abs' }) }, /^environment variable PGPILOT_BACKUP_LOCATION is not valid: field path must be a relative key prefix/],
    [{ SK: undefined }, /^environment variable SK is not set: PGPILOT_BACKUP_LOCATION names it for the S3 credentials of bucket backups$/],
    [{ PGPILOT_LOG_LEVEL: 'loud' }, /^environment variable PGPILOT_LOG_LEVEL must be one of/],
  ])('refuses %j, naming the variable', (change, message) => {
    const err = (() => {
      try {
        readBackupSettings({ cluster: 'prod-db' }, { ...env, ...change });
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(EnvError);
    expect((err as Error).message).toMatch(message);
  });

  it('refuses bad options, naming them', () => {
    expect(() => readBackupSettings({ cluster: 'Prod_DB' }, env)).toThrow(OptionError);
    expect(() => readBackupSettings({ cluster: 'Prod_DB' }, env)).toThrow(/^option --cluster must be a PostgreSQLCluster name \(got "Prod_DB"\)$/);
    expect(() => readBackupSettings({ cluster: 'prod-db', backup: 'A B' }, env)).toThrow(/^option --backup must be a PostgreSQLBackup name/);
  });
});
