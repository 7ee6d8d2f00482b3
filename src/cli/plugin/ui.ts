// Terminal output of the plugin: colours (only on a TTY, and never with NO_COLOR), tables that fit
// a width, ages, and the progress line of a command that follows a long operation.
import { setTimeout as sleep } from 'node:timers/promises';
import { EXIT, PluginError } from './exit.js';

export const WIDTH = 80;

export interface Colors {
  bold(s: string): string;
  dim(s: string): string;
  green(s: string): string;
  yellow(s: string): string;
  red(s: string): string;
}

const paint = (code: number) => (s: string) => `\x1b[${code}m${s}\x1b[0m`;
const plain = (s: string) => s;

/** Colours for a stream: on a TTY unless NO_COLOR is set (https://no-color.org). */
export function colorsFor(stream: { isTTY?: boolean }, env: Record<string, string | undefined> = process.env): Colors {
  const on = stream.isTTY === true && !env.NO_COLOR;
  return on
    ? { bold: paint(1), dim: paint(2), green: paint(32), yellow: paint(33), red: paint(31) }
    : { bold: plain, dim: plain, green: plain, yellow: plain, red: plain };
}

/** Width on screen (escape sequences take none). */
export function visibleLength(s: string): number {
  return [...s.replace(/\x1b\[[0-9;]*m/g, '')].length;
}

/** At most `max` characters, the cut marked with "…"; one line (newlines become spaces). */
export function truncate(s: string, max: number): string {
  const one = s.replace(/\s*\n\s*/g, ' ');
  const chars = [...one];
  if (chars.length <= max) return one;
  return max <= 1 ? chars.slice(0, max).join('') : `${chars.slice(0, max - 1).join('')}…`;
}

export interface Column {
  header: string;
  /** Longest this column may be (the last column takes what is left of the width). */
  max?: number;
  /** Colours a cell after padding (the text is measured without it). */
  color?: (cell: string, row: number) => string;
}

/**
 * Rows under their headers, columns two spaces apart, every line at most `width` long: each
 * column as wide as its longest cell up to its max, the last one truncated to fit.
 */
export function table(columns: Column[], rows: string[][], width = WIDTH, indent = ''): string[] {
  const widths = columns.map((c, i) => Math.min(c.max ?? Infinity, Math.max(visibleLength(c.header), ...rows.map((r) => visibleLength(r[i] ?? '')))));
  let used = indent.length;
  for (let i = 0; i < columns.length - 1; i++) {
    // Keep at least 8 characters for the last column.
    widths[i] = Math.max(1, Math.min(widths[i]!, width - used - 2 - 8));
    used += widths[i]! + 2;
  }
  widths[columns.length - 1] = Math.max(1, Math.min(widths[columns.length - 1]!, width - used));
  const line = (cells: string[], row: number) =>
    indent +
    cells
      .map((cell, i) => {
        const w = widths[i]!;
        const text = truncate(cell, w);
        const last = i === cells.length - 1;
        const padded = last ? text : text + ' '.repeat(Math.max(0, w - visibleLength(text)));
        return row < 0 ? padded : (columns[i]!.color?.(padded, row) ?? padded);
      })
      .join('  ')
      .trimEnd();
  return [line(columns.map((c) => c.header), -1), ...rows.map((r, i) => line(r, i))];
}

/** "45s", "12m", "3h", "5d" since `iso` (empty when unknown). */
export function age(iso: string | undefined, now: number): string {
  if (!iso) return '';
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return '';
  const s = Math.max(0, Math.round((now - t) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  if (s < 172800) return `${Math.round(s / 3600)}h`;
  return `${Math.round(s / 86400)}d`;
}

/** A timestamp of the API as ISO text (typed clients give Dates, custom objects strings). */
export function isoTime(v: Date | string | undefined | null): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (v instanceof Date) return Number.isNaN(v.getTime()) ? undefined : v.toISOString();
  return v;
}

/** "2026-11-25 14:03:00Z (5m ago)", or "(in 3d)" for a time to come. */
export function when(iso: string | undefined, now: number, none = 'never'): string {
  if (!iso) return none;
  const shown = iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z');
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return shown;
  return t > now + 1000 ? `${shown} (in ${age(new Date(now).toISOString(), t)})` : `${shown} (${age(iso, now)} ago)`;
}

/** Words of `text` in lines of at most `width` characters, at most `max` lines (the last cut with …). */
export function wrap(text: string, width: number, max: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line && [...line].length + 1 + [...word].length > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(line);
  const kept = lines.slice(0, max).map((l) => truncate(l, width));
  if (lines.length > max) kept[max - 1] = truncate(`${kept[max - 1]} ${lines[max]}`, width);
  return kept;
}

export interface Writable {
  write(s: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

/**
 * One line that says where a long operation is: rewritten in place on a TTY; elsewhere (a log,
 * a pipe) printed again only when it changes, with the seconds elapsed.
 */
export class Progress {
  private last = '';
  private shown = false;
  private readonly started = Date.now();

  constructor(private readonly out: Writable) {}

  update(line: string): void {
    const elapsed = Math.round((Date.now() - this.started) / 1000);
    if (this.out.isTTY) {
      const width = Math.max(20, (this.out.columns ?? WIDTH) - 1);
      this.out.write(`\r\x1b[K${truncate(`[${elapsed}s] ${line}`, width)}`);
      this.shown = true;
    } else if (line !== this.last) {
      this.out.write(`[${elapsed}s] ${line}\n`);
    }
    this.last = line;
  }

  /** Ends the progress line (a TTY's cursor goes to a new line). */
  end(): void {
    if (this.out.isTTY && this.shown) this.out.write('\n');
    this.shown = false;
  }

  seconds(): number {
    return Math.round((Date.now() - this.started) / 100) / 10;
  }
}

/** What one look at a followed operation found. */
export type Step<T> = { state: 'waiting'; line: string } | { state: 'done'; line: string; value: T } | { state: 'failed'; line: string };

export interface FollowOptions<S, T> {
  /** What is awaited, for the timeout's message: "prod-db-2 to become primary". */
  what: string;
  timeoutMs: number;
  intervalMs?: number;
  poll: () => Promise<S>;
  judge: (s: S) => Step<T>;
  progress: Progress;
  signal?: AbortSignal;
}

/**
 * Polls until judge says done (its value) or failed (a PluginError, exit 1), or the timeout
 * passes (exit 1, with the last line seen). A failed poll that is not a missing object or a
 * refusal (an apiserver hiccup) shows in the line and is retried.
 */
export async function follow<S, T>(o: FollowOptions<S, T>): Promise<T> {
  const deadline = Date.now() + o.timeoutMs;
  let line = 'waiting';
  for (;;) {
    try {
      const step = o.judge(await o.poll());
      line = step.line;
      o.progress.update(line);
      if (step.state === 'done') return step.value;
      if (step.state === 'failed') throw new PluginError(step.line, EXIT.failed);
    } catch (err) {
      if (err instanceof PluginError && err.exitCode !== EXIT.unreachable) throw err;
      o.progress.update(`${line} (apiserver: ${err instanceof Error ? err.message : String(err)})`);
    }
    if (o.signal?.aborted) throw new PluginError(`interrupted while waiting for ${o.what}; it goes on in the cluster`, EXIT.interrupted);
    if (Date.now() >= deadline) throw new PluginError(`timed out after ${Math.round(o.timeoutMs / 1000)} s waiting for ${o.what}; last: ${line}`, EXIT.failed);
    await sleep(Math.min(o.intervalMs ?? 1000, Math.max(0, deadline - Date.now())), undefined, { signal: o.signal }).catch(() => undefined);
  }
}
