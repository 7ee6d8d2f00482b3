// The anomalies reconciler (anomalies.ts): it asks the instance's agent for each correction the
// plan wants, records what was done (an Event, a line in status.anomalies.corrections), turns a
// failed call into an Event rather than an error, and reports a raise of max_wal_size.
import { describe, expect, it } from 'vitest';
import type { AgentClient, AgentEndpoint } from '../instance/agent-client.js';
import type { CorrectionRequest, CorrectionResult, HealthSnapshot, InstanceStatus } from '../instance/api-types.js';
import { instanceStatus } from '../../test/support/instance-status.js';
import { seedCluster } from '../../test/support/cluster-fixtures.js';
import { createAnomaliesReconciler } from './anomalies.js';
import type { ReconcileContext } from './types.js';
import type { AnomaliesStatus } from '../api/anomalies.js';

const health = (over: Partial<HealthSnapshot>): HealthSnapshot => ({
  observedAt: '2026-03-01T12:00:00Z',
  databases: [{ name: 'app', xidAge: 100 }],
  oldestActive: null,
  idleInTransaction: { count: 0, oldest: null },
  connections: { used: 1, max: 100, superuserReserved: 3 },
  slots: [],
  checkpoints: { timed: 0, requested: 10, statsReset: null },
  maxWalSizeBytes: 1024 * 2 ** 20,
  ...over,
});

function context(agent: InstanceStatus, previous?: AnomaliesStatus) {
  const cluster = seedCluster({ instances: 1 });
  cluster.status = { currentPrimary: 'prod-db-1', ...(previous ? { anomalies: previous } : {}) };
  const events: [string, string, string][] = [];
  const ctx = {
    cluster,
    status: { currentPrimary: 'prod-db-1' },
    observed: { instances: [{ name: 'prod-db-1', podIP: '127.0.0.9', agent }], agentToken: 't', isolationSeconds: 0 },
    log: { info: () => undefined },
    event: (type: string, reason: string, message: string) => (events.push([type, reason, message]), Promise.resolve()),
  } as unknown as ReconcileContext;
  return { ctx, events };
}

function fakeAgent(answer: (req: CorrectionRequest) => CorrectionResult) {
  const calls: [AgentEndpoint, CorrectionRequest][] = [];
  const agent = { correct: (ep: AgentEndpoint, req: CorrectionRequest) => (calls.push([ep, req]), Promise.resolve(answer(req))) } as unknown as AgentClient;
  return { agent, calls };
}

const idleSession = { pid: 7, database: 'app', user: 'app', applicationName: null, seconds: 900 };

describe('the anomalies reconciler', () => {
  it('terminates sessions idle in transaction through the agent, with an Event and a record', async () => {
    const { ctx, events } = context(instanceStatus({ role: 'primary', currentLsn: '0/1', health: health({ idleInTransaction: { count: 1, oldest: idleSession } }) }));
    const { agent, calls } = fakeAgent(() => ({ action: 'terminateIdleInTransaction', message: 'terminated 1 session(s)', terminated: [{ pid: 7, database: 'app', user: 'app', idleSeconds: 900 }] }));
    const res = await createAnomaliesReconciler({ agent }).reconcile(ctx);
    expect(calls).toEqual([[{ host: '127.0.0.9', token: 't', isolationSeconds: 0 }, { action: 'terminateIdleInTransaction', olderThanSeconds: 600 }]]);
    expect(events).toEqual([['Warning', 'IdleTransactionsTerminated', 'prod-db-1: terminated 1 session(s)']]);
    expect(res.status?.anomalies?.corrections).toEqual([{ action: 'terminateIdleInTransaction', instance: 'prod-db-1', time: expect.any(String) as string, message: 'prod-db-1: terminated 1 session(s)' }]);
    expect(res.conditions?.find((c) => c.type === 'LongTransactions')?.status).toBe('True');
    expect(res.requeueAfterMs).toBe(30_000);
  });

  it('records nothing when the agent found nothing left to do, and an Event when the call fails', async () => {
    const status = instanceStatus({ role: 'primary', currentLsn: '0/1', health: health({ idleInTransaction: { count: 1, oldest: idleSession } }) });
    const quiet = context(status);
    const none = await createAnomaliesReconciler({ agent: fakeAgent(() => ({ action: 'terminateIdleInTransaction', message: 'none', terminated: [] })).agent }).reconcile(quiet.ctx);
    expect(quiet.events).toEqual([]);
    expect(none.status?.anomalies?.corrections).toBeUndefined();
    const failing = context(status);
    const agent = { correct: () => Promise.reject(new Error('HTTP 409: postgres is not running')) } as unknown as AgentClient;
    await createAnomaliesReconciler({ agent }).reconcile(failing.ctx);
    expect(failing.events).toEqual([['Warning', 'CorrectionFailed', 'terminateIdleInTransaction on prod-db-1: HTTP 409: postgres is not running']]);
  });

  it('raises max_wal_size when a forced window closes: an Event, status for the ConfigMap, a prompt requeue', async () => {
    const previous = { checkpointWindow: { instance: 'prod-db-1', timed: 0, requested: 0, since: '2026-03-01T11:00:00Z' } };
    const { ctx, events } = context(instanceStatus({ role: 'primary', currentLsn: '0/1', health: health({}) }), previous);
    const res = await createAnomaliesReconciler({ agent: fakeAgent(() => ({ action: 'vacuumFreeze', message: '' })).agent }).reconcile(ctx);
    // The seed's 100Gi volume: doubled from 1024MB, far under half of it.
    expect(res.status?.anomalies?.maxWalSize).toMatchObject({ value: '2048MB' });
    expect(events[0]).toEqual(['Normal', 'MaxWalSizeRaised', expect.stringContaining('max_wal_size raised from 1024MB to 2048MB on every instance') as string]);
    expect(res.requeueAfterMs).toBe(1000);
  });
});
