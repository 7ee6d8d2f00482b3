import { describe, expect, it } from 'vitest';
import type { PostgreSQLBackup } from '../../api/backup.js';
import { backupManifest, backupStep, checkBackupName, defaultBackupName } from './backup.js';
import { hibernateStep, parseOnOff } from './hibernate.js';
import type { PostgreSQLCluster } from '../../api/cluster.js';

describe('backup', () => {
  it('names a backup after its cluster and the UTC time, within 63 characters', () => {
    const at = new Date('2026-12-05T03:04:05.678Z');
    expect(defaultBackupName('prod-db', at)).toBe('prod-db-20261205t030405');
    const long = defaultBackupName(`${'x'.repeat(47)}-`, at);
    expect(long.length).toBeLessThanOrEqual(63);
    expect(() => checkBackupName(long)).not.toThrow();
    expect(() => checkBackupName('Bad_Name')).toThrow(/--name must be/);
    expect(() => checkBackupName('a'.repeat(64))).toThrow(/at most 63/);
  });

  it('creates a PostgreSQLBackup of the cluster', () => {
    expect(backupManifest('prod-db', 'b1')).toEqual({ apiVersion: 'postgres.pgpilot.io/v1', kind: 'PostgreSQLBackup', metadata: { name: 'b1' }, spec: { cluster: { name: 'prod-db' } } });
  });

  it('follows it: waiting, running with progress, completed, failed with the reason', () => {
    const b = (status: PostgreSQLBackup['status']): PostgreSQLBackup => ({ metadata: { name: 'b1' }, spec: { cluster: { name: 'db' } }, status });
    expect(backupStep(b(undefined))).toEqual({ state: 'waiting', line: 'backup b1 created, waiting for its Job' });
    expect(backupStep(b({ phase: 'running', instance: 'db-2', progressBytes: 3 * 1048576 }))).toEqual({ state: 'waiting', line: 'backup b1 running on db-2: 3.0 MiB read' });
    expect(backupStep(b({ phase: 'completed', instance: 'db-2', fromReplica: true, dataBytes: 1048576 * 30, storedBytes: 1048576 * 4, durationSeconds: 7 }))).toMatchObject({
      state: 'done',
      line: 'backup b1 completed: 30.0 MiB of data, 4.0 MiB stored, from db-2 (a replica) in 7 s',
    });
    expect(backupStep(b({ phase: 'failed', error: 'no object store' }))).toEqual({ state: 'failed', line: 'backup b1 failed: no object store' });
  });
});

describe('hibernate', () => {
  it('takes on or off', () => {
    expect(parseOnOff('on')).toBe(true);
    expect(parseOnOff('off')).toBe(false);
    expect(() => parseOnOff('yes')).toThrow('hibernate takes "on" or "off" (got "yes")');
  });

  it('is done when the Hibernated condition of the patched generation says so', () => {
    const c = (status: string, phase: string, observedGeneration: number, reason = 'R'): PostgreSQLCluster => ({
      metadata: { name: 'db', generation: 4 },
      spec: { version: '16', storage: { size: '1Gi' } },
      status: { phase, conditions: [{ type: 'Hibernated', status: status as 'True', reason, message: 'm', lastTransitionTime: 'x', observedGeneration }] },
    });
    expect(hibernateStep(c('True', 'Hibernated', 4), true, 4).state).toBe('done');
    expect(hibernateStep(c('True', 'Hibernated', 3), true, 4).state).toBe('waiting');
    expect(hibernateStep(c('False', 'Healthy', 4), true, 4).state).toBe('waiting');
    expect(hibernateStep(c('False', 'Healthy', 4, 'Awake'), false, 4).state).toBe('done');
    // Waking: the condition is False already, the primary does not accept writes yet.
    expect(hibernateStep(c('False', 'Waking', 4, 'Waking'), false, 4).state).toBe('waiting');
    expect(hibernateStep(c('False', 'Hibernated', 4), false, 4).state).toBe('waiting');
  });
});
