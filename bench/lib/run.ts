// Running benchmarks: child processes run to completion (output collected, a timeout) and
// remembered so a cleanup can kill them by pid; a suite run to its end with a watchdog.
import { spawn, type ChildProcess } from 'node:child_process';

const running = new Set<ChildProcess>();

export function killRunningChildren(): void {
  for (const c of running) if (c.exitCode === null && c.signalCode === null && c.pid) process.kill(c.pid, 'SIGKILL');
}

/** Resolves with stdout+stderr on exit 0; otherwise rejects naming `label` with the output's tail. */
export function runTracked(cmd: string, args: string[], o: { label: string; env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number }): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: o.env ?? process.env, cwd: o.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    running.add(child);
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => child.pid && process.kill(child.pid, 'SIGKILL'), o.timeoutMs ?? 300_000);
    const done = () => {
      clearTimeout(timer);
      running.delete(child);
    };
    child.once('error', (err) => {
      done();
      reject(err);
    });
    child.once('close', (code, signal) => {
      done();
      if (code === 0) resolve(out);
      else reject(new Error(`${o.label} exited ${code ?? signal}: ${out.trim().slice(-1500)}`));
    });
  });
}

/**
 * Runs a suite's main to the end, then its cleanup, and exits: 0 on success, 1 on a failure or
 * when the whole run outlasts `timeoutMs` (a hung benchmark stops by itself). The exit is
 * explicit: whatever handle a client library left open, the run is over.
 */
export async function runSuite(name: string, main: () => Promise<void>, cleanup: () => Promise<void>, timeoutMs: number): Promise<never> {
  const watchdog = setTimeout(() => {
    process.stderr.write(`[${name}] still running after ${timeoutMs / 60_000} min: giving up\n`);
    void cleanup().finally(() => process.exit(1));
  }, timeoutMs);
  watchdog.unref();
  try {
    await main();
    await cleanup();
    clearTimeout(watchdog);
    process.exit(0);
  } catch (err) {
    console.error(`[${name}] failed: ${(err as Error).stack ?? String(err)}`);
    await cleanup();
    process.exit(1);
  }
}

/**
 * What a suite started, stopped on success, failure, SIGINT/SIGTERM or the overall timeout, last
 * registered first; `cleanup` runs once however often it is called.
 */
export function cleanupRegistry(say: (msg: string) => void): { onCleanup: (what: string, run: () => Promise<unknown>) => void; cleanup: () => Promise<void> } {
  const cleanups: Array<{ what: string; run: () => Promise<unknown> }> = [];
  let cleaning: Promise<void> | undefined;
  const cleanup = (): Promise<void> =>
    (cleaning ??= (async () => {
      while (cleanups.length > 0) {
        const c = cleanups.pop()!;
        await c.run().catch((err: Error) => say(`cleanup of ${c.what} failed: ${err.message}`));
      }
    })());
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      say(`${sig}: cleaning up`);
      void cleanup().finally(() => process.exit(130));
    });
  }
  return { onCleanup: (what, run) => void cleanups.push({ what, run }), cleanup };
}
