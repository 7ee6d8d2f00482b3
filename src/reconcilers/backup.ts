// backup: the schedule's CronJob, a Job per on-demand PostgreSQLBackup, and what the cluster
// reports about its backups — LastBackupSucceeded, ContinuousArchiving (from the primary's agent,
// with pg_wal growth long before the volume fills), the recoverability window. The data moves in
// pods (`pgpilot backup`, the instance agents); the operator never touches the store.
import { PatchStrategy, setHeaderOptions, type V1Job, type V1Pod, type V1StatefulSet } from '@kubernetes/client-node';
import type { PostgreSQLBackup } from '../api/backup.js';
import { API_GROUP, API_VERSION, BACKUP_FINALIZER, BACKUP_PLURAL, CLUSTER_PLURAL, LABELS } from '../api/constants.js';
import { SpecError } from '../api/spec-error.js';
import { backupCronJob, onDemandBackupJob, purgeJob } from '../builders/backup-job.js';
import { names } from '../api/names.js';
import { nextRun, scheduleProblem } from '../backup/schedule.js';
import { createIfMissing } from '../runtime/apply.js';
import { rfc3339 } from '../runtime/time.js';
import { archivingCondition, backupsNeedingJobs, backupStatusFields, jobFailure, lastBackupCondition } from './backup-plan.js';
import type { ConditionInput } from './conditions.js';
import type { ReconcileContext, Reconciler, ReconcilerResult } from './types.js';
import { passBackupTarget } from './pass-target.js';
import { defaultStoreRefusal } from '../builders/backup-target.js';

/** While archiving is unhealthy or a backup runs, look again this often. */
const WATCH_MS = 10_000;
/**
 * Nothing in Kubernetes changes when archiving starts failing (only the agent knows), so a
 * cluster that archives is looked at this often anyway: reads only, no writes while all is well.
 */
const ARCHIVE_CHECK_MS = 30_000;

async function removeCronJob(ctx: ReconcileContext): Promise<void> {
  const ns = ctx.cluster.metadata.namespace!;
  const name = names.backupCronJob(ctx.cluster.metadata.name!);
  if (!ctx.cache.get('CronJob', ns, name)) return;
  await ctx.remove({ apiVersion: 'batch/v1', kind: 'CronJob', metadata: { name, namespace: ns } });
}

async function markFailed(ctx: ReconcileContext, backup: PostgreSQLBackup, error: string): Promise<void> {
  await ctx.clients.custom.patchNamespacedCustomObjectStatus(
    { group: API_GROUP, version: API_VERSION, namespace: backup.metadata!.namespace!, plural: BACKUP_PLURAL, name: backup.metadata!.name!, body: { status: { phase: 'failed', error, stoppedAt: rfc3339(new Date()) } } },
    setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
  );
  ctx.wrote(`PostgreSQLBackup/${backup.metadata!.name}`);
  await ctx.event('Warning', 'BackupFailed', `Backup ${backup.metadata!.name} failed: ${error}`);
}

/** Adds or removes the finalizer that deletes the archive with the cluster (optimistic: fails on a concurrent change and is retried). */
async function setFinalizer(ctx: ReconcileContext, present: boolean): Promise<void> {
  const { cluster } = ctx;
  const current = cluster.metadata.finalizers ?? [];
  if (current.includes(BACKUP_FINALIZER) === present) return;
  const finalizers = present ? [...current, BACKUP_FINALIZER] : current.filter((f) => f !== BACKUP_FINALIZER);
  await ctx.clients.custom.patchNamespacedCustomObject(
    { group: API_GROUP, version: API_VERSION, plural: CLUSTER_PLURAL, namespace: cluster.metadata.namespace!, name: cluster.metadata.name!, body: { metadata: { finalizers, resourceVersion: cluster.metadata.resourceVersion } } },
    setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
  );
  ctx.wrote(`PostgreSQLCluster/${cluster.metadata.name} finalizer`);
}

/**
 * A deleted cluster with spec.backup.onClusterDeletion: Delete: its instances stop, a Job deletes
 * its archive, then the finalizer goes and Kubernetes removes the cluster. A failed Job does not hold the deletion
 * forever: it is reported, with where the data is, and the cluster goes.
 */
async function finalizeBackups(ctx: ReconcileContext): Promise<{ requeueAfterMs?: number }> {
  const { cluster } = ctx;
  if (!cluster.metadata.finalizers?.includes(BACKUP_FINALIZER)) return {};
  const ns = cluster.metadata.namespace!;
  const target = passBackupTarget(ctx);
  if (!target) {
    await setFinalizer(ctx, false);
    return {};
  }
  const desired = purgeJob(cluster, target, ctx.config);
  const job = ctx.cache.get<V1Job>('Job', ns, desired.metadata!.name!);
  if (!job) {
    // Stop the instances first: a running primary would archive its last WAL after the purge.
    const sets = ctx.cache.listForCluster<V1StatefulSet>('StatefulSet', ns, cluster.metadata.name!);
    await Promise.all(sets.map((s) => ctx.remove({ apiVersion: 'apps/v1', kind: 'StatefulSet', metadata: { name: s.metadata!.name, namespace: ns } })));
    const pods = ctx.cache.listForCluster<V1Pod>('Pod', ns, cluster.metadata.name!).filter((p) => p.metadata?.labels?.[LABELS.component] === 'instance');
    if (sets.length > 0 || pods.length > 0) return { requeueAfterMs: 2000 };
    if ((await createIfMissing(ctx.clients.objects, desired)) === 'created') await ctx.event('Normal', 'DeletingBackups', `Deleting the backups and WAL at ${target.url} (spec.backup.onClusterDeletion: Delete)`);
    return { requeueAfterMs: 5000 };
  }
  const failure = jobFailure(job);
  if (failure) {
    await ctx.event('Warning', 'BackupDeletionFailed', `${failure}; the backups at ${target.url} are left in place: delete them by hand`);
  } else if ((job.status?.succeeded ?? 0) < 1) {
    return { requeueAfterMs: 5000 };
  } else {
    await ctx.event('Normal', 'BackupsDeleted', `Deleted the backups and WAL at ${target.url}`);
  }
  await setFinalizer(ctx, false);
  return {};
}

/**
 * A warning a person should see before pg_wal fills its volume. The recorder drops repeats for
 * five minutes, so a filling volume warns every five minutes. (Archiving's own transitions become
 * Events with every other condition's, in conditions.ts.)
 */
async function warnWalVolumeFilling(ctx: ReconcileContext, archiving: ConditionInput, volumePercent: number | null | undefined): Promise<void> {
  if (volumePercent != null && volumePercent >= 80) {
    await ctx.event('Warning', 'WALVolumeFilling', `The volume holding pg_wal on the primary is ${Math.round(volumePercent)}% full: ${archiving.message}`);
  }
}

const STATUS_FIELDS = ['archivePath', 'firstRecoverabilityPoint', 'lastRecoverabilityPoint', 'lastSuccessfulBackup', 'lastBackup', 'nextScheduledBackup', 'archiving'] as const;

export function createBackupReconciler(): Reconciler {
  return {
    name: 'backup',
    statusFields: STATUS_FIELDS,
    finalize: finalizeBackups,
    async reconcile(ctx: ReconcileContext): Promise<ReconcilerResult> {
      const { cluster } = ctx;
      const ns = cluster.metadata.namespace!;
      const name = cluster.metadata.name!;
      const spec = ctx.spec.backup;
      const target = passBackupTarget(ctx);
      const backups = ctx.cache.backupsOf(ns, name);
      if (!spec.enabled) {
        await removeCronJob(ctx);
        await setFinalizer(ctx, false);
        const message = 'spec.backup.enabled is false: no WAL is archived and no base backups are taken';
        return {
          conditions: [
            { type: 'ContinuousArchiving', status: 'False', reason: 'BackupDisabled', message },
            { type: 'LastBackupSucceeded', status: 'Unknown', reason: 'BackupDisabled', message },
          ],
        };
      }
      if (!target) {
        await removeCronJob(ctx);
        await setFinalizer(ctx, false);
        const refusal = defaultStoreRefusal(cluster, ctx.config.defaultBackupStore);
        const reason = refusal ? 'DefaultStoreNotAllowed' : 'NoBackupTarget';
        const message = refusal
          ? `spec.backup.enabled is true, but ${refusal}`
          : 'spec.backup.enabled is true, but the cluster names no target (spec.backup.s3 or spec.backup.volume) and the operator has no default store (Helm value backup.defaultStore): the cluster runs WITHOUT backups';
        return {
          conditions: [
            { type: 'ContinuousArchiving', status: 'False', reason, message },
            { type: 'LastBackupSucceeded', status: 'False', reason, message },
          ],
        };
      }
      await setFinalizer(ctx, spec.onClusterDeletion === 'Delete');
      const { schedule } = spec;
      const problem = scheduleProblem(schedule);
      if (problem) throw new SpecError('spec.backup.schedule', problem);

      await ctx.apply('CronJob', backupCronJob(cluster, target, ctx.config, !!ctx.status.hibernation));

      // On-demand backups: one Job each, named and owned by the backup.
      for (const backup of backupsNeedingJobs(backups)) {
        const jobName = backup.metadata!.name!;
        const job = ctx.cache.get<V1Job>('Job', ns, jobName);
        const failure = jobFailure(job);
        if (failure) await markFailed(ctx, backup, failure);
        else if (!job && (await createIfMissing(ctx.clients.objects, onDemandBackupJob(cluster, backup, target, ctx.config))) === 'created') {
          ctx.wrote(`Job/${jobName}`);
          ctx.log.info({ backup: jobName }, 'started the Job of an on-demand backup');
        }
      }

      const next = rfc3339(nextRun(schedule));
      // The primary after ha's pass (a failover may just have moved it), as its agent answered.
      const primaryName = ctx.status.currentPrimary;
      const primary = ctx.observed.instances.find((i) => i.name === primaryName)?.agent;
      const status = backupStatusFields(backups, target.url, primary, cluster.status ?? {}, next);
      const archiving = archivingCondition({
        url: target.url,
        primary: primaryName,
        status: primary,
        backlogWarning: spec.walBacklogWarningSegments,
      });
      await warnWalVolumeFilling(ctx, archiving, primary?.wal?.volumeUsedPercent);
      const running = backups.some((b) => b.status?.phase === 'running' || b.status?.phase === 'pending' || !b.status?.phase);
      return {
        conditions: [archiving, lastBackupCondition(backups, next)],
        status,
        requeueAfterMs: archiving.status !== 'True' || running ? WATCH_MS : ARCHIVE_CHECK_MS,
      };
    },
  };
}
