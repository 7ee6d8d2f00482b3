// GET /containerLogs/{namespace}/{pod}/{container} of the process kubelet's API, as the real
// kubelet serves it (the apiserver's pods/log proxies here). A container's log file holds every
// start of the container, each after one header line the pod worker writes (`headerLine`):
// the current instance follows the last header, `previous` is the one before. Header lines are
// never served. The file has no per-line times, so sinceSeconds / sinceTime / timestamps are
// refused with a 400 instead of being answered wrongly.
import { open, type FileHandle } from 'node:fs/promises';
import type { V1ContainerStatus } from '@kubernetes/client-node';

// ---- pure parts ----------------------------------------------------------------------------

const HEADER_PREFIX = '---- ';
const HEADER_RE = /^---- \d{4}-\d\d-\d\dT[\d:.]+Z start (\S+) \(restart \d+\): /;

/** The line the pod worker writes before each start of a container (newline included). */
export function headerLine(container: string, restartCount: number, argv: string[], at = new Date()): string {
  return `${HEADER_PREFIX}${at.toISOString()} start ${container} (restart ${restartCount}): ${argv.join(' ').replace(/\n/g, '\\n')}\n`;
}

export function isHeaderLine(line: string, container: string): boolean {
  const m = HEADER_RE.exec(line);
  return !!m && m[1] === container;
}

export interface Range {
  start: number;
  end: number;
}

/** Where a line starting at `at` ends (index of its '\n', or the buffer's length). */
function lineEnd(buf: Buffer, at: number): number {
  const nl = buf.indexOf(0x0a, at);
  return nl < 0 ? buf.length : nl;
}

/**
 * The content of each start of the container in its log file, in order, header lines left out.
 * Output before the first header (none is written by this kubelet) counts as no instance.
 */
export function instanceRanges(buf: Buffer, container: string): Range[] {
  const out: Range[] = [];
  let at = 0;
  while (at < buf.length) {
    const end = lineEnd(buf, at);
    const isHeader = buf[at] === 0x2d && isHeaderLine(buf.toString('utf8', at, Math.min(end, at + 4096)), container);
    if (isHeader) {
      const last = out[out.length - 1];
      if (last) last.end = at;
      out.push({ start: Math.min(end + 1, buf.length), end: buf.length });
    }
    at = end + 1;
  }
  return out;
}

/** The last n lines (a final line without '\n' counts as one). */
export function lastLines(buf: Buffer, n: number): Buffer {
  if (n <= 0) return buf.subarray(0, 0);
  let at = buf.length;
  if (at > 0 && buf[at - 1] === 0x0a) at--;
  for (let i = 0; i < n; i++) {
    const nl = buf.lastIndexOf(0x0a, at - 1);
    if (nl < 0) return buf;
    if (i === n - 1) return buf.subarray(nl + 1);
    at = nl;
  }
  return buf;
}

export interface LogQuery {
  follow: boolean;
  previous: boolean;
  tailLines?: number;
  limitBytes?: number;
}

const truthy = (v: string | null) => v === 'true' || v === '1';

/** The query the apiserver sends (only the options that are set); an error text means 400. */
export function parseLogQuery(q: URLSearchParams): LogQuery | { error: string } {
  const unsupported = ['sinceSeconds', 'sinceTime'].filter((k) => q.has(k));
  if (truthy(q.get('timestamps'))) unsupported.push('timestamps');
  if (unsupported.length) {
    return { error: `the process kubelet does not support ${unsupported.join(', ')}: its container logs carry no per-line times` };
  }
  const stream = q.get('stream');
  if (stream && stream !== 'All') return { error: `the process kubelet does not support stream=${stream}: stdout and stderr share one log file` };
  const query: LogQuery = { follow: truthy(q.get('follow')), previous: truthy(q.get('previous')) };
  for (const key of ['tailLines', 'limitBytes'] as const) {
    const raw = q.get(key);
    if (raw === null) continue;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 0 || (key === 'limitBytes' && n === 0)) return { error: `invalid ${key}: ${raw}` };
    query[key] = n;
  }
  return query;
}

/** Which start of the container to serve, counted from the end of the file (1 = the last). */
export type InstanceChoice = { fromEnd: 1 | 2; live: boolean } | { error: string };

/**
 * The real kubelet's choice (validateContainerLogStatus) on this kubelet's container status:
 * previous = lastState.terminated, else the running or terminated container, else the last
 * terminated one while it waits to restart; errors say why there is nothing to show.
 */
export function chooseInstance(status: V1ContainerStatus, running: boolean, previous: boolean, pod: string): InstanceChoice {
  const name = status.name;
  const waiting = !running && !status.state?.terminated;
  if (previous) {
    if (!status.lastState?.terminated) return { error: `previous terminated container "${name}" in pod "${pod}" not found` };
    // While it waits to restart, lastState is the start that just ended: the last in the file.
    return { fromEnd: waiting ? 1 : 2, live: false };
  }
  if (running) return { fromEnd: 1, live: true };
  if (status.state?.terminated || status.lastState?.terminated) return { fromEnd: 1, live: false };
  const reason = status.state?.waiting?.reason;
  if (reason === 'ErrImagePull') return { error: `container "${name}" in pod "${pod}" is waiting to start: image can't be pulled` };
  if (reason === 'ImagePullBackOff') return { error: `container "${name}" in pod "${pod}" is waiting to start: trying and failing to pull image` };
  if (reason) return { error: `container "${name}" in pod "${pod}" is waiting to start: ${reason}` };
  return { error: `container "${name}" in pod "${pod}" is waiting to start - no logs yet` };
}

export interface FollowStep {
  /** Bytes to send. */
  emit: Buffer;
  /** Bytes of the chunk used up (the rest — a possible header line not complete yet — waits). */
  consumed: number;
  /** The next start's header was reached: the followed instance is over. */
  ended: boolean;
}

/**
 * One read while following: everything up to the next start's header line. A last line that
 * could still become a header (it starts like one and has no '\n' yet) is held back.
 */
export function followStep(chunk: Buffer, atLineStart: boolean, container: string): FollowStep {
  let at = atLineStart ? 0 : chunk.indexOf(0x0a) + 1;
  if (!atLineStart && at === 0) return { emit: chunk, consumed: chunk.length, ended: false };
  while (at < chunk.length) {
    const nl = chunk.indexOf(0x0a, at);
    const line = chunk.toString('utf8', at, nl < 0 ? Math.min(chunk.length, at + 4096) : Math.min(nl, at + 4096));
    if (line.startsWith(HEADER_PREFIX) || HEADER_PREFIX.startsWith(line)) {
      if (nl < 0) return { emit: chunk.subarray(0, at), consumed: at, ended: false };
      if (isHeaderLine(line, container)) return { emit: chunk.subarray(0, at), consumed: at, ended: true };
    }
    if (nl < 0) break;
    at = nl + 1;
  }
  return { emit: chunk, consumed: chunk.length, ended: false };
}

// ---- I/O -----------------------------------------------------------------------------------

export interface LogSink {
  write(data: Buffer): boolean;
  /** Resolves when the sink can take more (after write returned false) or is gone. */
  drained(): Promise<void>;
  readonly closed: boolean;
}

export interface FollowTarget {
  /** Resolves when the followed start of the container has ended. */
  exited: Promise<unknown>;
}

const FOLLOW_POLL_MS = 150;

/**
 * Writes the chosen start's output to the sink: tailLines, then limitBytes; with follow, keeps
 * reading the file until that start ends (its process exited, or the next header appears),
 * the limit is reached or the sink closes. The file is read by one handle, closed at the end.
 */
export async function serveContainerLog(logPath: string, container: string, choice: { fromEnd: 1 | 2 }, query: LogQuery, sink: LogSink, follow?: FollowTarget): Promise<void> {
  let fh: FileHandle;
  try {
    fh = await open(logPath, 'r');
  } catch {
    return; // no output yet
  }
  try {
    const { size } = await fh.stat();
    const buf = Buffer.alloc(size);
    await fh.read(buf, 0, size, 0);
    const ranges = instanceRanges(buf, container);
    const range = ranges[ranges.length - choice.fromEnd];
    if (!range) return;
    let content: Buffer = buf.subarray(range.start, range.end);
    if (query.tailLines !== undefined) content = lastLines(content, query.tailLines);
    let budget = query.limitBytes ?? Infinity;
    const send = async (data: Buffer): Promise<boolean> => {
      const part = data.length > budget ? data.subarray(0, budget) : data;
      budget -= part.length;
      if (part.length && !sink.write(part)) await sink.drained();
      return budget > 0 && !sink.closed;
    };
    if (!(await send(content)) || !follow || choice.fromEnd !== 1) return;
    await followFile(fh, range.end, buf.length === 0 || buf[range.end - 1] === 0x0a || range.end === range.start, container, send, follow);
  } finally {
    await fh.close();
  }
}

async function followFile(fh: FileHandle, from: number, atLineStart: boolean, container: string, send: (b: Buffer) => Promise<boolean>, target: FollowTarget): Promise<void> {
  let exited = false;
  void target.exited.then(() => (exited = true));
  let pos = from;
  let lineStart = atLineStart;
  const chunk = Buffer.alloc(64 * 1024);
  for (;;) {
    const wasExited = exited; // read after the exit: the rest of its output is in the file
    const { bytesRead } = await fh.read(chunk, 0, chunk.length, pos);
    if (bytesRead > 0) {
      const step = followStep(chunk.subarray(0, bytesRead), lineStart, container);
      pos += step.consumed;
      if (step.emit.length) lineStart = step.emit[step.emit.length - 1] === 0x0a;
      if (!(await send(Buffer.from(step.emit))) || step.ended) return;
      if (wasExited && step.consumed < bytesRead) {
        // A last line that looked like the start of a header, but nothing follows: it was output.
        await send(Buffer.from(chunk.subarray(step.consumed, bytesRead)));
        return;
      }
      if (step.consumed === bytesRead && bytesRead === chunk.length) continue; // more to read now
    }
    if (wasExited) return;
    if (!(await send(Buffer.alloc(0)))) return; // the client went away
    await new Promise((r) => setTimeout(r, FOLLOW_POLL_MS));
  }
}
