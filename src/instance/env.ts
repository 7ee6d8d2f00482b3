// Settings of the instance agent, read from the environment the StatefulSet builder sets
// (src/builders/statefulset.ts). Every error names the variable so a broken pod says why.
//
// Required: PGPILOT_CLUSTER, PGPILOT_INSTANCE, PGPILOT_NAMESPACE, PGPILOT_POD_IP,
//   PGPILOT_CONFIG_DIR (postgresql.conf, pg_hba.conf from the cluster's ConfigMap),
//   PGPILOT_SECRETS_DIR (superuser/, replication/, app/ {username,password[,dbname]}, agent/token),
//   PGDATA.
// Optional:
//   PGPILOT_WAL_DIR                 pg_wal on its own volume (initdb --waldir, pg_basebackup --waldir)
//   PGPILOT_INITDB_DATABASE/OWNER   application database and its owner (default app/app)
//   PGPILOT_INITDB_ENCODING/LOCALE  (default UTF8 / C.UTF-8)
//   PGPILOT_INITDB_DATA_CHECKSUMS   true|false (default true)
//   PGPILOT_AGENT_PORT              HTTP API port (default 8000)
//   PGPILOT_AGENT_TLS_DIR           the server certificate's directory (tls.crt, tls.key, ca.crt):
//                                   the API serves HTTPS and /v1/* needs the operator's client
//                                   certificate of that CA (unset: plain HTTP)
//   PGPILOT_AGENT_SOCKET            the API on a Unix socket too, for programs inside the pod
//   PGPILOT_PG_PORT                 PostgreSQL port (default 5432)
//   PGPILOT_PG_BIN                  directory holding postgres, initdb, pg_basebackup, pg_rewind
//                                   (default: the directory of a `postgres` found on PATH, symlinks
//                                   resolved, when it has all four; else /usr/lib/postgresql/<newest>/bin)
//   PGPILOT_SOCKET_DIR              unix socket directory (default /var/run/postgresql when
//                                   writable, else <PGDATA's parent>/run)
//   PGPILOT_STOP_TIMEOUT_SECONDS    shutdown budget after SIGTERM (default 30; match the pod's
//                                   terminationGracePeriodSeconds): smart, fast at half, immediate near the end
//   PGPILOT_LOG_LEVEL               trace|debug|info|warn|error (default info)
//   PGPILOT_METRICS_ENABLED         true|false: serve GET /metrics (default true; spec.monitoring.enabled)
//   PGPILOT_METRICS_PORT            its port (default 9187)
//   PGPILOT_CUSTOM_QUERIES          comma-separated absolute paths of the exporter's own query files
//                                   (postgres_exporter's queries.yaml format; spec.monitoring.customQueries)
// Backups (set by the operator from spec.backup and spec.bootstrap.recovery):
//   PGPILOT_BACKUP_LOCATION         ArchiveLocation JSON (src/backup/store-config.ts): where this
//                                   cluster's WAL goes. Set: the agent archives WAL (postgresql.conf
//                                   has archive_mode=on and the archive_command handoff). S3
//                                   credentials come from the variables the JSON names.
//   PGPILOT_BACKUP_COMPRESSION_LEVEL gzip level of archived WAL, 1-9 (default 1)
//   PGPILOT_RESTORE_SOURCE          ArchiveLocation JSON of the archive a {mode: restore} bootstrap
//                                   restores from (its own credential variables)
//   PGPILOT_RESTORE_BACKUP_ID       base backup to start from (default: chosen by the target)
//   PGPILOT_RESTORE_TARGET          RecoveryTarget JSON {time|lsn|xid|name|immediate, inclusive}
//                                   (default: replay the archive to its end)
import { isIP } from 'node:net';
import { isAbsolute } from 'node:path';
import { AGENT_PORT, METRICS_PORT, POSTGRES_PORT } from '../api/constants.js';
import { parseLocation } from '../backup/open-store.js';
import { RecoveryTargetError, validateTarget, type RecoveryTarget } from '../backup/recovery-plan.js';
import type { ArchiveLocation } from '../backup/store-config.js';
import { LOG_LEVELS, type LogLevel } from '../runtime/logger.js';
import { POD_ENV } from '../api/pod-env.js';
import { errorText } from '../util/error-text.js';
import { EnvError } from '../util/env-error.js';

export { EnvError };

export interface InitdbSettings {
  database: string;
  owner: string;
  encoding: string;
  locale: string;
  dataChecksums: boolean;
}

/** WAL archiving of this cluster (PGPILOT_BACKUP_LOCATION). */
export interface BackupSettings {
  location: ArchiveLocation;
  /** gzip level 1-9. */
  compressionLevel: number;
}

/** What a {mode: 'restore'} bootstrap restores (PGPILOT_RESTORE_*). */
export interface RestoreSettings {
  source: ArchiveLocation;
  backupId: string | undefined;
  /** {} = replay the archive to its end. */
  target: RecoveryTarget;
}

export interface AgentSettings {
  cluster: string;
  instance: string;
  namespace: string;
  podIp: string;
  configDir: string;
  secretsDir: string;
  pgdata: string;
  walDir: string | undefined;
  initdb: InitdbSettings;
  agentPort: number;
  /** HTTPS with client certificates on agentPort (undefined: plain HTTP). */
  agentTlsDir: string | undefined;
  /** The API on this Unix socket too (token only). */
  agentSocket: string | undefined;
  pgPort: number;
  /** Serve GET /metrics on metricsPort (spec.monitoring.enabled). */
  metricsEnabled: boolean;
  metricsPort: number;
  /** Files of the exporter's own queries (each may be missing: its ConfigMap or key is). */
  customQueries: string[];
  /** As given in PGPILOT_PG_BIN; resolved against PATH by resolvePgBin() when undefined. */
  pgBin: string | undefined;
  socketDir: string | undefined;
  stopTimeoutSeconds: number;
  logLevel: LogLevel;
  /** Undefined: WAL archiving is off. */
  backup: BackupSettings | undefined;
  /** Undefined: this instance cannot bootstrap by restore. */
  restore: RestoreSettings | undefined;
}

type Env = Record<string, string | undefined>;

function required(env: Env, name: string): string {
  const v = env[name];
  if (v === undefined || v.trim() === '') throw new EnvError(name, 'is required');
  return v.trim();
}

function optional(env: Env, name: string): string | undefined {
  const v = env[name]?.trim();
  return v ? v : undefined;
}

function path(name: string, value: string | undefined): string | undefined {
  if (value !== undefined && !isAbsolute(value)) throw new EnvError(name, `must be an absolute path (got ${JSON.stringify(value)})`);
  return value;
}

function pathList(name: string, value: string | undefined): string[] {
  const list = (value ?? '').split(',').map((p) => p.trim()).filter((p) => p !== '');
  for (const p of list) path(name, p);
  return [...new Set(list)];
}

function port(env: Env, name: string, fallback: number): number {
  const v = optional(env, name);
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < 1 || n > 65535) throw new EnvError(name, `must be a port number 1-65535 (got ${JSON.stringify(v)})`);
  return n;
}

function bool(env: Env, name: string, fallback: boolean): boolean {
  const v = optional(env, name)?.toLowerCase();
  if (v === undefined) return fallback;
  if (v === 'true' || v === '1' || v === 'yes') return true;
  if (v === 'false' || v === '0' || v === 'no') return false;
  throw new EnvError(name, `must be true or false (got ${JSON.stringify(v)})`);
}

/** An ArchiveLocation in `name`, whose credential variables (S3) must be set too. */
function location(env: Env, name: string): ArchiveLocation | undefined {
  const text = optional(env, name);
  if (text === undefined) return undefined;
  let loc: ArchiveLocation;
  try {
    loc = parseLocation(text, name);
  } catch (err) {
    // parseLocation prefixes its messages with the source: keep only the problem.
    throw new EnvError(name, `is not a valid archive location: ${errorText(err).replace(`${name}: `, '')}`);
  }
  // Credential files are read at each use (the S3 store says which is missing); variables are checked now.
  if (loc.store.kind === 's3' && 'accessKeyIdEnv' in loc.store) {
    for (const [field, variable] of [['accessKeyIdEnv', loc.store.accessKeyIdEnv], ['secretAccessKeyEnv', loc.store.secretAccessKeyEnv]] as const) {
      if (!optional(env, variable)) throw new EnvError(variable, `is required: ${name} names it in store.${field}`);
    }
  }
  return loc;
}

/** The same store and path: what one cluster writes, the other would read as its own. */
export function sameArchive(a: ArchiveLocation, b: ArchiveLocation): boolean {
  if (a.path !== b.path || a.store.kind !== b.store.kind) return false;
  if (a.store.kind === 'volume' && b.store.kind === 'volume') return a.store.path.replace(/\/+$/, '') === b.store.path.replace(/\/+$/, '');
  if (a.store.kind === 's3' && b.store.kind === 's3') return a.store.bucket === b.store.bucket && (a.store.endpoint ?? '') === (b.store.endpoint ?? '');
  return false;
}

const TARGET_KEYS = ['time', 'lsn', 'xid', 'name', 'immediate', 'inclusive'] as const;

/** PGPILOT_RESTORE_TARGET: a RecoveryTarget as JSON (pure; exported for tests). */
export function parseRecoveryTarget(text: string | undefined, name = POD_ENV.restoreTarget): RecoveryTarget {
  if (text === undefined || text.trim() === '') return {};
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new EnvError(name, `is not valid JSON (${errorText(err)})`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new EnvError(name, 'must be a JSON object such as {"time": "2026-11-25T02:00:00Z"}');
  const o = raw as Record<string, unknown>;
  const unknown = Object.keys(o).filter((k) => !(TARGET_KEYS as readonly string[]).includes(k));
  if (unknown.length > 0) throw new EnvError(name, `has unknown fields ${unknown.join(', ')} (allowed: ${TARGET_KEYS.join(', ')})`);
  const target: RecoveryTarget = {};
  for (const k of ['time', 'lsn', 'xid', 'name'] as const) {
    const v = o[k];
    if (v === undefined || v === null) continue;
    if (typeof v !== 'string') throw new EnvError(name, `field ${k} must be a string (got ${JSON.stringify(v)})`);
    target[k] = v;
  }
  for (const k of ['immediate', 'inclusive'] as const) {
    const v = o[k];
    if (v === undefined || v === null) continue;
    if (typeof v !== 'boolean') throw new EnvError(name, `field ${k} must be true or false (got ${JSON.stringify(v)})`);
    target[k] = v;
  }
  try {
    validateTarget(target);
  } catch (err) {
    if (err instanceof RecoveryTargetError) throw new EnvError(name, `is not a valid recovery target: ${err.message}`);
    throw err;
  }
  return target;
}

function backupSettings(env: Env): BackupSettings | undefined {
  const loc = location(env, POD_ENV.backupLocation);
  const levelText = optional(env, POD_ENV.backupCompressionLevel) ?? '1';
  const level = Number(levelText);
  if (!/^\d$/.test(levelText) || level < 1 || level > 9) throw new EnvError(POD_ENV.backupCompressionLevel, `must be a gzip level 1-9 (got ${JSON.stringify(levelText)})`);
  return loc ? { location: loc, compressionLevel: level } : undefined;
}

function restoreSettings(env: Env, backup: BackupSettings | undefined): RestoreSettings | undefined {
  const source = location(env, POD_ENV.restoreSource);
  const backupId = optional(env, POD_ENV.restoreBackupId);
  const targetText = optional(env, POD_ENV.restoreTarget);
  if (!source) {
    for (const [n, v] of [[POD_ENV.restoreBackupId, backupId], [POD_ENV.restoreTarget, targetText]] as const) {
      if (v !== undefined) throw new EnvError(n, `is set but ${POD_ENV.restoreSource} is not: there is nothing to restore from`);
    }
    return undefined;
  }
  if (backupId !== undefined && !/^\d{8}T\d{6}Z$/.test(backupId)) throw new EnvError(POD_ENV.restoreBackupId, `must be a backup id such as 20261125T020000Z (got ${JSON.stringify(backupId)})`);
  // A restored cluster has its source's system identifier: the archiver's identity guard would
  // let it append a second history to the source's archive. It needs a location of its own.
  if (backup && sameArchive(backup.location, source)) {
    throw new EnvError(POD_ENV.backupLocation, `names the same archive as ${POD_ENV.restoreSource} (${source.path}): a restored cluster must archive to a location of its own, never into its source`);
  }
  return { source, backupId, target: parseRecoveryTarget(targetText) };
}

/** A role or database name the agent puts in SQL: the CRD restricts them to this pattern too. */
const SQL_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

export function loadSettings(env: Env = process.env): AgentSettings {
  const podIp = required(env, POD_ENV.podIp);
  if (isIP(podIp) === 0) throw new EnvError(POD_ENV.podIp, `must be an IP address (got ${JSON.stringify(podIp)})`);
  const database = optional(env, POD_ENV.initdbDatabase) ?? 'app';
  const owner = optional(env, POD_ENV.initdbOwner) ?? 'app';
  if (!SQL_NAME.test(database)) throw new EnvError(POD_ENV.initdbDatabase, `must match ${SQL_NAME.source}`);
  if (!SQL_NAME.test(owner)) throw new EnvError(POD_ENV.initdbOwner, `must match ${SQL_NAME.source}`);
  const stop = optional(env, POD_ENV.stopTimeoutSeconds) ?? '30';
  const stopTimeoutSeconds = Number(stop);
  if (!Number.isFinite(stopTimeoutSeconds) || stopTimeoutSeconds <= 0) throw new EnvError(POD_ENV.stopTimeoutSeconds, `must be a positive number of seconds (got ${JSON.stringify(stop)})`);
  const level = optional(env, POD_ENV.logLevel) ?? 'info';
  if (!(LOG_LEVELS as readonly string[]).includes(level)) throw new EnvError(POD_ENV.logLevel, `must be one of ${LOG_LEVELS.join(', ')}`);
  const backup = backupSettings(env);
  const restore = restoreSettings(env, backup);
  return {
    cluster: required(env, POD_ENV.cluster),
    instance: required(env, POD_ENV.instance),
    namespace: required(env, POD_ENV.namespace),
    podIp,
    configDir: path(POD_ENV.configDir, required(env, POD_ENV.configDir))!,
    secretsDir: path(POD_ENV.secretsDir, required(env, POD_ENV.secretsDir))!,
    pgdata: path('PGDATA', required(env, 'PGDATA'))!,
    walDir: path(POD_ENV.walDir, optional(env, POD_ENV.walDir)),
    initdb: {
      database,
      owner,
      encoding: optional(env, POD_ENV.initdbEncoding) ?? 'UTF8',
      locale: optional(env, POD_ENV.initdbLocale) ?? 'C.UTF-8',
      dataChecksums: bool(env, POD_ENV.initdbDataChecksums, true),
    },
    agentPort: port(env, POD_ENV.agentPort, AGENT_PORT),
    agentTlsDir: path(POD_ENV.agentTlsDir, optional(env, POD_ENV.agentTlsDir)),
    agentSocket: path(POD_ENV.agentSocket, optional(env, POD_ENV.agentSocket)),
    pgPort: port(env, POD_ENV.pgPort, POSTGRES_PORT),
    metricsEnabled: bool(env, POD_ENV.metricsEnabled, true),
    metricsPort: port(env, POD_ENV.metricsPort, METRICS_PORT),
    customQueries: pathList(POD_ENV.customQueries, optional(env, POD_ENV.customQueries)),
    pgBin: path(POD_ENV.pgBin, optional(env, POD_ENV.pgBin)),
    socketDir: path(POD_ENV.socketDir, optional(env, POD_ENV.socketDir)),
    stopTimeoutSeconds,
    logLevel: level as LogLevel,
    backup,
    restore,
  };
}
