// anomalies: the anomaly conditions (anomalies-plan.ts decides them from the agents' health
// snapshots) and the corrections they allow — a VACUUM (FREEZE), terminating sessions idle in
// transaction, dropping an inactive slot, each asked of the instance's agent (POST /v1/correct,
// idempotent: the agent checks again before it acts); raising max_wal_size goes through
// status.anomalies.maxWalSize, which install renders into the ConfigMap and every agent reloads.
// The appearance and clearing of each anomaly become Events with every other condition's
// (conditions.ts); each correction made is an Event of its own and a line in status.anomalies.
// Reads only while all is well: it looks again every checkIntervalSeconds, since nothing in
// Kubernetes changes when an anomaly appears.
import { resolveAnomalies, type AnomaliesStatus } from '../api/anomalies.js';
import { parseQuantity } from '../api/quantity.js';
import { errorText } from '../util/error-text.js';
import type { AgentClient } from '../instance/agent-client.js';
import type { CorrectionResult } from '../instance/api-types.js';
import { agentEndpoint } from './observe.js';
import { planAnomalies, type PlannedCorrection } from './anomalies-plan.js';
import type { ReconcileContext, Reconciler, ReconcilerResult } from './types.js';

const MAX_RECORDS = 10;

type Record_ = NonNullable<AnomaliesStatus['corrections']>[number];

/** The Event of a correction that did something (none for "nothing left to do"). */
function eventOf(r: CorrectionResult): { type: 'Normal' | 'Warning'; reason: string } | undefined {
  switch (r.action) {
    case 'terminateIdleInTransaction':
      return r.terminated?.length ? { type: 'Warning', reason: 'IdleTransactionsTerminated' } : undefined;
    case 'dropSlot':
      return r.dropped ? { type: 'Warning', reason: 'ReplicationSlotDropped' } : undefined;
    case 'vacuumFreeze':
      // A request that joined a vacuum already running started nothing.
      return r.message.startsWith('VACUUM (FREEZE) started') ? { type: 'Normal', reason: 'VacuumFreezeStarted' } : undefined;
  }
}

/** Asks each correction of its instance's agent; returns what was done (failures are Events, not errors). */
async function correct(ctx: ReconcileContext, agent: AgentClient, planned: PlannedCorrection[]): Promise<Record_[]> {
  const done: Record_[] = [];
  for (const c of planned) {
    const ep = agentEndpoint(ctx.observed, c.instance);
    if (!ep) continue;
    try {
      const result = await agent.correct(ep, c.request);
      const event = eventOf(result);
      if (!event) continue;
      const message = `${c.instance}: ${result.message}`;
      await ctx.event(event.type, event.reason, message);
      ctx.log.info({ instance: c.instance, action: c.request.action }, message);
      done.push({ action: c.request.action, instance: c.instance, time: new Date().toISOString(), message: message.slice(0, 2048) });
    } catch (err) {
      await ctx.event('Warning', 'CorrectionFailed', `${c.request.action} on ${c.instance}: ${errorText(err)}`);
    }
  }
  return done;
}

export function createAnomaliesReconciler(deps: { agent: AgentClient }): Reconciler {
  return {
    name: 'anomalies',
    statusFields: ['anomalies'],
    async reconcile(ctx: ReconcileContext): Promise<ReconcilerResult> {
      const { cluster } = ctx;
      const anomalies = resolveAnomalies(cluster.spec);
      const previous = cluster.status?.anomalies;
      const walVolume = cluster.spec.walStorage?.size ?? cluster.spec.storage.size;
      const plan = planAnomalies({
        anomalies,
        primary: ctx.status.currentPrimary,
        instances: ctx.observed.instances,
        previous,
        walVolumeBytes: parseQuantity(walVolume),
        userMaxWalSize: cluster.spec.postgresql?.parameters?.max_wal_size,
        now: new Date(),
      });
      const done = await correct(ctx, deps.agent, plan.corrections);
      const r = plan.raisedMaxWalSize;
      if (r) {
        const message = `max_wal_size raised from ${r.from} to ${r.to} on every instance (reload): ${r.reason}`;
        await ctx.event('Normal', 'MaxWalSizeRaised', message);
        done.push({ action: 'raiseMaxWalSize', instance: 'all', time: new Date().toISOString(), message: message.slice(0, 2048) });
      }
      const corrections = [...(plan.status.corrections ?? []), ...done].slice(-MAX_RECORDS);
      const status: AnomaliesStatus = { ...plan.status, ...(corrections.length ? { corrections } : {}) };
      const interval = anomalies.checkIntervalSeconds * 1000;
      return {
        conditions: plan.conditions,
        status: Object.keys(status).length ? { anomalies: status } : {},
        // A raise reaches the ConfigMap in the next pass (install renders status.anomalies).
        ...(anomalies.enabled ? { requeueAfterMs: r ? 1000 : interval } : {}),
      };
    },
  };
}
