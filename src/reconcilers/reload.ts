// reload: the annotation postgres.pgpilot.io/reload-requested-at. A new value asks every instance
// whose PostgreSQL runs to reload now (POST /v1/reload: pg_reload_conf(), the custom queries
// re-read), concurrently, each call bounded by a short timeout (a pg_reload_conf() answers at
// once; an agent that does not is reported, not waited for); then status.lastReload and an Event
// (reload-plan.ts). An instance not running reads its configuration when it starts.
import { ANNOTATIONS } from '../api/constants.js';
import type { AgentClient } from '../instance/agent-client.js';
import { errorText } from '../util/error-text.js';
import { reloadOutcome, reloadTargets } from './reload-plan.js';
import { agentEndpoint } from './observe.js';
import type { ReconcileContext, Reconciler, ReconcilerResult } from './types.js';

const RELOAD_TIMEOUT_MS = 3000;

export function createReloadReconciler(deps: { agent: AgentClient }): Reconciler {
  return {
    name: 'reload',
    statusFields: ['lastReload'],
    async reconcile(ctx: ReconcileContext): Promise<ReconcilerResult> {
      const instances = ctx.observed.instances.map((i) => ({ name: i.name, running: !!i.agent?.running && !!agentEndpoint(ctx.observed, i.name) }));
      const t = reloadTargets(ctx.cluster.metadata.annotations?.[ANNOTATIONS.reloadRequestedAt], ctx.status.lastReload, instances);
      if (!t) return {};
      const answers = await Promise.all(
        t.ask.map(async (name) => {
          try {
            await deps.agent.reload(agentEndpoint(ctx.observed, name)!, RELOAD_TIMEOUT_MS);
            return { name };
          } catch (err) {
            return { name, error: errorText(err) };
          }
        }),
      );
      const outcome = reloadOutcome(t, answers, new Date());
      ctx.log.info({ requestedAt: t.requestedAt, reloaded: outcome.status.instances, failed: outcome.status.failed }, outcome.event.message);
      await ctx.event(outcome.event.type, outcome.event.reason, outcome.event.message);
      return { status: { lastReload: outcome.status } };
    },
  };
}
