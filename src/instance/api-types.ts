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
//                            when rewind is impossible or asked for)
//   POST /v1/checkpoint      → 200 after CHECKPOINT (before another instance rewinds against this one)
//   POST /v1/fence           → 200 once postgres is stopped and kept stopped (no writes possible)
// promote, follow and fence are operations: they run in the agent whatever happens to
// the HTTP call, one at a time, and InstanceStatus.operation reports the current or last one.
// `?wait=<ms>` bounds how long the call waits for it: 200 (or the operation's error) when it
// ended in time, else 202 {accepted, operation} and the caller looks at status later. A request
// for the operation already running (same kind and target) joins it. Without wait: until done.
//   POST /v1/unfence         → 200 once postgres runs again
//   POST /v1/reload          → 200 after re-reading the mounted configuration (pg_reload_conf; the custom
//                              queries at their next use); 409 while postgres does not run
//   POST /v1/restart-permit  RestartPermitRequest → RestartPermit: a start of postgres within the
//                            permit comes up writable (a planned restart of this primary in place)
//   POST /v1/correct         CorrectionRequest → CorrectionResult: an anomaly's correction (health.ts):
//                            terminate sessions idle in transaction, drop an inactive slot (both
//                            re-checked in SQL, so a repeat does nothing), or start VACUUM (FREEZE)
//                            in the background (202; a repeat while it runs joins it)
// Errors: JSON ApiError with an HTTP status (400 bad request, 401 no/invalid token, 409 not
// possible in this state, 500 failure).

import type { ArchiverStatus } from '../backup/wal-archiver.js';
import type { HealthSnapshot } from '../postgres/health-queries.js';

export type { HealthSnapshot } from '../postgres/health-queries.js';

export type InstanceRole = 'primary' | 'replica' | 'none';

/**
 * Sent by the operator on every call: the self-isolation timeout in seconds it wants (0: off;
 * spec.highAvailability.isolationTimeoutSeconds, 0 for one instance or HA off). An agent that
 * was never told does not isolate itself.
 */
export const ISOLATION_HEADER = 'x-pgpilot-isolation-timeout';

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

/** One volume of the instance (statfs of the data directory, or of pg_wal on its own volume). */
export interface VolumeUsage {
  /** data: the volume holding PGDATA (and pg_wal without a WAL volume); wal: pg_wal's own volume. */
  volume: 'data' | 'wal';
  /** Size of the file system (blocks × block size). */
  capacityBytes: number;
  /** Used bytes (capacity minus free blocks). */
  usedBytes: number;
  /** Bytes an unprivileged writer may still use (statfs bavail). */
  availableBytes: number;
  /** used / (used + available), 0-100 with one decimal, as df shows it. */
  usedPercent: number;
}

/** A replication slot on the primary and the WAL it holds back. */
export interface SlotRetention {
  slot: string;
  active: boolean;
  /** WAL kept for it: from its restart_lsn to the current position. */
  retainedBytes: number;
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

/** isolate: the agent's own restart read-only (self-isolation, PGPILOT_ISOLATION_TIMEOUT_SECONDS). */
export type OperationKind = 'promote' | 'follow' | 'fence' | 'isolate';

/** A role change or other long call the agent runs in the background (see the API notes above). */
export interface OperationStatus {
  kind: OperationKind;
  /** follow: host:port of the primary to follow. */
  target: string | null;
  state: 'running' | 'succeeded' | 'failed';
  /** What it is doing now (e.g. "pg_rewind", "re-cloning", "waiting for streaming"). */
  step: string;
  startedAt: string;
  finishedAt: string | null;
  error: string | null;
}

/** The exporter's own queries (spec.monitoring.customQueries, src/instance/custom-queries.ts). */
export interface CustomQueriesStatus {
  /** The files read, as `<ConfigMap>/<key>`. */
  files: string[];
  /** Queries loaded (they run at each scrape). */
  loaded: number;
  /**
   * What is wrong: a file (query `custom:<ConfigMap>/<key>`: missing, not valid YAML, not a map),
   * a definition or a collision (query `custom:<name>`: not loaded), the last run of a loaded
   * query (its SQL failed, its result could not be mapped). Empty when all is well.
   */
  problems: { query: string; source: string; error: string }[];
}

/** A role whose password the operator rotates (POST /v1/password; see passwords.ts). */
export type PasswordRole = 'superuser' | 'app';

/**
 * POST /v1/password: one step of a rotation. `digest` is the SHA-256 (hex) of the new password the
 * operator read from the Secret: the agent acts only once its mounted file shows it (else 409).
 * hold (replicas, superuser): hold logins until release or holdMs; apply (primary): ALTER ROLE;
 * release (replicas): wait for the replay of `lsn` (the apply's answer), switch, end the hold.
 * Refusals: 409 the mounted file lags; 503 this instance cannot do it now (not the primary, its
 * server does not answer).
 */
export interface PasswordRequest {
  role: PasswordRole;
  step: 'hold' | 'apply' | 'release';
  digest: string;
  lsn?: string;
  holdMs?: number;
}

export interface PasswordResult {
  /** apply: whether the stored password changed (false: it already was this one). */
  changed?: boolean;
  /** apply: the WAL position after the change's commit. */
  lsn?: string;
  held?: boolean;
  /** release: whether the agent now logs in with the new password. */
  adopted?: boolean;
}

/** POST /v1/post-upgrade: the major version the data came from, and whether its old data directory goes. */
export interface PostUpgradeRequest {
  fromMajor: number;
  /** Remove the old data directory at the end (link mode: it can never run again); copy mode keeps it. */
  removeOld: boolean;
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
  /**
   * An upgraded primary's post-upgrade work (POST /v1/post-upgrade: extension updates, vacuumdb
   * --analyze-in-stages, removing the old data directory), in a sentence; null when none ran.
   * (Optional: see archiving.)
   */
  postUpgrade?: string | null;
  /** The current or last operation (promote, follow, fence, isolate); null before the first. */
  operation?: OperationStatus | null;
  /**
   * A replica that cannot catch up by streaming (its primary removed WAL it still needs): why,
   * else null. The operator answers with a follow that re-clones.
   */
  cannotCatchUp?: string | null;
  /**
   * Started on a data directory that was a primary: it runs read-only (in recovery, following
   * nothing) until the operator confirms it holds the primary Lease (promote) or points it at
   * the primary that does (follow).
   */
  awaitingRole?: boolean;
  /**
   * A replica started with these settings above its configuration, because its data was written
   * by a primary with higher ones (standby-minimums.ts); it restarts with the configured values
   * once it has replayed the primary's change.
   */
  provisionalSettings?: Record<string, string>;
  /** The exporter's own queries: null when the pod has none (or no exporter). */
  customQueries?: CustomQueriesStatus | null;
  /**
   * The health snapshot anomaly detection reads (refreshed on its own timer, never on this call):
   * null until the first one, or while postgres does not run. (Optional: see archiving.)
   */
  health?: HealthSnapshot | null;
  /** The last VACUUM (FREEZE) a correction started: null before the first. (Optional: see archiving.) */
  vacuum?: VacuumStatus | null;
  /** Capacity and use of the data volume, and of the WAL volume when there is one (storage auto-grow). (Optional: see archiving.) */
  volumes?: VolumeUsage[];
  /** A primary's replication slots that hold WAL; empty on a replica. (Optional: see archiving.) */
  slots?: SlotRetention[];
}

/** POST /v1/correct: the correction of an anomaly the operator asks for. */
export type CorrectionRequest =
  /** pg_terminate_backend() of every client backend idle in a transaction for longer than this. */
  | { action: 'terminateIdleInTransaction'; olderThanSeconds: number }
  /** VACUUM (FREEZE) in each database, in this order, in the background. */
  | { action: 'vacuumFreeze'; databases: string[] }
  /** pg_drop_replication_slot() when the slot is still inactive and retains at least this much WAL. */
  | { action: 'dropSlot'; slot: string; minRetainedBytes: number };

export interface CorrectionResult {
  action: CorrectionRequest['action'];
  /** What was done, in a sentence (also for "nothing to do"). */
  message: string;
  /** Terminated sessions (terminateIdleInTransaction). */
  terminated?: { pid: number; database: string | null; user: string | null; idleSeconds: number }[];
  /** The slot was dropped (dropSlot). */
  dropped?: boolean;
  /** The vacuum started or joined (vacuumFreeze). */
  vacuum?: VacuumStatus;
}

export interface VacuumStatus {
  databases: string[];
  state: 'running' | 'succeeded' | 'failed';
  /** The database being vacuumed now (running), or the last one. */
  current: string | null;
  /** Databases finished. */
  done: number;
  startedAt: string;
  finishedAt: string | null;
  error: string | null;
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
  /** Re-clone from the primary instead of repointing or rewinding (it removed WAL this replica needs). */
  reclone?: boolean;
}

/** POST /v1/fence: how long the clean (fast) stop may take before it becomes immediate. */
export interface FenceRequest {
  /** Default: the pod's stop budget (stopDelaySeconds). A switchover sends switchoverDelaySeconds. */
  stopSeconds?: number;
}

/**
 * POST /v1/restart-permit (a running primary only, else 409): a start of postgres on this data
 * directory within `seconds` comes up writable instead of read-only (restart-permit.ts). The
 * operator asks just before it replaces the primary's pod in place, having recorded that it holds
 * failover back for longer than that.
 */
export interface RestartPermitRequest {
  seconds: number;
}

export interface RestartPermit {
  /** When the permit ends (the agent's clock). */
  until: string;
}

export interface PromoteResult {
  timeline: number;
  lsn: string;
}

export interface ApiError {
  error: string;
}
