import { describe, expect, it } from 'vitest';
import type { InstanceStatus, VolumeUsage } from '../instance/api-types.js';
import { instanceStatus } from '../../test/support/instance-status.js';
import { planHa, type ObservedInstance } from './ha-plan.js';
import {
  autoGrowSettings,
  claimSize,
  formatSize,
  incrementBytes,
  planVolume,
  storageConditions,
  volumeFull,
  walRetentionCause,
  walWeighs,
  type InstanceVolume,
  type VolumeInput,
} from './storage-autogrow-plan.js';

const Mi = 2 ** 20;
const NOW = Date.parse('2025-01-01T12:00:00Z');

function usage(usedMi: number, capacityMi: number, volume: VolumeUsage['volume'] = 'data'): VolumeUsage {
  return { volume, capacityBytes: capacityMi * Mi, usedBytes: usedMi * Mi, availableBytes: (capacityMi - usedMi) * Mi, usedPercent: Math.round((usedMi / capacityMi) * 1000) / 10 };
}

/** An instance whose claim is settled at `sizeMi` and whose volume holds `usedMi`. */
const at = (instance: string, usedMi: number, sizeMi = 64): InstanceVolume => ({ instance, usage: usage(usedMi, sizeMi), requestBytes: sizeMi * Mi, capacityBytes: sizeMi * Mi });

const on = autoGrowSettings({ enabled: true, maxSize: '160Mi', cooldownSeconds: 60 });

function input(over: Partial<VolumeInput> = {}): VolumeInput {
  return { volume: 'data', specSize: '64Mi', settings: on, instances: [at('db-1', 40), at('db-2', 41)], now: NOW, ...over };
}

describe('auto-grow settings and sizes', () => {
  it('applies the defaults: off, 80 %, +50 %, 60 s', () => {
    expect(autoGrowSettings(undefined)).toEqual({ enabled: false, thresholdPercent: 80, increment: '50%', cooldownSeconds: 60 });
    expect(autoGrowSettings({ enabled: true, maxSize: '1Ti', increment: '10Gi' })).toMatchObject({ enabled: true, maxSize: '1Ti', increment: '10Gi', thresholdPercent: 80 });
  });

  it('computes increments as a percentage of the current size or a quantity', () => {
    expect(incrementBytes('50%', 64 * Mi)).toBe(32 * Mi);
    expect(incrementBytes('100%', 10 * Mi)).toBe(10 * Mi);
    expect(incrementBytes('10Gi', 64 * Mi)).toBe(10 * 2 ** 30);
  });

  it('formats sizes in whole Mi, or Gi when whole', () => {
    expect(formatSize(96 * Mi)).toBe('96Mi');
    expect(formatSize(96 * Mi + 1)).toBe('97Mi');
    expect(formatSize(150 * 2 ** 30)).toBe('150Gi');
  });

  it('keeps spec size as the floor: a claim asks for the larger of spec and chosen size', () => {
    expect(claimSize('64Mi', undefined)).toBe('64Mi');
    expect(claimSize('64Mi', '96Mi')).toBe('96Mi');
    expect(claimSize('200Mi', '96Mi')).toBe('200Mi'); // the user raised it past what auto-grow chose
  });
});

describe('planVolume', () => {
  it('does nothing below the threshold', () => {
    expect(planVolume(input())).toEqual({ kind: 'ok', volume: 'data', hottestPercent: 64.1 });
  });

  it('grows every claim to current + increment when one instance passes the threshold', () => {
    const d = planVolume(input({ instances: [at('db-1', 40), at('db-2', 52)] }));
    expect(d).toMatchObject({ kind: 'grow', volume: 'data', from: '64Mi', to: '96Mi', instance: 'db-2' });
    expect(d.kind === 'grow' && d.reason).toBe("db-2's data volume is 81% full (52Mi of 64Mi), past 80%");
  });

  it('never passes maxSize, and at maxSize says so instead of growing', () => {
    expect(planVolume(input({ status: { size: '144Mi', lastGrownAt: '2025-01-01T11:00:00Z', reason: 'x' }, instances: [at('db-1', 120, 144)] }))).toMatchObject({ kind: 'grow', from: '144Mi', to: '160Mi' });
    const full = planVolume(input({ status: { size: '160Mi', lastGrownAt: '2025-01-01T11:00:00Z', reason: 'x' }, instances: [at('db-1', 140, 160)] }));
    expect(full).toMatchObject({ kind: 'full', reason: 'AtMaxSize' });
    expect(full.kind === 'full' && full.message).toContain('spec.storage.autoGrow.maxSize (160Mi)');
  });

  it('starts from the largest claim request (a larger spec size or an earlier growth)', () => {
    expect(planVolume(input({ specSize: '100Mi', instances: [at('db-1', 90, 100)] }))).toMatchObject({ kind: 'grow', from: '100Mi', to: '150Mi' });
  });

  it('waits for a growth in flight (a claim below its request) and for the cooldown', () => {
    const inFlight = { instance: 'db-1', usage: usage(60, 64), requestBytes: 96 * Mi, capacityBytes: 64 * Mi };
    expect(planVolume(input({ instances: [inFlight, at('db-2', 60)] }))).toEqual({ kind: 'growing', volume: 'data', instances: ['db-1'], to: '96Mi' });
    const recent = { size: '96Mi', lastGrownAt: new Date(NOW - 30_000).toISOString(), reason: 'x' };
    expect(planVolume(input({ status: recent, instances: [at('db-1', 80, 96)] }))).toMatchObject({ kind: 'cooldown', message: expect.stringContaining('waits 30s more') });
    const past = { ...recent, lastGrownAt: new Date(NOW - 61_000).toISOString() };
    expect(planVolume(input({ status: past, instances: [at('db-1', 80, 96)] }))).toMatchObject({ kind: 'grow', from: '96Mi', to: '144Mi' });
  });

  it('reports a full volume with auto-grow off (the threshold still applies), and a class that cannot expand', () => {
    const off = planVolume(input({ settings: autoGrowSettings(undefined), instances: [at('db-1', 63)] }));
    expect(off).toMatchObject({ kind: 'full', reason: 'AutoGrowDisabled' });
    expect(off.kind === 'full' && off.message).toContain('raise spec.storage.size or turn on spec.storage.autoGrow');
    expect(planVolume(input({ settings: autoGrowSettings(undefined), instances: [at('db-1', 40)] }))).toMatchObject({ kind: 'ok' });
    const refused = planVolume(input({ instances: [at('db-1', 60)], expansionRefused: 'only dynamically provisioned pvc can be resized' }));
    expect(refused).toMatchObject({ kind: 'full', reason: 'ExpansionNotSupported' });
  });

  it('grows once for WAL that archiving or a slot keeps, then holds and says why', () => {
    const cause = 'WAL archiving fails (40 segment(s) wait; last error: 403)';
    const once = planVolume(input({ volume: 'wal', specSize: '64Mi', walRetention: cause, instances: [at('db-1', 60)] }));
    expect(once).toMatchObject({ kind: 'grow', to: '96Mi', walRetention: cause });
    const again = planVolume(input({ volume: 'wal', walRetention: cause, status: { size: '96Mi', lastGrownAt: '2025-01-01T11:00:00Z', reason: 'x', walRetention: true }, instances: [at('db-1', 90, 96)] }));
    expect(again).toMatchObject({ kind: 'full', reason: 'WalRetention' });
    expect(again.kind === 'full' && again.message).toContain('will not again');
    // The cause gone, growth for usage goes on.
    expect(planVolume(input({ volume: 'wal', status: { size: '96Mi', lastGrownAt: '2025-01-01T11:00:00Z', reason: 'x', walRetention: true }, instances: [at('db-1', 90, 96)] }))).toMatchObject({ kind: 'grow', to: '144Mi' });
  });
});

describe('WAL retention', () => {
  const primary = (over: Partial<InstanceStatus>) => instanceStatus({ role: 'primary', running: true, ...over });

  it('names failing archiving with a backlog, and inactive slots holding a segment or more', () => {
    const failing = primary({
      archiving: { lastArchivedWal: 'a', lastArchivedTime: '2025-01-01T10:00:00Z', lastFailedWal: 'b', lastFailureTime: '2025-01-01T11:00:00Z', lastFailure: 'AccessDenied', backlogSegments: 12, inFlight: 0, archivedCount: 3 },
      slots: [
        { slot: 'debezium', active: false, retainedBytes: 200 * Mi },
        { slot: 'live', active: true, retainedBytes: 500 * Mi },
      ],
    });
    expect(walRetentionCause(failing)).toBe('WAL archiving fails (12 segment(s) wait; last error: AccessDenied); inactive replication slot "debezium" holds 200Mi of WAL');
    const recovered = primary({ archiving: { lastArchivedWal: 'c', lastArchivedTime: '2025-01-01T11:30:00Z', lastFailedWal: 'b', lastFailureTime: '2025-01-01T11:00:00Z', lastFailure: 'AccessDenied', backlogSegments: 0, inFlight: 0, archivedCount: 4 } });
    expect(walRetentionCause(recovered)).toBeUndefined();
    expect(walRetentionCause(undefined)).toBeUndefined();
  });

  it('counts pg_wal as a cause on the data volume only when it is a quarter of it', () => {
    expect(walWeighs('wal', undefined)).toBe(true);
    expect(walWeighs('data', primary({ volumes: [usage(50, 64)], wal: { bytes: 20 * Mi, volumeUsedPercent: 78 } }))).toBe(true);
    expect(walWeighs('data', primary({ volumes: [usage(50, 64)], wal: { bytes: 8 * Mi, volumeUsedPercent: 78 } }))).toBe(false);
  });
});

describe('storage conditions', () => {
  const settings = { data: on };

  it('StorageAutoGrowing True while a growth is in flight; StorageFull False with room left', () => {
    const [growing, full] = storageConditions([{ kind: 'growing', volume: 'data', instances: ['db-1'], to: '96Mi' }], settings);
    expect(growing).toMatchObject({ type: 'StorageAutoGrowing', status: 'True', reason: 'Growing' });
    expect(full).toMatchObject({ type: 'StorageFull', status: 'False', reason: 'RoomLeft' });
  });

  it('Idle or AutoGrowOff otherwise; StorageFull True with the most pressing reason first', () => {
    expect(storageConditions([{ kind: 'ok', volume: 'data' }], settings)[0]).toMatchObject({ status: 'False', reason: 'Idle', message: expect.stringContaining('at 80%, up to 160Mi') });
    expect(storageConditions([{ kind: 'ok', volume: 'data' }], { data: autoGrowSettings(undefined) })[0]).toMatchObject({ status: 'False', reason: 'AutoGrowOff' });
    const [, full] = storageConditions(
      [
        { kind: 'full', volume: 'data', reason: 'AtMaxSize', message: 'data at max' },
        { kind: 'full', volume: 'wal', reason: 'WalRetention', message: 'wal kept' },
      ],
      { ...settings, wal: on },
    );
    expect(full).toEqual({ type: 'StorageFull', status: 'True', reason: 'WalRetention', message: 'wal kept; data at max' });
  });
});

describe('a replica whose volume is full is never promoted', () => {
  const replica = (lsn: string, volumes: VolumeUsage[]) =>
    instanceStatus({ phase: 'Running', role: 'replica', running: true, timeline: 1, receiveLsn: lsn, replayLsn: lsn, following: '127.0.100.1:5432', streaming: true, volumes });
  const inst = (name: string, ip: string, a: InstanceStatus | undefined, roleLabel: string): ObservedInstance => ({ name, podIP: ip, agent: a ? { ...a, instance: name } : undefined, roleLabel });

  it('treats a volume with under 16 MiB (2 % on a small one) available as full', () => {
    expect(volumeFull(replica('0/1', [usage(63.9, 64)]))).toBe(true);
    expect(volumeFull(replica('0/1', [usage(40, 64)]))).toBe(false);
    expect(volumeFull(replica('0/1', [usage(100 * 1024 - 10, 100 * 1024)]))).toBe(true);
    expect(volumeFull(replica('0/1', []))).toBe(false);
  });

  it('fails over to the less advanced replica when the most advanced one is full', () => {
    const instances = [
      inst('db-1', '127.0.100.1', undefined, 'primary'),
      inst('db-2', '127.0.100.2', replica('0/3000100', [usage(30, 64)]), 'replica'),
      inst('db-3', '127.0.100.3', replica('0/3000200', [usage(64, 64)]), 'replica'),
    ];
    const plan = planHa({ instances, primary: 'db-1', haEnabled: true, failoverDelayMs: 0, now: 10_000, primaryFailedSince: 9_000 });
    expect(plan.primary).toBe('db-2');
    expect(plan.actions).toContainEqual({ kind: 'promote', instance: 'db-2' });
  });
});
