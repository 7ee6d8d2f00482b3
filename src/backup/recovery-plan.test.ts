// Recovery planning (pure): which base backup a target needs, errors that state the window, and
// the settings PostgreSQL gets.
import { describe, expect, it } from 'vitest';
import type { BackupManifest } from './archive-layout.js';
import { recoveryWindow, type ArchivedWal } from './catalog.js';
import { chooseBaseBackup, RecoveryTargetError, recoverySettings, validateTarget, type RecoveryTarget } from './recovery-plan.js';

const LOCATION = 's3://archive/pgpilot/production/prod-db';

/** Backups that ended at 02:00:30 on the given days of November 2026. */
const made = (day: number, stopLsn: string, stopWal: string) =>
  ({ id: `202611${day}T020000Z`, stopTime: `2026-11-${day}T02:00:30.000Z`, stopLsn, stopWal }) as BackupManifest;
const backups = [made(22, '0/3000100', '000000010000000000000003'), made(23, '0/9000100', '000000010000000000000009'), made(24, '0/F000100', '00000001000000000000000F')];

const segment = (name: string, at: string): ArchivedWal => ({ name, key: `k/${name}`, size: 1, lastModified: new Date(at) });
const wal = [
  segment('000000010000000000000002', '2026-11-22T01:00:00Z'),
  segment('000000010000000000000003', '2026-11-22T02:01:00Z'),
  segment('00000001.history', '2026-11-25T09:00:00Z'),
  segment('000000010000000000000010', '2026-11-25T08:00:00Z'),
  segment('000000010000000000000011', '2026-11-25T09:30:00Z'),
];
const window = recoveryWindow(backups, wal)!;

const plan = (target: RecoveryTarget, backupId?: string) => chooseBaseBackup({ backups, window, target, location: LOCATION, ...(backupId ? { backupId } : {}) });

function planError(target: RecoveryTarget, backupId?: string): RecoveryTargetError {
  try {
    plan(target, backupId);
  } catch (err) {
    expect(err).toBeInstanceOf(RecoveryTargetError);
    return err as RecoveryTargetError;
  }
  throw new Error('expected a RecoveryTargetError');
}

describe('recoveryWindow', () => {
  it('spans from the earliest backup to the newest archived segment', () => {
    expect(window).toEqual({ first: '2026-11-22T02:00:30.000Z', last: '2026-11-25T09:30:00.000Z', firstLsn: '0/3000100', lastLsn: '0/12000000' });
  });

  it('is null without a backup, and ends at the backup without later WAL', () => {
    expect(recoveryWindow([], wal)).toBeNull();
    expect(recoveryWindow(backups.slice(0, 1), wal.slice(0, 1))).toEqual({ first: '2026-11-22T02:00:30.000Z', last: '2026-11-22T02:00:30.000Z', firstLsn: '0/3000100', lastLsn: '0/3000100' });
  });
});

describe('chooseBaseBackup', () => {
  it('takes the newest backup that ended before a target time', () => {
    expect(plan({ time: '2026-11-23T12:00:00Z' }).id).toBe('20261123T020000Z');
    expect(plan({ time: '2026-11-24T02:00:30Z' }).id).toBe('20261124T020000Z');
    expect(plan({ time: '2026-11-24 03:00:31.123456+01' }).id).toBe('20261124T020000Z');
    expect(plan({ time: '2026-11-24T02:00:29.999Z' }).id).toBe('20261123T020000Z');
  });

  it('takes the newest backup that ended before a target LSN', () => {
    expect(plan({ lsn: '0/9000100' }).id).toBe('20261123T020000Z');
    expect(plan({ lsn: '0/9000000' }).id).toBe('20261122T020000Z');
  });

  it('takes the newest backup for xid, name, immediate and no target', () => {
    for (const t of [{ xid: '1234' }, { name: 'before-migration' }, { immediate: true }, {}]) expect(plan(t).id).toBe('20261124T020000Z');
  });

  it('states the window when a time is outside it', () => {
    expect(planError({ time: '2026-11-22T02:00:00Z' }).message).toBe(
      `recovery target time 2026-11-22T02:00:00Z is outside the recoverable window 2026-11-22T02:00:30.000Z … 2026-11-25T09:30:00.000Z of ${LOCATION}`,
    );
    expect(planError({ time: '2026-11-25T10:00:00Z' }).message).toMatch(/outside the recoverable window .* of s3:\/\/archive\/pgpilot\/production\/prod-db$/);
  });

  it('states the WAL range when an LSN is outside it', () => {
    expect(planError({ lsn: '0/12000001' }).message).toMatch(/^recovery target LSN 0\/12000001 is outside the recoverable WAL 0\/3000100 … 0\/12000000/);
    expect(planError({ lsn: '0/2FFFFFF' }).message).toMatch(/outside/);
  });

  it('uses the backup asked for when it ends before the target', () => {
    expect(plan({ time: '2026-11-25T00:00:00Z' }, '20261122T020000Z').id).toBe('20261122T020000Z');
    expect(plan({}, '20261123T020000Z').id).toBe('20261123T020000Z');
  });

  it('refuses a backup that does not exist or ends after the target, stating the window', () => {
    const missing = planError({}, '20261101T020000Z').message;
    expect(missing).toContain('base backup 20261101T020000Z does not exist in s3://archive/pgpilot/production/prod-db');
    expect(missing).toContain('20261122T020000Z, 20261123T020000Z, 20261124T020000Z');
    const late = planError({ time: '2026-11-23T12:00:00Z' }, '20261124T020000Z').message;
    expect(late).toMatch(/^base backup 20261124T020000Z ends at 2026-11-24T02:00:30.000Z \(0\/F000100\), after the recovery target time 2026-11-23T12:00:00Z/);
    expect(late).toContain('the recoverable window 2026-11-22T02:00:30.000Z … 2026-11-25T09:30:00.000Z');
    expect(planError({ lsn: '0/5000000' }, '20261123T020000Z').message).toMatch(/after the recovery target LSN 0\/5000000/);
  });

  it('says so when there is no backup at all', () => {
    expect(() => chooseBaseBackup({ backups: [], window: null, target: {}, location: LOCATION })).toThrow(`there is no completed base backup in ${LOCATION}`);
  });
});

describe('validateTarget', () => {
  it.each<[RecoveryTarget, RegExp]>([
    [{ time: '2026-11-24T02:00:00Z', lsn: '0/1' }, /one kind, got time and lsn/],
    [{ xid: '5', immediate: true }, /got xid and immediate/],
    [{ time: '2026-11-24T02:00:00' }, /not an RFC 3339 time with a zone/],
    [{ time: 'yesterday' }, /not an RFC 3339 time/],
    [{ lsn: '3000000' }, /not an LSN/],
    [{ xid: '12a' }, /not a transaction id/],
    [{ name: '' }, /non-empty/],
  ])('refuses %j', (target, message) => {
    expect(() => validateTarget(target)).toThrow(message);
  });
});

describe('recoverySettings', () => {
  const cmd = "/bin/sh -c 'x' pgpilot-restore %f %p";
  const common = { restore_command: cmd, recovery_target_action: 'promote', recovery_target_timeline: 'latest' };

  it('replays all archived WAL without a target', () => {
    expect(recoverySettings({}, cmd)).toEqual(common);
  });

  it('sets one target kind, inclusive by default for time, lsn and xid', () => {
    // "Z" is an abbreviation PostgreSQL cannot read from its configuration files at startup.
    expect(recoverySettings({ time: '2026-11-24T02:00:00Z' }, cmd)).toEqual({ ...common, recovery_target_time: '2026-11-24 02:00:00+00', recovery_target_inclusive: 'on' });
    expect(recoverySettings({ time: '2026-11-24 03:00:00.5+01:00' }, cmd).recovery_target_time).toBe('2026-11-24 03:00:00.5+01:00');
    expect(recoverySettings({ lsn: '0/3000060', inclusive: false }, cmd)).toEqual({ ...common, recovery_target_lsn: '0/3000060', recovery_target_inclusive: 'off' });
    expect(recoverySettings({ xid: '731' }, cmd)).toEqual({ ...common, recovery_target_xid: '731', recovery_target_inclusive: 'on' });
    expect(recoverySettings({ name: 'before-migration' }, cmd)).toEqual({ ...common, recovery_target_name: 'before-migration' });
    expect(recoverySettings({ immediate: true }, cmd)).toEqual({ ...common, recovery_target: 'immediate' });
  });
});
