// Anomaly detection (anomalies-plan.ts): each condition raised with the instance, the object, the
// numbers and the threshold's field, cleared with a reason; the corrections each asks for, and
// only when allowed; the checkpoint window over snapshots; the raise of max_wal_size and its cap.
import { describe, expect, it } from 'vitest';
import { resolveAnomalies, type AnomaliesSpec } from '../api/anomalies.js';
import type { HealthSnapshot, InstanceStatus } from '../instance/api-types.js';
import { instanceStatus } from '../../test/support/instance-status.js';
import { advanceWindow, planAnomalies, type AnomalyInput } from './anomalies-plan.js';

const NOW = new Date('2026-03-01T12:00:00Z');

function health(over: Partial<HealthSnapshot> = {}): HealthSnapshot {
  return {
    observedAt: NOW.toISOString(),
    databases: [
      { name: 'app', xidAge: 5000 },
      { name: 'postgres', xidAge: 4000 },
    ],
    oldestActive: null,
    idleInTransaction: { count: 0, oldest: null },
    connections: { used: 5, max: 100, superuserReserved: 3 },
    slots: [],
    checkpoints: { timed: 10, requested: 1, statsReset: null },
    maxWalSizeBytes: 128 * 2 ** 20,
    ...over,
  };
}

const primary = (over: Partial<InstanceStatus> = {}, h: Partial<HealthSnapshot> = {}) =>
  instanceStatus({ role: 'primary', running: true, currentLsn: '0/A000000', replication: [], archiving: null, health: health(h), ...over });
const replica = (h: Partial<HealthSnapshot> = {}) => instanceStatus({ role: 'replica', running: true, health: health({ slots: [], ...h }) });

function input(over: { spec?: AnomaliesSpec; primary?: InstanceStatus; replica?: InstanceStatus } & Omit<Partial<AnomalyInput>, 'primary'> = {}): AnomalyInput {
  return {
    anomalies: resolveAnomalies({ autopilot: { anomalies: over.spec ?? {} } }),
    primary: 'db-1',
    instances: [
      { name: 'db-1', agent: over.primary ?? primary() },
      { name: 'db-2', agent: over.replica ?? replica() },
    ],
    previous: over.previous,
    walVolumeBytes: over.walVolumeBytes ?? 512 * 2 ** 20,
    userMaxWalSize: over.userMaxWalSize,
    now: over.now ?? NOW,
  };
}

const cond = (plan: ReturnType<typeof planAnomalies>, type: string) => plan.conditions.find((c) => c.type === type)!;

describe('anomaly detection', () => {
  it('reports every anomaly condition False with a reason on a healthy cluster, and asks for nothing', () => {
    const plan = planAnomalies(input());
    expect(plan.conditions.map((c) => [c.type, c.status, c.reason])).toEqual([
      ['XidWraparoundRisk', 'False', 'XidAgeNormal'],
      ['LongTransactions', 'False', 'NoLongTransactions'],
      ['ReplicationLagging', 'False', 'ReplicasCaughtUp'],
      ['SlotRetainingWal', 'False', 'NoSlotRetainingWal'],
      ['WalGrowingArchiveFailing', 'False', 'ArchivingOff'],
      ['ConnectionsNearLimit', 'False', 'ConnectionsBelowLimit'],
      ['CheckpointsForced', 'Unknown', 'WindowOpen'],
    ]);
    expect(plan.corrections).toEqual([]);
    expect(plan.status.checkpointWindow).toMatchObject({ instance: 'db-1', timed: 10, requested: 1 });
  });

  it('is Unknown everywhere when disabled, keeping what corrections did', () => {
    const previous = { corrections: [{ action: 'vacuumFreeze', instance: 'db-1', time: NOW.toISOString(), message: 'x' }] };
    const plan = planAnomalies(input({ spec: { enabled: false }, previous }));
    expect(new Set(plan.conditions.map((c) => `${c.status}/${c.reason}`))).toEqual(new Set(['Unknown/DetectionDisabled']));
    expect(plan.status).toEqual(previous);
  });

  it('XidWraparoundRisk: the databases past xidAge, and a VACUUM (FREEZE) in them, oldest first — not again while one runs or just ended', () => {
    const old = primary({}, { databases: [{ name: 'app', xidAge: 1_500_000_000 }, { name: 'postgres', xidAge: 1_200_000_000 }, { name: 'template1', xidAge: 10 }] });
    const plan = planAnomalies(input({ primary: old }));
    expect(cond(plan, 'XidWraparoundRisk')).toMatchObject({ status: 'True', reason: 'XidAgeHigh' });
    expect(cond(plan, 'XidWraparoundRisk').message).toContain('app 1,500,000,000, postgres 1,200,000,000');
    expect(cond(plan, 'XidWraparoundRisk').message).toContain('spec.autopilot.anomalies.xidAge 1,000,000,000');
    expect(plan.corrections).toEqual([{ instance: 'db-1', request: { action: 'vacuumFreeze', databases: ['app', 'postgres'] } }]);

    const running = { ...old, vacuum: { databases: ['app'], state: 'running' as const, current: 'app', done: 0, startedAt: NOW.toISOString(), finishedAt: null, error: null } };
    const during = planAnomalies(input({ primary: running }));
    expect(during.corrections).toEqual([]);
    expect(cond(during, 'XidWraparoundRisk').message).toContain('VACUUM (FREEZE) running in app');
    const justEnded = { ...old, vacuum: { ...running.vacuum, state: 'succeeded' as const, finishedAt: new Date(NOW.getTime() - 60_000).toISOString() } };
    expect(planAnomalies(input({ primary: justEnded })).corrections).toEqual([]);
    expect(planAnomalies(input({ primary: justEnded, now: new Date(NOW.getTime() + 11 * 60_000) })).corrections).toHaveLength(1);
    expect(planAnomalies(input({ primary: old, spec: { corrections: { vacuumFreeze: false } } })).corrections).toEqual([]);
  });

  it('LongTransactions: an active transaction past transactionSeconds, idle sessions past idleInTransactionSeconds terminated on their instance', () => {
    const session = { database: 'app', user: 'app', applicationName: 'psql' };
    const p = primary({}, { oldestActive: { pid: 11, seconds: 4000, ...session } });
    const r = replica({ idleInTransaction: { count: 2, oldest: { pid: 22, seconds: 700, ...session } } });
    const plan = planAnomalies(input({ primary: p, replica: r }));
    const c = cond(plan, 'LongTransactions');
    expect(c).toMatchObject({ status: 'True', reason: 'LongAndIdleTransactions' });
    expect(c.message).toContain('db-1: pid 11 (app@app) has been in a transaction for 4,000 s (spec.autopilot.anomalies.transactionSeconds 3,600)');
    expect(c.message).toContain('db-2: 2 session(s) idle in transaction, the longest pid 22 (app@app) for 700 s');
    expect(plan.corrections).toEqual([{ instance: 'db-2', request: { action: 'terminateIdleInTransaction', olderThanSeconds: 600 } }]);
    expect(planAnomalies(input({ primary: p, replica: r, spec: { corrections: { terminateIdleInTransaction: false } } })).corrections).toEqual([]);
    expect(cond(planAnomalies(input({ primary: p })), 'LongTransactions').reason).toBe('LongTransaction');
    expect(cond(planAnomalies(input({ replica: r })), 'LongTransactions').reason).toBe('IdleInTransaction');
  });

  it('ReplicationLagging: a replica whose replay is replicationLag or more behind the primary', () => {
    const peer = { applicationName: 'db-2', clientAddr: '127.0.0.2', state: 'streaming', syncState: 'async', sentLsn: '0/A000000', writeLsn: '0/A000000', flushLsn: '0/A000000', replayLsn: '0/1000000' };
    const p = primary({ replication: [peer] });
    const plan = planAnomalies(input({ primary: p, spec: { replicationLag: '64Mi' } }));
    expect(cond(plan, 'ReplicationLagging')).toMatchObject({ status: 'True', reason: 'ReplicaLagging' });
    expect(cond(plan, 'ReplicationLagging').message).toContain('db-2 has 144 MiB of WAL not replayed');
    expect(cond(planAnomalies(input({ primary: p })), 'ReplicationLagging').status).toBe('False');
  });

  it('SlotRetainingWal: a slot past slotRetainedWal; an inactive one dropped only when allowed, an active one never', () => {
    const slots = [
      { name: 'stale', type: 'physical', active: false, retainedBytes: 6 * 2 ** 30, walStatus: 'extended' },
      { name: 'busy', type: 'logical', active: true, retainedBytes: 7 * 2 ** 30, walStatus: 'reserved' },
      { name: 'small', type: 'physical', active: false, retainedBytes: 2 ** 20, walStatus: 'reserved' },
    ];
    const p = primary({}, { slots });
    const off = planAnomalies(input({ primary: p }));
    expect(cond(off, 'SlotRetainingWal')).toMatchObject({ status: 'True', reason: 'SlotRetainingWal' });
    expect(cond(off, 'SlotRetainingWal').message).toContain("SELECT pg_drop_replication_slot('stale')");
    expect(off.corrections).toEqual([]);
    const on = planAnomalies(input({ primary: p, spec: { corrections: { dropInactiveSlots: true } } }));
    expect(on.corrections).toEqual([{ instance: 'db-1', request: { action: 'dropSlot', slot: 'stale', minRetainedBytes: 5 * 2 ** 30 } }]);
  });

  it('WalGrowingArchiveFailing: archiving fails and archiveBacklogSegments wait; not while it works or the backlog is small', () => {
    const failing = { lastArchivedWal: 'A', lastArchivedTime: '2026-03-01T11:00:00Z', lastFailedWal: 'B', lastFailureTime: '2026-03-01T11:59:00Z', lastFailure: 'connect ECONNREFUSED', backlogSegments: 6, inFlight: 0, archivedCount: 3 };
    const p = primary({ archiving: failing, wal: { bytes: 200 * 2 ** 20, volumeUsedPercent: 40 } });
    const plan = planAnomalies(input({ primary: p }));
    expect(cond(plan, 'WalGrowingArchiveFailing')).toMatchObject({ status: 'True', reason: 'ArchiveFailing' });
    expect(cond(plan, 'WalGrowingArchiveFailing').message).toContain('6 completed segment(s) wait in pg_wal (pg_wal 200 MiB, its volume 40% full)');
    expect(cond(planAnomalies(input({ primary: primary({ archiving: { ...failing, backlogSegments: 2 } }) })), 'WalGrowingArchiveFailing').reason).toBe('ArchivingKeepsUp');
    expect(cond(planAnomalies(input({ primary: primary({ archiving: { ...failing, lastArchivedTime: '2026-03-01T11:59:30Z' } }) })), 'WalGrowingArchiveFailing').status).toBe('False');
  });

  it('ConnectionsNearLimit: an instance at connectionsPercent of max_connections', () => {
    const plan = planAnomalies(input({ replica: replica({ connections: { used: 27, max: 30, superuserReserved: 3 } }) }));
    expect(cond(plan, 'ConnectionsNearLimit')).toMatchObject({ status: 'True', reason: 'ConnectionsNearLimit' });
    expect(cond(plan, 'ConnectionsNearLimit').message).toContain('db-2: 27 of max_connections 30 in use (90%');
    expect(cond(planAnomalies(input({ spec: { connectionsPercent: 95 }, replica: replica({ connections: { used: 27, max: 30, superuserReserved: 3 } }) })), 'ConnectionsNearLimit').status).toBe('False');
  });

  it('conditions are Unknown until the instances report a health snapshot', () => {
    const plan = planAnomalies(input({ primary: instanceStatus({ role: 'primary' }), replica: instanceStatus({ role: 'replica' }) }));
    for (const t of ['XidWraparoundRisk', 'LongTransactions', 'SlotRetainingWal', 'ConnectionsNearLimit', 'ReplicationLagging']) expect(cond(plan, t).status, t).toBe('Unknown');
  });
});

describe('CheckpointsForced', () => {
  const at = (s: number) => new Date(NOW.getTime() + s * 1000);
  const withCp = (timed: number, requested: number, statsReset: string | null = null) => primary({}, { checkpoints: { timed, requested, statsReset } });
  const spec = { checkpointsMinimum: 4, checkpointsWindowSeconds: 600 };

  it('judges a window once it holds checkpointsMinimum checkpoints, from the deltas, and starts the next', () => {
    const first = planAnomalies(input({ spec, primary: withCp(10, 1) }));
    expect(cond(first, 'CheckpointsForced').reason).toBe('WindowOpen');
    const open = planAnomalies(input({ spec, primary: withCp(10, 3), previous: first.status, now: at(60) }));
    expect(open.status.checkpointWindow).toEqual(first.status.checkpointWindow);
    const closed = planAnomalies(input({ spec, primary: withCp(11, 5), previous: open.status, now: at(120) }));
    expect(cond(closed, 'CheckpointsForced')).toMatchObject({ status: 'True', reason: 'CheckpointsForced' });
    expect(cond(closed, 'CheckpointsForced').message).toContain('4 of 5 checkpoints on db-1 in the last window (120 s');
    expect(closed.status.lastCheckpointWindow).toMatchObject({ timed: 1, requested: 4, seconds: 120, forced: true });
    expect(closed.status.checkpointWindow).toMatchObject({ timed: 11, requested: 5, since: at(120).toISOString() });
    // Raised once, when the window closes: doubled from what the primary runs.
    expect(closed.status.maxWalSize).toMatchObject({ value: '256MB' });
    expect(closed.raisedMaxWalSize).toMatchObject({ from: '128MB', to: '256MB' });
    const next = planAnomalies(input({ spec, primary: withCp(11, 5), previous: closed.status, now: at(130) }));
    expect(next.raisedMaxWalSize).toBeUndefined();
    expect(cond(next, 'CheckpointsForced').status).toBe('True');
    expect(next.status.maxWalSize).toEqual(closed.status.maxWalSize);
  });

  it('clears when a window of mostly timed checkpoints closes, or checkpointsWindowSeconds passes with few', () => {
    const forcedBefore = { checkpointWindow: { instance: 'db-1', timed: 10, requested: 1, since: NOW.toISOString() }, lastCheckpointWindow: { instance: 'db-1', timed: 0, requested: 5, seconds: 60, forced: true, closedAt: NOW.toISOString() } };
    const timed = planAnomalies(input({ spec, primary: withCp(14, 2), previous: forcedBefore, now: at(300) }));
    expect(cond(timed, 'CheckpointsForced')).toMatchObject({ status: 'False', reason: 'CheckpointsTimed' });
    expect(timed.raisedMaxWalSize).toBeUndefined();
    const quiet = planAnomalies(input({ spec, primary: withCp(11, 1), previous: forcedBefore, now: at(600) }));
    expect(cond(quiet, 'CheckpointsForced')).toMatchObject({ status: 'False', reason: 'CheckpointsTimed' });
    expect(cond(quiet, 'CheckpointsForced').message).toContain('only 1 checkpoint(s) in 600 s');
  });

  it('starts over on a new primary or a statistics reset', () => {
    const previous = { checkpointWindow: { instance: 'db-1', timed: 10, requested: 1, since: NOW.toISOString() } };
    expect(advanceWindow(input({ spec, primary: withCp(0, 0, '2026-03-01T11:59:00Z'), previous, now: at(60) }))).toMatchObject({ closedNow: false, window: { timed: 0, requested: 0, statsReset: '2026-03-01T11:59:00Z' } });
    expect(advanceWindow(input({ spec, primary: withCp(50, 50), previous: { checkpointWindow: { ...previous.checkpointWindow, instance: 'db-2' } }, now: at(60) }))).toMatchObject({ closedNow: false, window: { instance: 'db-1', timed: 50 } });
  });

  it('never raises past half of the volume holding pg_wal, nor over the user\'s own max_wal_size, nor when turned off', () => {
    const previous = { checkpointWindow: { instance: 'db-1', timed: 0, requested: 0, since: NOW.toISOString() } };
    const forced = (over: Omit<Partial<AnomalyInput>, 'primary'> & { spec?: AnomaliesSpec }) => planAnomalies(input({ primary: withCp(0, 5), previous, now: at(60), ...over, spec: { ...spec, ...over.spec } }));
    expect(forced({ walVolumeBytes: 400 * 2 ** 20 }).status.maxWalSize?.value).toBe('200MB');
    const capped = forced({ walVolumeBytes: 256 * 2 ** 20 });
    expect(capped.status.maxWalSize).toBeUndefined();
    expect(cond(capped, 'CheckpointsForced').message).toContain('already at its cap');
    const user = forced({ userMaxWalSize: '64MB' });
    expect(user.status.maxWalSize).toBeUndefined();
    expect(cond(user, 'CheckpointsForced').message).toContain('spec.postgresql.parameters.max_wal_size 64MB, which wins');
    expect(forced({ spec: { corrections: { raiseMaxWalSize: false } } }).status.maxWalSize).toBeUndefined();
    // Turning the correction off takes a raised value back.
    const raised = { maxWalSize: { value: '256MB', reason: 'x', since: NOW.toISOString() } };
    expect(planAnomalies(input({ previous: raised, spec: { corrections: { raiseMaxWalSize: false } } })).status.maxWalSize).toBeUndefined();
    expect(planAnomalies(input({ previous: raised })).status.maxWalSize).toEqual(raised.maxWalSize);
  });
});
