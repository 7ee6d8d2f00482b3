// POST /v1/follow: make this instance a replica of the primary the operator names. The cheap way
// first — repoint the walreceiver of a running replica (no restart) — and when that cannot work
// (a primary, diverged, not streaming) demote: stop, pg_rewind against the new primary, start as
// its replica; re-clone when rewind is impossible, when streaming does not follow, or when asked
// (the primary removed WAL this replica needs).
import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';
import { readCredentials } from '../postgres/files.js';
import { hasDiverged, parseTimelineHistory } from '../postgres/lsn.js';
import * as sql from '../postgres/sql.js';
import type { AgentState } from './agent-state.js';
import type { FollowRequest } from './api-types.js';
import { moveAside, runClone } from './bootstrap.js';
import { errorText } from '../util/error-text.js';
import { configureStandby, conninfoFor, rewind, RewindImpossible, writeReplicationPassfile } from './replication.js';
import { HttpError } from './requests.js';
import { startPostgres } from './startup.js';
import { servedCertificate, UnverifiedServer } from '../postgres/wire-probe.js';

const REPOINT_TIMEOUT_MS = 10_000;
const STREAMING_TIMEOUT_MS = 20_000;
/**
 * A demoted primary's WAL past the fork is discarded anyway: a short clean stop, then immediate
 * (pg_rewind finishes the crash recovery itself). A thawed old primary's shutdown otherwise waits
 * on archive_command for its last old-timeline segment, which the new primary archived as .partial.
 */
export const DEMOTE_STOP_MS = 1500;

type Step = (s: string) => void;

export function follow(a: AgentState, req: FollowRequest): Promise<void> {
  const { settings: s, layout, log } = a;
  return a.ops.operate('follow', `${req.primary.host}:${req.primary.port}${req.reclone ? ' (re-clone)' : ''}`, async (step) => {
    const { primary } = req;
    if (primary.host === s.podIp && primary.port === s.pgPort) throw new HttpError(400, 'an instance cannot follow itself');
    const phase = a.phase.current;
    if (!(await a.hasData()) || phase === 'AwaitingBootstrap' || phase === 'Bootstrapping') throw new HttpError(409, `cannot follow in phase ${phase}`);
    await provenInstance(a, primary);
    const t0 = Date.now();
    const replication = await readCredentials(s.secretsDir, 'replication');
    await writeReplicationPassfile(layout, replication);
    const conninfo = conninfoFor(layout, primary, replication.username, s.instance, a.replicationTls());
    if (a.pg.ready && !a.fenced && !req.reclone) {
      step('repointing');
      if (await repoint(a, primary, conninfo)) {
        a.awaitingRole = false;
        log.info({ primary, ms: Date.now() - t0 }, 'follow: streaming from the new primary');
        return;
      }
      log.warn({ primary }, 'follow: cannot just repoint (a primary, diverged, or not streaming); rewinding');
    }
    await demote(a, primary, conninfo, step, req.reclone ?? false);
    a.awaitingRole = false;
    a.cannotCatchUp = null;
    log.info({ primary, ms: Date.now() - t0 }, 'follow: streaming from the new primary');
  });
}

/** How long follow waits for the new primary's TLS handshake (its identity check). */
const IDENTITY_TIMEOUT_MS = 3000;

/**
 * Only an instance of this cluster is followed: before any credential is used (pg_rewind's and a
 * clone's passwords, and replication's while TLS is not required), the target must present a
 * certificate of the cluster's CA for the cluster's name — which only its instances hold. A target
 * that cannot be reached now is not refused (a new primary may be restarting): the connections
 * that follow verify it the same way, or, for replication without TLS required, it is the one
 * case left, named in docs/tls.md. A pod made before TLS has no CA to check against.
 */
async function provenInstance(a: AgentState, primary: sql.Endpoint): Promise<void> {
  const tls = await a.tls();
  if (!tls) return;
  try {
    await servedCertificate(primary.host, primary.port, tls, IDENTITY_TIMEOUT_MS);
  } catch (err) {
    if (err instanceof UnverifiedServer) throw new HttpError(400, `will not follow ${primary.host}:${primary.port}: it is not an instance of this cluster (${err.message})`);
    a.log.warn({ primary, err: errorText(err) }, 'follow: the new primary did not answer a TLS handshake yet; going on');
  }
}

/** A running replica that has not diverged: a new primary_conninfo, and streaming from it soon. */
async function repoint(a: AgentState, primary: sql.Endpoint, conninfo: string): Promise<boolean> {
  return sql.withClient(await a.local(), async (c) => {
    if (!(await sql.isInRecovery(c))) return false;
    if (await diverged(a, c, primary)) return false;
    a.log.info({ primary }, 'follow: repointing the walreceiver (no restart)');
    await sql.setPrimaryConninfo(c, conninfo);
    return waitStreaming(c, primary, REPOINT_TIMEOUT_MS, await primaryTimeline(a, primary));
  });
}

/**
 * Whether this replica has WAL the new primary lacks (it was ahead of the promoted replica):
 * then repointing cannot work, and finding out up front saves the repoint timeout. Unknown
 * (the primary unreachable, say) counts as not diverged: the repoint then tells.
 */
async function diverged(a: AgentState, c: pg.Client, primary: sql.Endpoint): Promise<boolean> {
  try {
    const ours = await sql.replicaPosition(c);
    if (!ours) return false;
    const superuser = await a.passwords.superuser();
    const theirs = await sql.withClient({ ...primary, credentials: superuser, connectTimeoutMs: 3000, tls: await a.tls() }, sql.timelineHistory);
    const history = theirs.history ? parseTimelineHistory(theirs.history) : [];
    const result = hasDiverged(history, theirs.timeline, ours.timeline, ours.lsn);
    if (result) a.log.warn({ ours, primaryTimeline: theirs.timeline, history }, 'follow: this replica has WAL the new primary lacks');
    return result;
  } catch (err) {
    a.log.warn({ err: errorText(err) }, 'follow: cannot compare timelines with the new primary; repointing');
    return false;
  }
}

/** The new primary's timeline (undefined when it cannot be asked: streaming alone then decides). */
async function primaryTimeline(a: AgentState, primary: sql.Endpoint): Promise<number | undefined> {
  try {
    const superuser = await a.passwords.superuser();
    return (await sql.withClient({ ...primary, credentials: superuser, connectTimeoutMs: 3000, tls: await a.tls() }, sql.timelineHistory)).timeline;
  } catch {
    return undefined;
  }
}

/**
 * Streaming from the new primary, on its timeline: a replica first streams the rest of the old
 * timeline from it and then restarts its walreceiver for the new one, so "streaming" alone can
 * be seen a moment before a short gap.
 */
async function waitStreaming(c: sql.ConnectOptions | pg.Client, primary: sql.Endpoint, timeoutMs: number, timeline?: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  const check = async (client: pg.Client) => {
    while (Date.now() < deadline) {
      const w = await sql.walReceiver(client);
      const onTimeline = timeline === undefined || (w?.timeline ?? 0) >= timeline;
      if (w && w.status === 'streaming' && w.host === primary.host && w.port === primary.port && onTimeline) return true;
      await sleep(50);
    }
    return false;
  };
  return 'credentials' in c ? sql.withClient(c, check) : check(c);
}

/** Stop, pg_rewind against the new primary (or re-clone), start as its replica. */
async function demote(a: AgentState, primary: sql.Endpoint, conninfo: string, step: Step, recloneFirst: boolean): Promise<void> {
  const { settings: s, layout, log } = a;
  a.phase.setPhase('Rewinding', 'follow: demoting to a replica of the new primary');
  try {
    // Fenced until the data directory is a standby: if anything below fails (or the agent dies
    // half-way), the old data must not come back as a writable primary.
    await a.raiseFence();
    step('stopping postgres');
    // Bounded: an old primary's shutdown may wait on archive_command for WAL nobody keeps.
    await a.pg.stopWithin(Math.min(DEMOTE_STOP_MS, s.stopTimeoutSeconds * 1000), 'fast');
    let recloned = false;
    if (recloneFirst) {
      step('re-cloning');
      log.warn({ primary, reason: a.cannotCatchUp }, 'follow: re-cloning from the primary (it no longer has the WAL this replica needs)');
      await reclone(a, primary);
      recloned = true;
    } else {
      recloned = await rewindOrReclone(a, primary, step);
    }
    await configureStandby(layout, conninfo);
    await a.liftFence('follow: a standby now; lifting the fence');
    step('starting');
    await startPostgres(a);
    a.phase.setPhase('Rewinding', 'follow: waiting for streaming');
    step('waiting for streaming');
    let streaming = await waitStreaming(await a.local(), primary, STREAMING_TIMEOUT_MS, await primaryTimeline(a, primary));
    if (!streaming && !recloned) {
      log.warn('follow: not streaming after the rewind; re-cloning from the new primary');
      step('re-cloning');
      await a.pg.stopWithin(DEMOTE_STOP_MS, 'fast');
      await reclone(a, primary);
      await configureStandby(layout, conninfo);
      await startPostgres(a);
      streaming = await waitStreaming(await a.local(), primary, STREAMING_TIMEOUT_MS);
    }
    a.phase.setPhase('Running', streaming ? 'follow: streaming from the new primary' : 'follow: started as a replica, not streaming');
    if (!streaming) throw new HttpError(500, `started as a replica of ${primary.host}:${primary.port} but not streaming from it`);
  } catch (err) {
    a.phase.setPhase(a.pg.running ? 'Running' : a.fenced ? 'Fenced' : 'Failed', 'follow failed', ['Rewinding']);
    a.fail('follow', err);
    throw err;
  }
}

/** CHECKPOINT on the new primary, then pg_rewind; a re-clone when rewinding is impossible. Returns whether it re-cloned. */
async function rewindOrReclone(a: AgentState, primary: sql.Endpoint, step: Step): Promise<boolean> {
  const { log } = a;
  step('checkpoint on the new primary');
  const superuser = await a.passwords.superuser();
  try {
    // Without a checkpoint since its promotion, the new primary's control file still shows
    // the old timeline and pg_rewind concludes there is nothing to do.
    await sql.withClient({ host: primary.host, port: primary.port, credentials: superuser, connectTimeoutMs: 5000, queryTimeoutMs: 10 * 60_000, tls: await a.tls() }, (c) => c.query('CHECKPOINT'));
  } catch (err) {
    // Unreachable now: a rewind (and a re-clone after it) would fail the same way. The
    // data stays fenced and stopped; the operator asks again.
    throw new HttpError(503, `the new primary ${primary.host}:${primary.port} does not answer (CHECKPOINT: ${errorText(err)}); nothing changed, try again`);
  }
  const t0 = Date.now();
  try {
    step('pg_rewind');
    log.info({ primary }, 'follow: pg_rewind');
    const r = await rewind(a.deps.pgBin, a.layout, primary, superuser, log, a.replicationTls());
    log.info({ ms: Date.now() - t0, rewound: r.rewound }, r.rewound ? 'follow: rewound' : 'follow: no rewind was needed');
    return false;
  } catch (err) {
    if (!(err instanceof RewindImpossible)) throw err;
    log.warn({ err: err.message }, 'follow: pg_rewind failed; re-cloning from the new primary');
    step('re-cloning');
    await reclone(a, primary);
    return true;
  }
}

/** A fresh copy of the primary; the old data directory comes back if the clone fails. */
async function reclone(a: AgentState, primary: sql.Endpoint): Promise<void> {
  const t0 = Date.now();
  const aside = await moveAside(a.layout, a.log);
  try {
    await runClone(a.deps.pgBin, a.layout, primary, await readCredentials(a.settings.secretsDir, 'replication'), a.log, a.replicationTls());
  } catch (err) {
    a.log.error({ err: errorText(err) }, 'follow: re-clone failed; restoring the old data directory');
    await aside.restore();
    throw err;
  }
  await aside.remove();
  a.log.info({ ms: Date.now() - t0 }, 'follow: re-cloned');
}
