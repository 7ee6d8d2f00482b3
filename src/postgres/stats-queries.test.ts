// The exporter's SQL per version and role, and its rows → samples mapping (pure).
import { describe, expect, it } from 'vitest';
import { bgwriterSql, BACKEND_STATES, instanceFacts, mapInstance, mapReplicaReplication, num, PG_FAMILIES, QUERY_NAMES, settingValue, STATS_QUERIES, type Row, type Sample, type ServerFacts } from './stats-queries.js';

const primary = (versionNum = 150004): ServerFacts => ({ versionNum, inRecovery: false });
const replica = (versionNum = 150004): ServerFacts => ({ versionNum, inRecovery: true });
const query = (name: string) => STATS_QUERIES.find((q) => q.name === name)!;
const map = (name: string, rows: Row[], facts = primary()) => query(name).map(rows, facts);
const value = (samples: Sample[], name: string, labels?: Record<string, string>) =>
  samples.find((s) => s.name === name && JSON.stringify(s.labels ?? {}) === JSON.stringify(labels ?? {}))?.value;

describe('values from pg', () => {
  it('reads int8 and numeric strings, leaves null and garbage out', () => {
    expect(num('9007199254740993')).toBeCloseTo(9007199254740993);
    expect(num(12.5)).toBe(12.5);
    expect(num(null)).toBeNull();
    expect(num(undefined)).toBeNull();
    expect(num('x')).toBeNull();
  });

  it('turns sized settings into bytes and keeps plain numbers', () => {
    expect(settingValue('16384', '8kB')).toBe(16384 * 8192);
    expect(settingValue('1024', 'MB')).toBe(1024 ** 3);
    expect(settingValue('100', null)).toBe(100);
    expect(settingValue('on', null)).toBeNull();
  });
});

describe('the instance query', () => {
  it('gives version and role; pg_up depends on it', () => {
    expect(instanceFacts({ version_num: 170002, in_recovery: true })).toEqual({ versionNum: 170002, inRecovery: true });
    expect(() => instanceFacts(undefined)).toThrow(/no server version/);
  });

  it('takes a primary\'s timeline from its current WAL file, a replica\'s from what it receives', () => {
    const p = mapInstance({ in_recovery: false, wal_file: '0000000300000000000000A1', checkpoint_tli: 2, received_tli: null, pending_restart: false });
    expect(value(p, 'pgpilot_instance_timeline')).toBe(3);
    expect(value(p, 'pgpilot_instance_pending_restart')).toBe(0);
    const r = mapInstance({ in_recovery: true, wal_file: null, checkpoint_tli: 2, received_tli: 4, pending_restart: true });
    expect(value(r, 'pgpilot_instance_timeline')).toBe(4);
    expect(value(r, 'pgpilot_instance_pending_restart')).toBe(1);
    // Not streaming: the checkpoint's timeline.
    expect(value(mapInstance({ in_recovery: true, checkpoint_tli: 2, received_tli: null }), 'pgpilot_instance_timeline')).toBe(2);
  });
});

describe('per database', () => {
  it('maps pg_stat_database by datname, as postgres_exporter names it', () => {
    const s = map('database', [
      { datname: 'app', numbackends: 3, xact_commit: '120', xact_rollback: '2', blks_read: '10', blks_hit: '900', tup_returned: '5', tup_fetched: '4', tup_inserted: '3', tup_updated: '2', tup_deleted: '1', deadlocks: '0', temp_bytes: '4096' },
      { datname: null, xact_commit: '1' },
    ]);
    expect(value(s, 'pg_stat_database_xact_commit', { datname: 'app' })).toBe(120);
    expect(value(s, 'pg_stat_database_numbackends', { datname: 'app' })).toBe(3);
    expect(value(s, 'pg_stat_database_temp_bytes', { datname: 'app' })).toBe(4096);
    expect(s).toHaveLength(12);
  });

  it('maps size and wraparound age; a database without connections has its age only', () => {
    const s = map('database_size', [
      { datname: 'app', size_bytes: 8_000_000, xid_age: 1234 },
      { datname: 'template0', size_bytes: null, xid_age: 1300 },
    ]);
    expect(value(s, 'pg_database_size_bytes', { datname: 'app' })).toBe(8_000_000);
    expect(value(s, 'pg_database_xid_age', { datname: 'template0' })).toBe(1300);
    expect(value(s, 'pg_database_size_bytes', { datname: 'template0' })).toBeUndefined();
  });

  it('reports backends and the oldest transaction by state, and locks by mode', () => {
    const a = map('activity', [
      { datname: 'app', state: 'idle in transaction', backends: 2, max_tx_duration: 1900.5 },
      { datname: 'app', state: 'active', backends: 0, max_tx_duration: 0 },
    ]);
    expect(value(a, 'pg_stat_activity_count', { datname: 'app', state: 'idle in transaction' })).toBe(2);
    expect(value(a, 'pg_stat_activity_max_tx_duration', { datname: 'app', state: 'idle in transaction' })).toBe(1900.5);
    expect(value(a, 'pg_stat_activity_count', { datname: 'app', state: 'active' })).toBe(0);
    // The SQL fills every state per database, so zero series exist.
    for (const state of BACKEND_STATES) expect(query('activity').sql(primary())).toContain(`('${state}')`);
    const l = map('locks', [{ datname: 'app', mode: 'AccessExclusiveLock', locks: 1 }]);
    expect(l).toEqual([{ name: 'pg_locks_count', labels: { datname: 'app', mode: 'AccessExclusiveLock' }, value: 1 }]);
  });
});

describe('settings', () => {
  it('exports the listed settings, sizes in bytes under _bytes', () => {
    const s = map('settings', [
      { name: 'max_connections', setting: '100', unit: null },
      { name: 'superuser_reserved_connections', setting: '3', unit: null },
      { name: 'max_wal_senders', setting: '10', unit: null },
      { name: 'max_replication_slots', setting: '10', unit: null },
      { name: 'shared_buffers', setting: '16384', unit: '8kB' },
      { name: 'max_wal_size', setting: '1024', unit: 'MB' },
      { name: 'work_mem', setting: '4096', unit: 'kB' },
    ]);
    expect(Object.fromEntries(s.map((x) => [x.name, x.value]))).toEqual({
      pg_settings_max_connections: 100,
      pg_settings_superuser_reserved_connections: 3,
      pg_settings_max_wal_senders: 10,
      pg_settings_max_replication_slots: 10,
      pg_settings_shared_buffers_bytes: 128 * 1024 * 1024,
      pg_settings_max_wal_size_bytes: 1024 ** 3,
    });
  });
});

describe('replication by role', () => {
  it('asks a primary for its standbys and a replica for its own lag', () => {
    expect(query('replication').sql(primary())).toMatch(/pg_stat_replication/);
    expect(query('replication').sql(replica())).toMatch(/pg_last_wal_replay_lsn/);
  });

  it('a primary: lag bytes per standby, one series per application_name (the larger)', () => {
    const s = map('replication', [
      { application_name: 'r2', lag_bytes: 100 },
      { application_name: 'r2', lag_bytes: 300 },
      { application_name: 'r3', lag_bytes: -5 },
      { application_name: 'r4', lag_bytes: null },
    ]);
    expect(s).toEqual([
      { name: 'pg_stat_replication_replay_lag_bytes', labels: { application_name: 'r2' }, value: 300 },
      { name: 'pg_stat_replication_replay_lag_bytes', labels: { application_name: 'r3' }, value: 0 },
    ]);
    expect(s.some((x) => x.name.startsWith('pg_replication_lag') || x.name.startsWith('pgpilot_instance_replication'))).toBe(false);
  });

  it('a replica caught up: 0 everywhere, whatever the age of the last replayed transaction', () => {
    const s = mapReplicaReplication({ receive_replay_bytes: 0, replay_age: 3600, receiver_status: 'streaming', behind_reported_bytes: 0 });
    expect(value(s, 'pg_replication_lag_seconds')).toBe(0);
    expect(value(s, 'pgpilot_instance_replication_lag_seconds')).toBe(0);
    expect(value(s, 'pgpilot_instance_replication_lag_bytes')).toBe(0);
  });

  it('a replica replaying behind: the age of its last replayed transaction, and the bytes to replay', () => {
    const s = mapReplicaReplication({ receive_replay_bytes: 16_384, replay_age: 12.5, receiver_status: 'streaming', behind_reported_bytes: 16_384 });
    expect(value(s, 'pg_replication_lag_seconds')).toBe(12.5);
    expect(value(s, 'pgpilot_instance_replication_lag_seconds')).toBe(12.5);
    expect(value(s, 'pgpilot_instance_replication_lag_bytes')).toBe(16_384);
  });

  it('a replica that stopped receiving: postgres_exporter\'s lag says 0, ours keeps growing', () => {
    const s = mapReplicaReplication({ receive_replay_bytes: 0, replay_age: 95, receiver_status: null, behind_reported_bytes: null });
    expect(value(s, 'pg_replication_lag_seconds')).toBe(0);
    expect(value(s, 'pgpilot_instance_replication_lag_seconds')).toBe(95);
  });

  it('a replica that never received or replayed anything: no lag series', () => {
    expect(mapReplicaReplication({ receive_replay_bytes: null, replay_age: null, receiver_status: null, behind_reported_bytes: null })).toEqual([]);
    // After a restart the receive position can lag the replay position: nothing is pending.
    expect(value(mapReplicaReplication({ receive_replay_bytes: -8192, replay_age: 4 }), 'pgpilot_instance_replication_lag_bytes')).toBe(0);
  });
});

describe('versions 14-18', () => {
  it('reads checkpoints from pg_stat_bgwriter before 17 and from pg_stat_checkpointer from 17', () => {
    for (const v of [140010, 150004, 160002]) {
      expect(bgwriterSql(v)).not.toMatch(/pg_stat_checkpointer/);
      expect(bgwriterSql(v)).toMatch(/buffers_backend/);
    }
    for (const v of [170000, 180001]) {
      expect(bgwriterSql(v)).toMatch(/FROM pg_stat_checkpointer c CROSS JOIN pg_stat_bgwriter b/);
      expect(bgwriterSql(v)).not.toMatch(/buffers_backend/);
      expect(bgwriterSql(v)).toMatch(/c\.num_timed AS checkpoints_timed, c\.num_requested AS checkpoints_req, c\.buffers_written AS buffers_checkpoint/);
    }
  });

  it('gives the same names either way, and leaves out what 17 no longer has', () => {
    const old = map('bgwriter', [{ checkpoints_timed: '10', checkpoints_req: '2', buffers_checkpoint: '300', buffers_clean: '4', buffers_backend: '50' }], primary(160002));
    const neu = map('bgwriter', [{ checkpoints_timed: '10', checkpoints_req: '2', buffers_checkpoint: '300', buffers_clean: '4' }], primary(170002));
    expect(old.map((s) => s.name).sort()).toEqual(
      ['pg_stat_bgwriter_buffers_backend_total', 'pg_stat_bgwriter_buffers_checkpoint_total', 'pg_stat_bgwriter_buffers_clean_total', 'pg_stat_bgwriter_checkpoints_req_total', 'pg_stat_bgwriter_checkpoints_timed_total'],
    );
    expect(neu.map((s) => s.name).sort()).toEqual(old.map((s) => s.name).filter((n) => n !== 'pg_stat_bgwriter_buffers_backend_total').sort());
  });

  it('asks pg_stat_wal from 14 and nothing before', () => {
    expect(query('wal').sql(primary(140000))).toMatch(/pg_stat_wal/);
    expect(query('wal').sql(primary(130012))).toBeNull();
    expect(map('wal', [{ wal_bytes: 123456 }])).toEqual([{ name: 'pg_stat_wal_bytes_total', value: 123456 }]);
  });
});

describe('archiver', () => {
  it('counts and the age of the last archived file, absent before the first', () => {
    expect(map('archiver', [{ archived_count: '7', failed_count: '1', last_archive_age: 30.2 }])).toEqual([
      { name: 'pg_stat_archiver_archived_count', value: 7 },
      { name: 'pg_stat_archiver_failed_count', value: 1 },
      { name: 'pg_stat_archiver_last_archive_age', value: 30.2 },
    ]);
    expect(map('archiver', [{ archived_count: '0', failed_count: '0', last_archive_age: null }]).map((s) => s.name)).not.toContain('pg_stat_archiver_last_archive_age');
  });
});

describe('families', () => {
  it('names every family a mapping can produce, counters with _total and nothing else with it', () => {
    for (const [name, f] of Object.entries(PG_FAMILIES)) {
      expect(f.help.length, name).toBeGreaterThan(10);
      expect(name.endsWith('_total'), name).toBe(f.type === 'counter');
      // promtool rejects a gauge named _count: postgres_exporter's names of that kind are untyped.
      if (name.endsWith('_count')) expect(f.type, name).toBe('untyped');
      expect(name).toMatch(/^[a-z_][a-z0-9_]*$/);
    }
    expect(QUERY_NAMES[0]).toBe('instance');
    expect(new Set(QUERY_NAMES).size).toBe(QUERY_NAMES.length);
  });
});
