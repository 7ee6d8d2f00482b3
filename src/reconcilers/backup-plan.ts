// Backup decisions, pure: which on-demand backups need a Job, and the conditions and status
// fields the backup concern reports (LastBackupSucceeded, ContinuousArchiving, the recoverability
// window, the next scheduled run). backup.ts gathers the inputs and carries out the writes.
import type { V1Job } from '@kubernetes/client-node';
import type { PostgreSQLBackup } from '../api/backup.js';
import { ANNOTATIONS } from '../api/constants.js';
import type { InstanceStatus } from '../instance/api-types.js';
import type { ConditionInput } from './conditions.js';
import type { BackupStatusFields } from './types.js';

const TERMINAL = new Set(['completed', 'failed']);

const created = (b: PostgreSQLBackup) => Date.parse(b.metadata?.creationTimestamp ? String(b.metadata.creationTimestamp) : '') || 0;

/** Newest first. */
export function byNewest(backups: PostgreSQLBackup[]): PostgreSQLBackup[] {
  return [...backups].sort((a, b) => created(b) - created(a) || (b.metadata?.name ?? '').localeCompare(a.metadata?.name ?? ''));
}

/** Backups made by hand (no scheduled Job runs them) that are not finished: each needs its Job. */
export function backupsNeedingJobs(backups: PostgreSQLBackup[]): PostgreSQLBackup[] {
  return backups.filter((b) => !b.metadata?.deletionTimestamp && !b.metadata?.annotations?.[ANNOTATIONS.backupJob] && !TERMINAL.has(b.status?.phase ?? ''));
}

/** A Job that gave up before its pod could record anything (image pull, deadline): the backup failed. */
export function jobFailure(job: V1Job | undefined): string | null {
  const failed = job?.status?.conditions?.find((c) => c.type === 'Failed' && c.status === 'True');
  return failed ? `the backup Job ${job!.metadata?.name} failed: ${failed.message ?? failed.reason ?? 'no reason given'}` : null;
}

export function lastBackupCondition(backups: PostgreSQLBackup[], nextRun: string | undefined): ConditionInput {
  const last = byNewest(backups).find((b) => TERMINAL.has(b.status?.phase ?? ''));
  const next = nextRun ? `; next scheduled backup at ${nextRun}` : '';
  if (!last) return { type: 'LastBackupSucceeded', status: 'Unknown', reason: 'NoBackupYet', message: `No base backup has finished yet${next}` };
  const name = last.metadata!.name!;
  if (last.status!.phase === 'completed') {
    return { type: 'LastBackupSucceeded', status: 'True', reason: 'BackupCompleted', message: `Backup ${name} (${last.status!.backupId}) completed at ${last.status!.stoppedAt}${next}` };
  }
  return { type: 'LastBackupSucceeded', status: 'False', reason: 'BackupFailed', message: `Backup ${name} failed: ${last.status!.error ?? 'no reason recorded'}${next}` };
}

export interface ArchivingInput {
  url: string;
  primary?: string;
  status?: InstanceStatus;
  backlogWarning: number;
}

function mib(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(0)} MiB`;
}

/** ContinuousArchiving from what the primary's agent reports, with pg_wal growth when it fails. */
export function archivingCondition(input: ArchivingInput): ConditionInput {
  const a = input.status?.archiving;
  if (!input.status || !a) {
    return { type: 'ContinuousArchiving', status: 'Unknown', reason: 'PrimaryUnknown', message: `Waiting for the primary${input.primary ? ` ${input.primary}` : ''} to report WAL archiving to ${input.url}` };
  }
  const wal = input.status.wal;
  const growth = `${a.backlogSegments} segment(s) wait in pg_wal${wal ? ` (pg_wal ${mib(wal.bytes)}${wal.volumeUsedPercent !== null ? `, volume ${Math.round(wal.volumeUsedPercent)}% full` : ''})` : ''}`;
  const failing = a.lastFailureTime && (!a.lastArchivedTime || Date.parse(a.lastFailureTime) >= Date.parse(a.lastArchivedTime));
  if (failing) {
    return {
      type: 'ContinuousArchiving',
      status: 'False',
      reason: 'ArchivingFailing',
      message: `WAL archiving to ${input.url} is failing: ${a.lastFailure ?? 'unknown error'} (last failed ${a.lastFailedWal ?? '?'} at ${a.lastFailureTime}; last archived ${a.lastArchivedWal ?? 'none'}${a.lastArchivedTime ? ` at ${a.lastArchivedTime}` : ''}). Nothing is lost: ${growth} until the store is reachable again`,
    };
  }
  if (a.backlogSegments >= input.backlogWarning) {
    return { type: 'ContinuousArchiving', status: 'False', reason: 'ArchiveBacklog', message: `WAL archiving to ${input.url} is falling behind: ${growth} (warning at ${input.backlogWarning})` };
  }
  return {
    type: 'ContinuousArchiving',
    status: 'True',
    reason: a.lastArchivedWal ? 'Archiving' : 'WaitingForWal',
    message: a.lastArchivedWal ? `Last archived ${a.lastArchivedWal} at ${a.lastArchivedTime} to ${input.url}` : `Archiving to ${input.url}; no WAL segment completed yet`,
  };
}

/** status.archiving from what the primary's agent reports (only the fields it knows). */
function archivingStatus(primary: InstanceStatus): BackupStatusFields['archiving'] {
  const a = primary.archiving!;
  const wal = primary.wal;
  const known = Object.entries({
    lastArchivedWal: a.lastArchivedWal,
    lastArchivedTime: a.lastArchivedTime,
    lastFailedWal: a.lastFailedWal,
    lastFailureTime: a.lastFailureTime,
    lastFailure: a.lastFailure?.slice(0, 4096),
  }).filter(([, v]) => v);
  return {
    ...Object.fromEntries(known),
    backlogSegments: a.backlogSegments,
    ...(wal ? { walBytes: wal.bytes } : {}),
    ...(wal?.volumeUsedPercent != null ? { walVolumeUsedPercent: Math.round(wal.volumeUsedPercent) } : {}),
  };
}

/** The status fields of the backup concern. */
export function backupStatusFields(backups: PostgreSQLBackup[], url: string, primary: InstanceStatus | undefined, previous: BackupStatusFields, nextRun: string | undefined): BackupStatusFields {
  const completed = byNewest(backups).filter((b) => b.status?.phase === 'completed' && b.status.stoppedAt);
  const oldest = completed[completed.length - 1];
  const newest = completed[0];
  const lastFinished = byNewest(backups).find((b) => TERMINAL.has(b.status?.phase ?? ''));
  const archiving = primary?.archiving ? archivingStatus(primary) : previous.archiving;
  // Recoverable up to the newest archived WAL (an upper bound for its last commit), never before the newest backup's end.
  const lastArchived = archiving?.lastArchivedTime;
  const last = [lastArchived, newest?.status?.stoppedAt].filter((t): t is string => !!t).sort((x, y) => Date.parse(y) - Date.parse(x))[0];
  return {
    archivePath: url,
    ...(oldest ? { firstRecoverabilityPoint: oldest.status!.stoppedAt } : {}),
    ...(oldest && last ? { lastRecoverabilityPoint: last } : {}),
    ...(newest ? { lastSuccessfulBackup: newest.status!.stoppedAt } : {}),
    ...(lastFinished ? { lastBackup: lastFinished.metadata!.name! } : {}),
    ...(nextRun ? { nextScheduledBackup: nextRun } : {}),
    ...(archiving ? { archiving } : {}),
  };
}
