// The instance agent's HTTP API (port AGENT_PORT): the operator's HA reconciler is its client.
// Every /v1 call needs `Authorization: Bearer <token>` (the cluster's `<name>-agent` Secret,
// mounted at $PGPILOT_SECRETS_DIR/agent/token); /healthz and /readyz are open for the kubelet.
//
//   GET  /healthz            200 while the agent runs and postgres is not crash-looping
//   GET  /readyz             200 while postgres accepts connections and the instance is not fenced
//   GET  /v1/status          InstanceStatus
//   POST /v1/bootstrap       BootstrapRequest → 202; the agent initdb's or clones, then starts postgres
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

export type InstanceRole = 'primary' | 'replica' | 'none';

export type InstancePhase =
  | 'AwaitingBootstrap' // empty data directory, waiting for POST /v1/bootstrap
  | 'Bootstrapping' // initdb or clone in progress
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
}

export type BootstrapRequest =
  | { mode: 'initdb' }
  | { mode: 'clone'; primary: { host: string; port: number } };

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
