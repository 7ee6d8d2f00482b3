// The upgrade Jobs' settings from the environment (pure): every error is an EnvError naming the
// variable, so a broken Job exits 2 saying what to fix.
//
//   PGPILOT_OLD_INSTALL        the old image's PostgreSQL copied by `upgrade copy-install` (required)
//   PGPILOT_SECRETS_DIR        superuser/{username,password}: the install user of the cluster (required)
//   PGPILOT_INITDB_ENCODING    encoding of the cluster (default UTF8)
//   PGPILOT_INITDB_LOCALE      its locale (default C.UTF-8)
//   PGPILOT_LOG_LEVEL          trace|debug|info|warn|error (default info)
// check:
//   PGPILOT_UPGRADE_SOURCE     host:port of the running primary (required)
//   PGPILOT_UPGRADE_WORK_DIR   scratch folder for the schema-only clusters (required)
// run:
//   PGDATA                     the stopped primary's data directory (required)
//   PGPILOT_WAL_DIR            its pg_wal on a volume of its own (PGDATA/pg_wal links to it)
//   PGPILOT_UPGRADE_MODE       link | copy (default link)
import { isAbsolute } from 'node:path';
import { POD_ENV } from '../api/pod-env.js';
import { EnvError } from '../util/env-error.js';
import type { UpgradeMode } from '../postgres/upgrade-layout.js';
import { LOG_LEVELS, type LogLevel } from '../runtime/logger.js';

type Env = Record<string, string | undefined>;

export interface CommonUpgradeSettings {
  oldInstall: string;
  secretsDir: string;
  encoding: string;
  locale: string;
  logLevel: LogLevel;
}

export interface CheckSettings extends CommonUpgradeSettings {
  source: { host: string; port: number };
  workDir: string;
}

export interface RunSettings extends CommonUpgradeSettings {
  pgdata: string;
  walDir: string | undefined;
  mode: UpgradeMode;
}

function optional(env: Env, name: string): string | undefined {
  const v = env[name]?.trim();
  return v ? v : undefined;
}

function absolutePath(env: Env, name: string, required: true): string;
function absolutePath(env: Env, name: string, required: false): string | undefined;
function absolutePath(env: Env, name: string, required: boolean): string | undefined {
  const v = optional(env, name);
  if (v === undefined) {
    if (required) throw new EnvError(name, 'is required');
    return undefined;
  }
  if (!isAbsolute(v)) throw new EnvError(name, `must be an absolute path (got ${JSON.stringify(v)})`);
  return v.replace(/\/+$/, '') || '/';
}

/** The log level alone, so that even a bad environment is reported at the right level. */
export function readLogLevel(env: Env): LogLevel {
  const level = (optional(env, POD_ENV.logLevel) ?? 'info') as LogLevel;
  if (!LOG_LEVELS.includes(level)) throw new EnvError(POD_ENV.logLevel, `must be one of ${LOG_LEVELS.join(', ')} (got ${JSON.stringify(level)})`);
  return level;
}

function readCommon(env: Env): CommonUpgradeSettings {
  return {
    oldInstall: absolutePath(env, POD_ENV.oldInstall, true),
    secretsDir: absolutePath(env, POD_ENV.secretsDir, true),
    encoding: optional(env, POD_ENV.initdbEncoding) ?? 'UTF8',
    locale: optional(env, POD_ENV.initdbLocale) ?? 'C.UTF-8',
    logLevel: readLogLevel(env),
  };
}

/** "host:port", "[v6]:port" → host and port. */
export function parseHostPort(text: string): { host: string; port: number } | undefined {
  const m = /^(?:\[([^\]]+)\]|([^:\s]+)):(\d{1,5})$/.exec(text);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port < 1 || port > 65535) return undefined;
  return { host: (m[1] ?? m[2])!, port };
}

export function readCheckSettings(env: Env): CheckSettings {
  const common = readCommon(env);
  const sourceText = optional(env, POD_ENV.upgradeSource);
  if (sourceText === undefined) throw new EnvError(POD_ENV.upgradeSource, 'is required');
  const source = parseHostPort(sourceText);
  if (!source) throw new EnvError(POD_ENV.upgradeSource, `must be host:port (got ${JSON.stringify(sourceText)})`);
  return { ...common, source, workDir: absolutePath(env, POD_ENV.upgradeWorkDir, true) };
}

export function readRunSettings(env: Env): RunSettings {
  const common = readCommon(env);
  const mode = optional(env, POD_ENV.upgradeMode) ?? 'link';
  if (mode !== 'link' && mode !== 'copy') throw new EnvError(POD_ENV.upgradeMode, `must be link or copy (got ${JSON.stringify(mode)})`);
  return { ...common, pgdata: absolutePath(env, 'PGDATA', true), walDir: absolutePath(env, POD_ENV.walDir, false), mode };
}
