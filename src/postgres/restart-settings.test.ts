import { describe, expect, it } from 'vitest';
import { lowersStandbyMinimum, restartSettingsHash, standbyMinimums } from './restart-settings.js';

describe('restart-requiring settings', () => {
  it('hashes only the settings that need a restart, in any order', () => {
    const base = restartSettingsHash({ max_connections: '100', shared_buffers: '128MB' });
    expect(restartSettingsHash({ shared_buffers: '128MB', max_connections: '100', work_mem: '4MB' })).toBe(base);
    expect(restartSettingsHash({ max_connections: '101', shared_buffers: '128MB' })).not.toBe(base);
  });

  it('lists the standby minimums that are set, and sees one go down', () => {
    const live = standbyMinimums({ max_connections: '120', max_wal_senders: '10', work_mem: '4MB' });
    expect(live).toBe('max_connections=120,max_wal_senders=10');
    expect(lowersStandbyMinimum(live, standbyMinimums({ max_connections: '110', max_wal_senders: '10' }))).toBe(true);
    expect(lowersStandbyMinimum(live, standbyMinimums({ max_connections: '130', max_wal_senders: '10' }))).toBe(false);
    expect(lowersStandbyMinimum(undefined, 'max_connections=1')).toBe(false);
  });
});
