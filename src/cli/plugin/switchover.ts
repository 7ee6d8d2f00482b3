// `kubectl pgpilot switchover CLUSTER [--to INSTANCE]`: asks for a switchover (spec.primary, a
// merge patch) and follows status.currentPrimary until the new primary is in place.
import { instanceOrdinal } from '../../api/names.js';
import { EXIT, PluginError, usage } from './errors.js';
import type { Kube } from './kube.js';
import type { InstanceReport, StatusReport } from './status.js';
import { follow, type Progress, type Step } from './ui.js';

export interface SwitchoverChoice {
  target: string;
  /** Why this one, for the person at the terminal. */
  why: string;
}

/** Compares LSNs "X/Y" (hex); undefined sorts first. */
function lsnValue(lsn: string | undefined): bigint {
  const m = lsn ? /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(lsn) : null;
  return m ? (BigInt(`0x${m[1]}`) << 32n) + BigInt(`0x${m[2]}`) : -1n;
}

function byCatchUp(cluster: string) {
  return (a: InstanceReport, b: InstanceReport): number => {
    const tl = (b.timeline ?? 0) - (a.timeline ?? 0);
    if (tl !== 0) return tl;
    const lsn = lsnValue(b.lsn) - lsnValue(a.lsn);
    if (lsn !== 0n) return lsn > 0n ? 1 : -1;
    return (instanceOrdinal(cluster, a.name) ?? 0) - (instanceOrdinal(cluster, b.name) ?? 0);
  };
}

/**
 * Pure: the instance to switch over to. With --to: that instance, if it is one of the cluster's
 * and not already the primary. Without: the most caught-up ready replica — the highest timeline
 * and LSN from the agents (status.ts reads them through pods/exec); when they could not be read,
 * the ready, running replica of lowest ordinal (the operator's switchover stops the old primary
 * cleanly first, so every streaming replica receives all of its WAL before the promotion).
 */
export function chooseSwitchoverTarget(r: StatusReport, to: string | undefined): SwitchoverChoice {
  const current = r.primary.current;
  if (to !== undefined) {
    const known = r.instanceTable.map((i) => i.name);
    if (!known.includes(to)) throw usage(`${to} is not an instance of ${r.name} (instances: ${known.join(', ') || 'none'})`);
    return { target: to, why: 'asked with --to' };
  }
  const replicas = r.instanceTable.filter((i) => i.name !== current);
  if (replicas.length === 0) throw new PluginError(`${r.name} has no replica to switch over to (instances: ${r.instanceTable.map((i) => i.name).join(', ') || 'none'})`, EXIT.failed);
  const ready = replicas.filter((i) => i.ready && i.role !== 'primary' && i.status === 'Running');
  if (ready.length === 0) {
    throw new PluginError(`no replica of ${r.name} is ready: ${replicas.map((i) => `${i.name} ${i.ready ? 'ready' : 'not ready'} (${i.status})`).join(', ')}`, EXIT.failed);
  }
  const sorted = [...ready].sort(byCatchUp(r.name));
  const best = sorted[0]!;
  const known = best.lsn !== undefined;
  const others = sorted.slice(1).map((i) => i.name);
  const why = known
    ? `the most caught-up ready replica (timeline ${best.timeline ?? '?'}, LSN ${best.lsn})`
    : `a ready replica${others.length ? ` (the lowest ordinal of ${[best.name, ...others].join(', ')})` : ''}; the agents' replication positions could not be read, and the switchover ships all of the old primary's WAL to the replicas first`;
  return { target: best.name, why };
}

/** Judges one look at the cluster during a switchover to `target`. */
export function switchoverStep(r: StatusReport, target: string): Step<StatusReport> {
  const current = r.primary.current ?? 'none';
  const ha = r.conditions.find((c) => c.type === 'PrimaryAvailable');
  const line = `primary ${current}${r.primary.target && r.primary.target !== current ? ` → ${r.primary.target}` : ''}, phase ${r.phase}${ha ? `, PrimaryAvailable ${ha.status} (${ha.reason})` : ''}`;
  if (current === target && ha?.status !== 'False') return { state: 'done', line, value: r };
  if (r.primary.asked && r.primary.asked !== target) return { state: 'failed', line: `spec.primary was changed to ${r.primary.asked} by someone else meanwhile` };
  return { state: 'waiting', line };
}

export interface SwitchoverOptions {
  to?: string;
  timeoutMs: number;
  wait: boolean;
}

/** collect(true): with the agents' positions (to choose the target); collect(false): the API alone (to follow). */
export async function runSwitchover(kube: Kube, name: string, o: SwitchoverOptions, collect: (withAgents: boolean) => Promise<StatusReport>, out: (line: string) => void, progress: Progress, signal?: AbortSignal): Promise<void> {
  const before = await collect(o.to === undefined);
  const choice = chooseSwitchoverTarget(before, o.to);
  if (choice.target === before.primary.current) {
    out(`${choice.target} is already the primary of ${name}: nothing to do`);
    return;
  }
  out(`switching ${kube.namespace}/${name} over from ${before.primary.current ?? 'none'} to ${choice.target}: ${choice.why}`);
  await kube.patchCluster(name, { spec: { primary: choice.target } });
  if (!o.wait) return;
  await follow({
    what: `${choice.target} to become the primary of ${name}`,
    timeoutMs: o.timeoutMs,
    poll: () => collect(false),
    judge: (r) => switchoverStep(r, choice.target),
    progress,
    signal,
  });
  progress.end();
  out(`${choice.target} is the primary of ${name} (${progress.seconds()} s)`);
}
