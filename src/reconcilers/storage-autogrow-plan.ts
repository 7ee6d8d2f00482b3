// Storage auto-grow decisions, pure: from what the agents report of their volumes (statfs) and
// the claims' sizes to, per volume (data, wal), grow now / a growth in flight / no room left /
// nothing to do, and the StorageAutoGrowing and StorageFull conditions. The autopilot reconciler
// (autopilot.ts) gathers the input and grows the claims (claim-growth.ts).
//
// One size per volume for every instance: replicas hold the primary's data, so the claims of a
// volume grow together, to min(maxSize, current + increment), when any instance's volume is at
// least thresholdPercent full. spec size is the floor; the size chosen is kept in
// status.storage.<volume>.size and a claim is the larger of the two.
import { AUTOGROW_DEFAULTS, type AutoGrowSpec, type VolumeGrowthStatus } from '../api/autogrow.js';
import { parseQuantity } from '../api/quantity.js';
import type { InstanceStatus, VolumeUsage } from '../instance/api-types.js';
import type { ConditionInput } from './conditions.js';

export type VolumeKind = VolumeUsage['volume'];

const MiB = 2 ** 20;

export interface AutoGrowSettings {
  enabled: boolean;
  thresholdPercent: number;
  increment: string;
  maxSize?: string;
  cooldownSeconds: number;
}

/** spec.storage.autoGrow / spec.walStorage.autoGrow with the defaults applied. */
export function autoGrowSettings(spec: AutoGrowSpec | undefined): AutoGrowSettings {
  return {
    enabled: spec?.enabled ?? AUTOGROW_DEFAULTS.enabled,
    thresholdPercent: spec?.thresholdPercent ?? AUTOGROW_DEFAULTS.thresholdPercent,
    increment: spec?.increment ?? AUTOGROW_DEFAULTS.increment,
    cooldownSeconds: spec?.cooldownSeconds ?? AUTOGROW_DEFAULTS.cooldownSeconds,
    ...(spec?.maxSize ? { maxSize: spec.maxSize } : {}),
  };
}

/** One instance's claim of the volume and what its agent says of the file system. */
export interface InstanceVolume {
  instance: string;
  /** statfs through the agent; undefined when it did not answer. */
  usage?: VolumeUsage;
  /** The claim's spec.resources.requests.storage and status.capacity.storage, in bytes. */
  requestBytes?: number;
  capacityBytes?: number;
}

export interface VolumeInput {
  volume: VolumeKind;
  specSize: string;
  settings: AutoGrowSettings;
  status?: VolumeGrowthStatus;
  instances: InstanceVolume[];
  /** Why pg_wal, on this volume, keeps WAL it should not (walRetentionCause), if it does. */
  walRetention?: string;
  /** The storage class refused to expand a claim of this volume (recently): its words. */
  expansionRefused?: string;
  now: number;
}

export type FullReason = 'ExpansionNotSupported' | 'WalRetention' | 'AtMaxSize' | 'AutoGrowDisabled';

export type VolumeDecision =
  | { kind: 'grow'; volume: VolumeKind; from: string; to: string; instance: string; reason: string; walRetention?: string }
  | { kind: 'growing'; volume: VolumeKind; instances: string[]; to: string }
  | { kind: 'full'; volume: VolumeKind; reason: FullReason; message: string }
  | { kind: 'cooldown'; volume: VolumeKind; message: string }
  | { kind: 'ok'; volume: VolumeKind; hottestPercent?: number };

/** A size in bytes as a quantity: whole Gi when it is one, else Mi. */
export function formatSize(bytes: number): string {
  const mib = Math.ceil(bytes / MiB);
  return mib % 1024 === 0 ? `${mib / 1024}Gi` : `${mib}Mi`;
}

/** What the claims of a volume should request: the larger of the spec size and the size auto-grow chose. */
export function claimSize(specSize: string, chosen: string | undefined): string {
  return chosen && parseQuantity(chosen) > parseQuantity(specSize) ? chosen : specSize;
}

/** One increment on top of `current` bytes: a percentage of it, or a quantity. */
export function incrementBytes(increment: string, current: number): number {
  const pct = /^([0-9]+)%$/.exec(increment);
  return pct ? Math.ceil((current * Number(pct[1])) / 100) : parseQuantity(increment);
}

const volumeName = (v: VolumeKind) => (v === 'data' ? 'data' : 'WAL');
const field = (v: VolumeKind) => (v === 'data' ? 'spec.storage' : 'spec.walStorage');

/** The next size: min(maxSize, current + increment), in whole MiB; undefined when there is no room. */
function nextSize(current: number, s: AutoGrowSettings): string | undefined {
  const max = parseQuantity(s.maxSize!);
  if (current >= max) return undefined;
  const want = current + incrementBytes(s.increment, current);
  return want >= max || Math.ceil(want / MiB) * MiB >= max ? s.maxSize! : formatSize(want);
}

function describeUse(i: InstanceVolume, volume: VolumeKind): string {
  const u = i.usage!;
  return `${i.instance}'s ${volumeName(volume)} volume is ${Math.floor(u.usedPercent)}% full (${formatSize(u.usedBytes)} of ${formatSize(u.capacityBytes)})`;
}

/** The decision for one volume of every instance. */
export function planVolume(input: VolumeInput): VolumeDecision {
  const { volume, settings: s } = input;
  const inFlight = input.instances.filter((i) => i.requestBytes !== undefined && i.capacityBytes !== undefined && i.capacityBytes < i.requestBytes);
  if (inFlight.length > 0) {
    return { kind: 'growing', volume, instances: inFlight.map((i) => i.instance), to: formatSize(Math.max(...inFlight.map((i) => i.requestBytes!))) };
  }
  const measured = input.instances.filter((i) => i.usage);
  if (measured.length === 0) return { kind: 'ok', volume };
  const hottest = measured.reduce((a, b) => (b.usage!.usedPercent > a.usage!.usedPercent ? b : a));
  const used = hottest.usage!.usedPercent;
  if (used < s.thresholdPercent) return { kind: 'ok', volume, hottestPercent: used };
  const use = describeUse(hottest, volume);
  if (!s.enabled || !s.maxSize) {
    return { kind: 'full', volume, reason: 'AutoGrowDisabled', message: `${use}, past ${s.thresholdPercent}%, and auto-grow is off: raise ${field(volume)}.size or turn on ${field(volume)}.autoGrow` };
  }
  if (input.expansionRefused) {
    return { kind: 'full', volume, reason: 'ExpansionNotSupported', message: `${use} but its claims cannot grow: ${input.expansionRefused} (use a StorageClass with allowVolumeExpansion: true)` };
  }
  const current = Math.max(parseQuantity(claimSize(input.specSize, input.status?.size)), ...input.instances.map((i) => i.requestBytes ?? 0));
  const to = nextSize(current, s);
  if (!to) {
    return { kind: 'full', volume, reason: 'AtMaxSize', message: `${use} and its claims are at ${field(volume)}.autoGrow.maxSize (${s.maxSize}): raise maxSize, or free space` };
  }
  if (input.walRetention && input.status?.walRetention) {
    return {
      kind: 'full',
      volume,
      reason: 'WalRetention',
      message: `${use} because pg_wal keeps WAL: ${input.walRetention}. Auto-grow grew it once for that (to ${input.status.size}) and will not again, since growing hides the cause: fix it`,
    };
  }
  const last = input.status?.lastGrownAt ? Date.parse(input.status.lastGrownAt) : NaN;
  if (Number.isFinite(last) && input.now - last < s.cooldownSeconds * 1000) {
    const left = Math.ceil((s.cooldownSeconds * 1000 - (input.now - last)) / 1000);
    return { kind: 'cooldown', volume, message: `${use}; the next growth waits ${left}s more (cooldownSeconds ${s.cooldownSeconds})` };
  }
  const from = formatSize(current);
  const why = input.walRetention ? `${use}, past ${s.thresholdPercent}%, because pg_wal keeps WAL: ${input.walRetention} (grown once for it; fix the cause)` : `${use}, past ${s.thresholdPercent}%`;
  return { kind: 'grow', volume, from, to, instance: hottest.instance, reason: why, ...(input.walRetention ? { walRetention: input.walRetention } : {}) };
}

/** Segments the primary's archiver may have waiting before a failing archive counts as holding WAL. */
const SEGMENT = 16 * MiB;

/**
 * Why the primary's pg_wal keeps WAL it should not, in a sentence: archiving fails (the last
 * attempt failed after the last success, with segments waiting) or an inactive replication slot
 * holds at least a segment. undefined: neither.
 */
export function walRetentionCause(primary: InstanceStatus | undefined): string | undefined {
  if (!primary) return undefined;
  const causes: string[] = [];
  const a = primary.archiving;
  if (a?.lastFailure && a.lastFailureTime && (!a.lastArchivedTime || Date.parse(a.lastFailureTime) > Date.parse(a.lastArchivedTime)) && a.backlogSegments > 0) {
    causes.push(`WAL archiving fails (${a.backlogSegments} segment(s) wait; last error: ${a.lastFailure.slice(0, 200)})`);
  }
  for (const slot of primary.slots ?? []) {
    if (!slot.active && slot.retainedBytes >= SEGMENT) causes.push(`inactive replication slot "${slot.slot}" holds ${formatSize(slot.retainedBytes)} of WAL`);
  }
  return causes.length ? causes.join('; ') : undefined;
}

/**
 * pg_wal counts as a cause of the data volume filling (no WAL volume) when it is at least a
 * quarter of it; on its own volume it always does.
 */
export function walWeighs(volume: VolumeKind, primary: InstanceStatus | undefined): boolean {
  if (volume === 'wal') return true;
  const data = primary?.volumes?.find((v) => v.volume === 'data');
  return !!data && !!primary?.wal && primary.wal.bytes * 4 >= data.capacityBytes;
}

/**
 * A volume with no room left for PostgreSQL to work (under 16 MiB, or 2 % of it on a small one,
 * available): the HA plan never promotes a replica whose volume is full.
 */
export function volumeFull(agent: InstanceStatus | undefined): boolean {
  return (agent?.volumes ?? []).some((v) => v.availableBytes < Math.min(16 * MiB, v.capacityBytes * 0.02));
}

const FULL_ORDER: FullReason[] = ['ExpansionNotSupported', 'WalRetention', 'AtMaxSize', 'AutoGrowDisabled'];

/** StorageAutoGrowing and StorageFull from the decisions of every volume. */
export function storageConditions(decisions: VolumeDecision[], settings: Partial<Record<VolumeKind, AutoGrowSettings>>): ConditionInput[] {
  const moving = decisions.filter((d) => d.kind === 'grow' || d.kind === 'growing');
  const describe = (d: VolumeDecision) =>
    d.kind === 'grow' ? `growing the ${volumeName(d.volume)} claims from ${d.from} to ${d.to}: ${d.reason}` : d.kind === 'growing' ? `the ${volumeName(d.volume)} claims of ${d.instances.join(', ')} are growing to ${d.to}` : '';
  const watching = (Object.entries(settings) as Array<[VolumeKind, AutoGrowSettings]>).filter(([, s]) => s.enabled && s.maxSize);
  const growing: ConditionInput = moving.length
    ? { type: 'StorageAutoGrowing', status: 'True', reason: 'Growing', message: moving.map(describe).join('; ') }
    : watching.length
      ? { type: 'StorageAutoGrowing', status: 'False', reason: 'Idle', message: `Auto-grow watches ${watching.map(([v, s]) => `the ${volumeName(v)} volumes (at ${s.thresholdPercent}%, up to ${s.maxSize})`).join(' and ')}; no growth in flight` }
      : { type: 'StorageAutoGrowing', status: 'False', reason: 'AutoGrowOff', message: 'Storage auto-grow is off (spec.storage.autoGrow, spec.walStorage.autoGrow)' };
  const full = decisions.filter((d): d is Extract<VolumeDecision, { kind: 'full' }> => d.kind === 'full').sort((a, b) => FULL_ORDER.indexOf(a.reason) - FULL_ORDER.indexOf(b.reason));
  const storageFull: ConditionInput = full.length
    ? { type: 'StorageFull', status: 'True', reason: full[0]!.reason, message: full.map((d) => d.message).join('; ') }
    : { type: 'StorageFull', status: 'False', reason: 'RoomLeft', message: 'Every volume is below its threshold or can still grow' };
  return [growing, storageFull];
}
