// Supervises the postmaster as a direct child (never pg_ctl: a killed postmaster started by
// pg_ctl is reaped late by the pod's PID 1 and its lock file then blocks the restart).
// Its stderr becomes JSON log lines (component postgres). A crash is followed by a restart with
// exponential backoff; a postmaster we asked to stop stays stopped.
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { createInterface } from 'node:readline';
import type { Logger } from '../runtime/logger.js';
import { errorText } from '../util/error-text.js';

export type StopMode = 'smart' | 'fast' | 'immediate';
const STOP_SIGNAL: Record<StopMode, NodeJS.Signals> = { smart: 'SIGTERM', fast: 'SIGINT', immediate: 'SIGQUIT' };

export interface PostgresProcessOptions {
  /** Path of the postgres binary. */
  binary: string;
  /** Arguments, computed at each start (the role and settings may have changed in between). */
  args: () => string[];
  log: Logger;
  /** Logger with component postgres, for the server's own lines. */
  serverLog: Logger;
  /** One connection attempt (SELECT 1); true once postgres accepts connections. */
  probe: () => Promise<boolean>;
  probeIntervalMs?: number;
  /**
   * Runs (synchronously) before every spawn, restarts after a crash included: the agent decides
   * there whether a former primary's data directory may come up writable.
   */
  beforeSpawn?: () => void;
}

const BENIGN_FATAL = /FATAL: {2}(the database system is (starting up|shutting down|not yet accepting connections)|terminating walreceiver process due to administrator command)/;

/** Severity of a server log line ("2024-.. [123] FATAL:  ...") for the JSON log level. */
export function serverLineLevel(line: string): 'debug' | 'info' | 'warn' | 'error' {
  // FATALs that are part of normal operation: readiness probes during startup, shutdown of a
  // walreceiver, a repoint.
  if (BENIGN_FATAL.test(line)) return 'info';
  const m = /\b(DEBUG\d?|LOG|INFO|NOTICE|WARNING|ERROR|FATAL|PANIC|DETAIL|HINT|STATEMENT|CONTEXT):/.exec(line);
  switch (m?.[1]) {
    case 'WARNING':
      return 'warn';
    case 'ERROR':
    case 'FATAL':
    case 'PANIC':
      return 'error';
    case undefined:
    case 'LOG':
    case 'INFO':
    case 'NOTICE':
    case 'DETAIL':
    case 'HINT':
    case 'CONTEXT':
    case 'STATEMENT':
      return 'info';
    default:
      return 'debug';
  }
}

/** Restart delay after `failures` consecutive crashes: 100 ms doubling up to 10 s. */
export function restartDelayMs(failures: number): number {
  return Math.min(10_000, 100 * 2 ** Math.max(0, failures - 1));
}

interface Events {
  ready: [];
  /** One line of the server's log. */
  line: [line: string];
  exit: [code: number | null, signal: NodeJS.Signals | null, expected: boolean];
}

export class PostgresProcess extends EventEmitter<Events> {
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private wanted = false;
  /** Set by shutdown(): nothing may start postgres again. */
  private closed = false;
  private restartTimer: NodeJS.Timeout | undefined;
  private probeTimer: NodeJS.Timeout | undefined;
  private _ready = false;
  /** Crashes since the last time postgres was ready (crash loop detection). */
  private consecutiveFailures = 0;
  /**
   * Crashes of a postmaster that had accepted connections, each followed by a restart, since the
   * agent started. Retries of a restart that failed again (e.g. the killed postmaster's backends
   * still hold its shared memory for a moment) count in consecutiveFailures only.
   */
  restarts = 0;
  lastExit: string | null = null;
  /** Whether an unexpected exit is followed by a restart (start()'s option). */
  private restartOnCrash = true;
  /** The server's last log lines (for error messages: why did recovery stop?). */
  private readonly recent: string[] = [];

  constructor(private readonly opts: PostgresProcessOptions) {
    super();
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }
  get running(): boolean {
    return this.child !== undefined;
  }
  get ready(): boolean {
    return this._ready;
  }
  get crashLooping(): boolean {
    return this.consecutiveFailures >= 5;
  }

  /**
   * Starts postgres (no-op when running) and keeps it running until stop(). With
   * `restartOnCrash: false` (recovery of a restore: a FATAL exit is the answer, not a hiccup), an
   * exit ends it: nothing restarts it and waitReady() rejects.
   */
  start(opts: { restartOnCrash?: boolean } = {}): void {
    if (this.closed) throw new Error('the agent is shutting down');
    this.restartOnCrash = opts.restartOnCrash ?? true;
    this.wanted = true;
    if (this.child || this.restartTimer) return;
    this.recent.length = 0;
    this.spawnOnce();
  }

  private spawnOnce(): void {
    this.restartTimer = undefined;
    try {
      this.opts.beforeSpawn?.();
    } catch (err) {
      this.opts.log.error({ err: errorText(err) }, 'cannot prepare the data directory for a start');
    }
    const args = this.opts.args();
    const child = spawn(this.opts.binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    this._ready = false;
    this.opts.log.info({ pid: child.pid, args }, 'postgres started');
    for (const stream of [child.stdout!, child.stderr!]) {
      createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => {
        if (!line.trim()) return;
        this.opts.serverLog[serverLineLevel(line)](line);
        this.recent.push(line);
        if (this.recent.length > 100) this.recent.shift();
        this.emit('line', line);
      });
    }
    let resolveExit!: () => void;
    this.exited = new Promise((r) => (resolveExit = r));
    child.on('error', (err) => {
      this.opts.log.error({ err: err.message }, 'cannot start postgres');
      // A failed spawn emits no 'exit': treat it as a crash so the backoff applies.
      if (child.pid === undefined) {
        this.onExit(child, null, null);
        resolveExit();
      }
    });
    child.on('exit', (code, signal) => {
      // 'exit' (not 'close'): the postmaster's children may hold the pipes a little longer.
      this.onExit(child, code, signal);
      resolveExit();
    });
    this.pollReady(child);
  }

  private pollReady(child: ChildProcess): void {
    const tick = async () => {
      if (this.child !== child) return;
      let ok = false;
      try {
        ok = await this.opts.probe();
      } catch {
        ok = false;
      }
      if (this.child !== child) return;
      if (ok) {
        this._ready = true;
        this.consecutiveFailures = 0;
        this.opts.log.info({ pid: child.pid }, 'postgres accepts connections');
        this.emit('ready');
        return;
      }
      this.probeTimer = setTimeout(() => void tick(), this.opts.probeIntervalMs ?? 100);
    };
    this.probeTimer = setTimeout(() => void tick(), 50);
  }

  private onExit(child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (this.child !== child) return;
    this.child = undefined;
    clearTimeout(this.probeTimer);
    this.lastExit = signal ? `signal ${signal}` : `exit code ${code}`;
    const expected = !this.wanted;
    const wasReady = this._ready;
    this._ready = false;
    if (!expected && !this.restartOnCrash) this.wanted = false;
    this.emit('exit', code, signal, expected);
    if (expected) {
      this.opts.log.info({ pid: child.pid, code, signal }, 'postgres stopped');
      return;
    }
    if (!this.restartOnCrash) {
      this.opts.log.warn({ pid: child.pid, code, signal }, 'postgres exited; not restarting it');
      return;
    }
    this.consecutiveFailures++;
    if (wasReady) this.restarts++;
    const delay = restartDelayMs(this.consecutiveFailures);
    this.opts.log.warn({ pid: child.pid, code, signal, restarts: this.restarts, delayMs: delay }, 'postgres exited unexpectedly; restarting');
    this.restartTimer = setTimeout(() => this.spawnOnce(), delay);
  }

  /** Resolves once postgres accepts connections; rejects when it is stopped or on timeout. */
  waitReady(timeoutMs: number): Promise<void> {
    if (this._ready) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const cleanup = () => {
        clearTimeout(timer);
        this.off('ready', onReady);
        this.off('exit', onExit);
      };
      const onReady = () => {
        cleanup();
        resolve();
      };
      const onExit = (_c: number | null, _s: NodeJS.Signals | null, expected: boolean) => {
        if (!expected && this.wanted) return; // crash: the restart may still become ready
        cleanup();
        reject(new Error(expected ? 'postgres was stopped before it accepted connections' : `postgres exited before it accepted connections (${this.lastExit ?? 'unknown'})`));
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`postgres did not accept connections within ${Math.round(timeoutMs / 1000)} s (last exit: ${this.lastExit ?? 'none'})`));
      }, timeoutMs);
      this.on('ready', onReady);
      this.on('exit', onExit);
    });
  }

  /** The server's last log lines (at most 100), oldest first. */
  recentServerLines(): string[] {
    return [...this.recent];
  }

  /** Stops postgres with one mode and waits for the postmaster to exit. */
  async stop(mode: StopMode): Promise<void> {
    this.wanted = false;
    clearTimeout(this.restartTimer);
    this.restartTimer = undefined;
    const child = this.child;
    if (!child) return;
    this.opts.log.info({ pid: child.pid, mode }, 'stopping postgres');
    child.kill(STOP_SIGNAL[mode]);
    await this.exited;
  }

  /**
   * Stops postgres within `budgetMs` whatever it waits for (clients, archive_command of WAL that
   * nobody will keep, a store that is down): `first` at once, fast at half the budget when first
   * is smart, immediate near the end. Immediate skips the shutdown checkpoint; crash recovery (or
   * pg_rewind's own single-user recovery) replays it later.
   */
  async stopWithin(budgetMs: number, first: StopMode = 'fast'): Promise<void> {
    const child = this.child;
    const done = this.stop(first);
    if (!child) return done;
    const escalate = (mode: StopMode, at: number) =>
      setTimeout(() => {
        if (this.child === child) {
          this.opts.log.warn({ pid: child.pid, mode }, `postgres still running after ${(at / 1000).toFixed(1)} s; escalating`);
          child.kill(STOP_SIGNAL[mode]);
        }
      }, at);
    const immediateAt = Math.max(budgetMs / 2, budgetMs - Math.min(3000, budgetMs / 10));
    const timers = [...(first === 'smart' ? [escalate('fast', budgetMs / 2)] : []), escalate('immediate', first === 'smart' ? immediateAt : budgetMs)];
    try {
      await done;
    } finally {
      for (const t of timers) clearTimeout(t);
    }
  }

  /** Agent shutdown within `budgetMs` (smart → fast → immediate); nothing starts postgres again. */
  async shutdown(budgetMs: number): Promise<void> {
    this.closed = true;
    await this.stopWithin(budgetMs, 'smart');
  }
}
