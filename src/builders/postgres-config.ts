// postgresql.conf and pg_hba.conf for a cluster (pure). Per-instance settings (port, listen
// address, cluster_name, primary_conninfo) are not here: the instance agent passes them on the
// command line, because pg_basebackup and pg_rewind copy configuration files between instances.
import type { ClusterSpec } from '../api/cluster.js';
import { PARAMETER_NAME_PATTERN } from '../api/cluster.js';
import { SpecError } from '../api/spec-error.js';
import { archiveCommand } from '../postgres/handoff.js';
import { resolveSpec } from '../api/resolve-spec.js';
import { computeTuning, tunedParameters } from './tuning.js';
import type { TuningStatus } from '../api/cluster-status.js';
import { TLS_FILES, TLS_SERVER_DIR } from '../api/tls.js';

/**
 * Where the instance agent leaves its "archived" markers: `<PGDATA's parent>/.pgpilot/archived`
 * (src/instance/layout.ts archiveMarkerDir), outside PGDATA so pg_basebackup never copies them.
 */
export const ARCHIVE_MARKER_DIR = '/var/lib/postgresql/data/.pgpilot/archived';

/** WAL archiving as the cluster's backup target allows: off without a target. */
export interface ArchiveSettings {
  timeoutSeconds: number;
}

export const REPLICATION_USER = 'streaming_replica';
/**
 * `synchronous_standby_names`: a quorum over every replica's application_name. With durability
 * `preferred`, while fewer replicas stream than the quorum needs, commits stop waiting for them
 * (streamingReplicas is what the ha reconciler last saw; unknown counts as enough).
 */
export function synchronousStandbyNames(spec: ClusterSpec, streamingReplicas?: number): string {
  const ha = resolveSpec(spec).highAvailability;
  if (!ha.synchronousCommit) return '';
  const n = ha.synchronousReplicas;
  if (ha.durability === 'preferred' && streamingReplicas !== undefined && streamingReplicas < n) return '';
  return `ANY ${n} (*)`;
}

/** Parameters the operator sets and the API refuses from users (OPERATOR_MANAGED_PARAMETERS). */
function managedParameters(spec: ClusterSpec, streamingReplicas?: number, archive?: ArchiveSettings): Record<string, string> {
  return {
    // archive_command hands each segment to the instance agent, which has usually uploaded it
    // already; it returns only once the segment is durably in the store (synchronous archiving).
    archive_mode: archive ? 'on' : 'off',
    archive_command: archive ? archiveCommand(ARCHIVE_MARKER_DIR) : '',
    archive_timeout: archive ? `${archive.timeoutSeconds}s` : '0',
    wal_level: 'replica',
    hot_standby: 'on',
    wal_log_hints: 'on',
    synchronous_standby_names: synchronousStandbyNames(spec, streamingReplicas),
    logging_collector: 'off',
    log_destination: 'stderr',
    // The server certificate Secret as the kubelet mounts it (mode 0640, group fsGroup, owned by
    // root: PostgreSQL accepts a root-owned key readable by its group). A renewal rewrites the
    // files and the agent reloads (pg_reload_conf re-reads them); the agent turns ssl off for a
    // pod made before TLS, which has no such files (layout.ts postgresArgs).
    ssl: 'on',
    ssl_cert_file: `${TLS_SERVER_DIR}/${TLS_FILES.cert}`,
    ssl_key_file: `${TLS_SERVER_DIR}/${TLS_FILES.key}`,
    ssl_ca_file: `${TLS_SERVER_DIR}/${TLS_FILES.ca}`,
    ssl_min_protocol_version: 'TLSv1.3',
  };
}

/** Defaults a user may override (max_connections comes with the tuned settings). */
function defaultParameters(spec: ClusterSpec): Record<string, string> {
  return {
    max_wal_senders: '10',
    max_replication_slots: '10',
    // Physical slots do not follow a failover: keep enough WAL for replicas to reconnect.
    wal_keep_size: '512MB',
    // A replica whose primary was down retries after this (PostgreSQL's default is 5 s): after a
    // primary restarts in place and is confirmed, synchronous commits wait for that reconnection.
    wal_retrieve_retry_interval: '500ms',
    password_encryption: 'scram-sha-256',
    log_line_prefix: '%m [%p] %q%u@%d ',
    log_checkpoints: 'on',
    ...tunedParameters(spec),
  };
}

/** "128MB", "65536kB", "1GB" → bytes; undefined when not a size PostgreSQL would read the same way. */
function settingBytes(v: string | undefined): number | undefined {
  const m = /^\s*(\d+)\s*(B|kB|MB|GB|TB)?\s*$/.exec(v ?? '');
  if (!m) return undefined;
  const unit = { B: 1, kB: 2 ** 10, MB: 2 ** 20, GB: 2 ** 30, TB: 2 ** 40 }[m[2] ?? 'MB']!;
  return Number(m[1]) * unit;
}

/**
 * Settings the autopilot's corrections raised (status.anomalies: max_wal_size): above the tuned
 * value — one below it (the volume grew since) is ignored — and below the user's parameters.
 */
function raisedParameters(tuned: Record<string, string>, raised: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(raised).filter(([k, v]) => (settingBytes(v) ?? 0) > (settingBytes(tuned[k]) ?? 0)));
}

/** `raised`: values the anomaly corrections set (status.anomalies.maxWalSize), by parameter name. */
export function postgresParameters(spec: ClusterSpec, streamingReplicas?: number, archive?: ArchiveSettings, raised: Record<string, string> = {}): Record<string, string> {
  const user = spec.postgresql?.parameters ?? {};
  // The API refuses these already; a spec admitted by an older CRD still must not inject lines.
  for (const [name, value] of Object.entries(user)) {
    if (!new RegExp(PARAMETER_NAME_PATTERN).test(name)) throw new SpecError(`spec.postgresql.parameters[${JSON.stringify(name)}]`, 'is not a PostgreSQL parameter name');
    if (/[\r\n]/.test(value)) throw new SpecError(`spec.postgresql.parameters.${name}`, 'may not contain a line break');
  }
  const defaults = defaultParameters(spec);
  return { ...defaults, ...raisedParameters(defaults, raised), ...user, ...managedParameters(spec, streamingReplicas, archive) };
}

function quote(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
}

export function renderPostgresqlConf(spec: ClusterSpec, streamingReplicas?: number, archive?: ArchiveSettings, raised: Record<string, string> = {}): string {
  const params = postgresParameters(spec, streamingReplicas, archive, raised);
  const lines = Object.keys(params)
    .sort()
    .map((k) => `${k} = ${quote(params[k]!)}`);
  return ['# Managed by pgpilot; edit spec.postgresql.parameters of the PostgreSQLCluster instead.', ...lines, ''].join('\n');
}

/**
 * The user's pg_hba lines as they go into the file: while TLS is required, "host" (any network
 * connection) becomes "hostssl" and "hostnossl" is refused, so no line admits plain TCP.
 */
export function userHbaLines(spec: ClusterSpec, tlsRequired: boolean): string[] {
  return (spec.postgresql?.pg_hba ?? []).map((line, i) => {
    // The API refuses these already; a spec admitted by an older CRD still must not inject rules.
    if (/[\r\n]/.test(line)) throw new SpecError(`spec.postgresql.pg_hba[${i}]`, 'may not contain a line break');
    if (!tlsRequired) return line;
    if (/^hostnossl\s/.test(line)) throw new SpecError(`spec.postgresql.pg_hba[${i}]`, 'is a "hostnossl" line, which TLS being required (spec.tls.required) does not allow');
    return line.replace(/^host(\s)/, 'hostssl$1');
  });
}

/** pg_hba.conf; `tlsRequired`: network lines are hostssl only (tlsRequired in api/tls.ts). */
export function renderPgHba(spec: ClusterSpec, tlsRequired: boolean): string {
  const net = tlsRequired ? 'hostssl' : 'host   ';
  return [
    '# Managed by pgpilot; edit spec.postgresql.pg_hba (and spec.tls) of the PostgreSQLCluster instead.',
    '# TYPE  DATABASE     USER                 ADDRESS   METHOD',
    // First, so that no user rule can lock the instance agent out of its own server.
    'local   all          postgres                       peer',
    ...userHbaLines(spec, tlsRequired),
    'local   all          all                            peer',
    // TLS required: replication logs in with its client certificate (CN = the user), no password.
    tlsRequired ? `hostssl replication  ${REPLICATION_USER}    all       cert` : `host    replication  ${REPLICATION_USER}    all       scram-sha-256`,
    `${net} all          all                  all       scram-sha-256`,
    '',
  ].join('\n');
}

/** status.tuning: what was tuned, why, and which values spec.postgresql.parameters replaced. */
export function tuningStatus(spec: ClusterSpec): TuningStatus {
  const t = computeTuning(spec);
  const user = spec.postgresql?.parameters ?? {};
  return {
    profile: t.profile,
    storageType: t.storageType,
    ...(t.memory !== undefined ? { memory: t.memory } : {}),
    ...(t.cpu !== undefined ? { cpu: t.cpu } : {}),
    connections: t.connections,
    settings: Object.entries(t.settings)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([name, v]) => (user[name] !== undefined ? { name, value: user[name], tuned: v.value, reason: `spec.postgresql.parameters (tuned: ${v.reason})` } : { name, value: v.value, reason: v.reason })),
  };
}
