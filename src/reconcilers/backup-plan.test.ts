// The backup concern's conditions and status fields, and which backups need a Job (pure).
import { describe, expect, it } from 'vitest';
import type { PostgreSQLBackup } from '../api/backup.js';
import { ANNOTATIONS } from '../api/constants.js';
import type { ArchivingStatus, InstanceStatus } from '../instance/api-types.js';
import { archivingCondition, backupsNeedingJobs, backupStatusFields, jobFailure, lastBackupCondition } from './backup-plan.js';
import { DESTINATION, pgBackup } from '../../test/support/builder-fixtures.js';
import { instanceStatus } from '../../test/support/instance-status.js';

describe('backup plan', () => {
  const completed = (name: string, created: string, stoppedAt: string, extra: Partial<NonNullable<PostgreSQLBackup['status']>> = {}) =>
    pgBackup(name, created, { phase: 'completed', backupId: created.replace(/[-:]/g, '').replace(/\.\d+/, ''), stoppedAt, destination: DESTINATION, ...extra });
  const failed = (name: string, created: string, error = 'pg_basebackup: could not connect') => pgBackup(name, created, { phase: 'failed', error });

  it('backupsNeedingJobs: unfinished backups made by hand, not scheduled, finished or deleting ones', () => {
    const byHand = pgBackup('by-hand', '2026-01-01T00:00:00Z');
    const running = pgBackup('running', '2026-01-01T00:00:00Z', { phase: 'running' });
    const scheduled = pgBackup('prod-db-backup-29000000', '2026-01-01T00:00:00Z', undefined, { annotations: { [ANNOTATIONS.backupJob]: 'prod-db-backup-29000000' } });
    const deleting = pgBackup('deleting', '2026-01-01T00:00:00Z', undefined, { deletionTimestamp: new Date() });
    const done = [completed('done', '2026-01-01T00:00:00Z', '2026-01-01T00:05:00Z'), failed('broken', '2026-01-01T00:00:00Z')];
    expect(ANNOTATIONS.backupJob).toBe('postgres.pgpilot.io/job');
    expect(backupsNeedingJobs([byHand, running, scheduled, deleting, ...done]).map((b) => b.metadata.name)).toEqual(['by-hand', 'running']);
  });

  it('jobFailure: the Failed condition of a Job, else null', () => {
    expect(jobFailure(undefined)).toBeNull();
    expect(jobFailure({ metadata: { name: 'j' }, status: { conditions: [{ type: 'Complete', status: 'True' }] } })).toBeNull();
    expect(jobFailure({ metadata: { name: 'j' }, status: { conditions: [{ type: 'Failed', status: 'False' }] } })).toBeNull();
    const msg = jobFailure({ metadata: { name: 'nightly' }, status: { conditions: [{ type: 'Failed', status: 'True', reason: 'DeadlineExceeded', message: 'Job was active longer than specified deadline' }] } });
    expect(msg).toContain('nightly');
    expect(msg).toContain('Job was active longer than specified deadline');
    expect(jobFailure({ metadata: { name: 'j' }, status: { conditions: [{ type: 'Failed', status: 'True', reason: 'BackoffLimitExceeded' }] } })).toContain('BackoffLimitExceeded');
  });

  describe('lastBackupCondition', () => {
    it('Unknown NoBackupYet without a finished backup, with the next run', () => {
      const c = lastBackupCondition([pgBackup('running', '2026-01-01T00:00:00Z', { phase: 'running' })], '2026-01-02T02:00:00.000Z');
      expect(c).toMatchObject({ type: 'LastBackupSucceeded', status: 'Unknown', reason: 'NoBackupYet' });
      expect(c.message).toContain('2026-01-02T02:00:00.000Z');
      expect(lastBackupCondition([], undefined)).toMatchObject({ status: 'Unknown', reason: 'NoBackupYet' });
    });

    it('True when the newest finished backup completed (older failures do not count)', () => {
      const c = lastBackupCondition([failed('old', '2026-01-01T00:00:00Z'), completed('new', '2026-01-02T00:00:00Z', '2026-01-02T00:05:00Z'), pgBackup('now', '2026-01-03T00:00:00Z', { phase: 'running' })], undefined);
      expect(c).toMatchObject({ type: 'LastBackupSucceeded', status: 'True', reason: 'BackupCompleted' });
      expect(c.message).toContain('new');
    });

    it('False with the error when the newest finished backup failed', () => {
      const c = lastBackupCondition([completed('old', '2026-01-01T00:00:00Z', '2026-01-01T00:05:00Z'), failed('new', '2026-01-02T00:00:00Z', 'no space left on device')], undefined);
      expect(c).toMatchObject({ type: 'LastBackupSucceeded', status: 'False', reason: 'BackupFailed' });
      expect(c.message).toContain('new');
      expect(c.message).toContain('no space left on device');
    });
  });

  const archiving = (over: Partial<ArchivingStatus> = {}): ArchivingStatus => ({
    lastArchivedWal: '000000010000000000000010',
    lastArchivedTime: '2026-01-02T10:00:00.000Z',
    lastFailedWal: null,
    lastFailureTime: null,
    lastFailure: null,
    backlogSegments: 1,
    inFlight: 0,
    archivedCount: 16,
    ...over,
  });
  const primaryStatus = (a: ArchivingStatus | null | undefined, wal: InstanceStatus['wal'] = { bytes: 160 * 2 ** 20, volumeUsedPercent: 42 }): InstanceStatus =>
    instanceStatus({
      instance: 'prod-db-1',
      phase: 'Running',
      role: 'primary',
      running: true,
      postgresVersion: '14.5',
      systemIdentifier: '7300000000000000001',
      timeline: 1,
      currentLsn: '0/10000060',
      ...(a !== undefined ? { archiving: a } : {}),
      wal,
    });
  const URL_ = 's3://pg-backups/pgpilot/production/prod-db';

  describe('archivingCondition', () => {
    it('Unknown until the primary reports archiving', () => {
      expect(archivingCondition({ url: URL_, backlogWarning: 32 })).toMatchObject({ type: 'ContinuousArchiving', status: 'Unknown' });
      const c = archivingCondition({ url: URL_, primary: 'prod-db-1', status: primaryStatus(undefined), backlogWarning: 32 });
      expect(c).toMatchObject({ status: 'Unknown' });
      expect(c.message).toContain('prod-db-1');
    });

    it('False ArchivingFailing when the last failure is newer than the last success, with the backlog and pg_wal growth', () => {
      const a = archiving({ lastFailedWal: '000000010000000000000011', lastFailureTime: '2026-01-02T10:05:00.000Z', lastFailure: 'connect ECONNREFUSED 10.0.0.1:9000', backlogSegments: 12 });
      const c = archivingCondition({ url: URL_, primary: 'prod-db-1', status: primaryStatus(a), backlogWarning: 32 });
      expect(c).toMatchObject({ type: 'ContinuousArchiving', status: 'False', reason: 'ArchivingFailing' });
      expect(c.message).toContain('connect ECONNREFUSED 10.0.0.1:9000');
      expect(c.message).toContain('12 segment(s)');
      expect(c.message).toContain('wait in pg_wal');
      expect(c.message).toContain('160 MiB');
      expect(c.message).toContain('42%');
      expect(c.message).toContain(URL_);
    });

    it('failing before anything was ever archived', () => {
      const a = archiving({ lastArchivedWal: null, lastArchivedTime: null, lastFailedWal: '000000010000000000000001', lastFailureTime: '2026-01-02T10:05:00.000Z', lastFailure: 'AccessDenied' });
      expect(archivingCondition({ url: URL_, status: primaryStatus(a, null), backlogWarning: 32 })).toMatchObject({ status: 'False', reason: 'ArchivingFailing', message: expect.stringContaining('AccessDenied') });
    });

    it('an old failure followed by a success is healthy', () => {
      const a = archiving({ lastFailedWal: '00000001000000000000000F', lastFailureTime: '2026-01-02T09:00:00.000Z', lastFailure: 'timeout' });
      expect(archivingCondition({ url: URL_, status: primaryStatus(a), backlogWarning: 32 })).toMatchObject({ status: 'True', reason: 'Archiving' });
    });

    it('False ArchiveBacklog at or above the warning', () => {
      const c = archivingCondition({ url: URL_, status: primaryStatus(archiving({ backlogSegments: 32 })), backlogWarning: 32 });
      expect(c).toMatchObject({ status: 'False', reason: 'ArchiveBacklog' });
      expect(c.message).toContain('32 segment(s)');
      expect(archivingCondition({ url: URL_, status: primaryStatus(archiving({ backlogSegments: 31 })), backlogWarning: 32 })).toMatchObject({ status: 'True' });
    });

    it('True when healthy, naming the last archived segment', () => {
      const c = archivingCondition({ url: URL_, status: primaryStatus(archiving()), backlogWarning: 32 });
      expect(c).toMatchObject({ type: 'ContinuousArchiving', status: 'True', reason: 'Archiving' });
      expect(c.message).toContain('000000010000000000000010');
      const idle = archivingCondition({ url: URL_, status: primaryStatus(archiving({ lastArchivedWal: null, lastArchivedTime: null, backlogSegments: 0 })), backlogWarning: 32 });
      expect(idle).toMatchObject({ status: 'True', reason: 'WaitingForWal' });
    });
  });

  describe('backupStatusFields', () => {
    const backups = () => [
      completed('b1', '2026-01-01T02:00:00Z', '2026-01-01T02:10:00.000Z'),
      completed('b2', '2026-01-02T02:00:00Z', '2026-01-02T02:10:00.000Z'),
      failed('b3', '2026-01-03T02:00:00Z'),
      pgBackup('b4', '2026-01-04T02:00:00Z', { phase: 'running' }),
    ];

    it('the recoverability window, last backups, next run and archiving from the primary', () => {
      const f = backupStatusFields(backups(), URL_, primaryStatus(archiving({ lastArchivedTime: '2026-01-03T12:00:00.000Z' })), {}, '2026-01-05T02:00:00.000Z');
      expect(f.archivePath).toBe(URL_);
      expect(f.firstRecoverabilityPoint).toBe('2026-01-01T02:10:00.000Z');
      expect(f.lastRecoverabilityPoint).toBe('2026-01-03T12:00:00.000Z');
      expect(f.lastSuccessfulBackup).toBe('2026-01-02T02:10:00.000Z');
      expect(f.lastBackup).toBe('b3');
      expect(f.nextScheduledBackup).toBe('2026-01-05T02:00:00.000Z');
      expect(f.archiving).toEqual({
        lastArchivedWal: '000000010000000000000010',
        lastArchivedTime: '2026-01-03T12:00:00.000Z',
        backlogSegments: 1,
        walBytes: 160 * 2 ** 20,
        walVolumeUsedPercent: 42,
      });
    });

    it('the last recoverability point is the newest backup end when it is later than the newest archived WAL', () => {
      const f = backupStatusFields(backups(), URL_, primaryStatus(archiving({ lastArchivedTime: '2026-01-02T01:00:00.000Z' })), {}, undefined);
      expect(f.lastRecoverabilityPoint).toBe('2026-01-02T02:10:00.000Z');
      expect(f.nextScheduledBackup).toBeUndefined();
    });

    it('keeps the previous archiving when the primary did not report', () => {
      const previous = { archiving: { lastArchivedWal: '00000001000000000000000A', lastArchivedTime: '2026-01-03T06:00:00.000Z', backlogSegments: 0 } };
      const f = backupStatusFields(backups(), URL_, undefined, previous, undefined);
      expect(f.archiving).toEqual(previous.archiving);
      expect(f.lastRecoverabilityPoint).toBe('2026-01-03T06:00:00.000Z');
      expect(backupStatusFields(backups(), URL_, primaryStatus(undefined), previous, undefined).archiving).toEqual(previous.archiving);
    });

    it('copies a failure, bounded', () => {
      const a = archiving({ lastFailedWal: '000000010000000000000011', lastFailureTime: '2026-01-03T13:00:00.000Z', lastFailure: 'x'.repeat(10_000) });
      const f = backupStatusFields([], URL_, primaryStatus(a, null), {}, undefined);
      expect(f.archiving).toMatchObject({ lastFailedWal: '000000010000000000000011', lastFailureTime: '2026-01-03T13:00:00.000Z' });
      expect(f.archiving!.lastFailure!.length).toBeLessThanOrEqual(4096);
      expect(f.archiving).not.toHaveProperty('walBytes');
    });

    it('no window without a completed backup', () => {
      const f = backupStatusFields([failed('b3', '2026-01-03T02:00:00Z')], URL_, primaryStatus(archiving()), {}, undefined);
      expect(f.firstRecoverabilityPoint).toBeUndefined();
      expect(f.lastRecoverabilityPoint).toBeUndefined();
      expect(f.lastSuccessfulBackup).toBeUndefined();
      expect(f.lastBackup).toBe('b3');
    });
  });
});
