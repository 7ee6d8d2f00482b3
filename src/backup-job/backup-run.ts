// `pgpilot backup`: one base backup of a cluster, run by a CronJob's Job (scheduled) or by the
// Job of an on-demand PostgreSQLBackup. The PostgreSQLBackup resource is the record: this module
// moves it through running to completed or failed, takes the backup from the chosen instance
// (base-backup.ts) and applies the retention afterwards.
//
// Kubernetes is reached only through BackupKube (backup-kube.ts has the real one), so the run can
// be tested against real PostgreSQL and S3 with a fake API server. The decisions (which instance,
// what goes into status, which resources expire) are pure functions below, unit-tested.
import { libpqTlsFromEnv, tlsFromEnv } from '../postgres/tls-client.js';
import type { V1Pod, V1PodSpec } from '@kubernetes/client-node';
import type { BackupDestination, BackupStatus, PostgreSQLBackup } from '../api/backup.js';
import { DEFAULTS, type BackupTarget, type PostgreSQLCluster, type S3Credentials, type S3Target } from '../api/cluster.js';
import { ANNOTATIONS, API_GROUP_VERSION, BACKUP_KIND, LABELS, POSTGRES_PORT, ROLE_PRIMARY, ROLE_REPLICA } from '../api/constants.js';
import { clusterLabels } from '../api/labels.js';
import { names } from '../api/names.js';
import { readCredentials as readCredentialsFromFiles, type Credentials } from '../postgres/files.js';
import { withClient, type Endpoint } from '../postgres/sql.js';
import { apiErrorMessage } from '../runtime/apply.js';
import { backupEventTarget, clusterEventTarget, type EventTarget, type EventType } from '../runtime/events.js';
import type { Logger } from '../runtime/logger.js';
import type { BackupManifest } from '../backup/archive-layout.js';
import { takeBaseBackup as takeBaseBackupImpl, type BaseBackupOptions } from '../backup/base-backup.js';
import { listBackups, listWal } from '../backup/catalog.js';
import type { ObjectStore } from '../backup/object-store.js';
import { applyRetention, describeRetention, planRetention, type RetentionPolicy, type RetentionResult } from '../backup/retention.js';
import type { ArchiveLocation, S3CredentialEnv, S3CredentialFiles, S3StoreConfig } from '../backup/store-config.js';
import { errorText } from '../util/error-text.js';

/** Status fields are written by merge patch: null removes a field. */
export type BackupStatusPatch = { [K in keyof BackupStatus]?: BackupStatus[K] | null };

/** The Kubernetes calls of a backup run, all in the run's namespace. */
export interface BackupKube {
  getCluster(name: string): Promise<PostgreSQLCluster | null>;
  /** Pods labelled as instances of the cluster (LABELS.cluster, component instance). */
  listInstancePods(cluster: string): Promise<V1Pod[]>;
  /** Pods of a Job (label job-name), to read how this pod reaches the store. */
  listJobPods(job: string): Promise<V1Pod[]>;
  getBackup(name: string): Promise<PostgreSQLBackup | null>;
  /** Creates it; null when one of that name exists already. */
  createBackup(body: PostgreSQLBackup): Promise<PostgreSQLBackup | null>;
  /** Merge patch of the status subresource. */
  patchBackupStatus(name: string, status: BackupStatusPatch): Promise<void>;
  listBackups(): Promise<PostgreSQLBackup[]>;
  /** Deletes the resource if it still has this uid; absent is not an error. */
  deleteBackup(name: string, uid: string | undefined): Promise<void>;
  /** Never throws: an event that cannot be written must not change the outcome. */
  recordEvent(target: EventTarget, type: EventType, reason: string, message: string): Promise<void>;
}

export interface BackupRunSettings {
  namespace: string;
  cluster: string;
  /** --backup: an existing PostgreSQLBackup to take; undefined: a scheduled run, named after the Job. */
  backupName: string | undefined;
  /** The Job running this pod (PGPILOT_JOB_NAME); required for a scheduled run. */
  job: string | undefined;
  /** superuser/ and replication/ with username and password files. */
  secretsDir: string;
  /** gzip level, 1-9. */
  level: number;
  retention: RetentionPolicy;
  location: ArchiveLocation;
  /** Directory of pg_basebackup. */
  pgBin: string;
}

export interface BackupRunDeps {
  kube: BackupKube;
  /** The store of settings.location (openStore). */
  store: ObjectStore;
  settings: BackupRunSettings;
  log: Logger;
  /** Aborted on SIGTERM: the run stops and records the backup as failed ("interrupted"). */
  signal?: AbortSignal;
  /** How to reach PostgreSQL on a pod IP; <ip>:5432 by default (tests map IPs to local ports). */
  endpointOf?: (podIP: string) => Endpoint;
  /** status.progressBytes is written at most this often; 5 s by default. */
  progressIntervalMs?: number;
  /** Overrides for tests. */
  takeBaseBackup?: (o: BaseBackupOptions) => Promise<BackupManifest>;
  readCredentials?: (secretsDir: string, kind: 'superuser' | 'replication') => Promise<Credentials>;
  /** Options passed on to takeBaseBackup (walTimeoutMs, pollMs), for tests. */
  baseBackupOptions?: Partial<Pick<BaseBackupOptions, 'walTimeoutMs' | 'pollMs'>>;
  now?: () => Date;
}

export type BackupOutcome = 'completed' | 'already-completed' | 'failed' | 'invalid';

export interface BackupRunResult {
  outcome: BackupOutcome;
  /** 0 completed (or nothing to do), 1 failed, 2 bad arguments (the named backup is absent or of another cluster). */
  exitCode: 0 | 1 | 2;
  backupName: string | undefined;
  backupId?: string;
  error?: string;
  retention?: RetentionReport;
}

export interface RetentionReport {
  policy: string;
  removed: RetentionResult;
  /** Names of the PostgreSQLBackups deleted with their base backups. */
  resources: string[];
  error?: string;
}

/** A failure of the arguments rather than of the backup: exit code 2. */
export class BackupArgumentError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BackupArgumentError';
  }
}

// ---------------------------------------------------------------------------------------------
// Pure decisions

/** The PostgreSQLBackup a scheduled run creates: named after its Job, not owned by the cluster. */
export function scheduledBackupResource(cluster: string, namespace: string, job: string): PostgreSQLBackup {
  return {
    apiVersion: API_GROUP_VERSION,
    kind: BACKUP_KIND,
    metadata: {
      name: job,
      namespace,
      // Backups outlive their cluster (a restore needs them after it is gone): no ownerReference.
      labels: { ...clusterLabels(cluster, 'backup'), [LABELS.scheduled]: 'true' },
      annotations: { [ANNOTATIONS.backupJob]: job },
    },
    spec: { cluster: { name: cluster } },
  };
}

/** Why a PostgreSQLBackup named with --backup cannot be taken by this run, or null. */
export function namedBackupProblem(backup: PostgreSQLBackup | null, name: string, cluster: string, namespace: string): string | null {
  if (!backup) return `PostgreSQLBackup ${namespace}/${name} does not exist (--backup ${name})`;
  const of = backup.spec?.cluster?.name;
  if (of !== cluster) return `PostgreSQLBackup ${namespace}/${name} is a backup of cluster ${of ?? '(none)'}, not of ${cluster} (--cluster ${cluster})`;
  return null;
}

/** What the backup needs to know about one instance pod. */
export interface InstancePod {
  instance: string;
  pod: string;
  /** LABELS.role: primary or replica, set by the operator on running instances. */
  role: string | undefined;
  ready: boolean;
  ip: string | undefined;
  phase: string | undefined;
  terminating: boolean;
}

export function instancePod(pod: V1Pod): InstancePod {
  const labels = pod.metadata?.labels ?? {};
  return {
    instance: labels[LABELS.instance] ?? pod.metadata?.name ?? '(unnamed)',
    pod: pod.metadata?.name ?? '(unnamed)',
    role: labels[LABELS.role] || undefined,
    ready: (pod.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True'),
    ip: pod.status?.podIP || undefined,
    phase: pod.status?.phase,
    terminating: Boolean(pod.metadata?.deletionTimestamp),
  };
}

const usable = (p: InstancePod) => p.ready && p.ip !== undefined && !p.terminating;

/** "prod-db-1 (primary, Running, not ready)" */
export function describeInstance(p: InstancePod): string {
  const parts = [p.role ?? 'no role label', p.phase ?? 'phase unknown', p.ready ? 'ready' : 'not ready'];
  if (!p.ip) parts.push('no pod IP');
  if (p.terminating) parts.push('terminating');
  return `${p.instance} (${parts.join(', ')})`;
}

export type InstanceChoice =
  | { ok: true; instance: InstancePod; fromReplica: boolean; primary: InstancePod | undefined }
  | { ok: false; error: string };

/**
 * Which instance to back up. primary: the ready primary. prefer-standby: a ready replica when
 * there is one (the first by name), else the ready primary. The primary is the instance
 * status.currentPrimary names, or without it the one pod labelled primary; a replica is a pod
 * labelled replica that is not the primary. `primary` is returned for the WAL switch a backup
 * from a replica needs.
 */
export function chooseInstance(pods: InstancePod[], currentPrimary: string | undefined, target: BackupTarget): InstanceChoice {
  const sorted = [...pods].sort((a, b) => a.instance.localeCompare(b.instance, 'en', { numeric: true }));
  const labelledPrimaries = sorted.filter((p) => p.role === ROLE_PRIMARY);
  const primaryPod = currentPrimary !== undefined ? sorted.find((p) => p.instance === currentPrimary) : labelledPrimaries.length === 1 ? labelledPrimaries[0] : undefined;
  const primary = primaryPod && usable(primaryPod) ? primaryPod : undefined;
  if (target === 'prefer-standby') {
    const replica = sorted.find((p) => p.role === ROLE_REPLICA && p.instance !== primaryPod?.instance && usable(p));
    if (replica) return { ok: true, instance: replica, fromReplica: true, primary };
  }
  if (primary) return { ok: true, instance: primary, fromReplica: false, primary };
  const which = currentPrimary !== undefined ? `the primary ${currentPrimary}` : labelledPrimaries.length > 1 ? `a primary (${labelledPrimaries.length} pods are labelled primary)` : 'a primary';
  const want = target === 'primary' ? `target primary needs ${which}, ready` : `target prefer-standby needs a ready replica or ${which}, ready`;
  const found = sorted.length === 0 ? 'no instance pods were found' : `instances: ${sorted.map(describeInstance).join('; ')}`;
  return { ok: false, error: `no instance to take the backup from: ${want}; ${found}` };
}

/** The Secret volume mounted at the folder of both credential files; keys by file name (or the volume's items). */
function secretOfFiles(spec: V1PodSpec | undefined, files: S3CredentialFiles): S3Credentials | undefined {
  const dir = (f: string) => f.slice(0, f.lastIndexOf('/'));
  const base = (f: string) => f.slice(f.lastIndexOf('/') + 1);
  if (dir(files.accessKeyIdFile) !== dir(files.secretAccessKeyFile)) return undefined;
  const mount = (spec?.containers ?? []).flatMap((c) => c.volumeMounts ?? []).find((m) => m.mountPath.replace(/\/+$/, '') === dir(files.accessKeyIdFile));
  const secret = mount ? spec?.volumes?.find((v) => v.name === mount.name)?.secret : undefined;
  if (!secret?.secretName) return undefined;
  const keyOf = (file: string) => secret.items?.find((i) => i.path === base(file))?.key ?? base(file);
  return { secretName: secret.secretName, accessKeyIdKey: keyOf(files.accessKeyIdFile), secretAccessKeyKey: keyOf(files.secretAccessKeyFile) };
}

/** The one Secret both credential variables reference. */
function secretOfVariables(spec: V1PodSpec | undefined, vars: S3CredentialEnv): S3Credentials | undefined {
  const env = (spec?.containers ?? []).flatMap((c) => c.env ?? []);
  const id = env.find((e) => e.name === vars.accessKeyIdEnv)?.valueFrom?.secretKeyRef;
  const secret = env.find((e) => e.name === vars.secretAccessKeyEnv)?.valueFrom?.secretKeyRef;
  if (!id?.name || !secret?.name || id.name !== secret.name) return undefined;
  return { secretName: id.name, accessKeyIdKey: id.key, secretAccessKeyKey: secret.key };
}

/**
 * The Secret behind a pod's S3 credentials, when both come from one Secret: the Secret volume
 * mounted where the credential files are (what the operator builds), or the secretKeyRef of the
 * credential variables (pods of older versions).
 */
export function s3CredentialsFromPodSpec(spec: V1PodSpec | undefined, store: S3StoreConfig): S3Credentials | undefined {
  return 'accessKeyIdFile' in store ? secretOfFiles(spec, store) : secretOfVariables(spec, store);
}

/** The PersistentVolumeClaim a pod spec mounts at mountPath. */
export function claimFromPodSpec(spec: V1PodSpec | undefined, mountPath: string): string | undefined {
  const norm = (p: string) => p.replace(/\/+$/, '');
  const mount = (spec?.containers ?? []).flatMap((c) => c.volumeMounts ?? []).find((m) => norm(m.mountPath) === norm(mountPath));
  return mount ? spec?.volumes?.find((v) => v.name === mount.name)?.persistentVolumeClaim?.claimName : undefined;
}

/**
 * status.destination: the store as this pod reaches it (the location JSON) and where its
 * credentials are (the Secret behind the credential variables of this pod, else the cluster's
 * spec.backup.s3, else the operator's copy of the default store's), so that a restore can find the
 * backup after its cluster is gone. `path` is the cluster's archive path in full, as
 * spec.bootstrap.recovery.source.path takes it.
 */
export function backupDestination(location: ArchiveLocation, cluster: string, spec: PostgreSQLCluster['spec'] | undefined, podSpec: V1PodSpec | undefined): BackupDestination {
  const st = location.store;
  if (st.kind === 'volume') {
    const claimName = claimFromPodSpec(podSpec, st.path) ?? spec?.backup?.volume?.claimName;
    return claimName ? { volume: { claimName }, path: location.path } : { path: location.path };
  }
  const own = spec?.backup?.s3;
  const credentials =
    s3CredentialsFromPodSpec(podSpec, st) ??
    (own && own.bucket === st.bucket ? own.credentials : { secretName: names.backupCredentials(cluster) });
  const s3: S3Target = {
    ...(st.endpoint ? { endpoint: st.endpoint } : {}),
    bucket: st.bucket,
    region: st.region,
    forcePathStyle: st.forcePathStyle,
    checksums: st.checksums,
    ...(st.serverSideEncryption ? { serverSideEncryption: st.serverSideEncryption } : {}),
    ...(st.insecureSkipTlsVerify ? { insecureSkipTlsVerify: true } : {}),
    credentials,
  };
  return { s3, path: location.path };
}

/** The backup's target: its own spec.target, else the cluster's spec.backup.target, else prefer-standby. */
export function backupTargetOf(backup: PostgreSQLBackup, cluster: PostgreSQLCluster | null): BackupTarget {
  return backup.spec?.target ?? cluster?.spec?.backup?.target ?? DEFAULTS.backupTarget;
}

/** Status at the start of an attempt; fields of an earlier attempt that no longer hold are removed. */
export function runningStatus(o: {
  startedAt: Date;
  previousAttempts: number | undefined;
  job: string | undefined;
  destination: BackupDestination;
  instance: string | undefined;
  fromReplica: boolean | undefined;
}): BackupStatusPatch {
  return {
    phase: 'running',
    startedAt: o.startedAt.toISOString(),
    attempts: (o.previousAttempts ?? 0) + 1,
    job: o.job ?? null,
    destination: o.destination,
    instance: o.instance ?? null,
    fromReplica: o.fromReplica ?? null,
    progressBytes: 0,
    stoppedAt: null,
    durationSeconds: null,
    error: null,
  };
}

/** Longest status.error kept (the schema allows 32768). */
const MAX_ERROR = 8192;

export function failedStatus(error: string, stoppedAt: Date, durationSeconds: number, progressBytes: number | undefined): BackupStatusPatch {
  return {
    phase: 'failed',
    error: error.length > MAX_ERROR ? `${error.slice(0, MAX_ERROR - 1)}…` : error,
    stoppedAt: stoppedAt.toISOString(),
    durationSeconds,
    ...(progressBytes !== undefined ? { progressBytes } : {}),
  };
}

/** stoppedAt is the manifest's stopTime: the earliest time the backup can be recovered to. */
export function completedStatus(m: BackupManifest, durationSeconds: number): BackupStatusPatch {
  return {
    phase: 'completed',
    backupId: m.id,
    instance: m.instance,
    fromReplica: m.fromReplica,
    stoppedAt: m.stopTime,
    durationSeconds,
    timeline: m.timeline,
    startLsn: m.startLsn,
    stopLsn: m.stopLsn,
    startWal: m.startWal,
    stopWal: m.stopWal,
    dataBytes: m.dataBytes,
    storedBytes: m.storedBytes,
    dataSha256: m.dataSha256,
    progressBytes: m.dataBytes,
    error: null,
  };
}

/** Seconds with one decimal. */
export function secondsBetween(startMs: number, endMs: number): number {
  return Math.max(0, Math.round((endMs - startMs) / 100) / 10);
}

/** 1536 → "1.5 KiB", 55154688 → "52.6 MiB". */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${v.toFixed(1)} ${units[i]}`;
}

export function completedMessage(m: BackupManifest, durationSeconds: number): string {
  return `Base backup ${m.id} of ${m.instance}: ${formatBytes(m.dataBytes)} in ${durationSeconds} s`;
}

/**
 * The PostgreSQLBackups of `cluster` whose base backup the retention deleted: same cluster, a
 * backupId among `deletedIds`, and (when recorded) the same archive path, so that a backup of
 * another store with the same id is never touched.
 */
export function expiredBackupResources(resources: PostgreSQLBackup[], cluster: string, deletedIds: ReadonlySet<string>, archivePath: string): PostgreSQLBackup[] {
  return resources.filter((r) => {
    const id = r.status?.backupId;
    if (r.spec?.cluster?.name !== cluster || id === undefined || !deletedIds.has(id)) return false;
    const path = r.status?.destination?.path;
    return path === undefined || path === archivePath;
  });
}

export function expiredMessage(policy: string, removed: RetentionResult, resources: number): string {
  const n = (count: number, one: string, many: string) => `${count} ${count === 1 ? one : many}`;
  return (
    `Retention ${policy}: removed ${n(removed.backups, 'base backup', 'base backups')}, ${n(removed.incompleteBackups, 'incomplete backup folder', 'incomplete backup folders')}, ` +
    `${n(removed.walFiles, 'WAL file', 'WAL files')} and ${n(resources, 'PostgreSQLBackup', 'PostgreSQLBackups')}`
  );
}

/**
 * A failure of the backup as a sentence a person can act on: which instance, what failed, and a
 * hint for the usual causes (wrong password, PostgreSQL unreachable).
 */
export function describeBackupFailure(err: unknown, ctx: { instance: InstancePod; endpoint: Endpoint; fromReplica: boolean; replicationUser: string; superuser: string }): string {
  const msg = errorText(err);
  const where = `base backup of instance ${ctx.instance.instance} (${ctx.fromReplica ? 'replica' : 'primary'}, ${ctx.endpoint.host}:${ctx.endpoint.port})`;
  let hint = '';
  const auth = /password authentication failed for user "([^"]+)"/.exec(msg);
  if (auth) {
    const which = auth[1] === ctx.replicationUser ? 'replication' : auth[1] === ctx.superuser ? 'superuser' : undefined;
    hint = which
      ? ` — the ${which} credentials mounted in the backup pod do not match role ${auth[1]}'s password: check the cluster's ${which} Secret`
      : ` — check the credentials of role ${auth[1]}`;
  } else if (/ECONNREFUSED|EHOSTUNREACH|ETIMEDOUT|timeout expired|connection timeout|could not connect to server|Connection refused|No route to host/i.test(msg)) {
    hint = ` — PostgreSQL at ${ctx.endpoint.host}:${ctx.endpoint.port} is not reachable: is instance ${ctx.instance.instance} running, and does a NetworkPolicy allow the backup pod in?`;
  }
  return `${where} failed: ${msg}${hint}`;
}

/** True at most once per interval (first call included). */
export class Throttle {
  private last = -Infinity;
  constructor(private readonly intervalMs: number) {}
  due(nowMs: number): boolean {
    if (nowMs - this.last < this.intervalMs) return false;
    this.last = nowMs;
    return true;
  }
}

// ---------------------------------------------------------------------------------------------
// The run

/** The PostgreSQLBackup of this run: the named one, or the scheduled one (created when absent). */
async function backupResource(deps: BackupRunDeps): Promise<PostgreSQLBackup> {
  const { kube, settings: s, log } = deps;
  if (s.backupName !== undefined) {
    const backup = await kube.getBackup(s.backupName);
    const problem = namedBackupProblem(backup, s.backupName, s.cluster, s.namespace);
    if (problem) throw new BackupArgumentError(problem);
    return backup!;
  }
  if (!s.job) throw new BackupArgumentError('a scheduled backup (no --backup) is named after its Job: environment variable PGPILOT_JOB_NAME is not set');
  let backup = await kube.getBackup(s.job);
  if (!backup) {
    backup = await kube.createBackup(scheduledBackupResource(s.cluster, s.namespace, s.job));
    if (backup) log.info({ backup: s.job }, 'created the PostgreSQLBackup of this scheduled run');
    else backup = await kube.getBackup(s.job); // created meanwhile by a pod of the same Job
    if (!backup) throw new Error(`PostgreSQLBackup ${s.namespace}/${s.job} could not be created or read`);
  } else {
    log.info({ backup: s.job, phase: backup.status?.phase, attempts: backup.status?.attempts }, 'found the PostgreSQLBackup of this Job (a retried pod)');
  }
  const problem = namedBackupProblem(backup, s.job, s.cluster, s.namespace);
  if (problem) throw new Error(`${problem}: a PostgreSQLBackup named after this Job exists already for another cluster`);
  return backup;
}

/** Runs the backup to its end; never throws (every failure is in the result and, when possible, in status). */
export async function runBackup(deps: BackupRunDeps): Promise<BackupRunResult> {
  const { kube, settings: s, store } = deps;
  const now = deps.now ?? (() => new Date());
  const runLog = deps.log.child({ cluster: s.cluster, namespace: s.namespace });

  // 1. The PostgreSQLBackup.
  let backup: PostgreSQLBackup;
  try {
    backup = await backupResource(deps);
  } catch (err) {
    return backupResourceFailure(err, s, runLog);
  }
  const name = backup.metadata.name!;
  const log = runLog.child({ backup: name });
  if (backup.status?.phase === 'completed') {
    log.info({ backupId: backup.status.backupId }, 'the backup is completed already: nothing to do');
    return { outcome: 'already-completed', exitCode: 0, backupName: name, ...(backup.status.backupId ? { backupId: backup.status.backupId } : {}) };
  }

  // 2. What the attempt needs: the cluster, its instances, where this pod stores.
  const startedAt = now();
  const t0 = performance.now();
  const { cluster, choice } = await clusterAndInstance(deps, backup);
  const podSpec = await jobPodSpec(deps, log);
  const destination = backupDestination(s.location, s.cluster, cluster?.spec, podSpec);
  const attempt: Attempt = {
    deps,
    name,
    log,
    t0,
    now,
    events: async (type, reason, message) => {
      if (cluster) await kube.recordEvent(clusterEventTarget(cluster), type, reason, message);
      await kube.recordEvent(backupEventTarget(backup), type, reason, message);
    },
  };

  try {
    await kube.patchBackupStatus(
      name,
      runningStatus({
        startedAt,
        previousAttempts: backup.status?.attempts,
        job: s.job,
        destination,
        instance: choice.ok ? choice.instance.instance : undefined,
        fromReplica: choice.ok ? choice.fromReplica : undefined,
      }),
    );
  } catch (err) {
    return failAttempt(attempt, `cannot mark PostgreSQLBackup ${name} running: ${apiErrorMessage(err)}`);
  }
  log.info({ attempt: (backup.status?.attempts ?? 0) + 1, destination: `${store.location}/${s.location.path}` }, 'backup attempt started');
  if (!choice.ok) return failAttempt(attempt, choice.error);
  return backUpFrom(attempt, choice, cluster);
}

/** The run's result when its PostgreSQLBackup cannot be had: bad arguments (exit 2) or a failure. */
function backupResourceFailure(err: unknown, s: BackupRunSettings, log: Logger): BackupRunResult {
  const error = apiErrorMessage(err);
  const invalid = err instanceof BackupArgumentError;
  log.error({ err: error }, invalid ? 'invalid arguments' : 'cannot get the PostgreSQLBackup');
  return { outcome: invalid ? 'invalid' : 'failed', exitCode: invalid ? 2 : 1, backupName: s.backupName ?? s.job, error };
}

/** The cluster (null when absent or unreadable) and the instance to back up, or why there is none. */
async function clusterAndInstance(deps: BackupRunDeps, backup: PostgreSQLBackup): Promise<{ cluster: PostgreSQLCluster | null; choice: InstanceChoice }> {
  const { kube, settings: s } = deps;
  let cluster: PostgreSQLCluster | null = null;
  try {
    cluster = await kube.getCluster(s.cluster);
    if (!cluster) return { cluster, choice: { ok: false, error: `PostgreSQLCluster ${s.namespace}/${s.cluster} does not exist` } };
    const pods = (await kube.listInstancePods(s.cluster)).map(instancePod);
    return { cluster, choice: chooseInstance(pods, cluster.status?.currentPrimary, backupTargetOf(backup, cluster)) };
  } catch (err) {
    return { cluster, choice: { ok: false, error: `cannot read PostgreSQLCluster ${s.cluster} and its pods: ${apiErrorMessage(err)}` } };
  }
}

/** The spec of this Job's pod (how it reaches the store), when there is a Job and it can be read. */
async function jobPodSpec(deps: BackupRunDeps, log: Logger): Promise<V1PodSpec | undefined> {
  const { job } = deps.settings;
  if (!job) return undefined;
  try {
    return (await deps.kube.listJobPods(job))[0]?.spec;
  } catch (err) {
    log.warn({ err: apiErrorMessage(err) }, 'cannot read the pods of this Job: the store credentials in status.destination are taken from the cluster spec');
    return undefined;
  }
}

/** One attempt at a PostgreSQLBackup, once it is marked running: what its steps and its failure need. */
interface Attempt {
  deps: BackupRunDeps;
  name: string;
  /** Bound to the instance once it is chosen. */
  log: Logger;
  /** performance.now() at the start of the attempt. */
  t0: number;
  now: () => Date;
  /** The last progress pg_basebackup reported, kept in status on failure. */
  progressBytes?: number;
  /** An event on the cluster (when it exists) and on the PostgreSQLBackup. */
  events(type: EventType, reason: string, message: string): Promise<void>;
}

/** Records the failure in status and events; the run's result. */
async function failAttempt(a: Attempt, error: string): Promise<BackupRunResult> {
  const { deps, log, name } = a;
  const interrupted = deps.signal?.aborted === true;
  const message = interrupted ? `interrupted: the backup pod was asked to stop (SIGTERM: the Job's deadline passed, or the Job or its pod was deleted); ${error}` : error;
  log.error({ err: message, seconds: secondsBetween(a.t0, performance.now()) }, 'backup failed');
  try {
    await deps.kube.patchBackupStatus(name, failedStatus(message, a.now(), secondsBetween(a.t0, performance.now()), a.progressBytes));
  } catch (err) {
    log.error({ err: apiErrorMessage(err) }, 'cannot record the failure in the PostgreSQLBackup status');
  }
  await a.events('Warning', 'BackupFailed', `Base backup ${name} failed: ${message}`);
  return { outcome: 'failed', exitCode: 1, backupName: name, error: message };
}

/** Steps 3 to 5 from the chosen instance: store check, credentials, the backup, its record, retention. */
async function backUpFrom(a: Attempt, choice: InstanceChoice & { ok: true }, cluster: PostgreSQLCluster | null): Promise<BackupRunResult> {
  const { deps } = a;
  const { store, settings: s } = deps;
  a.log = a.log.child({ instance: choice.instance.instance });
  if (deps.signal?.aborted) return failAttempt(a, 'stopped before the backup started');

  // 3. The store must be usable before pg_basebackup starts: its message is clearer than an upload's.
  try {
    await store.check(s.location.path);
  } catch (err) {
    return failAttempt(a, `backup store ${store.location}/${s.location.path} is not usable: ${errorText(err)}`);
  }

  // 4. The backup.
  const read = deps.readCredentials ?? readCredentialsFromFiles;
  let replication: Credentials;
  let superuser: Credentials;
  try {
    [replication, superuser] = await Promise.all([read(s.secretsDir, 'replication'), read(s.secretsDir, 'superuser')]);
  } catch (err) {
    return failAttempt(a, `cannot read the credentials mounted from the cluster's Secrets: ${errorText(err)}`);
  }
  const manifest = await takeBackup(a, choice, replication, superuser);
  if (typeof manifest === 'string') return failAttempt(a, manifest);

  // 5. Completed.
  const seconds = secondsBetween(a.t0, performance.now());
  try {
    await deps.kube.patchBackupStatus(a.name, completedStatus(manifest, seconds));
  } catch (err) {
    // The backup is in the store, complete; only its record is missing. A retry takes another one.
    return failAttempt(a, `base backup ${manifest.id} is complete in ${store.location}/${s.location.path}, but PostgreSQLBackup ${a.name} could not be marked completed: ${apiErrorMessage(err)}`);
  }
  a.log.info({ backupId: manifest.id, seconds, dataBytes: manifest.dataBytes, storedBytes: manifest.storedBytes, fromReplica: manifest.fromReplica }, 'backup completed');
  await a.events('Normal', 'BackupCompleted', completedMessage(manifest, seconds));

  const retention = await applyBackupRetention(deps, cluster, a.log);
  return { outcome: 'completed', exitCode: 0, backupName: a.name, backupId: manifest.id, retention };
}

/**
 * The base backup from the chosen instance, with progress in status (throttled, one write in
 * flight); its manifest, or what failed as a sentence (describeBackupFailure).
 */
async function takeBackup(a: Attempt, choice: InstanceChoice & { ok: true }, replication: Credentials, superuser: Credentials): Promise<BackupManifest | string> {
  const { deps, log, name } = a;
  const { instance, fromReplica, primary } = choice;
  const s = deps.settings;
  const endpointOf = deps.endpointOf ?? ((ip: string) => ({ host: ip, port: POSTGRES_PORT }));
  const endpoint = endpointOf(instance.ip!);
  const primaryEndpoint = primary ? endpointOf(primary.ip!) : undefined;
  const throttle = new Throttle(deps.progressIntervalMs ?? 5000);
  let progressWrite: Promise<void> | undefined;
  const onProgress = (bytes: number) => {
    a.progressBytes = bytes;
    if (progressWrite || !throttle.due(performance.now())) return;
    const seconds = (performance.now() - a.t0) / 1000;
    log.info({ progressBytes: bytes, progress: formatBytes(bytes), mibPerSecond: Number((bytes / 2 ** 20 / Math.max(seconds, 0.001)).toFixed(1)) }, 'backup progress');
    progressWrite = deps.kube
      .patchBackupStatus(name, { progressBytes: bytes })
      .catch((err: unknown) => log.warn({ err: apiErrorMessage(err) }, 'cannot write progressBytes'))
      .finally(() => (progressWrite = undefined));
  };
  const take = deps.takeBaseBackup ?? takeBaseBackupImpl;
  const tls = await tlsFromEnv();
  const libpqTls = libpqTlsFromEnv();
  let manifest: BackupManifest;
  try {
    log.info({ host: endpoint.host, port: endpoint.port, fromReplica, level: s.level }, 'taking the base backup');
    manifest = await take({
      store: deps.store,
      path: s.location.path,
      pgBin: s.pgBin,
      host: endpoint.host,
      port: endpoint.port,
      replication,
      sql: superuser,
      ...(tls ? { tls } : {}),
      ...(libpqTls ? { libpqTls } : {}),
      cluster: s.cluster,
      namespace: s.namespace,
      backupName: name,
      instance: instance.instance,
      level: s.level,
      ...(fromReplica && primaryEndpoint
        ? {
            switchWal: async () => {
              log.info({ primary: primary!.instance }, 'switching WAL on the primary so that the backup\'s last segment is archived');
              await withClient({ ...primaryEndpoint, credentials: superuser, connectTimeoutMs: 10_000, tls }, (c) => c.query('SELECT pg_switch_wal()'));
            },
          }
        : {}),
      onProgress,
      ...(deps.signal ? { signal: deps.signal } : {}),
      log,
      ...deps.baseBackupOptions,
    });
  } catch (err) {
    await progressWrite;
    return describeBackupFailure(err, { instance, endpoint, fromReplica, replicationUser: replication.username, superuser: superuser.username });
  }
  await progressWrite;
  return manifest;
}

/**
 * Retention after a completed backup: the PostgreSQLBackups of the base backups the policy no
 * longer keeps, then those base backups and the WAL only they needed. A failure is logged and
 * reported, never fatal.
 */
async function applyBackupRetention(deps: BackupRunDeps, cluster: PostgreSQLCluster | null, log: Logger): Promise<RetentionReport> {
  const { kube, store, settings: s } = deps;
  const policy = describeRetention(s.retention);
  const report: RetentionReport = { policy, removed: { backups: 0, incompleteBackups: 0, walFiles: 0 }, resources: [] };
  const event = async (type: EventType, reason: string, message: string) => {
    if (cluster) await kube.recordEvent(clusterEventTarget(cluster), type, reason, message);
  };
  try {
    const listing = await listBackups(store, s.location.path);
    const plan = planRetention(listing.backups, s.retention, (deps.now ?? (() => new Date()))(), listing.incomplete);
    const deletedIds = new Set(plan.deleteBackups.map((b) => b.id));
    // The resources go first: a base backup left in the store by a failure here is still too old
    // next time and goes then, while a resource whose backup is gone would stay forever.
    if (deletedIds.size > 0) {
      for (const r of expiredBackupResources(await kube.listBackups(), s.cluster, deletedIds, s.location.path)) {
        await kube.deleteBackup(r.metadata.name!, r.metadata.uid);
        report.resources.push(r.metadata.name!);
      }
    }
    if (plan.deleteBackups.length > 0 || plan.deleteIncomplete.length > 0 || plan.walBefore !== null) {
      const wal = await listWal(store, s.location.path);
      report.removed = await applyRetention(store, s.location.path, plan, wal);
    }
    const { backups, incompleteBackups, walFiles } = report.removed;
    if (backups + incompleteBackups + walFiles + report.resources.length > 0) {
      const message = expiredMessage(policy, report.removed, report.resources.length);
      log.info({ policy, ...report.removed, backupIds: [...deletedIds], resources: report.resources }, message);
      await event('Normal', 'BackupsExpired', message);
    } else {
      log.info({ policy, kept: plan.keep.length }, 'retention: nothing to remove');
    }
  } catch (err) {
    report.error = apiErrorMessage(err);
    log.error({ err: report.error, policy, ...report.removed, resources: report.resources }, 'retention failed (the backup itself completed)');
    await event('Warning', 'BackupRetentionFailed', `Retention ${policy} of ${store.location}/${s.location.path} failed (the backup completed): ${report.error}`);
  }
  return report;
}
