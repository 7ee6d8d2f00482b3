import { describe, expect, it } from 'vitest';
import { EXIT } from './exit.js';
import type { InstanceReport, StatusReport } from './status.js';
import { chooseSwitchoverTarget, switchoverStep } from './switchover.js';

function inst(name: string, role: string, ready = true, extra: Partial<InstanceReport> = {}): InstanceReport {
  return { name, pod: `${name}-0`, role, ready, status: 'Running', restarts: 0, ...extra };
}

function report(instances: InstanceReport[], primary = 'db-1', extra: Partial<StatusReport> = {}): StatusReport {
  return {
    name: 'db',
    namespace: 'ns',
    phase: 'Healthy',
    version: { running: '16.13', asked: '16.13' },
    primary: { current: primary, target: primary },
    instances: { asked: instances.length },
    instanceTable: instances,
    archiving: { enabled: false },
    conditions: [{ type: 'PrimaryAvailable', status: 'True', reason: 'PrimaryRunning', message: '' }],
    events: [],
    ...extra,
  };
}

describe('choice of the switchover target', () => {
  it('--to names an instance of the cluster', () => {
    const r = report([inst('db-1', 'primary'), inst('db-2', 'replica'), inst('db-3', 'replica')]);
    expect(chooseSwitchoverTarget(r, 'db-3')).toEqual({ target: 'db-3', why: 'asked with --to' });
    expect(() => chooseSwitchoverTarget(r, 'db-9')).toThrow(/db-9 is not an instance of db \(instances: db-1, db-2, db-3\)/);
    try {
      chooseSwitchoverTarget(r, 'other-1');
    } catch (err) {
      expect((err as { exitCode: number }).exitCode).toBe(EXIT.usage);
    }
  });

  it('without --to: a ready running replica, lowest ordinal when no positions are known, and says why', () => {
    const r = report([inst('db-1', 'primary'), inst('db-10', 'replica'), inst('db-2', 'replica', false), inst('db-3', 'replica')]);
    const c = chooseSwitchoverTarget(r, undefined);
    expect(c.target).toBe('db-3');
    expect(c.why).toContain('lowest ordinal of db-3, db-10');
    expect(c.why).toContain('replication positions could not be read');
  });

  it('the most caught-up replica when timeline and LSN are known', () => {
    const r = report([
      inst('db-1', 'primary'),
      inst('db-2', 'replica', true, { timeline: 2, lsn: '0/5000000' }),
      inst('db-3', 'replica', true, { timeline: 2, lsn: '0/5000100' }),
      inst('db-4', 'replica', true, { timeline: 1, lsn: '0/9000000' }),
    ]);
    const c = chooseSwitchoverTarget(r, undefined);
    expect(c).toEqual({ target: 'db-3', why: 'the most caught-up ready replica (timeline 2, LSN 0/5000100)' });
  });

  it('skips pods that are not running, and refuses when no replica is ready or there is none', () => {
    expect(chooseSwitchoverTarget(report([inst('db-1', 'primary'), inst('db-2', 'replica', true, { status: 'Terminating' }), inst('db-3', 'replica')]), undefined).target).toBe('db-3');
    expect(() => chooseSwitchoverTarget(report([inst('db-1', 'primary'), inst('db-2', 'replica', false, { status: 'CrashLoopBackOff' })]), undefined)).toThrow(
      'no replica of db is ready: db-2 not ready (CrashLoopBackOff)',
    );
    expect(() => chooseSwitchoverTarget(report([inst('db-1', 'primary')]), undefined)).toThrow('db has no replica to switch over to');
  });

  it('follows currentPrimary until it is the target with the primary available', () => {
    const moving = report([inst('db-1', 'primary'), inst('db-2', 'replica')], 'db-1', { primary: { current: 'db-1', target: 'db-2', asked: 'db-2' } });
    expect(switchoverStep(moving, 'db-2')).toMatchObject({ state: 'waiting', line: 'primary db-1 → db-2, phase Healthy, PrimaryAvailable True (PrimaryRunning)' });
    const done = report([inst('db-1', 'replica'), inst('db-2', 'primary')], 'db-2', { primary: { current: 'db-2', target: 'db-2', asked: 'db-2' } });
    expect(switchoverStep(done, 'db-2').state).toBe('done');
    const changed = report([inst('db-1', 'primary'), inst('db-2', 'replica')], 'db-1', { primary: { current: 'db-1', asked: 'db-3' } });
    expect(switchoverStep(changed, 'db-2')).toMatchObject({ state: 'failed' });
  });
});
