// InstanceStatus from what the agent knows (phase, restarts, files) and what SQL says (pure).
import type { InstancePhase, InstanceRole, InstanceStatus, ReplicationPeer } from './api-types.js';
import { followingFromConninfo } from '../postgres/conninfo.js';
import { compareLsn, timelineOfWalFile } from '../postgres/lsn.js';
import type { ReplicationRow, SqlSnapshot } from '../postgres/server-info.js';

export interface AgentView {
  instance: string;
  phase: InstancePhase;
  fenced: boolean;
  running: boolean;
  restarts: number;
  lastError: string | null;
  /** From the data directory when postgres is down: standby.signal → replica; no data → none. */
  roleOnDisk: InstanceRole;
}

function peer(r: ReplicationRow): ReplicationPeer {
  return {
    applicationName: r.application_name ?? '',
    clientAddr: r.client_addr,
    state: r.state ?? 'unknown',
    syncState: r.sync_state ?? 'unknown',
    sentLsn: r.sent_lsn,
    writeLsn: r.write_lsn,
    flushLsn: r.flush_lsn,
    replayLsn: r.replay_lsn,
  };
}

function primaryTimeline(s: SqlSnapshot): number | null {
  if (s.currentWalFile) {
    try {
      return timelineOfWalFile(s.currentWalFile);
    } catch {
      /* fall through to the checkpoint's timeline */
    }
  }
  return s.checkpointTimeline;
}

export function shapeStatus(view: AgentView, sql: SqlSnapshot | null): InstanceStatus {
  const base: InstanceStatus = {
    instance: view.instance,
    phase: view.phase,
    role: view.roleOnDisk,
    running: false,
    fenced: view.fenced,
    postgresVersion: null,
    systemIdentifier: null,
    timeline: null,
    currentLsn: null,
    receiveLsn: null,
    replayLsn: null,
    following: null,
    streaming: false,
    replication: [],
    pendingRestart: false,
    restarts: view.restarts,
    lastError: view.lastError,
  };
  if (!sql || !view.running) return base;
  const common = {
    ...base,
    running: true,
    postgresVersion: sql.serverVersion,
    systemIdentifier: sql.systemIdentifier,
    pendingRestart: sql.pendingRestart,
  };
  if (!sql.inRecovery) {
    return {
      ...common,
      role: 'primary',
      timeline: primaryTimeline(sql),
      currentLsn: sql.currentLsn,
      replication: sql.replication.map(peer),
    };
  }
  const streaming = sql.walReceiverStatus === 'streaming';
  return {
    ...common,
    role: 'replica',
    // The received timeline is the primary's; the checkpoint's lags until the next restartpoint.
    timeline: sql.receivedTimeline ?? sql.checkpointTimeline,
    // After a restart, pg_last_wal_receive_lsn() reports where streaming restarted (a segment
    // start) until new WAL arrives, which can be behind what was already replayed: report the
    // WAL the replica has, so failover candidates compare correctly.
    receiveLsn: compareLsn(sql.replayLsn, sql.receiveLsn) > 0 ? sql.replayLsn : sql.receiveLsn,
    replayLsn: sql.replayLsn,
    following: followingFromConninfo(sql.primaryConninfo) ?? followingFromConninfo(sql.walReceiverConninfo),
    streaming,
  };
}
