// What a cluster's archive holds: completed base backups (those with a valid backup.json),
// incomplete ones (a folder without it: running, failed, or half-deleted), archived WAL files,
// and the window a point-in-time recovery can reach.
import { formatLsn } from '../postgres/lsn.js';
import { errorText } from '../util/error-text.js';
import { parseJson } from '../util/json.js';
import { archiveKeys, walFileOfKey, type BackupManifest } from './archive-layout.js';
import type { ObjectStore } from './object-store.js';
import { compareWalNames, DEFAULT_SEGMENT_SIZE, isSegmentName, parseWalName } from '../postgres/wal-names.js';

export interface IncompleteBackup {
  id: string;
  /** Every object in its folder. */
  keys: string[];
  /** The newest lastModified among them. */
  lastModified: Date;
  /** Why it does not count: no backup.json, or an unreadable one. */
  reason: string;
}

export interface BackupListing {
  /** Completed backups, oldest first (by stop position, then id). */
  backups: BackupManifest[];
  incomplete: IncompleteBackup[];
}

export interface ArchivedWal {
  /** File name as PostgreSQL knows it: a segment, NNN.history, *.partial, *.backup. */
  name: string;
  key: string;
  size: number;
  lastModified: Date;
}

/**
 * The span a point-in-time recovery can reach: from the end of the earliest backup to the end of
 * the archived WAL. `last` is the time the newest archived segment was stored: an upper bound for
 * the last commit it holds (the commit itself may be up to archive_timeout earlier), and
 * `lastLsn` the end of that segment, an upper bound of the same kind.
 */
export interface RecoveryWindow {
  /** RFC 3339: stopTime of the earliest completed backup. */
  first: string;
  last: string;
  /** stopLsn of the earliest completed backup. */
  firstLsn: string;
  lastLsn: string;
}

const ID = /^\d{8}T\d{6}Z$/;
const LSN = /^[0-9A-F]{1,8}\/[0-9A-F]{1,8}$/;
const SHA = /^[0-9a-f]{64}$/;

/** Parses and checks a backup.json; the error names the key and the first bad field. */
export function parseManifest(text: string, key: string): BackupManifest {
  const raw = parseJson(text, key);
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new Error(`${key}: not a JSON object`);
  const m = raw as Record<string, unknown>;
  const bad = (field: string, what: string): never => {
    throw new Error(`${key}: field ${field} ${what} (got ${JSON.stringify(m[field])})`);
  };
  const str = (field: string, re?: RegExp) => {
    const v = m[field];
    if (typeof v !== 'string' || v === '' || (re && !re.test(v))) bad(field, re ? `must match ${re}` : 'must be a non-empty string');
  };
  const int = (field: string, min: number) => {
    const v = m[field];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) bad(field, `must be an integer ≥ ${min}`);
  };
  const time = (field: string) => {
    str(field);
    if (Number.isNaN(Date.parse(m[field] as string))) bad(field, 'must be an RFC 3339 time');
  };
  str('id', ID);
  for (const f of ['cluster', 'namespace', 'backupName', 'systemIdentifier', 'postgresVersion', 'instance']) str(f);
  if (typeof m.fromReplica !== 'boolean') bad('fromReplica', 'must be true or false');
  int('timeline', 1);
  str('startLsn', LSN);
  str('stopLsn', LSN);
  for (const f of ['startWal', 'stopWal']) if (typeof m[f] !== 'string' || !isSegmentName(m[f] as string)) bad(f, 'must be a WAL segment name');
  time('startTime');
  time('stopTime');
  const c = m.compression as Record<string, unknown> | undefined;
  if (typeof c !== 'object' || c === null || c.algorithm !== 'gzip' || typeof c.level !== 'number') bad('compression', 'must be {algorithm: "gzip", level}');
  int('dataBytes', 0);
  int('storedBytes', 0);
  str('dataSha256', SHA);
  str('storedSha256', SHA);
  if (!key.endsWith(`/${m.id as string}/backup.json`)) throw new Error(`${key}: its id ${m.id as string} is not the folder's name`);
  return raw as BackupManifest;
}

/** Oldest first: by stop WAL position, then id. */
export function sortBackups(backups: BackupManifest[]): BackupManifest[] {
  return [...backups].sort((a, b) => compareWalNames(a.stopWal, b.stopWal) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/** The base backups under <path>/base/: completed ones (parsed, checked) and incomplete folders. */
export async function listBackups(store: ObjectStore, path: string): Promise<BackupListing> {
  const prefix = archiveKeys.basePrefix(path);
  const folders = new Map<string, { keys: string[]; lastModified: Date }>();
  for (const o of await store.list(prefix)) {
    const id = o.key.slice(prefix.length).split('/')[0]!;
    const f = folders.get(id) ?? { keys: [], lastModified: new Date(0) };
    f.keys.push(o.key);
    if (o.lastModified > f.lastModified) f.lastModified = o.lastModified;
    folders.set(id, f);
  }
  const backups: BackupManifest[] = [];
  const incomplete: IncompleteBackup[] = [];
  for (const [id, f] of folders) {
    const manifestKey = archiveKeys.baseManifest(path, id);
    if (!f.keys.includes(manifestKey)) {
      incomplete.push({ id, ...f, reason: 'no backup.json (still running, failed, or being deleted)' });
      continue;
    }
    try {
      backups.push(parseManifest((await store.getBuffer(manifestKey)).toString('utf8'), manifestKey));
    } catch (err) {
      incomplete.push({ id, ...f, reason: `unreadable backup.json: ${errorText(err)}` });
    }
  }
  return { backups: sortBackups(backups), incomplete };
}

/** Archived WAL files under <path>/wal/, in key order. */
export async function listWal(store: ObjectStore, path: string): Promise<ArchivedWal[]> {
  const out: ArchivedWal[] = [];
  for (const o of await store.list(archiveKeys.walPrefix(path))) {
    const name = walFileOfKey(o.key);
    if (name !== null) out.push({ name, key: o.key, size: o.size, lastModified: o.lastModified });
  }
  return out;
}

/** See RecoveryWindow; null without a completed backup. WAL positions assume 16 MiB segments. */
export function recoveryWindow(backups: BackupManifest[], wal: ArchivedWal[], segmentSize = DEFAULT_SEGMENT_SIZE): RecoveryWindow | null {
  if (backups.length === 0) return null;
  const earliest = backups.reduce((a, b) => (Date.parse(b.stopTime) < Date.parse(a.stopTime) ? b : a));
  let newest: ArchivedWal | undefined;
  for (const w of wal) if (isSegmentName(w.name) && (!newest || compareWalNames(w.name, newest.name, segmentSize) > 0)) newest = w;
  const window = { first: earliest.stopTime, last: earliest.stopTime, firstLsn: earliest.stopLsn, lastLsn: earliest.stopLsn };
  if (newest && compareWalNames(newest.name, earliest.stopWal, segmentSize) >= 0) {
    const end = formatLsn(BigInt(parseWalName(newest.name, segmentSize).segNo + 1) * BigInt(segmentSize));
    window.lastLsn = end;
    if (newest.lastModified.getTime() > Date.parse(earliest.stopTime)) window.last = newest.lastModified.toISOString();
  }
  return window;
}
