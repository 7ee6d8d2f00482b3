// `kubectl pgpilot status CLUSTER [-o json|yaml]`: what the cluster's status, its pods, its
// Events and the instances' agents say, in one screen of 80 columns (or as one structured
// object). The agents are asked from inside their pods (agent-status.ts: pods/exec); without that
// permission, or with --no-agents, the timeline/LSN/lag columns are left out and a note says why.
import type { CoreV1Event, V1Pod } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import type { PostgreSQLCluster } from '../../api/cluster.js';
import { LABELS } from '../../api/constants.js';
import { positions, readAgentStatuses, type InstancePosition } from './agent-status.js';
import { EXIT, PluginError, usage } from './errors.js';
import type { Kube } from './kube.js';
import { age, isoTime, table, truncate, when, wrap, WIDTH, type Colors } from './ui.js';

/** One instance: what its pod says, and (InstancePosition) what its agent says. */
export interface InstanceReport extends InstancePosition {
  name: string;
  pod: string;
  /** The role label the operator puts on the pod (primary, replica), or "-" without one. */
  role: string;
  ready: boolean;
  /** Pod phase, or the container's waiting/terminated reason (CrashLoopBackOff, ...). */
  status: string;
  restarts: number;
  node?: string;
  startedAt?: string;
}

export interface StatusReport {
  name: string;
  namespace: string;
  phase: string;
  createdAt?: string;
  version: { running?: string; asked: string };
  primary: { current?: string; target?: string; asked?: string };
  instances: { asked: number; existing?: number; ready?: number; streamingReplicas?: number };
  instanceTable: InstanceReport[];
  rollout?: { updated: number; total: number; updating?: string };
  archiving: {
    enabled: boolean;
    archivePath?: string;
    lastArchivedWal?: string;
    lastArchivedTime?: string;
    lastFailedWal?: string;
    lastFailureTime?: string;
    lastFailure?: string;
    backlogSegments?: number;
    firstRecoverabilityPoint?: string;
    lastRecoverabilityPoint?: string;
    lastBackup?: string;
    lastSuccessfulBackup?: string;
    nextScheduledBackup?: string;
  };
  majorUpgrade?: { phase: string; from: string; to: string; message: string; reason?: string };
  conditions: { type: string; status: string; reason: string; message: string; lastTransitionTime?: string }[];
  events: { time?: string; type: string; reason: string; message: string; count: number }[];
  /** What could not be read (e.g. no permission to list pods or events). */
  notes?: string[];
}

export const EVENTS_SHOWN = 10;

function podStatus(pod: V1Pod): string {
  if (pod.metadata?.deletionTimestamp) return 'Terminating';
  for (const cs of pod.status?.containerStatuses ?? []) {
    const reason = cs.state?.waiting?.reason ?? cs.state?.terminated?.reason;
    if (reason) return reason;
  }
  return pod.status?.phase ?? 'Unknown';
}

/** One row per instance the status names (in order), and any other instance pod after them. */
export function instanceRows(cluster: PostgreSQLCluster, pods: V1Pod[]): InstanceReport[] {
  const byInstance = new Map<string, V1Pod>();
  for (const p of pods) {
    const instance = p.metadata?.labels?.[LABELS.instance] ?? p.metadata?.name?.replace(/-0$/, '');
    if (instance) byInstance.set(instance, p);
  }
  const names = [...(cluster.status?.instanceNames ?? [])];
  for (const n of [...byInstance.keys()].sort()) if (!names.includes(n)) names.push(n);
  return names.map((name) => {
    const pod = byInstance.get(name);
    if (!pod) return { name, pod: `${name}-0`, role: '-', ready: false, status: 'NoPod', restarts: 0 };
    const started = pod.status?.startTime;
    return {
      name,
      pod: pod.metadata?.name ?? `${name}-0`,
      role: pod.metadata?.labels?.[LABELS.role] ?? '-',
      ready: pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false,
      status: podStatus(pod),
      restarts: (pod.status?.containerStatuses ?? []).reduce((n, cs) => n + (cs.restartCount ?? 0), 0),
      node: pod.spec?.nodeName,
      startedAt: isoTime(started as Date | string | undefined),
    };
  });
}

function eventTime(e: CoreV1Event): string | undefined {
  return isoTime((e.lastTimestamp ?? e.eventTime ?? e.firstTimestamp ?? e.metadata?.creationTimestamp) as Date | string | undefined);
}

/** The newest `n` Events, oldest first. */
export function recentEvents(events: CoreV1Event[], n = EVENTS_SHOWN): StatusReport['events'] {
  return events
    .map((e) => ({ time: eventTime(e), type: e.type ?? 'Normal', reason: e.reason ?? '', message: e.message ?? '', count: e.count ?? 1 }))
    .sort((a, b) => (a.time ?? '').localeCompare(b.time ?? ''))
    .slice(-n);
}

/** Pure: the report from the cluster, its instance pods, its Events and where each instance is in the WAL. */
export function buildStatusReport(cluster: PostgreSQLCluster, pods: V1Pod[], events: CoreV1Event[], at: Map<string, InstancePosition> = new Map()): StatusReport {
  const s = cluster.status ?? {};
  const spec = cluster.spec;
  const mu = s.majorUpgrade;
  return {
    name: cluster.metadata.name ?? '',
    namespace: cluster.metadata.namespace ?? '',
    phase: s.phase ?? 'Unknown',
    createdAt: isoTime(cluster.metadata.creationTimestamp as Date | string | undefined),
    version: { running: s.version, asked: spec.version },
    primary: { current: s.currentPrimary, target: s.targetPrimary, asked: spec.primary },
    instances: { asked: spec.instances ?? 1, existing: s.instances, ready: s.readyInstances, streamingReplicas: s.streamingReplicas },
    instanceTable: instanceRows(cluster, pods).map((row) => ({ ...row, ...at.get(row.name) })),
    rollout: s.rollout ? { updated: s.rollout.updated, total: s.rollout.total, updating: s.rollout.updating } : undefined,
    archiving: {
      enabled: spec.backup?.enabled ?? false,
      archivePath: s.archivePath,
      ...s.archiving,
      firstRecoverabilityPoint: s.firstRecoverabilityPoint,
      lastRecoverabilityPoint: s.lastRecoverabilityPoint,
      lastBackup: s.lastBackup,
      lastSuccessfulBackup: s.lastSuccessfulBackup,
      nextScheduledBackup: s.nextScheduledBackup,
    },
    majorUpgrade: mu ? { phase: mu.phase, from: mu.from, to: mu.to, message: mu.message, reason: mu.reason } : undefined,
    conditions: (s.conditions ?? []).map((c) => ({ type: c.type, status: c.status, reason: c.reason, message: c.message, lastTransitionTime: c.lastTransitionTime })),
    events: recentEvents(events),
  };
}

function phaseColor(phase: string, c: Colors): string {
  if (phase === 'Healthy') return c.green(phase);
  if (['Degraded', 'Failed'].includes(phase)) return c.red(phase);
  return c.yellow(phase);
}

/** Conditions that say something is going on when True (and nothing when False). */
const ACTIVITY_CONDITIONS = new Set(['Progressing', 'RollingUpdate', 'Upgrading', 'Hibernated', 'Fenced', 'StorageAutoGrowing']);

/** good, active (a change under way), bad or unknown, by the condition's polarity. */
export function conditionState(type: string, status: string): 'good' | 'active' | 'bad' | 'unknown' {
  if (status === 'Unknown') return 'unknown';
  if (type === 'Degraded') return status === 'True' ? 'bad' : 'good';
  if (ACTIVITY_CONDITIONS.has(type)) return status === 'True' ? 'active' : 'good';
  return status === 'True' ? 'good' : 'bad';
}

function statusColor(type: string, status: string, c: Colors): (s: string) => string {
  const state = conditionState(type, status);
  return state === 'good' ? c.green : state === 'bad' ? c.red : c.yellow;
}

function headerLines(r: StatusReport, c: Colors, now: number): string[] {
  const label = (s: string) => c.bold(s.padEnd(11));
  const version = r.version.running === undefined ? `${r.version.asked} asked (running: not reported yet)` : r.version.running === r.version.asked ? `${r.version.running}` : `${r.version.running} running, ${r.version.asked} asked`;
  const primary = [r.primary.current ?? 'none'];
  if (r.primary.target && r.primary.target !== r.primary.current) primary.push(`→ ${r.primary.target} (switching)`);
  if (r.primary.asked && r.primary.asked !== r.primary.current && r.primary.asked !== r.primary.target) primary.push(`(spec.primary ${r.primary.asked})`);
  const inst = `${r.instances.ready ?? 0}/${r.instances.asked} ready${r.instances.streamingReplicas !== undefined ? `, ${r.instances.streamingReplicas} streaming` : ''}`;
  const lines = [
    `${label('Cluster')}${truncate(`${r.namespace}/${r.name}`, 40)}  ${phaseColor(truncate(r.phase, 14), c)}${r.createdAt ? c.dim(`  age ${age(r.createdAt, now)}`) : ''}`,
    `${label('Version')}${truncate(version, WIDTH - 11)}`,
    `${label('Primary')}${truncate(primary.join(' '), WIDTH - 11)}`,
    `${label('Instances')}${truncate(inst, WIDTH - 11)}`,
  ];
  if (r.rollout) lines.push(`${label('Rollout')}${truncate(`${r.rollout.updated}/${r.rollout.total} updated${r.rollout.updating ? `, updating ${r.rollout.updating}` : ''}`, WIDTH - 11)}`);
  return lines;
}

/** "0 B", "512 kB", "16 MB", "3.2 GB" (powers of 1024, as PostgreSQL's pg_size_pretty). */
export function bytes(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${u === 0 || v >= 10 ? Math.round(v) : v.toFixed(1)} ${units[u]}`;
}

function lagCell(i: InstanceReport): string {
  if (i.role === 'primary' || (i.lsn === undefined && i.lagBytes === undefined)) return '';
  return i.lagBytes === undefined ? '?' : bytes(i.lagBytes);
}

/** The pod's status, unless the agent says more: fenced, or a running replica that does not stream. */
function statusCell(i: InstanceReport): string {
  if (i.fenced) return 'Fenced';
  return i.status === 'Running' && i.role !== 'primary' && i.streaming === false ? 'NotStreaming' : i.status;
}

function instanceLines(r: StatusReport, c: Colors, now: number): string[] {
  if (r.instanceTable.length === 0) return ['', c.bold('Instances'), '  (none yet)'];
  const withLsn = r.instanceTable.some((i) => i.lsn !== undefined || i.timeline !== undefined);
  const columns = [
    { header: 'INSTANCE', max: 30 },
    { header: 'ROLE', max: 8, color: (s: string) => (s.startsWith('primary') ? c.bold(s) : s) },
    { header: 'READY', max: 5, color: (s: string) => (s.startsWith('yes') ? c.green(s) : c.red(s)) },
    { header: 'STATUS', max: 18 },
    { header: 'RESTARTS', max: 8 },
    { header: 'AGE', max: 5 },
    ...(withLsn ? [{ header: 'TL', max: 4 }, { header: 'LSN', max: 17 }, { header: 'LAG' }] : [{ header: 'NODE', max: 20 }]),
  ];
  // Instances on different versions (a rolling minor upgrade): the version in the STATUS column.
  const mixed = new Set(r.instanceTable.map((i) => i.version).filter(Boolean)).size > 1;
  const rows = r.instanceTable.map((i) => [
    i.name,
    i.role,
    i.ready ? 'yes' : 'no',
    mixed && i.version ? `${statusCell(i)} ${i.version}` : statusCell(i),
    String(i.restarts),
    age(i.startedAt, now),
    ...(withLsn ? [i.timeline === undefined ? '?' : String(i.timeline), i.lsn ?? '?', lagCell(i)] : [i.node ?? '']),
  ]);
  return ['', ...table(columns, rows)];
}

function archivingLines(r: StatusReport, c: Colors, now: number): string[] {
  const a = r.archiving;
  const lines = ['', `${c.bold('Archiving'.padEnd(11))}${a.enabled ? truncate(a.archivePath ?? 'enabled (no archive path reported yet)', WIDTH - 11) : 'off (spec.backup.enabled is false)'}`];
  if (!a.enabled && !a.lastBackup) return lines;
  const item = (k: string, v: string) => lines.push(truncate(`  ${k.padEnd(16)} ${v}`, WIDTH));
  if (a.lastArchivedWal || a.lastArchivedTime) item('last WAL', `${a.lastArchivedWal ?? '?'}${a.lastArchivedTime ? ` (${age(a.lastArchivedTime, now)} ago)` : ''}`);
  if (a.lastFailure) lines.push(c.red(truncate(`  ${'last failure'.padEnd(16)} ${a.lastFailedWal ?? ''} ${when(a.lastFailureTime, now)}: ${a.lastFailure}`, WIDTH)));
  if (a.backlogSegments) item('backlog', `${a.backlogSegments} segments waiting`);
  item('recoverable from', when(a.firstRecoverabilityPoint, now, 'not yet (no completed base backup)'));
  if (a.firstRecoverabilityPoint || a.lastRecoverabilityPoint) item('recoverable to', when(a.lastRecoverabilityPoint, now, 'not reported yet'));
  item('last backup', a.lastBackup ? `${a.lastBackup}${a.lastSuccessfulBackup ? ` (last success ${age(a.lastSuccessfulBackup, now)} ago)` : ''}` : 'none');
  if (a.nextScheduledBackup) item('next backup', when(a.nextScheduledBackup, now));
  return lines;
}

function upgradeLines(r: StatusReport, c: Colors): string[] {
  const mu = r.majorUpgrade;
  if (!mu) return [];
  const phase = mu.phase === 'Failed' ? c.red(mu.phase) : mu.phase === 'Succeeded' ? c.green(mu.phase) : c.yellow(mu.phase);
  return ['', `${c.bold('Upgrade'.padEnd(11))}${phase} ${truncate(`${mu.from} → ${mu.to}${mu.reason ? ` (${mu.reason})` : ''}`, WIDTH - 11 - mu.phase.length - 1)}`, truncate(`  ${mu.message}`, WIDTH)];
}

function conditionLines(r: StatusReport, c: Colors): string[] {
  if (r.conditions.length === 0) return ['', c.bold('Conditions'), '  (none yet)'];
  const rows = r.conditions.map((x) => [x.type, x.status, x.reason, x.message]);
  const cols = [
    { header: 'TYPE', max: 22 },
    { header: 'STATUS', max: 7, color: (s: string, i: number) => statusColor(r.conditions[i]!.type, r.conditions[i]!.status, c)(s) },
    { header: 'REASON', max: 20 },
    { header: 'MESSAGE' },
  ];
  const [header, ...lines] = table(cols, rows, WIDTH, '  ');
  // A condition that is not in its good state and whose message does not fit gets it in full below (3 lines at most).
  const out = [header!];
  lines.forEach((line, i) => {
    out.push(line);
    const cond = r.conditions[i]!;
    if (line.endsWith('…') && conditionState(cond.type, cond.status) !== 'good') out.push(...wrap(cond.message, WIDTH - 6, 3).map((l) => `      ${l}`));
  });
  return ['', c.bold('Conditions'), ...out];
}

function eventLines(r: StatusReport, c: Colors, now: number): string[] {
  if (r.events.length === 0) return ['', c.bold('Events'), '  (none)'];
  const cols = [
    { header: 'AGE', max: 5 },
    { header: 'TYPE', max: 7, color: (s: string) => (s.startsWith('Warning') ? c.yellow(s) : s) },
    { header: 'REASON', max: 22 },
    { header: 'MESSAGE' },
  ];
  const rows = r.events.map((e) => [age(e.time, now), e.type, e.reason, e.count > 1 ? `(x${e.count}) ${e.message}` : e.message]);
  return ['', c.bold(`Events (last ${EVENTS_SHOWN})`), ...table(cols, rows, WIDTH, '  ')];
}

/** Pure: the report as lines of at most 80 visible characters. */
export function formatStatus(r: StatusReport, c: Colors, now = Date.now()): string {
  const notes = (r.notes ?? []).map((n) => c.yellow(truncate(`note: ${n}`, WIDTH)));
  return [...headerLines(r, c, now), ...instanceLines(r, c, now), ...archivingLines(r, c, now), ...upgradeLines(r, c), ...conditionLines(r, c), ...eventLines(r, c, now), ...(notes.length ? ['', ...notes] : [])].join('\n') + '\n';
}

export type OutputFormat = 'text' | 'json' | 'yaml';

export function parseOutput(value: string | undefined): OutputFormat {
  if (value === undefined || value === 'text' || value === 'wide') return 'text';
  if (value === 'json' || value === 'yaml') return value;
  throw usage(`option -o/--output must be json or yaml (got ${JSON.stringify(value)})`);
}

/** A list the report can do without: on a refusal, empty and a note saying what is missing. */
async function optional<T>(notes: string[], what: string, list: Promise<T[]>): Promise<T[]> {
  try {
    return await list;
  } catch (err) {
    if (err instanceof PluginError && err.exitCode === EXIT.forbidden) {
      notes.push(`${what} not shown: ${err.message}`);
      return [];
    }
    throw err;
  }
}

/** Where each instance is in the WAL, from its agent; a refusal or failure becomes a note. */
async function agentPositions(kube: Kube, pods: V1Pod[], notes: string[]): Promise<Map<string, InstancePosition>> {
  const answers = await readAgentStatuses(kube, pods);
  const failed = answers.flatMap((a) => ('error' in a ? [`${a.instance}: ${a.error}`] : []));
  if (failed.length) notes.push(`agent status not read (timeline, LSN, lag) of ${failed.join('; ')}`);
  return positions(answers);
}

export async function collectStatus(kube: Kube, name: string, opts: { agents?: boolean } = {}): Promise<StatusReport> {
  const cluster = await kube.getCluster(name);
  const notes: string[] = [];
  const [pods, events] = await Promise.all([optional(notes, 'instance pods', kube.instancePods(name)), optional(notes, 'events', kube.clusterEvents(name))]);
  const at = opts.agents === false ? new Map<string, InstancePosition>() : await agentPositions(kube, pods, notes);
  const report = buildStatusReport(cluster, pods, events, at);
  return notes.length ? { ...report, notes } : report;
}

export function renderStatus(r: StatusReport, format: OutputFormat, c: Colors): string {
  if (format === 'json') return `${JSON.stringify(r, null, 2)}\n`;
  if (format === 'yaml') return stringify(r);
  return formatStatus(r, c);
}
