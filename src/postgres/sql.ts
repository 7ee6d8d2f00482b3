// SQL the agent runs against its own server (and, for rewind, a CHECKPOINT on the new primary).
// It connects over TCP to the pod IP as the superuser: the same path clients take, so "accepts
// connections" means what readiness should mean, whatever the OS user name in the image is.
// During a restore (restore-bootstrap.ts) it connects over the unix socket instead: `host` is then
// the socket directory (libpq/pg semantics: a host starting with "/" is a directory).
import pg from 'pg';
import { parseConninfo, quoteIdent, quoteLiteral } from './conninfo.js';
import type { Credentials } from './files.js';
import { pgSsl, type TlsVerify } from './tls-client.js';

export interface Endpoint {
  /** Host name or IP, or a unix socket directory (an absolute path). */
  host: string;
  port: number;
}

export interface ConnectOptions extends Endpoint {
  credentials: Credentials;
  database?: string;
  connectTimeoutMs?: number;
  /** Statement timeout on the client side (pg's query_timeout). */
  queryTimeoutMs?: number;
  /** The server's statement_timeout for this session (none unless given). */
  statementTimeoutMs?: number;
  /** default pgpilot-agent */
  applicationName?: string;
  /** TLS, verified (tls-client.ts); ignored for a unix socket, which never carries TLS. */
  tls?: TlsVerify;
}

export async function connect(o: ConnectOptions): Promise<pg.Client> {
  const client = new pg.Client({
    host: o.host,
    port: o.port,
    user: o.credentials.username,
    password: o.credentials.password,
    database: o.database ?? 'postgres',
    connectionTimeoutMillis: o.connectTimeoutMs ?? 2000,
    query_timeout: o.queryTimeoutMs ?? 30_000,
    ...(o.statementTimeoutMs !== undefined ? { statement_timeout: o.statementTimeoutMs } : {}),
    application_name: o.applicationName ?? 'pgpilot-agent',
    ...(o.tls && !o.host.startsWith('/') ? { ssl: pgSsl(o.tls) } : {}),
  });
  // An error after connect (server shutting down) must not crash the agent.
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (err) {
    await client.end().catch(() => undefined);
    throw err;
  }
  return client;
}

export async function withClient<T>(o: ConnectOptions, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = await connect(o);
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

export async function isInRecovery(c: pg.Client): Promise<boolean> {
  return (await c.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r')).rows[0]!.r;
}

/** Primary's insert timeline and position. */
export async function primaryPosition(c: pg.Client): Promise<{ walFile: string; lsn: string }> {
  const r = (await c.query<{ f: string; l: string }>('SELECT pg_walfile_name(pg_current_wal_lsn()) AS f, pg_current_wal_lsn()::text AS l')).rows[0]!;
  return { walFile: r.f, lsn: r.l };
}

export async function promote(c: pg.Client, waitSeconds: number): Promise<boolean> {
  return (await c.query<{ ok: boolean }>('SELECT pg_promote(true, $1) AS ok', [waitSeconds])).rows[0]!.ok;
}

/**
 * ALTER SYSTEM (postgresql.auto.conf, in the data directory) + reload: PostgreSQL 13+ applies a
 * new primary_conninfo by restarting only the walreceiver.
 */
export async function setPrimaryConninfo(c: pg.Client, conninfo: string | null): Promise<void> {
  await c.query(conninfo === null ? 'ALTER SYSTEM RESET primary_conninfo' : `ALTER SYSTEM SET primary_conninfo = ${quoteLiteral(conninfo)}`);
  await c.query('SELECT pg_reload_conf()');
}

/** Where the walreceiver streams from, and whether it does. */
export async function walReceiver(c: pg.Client): Promise<{ status: string; host: string | null; port: number | null; timeline: number | null } | null> {
  const r = (
    await c.query<{ status: string; sender_host: string | null; sender_port: number | null; received_tli: number | null; conninfo: string | null }>(
      'SELECT status, sender_host, sender_port, received_tli, conninfo FROM pg_stat_wal_receiver',
    )
  ).rows[0];
  if (!r) return null;
  // With TLS, host is the certificate's name and hostaddr the address dialled (sender_host shows the name).
  let hostaddr: string | undefined;
  try {
    hostaddr = parseConninfo(r.conninfo ?? '').hostaddr || undefined;
  } catch {
    hostaddr = undefined;
  }
  return { status: r.status, host: hostaddr ?? r.sender_host, port: r.sender_port, timeline: r.received_tli };
}

export interface BootstrapRoles {
  replication: Credentials;
  owner: Credentials;
  database: string;
}

/**
 * For a session whose statements carry passwords as literals: none of them may reach the server
 * log, whatever spec.postgresql.parameters says — not as a statement (log_statement), not with its
 * duration (log_min_duration_statement, and the sampled log_min_duration_sample), not as the text
 * of a failing one (log_min_error_statement). Commits wait for no synchronous standby.
 */
export const SECRET_SESSION =
  "SET log_statement = 'none'; SET log_min_duration_statement = -1; SET log_min_duration_sample = -1; SET log_min_error_statement = 'panic'; SET synchronous_commit = 'local'";

/**
 * Roles and the application database of a fresh cluster. Idempotent (a restart mid-bootstrap
 * runs it again). Passwords travel as SQL literals: the session turns every kind of statement
 * logging off (SECRET_SESSION), and commits do not wait for synchronous standbys that do not exist yet.
 */
export async function createBootstrapObjects(c: pg.Client, r: BootstrapRoles): Promise<void> {
  await c.query(SECRET_SESSION);
  const roleExists = async (name: string) => ((await c.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [name])).rowCount ?? 0) > 0;
  const role = async (creds: Credentials, attrs: string) => {
    const verb = (await roleExists(creds.username)) ? 'ALTER' : 'CREATE';
    await c.query(`${verb} ROLE ${quoteIdent(creds.username)} WITH ${attrs} PASSWORD ${quoteLiteral(creds.password)}`);
  };
  await role(r.replication, 'LOGIN REPLICATION');
  await role(r.owner, 'LOGIN');
  const db = await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [r.database]);
  if ((db.rowCount ?? 0) === 0) await c.query(`CREATE DATABASE ${quoteIdent(r.database)} OWNER ${quoteIdent(r.owner.username)}`);
}

export interface AdoptedRoles extends BootstrapRoles {
  superuser: Credentials;
}

/**
 * A restored database holds its source cluster's roles and passwords: give the superuser, the
 * replication role and the application owner this cluster's passwords, creating what the source
 * lacked (and the application database). Idempotent; run as a superuser over the unix socket.
 */
export async function adoptRestoredDatabase(c: pg.Client, r: AdoptedRoles): Promise<void> {
  await c.query(SECRET_SESSION);
  const exists = ((await c.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [r.superuser.username])).rowCount ?? 0) > 0;
  await c.query(`${exists ? 'ALTER' : 'CREATE'} ROLE ${quoteIdent(r.superuser.username)} WITH SUPERUSER LOGIN PASSWORD ${quoteLiteral(r.superuser.password)}`);
  await createBootstrapObjects(c, r);
}

/** The role's stored password (a SCRAM verifier or MD5 hash; null without one). Superuser only. */
export async function storedPassword(c: pg.Client, role: string): Promise<string | null> {
  return (await c.query<{ p: string | null }>('SELECT rolpassword AS p FROM pg_authid WHERE rolname = $1', [role])).rows[0]?.p ?? null;
}

/**
 * Sets a role's password (a SCRAM verifier, or a plaintext password the server hashes) in a
 * session that logs none of its statements, and answers the WAL position after the commit: a
 * replica has the new password once it has replayed that far.
 */
export async function setRolePassword(c: pg.Client, role: string, secret: string): Promise<string> {
  await c.query(SECRET_SESSION);
  await c.query(`ALTER ROLE ${quoteIdent(role)} PASSWORD ${quoteLiteral(secret)}`);
  return (await c.query<{ l: string }>('SELECT pg_current_wal_lsn()::text AS l')).rows[0]!.l;
}

/** A replica's replay position (null on a primary). */
export async function replayLsn(c: pg.Client): Promise<string | null> {
  return (await c.query<{ l: string | null }>('SELECT pg_last_wal_replay_lsn()::text AS l')).rows[0]!.l;
}

/** The primary's timeline and its history file (null on timeline 1), to detect divergence. */
export async function timelineHistory(c: pg.Client): Promise<{ timeline: number; history: string | null }> {
  const f = (await c.query<{ f: string }>('SELECT pg_walfile_name(pg_current_wal_lsn()) AS f')).rows[0]!.f;
  const timeline = parseInt(f.slice(0, 8), 16);
  if (timeline === 1) return { timeline, history: null };
  const name = `pg_wal/${f.slice(0, 8)}.history`;
  const r = await c.query<{ h: string }>('SELECT pg_read_file($1) AS h', [name]);
  return { timeline, history: r.rows[0]!.h };
}

/** A replica's furthest WAL position and the timeline it is on. */
export async function replicaPosition(c: pg.Client): Promise<{ timeline: number; lsn: string } | null> {
  const r = (
    await c.query<{ tli: number | null; lsn: string | null }>(
      `SELECT COALESCE((SELECT received_tli FROM pg_stat_wal_receiver), (SELECT timeline_id FROM pg_control_checkpoint())) AS tli,
              GREATEST(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())::text AS lsn`,
    )
  ).rows[0];
  return r && r.tli !== null && r.lsn !== null ? { timeline: r.tli, lsn: r.lsn } : null;
}
