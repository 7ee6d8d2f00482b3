// The instance agent's HTTP API (port AGENT_PORT): the operator's HA reconciler is its client.
// Every /v1 call needs `Authorization: Bearer <token>` (the cluster's `<name>-agent` Secret,
// mounted at $PGPILOT_SECRETS_DIR/agent/token); /healthz and /readyz are open for the kubelet.
//
//   GET  /healthz            200 while the agent runs and postgres is not crash-looping
//   GET  /readyz             200 while postgres accepts connections and the instance is not fenced
//   GET  /v1/status          InstanceStatus
//   POST /v1/bootstrap       BootstrapRequest → 202; the agent initdb's, clones or restores from
//                            the archive in PGPILOT_RESTORE_SOURCE, then starts postgres
//   POST /v1/promote         → PromoteResult once the instance accepts writes
//   POST /v1/follow          FollowRequest → 200 once following (repoint in place, or demote:
//                            stop, pg_rewind against the new primary, start as a replica; re-clone
//                            when rewind is impossible)
//   POST /v1/checkpoint      → 200 after CHECKPOINT (before another instance rewinds against this one)
//   POST /v1/fence           → 200 once postgres is stopped and kept stopped (no writes possible)
//   POST /v1/unfence         → 200 once postgres runs again
//   POST /v1/reload          → 200 after re-reading the mounted configuration (pg_reload_conf)
// Errors: JSON ApiError with an HTTP status (400 bad request, 401 no/invalid token, 409 not
// possible in this state, 500 failure).

import type { ArchiverStatus } from '../backup/wal-archiver.js';

export type InstanceRole = 'primary' | 'replica' | 'none';

export type InstancePhase =
  | 'AwaitingBootstrap' // empty data directory, waiting for POST /v1/bootstrap
  | 'Bootstrapping' // initdb, clone or restore in progress (restore: see InstanceStatus.restore)
  | 'Starting'
  | 'Running'
  | 'Fenced'
  | 'Rewinding'
  | 'Stopping'
  | 'Failed';

export interface ReplicationPeer {
  applicationName: string;
  clientAddr: string | null;
  state: string; // streaming, catchup, ...
  syncState: string; // sync, quorum, potential, async
  sentLsn: string | null;
  writeLsn: string | null;
  flushLsn: string | null;
  replayLsn: string | null;
}

/**
 * WAL archiving to PGPILOT_BACKUP_LOCATION: the agent's WalArchiver status (last archived and last
 * failed file with times and reason, .ready backlog, uploads in flight, files archived).
 */
export type ArchivingStatus = Omit<ArchiverStatus, 'bytesIn' | 'bytesStored'>;

/** pg_wal's size and how full its volume is (refreshed every few seconds). */
export interface WalUsage {
  /** Sum of the sizes of the files in pg_wal. */
  bytes: number;
  /** Used space of the file system holding pg_wal, 0-100 (as df shows it); null when unknown. */
  volumeUsedPercent: number | null;
}

export type RestorePhase = 'downloading' | 'recovering' | 'finishing' | 'done' | 'failed';

/** A {mode: 'restore'} bootstrap, since the agent started. */
export interface RestoreStatus {
  /**
   * downloading: the base backup into PGDATA; recovering: postgres replays archived WAL (the
   * database is not reachable over TCP meanwhile); finishing: this cluster's passwords, restart
   * as a normal primary; done; failed: see error (also lastError).
   */
  phase: RestorePhase;
  /** The base backup restored (null before it is chosen). */
  backupId: string | null;
  /** Bytes of the stored (compressed) backup downloaded so far. */
  bytes: number;
  /** WAL segments restored from the archive so far (as PostgreSQL logs them). */
  fetchedSegments: number;
  /** Mean time from recovery's request of a WAL file to the answer, in ms. */
  avgFetchMs: number;
  error: string | null;
}

export interface InstanceStatus {
  instance: string;
  phase: InstancePhase;
  role: InstanceRole;
  /** postgres is up and accepting connections. */
  running: boolean;
  fenced: boolean;
  postgresVersion: string | null;
  systemIdentifier: string | null;
  timeline: number | null;
  /** Primary: pg_current_wal_lsn(). Replica: null. */
  currentLsn: string | null;
  /** Replica: pg_last_wal_receive_lsn() / pg_last_wal_replay_lsn(). */
  receiveLsn: string | null;
  replayLsn: string | null;
  /** Replica: host:port it follows (from primary_conninfo), and whether its walreceiver streams. */
  following: string | null;
  streaming: boolean;
  /** Primary: its walsenders. */
  replication: ReplicationPeer[];
  pendingRestart: boolean;
  /** Postmaster restarts by the agent since it started (crash recovery). */
  restarts: number;
  lastError: string | null;
  /**
   * WAL archiving: null when it is off (no PGPILOT_BACKUP_LOCATION). Optional only because an
   * agent of an older version leaves it out; this agent always sends it.
   */
  archiving?: ArchivingStatus | null;
  /** pg_wal: null while there is no data directory. (Optional: see archiving.) */
  wal?: WalUsage | null;
  /** The restore bootstrap: null when none ran since the agent started. (Optional: see archiving.) */
  restore?: RestoreStatus | null;
}

export type BootstrapRequest =
  | { mode: 'initdb' }
  | { mode: 'clone'; primary: { host: string; port: number } }
  /**
   * Restore from the archive in the pod's PGPILOT_RESTORE_SOURCE (backup id and target from
   * PGPILOT_RESTORE_BACKUP_ID / PGPILOT_RESTORE_TARGET): the first instance of a cluster with
   * spec.bootstrap.recovery. 400 when the pod has no restore source.
   */
  | { mode: 'restore' };

export interface FollowRequest {
  primary: { host: string; port: number };
}

export interface PromoteResult {
  timeline: number;
  lsn: string;
}

export interface ApiError {
  error: string;
}
