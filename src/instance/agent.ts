// `pgpilot instance`: PID 1 of every PostgreSQL pod. Ties the pieces together as a small state
// machine (phases of api-types.ts): bootstrap an empty data directory when told, run postgres in
// the role its data says, and change roles (promote, follow/rewind, fence) when the operator asks.
// Operations that change state run one at a time (a promise chain); status reads never wait.
// Role changes are operations (operate()): they run whatever happens to the HTTP call that asked
// for them and report progress in status, so the operator never waits on one.
//
// No writable old primary: every start of postgres on a data directory that was a primary
// (a restart after a crash, a new pod) comes up read-only — standby.signal, following nothing —
// until the operator confirms this instance holds the primary Lease (promote) or points it at the
// primary that does (follow). Only the first start of a bootstrap is writable at once.
//
// As PID 1: Node cannot waitpid() arbitrary processes, so orphans re-parented to us (e.g. the
// backends of a postmaster killed with SIGKILL) are not reaped and stay zombies until the pod
// ends. They hold no resources but a pid. Our own children (postgres, initdb, pg_basebackup,
// pg_rewind) are always waited for through their 'exit' events. If zombies matter, run the agent
// under a minimal init (tini) — nothing here depends on being PID 1.
import { createHash } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import type pg from 'pg';
import { join } from 'node:path';
import { createLogger, type Logger } from '../runtime/logger.js';
import { startApiServer, type AgentApi } from './api-server.js';
import type { BootstrapRequest, FenceRequest, FollowRequest, InstancePhase, InstanceStatus, OperationKind, OperationStatus, PromoteResult } from './api-types.js';
import { Archiving, WalUsageProbe } from './archiving.js';
import { clearIncompleteDataDir, moveAside, runClone, runInitdb } from './bootstrap.js';
import { readSystemIdentifier } from '../postgres/control-file.js';
import { loadSettings, type AgentSettings } from './env.js';
import { exists, isWritableDir, readAgentToken, readCredentials, removeFile, resolvePgBin, touch } from '../postgres/files.js';
import { layoutOf, postgresArgs, restoreHbaFile, restoreSpoolDir, type Layout } from './layout.js';
import { hasDiverged, parseTimelineHistory, timelineOfWalFile } from '../postgres/lsn.js';
import { PostgresProcess } from './postgres-process.js';
import { configureStandby, conninfoFor, rewind, RewindImpossible, writeReplicationPassfile } from './replication.js';
import { HttpError } from './requests.js';
import { RestoreBootstrap } from './restore-bootstrap.js';
import * as sql from '../postgres/sql.js';
import { shapeStatus } from './status.js';
import { querySnapshot, type SqlSnapshot } from '../postgres/server-info.js';
import { killRunningTools } from '../postgres/tool.js';

const READY_TIMEOUT_MS = 10 * 60_000; // crash recovery of a large primary can take long
const REPOINT_TIMEOUT_MS = 10_000;
const STREAMING_TIMEOUT_MS = 20_000;
const CONFIG_POLL_MS = 2000;
/**
 * A demoted primary's WAL past the fork is discarded anyway: a short clean stop, then immediate
 * (pg_rewind finishes the crash recovery itself). A thawed old primary's shutdown otherwise waits
 * on archive_command for its last old-timeline segment, which the new primary archived as .partial.
 */
const DEMOTE_STOP_MS = 1500;
const ISOLATION_CHECK_MS = 1000;
/** The walreceiver's error when the primary no longer has WAL this replica needs. */
const WAL_REMOVED = /requested WAL segment \S+ has already been removed/;

/**
 * bootstrap-pending: initdb → roles (initdb done, roles and database next); clone; restore (base
 * backup and recovery, restore-bootstrap.ts) → restore-roles (promoted, this cluster's passwords
 * next). A restart in initdb, clone or restore discards the partial data directory; in roles or
 * restore-roles it finishes the step.
 */
type PendingStage = 'initdb' | 'roles' | 'clone' | 'restore' | 'restore-roles';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const message = (err: unknown) => (err instanceof Error ? err.message : String(err));

export interface AgentDeps {
  settings: AgentSettings;
  pgBin: string;
  socketDir: string;
  log: Logger;
  serverLog: Logger;
  /** Where S3 credentials named by the archive locations are read (default process.env). */
  env?: NodeJS.ProcessEnv;
}

/** libpq's invalid_authorization_specification: e.g. role "x" does not exist. */
const missingRole = (err: unknown) => (err as { code?: string }).code === '28000' && /does not exist/.test(message(err));

export class InstanceAgent implements AgentApi {
  phase: InstancePhase = 'Starting';
  fenced = false;
  private initialized = false;
  lastError: string | null = null;
  readonly layout: Layout;
  readonly pg: PostgresProcess;
  private queue: Promise<unknown> = Promise.resolve();
  private stopping = false;
  private configHash: string | undefined;
  private configTimer: NodeJS.Timeout | undefined;
  private readonly s: AgentSettings;
  private readonly log: Logger;
  /** WAL archiving (PGPILOT_BACKUP_LOCATION), started with postgres. */
  private readonly archiving: Archiving | undefined;
  private readonly walUsage: WalUsageProbe;
  /** The restore bootstrap of this agent's life (status), if any. */
  private restore: RestoreBootstrap | undefined;
  /** During a restore: the temporary hba (unix socket, trust) and the role the agent logs in as. */
  private restoreHba = false;
  private restoreLogin: string | undefined;
  private readonly aborter = new AbortController();
  /** The current or last operation, and the promise of the running one (a repeat joins it). */
  private op: OperationStatus | null = null;
  private running: { key: string; promise: Promise<unknown> } | undefined;
  /** The next spawn may be a writable primary (set by a bootstrap's own start, consumed by it). */
  private writableOnce = false;
  /** Started read-only on a former primary's data: waiting for promote or follow. */
  private awaitingRole = false;
  /** Why this replica cannot catch up by streaming (see InstanceStatus.cannotCatchUp). */
  private cannotCatchUp: string | null = null;
  /** Last authenticated API call (the operator's heartbeat), for self-isolation. */
  private lastOperatorContact = Date.now();
  /** Self-isolation timeout as the operator last sent it (0: off, and until it says). */
  private isolationTimeoutMs = 0;
  private isolationTimer: NodeJS.Timeout | undefined;

  constructor(private readonly deps: AgentDeps) {
    this.s = deps.settings;
    this.log = deps.log;
    this.layout = layoutOf(this.s);
    this.walUsage = new WalUsageProbe(this.layout.walPath);
    this.pg = new PostgresProcess({
      binary: join(deps.pgBin, 'postgres'),
      args: () => postgresArgs(this.s, deps.socketDir, this.restoreHba ? { hbaFile: restoreHbaFile(this.layout) } : {}),
      log: deps.log,
      serverLog: deps.serverLog,
      probe: () => this.probe(),
      beforeSpawn: () => this.guardPrimaryStart(),
    });
    this.pg.on('line', (line) => {
      if (WAL_REMOVED.test(line)) this.cannotCatchUp = line.replace(/^.*?(FATAL|ERROR): +/, '');
    });
    if (this.s.backup) {
      this.archiving = new Archiving({
        backup: this.s.backup,
        layout: this.layout,
        log: deps.log,
        env: deps.env ?? process.env,
        identity: async () => ({
          systemIdentifier: await readSystemIdentifier(this.layout.pgdata),
          cluster: this.s.cluster,
          namespace: this.s.namespace,
        }),
      });
    }
    this.pg.on('exit', (_c, _s, expected) => {
      if (!expected && this.phase === 'Running') this.phase = 'Starting';
    });
    this.pg.on('ready', () => {
      if (this.phase === 'Starting') this.phase = 'Running';
    });
  }

  private async local(): Promise<sql.ConnectOptions> {
    const superuser = await readCredentials(this.s.secretsDir, 'superuser');
    if (this.restoreHba) {
      // The restored database does not know this cluster's passwords yet: trust on the socket.
      return { host: this.deps.socketDir, port: this.s.pgPort, credentials: { username: this.restoreLogin ?? superuser.username, password: '' } };
    }
    return { host: this.s.podIp, port: this.s.pgPort, credentials: superuser };
  }

  /** One readiness probe. During a restore, a source without our superuser's role: log in as postgres. */
  private async probe(): Promise<boolean> {
    const o = await this.local();
    try {
      await sql.withClient({ ...o, connectTimeoutMs: 1000, queryTimeoutMs: 2000 }, (c) => c.query('SELECT 1'));
      return true;
    } catch (err) {
      this.noteLoginFailure(err);
      return false;
    }
  }

  private noteLoginFailure(err: unknown): void {
    if (this.restoreHba && missingRole(err) && this.restoreLogin === undefined) {
      this.log.warn({ err: message(err) }, 'restore: the source has no role of this name; using its postgres role until the roles are set');
      this.restoreLogin = 'postgres';
    }
  }

  private restoreFlow(): RestoreBootstrap {
    return new RestoreBootstrap({
      settings: this.s,
      layout: this.layout,
      pg: this.pg,
      log: this.log,
      env: this.deps.env ?? process.env,
      signal: this.aborter.signal,
      useRestoreHba: (on) => {
        this.restoreHba = on;
        if (!on) this.restoreLogin = undefined;
      },
      local: () => this.local(),
      noteLoginFailure: (err) => this.noteLoginFailure(err),
      setPending: (stage) => this.setPending(stage),
      // The restored database's first start as a primary (its bootstrap ends there).
      startPostgres: () => this.startPostgres({ writable: true }),
      startArchiving: () => this.startArchiving(),
    });
  }

  private async startArchiving(): Promise<void> {
    try {
      await this.archiving?.start();
    } catch (err) {
      this.log.error({ err: message(err) }, 'cannot start WAL archiving');
    }
  }

  /**
   * Before every spawn of postgres: a data directory that was a primary comes up read-only
   * (standby.signal, no primary_conninfo) unless a bootstrap is starting it. Synchronous: it runs
   * inside PostgresProcess's spawn, restarts after a crash included.
   */
  private guardPrimaryStart(): void {
    if (this.writableOnce) {
      this.writableOnce = false;
      return;
    }
    const { pgdata } = this.layout;
    // A bootstrap in progress (initdb's roles, a restore) has never served anyone as a primary.
    if (existsSync(this.layout.bootstrapPending) || !existsSync(this.layout.pgVersionFile)) return;
    if (existsSync(this.layout.standbySignal) || existsSync(join(pgdata, 'recovery.signal'))) return;
    writeFileSync(this.layout.standbySignal, '');
    this.awaitingRole = true;
    this.log.warn('this data directory was a primary: starting read-only until the operator confirms this instance holds the primary Lease (promote) or names the primary to follow');
  }

  /**
   * Runs an operation (exclusive, in the background) and reports it in status. A request for the
   * operation already running (same kind and target) joins it instead of queueing a second.
   */
  private operate<T>(kind: OperationKind, target: string | null, fn: (step: (s: string) => void) => Promise<T>): Promise<T> {
    const key = `${kind} ${target ?? ''}`;
    if (this.running?.key === key) return this.running.promise as Promise<T>;
    const op: OperationStatus = { kind, target, state: 'running', step: 'queued', startedAt: new Date().toISOString(), finishedAt: null, error: null };
    this.op = op;
    const promise: Promise<T> = this.exclusive(() => {
      op.step = 'started';
      return fn((step) => (op.step = step));
    }).then(
      (result) => {
        Object.assign(op, { state: 'succeeded', step: 'done', finishedAt: new Date().toISOString() });
        return result;
      },
      (err: unknown) => {
        Object.assign(op, { state: 'failed', error: message(err), finishedAt: new Date().toISOString() });
        throw err;
      },
    );
    this.running = { key, promise };
    const clear = () => {
      if (this.running?.promise === promise) this.running = undefined;
    };
    promise.then(clear, clear);
    return promise;
  }

  operation(): OperationStatus | null {
    return this.op;
  }

  /** The operator called (any authenticated request): it can see this instance. */
  contact(isolationSeconds: number | undefined): void {
    this.lastOperatorContact = Date.now();
    if (isolationSeconds !== undefined) this.isolationTimeoutMs = isolationSeconds * 1000;
  }

  /** Runs state-changing operations one after another. */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(() => {
      if (this.stopping) throw new HttpError(409, 'the agent is shutting down');
      return fn();
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async pending(): Promise<PendingStage | null> {
    try {
      return (await readFile(this.layout.bootstrapPending, 'utf8')).trim() as PendingStage;
    } catch {
      return null;
    }
  }

  private async setPending(stage: PendingStage | null): Promise<void> {
    if (stage === null) return removeFile(this.layout.bootstrapPending);
    await mkdir(this.layout.stateDir, { recursive: true });
    await writeFile(this.layout.bootstrapPending, stage);
  }

  private async hasData(): Promise<boolean> {
    return exists(this.layout.pgVersionFile);
  }

  /** Decides what to do with the data directory found at start. */
  async init(): Promise<void> {
    try {
      await this.decideStart();
    } finally {
      // Until the state on disk is read (a fence, an interrupted bootstrap), the API must not
      // look healthy: it could report a state it does not have.
      this.initialized = true;
    }
  }

  private async decideStart(): Promise<void> {
    await mkdir(this.layout.stateDir, { recursive: true, mode: 0o700 });
    try {
      await writeReplicationPassfile(this.layout, await readCredentials(this.s.secretsDir, 'replication'));
    } catch (err) {
      this.log.warn({ err: message(err) }, 'cannot write the replication passfile; replicas of this instance cannot stream');
    }
    const stage = await this.pending();
    if (stage === 'initdb' || stage === 'clone' || stage === 'restore') {
      // Interrupted mid-way: the directory is not a usable database.
      this.log.warn({ stage }, 'a bootstrap was interrupted; discarding its partial data directory');
      await clearIncompleteDataDir(this.layout, this.log);
      await rm(restoreSpoolDir(this.layout), { recursive: true, force: true });
      await removeFile(restoreHbaFile(this.layout));
      await this.setPending(null);
    }
    if (!(await this.hasData())) {
      this.phase = 'AwaitingBootstrap';
      this.log.info({ pgdata: this.s.pgdata }, 'no database in PGDATA; waiting for POST /v1/bootstrap');
      return;
    }
    if (await exists(this.layout.fencedMarker)) {
      this.fenced = true;
      this.phase = 'Fenced';
      this.log.warn('the instance is fenced; postgres stays stopped until POST /v1/unfence');
      return;
    }
    if (stage === 'restore-roles') {
      this.log.info('a restore was interrupted after recovery; finishing it');
      this.phase = 'Bootstrapping';
      this.restore = this.restoreFlow();
      const flow = this.restore;
      void this.exclusive(async () => {
        await flow.finish();
        this.log.info('bootstrap complete');
      }).catch((err: unknown) => {
        this.phase = 'Failed';
        this.fail('bootstrap', err);
      });
      return;
    }
    const replica = await exists(this.layout.standbySignal);
    this.log.info({ role: replica ? 'replica' : 'primary' }, 'starting postgres on the existing data directory');
    void this.exclusive(async () => {
      await this.startPostgres();
      if (stage === 'roles') await this.finishInitdb();
    }).catch((err: unknown) => this.fail('start', err));
  }

  private fail(what: string, err: unknown): void {
    this.lastError = `${what}: ${message(err)}`;
    this.log.error({ err: message(err) }, `${what} failed`);
  }

  private async startPostgres(opts: { writable?: boolean } = {}): Promise<void> {
    if (this.stopping) throw new HttpError(409, 'the agent is shutting down');
    this.phase = 'Starting';
    const t0 = Date.now();
    await this.startArchiving();
    this.writableOnce = opts.writable ?? false;
    this.pg.start();
    await this.pg.waitReady(READY_TIMEOUT_MS);
    this.walUsage.invalidate();
    this.phase = 'Running';
    this.log.info({ ms: Date.now() - t0, pid: this.pg.pid }, 'postgres is ready');
  }

  // ---- bootstrap ----------------------------------------------------------------------------

  async bootstrap(req: BootstrapRequest): Promise<void> {
    if (this.phase !== 'AwaitingBootstrap' && !(this.phase === 'Failed' && !(await this.hasData()))) {
      throw new HttpError(409, `cannot bootstrap in phase ${this.phase}: the data directory is already initialised`);
    }
    if (req.mode === 'restore' && !this.s.restore) throw new HttpError(400, 'cannot restore: this pod has no PGPILOT_RESTORE_SOURCE');
    this.phase = 'Bootstrapping';
    this.lastError = null;
    if (req.mode === 'restore') this.restore = this.restoreFlow();
    const restore = this.restore;
    void this.exclusive(async () => {
      const t0 = Date.now();
      if (req.mode === 'initdb') await this.initdb();
      else if (req.mode === 'clone') await this.clone(req.primary);
      else await restore!.run();
      this.log.info({ mode: req.mode, ms: Date.now() - t0 }, 'bootstrap complete');
    }).catch((err: unknown) => {
      this.phase = 'Failed';
      this.fail('bootstrap', err);
    });
  }

  private async initdb(): Promise<void> {
    await clearIncompleteDataDir(this.layout, this.log);
    await this.setPending('initdb');
    this.log.info('bootstrap: initdb');
    await runInitdb(this.deps.pgBin, this.layout, this.s.initdb, await readCredentials(this.s.secretsDir, 'superuser'), this.log);
    await this.setPending('roles');
    await this.startPostgres();
    await this.finishInitdb();
  }

  /**
   * Replication role, application owner and database (idempotent). Not Running (nor ready) until
   * they exist: clients and the operator would otherwise find no application database.
   */
  private async finishInitdb(): Promise<void> {
    this.phase = 'Bootstrapping';
    try {
      this.log.info({ database: this.s.initdb.database, owner: this.s.initdb.owner }, 'bootstrap: creating roles and the application database');
      const [replication, app] = await Promise.all([readCredentials(this.s.secretsDir, 'replication'), readCredentials(this.s.secretsDir, 'app')]);
      // The app Secret names its user; the env names the owner the spec asked for. They agree
      // unless someone supplied a Secret for another user: the env wins, with the Secret's password.
      const owner = { username: this.s.initdb.owner, password: app.password };
      await sql.withClient(await this.local(), (c) => sql.createBootstrapObjects(c, { replication, owner, database: this.s.initdb.database }));
      await this.setPending(null);
    } finally {
      if (this.phase === 'Bootstrapping') this.phase = this.pg.ready ? 'Running' : 'Starting';
    }
  }

  private async clone(primary: sql.Endpoint): Promise<void> {
    await clearIncompleteDataDir(this.layout, this.log);
    await this.setPending('clone');
    this.log.info({ primary }, 'bootstrap: cloning the primary with pg_basebackup');
    const replication = await readCredentials(this.s.secretsDir, 'replication');
    await writeReplicationPassfile(this.layout, replication);
    await runClone(this.deps.pgBin, this.layout, primary, replication, this.log);
    await configureStandby(this.layout, conninfoFor(this.layout, primary, replication.username, this.s.instance));
    await this.setPending(null);
    await this.startPostgres();
  }

  // ---- status and simple calls ------------------------------------------------------------

  healthy(): boolean {
    return this.initialized && !this.pg.crashLooping;
  }

  ready(): boolean {
    return this.phase === 'Running' && this.pg.ready && !this.fenced;
  }

  async status(): Promise<InstanceStatus> {
    const hasData = await this.hasData();
    const roleOnDisk = !hasData ? 'none' : (await exists(this.layout.standbySignal)) ? 'replica' : 'primary';
    let snapshot: SqlSnapshot | null = null;
    // During a restore nobody but the agent can connect: not "running" for anyone else.
    if (this.pg.ready && !this.restoreHba) {
      try {
        snapshot = await sql.withClient(await this.local(), querySnapshot);
      } catch (err) {
        this.log.warn({ err: message(err) }, 'status query failed');
      }
    }
    // Streaming again: whatever WAL it once missed, it has caught up.
    if (snapshot?.walReceiverStatus === 'streaming') this.cannotCatchUp = null;
    return {
      ...shapeStatus(
        { instance: this.s.instance, phase: this.phase, fenced: this.fenced, running: this.pg.ready && snapshot !== null, restarts: this.pg.restarts, lastError: this.lastError, roleOnDisk },
        snapshot,
      ),
      archiving: this.archiving?.status() ?? null,
      wal: hasData ? await this.walUsage.get() : null,
      restore: this.restore?.status() ?? null,
      operation: this.op,
      cannotCatchUp: this.cannotCatchUp,
      awaitingRole: this.awaitingRole,
    };
  }

  private requireRunning(what: string): void {
    if (this.fenced) throw new HttpError(409, `cannot ${what}: the instance is fenced`);
    if (!this.pg.ready) throw new HttpError(409, `cannot ${what}: postgres is not running (phase ${this.phase})`);
  }

  /** Not an exclusive operation: a CHECKPOINT changes no role, and must not queue behind one. */
  async checkpoint(): Promise<void> {
    this.requireRunning('checkpoint');
    await sql.withClient({ ...(await this.local()), queryTimeoutMs: 10 * 60_000 }, (c) => c.query('CHECKPOINT'));
  }

  async reload(): Promise<void> {
    this.requireRunning('reload');
    await sql.withClient(await this.local(), (c) => c.query('SELECT pg_reload_conf()'));
    this.configHash = await this.hashConfig();
    this.log.info('configuration reloaded');
  }

  // ---- role changes -------------------------------------------------------------------------

  promote(): Promise<PromoteResult> {
    return this.operate('promote', null, async (step) => {
      this.requireRunning('promote');
      step('pg_promote');
      const t0 = Date.now();
      return sql.withClient({ ...(await this.local()), queryTimeoutMs: 90_000 }, async (c) => {
        if (await sql.isInRecovery(c)) {
          this.log.info('promoting');
          if (!(await sql.promote(c, 60))) throw new HttpError(500, 'promotion did not complete within 60 s');
          // A primary keeps no primary_conninfo: clones copy postgresql.auto.conf.
          await sql.setPrimaryConninfo(c, null);
        }
        this.awaitingRole = false;
        const pos = await sql.primaryPosition(c);
        const result = { timeline: timelineOfWalFile(pos.walFile), lsn: pos.lsn };
        this.log.info({ ...result, ms: Date.now() - t0 }, 'primary');
        return result;
      });
    });
  }

  follow(req: FollowRequest): Promise<void> {
    return this.operate('follow', `${req.primary.host}:${req.primary.port}${req.reclone ? ' (re-clone)' : ''}`, async (step) => {
      const { primary } = req;
      if (primary.host === this.s.podIp && primary.port === this.s.pgPort) throw new HttpError(400, 'an instance cannot follow itself');
      if (!(await this.hasData()) || this.phase === 'AwaitingBootstrap' || this.phase === 'Bootstrapping') throw new HttpError(409, `cannot follow in phase ${this.phase}`);
      const t0 = Date.now();
      const replication = await readCredentials(this.s.secretsDir, 'replication');
      await writeReplicationPassfile(this.layout, replication);
      const conninfo = conninfoFor(this.layout, primary, replication.username, this.s.instance);
      if (this.pg.ready && !this.fenced && !req.reclone) {
        step('repointing');
        const repointed = await sql.withClient(await this.local(), async (c) => {
          if (!(await sql.isInRecovery(c))) return false;
          if (await this.diverged(c, primary)) return false;
          this.log.info({ primary }, 'follow: repointing the walreceiver (no restart)');
          await sql.setPrimaryConninfo(c, conninfo);
          return this.waitStreaming(c, primary, REPOINT_TIMEOUT_MS);
        });
        if (repointed) {
          this.awaitingRole = false;
          this.log.info({ primary, ms: Date.now() - t0 }, 'follow: streaming from the new primary');
          return;
        }
        this.log.warn({ primary }, 'follow: cannot just repoint (a primary, diverged, or not streaming); rewinding');
      }
      await this.demote(primary, conninfo, step, req.reclone ?? false);
      this.awaitingRole = false;
      this.cannotCatchUp = null;
      this.log.info({ primary, ms: Date.now() - t0 }, 'follow: streaming from the new primary');
    });
  }

  /**
   * Whether this replica has WAL the new primary lacks (it was ahead of the promoted replica):
   * then repointing cannot work, and finding out up front saves the repoint timeout. Unknown
   * (the primary unreachable, say) counts as not diverged: the repoint then tells.
   */
  private async diverged(c: pg.Client, primary: sql.Endpoint): Promise<boolean> {
    try {
      const ours = await sql.replicaPosition(c);
      if (!ours) return false;
      const superuser = await readCredentials(this.s.secretsDir, 'superuser');
      const theirs = await sql.withClient({ ...primary, credentials: superuser, connectTimeoutMs: 3000 }, sql.timelineHistory);
      const history = theirs.history ? parseTimelineHistory(theirs.history) : [];
      const diverged = hasDiverged(history, theirs.timeline, ours.timeline, ours.lsn);
      if (diverged) this.log.warn({ ours, primaryTimeline: theirs.timeline, history }, 'follow: this replica has WAL the new primary lacks');
      return diverged;
    } catch (err) {
      this.log.warn({ err: message(err) }, 'follow: cannot compare timelines with the new primary; repointing');
      return false;
    }
  }

  private async waitStreaming(c: sql.ConnectOptions | pg.Client, primary: sql.Endpoint, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    const check = async (client: pg.Client) => {
      while (Date.now() < deadline) {
        const w = await sql.walReceiver(client);
        if (w && w.status === 'streaming' && w.host === primary.host && w.port === primary.port) return true;
        await sleep(50);
      }
      return false;
    };
    return 'credentials' in c ? sql.withClient(c, check) : check(c);
  }

  /** Stop, pg_rewind against the new primary (or re-clone), start as its replica. */
  private async demote(primary: sql.Endpoint, conninfo: string, step: (s: string) => void, recloneFirst: boolean): Promise<void> {
    this.phase = 'Rewinding';
    try {
      // Fenced until the data directory is a standby: if anything below fails (or the agent dies
      // half-way), the old data must not come back as a writable primary.
      this.fenced = true;
      await touch(this.layout.fencedMarker);
      step('stopping postgres');
      // Bounded: an old primary's shutdown may wait on archive_command for WAL nobody keeps.
      await this.pg.stopWithin(Math.min(DEMOTE_STOP_MS, this.s.stopTimeoutSeconds * 1000), 'fast');
      let recloned = false;
      if (recloneFirst) {
        step('re-cloning');
        this.log.warn({ primary, reason: this.cannotCatchUp }, 'follow: re-cloning from the primary (it no longer has the WAL this replica needs)');
        await this.reclone(primary);
        recloned = true;
      } else {
        step('checkpoint on the new primary');
        const superuser = await readCredentials(this.s.secretsDir, 'superuser');
        try {
          // Without a checkpoint since its promotion, the new primary's control file still shows
          // the old timeline and pg_rewind concludes there is nothing to do.
          await sql.withClient({ host: primary.host, port: primary.port, credentials: superuser, connectTimeoutMs: 5000, queryTimeoutMs: 10 * 60_000 }, (c) => c.query('CHECKPOINT'));
        } catch (err) {
          // Unreachable now: a rewind (and a re-clone after it) would fail the same way. The
          // data stays fenced and stopped; the operator asks again.
          throw new HttpError(503, `the new primary ${primary.host}:${primary.port} does not answer (CHECKPOINT: ${message(err)}); nothing changed, try again`);
        }
        const t0 = Date.now();
        try {
          step('pg_rewind');
          this.log.info({ primary }, 'follow: pg_rewind');
          const r = await rewind(this.deps.pgBin, this.layout, primary, superuser, this.log);
          this.log.info({ ms: Date.now() - t0, rewound: r.rewound }, r.rewound ? 'follow: rewound' : 'follow: no rewind was needed');
        } catch (err) {
          if (!(err instanceof RewindImpossible)) throw err;
          this.log.warn({ err: err.message }, 'follow: pg_rewind failed; re-cloning from the new primary');
          step('re-cloning');
          await this.reclone(primary);
          recloned = true;
        }
      }
      await configureStandby(this.layout, conninfo);
      await this.liftFence('follow: a standby now; lifting the fence');
      step('starting');
      await this.startPostgres();
      this.phase = 'Rewinding';
      step('waiting for streaming');
      let streaming = await this.waitStreaming(await this.local(), primary, STREAMING_TIMEOUT_MS);
      if (!streaming && !recloned) {
        this.log.warn('follow: not streaming after the rewind; re-cloning from the new primary');
        step('re-cloning');
        await this.pg.stopWithin(DEMOTE_STOP_MS, 'fast');
        await this.reclone(primary);
        await configureStandby(this.layout, conninfo);
        await this.startPostgres();
        streaming = await this.waitStreaming(await this.local(), primary, STREAMING_TIMEOUT_MS);
      }
      this.phase = 'Running';
      if (!streaming) throw new HttpError(500, `started as a replica of ${primary.host}:${primary.port} but not streaming from it`);
    } catch (err) {
      if (this.phase === 'Rewinding') this.phase = this.pg.running ? 'Running' : this.fenced ? 'Fenced' : 'Failed';
      this.fail('follow', err);
      throw err;
    }
  }

  private async liftFence(msg: string): Promise<void> {
    if (!this.fenced) return;
    this.log.info(msg);
    await removeFile(this.layout.fencedMarker);
    this.fenced = false;
  }

  private async reclone(primary: sql.Endpoint): Promise<void> {
    const t0 = Date.now();
    const aside = await moveAside(this.layout, this.log);
    try {
      await runClone(this.deps.pgBin, this.layout, primary, await readCredentials(this.s.secretsDir, 'replication'), this.log);
    } catch (err) {
      this.log.error({ err: message(err) }, 'follow: re-clone failed; restoring the old data directory');
      await aside.restore();
      throw err;
    }
    await aside.remove();
    this.log.info({ ms: Date.now() - t0 }, 'follow: re-cloned');
  }

  fence(req: FenceRequest = {}): Promise<void> {
    return this.operate('fence', null, async (step) => {
      if (!(await this.hasData())) throw new HttpError(409, 'nothing to fence: no data directory');
      this.fenced = true;
      await touch(this.layout.fencedMarker);
      step('stopping postgres');
      // Fast first: walsenders ship everything, the shutdown checkpoint included, to the replicas
      // (a switchover loses nothing); immediate when that cannot finish within the budget
      // (switchoverDelaySeconds; the operator then gives the role to the replica with most WAL).
      await this.pg.stopWithin((req.stopSeconds ?? this.s.stopTimeoutSeconds) * 1000, 'fast');
      this.phase = 'Fenced';
      this.log.warn('fenced: postgres stopped and kept stopped');
    });
  }

  unfence(): Promise<void> {
    return this.exclusive(async () => {
      if (!this.fenced) {
        if (!this.pg.running && (await this.hasData())) await this.startPostgres();
        return;
      }
      await this.liftFence('unfencing');
      if ((await this.pending()) === 'restore-roles') {
        // Fenced between recovery and the role step: finish the restore instead of a plain start.
        this.restore = this.restoreFlow();
        await this.restore.finish();
        return;
      }
      await this.startPostgres();
      this.log.info('unfenced: postgres runs again');
    });
  }

  // ---- configuration watch and shutdown -------------------------------------------------------

  private async hashConfig(): Promise<string | undefined> {
    try {
      const h = createHash('sha256');
      for (const f of ['postgresql.conf', 'pg_hba.conf']) h.update(await readFile(join(this.s.configDir, f))).update('\0');
      return h.digest('hex');
    } catch {
      return undefined;
    }
  }

  /** The kubelet updates a mounted ConfigMap in place (atomic symlink swap): poll and reload. */
  watchConfig(): void {
    const tick = async () => {
      const h = await this.hashConfig();
      if (h === undefined) return;
      if (this.configHash === undefined) {
        this.configHash = h;
        return;
      }
      if (h !== this.configHash && this.pg.ready) {
        this.configHash = h;
        this.log.info('the mounted configuration changed; reloading');
        await sql.withClient(await this.local(), (c) => c.query('SELECT pg_reload_conf()'));
      }
    };
    const onError = (err: unknown) => this.log.warn({ err: message(err) }, 'configuration reload failed');
    void tick().catch(onError);
    this.configTimer = setInterval(() => void tick().catch((err: unknown) => this.log.warn({ err: message(err) }, 'configuration reload failed')), CONFIG_POLL_MS);
  }

  /**
   * Self-isolation (ISOLATION_HEADER, from spec.highAvailability.isolationTimeoutSeconds): a
   * primary that has heard from no operator and has no streaming replica for that long may be on
   * the wrong side of a partition, where the operator can already have promoted another instance:
   * it restarts read-only (the start guard) and waits to be promoted again or told to follow.
   */
  watchIsolation(): void {
    this.isolationTimer = setInterval(() => void this.checkIsolation().catch((err: unknown) => this.log.warn({ err: message(err) }, 'self-isolation check failed')), ISOLATION_CHECK_MS);
    this.isolationTimer.unref();
  }

  private async checkIsolation(): Promise<void> {
    const timeoutMs = this.isolationTimeoutMs;
    const silentMs = Date.now() - this.lastOperatorContact;
    if (timeoutMs <= 0 || silentMs < timeoutMs || !this.pg.ready || this.fenced || this.running || this.stopping || this.restoreHba) return;
    const alone = await sql.withClient({ ...(await this.local()), connectTimeoutMs: 1000, queryTimeoutMs: 2000 }, async (c) => {
      const row = (await c.query<{ rec: boolean; n: number }>("SELECT pg_is_in_recovery() AS rec, (SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming')::int AS n")).rows[0]!;
      return !row.rec && row.n === 0;
    });
    if (!alone || Date.now() - this.lastOperatorContact < timeoutMs) return;
    this.log.error({ silentMs, timeoutMs }, 'self-isolation: no operator call and no streaming replica for too long; restarting read-only until the operator confirms this primary');
    await this.operate('isolate', null, async (step) => {
      step('restarting read-only');
      await this.pg.stopWithin(DEMOTE_STOP_MS, 'fast');
      await this.startPostgres();
    });
  }

  async shutdown(signal: string): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.phase = 'Stopping';
    clearInterval(this.configTimer);
    clearInterval(this.isolationTimer);
    // Keep a second for our own exit within the pod's grace period.
    const budget = Math.max(1000, this.s.stopTimeoutSeconds * 1000 - 1000);
    const deadline = Date.now() + budget;
    this.log.info({ signal, budgetMs: budget }, 'shutting down');
    this.aborter.abort();
    killRunningTools();
    // postgres first: its archiver's last round waits for our uploads (archive_command handoff).
    await this.pg.shutdown(budget);
    await this.archiving?.stop(Math.max(500, deadline - Date.now()));
  }
}

export async function runInstanceAgent(env: Record<string, string | undefined> = process.env): Promise<void> {
  const settings = loadSettings(env);
  const bindings = { cluster: settings.cluster, instance: settings.instance };
  const log = createLogger(settings.logLevel, 'instance').child(bindings);
  const serverLog = createLogger(settings.logLevel, 'postgres').child(bindings);
  const pgBin = await resolvePgBin(settings.pgBin);
  const layout = layoutOf(settings);
  const socketDir = settings.socketDir ?? ((await isWritableDir('/var/run/postgresql')) ? '/var/run/postgresql' : join(layout.stateDir, 'run'));
  await mkdir(socketDir, { recursive: true });
  const agent = new InstanceAgent({ settings, pgBin, socketDir, log, serverLog, env });

  // The pod IP rather than 0.0.0.0: the kubelet probes and the operator use it, and several
  // agents can then share one network namespace (the e2e process kubelet, tests).
  const server: Server = await startApiServer({ host: settings.podIp, port: settings.agentPort, api: agent, token: () => readAgentToken(settings.secretsDir), log });
  log.info({ pgBin, podIp: settings.podIp, agentPort: settings.agentPort, pgPort: settings.pgPort, pgdata: settings.pgdata }, 'pgpilot instance agent started');

  let exiting = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (exiting) return;
    exiting = true;
    agent
      .shutdown(signal)
      .then(() => {
        log.info('postgres stopped; exiting');
        server.close();
        server.closeAllConnections();
        process.exit(0);
      })
      .catch((err: unknown) => {
        log.error({ err: message(err) }, 'shutdown failed');
        process.exit(1);
      });
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  // Dying would take postgres down uncleanly with us: log a stray rejection and carry on.
  process.on('unhandledRejection', (err) => log.error({ err: message(err) }, 'unhandled rejection'));

  await agent.init();
  agent.watchConfig();
  agent.watchIsolation();
}
