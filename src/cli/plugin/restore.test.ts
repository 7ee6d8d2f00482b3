import { describe, expect, it } from 'vitest';
import type { PostgreSQLBackup } from '../../api/backup.js';
import type { PostgreSQLCluster } from '../../api/cluster.js';
import { buildRestoreCluster, checkRestoreArgs, newestCompletedBackup, recoveryTarget, restoreStep, versionOfBackup } from './restore.js';

const source: PostgreSQLCluster = {
  apiVersion: 'postgres.pgpilot.io/v1',
  kind: 'PostgreSQLCluster',
  metadata: { name: 'prod-db', namespace: 'production', uid: 'u', resourceVersion: '7' },
  spec: {
    version: '16.13',
    instances: 3,
    primary: 'prod-db-2',
    storage: { size: '100Gi', storageClass: 'fast-ssd' },
    walStorage: { size: '10Gi' },
    resources: { requests: { cpu: '2', memory: '4Gi' } },
    postgresql: { parameters: { max_connections: '200' } },
    highAvailability: { enabled: true, synchronousCommit: true, synchronousReplicas: 2 },
    imageName: 'registry.example/postgresql:16.13',
    backup: { enabled: true, schedule: '0 2 * * *', retention: 7, s3: { bucket: 'b', endpoint: 'http://s3', credentials: { secretName: 's3' } } as never },
    bootstrap: { initdb: { database: 'app' } },
  },
};

function backup(name: string, cluster: string, phase: 'completed' | 'failed' | 'running', stoppedAt?: string, path = 'pgpilot/production/prod-db'): PostgreSQLBackup {
  return { metadata: { name }, spec: { cluster: { name: cluster } }, status: { phase, stoppedAt, destination: { path } } };
}

describe('restore', () => {
  it('builds the new cluster from the source essentials and the backup, never its primary or bootstrap', () => {
    const c = buildRestoreCluster({ newName: 'copy', namespace: 'production', source, backup: backup('b1', 'prod-db', 'completed'), instances: 1, target: { time: '2026-12-05T02:00:00.000Z' } });
    expect(c).toEqual({
      apiVersion: 'postgres.pgpilot.io/v1',
      kind: 'PostgreSQLCluster',
      metadata: { name: 'copy', namespace: 'production' },
      spec: {
        version: '16.13',
        instances: 1,
        storage: { size: '100Gi', storageClass: 'fast-ssd' },
        walStorage: { size: '10Gi' },
        resources: { requests: { cpu: '2', memory: '4Gi' } },
        postgresql: { parameters: { max_connections: '200' } },
        highAvailability: { enabled: true, synchronousCommit: false },
        imageName: 'registry.example/postgresql:16.13',
        backup: source.spec.backup,
        bootstrap: { recovery: { backup: { name: 'b1' }, target: { time: '2026-12-05T02:00:00.000Z' } } },
      },
    });
  });

  it('fits synchronous replicas to the instance count and drops the image for another version', () => {
    const c = buildRestoreCluster({ newName: 'copy', namespace: 'production', source, backup: backup('b1', 'prod-db', 'completed'), instances: 2, version: '17' });
    expect(c.spec.highAvailability).toEqual({ enabled: true, synchronousCommit: true, synchronousReplicas: 1 });
    expect(c.spec.version).toBe('17');
    expect(c.spec.imageName).toBeUndefined();
    expect(c.spec.bootstrap).toEqual({ recovery: { backup: { name: 'b1' } } });
  });

  it('a backup taken before a major upgrade restores the old version', () => {
    const upgraded = structuredClone(source);
    upgraded.spec.version = '17.11';
    upgraded.status = { archiveSuffix: 'pg17', majorUpgrade: { phase: 'Succeeded', from: '16.13', to: '17.11', fromImage: 'a', toImage: 'b', mode: 'link', message: '', startedAt: '2026-12-05T01:00:00Z' } };
    expect(versionOfBackup(upgraded, backup('old', 'prod-db', 'completed', undefined, 'pgpilot/production/prod-db'))).toBe('16.13');
    expect(versionOfBackup(upgraded, backup('new', 'prod-db', 'completed', undefined, 'pgpilot/production/prod-db/pg17'))).toBe('17.11');
  });

  it('picks the newest completed backup of the cluster', () => {
    const all = [
      backup('a', 'prod-db', 'completed', '2026-12-05T01:00:00Z'),
      backup('b', 'prod-db', 'completed', '2026-12-05T02:00:00Z'),
      backup('c', 'prod-db', 'failed', '2026-12-05T03:00:00Z'),
      backup('d', 'other', 'completed', '2026-12-05T04:00:00Z'),
      backup('e', 'prod-db', 'running'),
    ];
    expect(newestCompletedBackup(all, 'prod-db')?.metadata.name).toBe('b');
    expect(newestCompletedBackup(all, 'none')).toBeUndefined();
  });

  it('validates the target options: one at most, each in its format', () => {
    expect(recoveryTarget({})).toBeUndefined();
    expect(recoveryTarget({ toTime: '2026-12-05T02:00:00+01:00' })).toEqual({ time: '2026-12-05T01:00:00.000Z' });
    expect(recoveryTarget({ toLsn: '0/3000a60' })).toEqual({ lsn: '0/3000A60' });
    expect(recoveryTarget({ toName: 'before-migration' })).toEqual({ name: 'before-migration' });
    expect(() => recoveryTarget({ toTime: 'yesterday' })).toThrow(/--to-time must be an RFC 3339 time/);
    expect(() => recoveryTarget({ toLsn: '3000060' })).toThrow(/--to-lsn must be a WAL location/);
    expect(() => recoveryTarget({ toTime: '2026-12-05T02:00:00Z', toName: 'x' })).toThrow('give at most one of --to-time, --to-lsn, --to-name (got --to-time and --to-name)');
  });

  it('validates NEW_NAME, --version and --instances', () => {
    expect(checkRestoreArgs({ from: 'x', newName: 'copy' })).toBe(1);
    expect(checkRestoreArgs({ from: 'x', newName: 'copy', instances: '3', version: '17.2' })).toBe(3);
    expect(() => checkRestoreArgs({ from: 'x', newName: 'Copy' })).toThrow(/NEW_NAME must be a cluster name/);
    expect(() => checkRestoreArgs({ from: 'x', newName: 'a'.repeat(49) })).toThrow(/at most 48/);
    expect(() => checkRestoreArgs({ from: 'x', newName: 'copy', version: '13' })).toThrow(/--version must be/);
    expect(() => checkRestoreArgs({ from: 'x', newName: 'copy', instances: '0' })).toThrow(/--instances must be/);
  });

  it('follows the new cluster to Ready, and stops on a failed bootstrap', () => {
    const c = structuredClone(source);
    c.metadata.name = 'copy';
    c.status = { phase: 'Provisioning', readyInstances: 0, conditions: [{ type: 'Ready', status: 'False', reason: 'InstancesNotReady', message: 'copy-1 is restoring', lastTransitionTime: 'x' }] };
    expect(restoreStep(c)).toEqual({ state: 'waiting', line: 'copy: phase Provisioning, 0/3 ready; copy-1 is restoring' });
    c.status = { phase: 'Healthy', readyInstances: 3, conditions: [{ type: 'Ready', status: 'True', reason: 'AllInstancesReady', message: '', lastTransitionTime: 'x' }] };
    expect(restoreStep(c).state).toBe('done');
    c.status = { phase: 'Degraded', conditions: [{ type: 'PrimaryAvailable', status: 'False', reason: 'BootstrapFailed', message: 'copy-1 could not create the database: no such backup', lastTransitionTime: 'x' }] };
    expect(restoreStep(c)).toEqual({ state: 'failed', line: 'the restore failed: copy-1 could not create the database: no such backup' });
  });
});
