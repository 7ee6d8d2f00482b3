import { describe, expect, it } from 'vitest';
import { parseControlMinimums } from './control-file.js';
import { configuredStandbyMinimums, loweredStandbyMinimums, restartSettingsHash, standbyMinimums, standbyStartOverrides } from './restart-settings.js';

describe('restart-requiring settings', () => {
  it('hashes only the settings that need a restart, in any order', () => {
    const base = restartSettingsHash({ max_connections: '100', shared_buffers: '128MB' });
    expect(restartSettingsHash({ shared_buffers: '128MB', max_connections: '100', work_mem: '4MB' })).toBe(base);
    expect(restartSettingsHash({ max_connections: '101', shared_buffers: '128MB' })).not.toBe(base);
  });

  it('lists the standby minimums that are set, and sees one go down', () => {
    const live = standbyMinimums({ max_connections: '120', max_wal_senders: '10', work_mem: '4MB' });
    expect(live).toBe('max_connections=120,max_wal_senders=10');
    expect(loweredStandbyMinimums(live, standbyMinimums({ max_connections: '110', max_wal_senders: '10' }))).toEqual(['max_connections']);
    expect(loweredStandbyMinimums(live, standbyMinimums({ max_connections: '130', max_wal_senders: '10' }))).toEqual([]);
    expect(loweredStandbyMinimums(undefined, 'max_connections=1')).toEqual([]);
  });
});

describe('a replica started below the values its data was written with', () => {
  const controldata = ['Database cluster state:               in archive recovery', 'wal_level setting:                    replica', 'max_connections setting:              120', 'max_worker_processes setting:         8', 'max_wal_senders setting:              10', 'max_prepared_xacts setting:           0', 'max_locks_per_xact setting:           64', 'track_commit_timestamp setting:       off'].join('\n');

  it('reads the recorded values from pg_controldata, under their setting names', () => {
    expect(parseControlMinimums(controldata)).toEqual({ max_connections: 120, max_worker_processes: 8, max_wal_senders: 10, max_prepared_transactions: 0, max_locks_per_transaction: 64 });
  });

  it('reads the configured values from the rendered postgresql.conf, with PostgreSQL defaults for the rest', () => {
    const conf = "# Managed by pgpilot\nmax_connections = '110'\nmax_wal_senders = '12'\nwork_mem = '8MB'\n";
    expect(configuredStandbyMinimums(conf)).toEqual({ max_connections: 110, max_wal_senders: 12, max_worker_processes: 8, max_prepared_transactions: 0, max_locks_per_transaction: 64 });
  });

  it('overrides exactly the settings recorded higher than configured', () => {
    const control = parseControlMinimums(controldata);
    expect(standbyStartOverrides(control, configuredStandbyMinimums("max_connections = '110'\n"))).toEqual({ max_connections: '120' });
    expect(standbyStartOverrides(control, configuredStandbyMinimums("max_connections = '130'\n"))).toEqual({});
    expect(standbyStartOverrides({}, configuredStandbyMinimums(''))).toEqual({});
  });
});
