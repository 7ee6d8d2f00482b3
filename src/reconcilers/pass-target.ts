// The cluster's backup target as this pass sees it. status.archiveSuffix can change earlier in the
// pass (a major upgrade's new archive, major-upgrade.ts) than the reconcilers that build pods and
// Jobs from the target: they read it from the pass's status, not the one last written, so a new
// pod template is built once, with the new archive path, and not again a pass later.
import { resolveBackupTarget, type ResolvedTarget } from '../builders/backup-target.js';
import type { ReconcileContext } from './types.js';

export function passBackupTarget(ctx: Pick<ReconcileContext, 'cluster' | 'status' | 'config'>): ResolvedTarget | null {
  const { cluster } = ctx;
  const suffix = ctx.status.archiveSuffix;
  const current = suffix === cluster.status?.archiveSuffix ? cluster : { ...cluster, status: { ...cluster.status, archiveSuffix: suffix } };
  return resolveBackupTarget(current, ctx.config.defaultBackupStore);
}
