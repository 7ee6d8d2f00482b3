// Start-up and bootstrap: what to do with the data directory found at start (an interrupted
// bootstrap, a fence, a restore to finish, a plain start), bootstrapping an empty one when the
// operator asks (initdb, a clone with pg_basebackup, a restore: restore-bootstrap.ts), and every
// start of postgres, with its guard.
//
// No writable old primary: every start of postgres on a data directory that was a primary
// (a restart after a crash, a new pod) comes up read-only — standby.signal, following nothing —
// until the operator confirms this instance holds the primary Lease (promote) or points it at the
// primary that does (follow). Only the first start of a bootstrap is writable at once, and a
// planned restart of the primary within the operator's permit (restart-permit.ts).
import { existsSync, writeFileSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { exists, readCredentials, removeFile } from '../postgres/files.js';
import * as sql from '../postgres/sql.js';
import type { AgentState } from './agent-state.js';
import type { BootstrapRequest } from './api-types.js';
import { clearIncompleteDataDir, moveAside, runClone, runInitdb } from './bootstrap.js';
import { compareDataVersion, settleUpgrade, upgradedFirstStart, upgradeStarted } from './major-version.js';
import { errorText } from '../util/error-text.js';
import { restoreHbaFile, restoreSpoolDir } from './layout.js';
import { configureStandby, conninfoFor, writeReplicationPassfile } from './replication.js';
import { HttpError } from './requests.js';
import { RestoreBootstrap } from './restore-bootstrap.js';
import { restartPermitted } from './restart-permit.js';

const READY_TIMEOUT_MS = 10 * 60_000; // crash recovery of a large primary can take long

/**
 * bootstrap-pending: initdb → roles (initdb done, roles and database next); clone; restore (base
 * backup and recovery, restore-bootstrap.ts) → restore-roles (promoted, this cluster's passwords
 * next). A restart in initdb, clone or restore discards the partial data directory; in roles or
 * restore-roles it finishes the step.
 */
type PendingStage = 'initdb' | 'roles' | 'clone' | 'restore' | 'restore-roles';

async function pending(a: AgentState): Promise<PendingStage | null> {
  try {
    return (await readFile(a.layout.bootstrapPending, 'utf8')).trim() as PendingStage;
  } catch {
    return null;
  }
}

async function setPending(a: AgentState, stage: PendingStage | null): Promise<void> {
  if (stage === null) return removeFile(a.layout.bootstrapPending);
  await mkdir(a.layout.stateDir, { recursive: true });
  await writeFile(a.layout.bootstrapPending, stage);
}

/**
 * Before every spawn of postgres: a data directory that was a primary comes up read-only
 * (standby.signal, no primary_conninfo) unless a bootstrap is starting it. Synchronous: it runs
 * inside PostgresProcess's spawn, restarts after a crash included.
 */
export function guardPrimaryStart(a: AgentState): void {
  if (a.writableOnce) {
    a.writableOnce = false;
    return;
  }
  const { layout } = a;
  // A bootstrap in progress (initdb's roles, a restore) has never served anyone as a primary.
  if (existsSync(layout.bootstrapPending) || !existsSync(layout.pgVersionFile)) return;
  if (existsSync(layout.standbySignal) || existsSync(join(layout.pgdata, 'recovery.signal'))) return;
  if (upgradedFirstStart(layout)) {
    a.log.info('the first start of a data directory pg_upgrade upgraded (the operator stopped every other instance): starting writable');
    return;
  }
  if (restartPermitted(layout)) {
    a.log.info('a planned restart of the primary (the operator holds failover back meanwhile): starting writable');
    return;
  }
  writeFileSync(layout.standbySignal, '');
  a.awaitingRole = true;
  a.log.warn('this data directory was a primary: starting read-only until the operator confirms this instance holds the primary Lease (promote) or names the primary to follow');
}

/** Starts postgres and waits until it accepts connections; `writable`: a bootstrap's first start as a primary. */
export async function startPostgres(a: AgentState, opts: { writable?: boolean } = {}): Promise<void> {
  a.refuseIfStopping();
  a.phase.setPhase('Starting', 'starting postgres');
  const t0 = Date.now();
  await a.startArchiving();
  a.writableOnce = opts.writable ?? false;
  a.pg.start();
  await a.pg.waitReady(READY_TIMEOUT_MS);
  a.walUsage.invalidate();
  a.phase.setPhase('Running', 'postgres is ready');
  a.log.info({ ms: Date.now() - t0, pid: a.pg.pid }, 'postgres is ready');
}

/** The restore bootstrap, wired to this agent (a fresh one per run or resumption). */
export function restoreFlow(a: AgentState): RestoreBootstrap {
  return new RestoreBootstrap({
    settings: a.settings,
    layout: a.layout,
    pg: a.pg,
    log: a.log,
    env: a.deps.env ?? process.env,
    signal: a.aborter.signal,
    useRestoreHba: (on) => a.useRestoreHba(on),
    local: () => a.local(),
    noteLoginFailure: (err) => a.noteLoginFailure(err),
    setPending: (stage) => setPending(a, stage),
    // The restored database's first start as a primary (its bootstrap ends there).
    startPostgres: () => startPostgres(a, { writable: true }),
    startArchiving: () => a.startArchiving(),
  });
}

/** A bootstrap running in the background failed: the instance has no usable database. */
function bootstrapFailed(a: AgentState, err: unknown): void {
  a.phase.setPhase('Failed', 'the bootstrap failed');
  a.fail('bootstrap', err);
}

/** Decides what to do with the data directory found at start. */
export async function decideStart(a: AgentState): Promise<void> {
  const { layout, log } = a;
  await mkdir(layout.stateDir, { recursive: true, mode: 0o700 });
  try {
    await writeReplicationPassfile(layout, await readCredentials(a.settings.secretsDir, 'replication'));
  } catch (err) {
    log.warn({ err: errorText(err) }, 'cannot write the replication passfile; replicas of this instance cannot stream');
  }
  await settleUpgrade(layout, log);
  const stage = await pending(a);
  if (stage === 'initdb' || stage === 'clone' || stage === 'restore') {
    // Interrupted mid-way: the directory is not a usable database.
    log.warn({ stage }, 'a bootstrap was interrupted; discarding its partial data directory');
    await clearIncompleteDataDir(layout, log);
    await rm(restoreSpoolDir(layout), { recursive: true, force: true });
    await removeFile(restoreHbaFile(layout));
    await setPending(a, null);
  }
  if (!(await a.hasData())) {
    a.phase.setPhase('AwaitingBootstrap', 'no database in PGDATA');
    log.info({ pgdata: a.settings.pgdata }, 'no database in PGDATA; waiting for POST /v1/bootstrap');
    return;
  }
  const version = await compareDataVersion(layout, a.deps.pgBin);
  if (version.kind !== 'same') {
    a.staleData = version;
    if (version.kind === 'newer') {
      a.phase.setPhase('Failed', `PGDATA holds PostgreSQL ${version.data} data and these binaries are PostgreSQL ${version.binaries}: an older major cannot run it`);
      a.lastError = `PGDATA holds PostgreSQL ${version.data} data; this image runs PostgreSQL ${version.binaries}`;
      return;
    }
    // A replica of a primary that pg_upgrade upgraded: replaced by a clone of it (bootstrap: clone).
    a.phase.setPhase('AwaitingBootstrap', `PGDATA holds PostgreSQL ${version.data} data and these binaries are PostgreSQL ${version.binaries}: waiting for a clone of the upgraded primary`);
    log.warn({ data: version.data, binaries: version.binaries }, 'the data directory is of an older major version: waiting for POST /v1/bootstrap (clone) to replace it');
    return;
  }
  if (await exists(layout.fencedMarker)) {
    a.fenced = true;
    a.phase.setPhase('Fenced', 'the fence marker is present');
    log.warn('the instance is fenced; postgres stays stopped until POST /v1/unfence');
    return;
  }
  if (stage === 'restore-roles') {
    log.info('a restore was interrupted after recovery; finishing it');
    a.phase.setPhase('Bootstrapping', 'finishing an interrupted restore');
    const flow = (a.restore = restoreFlow(a));
    void a.ops
      .exclusive(async () => {
        await flow.finish();
        log.info('bootstrap complete');
      })
      .catch((err: unknown) => bootstrapFailed(a, err));
    return;
  }
  const replica = await exists(layout.standbySignal);
  log.info({ role: replica ? 'replica' : 'primary' }, 'starting postgres on the existing data directory');
  void a.ops
    .exclusive(async () => {
      await startPostgres(a);
      await upgradeStarted(layout);
      if (stage === 'roles') await finishInitdb(a);
    })
    .catch((err: unknown) => a.fail('start', err));
}

/** POST /v1/bootstrap: accepted at once, runs in the background (phase Bootstrapping, then Running or Failed). */
export async function bootstrap(a: AgentState, req: BootstrapRequest): Promise<void> {
  const phase = a.phase.current;
  if (phase !== 'AwaitingBootstrap' && !(phase === 'Failed' && !(await a.hasData()))) {
    throw new HttpError(409, `cannot bootstrap in phase ${phase}: the data directory is already initialised`);
  }
  if (a.staleData && req.mode !== 'clone') {
    throw new HttpError(409, `cannot bootstrap by ${req.mode}: PGDATA holds PostgreSQL ${a.staleData.data} data, which only a clone of the upgraded primary replaces`);
  }
  if (req.mode === 'restore' && !a.settings.restore) throw new HttpError(400, 'cannot restore: this pod has no PGPILOT_RESTORE_SOURCE');
  a.phase.setPhase('Bootstrapping', `bootstrap by ${req.mode}`);
  a.lastError = null;
  if (req.mode === 'restore') a.restore = restoreFlow(a);
  const restore = a.restore;
  void a.ops
    .exclusive(async () => {
      const t0 = Date.now();
      if (req.mode === 'initdb') await initdb(a);
      else if (req.mode === 'clone') await clone(a, req.primary);
      else await restore!.run();
      a.log.info({ mode: req.mode, ms: Date.now() - t0 }, 'bootstrap complete');
    })
    .catch((err: unknown) => bootstrapFailed(a, err));
}

async function initdb(a: AgentState): Promise<void> {
  const { settings: s, layout, log } = a;
  await clearIncompleteDataDir(layout, log);
  await setPending(a, 'initdb');
  log.info('bootstrap: initdb');
  await runInitdb(a.deps.pgBin, layout, s.initdb, await readCredentials(s.secretsDir, 'superuser'), log);
  await setPending(a, 'roles');
  await startPostgres(a);
  await finishInitdb(a);
}

/**
 * Replication role, application owner and database (idempotent). Not Running (nor ready) until
 * they exist: clients and the operator would otherwise find no application database.
 */
async function finishInitdb(a: AgentState): Promise<void> {
  const { settings: s, log } = a;
  a.phase.setPhase('Bootstrapping', 'creating the roles and the application database');
  let done = false;
  try {
    log.info({ database: s.initdb.database, owner: s.initdb.owner }, 'bootstrap: creating roles and the application database');
    const [replication, app] = await Promise.all([readCredentials(s.secretsDir, 'replication'), readCredentials(s.secretsDir, 'app')]);
    // The app Secret names its user; the env names the owner the spec asked for. They agree
    // unless someone supplied a Secret for another user: the env wins, with the Secret's password.
    const owner = { username: s.initdb.owner, password: app.password };
    await sql.withClient(await a.local(), (c) => sql.createBootstrapObjects(c, { replication, owner, database: s.initdb.database }));
    await setPending(a, null);
    done = true;
  } finally {
    const why = done ? 'the roles and the application database exist' : 'creating the roles and the application database failed';
    a.phase.setPhase(a.pg.ready ? 'Running' : 'Starting', why, ['Bootstrapping']);
  }
}

async function clone(a: AgentState, primary: sql.Endpoint): Promise<void> {
  const { settings: s, layout, log } = a;
  if (a.staleData) return recloneStale(a, primary);
  await clearIncompleteDataDir(layout, log);
  await setPending(a, 'clone');
  log.info({ primary }, 'bootstrap: cloning the primary with pg_basebackup');
  const replication = await readCredentials(s.secretsDir, 'replication');
  await writeReplicationPassfile(layout, replication);
  await runClone(a.deps.pgBin, layout, primary, replication, log, a.replicationTls());
  await configureStandby(layout, conninfoFor(layout, primary, replication.username, s.instance, a.replicationTls()));
  await setPending(a, null);
  await startPostgres(a);
}

/**
 * A data directory of an older major (its primary was upgraded): kept aside until the clone of
 * the new primary has succeeded, removed then (a failed clone puts it back, and the agent waits
 * for the next bootstrap request).
 */
async function recloneStale(a: AgentState, primary: sql.Endpoint): Promise<void> {
  const { settings: s, layout, log } = a;
  log.info({ primary, data: a.staleData }, 'bootstrap: replacing a data directory of an older major by a clone of the upgraded primary');
  const aside = await moveAside(layout, log);
  try {
    const replication = await readCredentials(s.secretsDir, 'replication');
    await writeReplicationPassfile(layout, replication);
    await runClone(a.deps.pgBin, layout, primary, replication, log, a.replicationTls());
    await configureStandby(layout, conninfoFor(layout, primary, replication.username, s.instance, a.replicationTls()));
  } catch (err) {
    await clearIncompleteDataDir(layout, log);
    await aside.restore();
    throw err;
  }
  await aside.remove();
  await removeFile(layout.fencedMarker);
  a.staleData = undefined;
  await startPostgres(a);
}

/** Whether a restore stopped between recovery and its role step (unfence then finishes it). */
export async function restorePending(a: AgentState): Promise<boolean> {
  return (await pending(a)) === 'restore-roles';
}
