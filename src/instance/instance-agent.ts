// The instance agent as its HTTP API sees it (AgentApi, api-server.ts): health, status, and the
// calls, each handed to the part that does it — start-up and bootstrap (startup.ts), role changes
// (role-changes.ts, follow.ts), self-isolation, the configuration watch. The state they share is
// AgentState (agent-state.ts); operations that change it run one at a time (operations.ts).
import { volumeUsage } from './volume-usage.js';
import { exists } from '../postgres/files.js';
import { querySnapshot, type SqlSnapshot } from '../postgres/server-info.js';
import * as sql from '../postgres/sql.js';
import { killRunningTools } from '../postgres/tool.js';
import { AgentState, type AgentDeps } from './agent-state.js';
import type { AgentApi } from './api-server.js';
import type { BootstrapRequest, CorrectionRequest, CorrectionResult, FenceRequest, FollowRequest, InstanceStatus, OperationStatus, PasswordRequest, PasswordResult, PostUpgradeRequest, PromoteResult, RestartPermit, RestartPermitRequest } from './api-types.js';
import { ConfigWatch } from './config-watch.js';
import { errorText } from '../util/error-text.js';
import { follow } from './follow.js';
import { fence, promote, unfence } from './role-changes.js';
import { grantRestartPermit } from './restart-permit.js';
import { SelfIsolation } from './self-isolation.js';
import { applyStandbyMinimums } from './standby-minimums.js';
import { bootstrap, decideStart, guardPrimaryStart } from './startup.js';
import { shapeStatus } from './status.js';
import { PostUpgrade } from './post-upgrade.js';
import { HealthMonitor } from './health.js';

export class InstanceAgent implements AgentApi {
  private readonly a: AgentState;
  private readonly config: ConfigWatch;
  private readonly isolation: SelfIsolation;
  private initialized = false;
  private readonly postUpgradeWork: PostUpgrade;
  private readonly health: HealthMonitor;

  constructor(deps: AgentDeps) {
    this.a = new AgentState(deps, (a) => {
      guardPrimaryStart(a);
      applyStandbyMinimums(a);
    });
    this.config = new ConfigWatch(this.a);
    this.isolation = new SelfIsolation(this.a);
    this.postUpgradeWork = new PostUpgrade(this.a);
    this.health = new HealthMonitor(this.a);
  }

  /** The state the agent's parts share (read by the metrics exporter). */
  get state(): AgentState {
    return this.a;
  }

  /** Decides what to do with the data directory found at start. */
  async init(): Promise<void> {
    try {
      await decideStart(this.a);
    } finally {
      // Until the state on disk is read (a fence, an interrupted bootstrap), the API must not
      // look healthy: it could report a state it does not have.
      this.initialized = true;
    }
  }

  /** The background watches: the mounted configuration, self-isolation, the health snapshot. */
  startWatches(): void {
    this.config.start();
    this.isolation.start();
    this.health.start();
  }

  healthy(): boolean {
    return this.initialized && !this.a.pg.crashLooping;
  }

  ready(): boolean {
    const { a } = this;
    return a.phase.current === 'Running' && a.pg.ready && !a.fenced;
  }

  async status(): Promise<InstanceStatus> {
    const { a } = this;
    const hasData = await a.hasData();
    const roleOnDisk = !hasData ? 'none' : (await exists(a.layout.standbySignal)) ? 'replica' : 'primary';
    let snapshot: SqlSnapshot | null = null;
    // During a restore nobody but the agent can connect: not "running" for anyone else.
    if (a.pg.ready && !a.restoreHba) {
      try {
        snapshot = await sql.withClient(await a.local(), querySnapshot);
      } catch (err) {
        a.log.warn({ err: errorText(err) }, 'status query failed');
      }
    }
    // Streaming again: whatever WAL it once missed, it has caught up.
    if (snapshot?.walReceiverStatus === 'streaming') a.cannotCatchUp = null;
    const health = this.health.current();
    return {
      ...shapeStatus(
        { instance: a.settings.instance, phase: a.phase.current, fenced: a.fenced, running: a.pg.ready && snapshot !== null, restarts: a.pg.restarts, lastError: a.lastError, roleOnDisk },
        snapshot,
      ),
      archiving: a.archiving?.status() ?? null,
      wal: hasData ? await a.walUsage.get() : null,
      restore: a.restore?.status() ?? null,
      postUpgrade: this.postUpgradeWork.report,
      operation: a.ops.current(),
      cannotCatchUp: a.cannotCatchUp,
      awaitingRole: a.awaitingRole,
      customQueries: (await a.customQueries?.status()) ?? null,
      health,
      vacuum: this.health.vacuum(),
      volumes: await volumeUsage(a.settings.pgdata, a.settings.walDir),
      // From the health snapshot (every few seconds), not a query of its own on this hot path.
      slots: (health?.slots ?? []).flatMap((s) => (s.retainedBytes === null ? [] : [{ slot: s.name, active: s.active, retainedBytes: s.retainedBytes }])),
      ...(Object.keys(a.startOverrides).length > 0 ? { provisionalSettings: a.startOverrides } : {}),
    };
  }

  operation(): OperationStatus | null {
    return this.a.ops.current();
  }

  contact(isolationSeconds: number | undefined): void {
    this.isolation.contact(isolationSeconds);
  }

  bootstrap(req: BootstrapRequest): Promise<void> {
    return bootstrap(this.a, req);
  }

  promote(): Promise<PromoteResult> {
    return promote(this.a);
  }

  follow(req: FollowRequest): Promise<void> {
    return follow(this.a, req);
  }

  fence(req: FenceRequest = {}): Promise<void> {
    return fence(this.a, req);
  }

  unfence(): Promise<void> {
    return unfence(this.a);
  }

  /** Not an exclusive operation: a CHECKPOINT changes no role, and must not queue behind one. */
  async checkpoint(): Promise<void> {
    this.a.requireRunning('checkpoint');
    await sql.withClient({ ...(await this.a.local()), queryTimeoutMs: 10 * 60_000 }, (c) => c.query('CHECKPOINT'));
  }

  reload(): Promise<void> {
    return this.config.reload();
  }

  restartPermit(req: RestartPermitRequest): Promise<RestartPermit> {
    return grantRestartPermit(this.a, req.seconds);
  }

  postUpgrade(req: PostUpgradeRequest): Promise<void> {
    return this.postUpgradeWork.start(req);
  }

  password(req: PasswordRequest): Promise<PasswordResult> {
    return this.a.passwords.handle(req);
  }

  correct(req: CorrectionRequest): Promise<[number, CorrectionResult]> {
    return this.health.correct(req);
  }

  async shutdown(signal: string): Promise<void> {
    const { a } = this;
    if (a.stopping) return;
    a.stopping = true;
    a.phase.setPhase('Stopping', `signal ${signal}`);
    this.config.stop();
    this.isolation.stop();
    this.health.stop();
    // Keep a second for our own exit within the pod's grace period.
    const budget = Math.max(1000, a.settings.stopTimeoutSeconds * 1000 - 1000);
    const deadline = Date.now() + budget;
    a.log.info({ signal, budgetMs: budget }, 'shutting down');
    a.aborter.abort();
    killRunningTools();
    // postgres first: its archiver's last round waits for our uploads (archive_command handoff).
    await a.pg.shutdown(budget);
    await a.archiving?.stop(Math.max(500, deadline - Date.now()));
  }
}
