// Role changes besides follow (follow.ts): promote a replica (or confirm a read-only former
// primary), fence (stop postgres and keep it stopped), unfence.
import { timelineOfWalFile } from '../postgres/lsn.js';
import * as sql from '../postgres/sql.js';
import type { AgentState } from './agent-state.js';
import type { FenceRequest, PromoteResult } from './api-types.js';
import { HttpError } from './requests.js';
import { restoreFlow, restorePending, startPostgres } from './startup.js';

export function promote(a: AgentState): Promise<PromoteResult> {
  return a.ops.operate('promote', null, async (step) => {
    a.requireRunning('promote');
    step('pg_promote');
    const t0 = Date.now();
    return sql.withClient({ ...(await a.local()), queryTimeoutMs: 90_000 }, async (c) => {
      if (await sql.isInRecovery(c)) {
        a.log.info('promoting');
        if (!(await sql.promote(c, 60))) throw new HttpError(500, 'promotion did not complete within 60 s');
        // A primary keeps no primary_conninfo: clones copy postgresql.auto.conf.
        await sql.setPrimaryConninfo(c, null);
      }
      a.awaitingRole = false;
      const pos = await sql.primaryPosition(c);
      const result = { timeline: timelineOfWalFile(pos.walFile), lsn: pos.lsn };
      a.log.info({ ...result, ms: Date.now() - t0 }, 'primary');
      return result;
    });
  });
}

export function fence(a: AgentState, req: FenceRequest = {}): Promise<void> {
  return a.ops.operate('fence', null, async (step) => {
    if (!(await a.hasData())) throw new HttpError(409, 'nothing to fence: no data directory');
    await a.raiseFence();
    step('stopping postgres');
    // Fast first: walsenders ship everything, the shutdown checkpoint included, to the replicas
    // (a switchover loses nothing); immediate when that cannot finish within the budget
    // (switchoverDelaySeconds; the operator then gives the role to the replica with most WAL).
    await a.pg.stopWithin((req.stopSeconds ?? a.settings.stopTimeoutSeconds) * 1000, 'fast');
    a.phase.setPhase('Fenced', 'fenced by the operator');
    a.log.warn('fenced: postgres stopped and kept stopped');
  });
}

export function unfence(a: AgentState): Promise<void> {
  return a.ops.exclusive(async () => {
    if (!a.fenced) {
      if (!a.pg.running && (await a.hasData())) await startPostgres(a);
      return;
    }
    await a.liftFence('unfencing');
    if (await restorePending(a)) {
      // Fenced between recovery and the role step: finish the restore instead of a plain start.
      a.restore = restoreFlow(a);
      await a.restore.finish();
      return;
    }
    await startPostgres(a);
    a.log.info('unfenced: postgres runs again');
  });
}
