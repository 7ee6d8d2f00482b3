/**
 * The operator's pure backup pieces: where backups go (backup-target), the CronJob and Jobs that
 * take them (backup-job), schedules, archiving in postgresql.conf, what instance pods get, the
 * backup concern's conditions and status fields (backup-plan), and the restore bootstrap (ha-plan).
 */
import type { V1Container, V1EnvVar, V1Job, V1StatefulSet } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import type { PostgreSQLBackup } from '../api/backup.js';
import { DEFAULTS, MAX_CLUSTER_NAME, OPERATOR_MANAGED_PARAMETERS, type ClusterSpec, type PostgreSQLCluster, type S3Target } from '../api/cluster.js';
import { ANNOTATIONS, LABELS } from '../api/constants.js';
import { clusterCrd } from '../api/crd.js';
import { archiveCommand } from '../postgres/handoff.js';
import { nextRun, scheduleProblem } from '../backup/schedule.js';
import type { ArchiveLocation } from '../backup/store-config.js';
import { backupCronJob, onDemandBackupJob } from '../builders/backup-job.js';
import { BACKUP_VOLUME_MOUNT, RESTORE_VOLUME_MOUNT, resolveBackupTarget, resolveRecoverySource, restoreAccess, type ResolvedTarget } from '../builders/backup-target.js';
import { podSelector } from '../api/labels.js';
import { names } from '../api/names.js';
import { ARCHIVE_MARKER_DIR, postgresParameters, renderPostgresqlConf } from '../builders/postgres-config.js';
import { instanceStatefulSet, POSTGRES_UID, SECRETS_MOUNT, type InstanceBackupAccess } from '../builders/statefulset.js';
import type { ArchivingStatus, InstanceStatus } from '../instance/api-types.js';
import { archivingCondition, backupStatusFields, backupsNeedingJobs, jobFailure, lastBackupCondition } from './backup-plan.js';
import { planHa, type HaInput, type ObservedInstance } from './ha-plan.js';
import { CLUSTER_UID, seedCluster } from '../../test/support/cluster-fixtures.js';

const IMAGES = { instanceImageRepository: 'registry.example/pgpilot/postgresql' };
const CREDS = 'minio-creds';
const S3: S3Target = { endpoint: 'https://minio.storage:9000', bucket: 'pg-backups', forcePathStyle: true, credentials: { secretName: CREDS } };

const withBackup = (backup: ClusterSpec['backup'], meta: Partial<PostgreSQLCluster['metadata']> = {}) => seedCluster({ backup }, meta);
const s3Cluster = (s3: S3Target = S3) => withBackup({ enabled: true, schedule: '0 2 * * *', s3 });
const envOf = (env: V1EnvVar[] | undefined, name: string) => env?.find((e) => e.name === name);
const locationOf = (env: V1EnvVar[] | undefined, name = 'PGPILOT_BACKUP_LOCATION') => JSON.parse(envOf(env, name)!.value!) as ArchiveLocation;

function target(cluster: PostgreSQLCluster = s3Cluster()): ResolvedTarget {
  const t = resolveBackupTarget(cluster);
  expect(t).not.toBeNull();
  return t!;
}

describe('resolveBackupTarget', () => {
  it('is null while backups are disabled, even with a target or a default store', () => {
    expect(resolveBackupTarget(withBackup({ enabled: false, s3: S3 }), S3)).toBeNull();
    expect(resolveBackupTarget(withBackup(undefined), S3)).toBeNull(); // DEFAULTS.backupEnabled is false
  });

  it('is null when enabled with neither a target of its own nor a default store', () => {
    expect(resolveBackupTarget(withBackup({ enabled: true }))).toBeNull();
    expect(resolveBackupTarget(seedCluster())).toBeNull();
  });

  it('S3: the location JSON at <default prefix>/<namespace>/<cluster>, the credentials as secretKeyRef env with the default keys', () => {
    const t = target();
    expect(t.origin).toBe('cluster');
    expect(t.url).toBe('s3://pg-backups/pgpilot/production/prod-db');
    expect(t.volumes).toEqual([]);
    expect(t.mounts).toEqual([]);
    const location = locationOf(t.env);
    expect(location).toEqual(t.location);
    expect(location).toEqual({
      path: 'pgpilot/production/prod-db',
      store: {
        kind: 's3',
        endpoint: 'https://minio.storage:9000',
        bucket: 'pg-backups',
        region: DEFAULTS.region,
        forcePathStyle: true,
        checksums: DEFAULTS.checksums,
        accessKeyIdEnv: 'PGPILOT_BACKUP_S3_ACCESS_KEY_ID',
        secretAccessKeyEnv: 'PGPILOT_BACKUP_S3_SECRET_ACCESS_KEY',
      },
    });
    expect(envOf(t.env, 'PGPILOT_BACKUP_S3_ACCESS_KEY_ID')).toEqual({ name: 'PGPILOT_BACKUP_S3_ACCESS_KEY_ID', valueFrom: { secretKeyRef: { name: CREDS, key: 'ACCESS_KEY_ID' } } });
    expect(envOf(t.env, 'PGPILOT_BACKUP_S3_SECRET_ACCESS_KEY')).toEqual({ name: 'PGPILOT_BACKUP_S3_SECRET_ACCESS_KEY', valueFrom: { secretKeyRef: { name: CREDS, key: 'ACCESS_SECRET_KEY' } } });
    // Both credential variables are references, never literal values.
    for (const e of t.env.filter((x) => x.name !== 'PGPILOT_BACKUP_LOCATION')) expect(e.value).toBeUndefined();
  });

  it('S3: a custom prefix (slashes trimmed) and custom credential keys; no credential in the JSON', () => {
    const t = target(s3Cluster({ ...S3, path: '/team-a/pg/', credentials: { secretName: CREDS, accessKeyIdKey: 'id', secretAccessKeyKey: 'secret' } }));
    expect(t.location.path).toBe('team-a/pg/production/prod-db');
    expect(locationOf(t.env).path).toBe('team-a/pg/production/prod-db');
    expect(envOf(t.env, 'PGPILOT_BACKUP_S3_ACCESS_KEY_ID')!.valueFrom!.secretKeyRef).toEqual({ name: CREDS, key: 'id' });
    expect(envOf(t.env, 'PGPILOT_BACKUP_S3_SECRET_ACCESS_KEY')!.valueFrom!.secretKeyRef).toEqual({ name: CREDS, key: 'secret' });
    const json = envOf(t.env, 'PGPILOT_BACKUP_LOCATION')!.value!;
    expect(json).not.toContain(CREDS);
    expect(json).not.toMatch(/"(id|secret|credentials|secretName)"/);
  });

  it('a volume target: a PVC volume, its mount, and a volume store at the mount', () => {
    const t = target(withBackup({ enabled: true, volume: { claimName: 'nfs-backups', path: 'archive' } }));
    expect(t.origin).toBe('cluster');
    expect(t.url).toBe('pvc://nfs-backups/archive/production/prod-db');
    expect(t.volumes).toEqual([{ name: 'backup-target', persistentVolumeClaim: { claimName: 'nfs-backups' } }]);
    expect(t.mounts).toEqual([{ name: 'backup-target', mountPath: BACKUP_VOLUME_MOUNT }]);
    expect(locationOf(t.env)).toEqual({ store: { kind: 'volume', path: BACKUP_VOLUME_MOUNT }, path: 'archive/production/prod-db' });
    expect(t.env.map((e) => e.name)).toEqual(['PGPILOT_BACKUP_LOCATION']);
  });

  it('a volume target without a path uses the default prefix', () => {
    expect(target(withBackup({ enabled: true, volume: { claimName: 'nfs-backups' } })).location.path).toBe('pgpilot/production/prod-db');
  });

  it('no target of its own: the default store, with the credentials copied into <cluster>-backup-credentials', () => {
    const store: S3Target = { bucket: 'company-pg', path: 'fleet', credentials: { secretName: 'operator-s3', accessKeyIdKey: 'AK', secretAccessKeyKey: 'SK' } };
    const t = resolveBackupTarget(withBackup({ enabled: true }), store)!;
    expect(t).not.toBeNull();
    expect(t.origin).toBe('default');
    expect(names.backupCredentials('prod-db')).toBe('prod-db-backup-credentials');
    expect(t.s3!.credentials.secretName).toBe('prod-db-backup-credentials');
    expect(t.url).toBe('s3://company-pg/fleet/production/prod-db');
    expect(envOf(t.env, 'PGPILOT_BACKUP_S3_ACCESS_KEY_ID')!.valueFrom!.secretKeyRef).toEqual({ name: 'prod-db-backup-credentials', key: 'AK' });
    expect(envOf(t.env, 'PGPILOT_BACKUP_S3_SECRET_ACCESS_KEY')!.valueFrom!.secretKeyRef).toEqual({ name: 'prod-db-backup-credentials', key: 'SK' });
    expect(envOf(t.env, 'PGPILOT_BACKUP_LOCATION')!.value).not.toContain('operator-s3');
    // The default store object itself is not changed.
    expect(store.credentials.secretName).toBe('operator-s3');
  });

  it("the cluster's own target wins over the default store", () => {
    expect(resolveBackupTarget(s3Cluster(), { bucket: 'company-pg', credentials: { secretName: 'x' } })!.origin).toBe('cluster');
  });
});

function pgBackup(name: string, created: string, status?: PostgreSQLBackup['status'], meta: Partial<PostgreSQLBackup['metadata']> = {}): PostgreSQLBackup {
  return {
    apiVersion: 'postgres.pgpilot.io/v1',
    kind: 'PostgreSQLBackup',
    metadata: { name, namespace: 'production', uid: `uid-${name}`, creationTimestamp: created as unknown as Date, ...meta },
    spec: { cluster: { name: 'prod-db' } },
    ...(status ? { status } : {}),
  };
}

const DESTINATION = { s3: S3, path: 'pgpilot/production/old-db' };

describe('resolveRecoverySource', () => {
  const fromBackup = (name = 'nightly') => seedCluster({ bootstrap: { recovery: { backup: { name } } } });

  it('is null without spec.bootstrap.recovery', () => {
    expect(resolveRecoverySource(seedCluster(), undefined)).toBeNull();
  });

  it('takes a source as given, with its backupId', () => {
    const source = { s3: S3, path: 'pgpilot/production/old-db' };
    expect(resolveRecoverySource(seedCluster({ bootstrap: { recovery: { source } } }), undefined)).toEqual({ source });
    expect(resolveRecoverySource(seedCluster({ bootstrap: { recovery: { source, backupId: '20261125T020000Z' } } }), undefined)).toEqual({ source: { ...source, backupId: '20261125T020000Z' } });
  });

  it('a missing PostgreSQLBackup is a problem naming it and the namespace', () => {
    const r = resolveRecoverySource(fromBackup('nightly'), undefined);
    expect(r).toHaveProperty('problem');
    const problem = (r as { problem: string }).problem;
    expect(problem).toContain('"nightly"');
    expect(problem).toContain('production');
    expect(problem).toMatch(/does not exist/);
  });

  it.each<[string, PostgreSQLBackup['status']]>([
    ['pending', undefined],
    ['running', { phase: 'running' }],
    ['failed', { phase: 'failed', error: 'disk full' }],
  ])('a backup that is %s is a problem', (phase, status) => {
    const r = resolveRecoverySource(fromBackup(), pgBackup('nightly', '2026-01-01T00:00:00Z', status));
    const problem = (r as { problem: string }).problem;
    expect(problem).toContain('"nightly"');
    expect(problem).toContain(phase);
    expect(problem).toMatch(/only a completed backup can be restored/);
    if (status?.error) expect(problem).toContain('disk full');
  });

  it('a completed backup: its destination and backup id', () => {
    const b = pgBackup('nightly', '2026-01-01T00:00:00Z', { phase: 'completed', backupId: '20260101T020000Z', destination: DESTINATION, stoppedAt: '2026-01-01T02:05:00Z' });
    expect(resolveRecoverySource(fromBackup(), b)).toEqual({ source: { ...DESTINATION, backupId: '20260101T020000Z' } });
  });
});

describe('restoreAccess', () => {
  it('S3 source: PGPILOT_RESTORE_SOURCE, restore credentials, backup id and target JSON', () => {
    const target = { time: '2026-01-01T03:00:00Z', inclusive: false };
    const cluster = seedCluster({ bootstrap: { recovery: { source: DESTINATION, target } } });
    const a = restoreAccess(cluster, { ...DESTINATION, backupId: '20260101T020000Z' });
    const source = locationOf(a.env, 'PGPILOT_RESTORE_SOURCE');
    expect(source.path).toBe('pgpilot/production/old-db');
    expect(source.store).toMatchObject({ kind: 's3', bucket: 'pg-backups', accessKeyIdEnv: 'PGPILOT_RESTORE_S3_ACCESS_KEY_ID', secretAccessKeyEnv: 'PGPILOT_RESTORE_S3_SECRET_ACCESS_KEY' });
    expect(envOf(a.env, 'PGPILOT_RESTORE_S3_ACCESS_KEY_ID')!.valueFrom!.secretKeyRef).toEqual({ name: CREDS, key: 'ACCESS_KEY_ID' });
    expect(envOf(a.env, 'PGPILOT_RESTORE_BACKUP_ID')!.value).toBe('20260101T020000Z');
    expect(JSON.parse(envOf(a.env, 'PGPILOT_RESTORE_TARGET')!.value!)).toEqual(target);
    expect(a.volumes).toEqual([]);
    expect(a.mounts).toEqual([]);
  });

  it('without backup id or target those variables are absent; a volume source is mounted', () => {
    const source = { volume: { claimName: 'old-nfs' }, path: 'pgpilot/production/old-db' };
    const a = restoreAccess(seedCluster({ bootstrap: { recovery: { source } } }), source);
    expect(a.env.map((e) => e.name)).toEqual(['PGPILOT_RESTORE_SOURCE']);
    expect(locationOf(a.env, 'PGPILOT_RESTORE_SOURCE')).toEqual({ store: { kind: 'volume', path: RESTORE_VOLUME_MOUNT }, path: 'pgpilot/production/old-db' });
    expect(a.volumes).toEqual([{ name: 'restore-source', persistentVolumeClaim: { claimName: 'old-nfs' } }]);
    expect(a.mounts).toEqual([{ name: 'restore-source', mountPath: RESTORE_VOLUME_MOUNT }]);
  });
});

describe('backup Jobs', () => {
  const jobContainer = (spec: V1Job['spec']): V1Container => spec!.template.spec!.containers[0]!;

  it('the CronJob: name, schedule in UTC, one run at a time, `backup --cluster <name>`', () => {
    const cj = backupCronJob(s3Cluster(), target(), IMAGES);
    expect(cj.metadata!.name).toBe('prod-db-backup');
    expect(cj.metadata!.namespace).toBe('production');
    expect(cj.metadata!.ownerReferences?.[0]).toMatchObject({ uid: CLUSTER_UID, controller: true });
    expect(cj.spec!.schedule).toBe('0 2 * * *');
    expect(cj.spec!.timeZone).toBe('Etc/UTC');
    expect(cj.spec!.concurrencyPolicy).toBe('Forbid');
    expect(cj.spec!.jobTemplate.metadata!.labels![LABELS.scheduled]).toBe('true');
    const c = jobContainer(cj.spec!.jobTemplate.spec);
    expect(c.args).toEqual(['backup', '--cluster', 'prod-db']);
    expect(c.image).toBe('registry.example/pgpilot/postgresql:14.5');
  });

  it('the CronJob schedule defaults when spec.backup.schedule is unset', () => {
    const cluster = withBackup({ enabled: true, s3: S3 });
    expect(backupCronJob(cluster, target(cluster), IMAGES).spec!.schedule).toBe(DEFAULTS.backupSchedule);
  });

  it.each([1, 20, 45, 46, 47, MAX_CLUSTER_NAME])('a CronJob name of at most 52 characters for a cluster name of %i', (n) => {
    const name = 'c'.repeat(n);
    const cluster = withBackup({ enabled: true, s3: S3 }, { name });
    const cj = backupCronJob(cluster, target(cluster), IMAGES);
    expect(cj.metadata!.name!.length).toBeLessThanOrEqual(52);
    expect(cj.metadata!.name).toBe(n >= 46 ? `${name}-bk` : `${name}-backup`);
    expect(jobContainer(cj.spec!.jobTemplate.spec).args).toEqual(['backup', '--cluster', name]);
  });

  it('pods run as the cluster ServiceAccount, restricted, with secrets read-only and the target env', () => {
    const t = target(withBackup({ enabled: true, s3: S3, compression: { level: 6 }, retention: '10 backups' }));
    const spec = backupCronJob(s3Cluster(), t, IMAGES).spec!.jobTemplate.spec!;
    const pod = spec.template.spec!;
    expect(pod.serviceAccountName).toBe(names.serviceAccount('prod-db'));
    expect(pod.restartPolicy).toBe('Never');
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: POSTGRES_UID, seccompProfile: { type: 'RuntimeDefault' } });
    const c = pod.containers[0]!;
    expect(c.securityContext).toMatchObject({ runAsNonRoot: true, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
    const secretMounts = c.volumeMounts!.filter((m) => m.mountPath.startsWith(SECRETS_MOUNT));
    expect(secretMounts.map((m) => m.name).sort()).toEqual(['replication', 'superuser']);
    for (const m of secretMounts) expect(m.readOnly).toBe(true);
    for (const m of secretMounts) expect(pod.volumes!.find((v) => v.name === m.name)!.secret).toBeDefined();
    for (const e of t.env) expect(c.env).toContainEqual(e);
    expect(envOf(c.env, 'PGPILOT_BACKUP_LOCATION')).toBeDefined();
    expect(spec.backoffLimit).toBeGreaterThan(0);
  });

  it("backup pods are not instance pods: the Services' and PDB's selector does not match them", () => {
    const labels = backupCronJob(s3Cluster(), target(), IMAGES).spec!.jobTemplate.spec!.template.metadata!.labels!;
    expect(labels[LABELS.cluster]).toBe('prod-db');
    const selector = podSelector('prod-db');
    expect(Object.entries(selector).every(([k, v]) => labels[k] === v)).toBe(false);
  });

  it('a volume target is mounted in the backup pod', () => {
    const cluster = withBackup({ enabled: true, volume: { claimName: 'nfs-backups' } });
    const pod = backupCronJob(cluster, target(cluster), IMAGES).spec!.jobTemplate.spec!.template.spec!;
    expect(pod.volumes).toContainEqual({ name: 'backup-target', persistentVolumeClaim: { claimName: 'nfs-backups' } });
    expect(pod.containers[0]!.volumeMounts).toContainEqual({ name: 'backup-target', mountPath: BACKUP_VOLUME_MOUNT });
  });

  it('an on-demand Job is named after its PostgreSQLBackup and owned by it', () => {
    const b = pgBackup('before-upgrade', '2026-01-01T00:00:00Z');
    const job = onDemandBackupJob(s3Cluster(), b, target(), IMAGES);
    expect(job.kind).toBe('Job');
    expect(job.metadata!.name).toBe('before-upgrade');
    expect(job.metadata!.namespace).toBe('production');
    expect(job.metadata!.labels![LABELS.backupName]).toBe('before-upgrade');
    expect(job.metadata!.ownerReferences).toEqual([expect.objectContaining({ kind: 'PostgreSQLBackup', name: 'before-upgrade', uid: 'uid-before-upgrade', controller: true })]);
    const args = jobContainer(job.spec).args!;
    expect(args).toEqual(['backup', '--cluster', 'prod-db', '--backup', 'before-upgrade']);
    expect(args).toContain('--backup');
  });
});

describe('backup schedules', () => {
  it.each(['0 2 * * *', '*/15 * * * *', '30 1 * * 1-5', '@daily', '@hourly', '@weekly', '@monthly', '@yearly', ' @midnight '])('accepts %j', (s) => {
    expect(scheduleProblem(s)).toBeNull();
  });

  it('refuses six fields (seconds) and other field counts', () => {
    expect(scheduleProblem('0 0 2 * * *')).toMatch(/must have five fields/);
    expect(scheduleProblem('0 2 * *')).toMatch(/must have five fields/);
    expect(scheduleProblem('@fortnightly')).toMatch(/must have five fields/);
  });

  // Bug: scheduleProblem() exists so that a schedule the apiserver would refuse on the CronJob is
  // refused on spec.backup.schedule instead, but it asks node-cron, and Kubernetes validates
  // CronJob schedules with robfig/cron v3 (cron.ParseStandard), whose day-of-week runs 0-6 ("7" is
  // "end of range (7) above maximum (6)") and which has no "L". Those pass here and the CronJob
  // is then refused by the apiserver.
  it.each(['0 2 * * 7', '0 2 * * 5-7', '0 2 L * *'])('refuses %j, which the apiserver refuses on a CronJob', (s) => {
    expect(scheduleProblem(s)).not.toBeNull();
  });

  // Bug, the other way: robfig/cron reads "N/step" as "N-max/step" and Kubernetes accepts it;
  // node-cron refuses it, so the operator refuses a schedule a CronJob would run.
  it('accepts "5/15 * * * *", which a CronJob accepts (minutes 5, 20, 35, 50)', () => {
    expect(scheduleProblem('5/15 * * * *')).toBeNull();
  });

  it('refuses minute 61, naming the value', () => {
    const p = scheduleProblem('61 * * * *');
    expect(p).toMatch(/not a valid cron schedule/);
    expect(p).toContain('61');
  });

  it('the next run is in the future and matches the schedule (UTC)', () => {
    const before = Date.now();
    const n = nextRun('0 2 * * *');
    expect(n).toBeInstanceOf(Date);
    expect(n.getTime()).toBeGreaterThan(before);
    expect(n.getTime() - before).toBeLessThanOrEqual(24 * 3600 * 1000);
    expect([n.getUTCHours(), n.getUTCMinutes(), n.getUTCSeconds()]).toEqual([2, 0, 0]);
  });

  it('macros have a next run too', () => {
    const n = nextRun('@daily');
    expect(n.getTime()).toBeGreaterThan(Date.now());
    expect([n.getUTCHours(), n.getUTCMinutes()]).toEqual([0, 0]);
    const h = nextRun('@hourly');
    expect(h.getUTCMinutes()).toBe(0);
    expect(h.getTime() - Date.now()).toBeLessThanOrEqual(3600 * 1000);
  });
});

/** A postgresql.conf line parsed back as PostgreSQL's guc-file.l reads it ('' and \-escapes). */
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

describe('instance StatefulSet with backup access', () => {
  const sts = (cluster: PostgreSQLCluster, backup?: InstanceBackupAccess): V1StatefulSet => instanceStatefulSet(cluster, names.instance('prod-db', 1), IMAGES, {}, backup);
  const postgres = (s: V1StatefulSet) => s.spec!.template.spec!.containers.find((c) => c.name === 'postgres')!;
  const BACKUP_ENV = /^PGPILOT_(BACKUP|RESTORE)_/;

  it('has no backup env, volumes or mounts without a target or restore', () => {
    for (const s of [sts(s3Cluster()), sts(s3Cluster(), { target: null, restore: null })]) {
      const c = postgres(s);
      expect(c.env!.filter((e) => BACKUP_ENV.test(e.name))).toEqual([]);
      expect(s.spec!.template.spec!.volumes!.map((v) => v.name)).not.toContain('backup-target');
      expect(s.spec!.template.spec!.volumes!.map((v) => v.name)).not.toContain('restore-source');
      expect(c.volumeMounts!.map((m) => m.mountPath)).not.toContain(BACKUP_VOLUME_MOUNT);
    }
  });

  it('carries the env, volumes and mounts of both the target and the restore source', () => {
    const cluster = withBackup({ enabled: true, volume: { claimName: 'nfs-backups' } });
    const t = target(cluster);
    const source = { volume: { claimName: 'old-nfs' }, path: 'pgpilot/production/old-db', backupId: '20260101T020000Z' };
    const restore = restoreAccess(cluster, source);
    const s = sts(cluster, { target: t, restore });
    const c = postgres(s);
    for (const e of [...t.env, ...restore.env]) expect(c.env).toContainEqual(e);
    for (const m of [...t.mounts, ...restore.mounts]) expect(c.volumeMounts).toContainEqual(m);
    for (const v of [...t.volumes, ...restore.volumes]) expect(s.spec!.template.spec!.volumes).toContainEqual(v);
    expect(envOf(c.env, 'PGPILOT_BACKUP_COMPRESSION_LEVEL')!.value).toBe(String(DEFAULTS.compressionLevel));
    expect(DEFAULTS.compressionLevel).toBe(1);
    // No duplicate names (the apiserver refuses them).
    const names_ = (xs: Array<{ name: string }>) => xs.map((x) => x.name);
    expect(new Set(names_(c.env!)).size).toBe(c.env!.length);
    expect(new Set(names_(s.spec!.template.spec!.volumes!)).size).toBe(s.spec!.template.spec!.volumes!.length);
  });

  it('an S3 target: location and credential refs, and the compression level of the spec', () => {
    const cluster = withBackup({ enabled: true, s3: S3, compression: { level: 9 } });
    const t = target(cluster);
    const c = postgres(sts(cluster, { target: t }));
    for (const e of t.env) expect(c.env).toContainEqual(e);
    expect(envOf(c.env, 'PGPILOT_BACKUP_COMPRESSION_LEVEL')!.value).toBe('9');
    expect(c.env!.filter((e) => e.name.startsWith('PGPILOT_RESTORE_'))).toEqual([]);
  });

  it('an S3 target and an S3 restore source side by side: distinct variable names, each with its own Secret', () => {
    const cluster = withBackup({ enabled: true, s3: S3 });
    const source = { s3: { ...S3, bucket: 'old-backups', credentials: { secretName: 'old-creds' } }, path: 'pgpilot/production/old-db' };
    const c = postgres(sts(cluster, { target: target(cluster), restore: restoreAccess(cluster, source) }));
    expect(new Set(c.env!.map((e) => e.name)).size).toBe(c.env!.length);
    expect(envOf(c.env, 'PGPILOT_BACKUP_S3_ACCESS_KEY_ID')!.valueFrom!.secretKeyRef!.name).toBe(CREDS);
    expect(envOf(c.env, 'PGPILOT_RESTORE_S3_ACCESS_KEY_ID')!.valueFrom!.secretKeyRef!.name).toBe('old-creds');
    expect(locationOf(c.env, 'PGPILOT_RESTORE_SOURCE').store).toMatchObject({ bucket: 'old-backups', accessKeyIdEnv: 'PGPILOT_RESTORE_S3_ACCESS_KEY_ID' });
    expect(locationOf(c.env).store).toMatchObject({ bucket: 'pg-backups', accessKeyIdEnv: 'PGPILOT_BACKUP_S3_ACCESS_KEY_ID' });
  });
});

describe('backup plan', () => {
  const completed = (name: string, created: string, stoppedAt: string, extra: Partial<NonNullable<PostgreSQLBackup['status']>> = {}) =>
    pgBackup(name, created, { phase: 'completed', backupId: created.replace(/[-:]/g, '').replace(/\.\d+/, ''), stoppedAt, destination: DESTINATION, ...extra });
  const failed = (name: string, created: string, error = 'pg_basebackup: could not connect') => pgBackup(name, created, { phase: 'failed', error });

  it('backupsNeedingJobs: unfinished backups made by hand, not scheduled, finished or deleting ones', () => {
    const byHand = pgBackup('by-hand', '2026-01-01T00:00:00Z');
    const running = pgBackup('running', '2026-01-01T00:00:00Z', { phase: 'running' });
    const scheduled = pgBackup('prod-db-backup-29000000', '2026-01-01T00:00:00Z', undefined, { annotations: { [ANNOTATIONS.backupJob]: 'prod-db-backup-29000000' } });
    const deleting = pgBackup('deleting', '2026-01-01T00:00:00Z', undefined, { deletionTimestamp: new Date() });
    const done = [completed('done', '2026-01-01T00:00:00Z', '2026-01-01T00:05:00Z'), failed('broken', '2026-01-01T00:00:00Z')];
    expect(ANNOTATIONS.backupJob).toBe('postgres.pgpilot.io/job');
    expect(backupsNeedingJobs([byHand, running, scheduled, deleting, ...done]).map((b) => b.metadata.name)).toEqual(['by-hand', 'running']);
  });

  it('jobFailure: the Failed condition of a Job, else null', () => {
    expect(jobFailure(undefined)).toBeNull();
    expect(jobFailure({ metadata: { name: 'j' }, status: { conditions: [{ type: 'Complete', status: 'True' }] } })).toBeNull();
    expect(jobFailure({ metadata: { name: 'j' }, status: { conditions: [{ type: 'Failed', status: 'False' }] } })).toBeNull();
    const msg = jobFailure({ metadata: { name: 'nightly' }, status: { conditions: [{ type: 'Failed', status: 'True', reason: 'DeadlineExceeded', message: 'Job was active longer than specified deadline' }] } });
    expect(msg).toContain('nightly');
    expect(msg).toContain('Job was active longer than specified deadline');
    expect(jobFailure({ metadata: { name: 'j' }, status: { conditions: [{ type: 'Failed', status: 'True', reason: 'BackoffLimitExceeded' }] } })).toContain('BackoffLimitExceeded');
  });

  describe('lastBackupCondition', () => {
    it('Unknown NoBackupYet without a finished backup, with the next run', () => {
      const c = lastBackupCondition([pgBackup('running', '2026-01-01T00:00:00Z', { phase: 'running' })], '2026-01-02T02:00:00.000Z');
      expect(c).toMatchObject({ type: 'LastBackupSucceeded', status: 'Unknown', reason: 'NoBackupYet' });
      expect(c.message).toContain('2026-01-02T02:00:00.000Z');
      expect(lastBackupCondition([], undefined)).toMatchObject({ status: 'Unknown', reason: 'NoBackupYet' });
    });

    it('True when the newest finished backup completed (older failures do not count)', () => {
      const c = lastBackupCondition([failed('old', '2026-01-01T00:00:00Z'), completed('new', '2026-01-02T00:00:00Z', '2026-01-02T00:05:00Z'), pgBackup('now', '2026-01-03T00:00:00Z', { phase: 'running' })], undefined);
      expect(c).toMatchObject({ type: 'LastBackupSucceeded', status: 'True', reason: 'BackupCompleted' });
      expect(c.message).toContain('new');
    });

    it('False with the error when the newest finished backup failed', () => {
      const c = lastBackupCondition([completed('old', '2026-01-01T00:00:00Z', '2026-01-01T00:05:00Z'), failed('new', '2026-01-02T00:00:00Z', 'no space left on device')], undefined);
      expect(c).toMatchObject({ type: 'LastBackupSucceeded', status: 'False', reason: 'BackupFailed' });
      expect(c.message).toContain('new');
      expect(c.message).toContain('no space left on device');
    });
  });

  const archiving = (over: Partial<ArchivingStatus> = {}): ArchivingStatus => ({
    lastArchivedWal: '000000010000000000000010',
    lastArchivedTime: '2026-01-02T10:00:00.000Z',
    lastFailedWal: null,
    lastFailureTime: null,
    lastFailure: null,
    backlogSegments: 1,
    inFlight: 0,
    archivedCount: 16,
    ...over,
  });
  const primaryStatus = (a: ArchivingStatus | null | undefined, wal: InstanceStatus['wal'] = { bytes: 160 * 2 ** 20, volumeUsedPercent: 42 }): InstanceStatus => ({
    instance: 'prod-db-1',
    phase: 'Running',
    role: 'primary',
    running: true,
    fenced: false,
    postgresVersion: '14.5',
    systemIdentifier: '7300000000000000001',
    timeline: 1,
    currentLsn: '0/10000060',
    receiveLsn: null,
    replayLsn: null,
    following: null,
    streaming: false,
    replication: [],
    pendingRestart: false,
    restarts: 0,
    lastError: null,
    ...(a !== undefined ? { archiving: a } : {}),
    wal,
  });
  const URL_ = 's3://pg-backups/pgpilot/production/prod-db';

  describe('archivingCondition', () => {
    it('Unknown until the primary reports archiving', () => {
      expect(archivingCondition({ url: URL_, backlogWarning: 32 })).toMatchObject({ type: 'ContinuousArchiving', status: 'Unknown' });
      const c = archivingCondition({ url: URL_, primary: 'prod-db-1', status: primaryStatus(undefined), backlogWarning: 32 });
      expect(c).toMatchObject({ status: 'Unknown' });
      expect(c.message).toContain('prod-db-1');
    });

    it('False ArchivingFailing when the last failure is newer than the last success, with the backlog and pg_wal growth', () => {
      const a = archiving({ lastFailedWal: '000000010000000000000011', lastFailureTime: '2026-01-02T10:05:00.000Z', lastFailure: 'connect ECONNREFUSED 10.0.0.1:9000', backlogSegments: 12 });
      const c = archivingCondition({ url: URL_, primary: 'prod-db-1', status: primaryStatus(a), backlogWarning: 32 });
      expect(c).toMatchObject({ type: 'ContinuousArchiving', status: 'False', reason: 'ArchivingFailing' });
      expect(c.message).toContain('connect ECONNREFUSED 10.0.0.1:9000');
      expect(c.message).toContain('12 segment(s)');
      expect(c.message).toContain('wait in pg_wal');
      expect(c.message).toContain('160 MiB');
      expect(c.message).toContain('42%');
      expect(c.message).toContain(URL_);
    });

    it('failing before anything was ever archived', () => {
      const a = archiving({ lastArchivedWal: null, lastArchivedTime: null, lastFailedWal: '000000010000000000000001', lastFailureTime: '2026-01-02T10:05:00.000Z', lastFailure: 'AccessDenied' });
      expect(archivingCondition({ url: URL_, status: primaryStatus(a, null), backlogWarning: 32 })).toMatchObject({ status: 'False', reason: 'ArchivingFailing', message: expect.stringContaining('AccessDenied') });
    });

    it('an old failure followed by a success is healthy', () => {
      const a = archiving({ lastFailedWal: '00000001000000000000000F', lastFailureTime: '2026-01-02T09:00:00.000Z', lastFailure: 'timeout' });
      expect(archivingCondition({ url: URL_, status: primaryStatus(a), backlogWarning: 32 })).toMatchObject({ status: 'True', reason: 'Archiving' });
    });

    it('False ArchiveBacklog at or above the warning', () => {
      const c = archivingCondition({ url: URL_, status: primaryStatus(archiving({ backlogSegments: 32 })), backlogWarning: 32 });
      expect(c).toMatchObject({ status: 'False', reason: 'ArchiveBacklog' });
      expect(c.message).toContain('32 segment(s)');
      expect(archivingCondition({ url: URL_, status: primaryStatus(archiving({ backlogSegments: 31 })), backlogWarning: 32 })).toMatchObject({ status: 'True' });
    });

    it('True when healthy, naming the last archived segment', () => {
      const c = archivingCondition({ url: URL_, status: primaryStatus(archiving()), backlogWarning: 32 });
      expect(c).toMatchObject({ type: 'ContinuousArchiving', status: 'True', reason: 'Archiving' });
      expect(c.message).toContain('000000010000000000000010');
      const idle = archivingCondition({ url: URL_, status: primaryStatus(archiving({ lastArchivedWal: null, lastArchivedTime: null, backlogSegments: 0 })), backlogWarning: 32 });
      expect(idle).toMatchObject({ status: 'True', reason: 'WaitingForWal' });
    });
  });

  describe('backupStatusFields', () => {
    const backups = () => [
      completed('b1', '2026-01-01T02:00:00Z', '2026-01-01T02:10:00.000Z'),
      completed('b2', '2026-01-02T02:00:00Z', '2026-01-02T02:10:00.000Z'),
      failed('b3', '2026-01-03T02:00:00Z'),
      pgBackup('b4', '2026-01-04T02:00:00Z', { phase: 'running' }),
    ];

    it('the recoverability window, last backups, next run and archiving from the primary', () => {
      const f = backupStatusFields(backups(), URL_, primaryStatus(archiving({ lastArchivedTime: '2026-01-03T12:00:00.000Z' })), {}, '2026-01-05T02:00:00.000Z');
      expect(f.archivePath).toBe(URL_);
      expect(f.firstRecoverabilityPoint).toBe('2026-01-01T02:10:00.000Z');
      expect(f.lastRecoverabilityPoint).toBe('2026-01-03T12:00:00.000Z');
      expect(f.lastSuccessfulBackup).toBe('2026-01-02T02:10:00.000Z');
      expect(f.lastBackup).toBe('b3');
      expect(f.nextScheduledBackup).toBe('2026-01-05T02:00:00.000Z');
      expect(f.archiving).toEqual({
        lastArchivedWal: '000000010000000000000010',
        lastArchivedTime: '2026-01-03T12:00:00.000Z',
        backlogSegments: 1,
        walBytes: 160 * 2 ** 20,
        walVolumeUsedPercent: 42,
      });
    });

    it('the last recoverability point is the newest backup end when it is later than the newest archived WAL', () => {
      const f = backupStatusFields(backups(), URL_, primaryStatus(archiving({ lastArchivedTime: '2026-01-02T01:00:00.000Z' })), {}, undefined);
      expect(f.lastRecoverabilityPoint).toBe('2026-01-02T02:10:00.000Z');
      expect(f.nextScheduledBackup).toBeUndefined();
    });

    it('keeps the previous archiving when the primary did not report', () => {
      const previous = { archiving: { lastArchivedWal: '00000001000000000000000A', lastArchivedTime: '2026-01-03T06:00:00.000Z', backlogSegments: 0 } };
      const f = backupStatusFields(backups(), URL_, undefined, previous, undefined);
      expect(f.archiving).toEqual(previous.archiving);
      expect(f.lastRecoverabilityPoint).toBe('2026-01-03T06:00:00.000Z');
      expect(backupStatusFields(backups(), URL_, primaryStatus(undefined), previous, undefined).archiving).toEqual(previous.archiving);
    });

    it('copies a failure, bounded', () => {
      const a = archiving({ lastFailedWal: '000000010000000000000011', lastFailureTime: '2026-01-03T13:00:00.000Z', lastFailure: 'x'.repeat(10_000) });
      const f = backupStatusFields([], URL_, primaryStatus(a, null), {}, undefined);
      expect(f.archiving).toMatchObject({ lastFailedWal: '000000010000000000000011', lastFailureTime: '2026-01-03T13:00:00.000Z' });
      expect(f.archiving!.lastFailure!.length).toBeLessThanOrEqual(4096);
      expect(f.archiving).not.toHaveProperty('walBytes');
    });

    it('no window without a completed backup', () => {
      const f = backupStatusFields([failed('b3', '2026-01-03T02:00:00Z')], URL_, primaryStatus(archiving()), {}, undefined);
      expect(f.firstRecoverabilityPoint).toBeUndefined();
      expect(f.lastRecoverabilityPoint).toBeUndefined();
      expect(f.lastSuccessfulBackup).toBeUndefined();
      expect(f.lastBackup).toBe('b3');
    });
  });
});

describe('planHa: the restore bootstrap', () => {
  const fresh = (over: Partial<InstanceStatus> = {}): InstanceStatus => ({
    instance: 'x',
    phase: 'AwaitingBootstrap',
    role: 'none',
    running: false,
    fenced: false,
    postgresVersion: null,
    systemIdentifier: null,
    timeline: null,
    currentLsn: null,
    receiveLsn: null,
    replayLsn: null,
    following: null,
    streaming: false,
    replication: [],
    pendingRestart: false,
    restarts: 0,
    lastError: null,
    ...over,
  });
  const inst = (name: string, agent?: InstanceStatus): ObservedInstance => ({ name, podIP: `127.0.100.${name.slice(-1)}`, agent: agent ? { ...agent, instance: name } : undefined });
  const input = (instances: ObservedInstance[], over: Partial<HaInput> = {}): HaInput => ({ instances, primary: 'db-1', haEnabled: true, failoverDelayMs: 0, now: 10_000, ...over });

  it("bootstrapMode 'restore' sends {mode: 'restore'} to the first instance, reason Restoring", () => {
    const plan = planHa(input([inst('db-1', fresh()), inst('db-2', fresh())], { bootstrapMode: 'restore' }));
    expect(plan.actions).toEqual([{ kind: 'bootstrap', instance: 'db-1', request: { mode: 'restore' } }]);
    expect(plan.conditions).toEqual([expect.objectContaining({ type: 'PrimaryAvailable', status: 'False', reason: 'Restoring' })]);
    expect(plan.primary).toBe('db-1');
  });

  it("bootstrapMode 'initdb' (and none) still initdb's", () => {
    for (const bootstrapMode of ['initdb', undefined] as const) {
      const plan = planHa(input([inst('db-1', fresh())], { bootstrapMode }));
      expect(plan.actions).toEqual([{ kind: 'bootstrap', instance: 'db-1', request: { mode: 'initdb' } }]);
      expect(plan.conditions[0]).toMatchObject({ reason: 'Bootstrapping' });
    }
  });

  it('a first instance that Failed without data: PrimaryAvailable False BootstrapFailed with its lastError, no retry', () => {
    const err = 'recovery target 2020-01-01T00:00:00Z is before the oldest base backup';
    const plan = planHa(input([inst('db-1', fresh({ phase: 'Failed', lastError: err })), inst('db-2', fresh())], { bootstrapMode: 'restore' }));
    expect(plan.actions).toEqual([]);
    expect(plan.conditions).toEqual([expect.objectContaining({ type: 'PrimaryAvailable', status: 'False', reason: 'BootstrapFailed', message: expect.stringContaining(err) })]);
    expect(plan.conditions[0]!.message).toContain('db-1');
  });
});
