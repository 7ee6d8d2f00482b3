// WAL file names (pure). A segment name is three 8-hex-digit fields: timeline, "log" (high 32 bits
// of the position) and "seg" (segment number within that 4 GiB log), e.g.
// 000000010000000A000000FF. With 16 MiB segments a log holds 256 segments (seg 00..FF).
import { parseLsn } from './lsn.js';

export const DEFAULT_SEGMENT_SIZE = 16 * 1024 * 1024;
const LOG_SIZE = 0x1_0000_0000; // bytes per "log" id

export interface WalSegment {
  timeline: number;
  log: number;
  seg: number;
  /** Absolute segment number: log * segmentsPerLog + seg (fits a double up to 2^53). */
  segNo: number;
}

function segmentsPerLog(segmentSize: number): number {
  // PostgreSQL allows powers of two from 1 MiB to 1 GiB (initdb --wal-segsize).
  if (!Number.isInteger(segmentSize) || segmentSize < 1 << 20 || segmentSize > 1 << 30 || (segmentSize & (segmentSize - 1)) !== 0) {
    throw new Error(`invalid WAL segment size ${segmentSize}: a power of two from 1 MiB to 1 GiB`);
  }
  return LOG_SIZE / segmentSize;
}

const hex8 = (n: number) => n.toString(16).toUpperCase().padStart(8, '0');

export const isSegmentName = (name: string) => /^[0-9A-F]{24}$/.test(name);
export const isHistoryFile = (name: string) => /^[0-9A-F]{8}\.history$/.test(name);
/** The last, incomplete segment of an old timeline, archived at promotion. */
export const isPartial = (name: string) => /^[0-9A-F]{24}\.partial$/.test(name);
/** The backup history file pg_stop_backup writes: <segment>.<offset>.backup. */
export const isBackupLabel = (name: string) => /^[0-9A-F]{24}\.[0-9A-F]{8}\.backup$/.test(name);
/** Any file PostgreSQL hands to archive_command or asks restore_command for. */
export const isWalFileName = (name: string) => isSegmentName(name) || isHistoryFile(name) || isPartial(name) || isBackupLabel(name);

/** Parses a segment name (or the segment part of a .partial/.backup name); throws otherwise. */
export function parseWalName(name: string, segmentSize = DEFAULT_SEGMENT_SIZE): WalSegment {
  const base = name.slice(0, 24);
  if (!isSegmentName(base) || !(name.length === 24 || isPartial(name) || isBackupLabel(name))) {
    throw new Error(`not a WAL segment name: ${JSON.stringify(name)}`);
  }
  const perLog = segmentsPerLog(segmentSize);
  const timeline = parseInt(base.slice(0, 8), 16);
  const log = parseInt(base.slice(8, 16), 16);
  const seg = parseInt(base.slice(16, 24), 16);
  if (timeline === 0) throw new Error(`WAL name ${name}: timeline 0 does not exist`);
  if (seg >= perLog) throw new Error(`WAL name ${name}: segment ${seg} is out of range for ${segmentSize}-byte segments`);
  return { timeline, log, seg, segNo: log * perLog + seg };
}

export function formatWalName(timeline: number, segNo: number, segmentSize = DEFAULT_SEGMENT_SIZE): string {
  const perLog = segmentsPerLog(segmentSize);
  if (!Number.isSafeInteger(segNo) || segNo < 0) throw new Error(`invalid segment number ${segNo}`);
  return hex8(timeline) + hex8(Math.floor(segNo / perLog)) + hex8(segNo % perLog);
}

/** The `count` segment names after `name` on the same timeline. */
export function nextWalNames(name: string, count: number, segmentSize = DEFAULT_SEGMENT_SIZE): string[] {
  const { timeline, segNo } = parseWalName(name, segmentSize);
  return Array.from({ length: count }, (_, i) => formatWalName(timeline, segNo + i + 1, segmentSize));
}

export function nextWalName(name: string, segmentSize = DEFAULT_SEGMENT_SIZE): string {
  return nextWalNames(name, 1, segmentSize)[0]!;
}

/**
 * The segment that holds the byte at `lsn` (e.g. "0/3000028") on `timeline`. Unlike
 * pg_walfile_name(), an LSN exactly on a boundary names the segment that starts there.
 */
export function walNameForLsn(lsn: string, timeline: number, segmentSize = DEFAULT_SEGMENT_SIZE): string {
  segmentsPerLog(segmentSize);
  const segNo = parseLsn(lsn) / BigInt(segmentSize);
  return formatWalName(timeline, Number(segNo), segmentSize);
}

/**
 * Order of WAL positions: by segment number, then timeline (a newer timeline's copy of a segment
 * comes after the old one's). Works for segments, .partial and .backup names.
 */
export function compareWalNames(a: string, b: string, segmentSize = DEFAULT_SEGMENT_SIZE): number {
  const x = parseWalName(a, segmentSize);
  const y = parseWalName(b, segmentSize);
  return x.segNo - y.segNo || x.timeline - y.timeline;
}
