// Which backups and WAL to keep (pure: planRetention), and the deletion (applyRetention).
//
// A time window keeps what a recovery to any point inside it needs: every backup that ended
// inside the window, plus the newest one that ended before it (recovery to the window's first
// moment starts there). A count keeps the newest N. The newest completed backup is never
// deleted, and WAL is deleted only before the oldest kept backup's first segment.
import { archiveKeys, type BackupManifest } from './archive-layout.js';
import { sortBackups, type ArchivedWal, type IncompleteBackup } from './catalog.js';
import type { ObjectStore } from './object-store.js';
import { isHistoryFile } from '../postgres/wal-names.js';

export type RetentionPolicy = { days: number } | { hours: number } | { count: number };

/** Incomplete backup folders older than this are removed (a running backup is younger). */
export const INCOMPLETE_MAX_AGE_MS = 24 * 3600_000;

const HINT = 'use a number of days (7), a duration ("36h", "7d", "4w") or a number of backups ("10 backups")';

/** spec.backup.retention: an integer is days; "36h", "7d", "4w"; "10 backups" / "1 backup". */
export function parseRetention(value: number | string): RetentionPolicy {
  const fail = (why: string): never => {
    throw new Error(`invalid backup retention ${JSON.stringify(value)}: ${why}; ${HINT}`);
  };
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value) || value < 1) fail('a number of days must be a whole number ≥ 1');
    return { days: value };
  }
  const text = value.trim().toLowerCase();
  const m = /^(\d+)\s*(h|d|w|backups?)?$/.exec(text);
  if (!m) return fail('not understood');
  const n = Number(m[1]);
  if (!Number.isSafeInteger(n) || n < 1) fail('it must be at least 1');
  switch (m[2]) {
    case 'h':
      return { hours: n };
    case 'w':
      return { days: n * 7 };
    case 'backup':
    case 'backups':
      if ((n === 1) !== (m[2] === 'backup')) fail(`say "1 backup" or "${n} backups"`);
      return { count: n };
    default:
      return { days: n };
  }
}

/** A policy as people write it: "7d", "36h", "10 backups". */
export function describeRetention(p: RetentionPolicy): string {
  return 'count' in p ? `${p.count} ${p.count === 1 ? 'backup' : 'backups'}` : 'hours' in p ? `${p.hours}h` : `${p.days}d`;
}

export interface RetentionPlan {
  /** Oldest first. */
  deleteBackups: BackupManifest[];
  keep: BackupManifest[];
  /** Archived WAL before this segment's position goes (null: keep all WAL). */
  walBefore: string | null;
  /** Incomplete folders older than INCOMPLETE_MAX_AGE_MS. */
  deleteIncomplete: IncompleteBackup[];
}

/** Pure: what the policy keeps of `backups` (completed) at `now`. */
export function planRetention(backups: BackupManifest[], policy: RetentionPolicy, now: Date, incomplete: IncompleteBackup[] = []): RetentionPlan {
  const sorted = sortBackups(backups);
  let keepFrom: number; // index of the oldest kept backup
  if ('count' in policy) {
    keepFrom = Math.max(0, sorted.length - policy.count);
  } else {
    const windowMs = 'hours' in policy ? policy.hours * 3600_000 : policy.days * 24 * 3600_000;
    const cutoff = now.getTime() - windowMs;
    const firstInside = sorted.findIndex((b) => Date.parse(b.stopTime) >= cutoff);
    // The newest backup older than the window covers its first moment; with none inside, the newest.
    keepFrom = firstInside === -1 ? sorted.length - 1 : Math.max(0, firstInside - 1);
  }
  keepFrom = Math.min(keepFrom, Math.max(0, sorted.length - 1)); // never the newest one
  const keep = sorted.slice(keepFrom);
  return {
    deleteBackups: sorted.slice(0, keepFrom),
    keep,
    walBefore: keep.length > 0 ? keep.reduce((a, b) => (walPosition(b.startWal) < walPosition(a.startWal) ? b : a)).startWal : null,
    deleteIncomplete: incomplete.filter((f) => now.getTime() - f.lastModified.getTime() > INCOMPLETE_MAX_AGE_MS),
  };
}

/**
 * Position of a segment name (or a .partial/.backup name) regardless of timeline and segment
 * size: its log and seg fields as one number.
 */
function walPosition(name: string): bigint {
  if (!/^[0-9A-F]{24}(\.|$)/.test(name)) throw new Error(`not a WAL segment name: ${JSON.stringify(name)}`);
  return BigInt(`0x${name.slice(8, 24)}`);
}

/** The archived WAL files strictly before `walBefore`; timeline history files always stay. */
export function walToDelete(wal: ArchivedWal[], walBefore: string | null): ArchivedWal[] {
  if (walBefore === null) return [];
  const limit = walPosition(walBefore);
  return wal.filter((w) => {
    if (isHistoryFile(w.name)) return false;
    try {
      return walPosition(w.name) < limit;
    } catch {
      return false; // a name we do not know: leave it
    }
  });
}

export interface RetentionResult {
  backups: number;
  incompleteBackups: number;
  walFiles: number;
}

/**
 * Deletes what the plan says: per backup its manifest first (so a half-deleted backup is never
 * taken for complete), then the rest of its folder; then old incomplete folders; then the WAL
 * before plan.walBefore (`wal`: listWal() of the same archive).
 */
export async function applyRetention(store: ObjectStore, path: string, plan: RetentionPlan, wal: ArchivedWal[]): Promise<RetentionResult> {
  for (const b of plan.deleteBackups) {
    await store.delete([archiveKeys.baseManifest(path, b.id)]);
    const rest = await store.list(`${archiveKeys.basePrefix(path)}${b.id}/`);
    await store.delete(rest.map((o) => o.key));
  }
  for (const f of plan.deleteIncomplete) await store.delete(f.keys);
  const walFiles = walToDelete(wal, plan.walBefore);
  await store.delete(walFiles.map((w) => w.key));
  return { backups: plan.deleteBackups.length, incompleteBackups: plan.deleteIncomplete.length, walFiles: walFiles.length };
}
