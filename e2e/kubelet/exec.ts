// POST /exec/{namespace}/{pod}/{container}?command=...&input=1&output=1&error=1&tty=1 of the
// process kubelet's API: the remotecommand protocol (v4.channel.k8s.io, also v3/v2) over SPDY/3.1
// (spdy.ts), as the apiserver speaks it to a kubelet. The client opens the streams (a
// `streamType` header each: error, stdin, stdout, stderr, resize); the exit status goes on the
// error stream as a metav1.Status (v4) or a message (v2/v3).
//
// The command runs inside the container: a shell joins the container's cgroup (killContainer and
// freeze reach it), then nsenter enters the container's mount + UTS namespaces and working
// directory, setpriv takes the container's user, groups and no_new_privs, with the container's
// environment. tty=1 puts a Python pty helper between setpriv and the command: it owns the
// terminal, applies resize events and sets TERM (xterm when the container has none).
import { spawn, type ChildProcess } from 'node:child_process';
import type { Duplex, Writable } from 'node:stream';
import type { Logger } from '../../src/runtime/logger.js';
import type { ProcessUser } from './sandbox.js';
import { dataFrame, FrameParser, goawayFrame, HeaderCompressor, MAX_DATA, pingFrame, RST, rstStreamFrame, synReplyFrame, type Frame } from './spdy.js';

// ---- pure parts ----------------------------------------------------------------------------

export const PROTOCOLS = ['v4.channel.k8s.io', 'v3.channel.k8s.io', 'v2.channel.k8s.io'] as const;
export type Protocol = (typeof PROTOCOLS)[number];

export interface ExecOptions {
  command: string[];
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  tty: boolean;
}

/** remotecommand's NewOptions: the flags are `1` when set; at least one stream. */
export function parseExecQuery(q: URLSearchParams): ExecOptions | { error: string } {
  const opts = { command: q.getAll('command'), stdin: q.get('input') === '1', stdout: q.get('output') === '1', stderr: q.get('error') === '1', tty: q.get('tty') === '1' };
  if (!opts.stdin && !opts.stdout && !opts.stderr) return { error: 'you must specify at least 1 of stdin, stdout, stderr' };
  if (!opts.command.length) return { error: 'you must specify a command' };
  return opts;
}

/** The first protocol the client offers (its order) that this kubelet speaks, as httpstream.Handshake does. */
export function negotiateProtocol(offered: string[]): Protocol | undefined {
  const list = offered.flatMap((h) => h.split(',')).map((s) => s.trim());
  return list.find((p): p is Protocol => (PROTOCOLS as readonly string[]).includes(p));
}

/** The streams the client opens for these options (remotecommand's expected streams). */
export function expectedStreams(opts: ExecOptions, protocol: Protocol): string[] {
  return [
    'error',
    ...(opts.stdin ? ['stdin'] : []),
    ...(opts.stdout ? ['stdout'] : []),
    ...(opts.stderr && !opts.tty ? ['stderr'] : []),
    ...(opts.tty && protocol !== 'v2.channel.k8s.io' ? ['resize'] : []),
  ];
}

/**
 * What goes on the error stream when the command is done: v4 a metav1.Status (kubectl exits
 * with the ExitCode cause), v2/v3 the message of a failure and nothing on success.
 */
export function exitReport(protocol: Protocol, exit: { code: number } | { error: string }): Buffer {
  const status =
    'error' in exit
      ? { metadata: {}, status: 'Failure', message: `error executing command in container: ${exit.error}`, reason: 'InternalError', details: { causes: [{ message: exit.error }] }, code: 500 }
      : exit.code === 0
        ? { metadata: {}, status: 'Success' }
        : {
            metadata: {},
            status: 'Failure',
            message: `command terminated with non-zero exit code: exit status ${exit.code}`,
            reason: 'NonZeroExitCode',
            details: { causes: [{ reason: 'ExitCode', message: String(exit.code) }] },
          };
  if (protocol === 'v4.channel.k8s.io') return Buffer.from(JSON.stringify(status));
  return status.status === 'Success' ? Buffer.alloc(0) : Buffer.from(status.message ?? '');
}

export interface TerminalSize {
  width: number;
  height: number;
}

/** Resize events: JSON objects {"Width":w,"Height":h}, one after another (newlines optional). */
export function parseResize(buf: string): { sizes: TerminalSize[]; rest: string } {
  const sizes: TerminalSize[] = [];
  let at = 0;
  for (;;) {
    const open = buf.indexOf('{', at);
    if (open < 0) return { sizes, rest: '' };
    const close = buf.indexOf('}', open);
    if (close < 0) return { sizes, rest: buf.slice(open) };
    at = close + 1;
    try {
      const m = JSON.parse(buf.slice(open, close + 1)) as { Width?: unknown; Height?: unknown };
      if (typeof m.Width === 'number' && typeof m.Height === 'number') sizes.push({ width: m.Width, height: m.Height });
    } catch {
      /* not a size: skipped, as the kubelet's decoder would give up on it */
    }
  }
}

/** Everything exec needs to know about the running container. */
export interface ExecTarget {
  /** Main pid of the container (its namespaces). */
  pid: number;
  cgroupDir?: string;
  env: Record<string, string>;
  user?: ProcessUser;
  noNewPrivs: boolean;
  workingDir: string;
}

// The pty: login_tty on a fresh pty's slave for the command; the parent copies stdin → master
// (stdin's end becomes ^D), master → stdout, and reads "rows cols" lines from fd 3 (resize).
const PTY_HELPER = `
import os, sys, select, fcntl, termios, struct, errno
use_stdin = sys.argv[1] == '1'
argv = sys.argv[2:]
master, slave = os.openpty()
def resize(line):
    try:
        rows, cols = (int(x) for x in line.split())
        fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack('HHHH', rows, cols, 0, 0))
    except Exception:
        pass
def write_all(fd, data):
    while data:
        data = data[os.write(fd, data):]
ctl = 3
try:
    os.fstat(ctl)
except OSError:
    ctl = None
pending = b''
def read_ctl():
    global pending
    data = os.read(ctl, 4096)
    if not data:
        return False
    pending += data
    while b'\\n' in pending:
        line, pending = pending.split(b'\\n', 1)
        resize(line)
    return True
# The client sends the terminal's size first thing: take it before the command starts.
if ctl is not None and select.select([ctl], [], [], 0.5)[0]:
    if not read_ctl():
        ctl = None
pid = os.fork()
if pid == 0:
    os.close(master)
    if ctl is not None:
        os.close(ctl)
    os.login_tty(slave)
    try:
        os.execvp(argv[0], argv)
    except OSError as e:
        os.write(2, ('%s: %s\\r\\n' % (argv[0], e.strerror)).encode())
        os._exit(127 if e.errno == errno.ENOENT else 126)
os.close(slave)
fds = [master] + ([0] if use_stdin else []) + ([ctl] if ctl is not None else [])
while True:
    ready = select.select(fds, [], [])[0]
    if master in ready:
        try:
            data = os.read(master, 65536)
        except OSError:
            data = b''
        if not data:
            break
        write_all(1, data)
    if 0 in ready:
        data = os.read(0, 65536)
        if data:
            write_all(master, data)
        else:
            fds.remove(0)
            write_all(master, b'\\x04')
    if ctl is not None and ctl in ready and not read_ctl():
        fds.remove(ctl)
status = os.waitpid(pid, 0)[1]
code = os.waitstatus_to_exitcode(status)
sys.exit(128 - code if code < 0 else code)
`;

const JOIN_CGROUP = '[ "$1" = - ] || echo $$ > "$1/cgroup.procs" || exit 126; shift; exec "$@"';

/** The process chain: sh (cgroup) → nsenter (namespaces, cwd) → setpriv (user) → [pty helper] → command. */
export function execArgv(target: ExecTarget, opts: ExecOptions): string[] {
  const u = target.user;
  const priv = u
    ? ['/usr/bin/setpriv', `--reuid=${u.uid}`, `--regid=${u.gid}`, ...(u.groups.length ? [`--groups=${u.groups.join(',')}`] : ['--clear-groups']), ...(target.noNewPrivs ? ['--no-new-privs'] : []), '--']
    : target.noNewPrivs
      ? ['/usr/bin/setpriv', '--no-new-privs', '--']
      : [];
  return [
    '/bin/sh',
    '-c',
    JOIN_CGROUP,
    'sh',
    target.cgroupDir ?? '-',
    '/usr/bin/nsenter',
    `--target=${target.pid}`,
    '--mount',
    '--uts',
    `--wdns=${target.workingDir}`,
    '--',
    ...priv,
    ...(opts.tty ? ['/usr/bin/python3', '-c', PTY_HELPER, opts.stdin ? '1' : '0'] : []),
    ...opts.command,
  ];
}

export function execEnv(target: ExecTarget, opts: ExecOptions): Record<string, string> {
  return opts.tty ? { TERM: 'xterm', ...target.env } : { ...target.env };
}

// ---- the session (I/O) ---------------------------------------------------------------------

const STREAM_WAIT_MS = 30_000;

/**
 * One exec over an upgraded connection: replies to each stream the client opens, starts the
 * command once the expected streams are there, copies stdin/stdout/stderr/resize, reports the
 * exit and closes the connection. A connection that goes away kills the command.
 */
export class ExecSession {
  private readonly parser = new FrameParser();
  private readonly compressor = new HeaderCompressor();
  private readonly streams = new Map<string, number>(); // streamType → stream id
  private readonly expected: string[];
  private child?: ChildProcess;
  private finished = false;
  private resizeText = '';
  private lastStreamId = 0;
  private readonly waitTimer: NodeJS.Timeout;
  readonly done: Promise<void>;
  private resolveDone!: () => void;

  constructor(
    private readonly socket: Duplex,
    private readonly protocol: Protocol,
    private readonly opts: ExecOptions,
    private readonly target: ExecTarget,
    private readonly log: Logger,
    head: Buffer,
  ) {
    this.expected = expectedStreams(opts, protocol);
    this.done = new Promise((r) => (this.resolveDone = r));
    this.waitTimer = setTimeout(() => this.fail('timed out waiting for the client to create streams'), STREAM_WAIT_MS);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', () => undefined);
    socket.on('close', () => this.onClose());
    if (head.length) this.onData(head);
  }

  /** Ends the command and the connection (the kubelet stops). */
  kill(): void {
    this.killChild();
    this.socket.destroy();
  }

  private send(frame: Buffer): boolean {
    if (this.socket.destroyed) return false;
    return this.socket.write(frame);
  }

  private onData(chunk: Buffer): void {
    let frames: Frame[];
    try {
      frames = this.parser.push(chunk);
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'exec: SPDY protocol error');
      this.kill();
      return;
    }
    for (const f of frames) this.onFrame(f);
  }

  private onFrame(f: Frame): void {
    switch (f.type) {
      case 'syn_stream':
        return this.onStream(f.streamId, f.headers.streamtype?.[0] ?? '', f.fin);
      case 'data':
        return this.onStreamData(f.streamId, f.data, f.fin);
      case 'rst_stream':
        return this.onStreamData(f.streamId, Buffer.alloc(0), true);
      case 'ping':
        this.send(pingFrame(f.id));
        return;
      default:
        return; // settings, window updates, goaway: nothing to do for a one-shot session
    }
  }

  private onStream(id: number, type: string, fin: boolean): void {
    this.lastStreamId = Math.max(this.lastStreamId, id);
    if (!this.expected.includes(type) || this.streams.has(type)) {
      this.send(rstStreamFrame(id, RST.REFUSED_STREAM));
      return;
    }
    this.streams.set(type, id);
    this.send(synReplyFrame(this.compressor, id));
    if (fin) this.onStreamData(id, Buffer.alloc(0), true);
    if (!this.child && this.expected.every((t) => this.streams.has(t))) this.start();
  }

  private typeOf(id: number): string | undefined {
    for (const [type, sid] of this.streams) if (sid === id) return type;
    return undefined;
  }

  private onStreamData(id: number, data: Buffer, fin: boolean): void {
    const type = this.typeOf(id);
    const stdin = this.child?.stdin;
    if (type === 'stdin' && stdin && !stdin.writableEnded) {
      if (data.length) stdin.write(data);
      if (fin) stdin.end();
    } else if (type === 'resize' && data.length) {
      const { sizes, rest } = parseResize(this.resizeText + data.toString('utf8'));
      this.resizeText = rest;
      const ctl = this.child?.stdio[3] as Writable | null | undefined;
      for (const s of sizes) ctl?.write(`${s.height} ${s.width}\n`);
    }
  }

  private start(): void {
    clearTimeout(this.waitTimer);
    const argv = execArgv(this.target, this.opts);
    const child = spawn(argv[0]!, argv.slice(1), {
      env: execEnv(this.target, this.opts),
      stdio: [this.opts.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe', this.opts.tty ? 'pipe' : 'ignore'],
      detached: true, // its own process group: killed as a whole when the client goes away
    });
    this.child = child;
    child.stdin?.on('error', () => undefined); // the command may exit before reading all
    (child.stdio[3] as Writable | null)?.on('error', () => undefined);
    const stdoutId = this.streams.get('stdout');
    // With a tty there is no stderr stream: the helper's own complaints go to stdout.
    const stderrId = this.streams.get('stderr') ?? (this.opts.tty ? stdoutId : undefined);
    this.pipe(child.stdout!, stdoutId);
    this.pipe(child.stderr!, stderrId);
    let spawnError: string | undefined;
    child.on('error', (err) => (spawnError = err.message));
    child.on('close', (code, signal) => {
      const exit = spawnError ? { error: spawnError } : { code: code ?? 128 + signalNumber(signal) };
      this.finish(exit);
    });
  }

  /** Output → DATA frames; the child waits while the connection's buffer is full. */
  private pipe(from: NodeJS.ReadableStream & { pause(): void; resume(): void }, streamId: number | undefined): void {
    from.on('data', (chunk: Buffer) => {
      if (streamId === undefined) return;
      for (let at = 0; at < chunk.length; at += MAX_DATA) {
        if (!this.send(dataFrame(streamId, chunk.subarray(at, at + MAX_DATA)))) {
          from.pause();
          this.socket.once('drain', () => from.resume());
        }
      }
    });
  }

  /** Output streams end, the status goes on the error stream, every stream ends, then the connection. */
  private finish(exit: { code: number } | { error: string }): void {
    if (this.finished) return;
    this.finished = true;
    for (const type of ['stdout', 'stderr']) {
      const id = this.streams.get(type);
      if (id !== undefined) this.send(dataFrame(id, Buffer.alloc(0), true));
    }
    const errorId = this.streams.get('error');
    if (errorId !== undefined) {
      const report = exitReport(this.protocol, exit);
      if (report.length) this.send(dataFrame(errorId, report));
      this.send(dataFrame(errorId, Buffer.alloc(0), true));
    }
    for (const type of ['stdin', 'resize']) {
      const id = this.streams.get(type);
      if (id !== undefined) this.send(dataFrame(id, Buffer.alloc(0), true));
    }
    this.send(goawayFrame(this.lastStreamId));
    this.socket.end();
    // A client that never closes its side does not keep the socket open for long.
    setTimeout(() => this.socket.destroy(), 5000).unref();
    this.log.debug({ command: this.opts.command, exit }, 'exec finished');
  }

  private fail(message: string): void {
    this.log.warn({ command: this.opts.command }, `exec: ${message}`);
    this.finish({ error: message });
  }

  private killChild(): void {
    const pid = this.child?.pid;
    if (pid && this.child?.exitCode === null && this.child.signalCode === null) {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  }

  private onClose(): void {
    clearTimeout(this.waitTimer);
    this.finished = true;
    this.killChild();
    this.resolveDone();
  }
}

const SIGNALS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGABRT: 6, SIGKILL: 9, SIGSEGV: 11, SIGPIPE: 13, SIGTERM: 15 };
function signalNumber(signal: NodeJS.Signals | null): number {
  return SIGNALS[signal ?? ''] ?? 0;
}
