// The health snapshot anomaly detection reads (InstanceStatus.health), refreshed on its own
// timer — never on the hot GET /v1/status path — on a fresh connection with a short statement
// timeout; and the corrections the operator asks for through POST /v1/correct:
//   terminateIdleInTransaction  pg_terminate_backend() of client backends idle in a transaction
//                               longer than the limit (checked again in the same statement);
//   dropSlot                    pg_drop_replication_slot() of a slot still inactive and still
//                               retaining at least the limit (checked in the same statement);
//   vacuumFreeze                VACUUM (FREEZE) in each named database, one after the other, in
//                               the background (InstanceStatus.vacuum); a request while one runs
//                               joins it.
// Each is idempotent: a repeat finds nothing left to do. After one, the snapshot is taken again.
import type pg from 'pg';
import { HEALTH_ACTIVITY_SQL, HEALTH_DATABASES_SQL, HEALTH_SETTINGS_SQL, HEALTH_SLOTS_SQL, HEALTH_VERSION_SQL, healthCheckpointsSql, shapeHealth, type HealthSnapshot } from '../postgres/health-queries.js';
import * as sql from '../postgres/sql.js';
import { errorText } from '../util/error-text.js';
import type { AgentState } from './agent-state.js';
import type { CorrectionRequest, CorrectionResult, VacuumStatus } from './api-types.js';
import { HttpError } from './requests.js';

/** How often the snapshot is refreshed. */
export const HEALTH_INTERVAL_MS = 5000;
/** Each query of the snapshot and of a correction (server side). */
const STATEMENT_TIMEOUT_MS = 2000;

/** The snapshot's queries on one connection (also used by the integration test). */
export async function takeHealthSnapshot(c: pg.Client, now = () => new Date()): Promise<HealthSnapshot> {
  const facts = (await c.query<{ version_num: number; in_recovery: boolean }>(HEALTH_VERSION_SQL)).rows[0]!;
  const databases = (await c.query(HEALTH_DATABASES_SQL)).rows;
  const activity = (await c.query(HEALTH_ACTIVITY_SQL)).rows;
  const settings = (await c.query(HEALTH_SETTINGS_SQL)).rows;
  const slots = facts.in_recovery ? null : (await c.query(HEALTH_SLOTS_SQL)).rows;
  const checkpoints = (await c.query(healthCheckpointsSql(facts.version_num))).rows[0];
  return shapeHealth({ databases, activity, settings, slots, checkpoints }, now());
}

export const TERMINATE_IDLE_SQL = `
SELECT pid, datname, usename, extract(epoch FROM now() - state_change)::float8 AS idle_seconds, pg_terminate_backend(pid) AS terminated
  FROM pg_stat_activity
 WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
   AND state IN ('idle in transaction', 'idle in transaction (aborted)')
   AND now() - state_change > make_interval(secs => $1)`;

export const DROP_SLOT_SQL = `
SELECT pg_drop_replication_slot(slot_name) IS NULL AS dropped
  FROM pg_replication_slots
 WHERE slot_name = $1 AND NOT active AND restart_lsn IS NOT NULL AND pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn) >= $2`;

export class HealthMonitor {
  private snapshot: HealthSnapshot | null = null;
  private timer: NodeJS.Timeout | undefined;
  private refreshing: Promise<void> | undefined;
  private vacuumStatus: VacuumStatus | null = null;
  private vacuumRun: Promise<void> | undefined;

  constructor(
    private readonly a: AgentState,
    private readonly intervalMs = HEALTH_INTERVAL_MS,
  ) {}

  start(): void {
    void this.refresh();
    this.timer = setInterval(() => void this.refresh(), this.intervalMs);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** The last snapshot; null while postgres does not run (or before the first). */
  current(): HealthSnapshot | null {
    return this.available() ? this.snapshot : null;
  }

  vacuum(): VacuumStatus | null {
    return this.vacuumStatus;
  }

  private available(): boolean {
    const { a } = this;
    return a.pg.ready && !a.restoreHba && !a.fenced && !a.stopping;
  }

  /** Takes a snapshot now (joins one in progress). Failures keep the last one and are logged. */
  refresh(): Promise<void> {
    this.refreshing ??= this.take().finally(() => (this.refreshing = undefined));
    return this.refreshing;
  }

  private async take(): Promise<void> {
    if (!this.available()) {
      this.snapshot = null;
      return;
    }
    try {
      this.snapshot = await sql.withClient({ ...(await this.a.local()), connectTimeoutMs: 1000, statementTimeoutMs: STATEMENT_TIMEOUT_MS, queryTimeoutMs: STATEMENT_TIMEOUT_MS + 1000, applicationName: 'pgpilot-health' }, (c) =>
        takeHealthSnapshot(c),
      );
    } catch (err) {
      this.a.log.warn({ err: errorText(err) }, 'health snapshot failed');
    }
  }

  async correct(req: CorrectionRequest): Promise<[number, CorrectionResult]> {
    this.a.requireRunning(req.action);
    switch (req.action) {
      case 'terminateIdleInTransaction':
        return [200, await this.terminateIdle(req.olderThanSeconds)];
      case 'dropSlot':
        return [200, await this.dropSlot(req.slot, req.minRetainedBytes)];
      case 'vacuumFreeze':
        return [202, this.startVacuum(req.databases)];
    }
  }

  private async withLocal<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
    return sql.withClient({ ...(await this.a.local()), statementTimeoutMs: 5000, queryTimeoutMs: 6000, applicationName: 'pgpilot-correction' }, fn);
  }

  private async terminateIdle(olderThanSeconds: number): Promise<CorrectionResult> {
    const rows = await this.withLocal(async (c) => (await c.query<{ pid: number; datname: string | null; usename: string | null; idle_seconds: number; terminated: boolean }>(TERMINATE_IDLE_SQL, [olderThanSeconds])).rows);
    const terminated = rows.filter((r) => r.terminated).map((r) => ({ pid: r.pid, database: r.datname, user: r.usename, idleSeconds: Math.round(r.idle_seconds) }));
    const message =
      terminated.length === 0
        ? `no session idle in transaction for more than ${olderThanSeconds} s`
        : `terminated ${terminated.length} session(s) idle in transaction for more than ${olderThanSeconds} s: ${terminated.map((t) => `pid ${t.pid} (${t.user ?? '?'}@${t.database ?? '?'}, idle ${t.idleSeconds} s)`).join(', ')}`;
    if (terminated.length > 0) this.a.log.warn({ terminated }, message);
    await this.refresh();
    return { action: 'terminateIdleInTransaction', message, terminated };
  }

  private async dropSlot(slot: string, minRetainedBytes: number): Promise<CorrectionResult> {
    if (await this.a.isPrimaryOnDisk().then((p) => !p)) throw new HttpError(409, 'slots are dropped on the primary only');
    const dropped = await this.withLocal(async (c) => ((await c.query(DROP_SLOT_SQL, [slot, minRetainedBytes])).rowCount ?? 0) > 0);
    const message = dropped ? `dropped the inactive replication slot ${slot}` : `slot ${slot} not dropped: it is gone, active, or retains less than ${minRetainedBytes} bytes`;
    this.a.log.warn({ slot, dropped }, message);
    await this.refresh();
    return { action: 'dropSlot', message, dropped };
  }

  private startVacuum(databases: string[]): CorrectionResult {
    if (this.vacuumRun && this.vacuumStatus) return { action: 'vacuumFreeze', message: `VACUUM (FREEZE) already running (${this.vacuumStatus.current ?? ''})`, vacuum: { ...this.vacuumStatus } };
    const status: VacuumStatus = { databases, state: 'running', current: databases[0] ?? null, done: 0, startedAt: new Date().toISOString(), finishedAt: null, error: null };
    this.vacuumStatus = status;
    this.a.log.info({ databases }, 'VACUUM (FREEZE) started');
    this.vacuumRun = this.runVacuum(status)
      .then(
        () => void Object.assign(status, { state: 'succeeded', finishedAt: new Date().toISOString() }),
        (err: unknown) => {
          Object.assign(status, { state: 'failed', error: errorText(err), finishedAt: new Date().toISOString() });
          this.a.log.error({ err: errorText(err), database: status.current }, 'VACUUM (FREEZE) failed');
        },
      )
      .finally(() => {
        this.vacuumRun = undefined;
        this.a.log.info({ state: status.state, databases }, 'VACUUM (FREEZE) ended');
        void this.refresh();
      });
    return { action: 'vacuumFreeze', message: `VACUUM (FREEZE) started in ${databases.join(', ')}`, vacuum: { ...status } };
  }

  /** Each database on its own connection (the name is a connection parameter, never SQL text), no statement timeout. */
  private async runVacuum(status: VacuumStatus): Promise<void> {
    for (const database of status.databases) {
      if (this.a.stopping) throw new Error('the agent is stopping');
      status.current = database;
      await sql.withClient({ ...(await this.a.local()), database, queryTimeoutMs: 24 * 3600_000, applicationName: 'pgpilot-vacuum-freeze' }, (c) => c.query('VACUUM (FREEZE)'));
      status.done++;
    }
  }
}
