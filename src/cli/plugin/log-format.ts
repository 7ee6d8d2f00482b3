// Pure: pgpilot's JSON log lines (pino: level, time, component, msg, fields) as lines a person
// reads — time, level, where it came from, the message, then the other fields as key=value.
// Lines that are not JSON (a crash's stack trace, a tool's output) pass through as they are.
import type { Colors } from './ui.js';

export const LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const;
export type Level = (typeof LEVELS)[number];

export interface LogLine {
  /** Where it came from: an instance, or the operator pod. */
  source: string;
  raw: string;
  /** Parsed JSON, when the line is a JSON object. */
  json?: Record<string, unknown>;
  /** Its time (ms), or the time of the line before it from the same source. */
  time?: number;
}

/** Fields shown in the line's head, not repeated as key=value. */
const HEAD = new Set(['level', 'time', 'msg', 'component']);

export function parseLine(source: string, raw: string, previousTime?: number): LogLine {
  const text = raw.replace(/\r$/, '');
  if (text.startsWith('{')) {
    try {
      const json = JSON.parse(text) as unknown;
      if (json && typeof json === 'object' && !Array.isArray(json)) {
        const obj = json as Record<string, unknown>;
        const t = typeof obj.time === 'string' ? Date.parse(obj.time) : typeof obj.time === 'number' ? obj.time : NaN;
        return { source, raw: text, json: obj, time: Number.isNaN(t) ? previousTime : t };
      }
    } catch {
      // not JSON after all: shown as it is
    }
  }
  return { source, raw: text, time: previousTime };
}

/** Splits a log text into lines of one source, carrying times forward to lines that have none. */
export function parseLines(source: string, text: string): LogLine[] {
  const out: LogLine[] = [];
  let t: number | undefined;
  for (const raw of text.split('\n')) {
    if (raw === '') continue;
    const line = parseLine(source, raw, t);
    t = line.time;
    out.push(line);
  }
  return out;
}

/** Lines of several sources in time order (stable: a source's own order is kept for equal or unknown times). */
export function mergeByTime(sources: LogLine[][]): LogLine[] {
  const all = sources.flatMap((lines, s) => lines.map((line, i) => ({ line, s, i })));
  all.sort((a, b) => (a.line.time ?? 0) - (b.line.time ?? 0) || a.s - b.s || a.i - b.i);
  return all.map((x) => x.line);
}

function levelOf(json: Record<string, unknown> | undefined): Level | undefined {
  const l = json?.level;
  if (typeof l === 'string' && (LEVELS as readonly string[]).includes(l)) return l as Level;
  // pino's numeric levels: 10 trace … 60 fatal
  if (typeof l === 'number') return LEVELS[Math.min(5, Math.max(0, Math.floor(l / 10) - 1))];
  return undefined;
}

/** Whether the line is at `min` or above (lines without a level always pass). */
export function atLeast(line: LogLine, min: Level): boolean {
  const l = levelOf(line.json);
  return l === undefined || LEVELS.indexOf(l) >= LEVELS.indexOf(min);
}

function value(v: unknown): string {
  if (typeof v === 'string') return /^[^\s"=]+$/.test(v) ? v : JSON.stringify(v);
  return JSON.stringify(v) ?? String(v);
}

/** Only the lines about one cluster (the operator logs every cluster's work with cluster and namespace fields). */
export function aboutCluster(line: LogLine, cluster: string, namespace: string): boolean {
  return line.json?.cluster === cluster && (line.json.namespace === undefined || line.json.namespace === namespace);
}

export function formatLine(line: LogLine, c: Colors, opts: { hide?: string[] } = {}): string {
  const j = line.json;
  if (!j || typeof j.msg !== 'string') return `${c.dim(line.source)} ${line.raw}`;
  const level = levelOf(j) ?? 'info';
  const paint = level === 'error' || level === 'fatal' ? c.red : level === 'warn' ? c.yellow : level === 'info' ? (s: string) => s : c.dim;
  const time = line.time === undefined ? '' : `${new Date(line.time).toISOString()} `;
  const hide = new Set([...HEAD, ...(opts.hide ?? [])]);
  const fields = Object.entries(j)
    // The source already names the instance.
    .filter(([k, v]) => !hide.has(k) && !(k === 'instance' && v === line.source))
    .map(([k, v]) => `${c.dim(`${k}=`)}${value(v)}`);
  const component = typeof j.component === 'string' ? `/${j.component}` : '';
  return `${c.dim(time)}${paint(level.toUpperCase().padEnd(5))} ${c.bold(`${line.source}${component}`)} ${paint(j.msg)}${fields.length ? ` ${fields.join(' ')}` : ''}`;
}
