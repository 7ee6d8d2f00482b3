// postgresql.conf and pg_hba.conf from the spec (pure).
import { describe, expect, it } from 'vitest';
import { OPERATOR_MANAGED_PARAMETERS } from '../api/cluster.js';
import { configMap } from './configmap.js';
import { ARCHIVE_MARKER_DIR, postgresParameters, renderPgHba, renderPostgresqlConf, synchronousStandbyNames, tuningStatus } from './postgres-config.js';
import { seedCluster } from '../../test/support/cluster-fixtures.js';
import { clusterCrd } from '../api/crd.js';
import { archiveCommand } from '../postgres/handoff.js';

describe('postgresql.conf', () => {
  const seedSpec = () => seedCluster().spec;

  it('lets user parameters override tuned ones', () => {
    const params = postgresParameters(seedCluster({ postgresql: { parameters: { shared_buffers: '3GB', max_connections: '300' } } }).spec);
    expect(params.shared_buffers).toBe('3GB');
    expect(params.max_connections).toBe('300');
    expect(params.effective_cache_size).toBe('6144MB');
    const status = tuningStatus(seedCluster({ postgresql: { parameters: { shared_buffers: '3GB' } } }).spec);
    expect(status).toMatchObject({ profile: 'mixed', storageType: 'ssd', memory: '8Gi', cpu: '4', connections: 100 });
    expect(status.settings.find((x) => x.name === 'shared_buffers')).toEqual({ name: 'shared_buffers', value: '3GB', tuned: '2048MB', reason: 'spec.postgresql.parameters (tuned: 25% of 8Gi memory)' });
    expect(status.settings.find((x) => x.name === 'work_mem')).toEqual({ name: 'work_mem', value: '5242kB', reason: '(memory - shared_buffers) / (100 connections × 3) / 2 workers per gather / 2 (mixed)' });
  });

  it('never lets user parameters override the replication settings it manages', () => {
    const user = { wal_level: 'minimal', hot_standby: 'off', wal_log_hints: 'off', synchronous_standby_names: 'nobody' };
    const params = postgresParameters(seedCluster({ postgresql: { parameters: user } }).spec);
    expect(params).toMatchObject({ wal_level: 'replica', hot_standby: 'on', wal_log_hints: 'on', synchronous_standby_names: 'ANY 1 (*)' });
  });

  // Regression (fixed): postgresParameters() forces max_wal_senders, max_replication_slots, wal_keep_size,
  // password_encryption, logging_collector, log_destination, log_line_prefix and log_checkpoints,
  // but the API (OPERATOR_MANAGED_PARAMETERS and its CEL rule) accepts them: a user's
  // `max_wal_senders: "20"` is admitted and then silently dropped. Either refuse them in the API
  // or let the user's value win.
  it('every parameter the operator forces is one the API refuses', () => {
    const forced = Object.keys(postgresParameters(seedSpec())).filter((k) => {
      const spec = seedCluster({ postgresql: { parameters: { [k]: 'user-value' } } }).spec;
      return postgresParameters(spec)[k] !== 'user-value';
    });
    expect(forced.filter((k) => !(OPERATOR_MANAGED_PARAMETERS as readonly string[]).includes(k))).toEqual([]);
  });

  it('sets a quorum of synchronous standbys only with synchronousCommit', () => {
    expect(synchronousStandbyNames(seedSpec())).toBe('ANY 1 (*)');
    expect(synchronousStandbyNames(seedCluster({ highAvailability: { synchronousCommit: true, synchronousReplicas: 2 } }).spec)).toBe('ANY 2 (*)');
    expect(synchronousStandbyNames(seedCluster({ highAvailability: { enabled: true, synchronousCommit: false } }).spec)).toBe('');
    expect(synchronousStandbyNames(seedCluster({ highAvailability: undefined }).spec)).toBe('');
  });

  it('renders one sorted, quoted line per parameter, doubling quotes and backslashes', () => {
    const conf = renderPostgresqlConf(seedCluster({ postgresql: { parameters: { application_name: "it's", search_path: '"$user", public', log_directory: 'C:\\logs' } } }).spec);
    const lines = conf.split('\n').filter((l) => l && !l.startsWith('#'));
    expect(lines).toContain("application_name = 'it''s'");
    expect(lines).toContain('search_path = \'"$user", public\'');
    expect(lines).toContain("log_directory = 'C:\\\\logs'");
    expect(lines).toContain("synchronous_standby_names = 'ANY 1 (*)'");
    const keys = lines.map((l) => l.split(' = ')[0]!);
    expect(keys).toEqual([...keys].sort());
    expect(conf.endsWith('\n')).toBe(true);
  });

  // Regression (fixed): parameter names are not validated anywhere (the API's CEL rule only compares them with
  // OPERATOR_MANAGED_PARAMETERS) and values may hold newlines; renderPostgresqlConf() writes both
  // verbatim. A name such as "work_mem = '4MB'\narchive_command" injects a line that sets a
  // refused parameter, and a value with a newline leaves an unterminated string that stops
  // PostgreSQL from starting. Names should match ^[a-z_][a-z0-9_.]*$ (in the API) and values
  // should escape newlines ('\n').
  it('refuses a parameter name or value that would inject a line, naming it', () => {
    const badName = { "work_mem = '4MB'\narchive_command": 'curl evil' };
    expect(() => renderPostgresqlConf(seedCluster({ postgresql: { parameters: badName } }).spec)).toThrow(/spec\.postgresql\.parameters\[.*archive_command.*\]: is not a PostgreSQL parameter name/);
    const badValue = { application_name: 'two\nlines' };
    expect(() => renderPostgresqlConf(seedCluster({ postgresql: { parameters: badValue } }).spec)).toThrow('spec.postgresql.parameters.application_name: may not contain a line break');
    const fine = renderPostgresqlConf(seedCluster({ postgresql: { parameters: { 'pg_stat_statements.max': '5000' } } }).spec);
    expect(fine).toContain("pg_stat_statements.max = '5000'");
  });
});

describe('pg_hba.conf', () => {
  const CATCH_ALL = 'host    all          all                  all       scram-sha-256';
  const REPLICATION = /^host\s+replication\s+streaming_replica\s+all\s+scram-sha-256$/m;

  it('always allows the replication user, with or without user rules', () => {
    expect(renderPgHba(seedCluster().spec, false)).toMatch(REPLICATION);
    expect(renderPgHba(seedCluster({ postgresql: { pg_hba: ['host all all 10.0.0.0/8 md5'] } }).spec, false)).toMatch(REPLICATION);
  });

  it('puts user rules, in order, before the operator\'s catch-all rule', () => {
    const user = ['hostssl app app 10.0.0.0/8 scram-sha-256', 'host all all 0.0.0.0/0 reject'];
    const lines = renderPgHba(seedCluster({ postgresql: { pg_hba: user } }).spec, false).split('\n');
    const at = (l: string) => lines.indexOf(l);
    expect(at(user[0]!)).toBeGreaterThan(-1);
    expect(at(user[0]!)).toBeLessThan(at(user[1]!));
    expect(at(user[1]!)).toBeLessThan(at(CATCH_ALL));
    expect(lines.findIndex((l) => REPLICATION.test(l))).toBeGreaterThan(at(user[1]!));
  });

  it('ends with the catch-all rule', () => {
    expect(renderPgHba(seedCluster().spec, false).trimEnd().split('\n').at(-1)).toBe(CATCH_ALL);
    expect(() => renderPgHba(seedCluster({ postgresql: { pg_hba: ['host all all 10.0.0.0/8 md5\nhost all all 0.0.0.0/0 trust'] } }).spec, false)).toThrow(/spec\.postgresql\.pg_hba\[0\].*line break/);
  });

  it('puts a max_wal_size the anomaly correction raised above the tuned value and below the user\'s', () => {
    const spec = seedCluster().spec;
    const tuned = postgresParameters(spec).max_wal_size!;
    expect(postgresParameters(spec, undefined, undefined, { max_wal_size: '100000MB' }).max_wal_size).toBe('100000MB');
    // Below the tuned value (the volume grew since): the tuned one.
    expect(postgresParameters(spec, undefined, undefined, { max_wal_size: '64MB' }).max_wal_size).toBe(tuned);
    expect(postgresParameters(seedCluster({ postgresql: { parameters: { max_wal_size: '2GB' } } }).spec, undefined, undefined, { max_wal_size: '100000MB' }).max_wal_size).toBe('2GB');
    const raised = seedCluster();
    raised.status = { anomalies: { maxWalSize: { value: '100000MB', reason: 'forced', since: '2026-03-01T00:00:00Z' } } };
    expect(configMap(raised).data!['postgresql.conf']).toContain("max_wal_size = '100000MB'");
  });

  it('ships both files in the cluster\'s ConfigMap', () => {
    const cm = configMap(seedCluster());
    expect(cm.metadata?.name).toBe('prod-db-config');
    expect(cm.data).toEqual({ 'postgresql.conf': renderPostgresqlConf(seedCluster().spec), 'pg_hba.conf': renderPgHba(seedCluster().spec, true) });
  });
});

describe('TLS in pg_hba.conf and postgresql.conf', () => {
  const network = (hba: string) => hba.split('\n').filter((l) => /^host/.test(l));

  it('has only hostssl network lines while TLS is required, user "host" lines included', () => {
    const hba = renderPgHba(seedCluster({ postgresql: { pg_hba: ['host app app 10.0.0.0/8 scram-sha-256', 'hostssl all all 0.0.0.0/0 reject'] } }).spec, true);
    expect(network(hba).length).toBe(4);
    for (const l of network(hba)) expect(l).toMatch(/^hostssl\s/);
    expect(hba).toContain('hostssl app app 10.0.0.0/8 scram-sha-256');
    // Replication logs in with its client certificate only: no password is accepted for it.
    expect(hba).toMatch(/^hostssl\s+replication\s+streaming_replica\s+all\s+cert$/m);
    expect(hba).not.toMatch(/replication.*scram/);
    expect(hba.trimEnd().split('\n').at(-1)).toMatch(/^hostssl\s+all\s+all\s+all\s+scram-sha-256$/);
  });

  it('keeps host lines (TLS or not) when TLS is not required', () => {
    const hba = renderPgHba(seedCluster({ postgresql: { pg_hba: ['hostnossl app app 10.0.0.0/8 scram-sha-256'] } }).spec, false);
    expect(hba).toContain('hostnossl app app 10.0.0.0/8 scram-sha-256');
    expect(network(hba).slice(1).every((l) => /^host\s/.test(l))).toBe(true);
  });

  it('refuses a hostnossl user line while TLS is required, naming the field', () => {
    expect(() => renderPgHba(seedCluster({ postgresql: { pg_hba: ['hostnossl all all 0.0.0.0/0 trust'] } }).spec, true)).toThrow(/spec\.postgresql\.pg_hba\[0\].*hostnossl/);
  });

  it('turns TLS on with the mounted server certificate and TLS 1.3 as the minimum', () => {
    const conf = renderPostgresqlConf(seedCluster().spec);
    expect(conf).toContain("ssl = 'on'");
    expect(conf).toContain("ssl_cert_file = '/etc/pgpilot/tls/server/tls.crt'");
    expect(conf).toContain("ssl_key_file = '/etc/pgpilot/tls/server/tls.key'");
    expect(conf).toContain("ssl_ca_file = '/etc/pgpilot/tls/server/ca.crt'");
    expect(conf).toContain("ssl_min_protocol_version = 'TLSv1.3'");
  });

  it('requires TLS for a new cluster and not for one an older operator ran, unless spec.tls says', () => {
    const hbaOf = (c: ReturnType<typeof seedCluster>) => configMap(c).data!['pg_hba.conf']!;
    expect(hbaOf(seedCluster())).toMatch(/^hostssl\s+all/m);
    const legacy = seedCluster();
    legacy.status = { phase: 'Healthy' };
    expect(hbaOf(legacy)).not.toMatch(/^hostssl/m);
    legacy.status = { phase: 'Healthy', tls: { requiredByDefault: true } };
    expect(hbaOf(legacy)).toMatch(/^hostssl\s+all/m);
    const optOut = seedCluster({ tls: { required: false } });
    expect(hbaOf(optOut)).not.toMatch(/^hostssl/m);
  });
});

function parseConfLine(line: string): [string, string] {
  const m = /^([a-z_][a-z0-9_.]*) = '((?:[^'\\]|''|\\.)*)'$/.exec(line);
  if (!m) throw new Error(`not a well-quoted postgresql.conf line: ${line}`);
  const raw = m[2]!;
  const escapes: Record<string, string> = { b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };
  let out = '';
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i]!;
    if (c === "'") {
      out += "'";
      i++;
    } else if (c === '\\') {
      const n = raw[++i]!;
      out += escapes[n] ?? n;
    } else out += c;
  }
  return [m[1]!, out];
}

function confParams(conf: string): Record<string, string> {
  return Object.fromEntries(conf.split('\n').filter((l) => l && !l.startsWith('#')).map(parseConfLine));
}

describe('WAL archiving in postgresql.conf', () => {
  const spec = () => seedCluster().spec;

  it('off without an archive target', () => {
    const p = confParams(renderPostgresqlConf(spec()));
    expect(p.archive_mode).toBe('off');
    expect(p.archive_command).toBe('');
    expect(p.archive_timeout).toBe('0');
  });

  it('on with one: the handoff command on ARCHIVE_MARKER_DIR, quotes doubled, and archive_timeout in seconds', () => {
    const conf = renderPostgresqlConf(spec(), undefined, { timeoutSeconds: 7 });
    const p = confParams(conf);
    expect(p.archive_mode).toBe('on');
    expect(p.archive_timeout).toBe('7s');
    const command = archiveCommand(ARCHIVE_MARKER_DIR);
    expect(command).toContain("'"); // otherwise the quoting check proves nothing
    expect(command).toContain(ARCHIVE_MARKER_DIR);
    expect(p.archive_command).toBe(command);
    const line = conf.split('\n').find((l) => l.startsWith('archive_command = '))!;
    // Inside the quoted value, every quote is doubled: removing the pairs leaves no quote.
    const inner = line.slice("archive_command = '".length, -1);
    expect(inner.replace(/''/g, '')).not.toContain("'");
    expect(inner).toBe(command.replace(/'/g, "''"));
  });

  it('the operator owns archive_mode, archive_command and archive_timeout, and the API refuses them', () => {
    for (const k of ['archive_mode', 'archive_command', 'archive_timeout'] as const) {
      expect(OPERATOR_MANAGED_PARAMETERS).toContain(k);
      const user = seedCluster({ postgresql: { parameters: { [k]: 'user-value' } } }).spec;
      expect(postgresParameters(user)[k]).not.toBe('user-value');
      expect(postgresParameters(user, undefined, { timeoutSeconds: 5 })[k]).not.toBe('user-value');
    }
    const rule = JSON.stringify(clusterCrd());
    expect(rule).toMatch(/self\.all\(k, !\(k in \[[^\]]*'archive_timeout'/);
  });
});
