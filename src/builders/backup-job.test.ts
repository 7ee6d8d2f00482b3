// The backup CronJob and the Job of an on-demand backup (pure).
import type { V1Container, V1Job } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { DEFAULTS, MAX_CLUSTER_NAME } from '../api/cluster.js';
import { LABELS } from '../api/constants.js';
import { backupCronJob, onDemandBackupJob } from './backup-job.js';
import { BACKUP_VOLUME_MOUNT } from './backup-target.js';
import { podSelector } from '../api/labels.js';
import { names } from '../api/names.js';
import { POSTGRES_UID, SECRETS_MOUNT } from './statefulset.js';
import { CLUSTER_UID } from '../../test/support/cluster-fixtures.js';
import { envOf, IMAGES, pgBackup, S3, s3Cluster, target, withBackup } from '../../test/support/builder-fixtures.js';

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

describe('TLS of backup Jobs', () => {
  it('mounts the CA certificate alone (not the CA key) and verifies the instances against it', () => {
    const job = onDemandBackupJob(s3Cluster(), pgBackup('tls', '2026-01-01T00:00:00Z'), target(), IMAGES);
    const pod = job.spec!.template.spec!;
    const secrets = pod.volumes!.flatMap((v) => (v.secret ? [v.secret.secretName] : []));
    expect(secrets).toContain(names.caCertSecret('prod-db'));
    expect(secrets).not.toContain(names.caSecret('prod-db'));
    const env = job.spec!.template.spec!.containers[0]!.env!;
    expect(env).toContainEqual({ name: 'PGPILOT_TLS_CA_FILE', value: '/etc/pgpilot/tls/ca/ca.crt' });
    expect(env).toContainEqual({ name: 'PGPILOT_TLS_SERVER_NAME', value: 'prod-db-rw.production.svc' });
  });
});
