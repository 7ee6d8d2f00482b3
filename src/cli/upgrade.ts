// `pgpilot upgrade copy-install <dest> | check | run`: the commands of a major version upgrade's
// Job pods (the operator builds the Jobs; src/upgrade-job/ does the work; settings are read by
// src/upgrade-job/settings.ts, which lists the variables).
//
// Logs are JSON lines on stdout. Exit codes: 0 done (or done already), 1 failed: the last line is
// {"level":"error","msg":"<what failed, in PostgreSQL's or pg_upgrade's words>"} (the pod's
// FallbackToLogsOnError termination message, shown in the cluster's condition), 2 bad environment
// or arguments (the message names the variable).
import { Command, CommanderError } from 'commander';
import { isAbsolute } from 'node:path';
import { EnvError } from '../util/env-error.js';
import { killRunningTools } from '../postgres/tool.js';
import { createLogger, type Logger, type LogLevel } from '../runtime/logger.js';
import { copyInstall } from '../upgrade-job/copy-install.js';
import { readCheckSettings, readLogLevel, readRunSettings } from '../upgrade-job/settings.js';
import { errorText } from '../util/error-text.js';
import { EXIT_FAILED, EXIT_OK, EXIT_USAGE, OptionError } from './exit-codes.js';

type Env = Record<string, string | undefined>;

/**
 * Reads the settings (EnvError/OptionError: exit 2), runs `body` (any error: exit 1) and logs the
 * error as the last line. SIGTERM stops the running tool, so that `body` fails (and rolls back).
 */
export async function runUpgradeJob<S>(step: string, env: Env, read: (env: Env) => S, body: (settings: S, log: Logger) => Promise<unknown>): Promise<number> {
  let level: LogLevel = 'info';
  try {
    level = readLogLevel(env);
  } catch {
    /* reported below by read() */
  }
  // Synchronous: the reason a failure logs last is the last line of the output (the termination message).
  const log = createLogger(level, 'upgrade', { sync: true }).child({ step });
  let settings: S;
  try {
    settings = read(env);
  } catch (err) {
    if (!(err instanceof EnvError || err instanceof OptionError)) throw err;
    log.error({ ...(err instanceof EnvError ? { variable: err.variable } : {}) }, errorText(err));
    return flushed(log, EXIT_USAGE);
  }
  const onSignal = (signal: NodeJS.Signals) => {
    log.warn({ signal }, 'asked to stop: stopping the running tool');
    killRunningTools('SIGTERM');
  };
  process.on('SIGTERM', onSignal);
  try {
    await body(settings, log);
    return await flushed(log, EXIT_OK);
  } catch (err) {
    log.error({ err: err instanceof Error && err.name !== 'JobFailure' ? err.stack : undefined }, errorText(err));
    return await flushed(log, EXIT_FAILED);
  } finally {
    process.off('SIGTERM', onSignal);
  }
}

function readDest(dest: string): string {
  if (!isAbsolute(dest)) throw new OptionError('<dest>', `must be an absolute path (got ${JSON.stringify(dest)})`);
  return dest;
}

/** Returns `code` once the log is written out: its last line is the pod's termination message. */
function flushed(log: Logger, code: number): Promise<number> {
  return new Promise((resolve) => log.flush(() => resolve(code)));
}

function exitWith(code: Promise<number>): Promise<void> {
  return code.then((c) => process.exit(c));
}

export function upgradeCommand(): Command {
  const cmd = new Command('upgrade').description('major version upgrade steps run by the upgrade Jobs (settings from PGPILOT_* environment variables)');
  cmd
    .command('copy-install <dest>')
    .description('copy the PostgreSQL on PATH (the old image) into <dest>, for pg_upgrade in the new image')
    .action((dest: string) => exitWith(runUpgradeJob('copy-install', process.env, () => readDest(dest), (d, log) => copyInstall(d, log))));
  cmd
    .command('check')
    .description('pg_upgrade --check against a schema-only copy of the running cluster')
    .action(() => exitWith(runUpgradeJob('check', process.env, readCheckSettings, async (s, log) => (await import('../upgrade-job/check.js')).runCheck(s, log))));
  cmd
    .command('run')
    .description('pg_upgrade the stopped primary\'s data volume in place (resumable; rolled back on failure)')
    .action(() => exitWith(runUpgradeJob('run', process.env, readRunSettings, async (s, log) => (await import('../upgrade-job/run.js')).runUpgrade(s, log))));
  for (const c of [cmd, ...cmd.commands]) {
    c.exitOverride((err: CommanderError) => {
      process.exit(err.exitCode === 0 ? 0 : EXIT_USAGE);
    });
  }
  return cmd;
}
