// A PostgreSQL server the upgrade Jobs start for a moment: on a unix socket in a private folder
// only (listen_addresses=''), with trust for that socket through an hba_file of our own, so
// nothing but this Job can reach it and the data directory's pg_hba.conf does not matter.
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { TRUST_LOCAL_HBA } from '../postgres/pg-upgrade.js';
import type { Logger } from '../runtime/logger.js';
import { JobFailure } from './tools.js';

/** Any port will do: with listen_addresses='' it only names the socket file in our private folder. */
export const PRIVATE_PORT = 50432;

export interface TempServer {
  socketDir: string;
  port: number;
  /** Fast shutdown; rejects when postgres does not exit cleanly. */
  stop(): Promise<void>;
}

/** Writes the trust hba file into `dir` and returns its path. */
export async function writeTrustHba(dir: string): Promise<string> {
  const file = join(dir, 'pgpilot-upgrade-hba.conf');
  await writeFile(file, TRUST_LOCAL_HBA, { mode: 0o600 });
  return file;
}

/** Starts postgres of `bin` on `pgdata`, socket and hba file in `dir`; resolves once it accepts connections. */
export async function startTempServer(bin: string, pgdata: string, dir: string, log: Logger, timeoutMs = 600_000): Promise<TempServer> {
  const hba = await writeTrustHba(dir);
  const args = ['-D', pgdata, '-c', 'listen_addresses=', '-c', `unix_socket_directories=${dir}`, '-c', `port=${PRIVATE_PORT}`, '-c', `hba_file=${hba}`, '-c', 'archive_mode=off',
    // Its "ready to accept connections" must reach our stderr, in English.
    '-c', 'logging_collector=off', '-c', 'log_destination=stderr', '-c', 'lc_messages=C'];
  log.info({ bin, pgdata }, 'starting a private PostgreSQL server');
  const child = spawn(join(bin, 'postgres'), args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LC_MESSAGES: 'C' } });
  const output: string[] = [];
  for (const s of [child.stdout, child.stderr]) {
    s.setEncoding('utf8');
    s.on('data', (d: string) => {
      for (const line of d.split('\n').filter(Boolean)) {
        output.push(line);
        if (output.length > 50) output.shift();
        log.debug({ tool: 'postgres' }, line);
      }
    });
  }
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  child.on('error', () => undefined);
  const until = Date.now() + timeoutMs;
  // pg_isready would need a client library path of its own; the server says when it is ready.
  while (!output.some((l) => l.includes('database system is ready to accept connections'))) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new JobFailure(`PostgreSQL (${bin}) did not start on ${pgdata}: ${output.slice(-5).join(' | ')}`);
    }
    if (Date.now() > until) {
      child.kill('SIGQUIT');
      throw new JobFailure(`PostgreSQL (${bin}) did not accept connections on ${pgdata} within ${timeoutMs / 1000} s: ${output.slice(-5).join(' | ')}`);
    }
    await sleep(100);
  }
  return {
    socketDir: dir,
    port: PRIVATE_PORT,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGINT');
      const code = await exited;
      if (code !== 0) throw new JobFailure(`PostgreSQL on ${pgdata} did not shut down cleanly (exit code ${code}): ${output.slice(-5).join(' | ')}`);
      log.info({ pgdata }, 'private PostgreSQL server stopped');
    },
  };
}
