// Tuned settings pinned for three resource sizes and two profiles (pgtune's formulas; see tuning.ts).
import { describe, expect, it } from 'vitest';
import { seedCluster } from '../../test/support/cluster-fixtures.js';
import type { ClusterSpec } from '../api/cluster.js';
import { computeTuning, sizeSetting, tunedParameters } from './tuning.js';

const spec = (memory: string, cpu: string, size: string, tuning?: NonNullable<ClusterSpec['postgresql']>['tuning']): ClusterSpec =>
  seedCluster({ resources: { limits: { memory, cpu } }, storage: { size }, postgresql: tuning ? { tuning } : undefined }).spec;

const common = { random_page_cost: '1.1', effective_io_concurrency: '200' };

describe('tuning from resources', () => {
  it('2Gi, 1 core: oltp on ssd and olap on hdd', () => {
    expect(tunedParameters(spec('2Gi', '1', '10Gi', { profile: 'oltp' }))).toEqual({
      ...common,
      max_connections: '300',
      shared_buffers: '512MB',
      effective_cache_size: '1536MB',
      maintenance_work_mem: '128MB',
      work_mem: '1747kB',
      wal_buffers: '16MB',
      max_worker_processes: '8',
      max_parallel_workers: '1',
      max_parallel_workers_per_gather: '1',
      max_parallel_maintenance_workers: '1',
      max_wal_size: '2560MB',
      min_wal_size: '640MB',
    });
    expect(tunedParameters(spec('2Gi', '1', '10Gi', { profile: 'olap', storageType: 'hdd' }))).toEqual({
      max_connections: '40',
      shared_buffers: '512MB',
      effective_cache_size: '1536MB',
      maintenance_work_mem: '256MB',
      work_mem: '6553kB',
      wal_buffers: '16MB',
      max_worker_processes: '8',
      max_parallel_workers: '1',
      max_parallel_workers_per_gather: '1',
      max_parallel_maintenance_workers: '1',
      max_wal_size: '2560MB',
      min_wal_size: '640MB',
      random_page_cost: '4',
      effective_io_concurrency: '2',
      default_statistics_target: '500',
    });
  });

  it('8Gi, 4 cores (the seed\'s limits): oltp and olap', () => {
    expect(tunedParameters(spec('8Gi', '4', '100Gi', { profile: 'oltp' }))).toEqual({
      ...common,
      max_connections: '300',
      shared_buffers: '2048MB',
      effective_cache_size: '6144MB',
      maintenance_work_mem: '512MB',
      work_mem: '3495kB',
      wal_buffers: '16MB',
      max_worker_processes: '8',
      max_parallel_workers: '4',
      max_parallel_workers_per_gather: '2',
      max_parallel_maintenance_workers: '2',
      max_wal_size: '8192MB',
      min_wal_size: '2048MB',
    });
    expect(tunedParameters(spec('8Gi', '4', '100Gi', { profile: 'olap' }))).toMatchObject({
      max_connections: '40',
      maintenance_work_mem: '1024MB',
      work_mem: '13107kB',
      max_parallel_workers_per_gather: '2',
      max_wal_size: '16384MB',
      min_wal_size: '4096MB',
      default_statistics_target: '500',
    });
  });

  it('64Gi, 16 cores: oltp and olap', () => {
    expect(tunedParameters(spec('64Gi', '16', '1Ti', { profile: 'oltp' }))).toEqual({
      ...common,
      max_connections: '300',
      shared_buffers: '16384MB',
      effective_cache_size: '49152MB',
      maintenance_work_mem: '2048MB',
      work_mem: '13981kB',
      wal_buffers: '16MB',
      max_worker_processes: '16',
      max_parallel_workers: '16',
      max_parallel_workers_per_gather: '4',
      max_parallel_maintenance_workers: '4',
      max_wal_size: '8192MB',
      min_wal_size: '2048MB',
    });
    expect(tunedParameters(spec('64Gi', '16', '1Ti', { profile: 'olap', storageType: 'san' }))).toMatchObject({
      work_mem: '26214kB',
      max_parallel_workers_per_gather: '8',
      max_parallel_maintenance_workers: '4',
      random_page_cost: '1.1',
      effective_io_concurrency: '300',
    });
  });

  it('without spec.postgresql.tuning: mixed on ssd, and the restart settings pgpilot always wrote (no restart on upgrade)', () => {
    const p = tunedParameters(seedCluster().spec);
    expect(p).toMatchObject({ max_connections: '100', shared_buffers: '2048MB', max_worker_processes: '8', work_mem: '5242kB', max_wal_size: '4096MB', min_wal_size: '1024MB' });
    expect(p.wal_buffers).toBeUndefined();
    expect(tunedParameters(seedCluster({ resources: { limits: { memory: '256Mi' } } }).spec).shared_buffers).toBe('128MB');
    expect(tunedParameters(seedCluster({ resources: { limits: { memory: '1001Mi' } } }).spec).shared_buffers).toBe('250MB');
  });

  it('requests when there are no limits; no memory or CPU settings without resources', () => {
    expect(tunedParameters(seedCluster({ resources: { requests: { memory: '4Gi', cpu: 2 } } }).spec)).toMatchObject({ shared_buffers: '1024MB', effective_cache_size: '3072MB', max_parallel_workers: '2' });
    expect(Object.keys(tunedParameters(seedCluster({ resources: undefined }).spec)).sort()).toEqual(['effective_io_concurrency', 'max_connections', 'max_wal_size', 'min_wal_size', 'random_page_cost']);
  });

  it('max_wal_size fits a quarter of the WAL volume; maxConnections sizes work_mem; a user max_connections wins', () => {
    const withWal = { ...spec('8Gi', '4', '100Gi', { profile: 'oltp' }), walStorage: { size: '2Gi' } };
    const t = computeTuning(withWal);
    expect(t.settings.max_wal_size).toEqual({ value: '512MB', reason: 'a quarter of the WAL volume, 2Gi (oltp would take 8192MB)' });
    expect(t.settings.min_wal_size!.value).toBe('128MB');
    expect(tunedParameters(spec('8Gi', '4', '100Gi', { profile: 'oltp', maxConnections: 600 })).work_mem).toBe('1747kB');
    const user = seedCluster({ postgresql: { parameters: { max_connections: '50' }, tuning: { profile: 'web' } } }).spec;
    expect(computeTuning(user).connections).toBe(50);
  });

  it('every value has a reason', () => {
    for (const s of Object.values(computeTuning(spec('8Gi', '4', '100Gi', { profile: 'web' })).settings)) expect(s.reason.length).toBeGreaterThan(3);
    expect([1024, 64 * 1024, 5 * 1024 ** 2 + 1024, 16 * 1024 ** 2].map(sizeSetting)).toEqual(['1kB', '64kB', '5121kB', '16MB']);
  });
});
