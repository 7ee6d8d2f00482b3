// Where the agent keeps things, and the postgres command line (pure).
import { dirname, join } from 'node:path';
import type { AgentSettings } from './env.js';

export interface Layout {
  pgdata: string;
  walDir: string | undefined;
  /** Agent files next to (not inside) PGDATA, so pg_basebackup and pg_rewind never copy them. */
  stateDir: string;
  /** Replication password for primary_conninfo's passfile= (0600, rewritten at each start). */
  replicationPassfile: string;
  /** Present while the instance is fenced: survives an agent restart. */
  fencedMarker: string;
  /** Present from initdb until roles and database exist: a restart finishes the bootstrap. */
  bootstrapPending: string;
  /** A planned restart of the primary may start writable until the time (ms) it holds (restart-permit.ts). */
  restartPermit: string;
  pgVersionFile: string;
  standbySignal: string;
  autoConf: string;
  /** pg_wal itself (the WAL directory when it has its own volume). */
  walPath: string;
}

export function layoutOf(s: Pick<AgentSettings, 'pgdata' | 'walDir'>): Layout {
  const stateDir = join(dirname(s.pgdata), '.pgpilot');
  return {
    pgdata: s.pgdata,
    walDir: s.walDir,
    stateDir,
    replicationPassfile: join(stateDir, 'replication.pgpass'),
    fencedMarker: join(stateDir, 'fenced'),
    bootstrapPending: join(stateDir, 'bootstrap-pending'),
    restartPermit: join(stateDir, 'restart-permit'),
    pgVersionFile: join(s.pgdata, 'PG_VERSION'),
    standbySignal: join(s.pgdata, 'standby.signal'),
    autoConf: join(s.pgdata, 'postgresql.auto.conf'),
    walPath: s.walDir ?? join(s.pgdata, 'pg_wal'),
  };
}

/**
 * Where the WalArchiver leaves "archived" markers for archive_command (handoff.ts). The
 * operator's postgresql.conf names this directory for PGDATA=/var/lib/postgresql/data/pgdata:
 * /var/lib/postgresql/data/.pgpilot/archived.
 */
export function archiveMarkerDir(layout: Pick<Layout, 'stateDir'>): string {
  return join(layout.stateDir, 'archived');
}

/**
 * The restore_command spool of a restore (handoff.ts restoreCommand). Next to PGDATA, so on the
 * data volume: restore_command moves each answered file into pg_wal with a rename, unless pg_wal
 * has a volume of its own (PGPILOT_WAL_DIR), where the move becomes a copy.
 */
export function restoreSpoolDir(layout: Pick<Layout, 'stateDir'>): string {
  return join(layout.stateDir, 'restore-spool');
}

/**
 * pg_hba.conf of a restore in progress: the restored database holds the source cluster's role
 * passwords, so the agent connects over the pod-private unix socket with trust until it has set
 * this cluster's passwords; no host line, so nothing reaches the server over TCP meanwhile.
 */
export function restoreHbaFile(layout: Pick<Layout, 'stateDir'>): string {
  return join(layout.stateDir, 'restore-hba.conf');
}

export const RESTORE_HBA = '# pgpilot: restore in progress. Unix socket only (pod-private); no TCP access.\nlocal all all trust\n';

export interface PostgresArgsOptions {
  /** Overrides the ConfigMap's pg_hba.conf (restoreHbaFile during a restore). */
  hbaFile?: string;
  /** Settings above the configuration for this start (a replica's standby minimums). */
  overrides?: Record<string, string>;
  /**
   * The server certificate postgresql.conf names is not there (a pod made before TLS, during the
   * rollout an operator upgrade starts): ssl=off, or postgres would refuse to start.
   */
  noServerCertificate?: boolean;
}

/**
 * Per-instance settings go on the command line rather than in a file: command-line values win
 * over postgresql.conf and postgresql.auto.conf (so an ALTER SYSTEM or an auto.conf copied from
 * another instance by pg_basebackup/pg_rewind cannot move this server's address), they never
 * change for the life of the pod, and config_file/hba_file point straight at the mounted
 * ConfigMap, so an update is one pg_reload_conf() away with nothing to copy. primary_conninfo is
 * the one per-instance setting that changes at run time: it lives in postgresql.auto.conf
 * (ALTER SYSTEM while running, rewritten by the agent after every clone or rewind).
 */
export function postgresArgs(s: Pick<AgentSettings, 'pgdata' | 'configDir' | 'podIp' | 'pgPort' | 'instance'>, socketDir: string, opts: PostgresArgsOptions = {}): string[] {
  const set = (name: string, value: string | number) => ['-c', `${name}=${value}`];
  return [
    '-D',
    s.pgdata,
    ...set('config_file', join(s.configDir, 'postgresql.conf')),
    ...set('hba_file', opts.hbaFile ?? join(s.configDir, 'pg_hba.conf')),
    // The ConfigMap has no ident file; the data directory's (from initdb) is empty of maps.
    ...set('ident_file', join(s.pgdata, 'pg_ident.conf')),
    ...set('listen_addresses', s.podIp),
    ...set('port', s.pgPort),
    ...set('unix_socket_directories', socketDir),
    // The walreceiver's application_name defaults to cluster_name: synchronous_standby_names
    // 'ANY n (*)' and pg_stat_replication see the instance name.
    ...set('cluster_name', s.instance),
    ...(opts.noServerCertificate ? set('ssl', 'off') : []),
    ...Object.entries(opts.overrides ?? {}).flatMap(([k, v]) => set(k, v)),
  ];
}
