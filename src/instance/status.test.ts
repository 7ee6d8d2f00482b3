// InstanceStatus from what the agent knows and what SQL says (status.ts).
import { describe, expect, it } from 'vitest';
import type { SqlSnapshot } from '../postgres/server-info.js';
import { shapeStatus, type AgentView } from './status.js';

describe('status shaping', () => {
  const view: AgentView = { instance: 'db-1', phase: 'Running', fenced: false, running: true, restarts: 2, lastError: null, roleOnDisk: 'primary' };
  const snap: SqlSnapshot = {
    inRecovery: false,
    serverVersion: '15.18',
    systemIdentifier: '7300000000000000001',
    currentWalFile: '000000030000000000000007',
    currentLsn: '0/7000060',
    receiveLsn: null,
    replayLsn: null,
    checkpointTimeline: 2,
    walReceiverStatus: null,
    receivedTimeline: null,
    walReceiverConninfo: null,
    primaryConninfo: null,
    replication: [{ application_name: 'db-2', client_addr: '10.0.0.8', state: 'streaming', sync_state: 'quorum', sent_lsn: '0/7000060', write_lsn: '0/7000060', flush_lsn: '0/7000060', replay_lsn: '0/7000000' }],
    pendingRestart: true,
  };

  it('shapes a primary: insert timeline (not the lagging checkpoint one), walsenders', () => {
    const s = shapeStatus(view, snap);
    expect(s).toMatchObject({ role: 'primary', running: true, timeline: 3, currentLsn: '0/7000060', receiveLsn: null, following: null, streaming: false, pendingRestart: true, restarts: 2, postgresVersion: '15.18' });
    expect(s.replication).toEqual([{ applicationName: 'db-2', clientAddr: '10.0.0.8', state: 'streaming', syncState: 'quorum', sentLsn: '0/7000060', writeLsn: '0/7000060', flushLsn: '0/7000060', replayLsn: '0/7000000' }]);
  });

  it('shapes a replica: received timeline, where it follows, streaming', () => {
    const s = shapeStatus({ ...view, roleOnDisk: 'replica' }, {
      ...snap,
      inRecovery: true,
      currentWalFile: null,
      currentLsn: null,
      receiveLsn: '0/7000060',
      replayLsn: '0/7000060',
      walReceiverStatus: 'streaming',
      receivedTimeline: 3,
      primaryConninfo: 'host=10.0.0.7 port=5432 user=streaming_replica passfile=/x application_name=db-3',
      replication: [],
    });
    expect(s).toMatchObject({ role: 'replica', timeline: 3, currentLsn: null, receiveLsn: '0/7000060', following: '10.0.0.7:5432', streaming: true, replication: [] });
  });

  it('reports as received what a restarted replica already replayed', () => {
    const s = shapeStatus({ ...view, roleOnDisk: 'replica' }, { ...snap, inRecovery: true, receiveLsn: '0/7000000', replayLsn: '0/7028A20', walReceiverStatus: 'streaming', replication: [] });
    expect(s).toMatchObject({ receiveLsn: '0/7028A20', replayLsn: '0/7028A20' });
  });

  it('reports a stopped or fenced instance from what the agent knows', () => {
    const s = shapeStatus({ ...view, phase: 'Fenced', fenced: true, running: false, roleOnDisk: 'primary' }, null);
    expect(s).toMatchObject({ phase: 'Fenced', fenced: true, running: false, role: 'primary', timeline: null, systemIdentifier: null, replication: [] });
    expect(shapeStatus({ ...view, phase: 'AwaitingBootstrap', running: false, roleOnDisk: 'none' }, null).role).toBe('none');
  });
});
