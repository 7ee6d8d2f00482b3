// Which base backup a recovery starts from, and the settings that make PostgreSQL replay archived
// WAL up to the target (pure).
import { compareLsn, parseLsn } from '../postgres/lsn.js';
import type { BackupManifest } from './archive-layout.js';
import type { RecoveryWindow } from './catalog.js';

/**
 * Where recovery stops: at most one of time / lsn / xid / name / immediate (none: replay all the
 * archived WAL). `inclusive` (default true) applies to time, lsn and xid: stop just after the
 * target rather than just before it.
 */
export interface RecoveryTarget {
  /** RFC 3339 with a zone, e.g. 2026-11-25T02:00:00Z or 2026-11-25 03:00:00.123456+01:00. */
  time?: string;
  lsn?: string;
  xid?: string;
  /** A restore point made with pg_create_restore_point(). */
  name?: string;
  /** Stop as soon as the base backup is consistent. */
  immediate?: boolean;
  inclusive?: boolean;
}

/** A target that cannot be reached from this archive; the message says why and what can. */
export class RecoveryTargetError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RecoveryTargetError';
  }
}

const TIME = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}(:?\d{2})?)$/i;

/** Milliseconds since the epoch of a target time (fractions below 1 ms are dropped). */
function targetMs(time: string): number {
  const iso = time.replace(' ', 'T').replace(/(\.\d{3})\d+/, '$1').replace(/([+-]\d{2})$/, '$1:00').replace(/([+-]\d{2})(\d{2})$/, '$1:$2');
  return Date.parse(iso);
}

/**
 * A target time as PostgreSQL reads it from its configuration: time zone abbreviations (such as
 * "Z") are not loaded yet when the postmaster reads postgresql.auto.conf, so "Z" becomes "+00".
 */
function pgTimestamp(time: string): string {
  return time.replace(/^(\S{10})[Tt]/, '$1 ').replace(/[Zz]$/, '+00');
}

/** Checks the target's shape; throws RecoveryTargetError. */
export function validateTarget(t: RecoveryTarget): void {
  const set = [...(['time', 'lsn', 'xid', 'name'] as const).filter((k) => t[k] !== undefined), ...(t.immediate ? ['immediate'] : [])];
  if (set.length > 1) throw new RecoveryTargetError(`a recovery target has one kind, got ${set.join(' and ')}`);
  if (t.time !== undefined && (!TIME.test(t.time) || Number.isNaN(targetMs(t.time)))) {
    throw new RecoveryTargetError(`recovery target time ${JSON.stringify(t.time)} is not an RFC 3339 time with a zone (e.g. 2026-11-25T02:00:00Z)`);
  }
  if (t.lsn !== undefined) {
    try {
      parseLsn(t.lsn);
    } catch {
      throw new RecoveryTargetError(`recovery target LSN ${JSON.stringify(t.lsn)} is not an LSN (e.g. 0/3000060)`);
    }
  }
  if (t.xid !== undefined && !/^\d+$/.test(t.xid)) throw new RecoveryTargetError(`recovery target xid ${JSON.stringify(t.xid)} is not a transaction id (digits)`);
  if (t.name !== undefined && (t.name === '' || /[\r\n]/.test(t.name))) throw new RecoveryTargetError('recovery target name must be a non-empty line of text');
}

export interface RecoveryPlanInput {
  /** Completed backups (listBackups().backups). */
  backups: BackupManifest[];
  /** recoveryWindow() of them and the archived WAL. */
  window: RecoveryWindow | null;
  target: RecoveryTarget;
  /** Start from this backup rather than the newest suitable one. */
  backupId?: string;
  /** "s3://bucket/path" for messages. */
  location: string;
}

const byStopTime = (a: BackupManifest, b: BackupManifest) => Date.parse(a.stopTime) - Date.parse(b.stopTime) || (a.id < b.id ? -1 : 1);

/**
 * The base backup to restore: for a time (LSN) target the newest backup that ended at or before
 * it; otherwise the newest one; or the one asked for, if it exists and ends before the target.
 */
export function chooseBaseBackup(input: RecoveryPlanInput): BackupManifest {
  const { target, window, location } = input;
  validateTarget(target);
  if (!window || input.backups.length === 0) throw new RecoveryTargetError(`there is no completed base backup in ${location}: nothing to recover from`);
  const span = `the recoverable window ${window.first} … ${window.last} of ${location}`;
  const backups = [...input.backups].sort(byStopTime);

  let fits: (b: BackupManifest) => boolean = () => true;
  if (target.time !== undefined) {
    const t = targetMs(target.time);
    if (t < Date.parse(window.first) || t > Date.parse(window.last)) throw new RecoveryTargetError(`recovery target time ${target.time} is outside ${span}`);
    fits = (b) => Date.parse(b.stopTime) <= t;
  } else if (target.lsn !== undefined) {
    const lsn = target.lsn;
    if (compareLsn(lsn, window.firstLsn) < 0 || compareLsn(lsn, window.lastLsn) > 0) {
      throw new RecoveryTargetError(`recovery target LSN ${lsn} is outside the recoverable WAL ${window.firstLsn} … ${window.lastLsn} (${span})`);
    }
    fits = (b) => compareLsn(b.stopLsn, lsn) <= 0;
  }

  if (input.backupId !== undefined) {
    const asked = backups.find((b) => b.id === input.backupId);
    if (!asked) {
      throw new RecoveryTargetError(`base backup ${input.backupId} does not exist in ${location} (completed backups: ${backups.map((b) => b.id).join(', ')}; ${span})`);
    }
    if (!fits(asked)) {
      const what = target.time !== undefined ? `time ${target.time}` : `LSN ${target.lsn}`;
      throw new RecoveryTargetError(`base backup ${asked.id} ends at ${asked.stopTime} (${asked.stopLsn}), after the recovery target ${what}: choose an earlier backup (${span})`);
    }
    return asked;
  }
  const chosen = backups.filter(fits).pop();
  if (!chosen) throw new RecoveryTargetError(`no base backup ends before the recovery target (${span})`);
  return chosen;
}

/** The postgresql.conf settings of a recovery towards `target`, fetching WAL with `restoreCommand`. */
export function recoverySettings(target: RecoveryTarget, restoreCommand: string): Record<string, string> {
  validateTarget(target);
  const s: Record<string, string> = { restore_command: restoreCommand };
  if (target.time !== undefined) s.recovery_target_time = pgTimestamp(target.time);
  else if (target.lsn !== undefined) s.recovery_target_lsn = target.lsn;
  else if (target.xid !== undefined) s.recovery_target_xid = target.xid;
  else if (target.name !== undefined) s.recovery_target_name = target.name;
  else if (target.immediate) s.recovery_target = 'immediate';
  if (target.time !== undefined || target.lsn !== undefined || target.xid !== undefined) s.recovery_target_inclusive = target.inclusive === false ? 'off' : 'on';
  s.recovery_target_action = 'promote';
  s.recovery_target_timeline = 'latest';
  return s;
}
