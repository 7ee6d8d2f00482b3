// `pgpilot backup --cluster <name> [--backup <PostgreSQLBackup>]`: one base backup, run in the
// pods of src/builders/backup-job.ts (a CronJob's Job, or the Job of an on-demand backup).
//
// Environment (set by the Job):
//   PGPILOT_NAMESPACE                 namespace of the cluster and its backups (required)
//   PGPILOT_JOB_NAME                  the Job of this pod; a scheduled run (no --backup) names its
//                                     PostgreSQLBackup after it (required without --backup)
//   PGPILOT_SECRETS_DIR               superuser/ and replication/ {username,password} (required)
//   PGPILOT_BACKUP_LOCATION           ArchiveLocation JSON; S3 credentials in the variables it names (required)
//   PGPILOT_BACKUP_COMPRESSION_LEVEL  gzip level 1-9 (default 1)
//   PGPILOT_BACKUP_RETENTION          days (7), "36h", "7d", "4w" or "10 backups" (default 30 days)
//   PGPILOT_PG_BIN                    directory of pg_basebackup (default: found as the agent finds it)
//   PGPILOT_LOG_LEVEL                 trace|debug|info|warn|error (default info)
//
// Exit codes: 0 the backup completed (or was completed already), 1 it failed (recorded in the
// PostgreSQLBackup's status; the Job retries), 2 bad arguments or environment (the message names
// the variable or option).
import { hostname } from 'node:os';
import { isAbsolute } from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import { ApiBackupKube } from '../backup-job/backup-kube.js';
import { runBackup, type BackupRunSettings } from '../backup-job/backup-run.js';
import type { ObjectStore } from '../backup/object-store.js';
import { openStore, readLocationFromEnv } from '../backup/open-store.js';
import { purgeArchive } from '../backup-job/purge.js';
import { parseRetention } from '../backup/retention.js';
import type { ArchiveLocation } from '../backup/store-config.js';
import { DEFAULTS } from '../api/cluster.js';
import { EnvError } from '../instance/env.js';
import { resolvePgBin } from '../postgres/files.js';
import { EventRecorder } from '../runtime/events.js';
import { loadKubeConfig, makeClients } from '../runtime/kube.js';
import { createLogger, LOG_LEVELS, type LogLevel } from '../runtime/logger.js';
import { POD_ENV } from '../api/pod-env.js';
import { errorText } from '../util/error-text.js';
import { EXIT_FAILED, EXIT_OK, EXIT_USAGE, OptionError } from './exit-codes.js';

export { EXIT_FAILED, EXIT_OK, EXIT_USAGE, OptionError };

export interface BackupCommandOptions {
  cluster: string;
  backup?: string;
  /** Delete the whole archive (see purge.ts). */
  purge?: boolean;
}

/** Settings from the options and environment, except the PostgreSQL binaries (resolved on disk). */
export interface BackupCommandSettings extends Omit<BackupRunSettings, 'pgBin'> {
  pgBin: string | undefined;
  logLevel: LogLevel;
}

type Env = Record<string, string | undefined>;

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;


function optional(env: Env, name: string): string | undefined {
  const v = env[name]?.trim();
  return v ? v : undefined;
}

function required(env: Env, name: string): string {
  const v = optional(env, name);
  if (v === undefined) throw new EnvError(name, 'is required');
  return v;
}

/** Pure: validates the options and environment; throws OptionError or EnvError naming what is wrong. */
export function readBackupSettings(opts: BackupCommandOptions, env: Env): BackupCommandSettings {
  checkNames(opts);
  const namespace = required(env, POD_ENV.namespace);
  if (!DNS_LABEL.test(namespace)) throw new EnvError(POD_ENV.namespace, `must be a namespace name (got ${JSON.stringify(namespace)})`);
  const job = readJob(opts, env);
  const secretsDir = required(env, POD_ENV.secretsDir);
  if (!isAbsolute(secretsDir)) throw new EnvError(POD_ENV.secretsDir, `must be an absolute path (got ${JSON.stringify(secretsDir)})`);

  const levelText = optional(env, POD_ENV.backupCompressionLevel) ?? String(DEFAULTS.compressionLevel);
  if (!/^[1-9]$/.test(levelText)) throw new EnvError(POD_ENV.backupCompressionLevel, `must be a gzip level from 1 to 9 (got ${JSON.stringify(levelText)})`);

  let retention;
  try {
    retention = parseRetention(optional(env, POD_ENV.backupRetention) ?? DEFAULTS.retentionDays);
  } catch (err) {
    throw new EnvError(POD_ENV.backupRetention, `is not valid: ${errorText(err)}`);
  }

  const location = readLocation(env);

  const logLevel = (optional(env, POD_ENV.logLevel) ?? 'info') as LogLevel;
  if (!LOG_LEVELS.includes(logLevel)) throw new EnvError(POD_ENV.logLevel, `must be one of ${LOG_LEVELS.join(', ')} (got ${JSON.stringify(logLevel)})`);

  return {
    namespace,
    cluster: opts.cluster,
    backupName: opts.backup,
    job,
    secretsDir,
    level: Number(levelText),
    retention,
    location,
    pgBin: optional(env, POD_ENV.pgBin),
    logLevel,
  };
}

/** --cluster and --backup must be names of their kinds. */
function checkNames(opts: BackupCommandOptions): void {
  if (!DNS_LABEL.test(opts.cluster) || opts.cluster.length > 63) throw new OptionError('--cluster', `must be a PostgreSQLCluster name (got ${JSON.stringify(opts.cluster)})`);
  if (opts.backup !== undefined && (!DNS_SUBDOMAIN.test(opts.backup) || opts.backup.length > 253)) {
    throw new OptionError('--backup', `must be a PostgreSQLBackup name (got ${JSON.stringify(opts.backup)})`);
  }
}

/** PGPILOT_JOB_NAME: required for a scheduled run (no --backup, no --purge), a Job name when set. */
function readJob(opts: BackupCommandOptions, env: Env): string | undefined {
  const job = optional(env, POD_ENV.jobName);
  if (opts.backup === undefined && job === undefined && !opts.purge) {
    throw new EnvError(POD_ENV.jobName, 'is required without --backup: a scheduled run names its PostgreSQLBackup after its Job');
  }
  if (job !== undefined && (!DNS_SUBDOMAIN.test(job) || job.length > 63)) throw new EnvError(POD_ENV.jobName, `must be a Job name of at most 63 characters (got ${JSON.stringify(job)})`);
  return job;
}

/** PGPILOT_BACKUP_LOCATION, and for S3 the credential variables it names, which must be set. */
function readLocation(env: Env): ArchiveLocation {
  required(env, POD_ENV.backupLocation);
  let location;
  try {
    location = readLocationFromEnv(POD_ENV.backupLocation, env);
  } catch (err) {
    // Its messages name the variable already.
    throw new EnvError(POD_ENV.backupLocation, `is not valid: ${errorText(err).replace(/^environment variable \S+:? ?/, '')}`);
  }
  // Credential files are read at each use (the S3 store says which is missing); variables are checked now.
  if (location.store.kind === 's3' && 'accessKeyIdEnv' in location.store) {
    for (const v of [location.store.accessKeyIdEnv, location.store.secretAccessKeyEnv]) {
      if (optional(env, v) === undefined) throw new EnvError(v, `is not set: ${POD_ENV.backupLocation} names it for the S3 credentials of bucket ${location.store.bucket}`);
    }
  }
  return location;
}

/** One JSON line on stderr, for failures before the logger exists. */
function usageError(message: string): void {
  process.stderr.write(`${JSON.stringify({ level: 'error', time: new Date().toISOString(), component: 'backup', msg: message })}\n`);
}

/** Runs the command; returns the exit code. */
export async function runBackupCommand(opts: BackupCommandOptions, env: Env = process.env): Promise<number> {
  let settings: BackupCommandSettings;
  try {
    settings = readBackupSettings(opts, env);
  } catch (err) {
    usageError(errorText(err));
    return EXIT_USAGE;
  }
  // runBackup binds cluster and namespace to its own lines.
  const log = createLogger(settings.logLevel, 'backup');
  let pgBin: string;
  let store: ObjectStore;
  try {
    pgBin = await resolvePgBin(settings.pgBin);
  } catch (err) {
    log.error({ cluster: settings.cluster, variable: POD_ENV.pgBin }, errorText(err));
    return EXIT_USAGE;
  }
  try {
    store = openStore(settings.location.store, env);
  } catch (err) {
    log.error({ cluster: settings.cluster, variable: POD_ENV.backupLocation }, `cannot open the store of ${POD_ENV.backupLocation}: ${errorText(err)}`);
    return EXIT_USAGE;
  }

  const clients = makeClients(loadKubeConfig());
  const events = new EventRecorder(clients.core, 'pgpilot-backup', hostname(), log);
  const kube = new ApiBackupKube(clients.core, clients.custom, events, settings.namespace);
  if (opts.purge) {
    try {
      const r = await purgeArchive({ store, path: settings.location.path, kube, cluster: settings.cluster, log });
      log.info({ cluster: settings.cluster, namespace: settings.namespace, ...r }, 'archive deleted');
      return EXIT_OK;
    } catch (err) {
      log.error({ cluster: settings.cluster, err: errorText(err) }, 'could not delete the archive');
      return EXIT_FAILED;
    } finally {
      (store as { destroy?: () => void }).destroy?.();
    }
  }

  // SIGTERM (the Job's activeDeadlineSeconds, a deleted Job or pod, a node drain): stop
  // pg_basebackup and the upload, record the backup as failed, exit 1 within the grace period.
  const ac = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    if (ac.signal.aborted) return;
    log.warn({ signal }, 'asked to stop: cancelling the backup');
    ac.abort(new Error(`interrupted by ${signal}`));
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  try {
    const result = await runBackup({ kube, store, settings: { ...settings, pgBin }, log, signal: ac.signal });
    log.info({ cluster: settings.cluster, namespace: settings.namespace, backup: result.backupName, outcome: result.outcome, exitCode: result.exitCode, backupId: result.backupId }, 'backup command finished');
    return result.exitCode;
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
    (store as { destroy?: () => void }).destroy?.();
  }
}

/** The `backup` subcommand; bad options exit with 2 and a JSON line on stderr. */
export function backupCommand(): Command {
  const cmd = new Command('backup')
    .description('take one base backup of a cluster into its backup store (run by the backup CronJob and Jobs; settings from PGPILOT_* environment variables)')
    .addOption(new Option('--cluster <name>', 'the PostgreSQLCluster to back up').makeOptionMandatory())
    .addOption(new Option('--backup <name>', 'an existing PostgreSQLBackup to take; without it, a scheduled run creates one named after its Job (PGPILOT_JOB_NAME)'))
    .addOption(new Option('--purge', 'delete the cluster\'s whole archive and its PostgreSQLBackups instead (a deleted cluster with spec.backup.onClusterDeletion: Delete)').conflicts('backup'))
    .configureOutput({ outputError: (text) => usageError(text.trim().replace(/^error: /, '')) })
    .exitOverride((err: CommanderError) => {
      // Help and version exit 0; every usage error exits 2.
      process.exit(err.exitCode === 0 ? 0 : EXIT_USAGE);
    })
    .action(async (opts: BackupCommandOptions) => {
      process.exit(await runBackupCommand(opts));
    });
  return cmd;
}
