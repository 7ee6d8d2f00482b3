import { describe, expect, it } from 'vitest';
import { passwordsCondition, pendingRoles, planRotation, stepFailureReason, type RoleSecret, type RotationInstance } from './passwords-plan.js';

const secrets: RoleSecret[] = [
  { role: 'superuser', secret: 'db-superuser', resourceVersion: '10' },
  { role: 'app', secret: 'db-app', resourceVersion: '11' },
];
const applied = { superuser: { secret: 'db-superuser', resourceVersion: '10', appliedAt: '2026-01-01T00:00:00Z' }, app: { secret: 'db-app', resourceVersion: '11', appliedAt: '2026-01-01T00:00:00Z' } };
const up = (name: string, role: string): RotationInstance => ({ name, reachable: true, running: true, role });
const healthy = [up('db-1', 'primary'), up('db-2', 'replica'), up('db-3', 'replica')];

describe('pendingRoles', () => {
  it('is empty when status records the Secret versions there are', () => {
    expect(pendingRoles(secrets, applied)).toEqual([]);
  });
  it('lists a role whose Secret changed, was never recorded, or is another Secret now', () => {
    expect(pendingRoles(secrets, { ...applied, app: { ...applied.app, resourceVersion: '9' } }).map((p) => p.role)).toEqual(['app']);
    expect(pendingRoles(secrets, undefined).map((p) => p.role)).toEqual(['superuser', 'app']);
    expect(pendingRoles([{ ...secrets[0]!, secret: 'mine' }, secrets[1]!], applied).map((p) => p.role)).toEqual(['superuser']);
  });
  it('skips a Secret that does not exist (install reports it)', () => {
    expect(pendingRoles([{ role: 'app', secret: 'db-app' }], undefined)).toEqual([]);
  });
});

describe('planRotation', () => {
  it('does nothing when every password is applied', () => {
    expect(planRotation({ secrets, recorded: applied, primary: 'db-1', instances: healthy })).toEqual({ kind: 'done' });
  });

  it('rotates through the primary with every running replica', () => {
    const plan = planRotation({ secrets, recorded: { app: applied.app }, primary: 'db-1', instances: [...healthy, { name: 'db-4', reachable: false, running: false }] });
    expect(plan).toEqual({ kind: 'rotate', pending: [secrets[0]], primary: 'db-1', replicas: ['db-2', 'db-3'] });
  });

  it('waits without a primary that runs as one, saying why', () => {
    const none = planRotation({ secrets, recorded: undefined, instances: [] });
    expect(none).toMatchObject({ kind: 'wait', reason: 'WaitingForPrimary' });
    const silent = planRotation({ secrets, recorded: undefined, primary: 'db-1', instances: [{ name: 'db-1', reachable: false, running: false }] });
    expect(silent).toMatchObject({ kind: 'wait', reason: 'WaitingForPrimary', message: expect.stringContaining('db-1 does not answer') });
    const replica = planRotation({ secrets, recorded: undefined, primary: 'db-1', instances: [up('db-1', 'replica')] });
    expect(replica).toMatchObject({ kind: 'wait', message: expect.stringContaining('not running as a primary') });
  });

  it("waits for a running replica whose agent does not answer, for the superuser's change only", () => {
    const instances = [up('db-1', 'primary'), { name: 'db-2', reachable: false, running: true }];
    const su = planRotation({ secrets, recorded: { app: applied.app }, primary: 'db-1', instances });
    expect(su).toMatchObject({ kind: 'wait', reason: 'AgentUnreachable', message: expect.stringContaining('db-2') });
    const app = planRotation({ secrets, recorded: { superuser: applied.superuser }, primary: 'db-1', instances });
    expect(app).toMatchObject({ kind: 'rotate', pending: [secrets[1]] });
  });
});

describe('passwordsCondition', () => {
  it('is True when done, False with the reason when waiting or a step failed', () => {
    expect(passwordsCondition({ kind: 'done' }, [])).toMatchObject({ type: 'PasswordsApplied', status: 'True' });
    expect(passwordsCondition({ kind: 'wait', reason: 'WaitingForPrimary', message: 'm', pending: [] }, [])).toMatchObject({ status: 'False', reason: 'WaitingForPrimary', message: 'm' });
    const failed = passwordsCondition({ kind: 'rotate', pending: secrets, primary: 'db-1', replicas: [] }, [{ role: 'superuser', reason: 'WaitingForMountedSecret', message: 'a.' }, { role: 'app', reason: 'PasswordChangeFailed', message: 'b.' }]);
    expect(failed).toEqual({ type: 'PasswordsApplied', status: 'False', reason: 'WaitingForMountedSecret', message: 'a. b.' });
  });
  it('names a lagging mount apart from other refusals', () => {
    expect(stepFailureReason(409)).toBe('WaitingForMountedSecret');
    expect(stepFailureReason('unreachable')).toBe('AgentUnreachable');
    expect(stepFailureReason(503)).toBe('WaitingForPrimary');
    expect(stepFailureReason(500)).toBe('PasswordChangeFailed');
  });
});
