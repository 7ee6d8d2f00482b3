import { describe, expect, it } from 'vitest';
import type { MajorUpgradeStatus } from '../api/cluster-status.js';
import { haHeldByUpgrade, planMajorUpgrade, upgradeDirective, type MajorUpgradeInput, type UpgradeInstance } from './major-upgrade-plan.js';

const NOW = new Date('2026-12-05T03:00:00Z');
const running = (name: string, role: 'primary' | 'replica', major = 16): UpgradeInstance => ({ name, pod: true, phase: 'Running', role, running: true, streaming: role === 'replica', major });

function input(over: Partial<MajorUpgradeInput> = {}): MajorUpgradeInput {
  return {
    cluster: 'db',
    specVersion: '17.11',
    generation: 4,
    running: '16.13',
    toImage: 'repo/postgresql:17.11',
    liveImage: 'repo/postgresql:16.13',
    mode: 'link',
    previous: undefined,
    primary: 'db-1',
    instances: [running('db-1', 'primary'), running('db-2', 'replica'), running('db-3', 'replica')],
    checkJob: { state: 'absent' },
    upgradeJob: { state: 'absent' },
    archiveUrl: 's3://b/pgpilot/ns/db',
    backupPhase: undefined,
    postUpgrade: undefined,
    now: NOW,
    ...over,
  };
}

const at = (phase: MajorUpgradeStatus['phase'], over: Partial<MajorUpgradeStatus> = {}): MajorUpgradeStatus => ({
  phase,
  from: '16.13',
  to: '17.11',
  fromImage: 'repo/postgresql:16.13',
  toImage: 'repo/postgresql:17.11',
  mode: 'link',
  primary: 'db-1',
  message: 'x',
  generation: 4,
  startedAt: '2026-12-05T02:59:00.000Z',
  ...over,
});

describe('planMajorUpgrade', () => {
  it('does nothing while spec.version names the running major', () => {
    const plan = planMajorUpgrade(input({ specVersion: '16.15' }));
    expect(plan.actions).toEqual([]);
    expect(plan.status).toBeUndefined();
    expect(plan.condition).toMatchObject({ status: 'False', reason: 'NoUpgrade' });
  });

  it('starts with the check Job, recording both images, and leaves stale Jobs to be deleted first', () => {
    const plan = planMajorUpgrade(input());
    expect(plan.status).toMatchObject({ phase: 'Checking', from: '16.13', to: '17.11', fromImage: 'repo/postgresql:16.13', toImage: 'repo/postgresql:17.11', mode: 'link' });
    expect(plan.actions).toEqual([{ kind: 'createJob', job: 'check' }]);
    expect(plan.event?.reason).toBe('UpgradeStarted');
    const stale = planMajorUpgrade(input({ checkJob: { state: 'stale' }, upgradeJob: { state: 'stale' } }));
    expect(stale.actions).toEqual([{ kind: 'deleteJob', job: 'check' }, { kind: 'deleteJob', job: 'upgrade' }]);
  });

  it('waits for a running primary before it starts', () => {
    const plan = planMajorUpgrade(input({ instances: [{ ...running('db-1', 'primary'), running: false }] }));
    expect(plan.status).toBeUndefined();
    expect(plan.condition).toMatchObject({ status: 'True', reason: 'WaitingForPrimary' });
  });

  it('waits to begin while an instance is fenced, and says so', () => {
    const plan = planMajorUpgrade(input({ fenced: ['db-2'] }));
    expect(plan).toMatchObject({ status: undefined, actions: [], condition: { status: 'True', reason: 'WaitingForUnfence' } });
    expect(plan.condition.message).toContain('once no instance is fenced (db-2');
  });

  it('a failed check ends the upgrade with its reason and stops nothing', () => {
    const plan = planMajorUpgrade(input({ previous: at('Checking'), checkJob: { state: 'failed', message: 'Checking for reg* data types in user tables: public.t.f' } }));
    expect(plan.status).toMatchObject({ phase: 'Failed', finishedAt: NOW.toISOString() });
    expect(plan.status!.message).toContain('public.t.f');
    expect(plan.condition).toMatchObject({ status: 'False', reason: 'UpgradeCheckFailed' });
    expect(plan.actions).toEqual([]);
    // Held on the old version until spec.version changes; a new version starts again.
    const held = planMajorUpgrade(input({ previous: plan.status }));
    expect(held.condition.reason).toBe('UpgradeCheckFailed');
    expect(held.actions).toEqual([]);
    expect(planMajorUpgrade(input({ previous: plan.status, generation: 6 })).status?.phase).toBe('Checking');
  });

  it('spec.version taken back during the check cancels it, nothing stopped', () => {
    const plan = planMajorUpgrade(input({ previous: at('Checking'), specVersion: '16.13', checkJob: { state: 'running' } }));
    expect(plan.status).toMatchObject({ phase: 'Failed', reason: 'UpgradeCancelled' });
    expect(plan.actions).toEqual([{ kind: 'deleteJob', job: 'check' }]);
    expect(upgradeDirective(plan.status, { version: '16.13', running: '16.13', generation: 5 }, 'db-1')).toBeUndefined();
  });

  it('after the check: fences the primary, waits for every pod to go, then runs the upgrade Job', () => {
    const stopping = planMajorUpgrade(input({ previous: at('Checking', { primary: undefined }), checkJob: { state: 'succeeded' } }));
    expect(stopping.status).toMatchObject({ phase: 'Stopping', primary: 'db-1', stoppedAt: NOW.toISOString() });
    expect(stopping.actions).toEqual([{ kind: 'checkpoint', instance: 'db-1' }, { kind: 'fence', instance: 'db-1' }]);
    expect(planMajorUpgrade(input({ previous: stopping.status })).status?.phase).toBe('Stopping');
    const gone = input({ previous: stopping.status, instances: ['db-1', 'db-2', 'db-3'].map((name) => ({ name, pod: false })) });
    const upgrading = planMajorUpgrade(gone);
    expect(upgrading.status?.phase).toBe('Upgrading');
    expect(upgrading.actions).toEqual([{ kind: 'createJob', job: 'upgrade' }]);
  });

  it('a failed upgrade Job goes back to the old version and unfences the primary once it runs fenced', () => {
    const failed = planMajorUpgrade(input({ previous: at('Upgrading'), upgradeJob: { state: 'failed', message: 'pg_upgrade: killed' }, instances: [] }));
    expect(failed.status?.phase).toBe('Failed');
    expect(failed.condition.reason).toBe('UpgradeFailed');
    expect(failed.archiveSuffix).toBeUndefined();
    const fenced = planMajorUpgrade(input({ previous: failed.status, instances: [{ name: 'db-1', pod: true, phase: 'Fenced' }] }));
    expect(fenced.actions).toEqual([{ kind: 'unfence', instance: 'db-1' }]);
  });

  it('after pg_upgrade: a new archive, the primary first, post-upgrade work, then the replicas and a backup', () => {
    const starting = planMajorUpgrade(input({ previous: at('Upgrading'), upgradeJob: { state: 'succeeded' }, instances: [] }));
    expect(starting.status).toMatchObject({ phase: 'Starting', previousArchive: 's3://b/pgpilot/ns/db' });
    expect(starting.archiveSuffix).toBe('pg17');
    const onOld = planMajorUpgrade(input({ previous: starting.status, instances: [running('db-1', 'primary', 16)] }));
    expect(onOld.status?.phase).toBe('Starting');
    const resync = planMajorUpgrade(input({ previous: starting.status, instances: [running('db-1', 'primary', 17), { name: 'db-2', pod: false }] }));
    expect(resync.status).toMatchObject({ phase: 'ResyncingReplicas', primaryStartedAt: NOW.toISOString() });
    expect(resync.actions).toEqual([{ kind: 'postUpgrade', instance: 'db-1' }]);
    const cloning = planMajorUpgrade(input({ previous: resync.status, instances: [running('db-1', 'primary', 17), { name: 'db-2', pod: true, phase: 'Bootstrapping' }] }));
    expect(cloning.status?.phase).toBe('ResyncingReplicas');
    expect(cloning.status?.message).toContain('db-2');
    const backingUp = planMajorUpgrade(input({ previous: resync.status, instances: [running('db-1', 'primary', 17), running('db-2', 'replica', 17)], postUpgrade: 'done in 1 s' }));
    expect(backingUp.status).toMatchObject({ phase: 'BackingUp', postUpgrade: 'done in 1 s' });
    expect(backingUp.actions).toEqual([{ kind: 'createBackup', name: backingUp.status!.backup }]);
    const done = planMajorUpgrade(input({ previous: backingUp.status, backupPhase: 'completed' }));
    expect(done.status?.phase).toBe('Succeeded');
    expect(done.condition).toMatchObject({ status: 'False', reason: 'UpgradeSucceeded' });
    expect(done.status?.message).toContain(backingUp.status!.backup!);
    // The post-upgrade work may end after the upgrade: its report still reaches status.
    expect(planMajorUpgrade(input({ previous: done.status, specVersion: '17.11', running: '17.11', postUpgrade: 'done in 9 s' })).status?.postUpgrade).toBe('done in 9 s');
  });

  it('without backups it succeeds once the replicas stream', () => {
    const plan = planMajorUpgrade(input({ previous: at('ResyncingReplicas'), archiveUrl: undefined, instances: [running('db-1', 'primary', 17), running('db-2', 'replica', 17)] }));
    expect(plan.status?.phase).toBe('Succeeded');
  });
});

describe('upgradeDirective', () => {
  const spec = { version: '17.11', running: '16.13', generation: 4 };
  it('keeps the old image while checking, stops everything for pg_upgrade, starts the primary first', () => {
    expect(upgradeDirective(at('Checking'), spec, 'db-2')).toEqual({ image: 'repo/postgresql:16.13', running: true });
    expect(upgradeDirective(at('Upgrading'), spec, 'db-1')).toEqual({ image: 'repo/postgresql:16.13', running: false });
    expect(upgradeDirective(at('Starting'), spec, 'db-1')).toEqual({ image: 'repo/postgresql:17.11', running: true });
    expect(upgradeDirective(at('Starting'), spec, 'db-2')).toEqual({ image: 'repo/postgresql:17.11', running: false });
    expect(upgradeDirective(at('ResyncingReplicas'), spec, 'db-2')).toEqual({ image: 'repo/postgresql:17.11', running: true });
  });
  it('holds a failed upgrade on the old image only while spec asks for the same version', () => {
    expect(upgradeDirective(at('Failed'), spec, 'db-1')).toEqual({ image: 'repo/postgresql:16.13', running: true });
    expect(upgradeDirective(at('Failed'), { ...spec, version: '16.15' }, 'db-1')).toBeUndefined();
    expect(upgradeDirective(at('Failed'), { ...spec, generation: 5 }, 'db-1')).toEqual({ image: 'hold', running: true });
    expect(upgradeDirective(at('Succeeded'), { ...spec, running: '17.11' }, 'db-1')).toBeUndefined();
  });
  it('holds what runs while a higher major waits to start', () => {
    expect(upgradeDirective(undefined, spec, 'db-1')).toEqual({ image: 'hold', running: true });
  });
  it('ha is held only while the instances are stopped for pg_upgrade', () => {
    expect(['Checking', 'Stopping', 'Upgrading', 'Starting', 'Failed'].map((p) => haHeldByUpgrade(at(p as MajorUpgradeStatus['phase'])))).toEqual([false, true, true, false, false]);
  });
});
