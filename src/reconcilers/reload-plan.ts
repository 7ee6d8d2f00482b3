// A configuration reload on request (ANNOTATIONS.reloadRequestedAt), pure: whether the annotation
// asks for one this pass (its value differs from status.lastReload.requestedAt), which instances
// are asked (those whose PostgreSQL runs: one not running reads its configuration when it starts),
// and what status.lastReload and the Event say afterwards. reload.ts makes the calls.
import type { ClusterStatus } from '../api/cluster-status.js';

export type LastReload = NonNullable<ClusterStatus['lastReload']>;

export interface ReloadInstance {
  name: string;
  /** Its PostgreSQL runs (the agent said so in this pass). */
  running: boolean;
}

export interface ReloadTargets {
  requestedAt: string;
  ask: string[];
  notRunning: string[];
}

/** What to reload now; undefined when the annotation asks for nothing new. */
export function reloadTargets(requested: string | undefined, last: LastReload | undefined, instances: ReloadInstance[]): ReloadTargets | undefined {
  const value = requested?.trim();
  if (!value || value === last?.requestedAt) return undefined;
  return { requestedAt: value, ask: instances.filter((i) => i.running).map((i) => i.name), notRunning: instances.filter((i) => !i.running).map((i) => i.name) };
}

export interface ReloadOutcome {
  status: LastReload;
  event: { type: 'Normal' | 'Warning'; reason: string; message: string };
}

/** status.lastReload and the Event, from each asked instance's answer (error: why it failed). */
export function reloadOutcome(t: ReloadTargets, answers: Array<{ name: string; error?: string }>, now: Date): ReloadOutcome {
  const reloaded = answers.filter((a) => a.error === undefined).map((a) => a.name);
  const failed = answers.filter((a) => a.error !== undefined).map((a) => `${a.name}: ${a.error}`);
  const status: LastReload = { requestedAt: t.requestedAt, completedAt: now.toISOString(), instances: reloaded, ...(failed.length ? { failed } : {}) };
  const parts = [
    reloaded.length ? `reloaded the configuration of ${reloaded.join(', ')}` : 'no running instance to reload',
    ...(t.notRunning.length ? [`not running: ${t.notRunning.join(', ')} (${t.notRunning.length > 1 ? 'they read it when they start' : 'it reads it when it starts'})`] : []),
    ...(failed.length ? [`failed: ${failed.join('; ')}`] : []),
  ];
  const message = `Reload requested at ${t.requestedAt}: ${parts.join('; ')}`;
  return { status, event: failed.length ? { type: 'Warning', reason: 'ReloadFailed', message } : { type: 'Normal', reason: 'Reloaded', message } };
}
