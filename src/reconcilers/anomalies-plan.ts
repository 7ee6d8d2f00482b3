// Anomaly detection and the corrections it asks for, pure: from the agents' health snapshots
// (InstanceStatus.health, archiving, replication, vacuum) and spec.autopilot.anomalies to one
// condition per anomaly type (True while present, with the instance, the object, the numbers and
// the threshold's field; False with a reason when clear), the corrections to make, and
// status.anomalies (the checkpoint window, a raised max_wal_size, the corrections made).
// anomalies.ts carries out the corrections; docs/anomalies.md describes each anomaly.
import type { AnomaliesStatus, ResolvedAnomalies } from '../api/anomalies.js';
import { parseQuantity } from '../api/quantity.js';
import type { CorrectionRequest, InstanceStatus } from '../instance/api-types.js';
import { lsnDiff } from '../postgres/lsn.js';
import type { ConditionInput, ConditionType } from './conditions.js';

/** The anomaly conditions, in the order they are reported. */
export const ANOMALY_CONDITIONS = ['XidWraparoundRisk', 'LongTransactions', 'ReplicationLagging', 'SlotRetainingWal', 'WalGrowingArchiveFailing', 'ConnectionsNearLimit', 'CheckpointsForced'] as const satisfies readonly ConditionType[];
export type AnomalyCondition = (typeof ANOMALY_CONDITIONS)[number];

/** A vacuum that ended this recently is not started again (the age may lag, or something holds the xmin back). */
export const VACUUM_RETRY_MS = 10 * 60_000;
const MB = 2 ** 20;
const FIELD = 'spec.autopilot.anomalies';

export interface AnomalyInput {
  anomalies: ResolvedAnomalies;
  /** The primary after ha's pass. */
  primary: string | undefined;
  instances: { name: string; agent?: InstanceStatus }[];
  previous: AnomaliesStatus | undefined;
  /** Size of the volume holding pg_wal (spec.walStorage, else spec.storage), in bytes. */
  walVolumeBytes: number;
  /** spec.postgresql.parameters.max_wal_size, when the user set it (it wins: no raise). */
  userMaxWalSize: string | undefined;
  now: Date;
}

export interface PlannedCorrection {
  instance: string;
  request: CorrectionRequest;
}

export interface AnomalyPlan {
  conditions: ConditionInput[];
  status: AnomaliesStatus;
  corrections: PlannedCorrection[];
  /** max_wal_size raised in this pass (for an Event). */
  raisedMaxWalSize?: { from: string; to: string; reason: string };
}

const count = (n: number) => Math.round(n).toLocaleString('en-US');
export const mib = (bytes: number) => `${(bytes / MB).toFixed(bytes < 10 * MB ? 1 : 0)} MiB`;
const who = (s: { pid: number; user: string | null; database: string | null }) => `pid ${s.pid} (${s.user ?? '?'}@${s.database ?? '?'})`;

interface Part {
  condition: ConditionInput;
  corrections?: PlannedCorrection[];
}

const clear = (type: AnomalyCondition, reason: string, message: string): ConditionInput => ({ type, status: 'False', reason, message });
const unknown = (type: AnomalyCondition, reason: string, message: string): ConditionInput => ({ type, status: 'Unknown', reason, message });
const present = (type: AnomalyCondition, reason: string, message: string): ConditionInput => ({ type, status: 'True', reason, message });

function reporting(input: AnomalyInput): { name: string; agent: InstanceStatus }[] {
  return input.instances.flatMap((i) => (i.agent?.health ? [{ name: i.name, agent: i.agent }] : []));
}

function primaryOf(input: AnomalyInput): InstanceStatus | undefined {
  const p = input.instances.find((i) => i.name === input.primary)?.agent;
  return p?.role === 'primary' ? p : undefined;
}

// ---- XidWraparoundRisk -------------------------------------------------------------------------

function vacuumNote(p: InstanceStatus): string {
  const v = p.vacuum;
  if (!v) return '';
  if (v.state === 'running') return `; VACUUM (FREEZE) running in ${v.current ?? '?'} (${v.done} of ${v.databases.length} databases done, since ${v.startedAt})`;
  return `; the last VACUUM (FREEZE) (${v.databases.join(', ')}) ${v.state === 'failed' ? `failed at ${v.finishedAt}: ${v.error ?? ''}` : `finished at ${v.finishedAt}`}`;
}

/** A vacuum may start: none runs, and none ended in the last VACUUM_RETRY_MS. */
function mayVacuum(p: InstanceStatus, now: Date): boolean {
  const v = p.vacuum;
  if (!v) return true;
  return v.state !== 'running' && (!v.finishedAt || now.getTime() - Date.parse(v.finishedAt) >= VACUUM_RETRY_MS);
}

export function xidCondition(input: AnomalyInput): Part {
  const type = 'XidWraparoundRisk';
  const p = primaryOf(input);
  const h = p?.health;
  if (!p || !h) return { condition: unknown(type, 'NoHealthSnapshot', `Waiting for the primary${input.primary ? ` ${input.primary}` : ''} to report its databases' transaction ID age`) };
  const limit = input.anomalies.xidAge;
  const oldest = h.databases[0];
  if (!oldest) return { condition: unknown(type, 'NoHealthSnapshot', `The primary ${input.primary} reported no database`) };
  const over = h.databases.filter((d) => d.xidAge >= limit);
  if (over.length === 0) {
    return { condition: clear(type, 'XidAgeNormal', `The oldest database on ${input.primary}, ${oldest.name}, is ${count(oldest.xidAge)} transactions old (age(datfrozenxid)), below ${FIELD}.xidAge ${count(limit)}${vacuumNote(p)}`) };
  }
  const list = over.map((d) => `${d.name} ${count(d.xidAge)}`).join(', ');
  const base = `On ${input.primary}, ${over.length} database(s) are at or past ${FIELD}.xidAge ${count(limit)} transactions (age(datfrozenxid); writes stop near 2,100,000,000): ${list}`;
  if (!input.anomalies.corrections.vacuumFreeze) {
    return { condition: present(type, 'XidAgeHigh', `${base}. Run VACUUM (FREEZE) in them (corrections.vacuumFreeze is off)${vacuumNote(p)}`) };
  }
  const start = mayVacuum(p, input.now);
  const corrections = start ? [{ instance: input.primary!, request: { action: 'vacuumFreeze' as const, databases: over.map((d) => d.name) } }] : [];
  const doing = start ? '; starting VACUUM (FREEZE) in them, oldest first (corrections.vacuumFreeze)' : vacuumNote(p);
  return { condition: present(type, 'XidAgeHigh', `${base}${doing}`), corrections };
}

// ---- LongTransactions --------------------------------------------------------------------------

export function longTransactionsCondition(input: AnomalyInput): Part {
  const type = 'LongTransactions';
  const seen = reporting(input);
  if (seen.length === 0) return { condition: unknown(type, 'NoHealthSnapshot', 'Waiting for the instances to report their sessions') };
  const { transactionSeconds, idleInTransactionSeconds } = input.anomalies;
  const terminate = input.anomalies.corrections.terminateIdleInTransaction;
  const lines: string[] = [];
  const corrections: PlannedCorrection[] = [];
  let active = false;
  let idle = false;
  for (const { name, agent } of seen) {
    const h = agent.health!;
    if (h.oldestActive && h.oldestActive.seconds >= transactionSeconds) {
      active = true;
      lines.push(`${name}: ${who(h.oldestActive)} has been in a transaction for ${count(h.oldestActive.seconds)} s (${FIELD}.transactionSeconds ${count(transactionSeconds)})`);
    }
    const o = h.idleInTransaction.oldest;
    if (o && o.seconds >= idleInTransactionSeconds) {
      idle = true;
      lines.push(
        `${name}: ${h.idleInTransaction.count} session(s) idle in transaction, the longest ${who(o)} for ${count(o.seconds)} s (${FIELD}.idleInTransactionSeconds ${count(idleInTransactionSeconds)})${terminate ? ': terminating them (corrections.terminateIdleInTransaction)' : ''}`,
      );
      if (terminate) corrections.push({ instance: name, request: { action: 'terminateIdleInTransaction', olderThanSeconds: idleInTransactionSeconds } });
    }
  }
  if (!active && !idle) return { condition: clear(type, 'NoLongTransactions', `No transaction open longer than ${count(transactionSeconds)} s and no session idle in transaction longer than ${count(idleInTransactionSeconds)} s`) };
  const reason = active && idle ? 'LongAndIdleTransactions' : active ? 'LongTransaction' : 'IdleInTransaction';
  return { condition: present(type, reason, `${lines.join('; ')}. Long transactions hold back vacuum and replication cleanup`), corrections };
}

// ---- ReplicationLagging ------------------------------------------------------------------------

export function replicationLagCondition(input: AnomalyInput): Part {
  const type = 'ReplicationLagging';
  const p = primaryOf(input);
  if (!p?.currentLsn) return { condition: unknown(type, 'NoHealthSnapshot', `Waiting for the primary${input.primary ? ` ${input.primary}` : ''} to report its replicas`) };
  const limit = parseQuantity(input.anomalies.replicationLag);
  const lagging = p.replication.flatMap((r) => {
    if (!r.replayLsn) return [];
    const lag = Number(lsnDiff(p.currentLsn!, r.replayLsn));
    return lag >= limit ? [`${r.applicationName || r.clientAddr || '?'} has ${mib(lag)} of WAL not replayed (received up to ${r.flushLsn ?? '?'}, replayed up to ${r.replayLsn}, primary at ${p.currentLsn})`] : [];
  });
  if (lagging.length === 0) return { condition: clear(type, 'ReplicasCaughtUp', `Every streaming replica of ${input.primary} has replayed all but less than ${input.anomalies.replicationLag} of WAL (${FIELD}.replicationLag)`) };
  return { condition: present(type, 'ReplicaLagging', `${lagging.join('; ')} — ${FIELD}.replicationLag ${input.anomalies.replicationLag}. Look for a paused or slow replay, or long queries on the replica`) };
}

// ---- SlotRetainingWal --------------------------------------------------------------------------

export function slotCondition(input: AnomalyInput): Part {
  const type = 'SlotRetainingWal';
  const p = primaryOf(input);
  if (!p?.health) return { condition: unknown(type, 'NoHealthSnapshot', `Waiting for the primary${input.primary ? ` ${input.primary}` : ''} to report its replication slots`) };
  const limitText = input.anomalies.slotRetainedWal;
  const limit = parseQuantity(limitText);
  const drop = input.anomalies.corrections.dropInactiveSlots;
  const over = p.health.slots.filter((s) => s.retainedBytes !== null && s.retainedBytes >= limit);
  if (over.length === 0) return { condition: clear(type, 'NoSlotRetainingWal', `No replication slot on ${input.primary} retains ${limitText} of WAL or more (${FIELD}.slotRetainedWal; ${p.health.slots.length} slot(s))`) };
  const corrections: PlannedCorrection[] = [];
  const lines = over.map((s) => {
    const what = `slot ${s.name} (${s.type}, ${s.active ? 'active' : 'inactive'}) retains ${mib(s.retainedBytes!)} of WAL`;
    if (s.active) return `${what}: its consumer is connected but behind`;
    if (drop) {
      corrections.push({ instance: input.primary!, request: { action: 'dropSlot', slot: s.name, minRetainedBytes: limit } });
      return `${what}: dropping it (corrections.dropInactiveSlots)`;
    }
    return `${what}: if nothing uses it, drop it (SELECT pg_drop_replication_slot('${s.name}')) or allow corrections.dropInactiveSlots`;
  });
  return { condition: present(type, 'SlotRetainingWal', `On ${input.primary}, ${lines.join('; ')} — ${FIELD}.slotRetainedWal ${limitText}; pg_wal keeps that WAL until the slot moves on`), corrections };
}

// ---- WalGrowingArchiveFailing ------------------------------------------------------------------

export function archiveCondition(input: AnomalyInput): Part {
  const type = 'WalGrowingArchiveFailing';
  const p = primaryOf(input);
  if (!p) return { condition: unknown(type, 'NoHealthSnapshot', `Waiting for the primary${input.primary ? ` ${input.primary}` : ''} to report WAL archiving`) };
  const a = p.archiving;
  if (!a) return { condition: clear(type, 'ArchivingOff', 'WAL archiving is off (no backup store): pg_wal does not wait for it') };
  const failing = !!a.lastFailureTime && (!a.lastArchivedTime || Date.parse(a.lastFailureTime) >= Date.parse(a.lastArchivedTime));
  const limit = input.anomalies.archiveBacklogSegments;
  const wal = p.wal ? ` (pg_wal ${mib(p.wal.bytes)}${p.wal.volumeUsedPercent !== null ? `, its volume ${Math.round(p.wal.volumeUsedPercent)}% full` : ''})` : '';
  if (!failing || a.backlogSegments < limit) {
    const why = failing ? `archiving fails, but only ${a.backlogSegments} segment(s) wait` : `archiving works (${a.backlogSegments} segment(s) waiting)`;
    return { condition: clear(type, 'ArchivingKeepsUp', `On ${input.primary}, ${why}${wal}; ${FIELD}.archiveBacklogSegments ${limit}`) };
  }
  return {
    condition: present(
      type,
      'ArchiveFailing',
      `On ${input.primary}, WAL archiving fails (${a.lastFailure ?? 'unknown error'}, last at ${a.lastFailureTime}) and ${a.backlogSegments} completed segment(s) wait in pg_wal${wal} — ${FIELD}.archiveBacklogSegments ${limit}. pg_wal grows until the backup store works again: fix the store; a bigger volume only buys time`,
    ),
  };
}

// ---- ConnectionsNearLimit ----------------------------------------------------------------------

export function connectionsCondition(input: AnomalyInput): Part {
  const type = 'ConnectionsNearLimit';
  const seen = reporting(input);
  if (seen.length === 0) return { condition: unknown(type, 'NoHealthSnapshot', 'Waiting for the instances to report their connections') };
  const pct = input.anomalies.connectionsPercent;
  const near = seen.flatMap(({ name, agent }) => {
    const c = agent.health!.connections;
    if (c.max <= 0 || (c.used * 100) / c.max < pct) return [];
    return [`${name}: ${c.used} of max_connections ${c.max} in use (${Math.round((c.used * 100) / c.max)}%; ${c.superuserReserved} reserved for superusers)`];
  });
  if (near.length === 0) {
    const worst = seen.map(({ name, agent }) => ({ name, c: agent.health!.connections })).sort((x, y) => y.c.used / (y.c.max || 1) - x.c.used / (x.c.max || 1))[0]!;
    return { condition: clear(type, 'ConnectionsBelowLimit', `The busiest instance, ${worst.name}, has ${worst.c.used} of max_connections ${worst.c.max} in use, below ${FIELD}.connectionsPercent ${pct}%`) };
  }
  return { condition: present(type, 'ConnectionsNearLimit', `${near.join('; ')} — ${FIELD}.connectionsPercent ${pct}%. New clients are refused at the limit: use a connection pooler, or raise max_connections (a restart)`) };
}

// ---- CheckpointsForced -------------------------------------------------------------------------

type Window = NonNullable<AnomaliesStatus['checkpointWindow']>;
type Judged = NonNullable<AnomaliesStatus['lastCheckpointWindow']>;

interface WindowStep {
  window?: Window;
  judged?: Judged;
  closedNow: boolean;
}

/** The window carried over unchanged (and the last verdict, while it is about the same primary). */
function carried(prev: AnomaliesStatus | undefined, window: Window | undefined, primary: string | undefined): WindowStep {
  const judged = prev?.lastCheckpointWindow && (primary === undefined || prev.lastCheckpointWindow.instance === primary) ? prev.lastCheckpointWindow : undefined;
  return { ...(window ? { window } : {}), ...(judged ? { judged } : {}), closedNow: false };
}

/** A new primary, a statistics reset or counters that went back: the window starts over. */
function startsOver(w: Window, primary: string, cp: { timed: number; requested: number; statsReset: string | null }): boolean {
  return w.instance !== primary || (w.statsReset ?? null) !== cp.statsReset || cp.timed < w.timed || cp.requested < w.requested;
}

/** The checkpoint window after this snapshot: kept, closed (judged) and reopened, or started. */
export function advanceWindow(input: AnomalyInput): WindowStep {
  const prev = input.previous;
  const cp = primaryOf(input)?.health?.checkpoints;
  if (!cp || !input.primary) return carried(prev, prev?.checkpointWindow, undefined);
  const fresh: Window = { instance: input.primary, timed: cp.timed, requested: cp.requested, ...(cp.statsReset ? { statsReset: cp.statsReset } : {}), since: input.now.toISOString() };
  const w = prev?.checkpointWindow;
  if (!w || startsOver(w, input.primary, cp)) return carried(prev, fresh, input.primary);
  const timed = cp.timed - w.timed;
  const requested = cp.requested - w.requested;
  const seconds = Math.max(0, Math.round((input.now.getTime() - Date.parse(w.since)) / 1000));
  const { checkpointsMinimum, checkpointsRequestedPercent, checkpointsWindowSeconds } = input.anomalies;
  const enough = timed + requested >= checkpointsMinimum;
  if (!enough && seconds < checkpointsWindowSeconds) return carried(prev, w, input.primary);
  const forced = enough && requested * 100 >= checkpointsRequestedPercent * (timed + requested);
  return { window: fresh, judged: { instance: input.primary, timed, requested, seconds, forced, closedAt: input.now.toISOString() }, closedNow: true };
}

const sizeMb = (bytes: number) => `${Math.floor(bytes / MB)}MB`;

/** The raise of max_wal_size a forced window asks for: doubled, at most half of the WAL volume. */
export function raiseMaxWalSize(input: AnomalyInput, runningBytes: number | null): { value?: string; note: string } {
  if (input.userMaxWalSize !== undefined) return { note: `max_wal_size is spec.postgresql.parameters.max_wal_size ${input.userMaxWalSize}, which wins: raise it there` };
  if (!input.anomalies.corrections.raiseMaxWalSize) return { note: 'raise max_wal_size (corrections.raiseMaxWalSize is off)' };
  if (runningBytes === null) return { note: 'max_wal_size unknown: not raised' };
  const cap = Math.floor(input.walVolumeBytes / 2 / MB) * MB;
  const target = Math.min(runningBytes * 2, cap);
  if (target <= runningBytes) return { note: `max_wal_size ${sizeMb(runningBytes)} is already at its cap, half of the volume holding pg_wal (${mib(input.walVolumeBytes)}): grow the volume` };
  return { value: sizeMb(target), note: `max_wal_size raised from ${sizeMb(runningBytes)} to ${sizeMb(target)} (corrections.raiseMaxWalSize; at most half of the ${mib(input.walVolumeBytes)} volume holding pg_wal)` };
}

export function checkpointsCondition(input: AnomalyInput, judged: Judged | undefined, note: string | undefined): ConditionInput {
  const type = 'CheckpointsForced';
  const a = input.anomalies;
  if (!judged) return unknown(type, 'WindowOpen', `Counting the checkpoints of ${input.primary ?? 'the primary'}: a window is judged once it holds ${FIELD}.checkpointsMinimum ${a.checkpointsMinimum} or after checkpointsWindowSeconds ${a.checkpointsWindowSeconds} s`);
  const total = judged.timed + judged.requested;
  const what = `${judged.requested} of ${total} checkpoints on ${judged.instance} in the last window (${judged.seconds} s, closed ${judged.closedAt}) were requested`;
  if (!judged.forced) {
    const why = total < a.checkpointsMinimum ? `only ${total} checkpoint(s) in ${judged.seconds} s (fewer than ${FIELD}.checkpointsMinimum ${a.checkpointsMinimum})` : `${what}, below ${FIELD}.checkpointsRequestedPercent ${a.checkpointsRequestedPercent}%`;
    return clear(type, 'CheckpointsTimed', `Checkpoints are not forced: ${why}`);
  }
  return present(type, 'CheckpointsForced', `${what} (WAL reached max_wal_size before checkpoint_timeout, or CHECKPOINT) — ${FIELD}.checkpointsRequestedPercent ${a.checkpointsRequestedPercent}%${note ? `; ${note}` : ''}`);
}

// ---- the plan ----------------------------------------------------------------------------------

/** What a forced window does to max_wal_size: raised once when it closes, else what stands. */
function forcedWindow(input: AnomalyInput, judged: Judged, closedNow: boolean, kept: AnomaliesStatus['maxWalSize']): { note?: string; maxWalSize?: AnomaliesStatus['maxWalSize']; raised?: AnomalyPlan['raisedMaxWalSize'] } {
  if (!closedNow) return kept ? { note: `max_wal_size ${kept.value} (${kept.reason})` } : {};
  const running = primaryOf(input)?.health?.maxWalSizeBytes ?? null;
  const r = raiseMaxWalSize(input, running);
  if (!r.value) return { note: r.note };
  const reason = `${judged.requested} of ${judged.timed + judged.requested} checkpoints on ${judged.instance} were requested in ${judged.seconds} s: ${r.note}`;
  return { note: r.note, maxWalSize: { value: r.value, reason, since: input.now.toISOString() }, raised: { from: sizeMb(running!), to: r.value, reason } };
}

/** Every anomaly condition, the corrections to make, and status.anomalies (without the corrections made: anomalies.ts appends them). */
export function planAnomalies(input: AnomalyInput): AnomalyPlan {
  const prev = input.previous;
  const keptMaxWal = input.anomalies.corrections.raiseMaxWalSize && input.userMaxWalSize === undefined ? prev?.maxWalSize : undefined;
  const kept: AnomaliesStatus = { ...(keptMaxWal ? { maxWalSize: keptMaxWal } : {}), ...(prev?.corrections?.length ? { corrections: prev.corrections } : {}) };
  if (!input.anomalies.enabled) {
    const message = `${FIELD}.enabled is false: anomalies are not looked for`;
    return { conditions: ANOMALY_CONDITIONS.map((t) => unknown(t, 'DetectionDisabled', message)), status: kept, corrections: [] };
  }
  const parts = [xidCondition(input), longTransactionsCondition(input), replicationLagCondition(input), slotCondition(input), archiveCondition(input), connectionsCondition(input)];
  const { window, judged, closedNow } = advanceWindow(input);
  const effect = judged?.forced ? forcedWindow(input, judged, closedNow, keptMaxWal) : {};
  const status: AnomaliesStatus = { ...kept, ...(window ? { checkpointWindow: window } : {}), ...(judged ? { lastCheckpointWindow: judged } : {}), ...(effect.maxWalSize ? { maxWalSize: effect.maxWalSize } : {}) };
  return {
    conditions: [...parts.map((p) => p.condition), checkpointsCondition(input, judged, effect.note)],
    status,
    corrections: parts.flatMap((p) => p.corrections ?? []),
    ...(effect.raised ? { raisedMaxWalSize: effect.raised } : {}),
  };
}
