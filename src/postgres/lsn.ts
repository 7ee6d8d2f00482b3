// PostgreSQL WAL positions ('X/Y': two hex halves of a 64-bit byte position).

export function parseLsn(lsn: string): bigint {
  const m = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(lsn.trim());
  if (!m) throw new Error(`not an LSN: ${JSON.stringify(lsn)}`);
  return (BigInt(`0x${m[1]}`) << 32n) | BigInt(`0x${m[2]}`);
}

export function formatLsn(pos: bigint): string {
  if (pos < 0n || pos >= 1n << 64n) throw new Error(`LSN out of range: ${pos}`);
  return `${(pos >> 32n).toString(16).toUpperCase()}/${(pos & 0xffffffffn).toString(16).toUpperCase()}`;
}

/** -1, 0 or 1; null (unknown) sorts before every position. */
export function compareLsn(a: string | null, b: string | null): -1 | 0 | 1 {
  if (a === null || b === null) return a === b ? 0 : a === null ? -1 : 1;
  const x = parseLsn(a);
  const y = parseLsn(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

/** Bytes from b to a (a - b), e.g. a replica's lag behind its primary. */
export function lsnDiff(a: string, b: string): bigint {
  return parseLsn(a) - parseLsn(b);
}

/** Timeline of a WAL file name (first 8 hex digits of e.g. 000000020000000000000003). */
export function timelineOfWalFile(name: string): number {
  if (!/^[0-9A-Fa-f]{24}$/.test(name)) throw new Error(`not a WAL file name: ${JSON.stringify(name)}`);
  return parseInt(name.slice(0, 8), 16);
}

export interface TimelineSwitch {
  /** The timeline that ended. */
  timeline: number;
  /** Where it ended (the next timeline starts here). */
  switchpoint: string;
}

/** A timeline history file (`00000003.history`): "<tli>\t<switchpoint>\t<reason>" per line. */
export function parseTimelineHistory(text: string): TimelineSwitch[] {
  const out: TimelineSwitch[] = [];
  for (const line of text.split('\n')) {
    const t = line.trim();
    if (!t || t.startsWith('#')) continue;
    const [tli, lsn] = t.split(/\s+/);
    if (!tli || !lsn || !/^\d+$/.test(tli)) throw new Error(`bad timeline history line: ${JSON.stringify(line)}`);
    parseLsn(lsn);
    out.push({ timeline: Number(tli), switchpoint: lsn });
  }
  return out;
}

/**
 * Whether a server at `lsn` on `timeline` has WAL the primary (on `primaryTimeline`, with
 * `history`) does not: then streaming cannot resume and only a rewind (or clone) helps.
 */
export function hasDiverged(history: TimelineSwitch[], primaryTimeline: number, timeline: number, lsn: string): boolean {
  if (timeline === primaryTimeline) return false;
  const ended = history.find((h) => h.timeline === timeline);
  // A timeline the primary never was on (or a newer one): another history.
  if (!ended) return true;
  return compareLsn(lsn, ended.switchpoint) > 0;
}
