// The instance agent's backup pieces that need no server: archive and restore settings from the
// environment, paths and command lines of archiving and restore, status shaping, and the messages
// of a failed recovery.
import { describe, expect, it } from 'vitest';
import { archiveCommand, restoreCommand } from '../postgres/handoff.js';
import type { ArchiveLocation } from '../backup/store-config.js';
import { archivingStatus, usedPercent } from './archiving.js';
import { EnvError, loadSettings, parseRecoveryTarget, sameArchive } from './env.js';
import { archiveMarkerDir, layoutOf, postgresArgs, RESTORE_HBA, restoreHbaFile, restoreSpoolDir } from './layout.js';
import { describeTarget, lastTransactionTime, recoveryFailureMessage, restoredSegment } from './restore-bootstrap.js';

const base = {
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

function envError(env: Record<string, string | undefined>): EnvError {
  try {
    loadSettings(env);
  } catch (err) {
    if (err instanceof EnvError) return err;
    throw err;
  }
  throw new Error('loadSettings accepted the environment');
}

describe('backup and restore settings from the environment', () => {
  it('has neither by default', () => {
    const s = loadSettings(base);
    expect(s.backup).toBeUndefined();
    expect(s.restore).toBeUndefined();
  });

  it('reads the archive location and the compression level', () => {
    const s = loadSettings({ ...base, ...backupEnv });
    expect(s.backup?.location.path).toBe('pgpilot/production/prod-db');
    expect(s.backup?.location.store).toMatchObject({ kind: 's3', bucket: 'backups', accessKeyIdEnv: 'PGPILOT_BACKUP_S3_ACCESS_KEY_ID' });
    expect(s.backup?.compressionLevel).toBe(1);
    expect(loadSettings({ ...base, ...backupEnv, PGPILOT_BACKUP_COMPRESSION_LEVEL: '6' }).backup?.compressionLevel).toBe(6);
    const volume = loadSettings({ ...base, PGPILOT_BACKUP_LOCATION: JSON.stringify({ store: { kind: 'volume', path: '/var/lib/pgpilot/backup' }, path: 'pgpilot/ns/db' }) });
    expect(volume.backup?.location).toEqual({ store: { kind: 'volume', path: '/var/lib/pgpilot/backup' }, path: 'pgpilot/ns/db' });
  });

  it('reads the restore source, backup id and target', () => {
    const s = loadSettings({ ...base, ...backupEnv, ...restoreEnv, PGPILOT_RESTORE_BACKUP_ID: '20261125T020000Z', PGPILOT_RESTORE_TARGET: '{"time":"2026-11-25T03:00:00Z","inclusive":false}' });
    expect(s.restore).toMatchObject({ backupId: '20261125T020000Z', target: { time: '2026-11-25T03:00:00Z', inclusive: false } });
    expect(s.restore?.source.path).toBe('pgpilot/production/old-db');
    expect(loadSettings({ ...base, ...restoreEnv }).restore).toMatchObject({ backupId: undefined, target: {} });
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
  ])('names the variable in errors (%o)', (override, variable, problem) => {
    const err = envError({ ...base, ...override });
    expect(err.variable).toBe(variable);
    expect(err.message).toMatch(problem);
    expect(err.message).toContain(variable);
  });

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

describe('paths and command lines of archiving and restore', () => {
  const s = loadSettings(base);
  const layout = layoutOf(s);

  it('puts the archive markers where the operator\'s archive_command waits for them', () => {
    expect(archiveMarkerDir(layout)).toBe('/var/lib/postgresql/data/.pgpilot/archived');
    expect(archiveCommand(archiveMarkerDir(layout))).toContain('m=/var/lib/postgresql/data/.pgpilot/archived/$1');
  });

  it('keeps the restore spool and the temporary hba next to PGDATA, usable by restore_command', () => {
    expect(restoreSpoolDir(layout)).toBe('/var/lib/postgresql/data/.pgpilot/restore-spool');
    expect(() => restoreCommand(restoreSpoolDir(layout))).not.toThrow();
    expect(restoreHbaFile(layout)).toBe('/var/lib/postgresql/data/.pgpilot/restore-hba.conf');
    // Unix socket only: no host line lets a client in over TCP during the restore.
    expect(RESTORE_HBA.split('\n').filter((l) => l && !l.startsWith('#'))).toEqual(['local all all trust']);
    expect(layout.walPath).toBe('/var/lib/postgresql/data/pgdata/pg_wal');
    expect(layoutOf({ pgdata: '/d/pgdata', walDir: '/w/pg_wal' }).walPath).toBe('/w/pg_wal');
  });

  it('overrides only the hba file during a restore', () => {
    const normal = postgresArgs(s, '/var/run/postgresql');
    const restoring = postgresArgs(s, '/var/run/postgresql', { hbaFile: restoreHbaFile(layout) });
    expect(restoring).toEqual(normal.map((a) => (a.startsWith('hba_file=') ? `hba_file=${restoreHbaFile(layout)}` : a)));
    expect(restoring).toContain('listen_addresses=10.0.0.7');
  });
});

describe('status of archiving and pg_wal', () => {
  it('reports the archiver fields the API promises', () => {
    const st = archivingStatus({
      lastArchivedWal: '000000010000000000000003',
      lastArchivedTime: '2026-01-01T00:00:00.000Z',
      lastFailedWal: null,
      lastFailureTime: null,
      lastFailure: null,
      backlogSegments: 2,
      inFlight: 1,
      archivedCount: 7,
      bytesIn: 1,
      bytesStored: 1,
    });
    expect(Object.keys(st).sort()).toEqual(['archivedCount', 'backlogSegments', 'inFlight', 'lastArchivedTime', 'lastArchivedWal', 'lastFailedWal', 'lastFailure', 'lastFailureTime']);
    expect(st).toMatchObject({ lastArchivedWal: '000000010000000000000003', backlogSegments: 2, inFlight: 1, archivedCount: 7 });
  });

  it('computes how full a volume is as df does (reserved blocks count as unavailable)', () => {
    expect(usedPercent({ blocks: 1000, bfree: 500, bavail: 500 })).toBe(50);
    // 100 blocks reserved for root: 400 used of 400 + 500 available to users.
    expect(usedPercent({ blocks: 1000, bfree: 600, bavail: 500 })).toBe(44.4);
    expect(usedPercent({ blocks: 1000, bfree: 50, bavail: 0 })).toBe(100);
    expect(usedPercent({ blocks: 0, bfree: 0, bavail: 0 })).toBeNull();
  });
});

describe('restore: messages', () => {
  const window = { first: '2026-11-25T02:00:05.000Z', last: '2026-11-25T02:10:00.000Z', firstLsn: '0/5000100', lastLsn: '0/9000000' };
  const base = { target: { time: '2026-11-25T02:09:00Z' }, window, location: 's3://backups/pgpilot/ns/old', fetcherError: null, serverLines: [] as string[], lastExit: 'exit code 1' };

  it('names targets', () => {
    expect(describeTarget({})).toBe('the end of the archive');
    expect(describeTarget({ time: 't' })).toBe('time t');
    expect(describeTarget({ lsn: '0/1' })).toBe('LSN 0/1');
    expect(describeTarget({ xid: '7' })).toBe('transaction 7');
    expect(describeTarget({ name: 'x' })).toBe('restore point "x"');
    expect(describeTarget({ immediate: true })).toMatch(/^immediate/);
  });

  it('says where the archive ends when the target was not reached', () => {
    const m = recoveryFailureMessage({
      ...base,
      serverLines: [
        '2026-11-25 02:11:00.000 UTC [42] LOG:  last completed transaction was at log time 2026-11-25 02:08:00+00',
        '2026-11-25 02:11:00.000 UTC [42] FATAL:  recovery ended before configured recovery target was reached',
        '2026-11-25 02:11:00.000 UTC [41] LOG:  startup process (PID 42) exited with exit code 1',
      ],
    });
    expect(m).toBe(
      'recovery ended before the target time 2026-11-25T02:09:00Z was reached: the last transaction in the archive was committed at 2026-11-25 02:08:00+00; ' +
        "the archive's WAL ends at 2026-11-25T02:10:00.000Z (LSN 0/9000000); " +
        'recoverable window 2026-11-25T02:00:05.000Z … 2026-11-25T02:10:00.000Z (LSN 0/5000100 … 0/9000000) of s3://backups/pgpilot/ns/old',
    );
  });

  it('reads restored segments and the last commit from the server log', () => {
    expect(restoredSegment('2026-11-25 05:53:18.221 GMT [5814] LOG:  restored log file "000000010000000000000005" from archive ')).toBe('000000010000000000000005');
    expect(restoredSegment('LOG:  restored log file "00000002.history" from archive')).toBeNull();
    expect(lastTransactionTime('2026-11-25 05:53:18.291 GMT [5814] LOG:  last completed transaction was at log time 2026-11-25 05:53:12.770348+00 ')).toBe('2026-11-25 05:53:12.770348+00');
    expect(lastTransactionTime('LOG:  redo done at 0/5000338')).toBeNull();
  });

  it('names the corrupt object the fetcher refused, before anything postgres said', () => {
    const err = 'WAL 000000010000000000000007: object s3://backups/pgpilot/ns/old/wal/0000000100000000/000000010000000000000007.gz is corrupt: sha256 expected aa, actual bb';
    const m = recoveryFailureMessage({ ...base, fetcherError: err, serverLines: ['x FATAL:  could not restore file "000000010000000000000007" from archive: child process exited with exit code 127'] });
    expect(m).toBe(`recovery stopped: ${err}`);
  });

  it('explains missing WAL of the base backup, and passes on any other FATAL', () => {
    expect(recoveryFailureMessage({ ...base, serverLines: ['x FATAL:  WAL ends before end of online backup'] })).toMatch(/^recovery ended before the base backup became consistent: the archive lacks WAL/);
    expect(recoveryFailureMessage({ ...base, window: null, serverLines: ['x PANIC:  could not locate a valid checkpoint record'] })).toBe(
      'postgres exited during recovery (exit code 1): could not locate a valid checkpoint record',
    );
  });
});
