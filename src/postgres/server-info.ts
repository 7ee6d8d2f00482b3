// What the agent's status query learns about its own server in one round trip: role, position,
// WAL receiver, replication peers, pending restarts (pure types plus the query).
import type pg from 'pg';

/** One row of pg_stat_replication, as the status query returns it. */
export interface ReplicationRow {
  application_name: string | null;
  client_addr: string | null;
  state: string | null;
  sync_state: string | null;
  sent_lsn: string | null;
  write_lsn: string | null;
  flush_lsn: string | null;
  replay_lsn: string | null;
}

/** What the status query returns (sql.ts); null fields where PostgreSQL has no answer. */
export interface SqlSnapshot {
  inRecovery: boolean;
  serverVersion: string;
  systemIdentifier: string | null;
  /** pg_walfile_name(pg_current_wal_lsn()) on a primary (its insert timeline). */
  currentWalFile: string | null;
  currentLsn: string | null;
  receiveLsn: string | null;
  replayLsn: string | null;
  checkpointTimeline: number | null;
  /** pg_stat_wal_receiver: status ('streaming', ...), received_tli, the conninfo in use. */
  walReceiverStatus: string | null;
  receivedTimeline: number | null;
  walReceiverConninfo: string | null;
  /** SHOW primary_conninfo (what the replica is configured to follow). */
  primaryConninfo: string | null;
  replication: ReplicationRow[];
  pendingRestart: boolean;
}

const STATUS_SQL = `
SELECT pg_is_in_recovery() AS in_recovery,
       current_setting('server_version') AS server_version,
       (SELECT system_identifier::text FROM pg_control_system()) AS system_identifier,
       CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_walfile_name(pg_current_wal_lsn()) END AS current_wal_file,
       CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_lsn()::text END AS current_lsn,
       pg_last_wal_receive_lsn()::text AS receive_lsn,
       pg_last_wal_replay_lsn()::text AS replay_lsn,
       (SELECT timeline_id FROM pg_control_checkpoint()) AS checkpoint_timeline,
       w.status AS wal_receiver_status,
       w.received_tli AS received_tli,
       w.conninfo AS wal_receiver_conninfo,
       current_setting('primary_conninfo') AS primary_conninfo,
       EXISTS (SELECT 1 FROM pg_settings WHERE pending_restart) AS pending_restart
  FROM (SELECT 1) AS one LEFT JOIN pg_stat_wal_receiver AS w ON true`;

const REPLICATION_SQL = `
SELECT application_name, client_addr::text AS client_addr, state, sync_state,
       sent_lsn::text AS sent_lsn, write_lsn::text AS write_lsn, flush_lsn::text AS flush_lsn, replay_lsn::text AS replay_lsn
  FROM pg_stat_replication ORDER BY application_name, client_addr`;

interface StatusRow {
  in_recovery: boolean;
  server_version: string;
  system_identifier: string | null;
  current_wal_file: string | null;
  current_lsn: string | null;
  receive_lsn: string | null;
  replay_lsn: string | null;
  checkpoint_timeline: number | null;
  wal_receiver_status: string | null;
  received_tli: number | null;
  wal_receiver_conninfo: string | null;
  primary_conninfo: string | null;
  pending_restart: boolean;
}

export async function querySnapshot(c: pg.Client): Promise<SqlSnapshot> {
  const s = (await c.query<StatusRow>(STATUS_SQL)).rows[0];
  if (!s) throw new Error('status query returned no row');
  const replication = s.in_recovery ? [] : (await c.query<ReplicationRow>(REPLICATION_SQL)).rows;
  return {
    inRecovery: s.in_recovery,
    serverVersion: s.server_version,
    systemIdentifier: s.system_identifier,
    currentWalFile: s.current_wal_file,
    currentLsn: s.current_lsn,
    receiveLsn: s.receive_lsn,
    replayLsn: s.replay_lsn,
    checkpointTimeline: s.checkpoint_timeline,
    walReceiverStatus: s.wal_receiver_status,
    receivedTimeline: s.received_tli,
    walReceiverConninfo: s.wal_receiver_conninfo,
    primaryConninfo: s.primary_conninfo || null,
    replication,
    pendingRestart: s.pending_restart,
  };
}

