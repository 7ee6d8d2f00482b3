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
//   PGPILOT_PG_PORT                 PostgreSQL port (default 5432)
//   PGPILOT_PG_BIN                  directory holding postgres, initdb, pg_basebackup, pg_rewind
//                                   (default: the directory of a `postgres` found on PATH, symlinks
//                                   resolved, when it has all four; else /usr/lib/postgresql/<newest>/bin)
//   PGPILOT_SOCKET_DIR              unix socket directory (default /var/run/postgresql when
//                                   writable, else <PGDATA's parent>/run)
//   PGPILOT_STOP_TIMEOUT_SECONDS    shutdown budget after SIGTERM (default 30; match the pod's
//                                   terminationGracePeriodSeconds): smart, fast at half, immediate near the end
//   PGPILOT_LOG_LEVEL               trace|debug|info|warn|error (default info)
import { isIP } from 'node:net';
import { isAbsolute } from 'node:path';
import { AGENT_PORT, POSTGRES_PORT } from '../api/constants.js';
import { LOG_LEVELS, type LogLevel } from '../runtime/logger.js';

export class EnvError extends Error {
  constructor(
    readonly variable: string,
    problem: string,
  ) {
    super(`environment variable ${variable} ${problem}`);
    this.name = 'EnvError';
  }
}

export interface InitdbSettings {
  database: string;
  owner: string;
  encoding: string;
  locale: string;
  dataChecksums: boolean;
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
  pgPort: number;
  /** As given in PGPILOT_PG_BIN; resolved against PATH by resolvePgBin() when undefined. */
  pgBin: string | undefined;
  socketDir: string | undefined;
  stopTimeoutSeconds: number;
  logLevel: LogLevel;
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

/** A role or database name the agent puts in SQL: the CRD restricts them to this pattern too. */
const SQL_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

export function loadSettings(env: Env = process.env): AgentSettings {
  const podIp = required(env, 'PGPILOT_POD_IP');
  if (isIP(podIp) === 0) throw new EnvError('PGPILOT_POD_IP', `must be an IP address (got ${JSON.stringify(podIp)})`);
  const database = optional(env, 'PGPILOT_INITDB_DATABASE') ?? 'app';
  const owner = optional(env, 'PGPILOT_INITDB_OWNER') ?? 'app';
  if (!SQL_NAME.test(database)) throw new EnvError('PGPILOT_INITDB_DATABASE', `must match ${SQL_NAME.source}`);
  if (!SQL_NAME.test(owner)) throw new EnvError('PGPILOT_INITDB_OWNER', `must match ${SQL_NAME.source}`);
  const stop = optional(env, 'PGPILOT_STOP_TIMEOUT_SECONDS') ?? '30';
  const stopTimeoutSeconds = Number(stop);
  if (!Number.isFinite(stopTimeoutSeconds) || stopTimeoutSeconds <= 0) throw new EnvError('PGPILOT_STOP_TIMEOUT_SECONDS', `must be a positive number of seconds (got ${JSON.stringify(stop)})`);
  const level = optional(env, 'PGPILOT_LOG_LEVEL') ?? 'info';
  if (!(LOG_LEVELS as readonly string[]).includes(level)) throw new EnvError('PGPILOT_LOG_LEVEL', `must be one of ${LOG_LEVELS.join(', ')}`);
  return {
    cluster: required(env, 'PGPILOT_CLUSTER'),
    instance: required(env, 'PGPILOT_INSTANCE'),
    namespace: required(env, 'PGPILOT_NAMESPACE'),
    podIp,
    configDir: path('PGPILOT_CONFIG_DIR', required(env, 'PGPILOT_CONFIG_DIR'))!,
    secretsDir: path('PGPILOT_SECRETS_DIR', required(env, 'PGPILOT_SECRETS_DIR'))!,
    pgdata: path('PGDATA', required(env, 'PGDATA'))!,
    walDir: path('PGPILOT_WAL_DIR', optional(env, 'PGPILOT_WAL_DIR')),
    initdb: {
      database,
      owner,
      encoding: optional(env, 'PGPILOT_INITDB_ENCODING') ?? 'UTF8',
      locale: optional(env, 'PGPILOT_INITDB_LOCALE') ?? 'C.UTF-8',
      dataChecksums: bool(env, 'PGPILOT_INITDB_DATA_CHECKSUMS', true),
    },
    agentPort: port(env, 'PGPILOT_AGENT_PORT', AGENT_PORT),
    pgPort: port(env, 'PGPILOT_PG_PORT', POSTGRES_PORT),
    pgBin: path('PGPILOT_PG_BIN', optional(env, 'PGPILOT_PG_BIN')),
    socketDir: path('PGPILOT_SOCKET_DIR', optional(env, 'PGPILOT_SOCKET_DIR')),
    stopTimeoutSeconds,
    logLevel: level as LogLevel,
  };
}
