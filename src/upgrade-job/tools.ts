// The PostgreSQL tools the upgrade Jobs run: where the old and new binaries are, their majors,
// pg_controldata, initdb of a cluster to upgrade into, and pg_upgrade with its failure turned
// into one paragraph for the cluster's condition.
import { constants } from 'node:fs';
import { access, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { resolvePgBin } from '../postgres/files.js';
import {
  fileExcerpt,
  majorOfVersionOutput,
  parseControlData,
  parsePgUpgradeFailure,
  pgUpgradeArgs,
  pgUpgradeFailureMessage,
  upgradeInitdbArgs,
  type ControlData,
  type NewClusterSettings,
  type PgUpgradeArgs,
} from '../postgres/pg-upgrade.js';
import { runTool, ToolError } from '../postgres/tool.js';
import { oldBindirFile } from '../postgres/upgrade-layout.js';
import type { Logger } from '../runtime/logger.js';
import { errorText } from '../util/error-text.js';

/** A failure whose message is written for a person (the last log line, the cluster's condition). */
export class JobFailure extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'JobFailure';
  }
}

/** PostgreSQL's messages in English whatever the image's locale: pg_controldata's labels are parsed. */
const C_LOCALE = { LC_ALL: 'C', LC_MESSAGES: 'C', LANG: 'C' };

async function requireTools(bin: string, tools: string[], what: string): Promise<void> {
  for (const t of tools) {
    try {
      await access(join(bin, t), constants.X_OK);
    } catch {
      throw new JobFailure(`${what} ${bin} has no ${t}`);
    }
  }
}

/** The bin folder `upgrade copy-install` wrote into <old install>/bindir. */
export async function oldBindir(oldInstall: string): Promise<string> {
  const file = oldBindirFile(oldInstall);
  let bin: string;
  try {
    bin = (await readFile(file, 'utf8')).trim();
  } catch (err) {
    throw new JobFailure(`cannot read ${file}, where the init container (pgpilot upgrade copy-install) writes the old PostgreSQL's bin folder: ${errorText(err)}`);
  }
  await requireTools(bin, ['postgres', 'pg_ctl', 'pg_controldata'], 'the old PostgreSQL bin folder');
  return bin;
}

/** The image's own PostgreSQL (the new one), found as the agent finds it; it must have pg_upgrade. */
export async function newBindir(): Promise<string> {
  let bin: string;
  try {
    bin = await resolvePgBin(undefined);
  } catch (err) {
    throw new JobFailure(`cannot find the new PostgreSQL: ${errorText(err)}`);
  }
  await requireTools(bin, ['pg_upgrade', 'pg_dumpall', 'psql', 'pg_controldata'], 'the new PostgreSQL bin folder');
  return bin;
}

/** Runs a tool whose output is data (debug level), in the C locale. */
async function toolOutput(bin: string, tool: string, args: string[], log: Logger): Promise<string> {
  const r = await runTool(join(bin, tool), args, { log, outputLevel: 'debug', env: C_LOCALE });
  return r.output.join('\n');
}

export async function majorOfBin(bin: string, log: Logger): Promise<number> {
  return majorOfVersionOutput(await toolOutput(bin, 'postgres', ['--version'], log));
}

export async function controlData(bin: string, pgdata: string, log: Logger): Promise<ControlData> {
  return parseControlData(await toolOutput(bin, 'pg_controldata', ['-D', pgdata], log));
}

/** Runs `fn`, logging how long it took under `step`. */
export async function timed<T>(log: Logger, step: string, fn: () => Promise<T>): Promise<T> {
  const started = Date.now();
  const result = await fn();
  log.info({ phase: step, ms: Date.now() - started }, `${step} took ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return result;
}

export async function initCluster(bin: string, s: NewClusterSettings, log: Logger): Promise<void> {
  try {
    await runTool(join(bin, 'initdb'), upgradeInitdbArgs(s), { log, env: C_LOCALE });
  } catch (err) {
    throw new JobFailure(`initdb of the PostgreSQL ${s.major} cluster at ${s.pgdata} failed: ${err instanceof ToolError ? err.output.slice(-5).join(' ') : errorText(err)}`);
  }
}

/**
 * pg_upgrade, from `cwd` (where it writes update_extensions.sql and, before 15, its logs).
 * The cwd is the process's: runTool has no cwd option and a Job runs one pg_upgrade at a time.
 * A failure becomes a JobFailure with pg_upgrade's words and lines of the file it names, read
 * now: a rollback may delete the new cluster that holds pg_upgrade_output.d.
 */
export async function runPgUpgrade(bin: string, a: PgUpgradeArgs, cwd: string, log: Logger): Promise<void> {
  const before = process.cwd();
  process.chdir(cwd);
  try {
    await runTool(join(bin, 'pg_upgrade'), pgUpgradeArgs(a), { log, env: C_LOCALE });
  } catch (err) {
    if (!(err instanceof ToolError)) throw err;
    const f = parsePgUpgradeFailure(err.output);
    // A list of problems is read from its start, a log from its end.
    const lines = f.file ? await fileExcerpt(f.file, f.file.endsWith('.log') ? 'tail' : 'head') : undefined;
    throw new JobFailure(pgUpgradeFailureMessage(a.check ? 'pg_upgrade --check' : 'pg_upgrade', f, lines));
  } finally {
    process.chdir(before);
  }
}
