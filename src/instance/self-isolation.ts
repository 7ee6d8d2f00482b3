// Self-isolation (ISOLATION_HEADER, from spec.highAvailability.isolationTimeoutSeconds): a primary
// that has heard from no operator and has no streaming replica for that long may be on the wrong
// side of a partition, where the operator can already have promoted another instance: it restarts
// read-only (the start guard, startup.ts) and waits to be promoted again or told to follow.
import * as sql from '../postgres/sql.js';
import type { AgentState } from './agent-state.js';
import { errorText } from '../util/error-text.js';
import { DEMOTE_STOP_MS } from './follow.js';
import { startPostgres } from './startup.js';

const ISOLATION_CHECK_MS = 1000;

export class SelfIsolation {
  /** Last authenticated API call (the operator's heartbeat). */
  private lastOperatorContact = Date.now();
  /** The timeout as the operator last sent it (0: off, and until it says). */
  private timeoutMs = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly a: AgentState) {}

  /** The operator called (any authenticated request): it can see this instance. */
  contact(isolationSeconds: number | undefined): void {
    this.lastOperatorContact = Date.now();
    if (isolationSeconds !== undefined) this.timeoutMs = isolationSeconds * 1000;
  }

  start(): void {
    this.timer = setInterval(() => void this.check().catch((err: unknown) => this.a.log.warn({ err: errorText(err) }, 'self-isolation check failed')), ISOLATION_CHECK_MS);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private async check(): Promise<void> {
    const { a } = this;
    const timeoutMs = this.timeoutMs;
    const silentMs = Date.now() - this.lastOperatorContact;
    if (timeoutMs <= 0 || silentMs < timeoutMs || !a.pg.ready || a.fenced || a.ops.busy || a.stopping || a.restoreHba) return;
    const alone = await sql.withClient({ ...(await a.local()), connectTimeoutMs: 1000, queryTimeoutMs: 2000 }, async (c) => {
      const row = (await c.query<{ rec: boolean; n: number }>("SELECT pg_is_in_recovery() AS rec, (SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming')::int AS n")).rows[0]!;
      return !row.rec && row.n === 0;
    });
    if (!alone || Date.now() - this.lastOperatorContact < timeoutMs) return;
    a.log.error({ silentMs, timeoutMs }, 'self-isolation: no operator call and no streaming replica for too long; restarting read-only until the operator confirms this primary');
    await a.ops.operate('isolate', null, async (step) => {
      step('restarting read-only');
      await a.pg.stopWithin(DEMOTE_STOP_MS, 'fast');
      await startPostgres(a);
    });
  }
}
