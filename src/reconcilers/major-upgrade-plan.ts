// A major version upgrade, step by step (pure): from what the pass observed and the recorded
// status.majorUpgrade, the next stage, what to do now, and what each instance's StatefulSet runs.
//
//   Checking           a Job runs pg_upgrade --check against a schema copy; the cluster runs on
//   Stopping           a CHECKPOINT while writes are accepted, then the primary is fenced (fast,
//                      clean stop: the replicas get its shutdown checkpoint), every StatefulSet
//                      goes to 0 — writes are refused from here
//   Upgrading          a Job runs pg_upgrade on the primary's volume (the old binaries copied in
//                      by an init container of the old image); a failure puts the old data back
//   Starting           the primary's StatefulSet gets the new image; its first start is writable
//   ResyncingReplicas  the replicas get the new image and are cloned from the new primary
//   BackingUp          the first base backup of the new version (recoverability restarts there)
//   Succeeded | Failed
//
// Nothing here waits: each pass looks at the Jobs and agents and moves on when they are done. ha
// is held while the instances are stopped for pg_upgrade (haHeldByUpgrade), rollout while an
// upgrade is under way or has failed for the version spec asks for (upgradeDirective).
import type { MajorUpgradePhase, MajorUpgradeStatus } from '../api/cluster-status.js';
import type { ConditionInput } from './conditions.js';

export type JobState = { state: 'absent' | 'running' | 'succeeded' | 'stale' } | { state: 'failed'; message: string };

export interface UpgradeInstance {
  name: string;
  /** Its pod exists (not yet deleted). */
  pod: boolean;
  /** The agent's phase (Running, Fenced, AwaitingBootstrap, ...), when it answered. */
  phase?: string;
  role?: 'primary' | 'replica';
  running?: boolean;
  streaming?: boolean;
  /** Major version of the PostgreSQL it runs, when running. */
  major?: number;
}

export interface MajorUpgradeInput {
  cluster: string;
  specVersion: string;
  /** metadata.generation: a failed upgrade is tried again after the spec is edited. */
  generation: number | undefined;
  /** What status.version says runs. */
  running: string | undefined;
  /** The instance image spec asks for, and the one the primary's StatefulSet runs now. */
  toImage: string;
  liveImage: string | undefined;
  mode: 'link' | 'copy';
  previous: MajorUpgradeStatus | undefined;
  primary: string | undefined;
  instances: UpgradeInstance[];
  checkJob: JobState;
  upgradeJob: JobState;
  /** Where the archive goes (undefined: no backups, nothing to back up). */
  archiveUrl: string | undefined;
  /** The post-upgrade backup's phase, when status.majorUpgrade.backup names one. */
  backupPhase: string | undefined;
  /** The primary agent's report of its post-upgrade work. */
  postUpgrade: string | undefined;
  /** Instances fenced on purpose (status.fencedInstances): the upgrade waits to begin until none is. */
  fenced?: string[];
  now: Date;
}

export type UpgradeAction =
  | { kind: 'deleteJob'; job: 'check' | 'upgrade' }
  | { kind: 'createJob'; job: 'check' | 'upgrade' }
  | { kind: 'checkpoint' | 'fence' | 'unfence' | 'postUpgrade'; instance: string }
  | { kind: 'createBackup'; name: string };

export interface MajorUpgradePlan {
  /** status.majorUpgrade from now on (the previous one, when nothing changes). */
  status: MajorUpgradeStatus | undefined;
  /** status.archiveSuffix from now on. */
  archiveSuffix?: string;
  actions: UpgradeAction[];
  condition: ConditionInput;
  event?: { type: 'Normal' | 'Warning'; reason: string; message: string };
  requeueAfterMs?: number;
}

/** While a Job or an instance works, look again this often. */
const POLL_MS = 2000;
/** While writes are refused (from the stop until the upgraded primary runs), more often. */
const DOWN_POLL_MS = 250;
const pollFor = (s: MajorUpgradeStatus) => (haHeldByUpgrade(s) || s.phase === 'Starting' ? DOWN_POLL_MS : POLL_MS);

export const majorOf = (version: string | undefined): number | undefined => {
  const m = /^(\d+)/.exec(version ?? '');
  return m ? Number(m[1]) : undefined;
};

const ACTIVE: readonly MajorUpgradePhase[] = ['Checking', 'Stopping', 'Upgrading', 'Starting', 'ResyncingReplicas', 'BackingUp'];
export const upgradeActive = (s: MajorUpgradeStatus | undefined): boolean => !!s && ACTIVE.includes(s.phase);

/** ha does nothing from the stop until the upgraded primary runs (no failover to a stopped replica). */
export function haHeldByUpgrade(s: MajorUpgradeStatus | undefined): boolean {
  return !!s && ['Stopping', 'Upgrading'].includes(s.phase);
}

export interface InstanceDirective {
  /** The image its StatefulSet runs: the old version's, the new one's, or (hold) whatever it runs now. */
  image: string | 'hold';
  running: boolean;
}

/**
 * What an instance's StatefulSet runs while an upgrade is under way or has failed for the version
 * spec asks for (undefined: the usual template, through the rollout). Pure over the status, so
 * install and rollout decide it the same way in the same pass.
 */
export function upgradeDirective(s: MajorUpgradeStatus | undefined, spec: { version: string; running: string | undefined; generation: number | undefined }, instance: string): InstanceDirective | undefined {
  if (s && (upgradeActive(s) || (s.phase === 'Failed' && s.to === spec.version && s.generation === spec.generation))) {
    switch (s.phase) {
      case 'Checking':
      case 'Failed':
        return { image: s.fromImage, running: true };
      case 'Stopping':
      case 'Upgrading':
        return { image: s.fromImage, running: false };
      case 'Starting':
        return { image: s.toImage, running: instance === s.primary };
      default:
        return { image: s.toImage, running: true };
    }
  }
  // A higher major asked for but not started yet (no healthy primary): nothing rolls.
  const wanted = majorOf(spec.version);
  const runs = majorOf(spec.running);
  if (wanted !== undefined && runs !== undefined && wanted > runs) return { image: 'hold', running: true };
  return undefined;
}

const upgrading = (reason: string, message: string): ConditionInput => ({ type: 'Upgrading', status: 'True', reason, message });
const seconds = (from: string | undefined, to: Date) => (from ? ((to.getTime() - Date.parse(from)) / 1000).toFixed(1) : '?');

/** Archive suffix of a major version's own archive (status.archiveSuffix). */
export const archiveSuffixOf = (major: number) => `pg${major}`;

/** A failed upgrade holds the old version until the spec is edited; it unfences the primary it stopped. */
function heldAfterFailure(input: MajorUpgradeInput, prev: MajorUpgradeStatus): MajorUpgradePlan {
  const unfence = fencedPrimary(input, prev);
  return {
    status: prev,
    actions: unfence ? [{ kind: 'unfence', instance: unfence }] : [],
    condition: { type: 'Upgrading', status: 'False', reason: prev.reason ?? 'UpgradeFailed', message: `${prev.message} Edit the spec to try again (for example set spec.version back to ${prev.from} and then to ${prev.to} again).` },
    ...(unfence ? { requeueAfterMs: POLL_MS } : {}),
  };
}

function noUpgrade(input: MajorUpgradeInput, prev: MajorUpgradeStatus | undefined): MajorUpgradePlan {
  const condition: ConditionInput =
    prev?.phase === 'Succeeded'
      ? { type: 'Upgrading', status: 'False', reason: 'UpgradeSucceeded', message: prev.message }
      : { type: 'Upgrading', status: 'False', reason: 'NoUpgrade', message: `No major version upgrade: PostgreSQL ${input.running ?? '(not running yet)'} runs, spec.version asks for ${input.specVersion}` };
  // The primary's post-upgrade work (statistics, the old directory) can outlast the upgrade itself.
  const report = prev?.phase === 'Succeeded' && input.postUpgrade && input.postUpgrade !== prev.postUpgrade ? input.postUpgrade : undefined;
  const again = prev?.phase === 'Succeeded' ? postUpgradeAgain(input, prev) : [];
  return { status: report ? { ...prev!, postUpgrade: report } : prev, actions: again, condition, ...(again.length ? { requeueAfterMs: POLL_MS } : {}) };
}

export function planMajorUpgrade(input: MajorUpgradeInput): MajorUpgradePlan {
  const prev = input.previous;
  if (prev && upgradeActive(prev)) return step(input, prev);
  if (prev?.phase === 'Failed' && prev.to === input.specVersion && prev.generation === input.generation) return heldAfterFailure(input, prev);
  const [wanted, runs] = [majorOf(input.specVersion), majorOf(input.running)];
  if (wanted === undefined || runs === undefined || wanted <= runs) return noUpgrade(input, prev);
  return start(input, prev);
}

function start(input: MajorUpgradeInput, prev: MajorUpgradeStatus | undefined): MajorUpgradePlan {
  const fenced = input.fenced ?? [];
  if (fenced.length > 0) {
    // The upgrade stops, upgrades and re-clones every instance: not one a person keeps stopped.
    const message = `spec.version asks for ${input.specVersion} while ${input.running} runs: the upgrade starts once no instance is fenced (${fenced.join(', ')}: remove ${fenced.length > 1 ? 'them' : 'it'} from postgres.pgpilot.io/fenced-instances)`;
    return { status: prev, actions: [], requeueAfterMs: POLL_MS, condition: upgrading('WaitingForUnfence', message) };
  }
  const primary = input.instances.find((i) => i.name === input.primary);
  if (!primary?.running || primary.role !== 'primary' || !input.liveImage) {
    return { status: prev, actions: [], requeueAfterMs: POLL_MS, condition: upgrading('WaitingForPrimary', `spec.version asks for ${input.specVersion} while ${input.running} runs: the upgrade starts once the primary runs`) };
  }
  const started: MajorUpgradeStatus = {
    phase: 'Checking',
    from: input.running!,
    to: input.specVersion,
    fromImage: input.liveImage,
    toImage: input.toImage,
    mode: input.mode,
    ...(input.generation !== undefined ? { generation: input.generation } : {}),
    startedAt: input.now.toISOString(),
    message: `Checking with pg_upgrade --check whether ${input.running} can be upgraded to ${input.specVersion} (the cluster runs on meanwhile)`,
  };
  // A Job left from an earlier upgrade is stale: it is deleted before this one's is created.
  const stale = (['check', 'upgrade'] as const).filter((j) => jobOf(input, j).state !== 'absent').map((job) => ({ kind: 'deleteJob' as const, job }));
  return {
    status: started,
    actions: [...stale, ...(stale.some((a) => a.job === 'check') ? [] : [{ kind: 'createJob' as const, job: 'check' as const }])],
    condition: upgrading('Checking', started.message),
    event: { type: 'Normal', reason: 'UpgradeStarted', message: `Major version upgrade from ${input.running} to ${input.specVersion} (${input.mode} mode): checking first` },
    requeueAfterMs: POLL_MS,
  };
}

const jobOf = (input: MajorUpgradeInput, job: 'check' | 'upgrade'): JobState => (job === 'check' ? input.checkJob : input.upgradeJob);

/** The instance the upgrade works on, when its agent says it is fenced (to unfence it). */
function fencedPrimary(input: MajorUpgradeInput, s: MajorUpgradeStatus): string | undefined {
  const name = s.primary ?? input.primary;
  return input.instances.find((i) => i.name === name && i.phase === 'Fenced') ? name : undefined;
}

/** Creates, waits for, or reports a Job; `next` when it succeeded. */
function runJob(input: MajorUpgradeInput, s: MajorUpgradeStatus, job: 'check' | 'upgrade', onFail: (message: string) => MajorUpgradePlan, next: () => MajorUpgradePlan): MajorUpgradePlan {
  const state = jobOf(input, job);
  const wait = (actions: UpgradeAction[]): MajorUpgradePlan => ({ status: s, actions, condition: upgrading(s.phase, s.message), requeueAfterMs: pollFor(s) });
  switch (state.state) {
    case 'stale':
      return wait([{ kind: 'deleteJob', job }]);
    case 'absent':
      return wait([{ kind: 'createJob', job }]);
    case 'running':
      return wait([]);
    case 'failed':
      return onFail(state.message);
    case 'succeeded':
      return next();
  }
}

function failed(input: MajorUpgradeInput, s: MajorUpgradeStatus, reason: string, message: string): MajorUpgradePlan {
  const status: MajorUpgradeStatus = { ...s, phase: 'Failed', reason, message, finishedAt: input.now.toISOString() };
  const unfence = fencedPrimary(input, s);
  return {
    status,
    actions: unfence ? [{ kind: 'unfence', instance: unfence }] : [],
    condition: { type: 'Upgrading', status: 'False', reason, message },
    event: { type: 'Warning', reason, message },
    requeueAfterMs: POLL_MS,
  };
}

function step(input: MajorUpgradeInput, s: MajorUpgradeStatus): MajorUpgradePlan {
  const now = input.now.toISOString();
  const toMajor = majorOf(s.to)!;
  const at = (phase: MajorUpgradePhase, message: string, extra: Partial<MajorUpgradeStatus> = {}): MajorUpgradeStatus => ({ ...s, ...extra, phase, message });
  const wait = (status: MajorUpgradeStatus, actions: UpgradeAction[] = []): MajorUpgradePlan => ({ status, actions, condition: upgrading(status.phase, status.message), requeueAfterMs: pollFor(status) });
  switch (s.phase) {
    case 'Checking':
      // Nothing stopped yet: spec.version taken back (or to another major) cancels it.
      if (majorOf(input.specVersion) !== toMajor) {
        const cancelled = failed(input, s, 'UpgradeCancelled', `spec.version changed to ${input.specVersion} while the upgrade to ${s.to} was being checked: cancelled, nothing was stopped`);
        return { ...cancelled, actions: [{ kind: 'deleteJob', job: 'check' }] };
      }
      return runJob(
        input,
        s,
        'check',
        (why) => failed(input, s, 'UpgradeCheckFailed', `pg_upgrade --check refused the upgrade from ${s.from} to ${s.to}, so nothing was stopped and ${s.from} runs on: ${why}`),
        () => {
          const primary = input.primary;
          if (!primary) return wait(at('Checking', `The check passed; waiting for a primary before stopping the instances`));
          const status = at('Stopping', `The check passed; stopping every instance (the primary ${primary} first, cleanly); writes are refused until ${s.to} runs`, { primary, stoppedAt: now });
          // A checkpoint first, while writes are still accepted, leaves the shutdown checkpoint little to write.
          return { ...wait(status, [{ kind: 'checkpoint', instance: primary }, { kind: 'fence', instance: primary }]), event: { type: 'Normal', reason: 'UpgradeStopping', message: status.message } };
        },
      );
    case 'Stopping': {
      const left = input.instances.filter((i) => i.pod).map((i) => i.name);
      if (left.length > 0) return wait(at('Stopping', `Stopping every instance before pg_upgrade; still running: ${left.join(', ')}`));
      const status = at('Upgrading', `Running pg_upgrade --${s.mode} on the data of ${s.primary} in a Job`);
      return { ...wait(status, [{ kind: 'createJob', job: 'upgrade' }]), event: { type: 'Normal', reason: 'UpgradeRunning', message: status.message } };
    }
    case 'Upgrading':
      return runJob(
        input,
        s,
        'upgrade',
        (why) => failed(input, s, 'UpgradeFailed', `The upgrade from ${s.from} to ${s.to} failed before the new version started, so the old data directory was kept and ${s.from} starts again: ${why}`),
        () => {
          const status = at('Starting', `pg_upgrade finished; starting ${s.primary} on ${s.to}`);
          return { ...wait({ ...status, ...(input.archiveUrl ? { previousArchive: input.archiveUrl } : {}) }), archiveSuffix: archiveSuffixOf(toMajor), event: { type: 'Normal', reason: 'UpgradeStarting', message: status.message } };
        },
      );
    case 'Starting': {
      const p = input.instances.find((i) => i.name === s.primary);
      if (p?.phase === 'Fenced') return wait(s, [{ kind: 'unfence', instance: p.name }]);
      if (!(p?.running && p.role === 'primary' && p.major === toMajor)) return wait(s);
      const status = at('ResyncingReplicas', `${s.primary} runs ${s.to} and accepts writes (${seconds(s.stoppedAt, input.now)} s after the stop); cloning the replicas on ${s.to}`, {
        primaryStartedAt: now,
      });
      return { ...wait(status, [{ kind: 'postUpgrade', instance: p.name }]), event: { type: 'Normal', reason: 'UpgradePrimaryRunning', message: status.message } };
    }
    default:
      return afterPrimary(input, s, wait);
  }
}

/** Once the upgraded primary runs: the replicas, then the backup. */
function afterPrimary(input: MajorUpgradeInput, s: MajorUpgradeStatus, waitFor: (status: MajorUpgradeStatus, actions?: UpgradeAction[]) => MajorUpgradePlan): MajorUpgradePlan {
  const toMajor = majorOf(s.to)!;
  const withReport = { ...s, ...(input.postUpgrade ? { postUpgrade: input.postUpgrade } : {}) };
  const again = postUpgradeAgain(input, s);
  const wait = (status: MajorUpgradeStatus, actions: UpgradeAction[] = []) => waitFor(status, [...actions, ...again]);
  switch (s.phase) {
    case 'ResyncingReplicas': {
      const behind = input.instances.filter((i) => i.name !== s.primary && !(i.streaming && i.major === toMajor)).map((i) => i.name);
      if (behind.length > 0) return wait({ ...withReport, message: `${s.primary} runs ${s.to}; cloning the replicas on ${s.to}: ${behind.join(', ')} not streaming yet` });
      if (!input.archiveUrl) return succeeded(input, withReport);
      const name = `${input.cluster}-upgrade-${toMajor}-${Math.floor(input.now.getTime() / 1000)}`;
      const status = { ...withReport, phase: 'BackingUp' as const, backup: name, message: `Every instance runs ${s.to}; taking the first base backup of ${s.to} (${name})` };
      return { ...wait(status, [{ kind: 'createBackup', name }]), event: { type: 'Normal', reason: 'UpgradeBackingUp', message: status.message } };
    }
    case 'BackingUp': {
      if (input.backupPhase === 'completed') return succeeded(input, withReport, ` Recoverability restarts at backup ${s.backup}; the backups and WAL of ${s.from} stay at ${s.previousArchive ?? 'the old archive path'}.`);
      if (input.backupPhase === 'failed') return succeeded(input, withReport, ` The first backup of ${s.to} (${s.backup}) failed: take one (kubectl pgpilot backup or a PostgreSQLBackup), as only the scheduled backups protect ${s.to} until then.`);
      return wait(withReport);
    }
    default:
      return wait(s);
  }
}

/**
 * The post-upgrade work asked of the primary again: its agent reports none (the call failed, or the
 * agent restarted before it finished) while status has not recorded it done. The agent starts it
 * at most once at a time.
 */
function postUpgradeAgain(input: MajorUpgradeInput, s: MajorUpgradeStatus): UpgradeAction[] {
  const primary = input.instances.find((i) => i.name === s.primary);
  if (input.postUpgrade || input.primary !== s.primary || !primary?.running || primary.role !== 'primary' || /^done/.test(s.postUpgrade ?? '')) return [];
  return [{ kind: 'postUpgrade', instance: s.primary! }];
}

function succeeded(input: MajorUpgradeInput, s: MajorUpgradeStatus, backupNote = ''): MajorUpgradePlan {
  const down = s.stoppedAt && s.primaryStartedAt ? ` Writes were refused for ${((Date.parse(s.primaryStartedAt) - Date.parse(s.stoppedAt)) / 1000).toFixed(1)} s.` : '';
  const message = `Upgraded from ${s.from} to ${s.to} in ${seconds(s.startedAt, input.now)} s.${down}${backupNote}`;
  const status: MajorUpgradeStatus = { ...s, phase: 'Succeeded', message, finishedAt: input.now.toISOString() };
  return {
    status,
    actions: [],
    condition: { type: 'Upgrading', status: 'False', reason: 'UpgradeSucceeded', message },
    event: { type: 'Normal', reason: 'UpgradeSucceeded', message },
  };
}
