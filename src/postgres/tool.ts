// Runs PostgreSQL's command-line tools (initdb, pg_basebackup, pg_rewind) with their output in
// the agent's log. Secrets never reach the command line: they go through files named by env.
import { spawn, type ChildProcess } from 'node:child_process';
import type { Readable } from 'node:stream';
import type { Logger } from '../runtime/logger.js';

export class ToolError extends Error {
  constructor(
    readonly tool: string,
    readonly exitCode: number | null,
    readonly signal: NodeJS.Signals | null,
    readonly output: string[],
  ) {
    super(`${tool} failed (${signal ? `signal ${signal}` : `exit code ${exitCode}`}): ${output.slice(-5).join(' | ') || 'no output'}`);
    this.name = 'ToolError';
  }
}

export interface ToolResult {
  output: string[];
}

const running = new Set<ChildProcess>();

/** Stops tools still running (agent shutdown): each is our child, so we also wait for it. */
export function killRunningTools(signal: NodeJS.Signals = 'SIGTERM'): void {
  for (const c of running) c.kill(signal);
}

export interface RunToolOptions {
  env?: Record<string, string | undefined>;
  log: Logger;
  /** Progress lines (pg_basebackup -P rewrites one line with \r) are logged at most this often. */
  progressEveryMs?: number;
  /** Log level of the tool's lines (default info). */
  outputLevel?: 'info' | 'debug';
  /** Each line of output as it comes. */
  onLine?: (line: string) => void;
  /**
   * Takes stdout as it is, unread (binary: `pg_basebackup -D -` writes a tar there); called once,
   * right after the spawn. Only stderr is then read as lines.
   */
  stdout?: (stream: Readable) => void;
  /** Stops the tool (SIGTERM) when aborted; the promise then rejects with its ToolError. */
  signal?: AbortSignal;
}

export function runTool(path: string, args: string[], opts: RunToolOptions): Promise<ToolResult> {
  const tool = path.split('/').pop() ?? path;
  const started = Date.now();
  opts.log.info({ tool, args }, `running ${tool}`);
  return new Promise((resolve, reject) => {
    const child = spawn(path, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...opts.env } });
    running.add(child);
    const stop = () => child.kill('SIGTERM');
    opts.signal?.addEventListener('abort', stop, { once: true });
    opts.stdout?.(child.stdout);
    const output: string[] = [];
    let lastProgress = 0;
    const onLine = (line: string) => {
      const text = line.trim();
      if (!text) return;
      output.push(text);
      if (output.length > 200) output.shift();
      opts.onLine?.(text);
      // pg_basebackup -P: "12345/67890 kB (18%), 0/1 tablespace"
      if (/\(\d+%\)/.test(text)) {
        const now = Date.now();
        if (now - lastProgress < (opts.progressEveryMs ?? 1000)) return;
        lastProgress = now;
      }
      opts.log[opts.outputLevel ?? 'info']({ tool }, text);
    };
    for (const stream of opts.stdout ? [child.stderr] : [child.stdout, child.stderr]) {
      // \r-separated progress updates become lines of their own.
      let buf = '';
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => {
        buf += chunk;
        const parts = buf.split(/\r\n|\r|\n/);
        buf = parts.pop() ?? '';
        for (const p of parts) onLine(p);
      });
      stream.on('end', () => {
        if (buf) onLine(buf);
        buf = '';
      });
    }
    child.on('error', (err) => {
      running.delete(child);
      opts.signal?.removeEventListener('abort', stop);
      reject(new Error(`cannot run ${path}: ${err.message}`));
    });
    child.on('close', (code, signal) => {
      running.delete(child);
      opts.signal?.removeEventListener('abort', stop);
      const ms = Date.now() - started;
      if (code === 0) {
        opts.log.info({ tool, ms }, `${tool} finished`);
        resolve({ output });
      } else {
        reject(new ToolError(tool, code, signal, output));
      }
    });
  });
}
