// Pure decisions of the instance agent: settings from env, command lines, status shaping, requests.
import { describe, expect, it } from 'vitest';
import { basebackupArgs, initdbArgs } from './bootstrap.js';
import { EnvError, loadSettings } from './env.js';
import { layoutOf, postgresArgs } from './layout.js';
import { restartDelayMs, serverLineLevel } from './postgres-process.js';
import { hasDiverged, parseTimelineHistory } from '../postgres/lsn.js';
import { bearerMatches, HttpError, parseBootstrapRequest, parseFollowRequest } from './requests.js';
import { shapeStatus, type AgentView } from './status.js';
import type { SqlSnapshot } from '../postgres/server-info.js';

const env = {
  PGPILOT_CLUSTER: 'prod-db',
  PGPILOT_INSTANCE: 'prod-db-1',
  PGPILOT_NAMESPACE: 'production',
  PGPILOT_POD_IP: '10.0.0.7',
  PGPILOT_CONFIG_DIR: '/etc/pgpilot/config',
  PGPILOT_SECRETS_DIR: '/etc/pgpilot/secrets',
  PGDATA: '/var/lib/postgresql/data/pgdata',
};

describe('settings from the environment', () => {
  it('reads the builder env with defaults', () => {
    const s = loadSettings(env);
    expect(s).toMatchObject({ instance: 'prod-db-1', podIp: '10.0.0.7', agentPort: 8000, pgPort: 5432, walDir: undefined, pgBin: undefined, stopTimeoutSeconds: 30, logLevel: 'info' });
    expect(s.initdb).toEqual({ database: 'app', owner: 'app', encoding: 'UTF8', locale: 'C.UTF-8', dataChecksums: true });
  });

  it('reads the optional ones', () => {
    const s = loadSettings({ ...env, PGPILOT_WAL_DIR: '/var/lib/postgresql/wal/pg_wal', PGPILOT_AGENT_PORT: '9000', PGPILOT_PG_PORT: '5433', PGPILOT_INITDB_DATA_CHECKSUMS: 'false', PGPILOT_STOP_TIMEOUT_SECONDS: '60' });
    expect(s).toMatchObject({ walDir: '/var/lib/postgresql/wal/pg_wal', agentPort: 9000, pgPort: 5433, stopTimeoutSeconds: 60 });
    expect(s.initdb.dataChecksums).toBe(false);
  });

  it.each([
    [{ PGPILOT_POD_IP: undefined }, 'PGPILOT_POD_IP', /is required/],
    [{ PGPILOT_POD_IP: 'pod-1' }, 'PGPILOT_POD_IP', /IP address/],
    [{ PGDATA: 'relative/dir' }, 'PGDATA', /absolute path/],
    [{ PGPILOT_AGENT_PORT: '70000' }, 'PGPILOT_AGENT_PORT', /port number/],
    [{ PGPILOT_INITDB_DATA_CHECKSUMS: 'maybe' }, 'PGPILOT_INITDB_DATA_CHECKSUMS', /true or false/],
    [{ PGPILOT_INITDB_OWNER: 'x; DROP' }, 'PGPILOT_INITDB_OWNER', /must match/],
    [{ PGPILOT_STOP_TIMEOUT_SECONDS: '-1' }, 'PGPILOT_STOP_TIMEOUT_SECONDS', /positive/],
  ])('names the variable in errors (%o)', (override, variable, problem) => {
    let err: unknown;
    try {
      loadSettings({ ...env, ...override });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(EnvError);
    expect((err as EnvError).variable).toBe(variable);
    expect((err as EnvError).message).toMatch(problem);
    expect((err as EnvError).message).toContain(variable);
  });
});

describe('command lines', () => {
  const s = loadSettings(env);
  it('puts per-instance settings on the postgres command line', () => {
    const args = postgresArgs(s, '/var/run/postgresql');
    expect(args.slice(0, 2)).toEqual(['-D', '/var/lib/postgresql/data/pgdata']);
    const settings = Object.fromEntries(args.filter((_, i) => args[i - 1] === '-c').map((a) => a.split(/=(.*)/s).slice(0, 2) as [string, string]));
    expect(settings).toEqual({
      config_file: '/etc/pgpilot/config/postgresql.conf',
      hba_file: '/etc/pgpilot/config/pg_hba.conf',
      ident_file: '/var/lib/postgresql/data/pgdata/pg_ident.conf',
      listen_addresses: '10.0.0.7',
      port: '5432',
      unix_socket_directories: '/var/run/postgresql',
      cluster_name: 'prod-db-1',
    });
    expect(args.join(' ')).not.toContain('primary_conninfo');
  });

  it('keeps agent files next to PGDATA, never inside (clones would copy them)', () => {
    const l = layoutOf(s);
    for (const f of [l.stateDir, l.replicationPassfile, l.fencedMarker, l.bootstrapPending]) expect(f.startsWith(`${s.pgdata}/`)).toBe(false);
    expect(l.standbySignal).toBe(`${s.pgdata}/standby.signal`);
  });

  it('runs initdb with a password file, peer/scram auth and checksums', () => {
    const a = initdbArgs({ pgdata: '/d', walDir: '/w' }, s.initdb, 'postgres', '/tmp/x/pwfile');
    expect(a).toEqual(['-D', '/d', '-U', 'postgres', '--pwfile=/tmp/x/pwfile', '--auth-local=peer', '--auth-host=scram-sha-256', '--encoding=UTF8', '--locale=C.UTF-8', '--data-checksums', '--waldir=/w']);
    expect(initdbArgs({ pgdata: '/d', walDir: undefined }, { ...s.initdb, dataChecksums: false }, 'postgres', '/p')).not.toContain('--data-checksums');
  });

  it('clones with streamed WAL and a fast checkpoint, the password only in PGPASSFILE', () => {
    const a = basebackupArgs({ pgdata: '/d', walDir: undefined }, { host: '10.0.0.1', port: 5432 }, 'streaming_replica');
    expect(a).toEqual(['-D', '/d', '-h', '10.0.0.1', '-p', '5432', '-U', 'streaming_replica', '-w', '-X', 'stream', '-c', 'fast', '-P']);
  });
});

describe('postgres supervision helpers', () => {
  it('maps server log severities to log levels', () => {
    expect(serverLineLevel('2024-01-01 00:00:00 UTC [12] LOG:  database system is ready')).toBe('info');
    expect(serverLineLevel('... [12] WARNING:  x')).toBe('warn');
    expect(serverLineLevel('... [12] postgres@app FATAL:  password authentication failed')).toBe('error');
    expect(serverLineLevel('... [12] postgres@postgres FATAL:  the database system is starting up')).toBe('info');
    expect(serverLineLevel('... [12] PANIC:  could not write')).toBe('error');
    expect(serverLineLevel('... [12] DEBUG2:  x')).toBe('debug');
    expect(serverLineLevel('continuation without a severity')).toBe('info');
  });
  it('backs off restarts exponentially up to 10 s', () => {
    expect([1, 2, 3, 4, 8, 20].map(restartDelayMs)).toEqual([100, 200, 400, 800, 10_000, 10_000]);
  });
});

describe('status shaping', () => {
  const view: AgentView = { instance: 'db-1', phase: 'Running', fenced: false, running: true, restarts: 2, lastError: null, roleOnDisk: 'primary' };
  const snap: SqlSnapshot = {
    inRecovery: false,
    serverVersion: '15.18',
    systemIdentifier: '7300000000000000001',
    currentWalFile: '000000030000000000000007',
    currentLsn: '0/7000060',
    receiveLsn: null,
    replayLsn: null,
    checkpointTimeline: 2,
    walReceiverStatus: null,
    receivedTimeline: null,
    walReceiverConninfo: null,
    primaryConninfo: null,
    replication: [{ application_name: 'db-2', client_addr: '10.0.0.8', state: 'streaming', sync_state: 'quorum', sent_lsn: '0/7000060', write_lsn: '0/7000060', flush_lsn: '0/7000060', replay_lsn: '0/7000000' }],
    pendingRestart: true,
  };

  it('shapes a primary: insert timeline (not the lagging checkpoint one), walsenders', () => {
    const s = shapeStatus(view, snap);
    expect(s).toMatchObject({ role: 'primary', running: true, timeline: 3, currentLsn: '0/7000060', receiveLsn: null, following: null, streaming: false, pendingRestart: true, restarts: 2, postgresVersion: '15.18' });
    expect(s.replication).toEqual([{ applicationName: 'db-2', clientAddr: '10.0.0.8', state: 'streaming', syncState: 'quorum', sentLsn: '0/7000060', writeLsn: '0/7000060', flushLsn: '0/7000060', replayLsn: '0/7000000' }]);
  });

  it('shapes a replica: received timeline, where it follows, streaming', () => {
    const s = shapeStatus({ ...view, roleOnDisk: 'replica' }, {
      ...snap,
      inRecovery: true,
      currentWalFile: null,
      currentLsn: null,
      receiveLsn: '0/7000060',
      replayLsn: '0/7000060',
      walReceiverStatus: 'streaming',
      receivedTimeline: 3,
      primaryConninfo: 'host=10.0.0.7 port=5432 user=streaming_replica passfile=/x application_name=db-3',
      replication: [],
    });
    expect(s).toMatchObject({ role: 'replica', timeline: 3, currentLsn: null, receiveLsn: '0/7000060', following: '10.0.0.7:5432', streaming: true, replication: [] });
  });

  it('reports as received what a restarted replica already replayed', () => {
    const s = shapeStatus({ ...view, roleOnDisk: 'replica' }, { ...snap, inRecovery: true, receiveLsn: '0/7000000', replayLsn: '0/7028A20', walReceiverStatus: 'streaming', replication: [] });
    expect(s).toMatchObject({ receiveLsn: '0/7028A20', replayLsn: '0/7028A20' });
  });

  it('reports a stopped or fenced instance from what the agent knows', () => {
    const s = shapeStatus({ ...view, phase: 'Fenced', fenced: true, running: false, roleOnDisk: 'primary' }, null);
    expect(s).toMatchObject({ phase: 'Fenced', fenced: true, running: false, role: 'primary', timeline: null, systemIdentifier: null, replication: [] });
    expect(shapeStatus({ ...view, phase: 'AwaitingBootstrap', running: false, roleOnDisk: 'none' }, null).role).toBe('none');
  });
});

describe('API requests', () => {
  it('validates bootstrap and follow bodies', () => {
    expect(parseBootstrapRequest({ mode: 'initdb' })).toEqual({ mode: 'initdb' });
    expect(parseBootstrapRequest({ mode: 'clone', primary: { host: '10.0.0.1', port: 5432 } })).toEqual({ mode: 'clone', primary: { host: '10.0.0.1', port: 5432 } });
    expect(parseFollowRequest({ primary: { host: 'db-1.db.ns.svc', port: 5432 } }).primary.host).toBe('db-1.db.ns.svc');
    expect(parseBootstrapRequest({ mode: 'restore', extra: 1 })).toEqual({ mode: 'restore' });
    for (const bad of [null, [], { mode: 'recover' }, { mode: 'clone' }, { mode: 'clone', primary: { host: 'x y', port: 1 } }, { mode: 'clone', primary: { host: 'h', port: 0 } }, { mode: 'clone', primary: { host: 'h', port: '5432' } }]) {
      expect(() => parseBootstrapRequest(bad)).toThrow(HttpError);
    }
    expect(() => parseFollowRequest({ primary: { host: "h' or", port: 5432 } })).toThrow(/host/);
  });

  it('compares bearer tokens', () => {
    const token = 'abcdefghijklmnopqrstuvwxyz012345';
    expect(bearerMatches(`Bearer ${token}`, token)).toBe(true);
    expect(bearerMatches(`bearer ${token}`, token)).toBe(true);
    expect(bearerMatches(`Bearer ${token}x`, token)).toBe(false);
    expect(bearerMatches(`Basic ${token}`, token)).toBe(false);
    expect(bearerMatches(undefined, token)).toBe(false);
    expect(bearerMatches('Bearer ', '')).toBe(false);
  });
});

describe('timeline divergence', () => {
  const history = parseTimelineHistory('1\t0/5028A20\tno recovery target specified\n\n2\t0/9000000\tno recovery target specified\n');
  it('parses history files', () => {
    expect(history).toEqual([
      { timeline: 1, switchpoint: '0/5028A20' },
      { timeline: 2, switchpoint: '0/9000000' },
    ]);
    expect(() => parseTimelineHistory('x y')).toThrow(/bad timeline history/);
  });
  it('finds WAL past the switchpoint of an ended timeline', () => {
    expect(hasDiverged(history, 3, 1, '0/5028A20')).toBe(false);
    expect(hasDiverged(history, 3, 1, '0/5028A21')).toBe(true);
    expect(hasDiverged(history, 3, 2, '0/8FFFFFF')).toBe(false);
    expect(hasDiverged(history, 3, 3, '5/0')).toBe(false);
    expect(hasDiverged([], 1, 1, '0/1')).toBe(false);
    expect(hasDiverged(history, 3, 4, '0/1')).toBe(true);
  });
});
