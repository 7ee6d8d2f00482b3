import { describe, expect, it } from 'vitest';
import type { Condition } from '../api/cluster.js';
import { CONDITION_OWNERS, conditionEvents, conditionsOwnedBy, findCondition, mergeConditions, notEvaluated, type ConditionType } from './conditions.js';

describe('mergeConditions', () => {
  const t0 = new Date('2024-05-01T10:00:00.123Z');
  const t1 = new Date('2024-05-01T11:00:00.456Z');
  const ready = (status: 'True' | 'False', reason = 'R', message = 'm') => ({ type: 'Ready' as const, status, reason, message });

  it('stamps new conditions with the time (whole seconds) and generation', () => {
    expect(mergeConditions(undefined, [ready('True')], 3, t0)).toEqual([{ ...ready('True'), lastTransitionTime: '2024-05-01T10:00:00Z', observedGeneration: 3 }]);
  });

  it('keeps lastTransitionTime while the status stays, even as reason and message change', () => {
    const before = mergeConditions(undefined, [ready('False', 'A', 'first')], 1, t0);
    const after = mergeConditions(before, [ready('False', 'B', 'second')], 2, t1);
    expect(after).toEqual([{ ...ready('False', 'B', 'second'), lastTransitionTime: '2024-05-01T10:00:00Z', observedGeneration: 2 }]);
  });

  it('moves lastTransitionTime when the status changes', () => {
    const before = mergeConditions(undefined, [ready('False')], 1, t0);
    expect(findCondition(mergeConditions(before, [ready('True')], 1, t1), 'Ready')?.lastTransitionTime).toBe('2024-05-01T11:00:00Z');
  });

  it('keeps conditions it was not given, and sorts by type', () => {
    const previous: Condition[] = [{ type: 'ReplicasStreaming', status: 'True', reason: 'Z', message: 'z', lastTransitionTime: '2024-01-01T00:00:00Z' }];
    const merged = mergeConditions(previous, [ready('True'), { type: 'Degraded', status: 'False', reason: 'D', message: 'd' }], 1, t0);
    expect(merged.map((c) => c.type)).toEqual(['Degraded', 'Ready', 'ReplicasStreaming']);
    expect(findCondition(merged, 'ReplicasStreaming')).toEqual(previous[0]);
  });

  it('omits observedGeneration without a generation', () => {
    expect(mergeConditions(undefined, [ready('True')], undefined, t0)[0]).not.toHaveProperty('observedGeneration');
  });
});

describe('condition ownership', () => {
  it('gives every condition type one owner, and lists them by owner', () => {
    expect(conditionsOwnedBy('ha')).toEqual(['PrimaryAvailable', 'ReplicasStreaming']);
    expect(conditionsOwnedBy('backup')).toEqual(['ContinuousArchiving', 'LastBackupSucceeded']);
    expect(conditionsOwnedBy('status')).toEqual(['Ready', 'Progressing', 'Degraded']);
    expect(conditionsOwnedBy('install')).toEqual([]);
    expect(conditionsOwnedBy('rollout')).toEqual(['RollingUpdate']);
    expect(conditionsOwnedBy('upgrade')).toEqual(['Upgrading']);
    expect(conditionsOwnedBy('hibernation')).toEqual(['Hibernated']);
    expect(conditionsOwnedBy('monitoring')).toEqual(['MonitoringQueriesValid']);
    expect(conditionsOwnedBy('anomalies')).toEqual(['XidWraparoundRisk', 'LongTransactions', 'ReplicationLagging', 'SlotRetainingWal', 'WalGrowingArchiveFailing', 'ConnectionsNearLimit', 'CheckpointsForced']);
    expect(conditionsOwnedBy('autopilot')).toEqual(['StorageAutoGrowing', 'StorageFull']);
    expect(conditionsOwnedBy('autoscaling')).toEqual(['Autoscaling']);
    expect(conditionsOwnedBy('passwords')).toEqual(['PasswordsApplied']);
    expect(Object.values(CONDITION_OWNERS).every((o) => ['status', 'ha', 'backup', 'hibernation', 'upgrade', 'rollout', 'monitoring', 'fencing', 'anomalies', 'autopilot', 'autoscaling', 'passwords'].includes(o))).toBe(true);
  });

  it('says why a condition was not evaluated', () => {
    expect(notEvaluated('PrimaryAvailable', 'UpgradeInProgress', 'upgrade holds the pass')).toEqual({
      type: 'PrimaryAvailable',
      status: 'Unknown',
      reason: 'UpgradeInProgress',
      message: 'Not evaluated in the last pass: upgrade holds the pass',
    });
  });
});

describe('conditionEvents', () => {
  const t = '2024-05-01T10:00:00Z';
  const c = (type: ConditionType, status: 'True' | 'False' | 'Unknown', reason: string, message = `${type} ${reason}`): Condition => ({ type, status, reason, message, lastTransitionTime: t });

  it('warns when a watched condition enters trouble, or its trouble changes reason', () => {
    expect(conditionEvents([c('Degraded', 'False', 'AsExpected')], [c('Degraded', 'True', 'SecretNotFound', 'no secret')])).toEqual([{ type: 'Warning', reason: 'SecretNotFound', message: 'no secret' }]);
    expect(conditionEvents(undefined, [c('Degraded', 'True', 'SecretNotFound', 'no secret')])).toHaveLength(1);
    expect(conditionEvents([c('Degraded', 'True', 'SecretNotFound')], [c('Degraded', 'True', 'SecretInvalid', 'bad')])).toEqual([{ type: 'Warning', reason: 'SecretInvalid', message: 'bad' }]);
    expect(conditionEvents([c('ContinuousArchiving', 'True', 'Archiving')], [c('ContinuousArchiving', 'False', 'ArchiveFailing', 'S3 down')])).toEqual([{ type: 'Warning', reason: 'ArchiveFailing', message: 'S3 down' }]);
  });

  it('says so once when the trouble ends', () => {
    expect(conditionEvents([c('Degraded', 'True', 'SecretNotFound')], [c('Degraded', 'False', 'AsExpected')])).toEqual([{ type: 'Normal', reason: 'Recovered', message: 'The problem reported earlier is resolved' }]);
    expect(conditionEvents([c('ContinuousArchiving', 'False', 'ArchiveFailing')], [c('ContinuousArchiving', 'True', 'Archiving', 'all archived')])).toEqual([{ type: 'Normal', reason: 'ArchivingResumed', message: 'all archived' }]);
  });

  it('tells of an anomaly when it appears and when it clears, not while it lasts', () => {
    expect(conditionEvents([c('XidWraparoundRisk', 'False', 'XidAgeNormal')], [c('XidWraparoundRisk', 'True', 'XidAgeHigh', 'app is old')])).toEqual([{ type: 'Warning', reason: 'XidAgeHigh', message: 'app is old' }]);
    expect(conditionEvents([c('XidWraparoundRisk', 'True', 'XidAgeHigh', 'app is old')], [c('XidWraparoundRisk', 'True', 'XidAgeHigh', 'app is older')])).toEqual([]);
    expect(conditionEvents([c('CheckpointsForced', 'True', 'CheckpointsForced')], [c('CheckpointsForced', 'False', 'CheckpointsTimed', 'timed again')])).toEqual([{ type: 'Normal', reason: 'CheckpointsForcedCleared', message: 'timed again (it was: CheckpointsForced CheckpointsForced)' }]);
  });

  it('is silent for steady states, Unknown, unwatched conditions and chosen states', () => {
    expect(conditionEvents([c('Degraded', 'True', 'SecretNotFound')], [c('Degraded', 'True', 'SecretNotFound')])).toEqual([]);
    expect(conditionEvents([c('Degraded', 'True', 'SecretNotFound')], [c('Degraded', 'Unknown', 'NotEvaluated')])).toEqual([]);
    expect(conditionEvents([c('PrimaryAvailable', 'True', 'Up')], [c('PrimaryAvailable', 'False', 'Down')])).toEqual([]);
    // Backups switched off are a choice, not trouble.
    expect(conditionEvents(undefined, [c('ContinuousArchiving', 'False', 'BackupDisabled')])).toEqual([]);
    expect(conditionEvents([c('ContinuousArchiving', 'False', 'BackupDisabled')], [c('ContinuousArchiving', 'True', 'Archiving')])).toEqual([]);
  });
});
