// The pass over the reconcilers: ownership of conditions and status fields, Unknown for what was
// not evaluated, merging, stopping early with and without an error. The reconcilers here are
// plain functions standing in for install/ha/backup (the pass calls nothing else).
import { createCertificatesReconciler } from './certificates.js';
import { createPasswordsReconciler } from './passwords.js';
import { createAutopilotReconciler } from './autopilot.js';
import { describe, expect, it } from 'vitest';
import { ClusterStatusSchema, type ClusterStatus } from '../api/cluster.js';
import { SpecError } from '../api/spec-error.js';
import { createAnomaliesReconciler } from './anomalies.js';
import { createBackupReconciler } from './backup.js';
import { createHaReconciler, type HaDeps } from './ha.js';
import { installReconciler } from './install.js';
import { runPass, unobservedPass } from './pass.js';
import { createMajorUpgradeReconciler } from './major-upgrade.js';
import { createFencingReconciler } from './fencing.js';
import { createReloadReconciler } from './reload.js';
import { createHibernationReconciler } from './hibernation.js';
import { createRolloutReconciler } from './rollout.js';
import { STATUS_STEP_FIELDS } from './status.js';
import { ReconcileError, type ReconcileContext, type Reconciler, type ReconcilerResult, type StatusField } from './types.js';

function reconciler(name: string, statusFields: StatusField[], reconcile: (ctx: ReconcileContext) => ReconcilerResult | Promise<ReconcilerResult>): Reconciler {
  return { name, statusFields, reconcile: async (ctx) => reconcile(ctx) };
}

/** Only `status` is read by the pass itself; the reconcilers above read what they need. */
function context(status: ClusterStatus = {}): ReconcileContext {
  return { status } as ReconcileContext;
}

const ha = (res: ReconcilerResult = {}) => reconciler('ha', ['currentPrimary', 'streamingReplicas', 'version'], () => res);
const backup = (res: ReconcilerResult = {}) => reconciler('backup', ['archivePath', 'lastBackup'], () => res);
const up = { type: 'PrimaryAvailable', status: 'True', reason: 'Up', message: 'up' } as const;

describe('runPass', () => {
  it('collects conditions and merges each reconciler\'s status fields into ctx.status', async () => {
    const ctx = context({ currentPrimary: 'db-1', archivePath: 's3://old', phase: 'Healthy' });
    const out = await runPass([ha({ conditions: [up], status: { currentPrimary: 'db-2', streamingReplicas: 2 } }), backup({ status: { archivePath: 's3://new' } })], ctx);
    expect(out.error).toBeUndefined();
    // Set exactly the owned fields: a field missing from the object is removed (version), others stay (phase).
    expect(ctx.status).toEqual({ currentPrimary: 'db-2', streamingReplicas: 2, archivePath: 's3://new', phase: 'Healthy' });
    expect(out.status).toBe(ctx.status);
    expect(out.conditions).toContainEqual(up);
  });

  it('lets later reconcilers read what earlier ones set this pass', async () => {
    let seen: string | undefined;
    const reader = reconciler('backup', [], (ctx) => {
      seen = ctx.status.currentPrimary;
      return {};
    });
    await runPass([ha({ status: { currentPrimary: 'db-3' } }), reader], context({ currentPrimary: 'db-1' }));
    expect(seen).toBe('db-3');
  });

  it('keeps a reconciler\'s fields when it returns no status', async () => {
    const ctx = context({ archivePath: 's3://kept', lastBackup: 'b1' });
    await runPass([backup({})], ctx);
    expect(ctx.status).toEqual({ archivePath: 's3://kept', lastBackup: 'b1' });
  });

  it('turns an owned condition the reconciler did not report into Unknown', async () => {
    const out = await runPass([ha({ conditions: [up] })], context());
    expect(out.conditions).toContainEqual({ type: 'ReplicasStreaming', status: 'Unknown', reason: 'NotEvaluated', message: 'Not evaluated in the last pass: ha did not evaluate it' });
  });

  it('on an error: Degraded reason, the error to retry, and Unknown for the reconcilers that did not run', async () => {
    const failing = reconciler('install', ['recoverySource'], () => {
      throw new ReconcileError('SecretNotFound', 'spec.superuserSecret names Secret "x", which does not exist');
    });
    const ctx = context({ currentPrimary: 'db-1' });
    const out = await runPass([failing, ha({ status: { currentPrimary: 'db-9' } }), backup()], ctx);
    expect(out.failure).toEqual({ reason: 'SecretNotFound', message: 'spec.superuserSecret names Secret "x", which does not exist' });
    expect(out.error).toBeInstanceOf(ReconcileError);
    expect(ctx.status.currentPrimary).toBe('db-1');
    expect(out.conditions.map((c) => `${c.type}=${c.status}/${c.reason}`)).toEqual([
      'PrimaryAvailable=Unknown/NotEvaluated',
      'ReplicasStreaming=Unknown/NotEvaluated',
      'ContinuousArchiving=Unknown/NotEvaluated',
      'LastBackupSucceeded=Unknown/NotEvaluated',
    ]);
    expect(out.conditions[0]!.message).toBe('Not evaluated in the last pass: install failed first (SecretNotFound)');
  });

  it('keeps the conditions a reconciler evaluated before it failed', async () => {
    const refusing = reconciler('ha', [], () => {
      throw new ReconcileError('UnknownPrimary', 'spec.primary names db-7', [up]);
    });
    const out = await runPass([refusing], context());
    expect(out.conditions).toEqual([up, { type: 'ReplicasStreaming', status: 'Unknown', reason: 'NotEvaluated', message: 'Not evaluated in the last pass: ha failed (UnknownPrimary)' }]);
  });

  it('names the reconciler in an unexpected error, and InvalidSpec for a bad spec', async () => {
    const broken = reconciler('backup', [], () => {
      throw new Error('socket hang up');
    });
    expect((await runPass([broken], context())).failure).toEqual({ reason: 'ReconcileFailed', message: 'backup: socket hang up' });
    const invalid = reconciler('backup', [], () => {
      throw new SpecError('spec.backup.schedule', 'is not a cron expression');
    });
    expect((await runPass([invalid], context())).failure?.reason).toBe('InvalidSpec');
  });

  it('stops without an error when a reconciler asks, and says why for the rest', async () => {
    let backupRan = false;
    const holding = reconciler('install', [], () => ({ stop: { reason: 'UpgradeInProgress', message: 'pg_upgrade runs on db-1' }, requeueAfterMs: 2000 }));
    const later = reconciler('backup', [], () => {
      backupRan = true;
      return {};
    });
    const out = await runPass([holding, later], context());
    expect(backupRan).toBe(false);
    expect(out.error).toBeUndefined();
    expect(out.failure).toBeUndefined();
    expect(out.requeueAfterMs).toBe(2000);
    expect(out.stoppedBy).toEqual({ reconciler: 'install', reason: 'UpgradeInProgress', message: 'pg_upgrade runs on db-1' });
    expect(out.conditions).toContainEqual({ type: 'ContinuousArchiving', status: 'Unknown', reason: 'UpgradeInProgress', message: 'Not evaluated in the last pass: install holds the pass: pg_upgrade runs on db-1' });
  });

  it('reports a degraded reconciler as the failure while the rest of the pass goes on, without an error to retry', async () => {
    let backupRan = false;
    const refusing = reconciler('rollout', ['rollout'], () => ({ degraded: { reason: 'MajorUpgradeNotSupported', message: 'set spec.version back' } }));
    const later = reconciler('backup', [], () => ((backupRan = true), {}));
    const out = await runPass([refusing, later], context());
    expect(backupRan).toBe(true);
    expect(out.error).toBeUndefined();
    expect(out.failure).toEqual({ reason: 'MajorUpgradeNotSupported', message: 'set spec.version back' });
  });

  it('takes the shortest requeue', async () => {
    const out = await runPass([ha({ requeueAfterMs: 5000 }), backup({ requeueAfterMs: 250 })], context());
    expect(out.requeueAfterMs).toBe(250);
  });

  it('refuses a condition or a status field the reconciler does not own', async () => {
    const grabby = backup({ conditions: [up] });
    expect((await runPass([grabby], context())).failure).toEqual({ reason: 'ReconcileFailed', message: 'backup: reconciler backup reported conditions it does not own: PrimaryAvailable' });
    const fieldGrab = backup({ status: { currentPrimary: 'db-2' } });
    expect((await runPass([fieldGrab], context())).failure?.message).toBe('backup: reconciler backup set status fields it does not own: currentPrimary');
  });
});

describe('status field ownership', () => {
  it('gives every field of the status schema exactly one owner: a reconciler or the status step', () => {
    const owners = [installReconciler, createHaReconciler({} as HaDeps), createBackupReconciler(), createRolloutReconciler({} as never), createMajorUpgradeReconciler({} as never), createHibernationReconciler({} as never), createFencingReconciler({} as never), createReloadReconciler({} as never), createAnomaliesReconciler({} as never), createAutopilotReconciler(), createPasswordsReconciler({} as never), createCertificatesReconciler()].map((r) => [r.name, r.statusFields] as const);
    const all = [...owners.flatMap(([, fields]) => fields), ...STATUS_STEP_FIELDS].sort();
    expect(all).toEqual(Object.keys(ClusterStatusSchema.properties).sort());
  });
});

describe('unobservedPass', () => {
  it('runs nothing, is Degraded with the reason, and leaves every owned condition Unknown', () => {
    const ctx = context({ currentPrimary: 'db-1' });
    const out = unobservedPass([ha(), backup()], ctx, new Error('leases.coordination.k8s.io is forbidden'));
    expect(out.failure).toEqual({ reason: 'ReconcileFailed', message: 'observe: leases.coordination.k8s.io is forbidden' });
    expect(out.error).toBeInstanceOf(Error);
    expect(out.status).toBe(ctx.status);
    expect(out.conditions.map((c) => `${c.type}=${c.status}/${c.reason}`)).toEqual([
      'PrimaryAvailable=Unknown/NotEvaluated',
      'ReplicasStreaming=Unknown/NotEvaluated',
      'ContinuousArchiving=Unknown/NotEvaluated',
      'LastBackupSucceeded=Unknown/NotEvaluated',
    ]);
  });
});
