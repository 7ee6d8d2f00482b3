// recovery-gate: first in every pass, before any reconciler creates something for the cluster (the
// certificates reconciler makes Secrets, install everything else). Refuses a recovery source the
// cluster's namespace may not read (another namespace's archive in the default store): the
// validating webhook says the same, but it can be bypassed or down. Checked until the source is
// resolved into status; the Degraded condition (RecoverySourceForbidden) names the field.
import { recoverySourceProblem } from '../api/recovery-access.js';
import { resolveRecoverySource } from '../builders/backup-target.js';
import { ReconcileError, type ReconcileContext, type Reconciler, type ReconcilerResult } from './types.js';

export const recoveryGateReconciler: Reconciler = {
  name: 'recovery-gate',
  statusFields: [],
  async reconcile(ctx: ReconcileContext): Promise<ReconcilerResult> {
    const { cluster } = ctx;
    const r = cluster.spec.bootstrap?.recovery;
    if (!r || cluster.status?.recoverySource) return {};
    const resolved = resolveRecoverySource(cluster, r.backup ? ctx.cache.getBackup(cluster.metadata.namespace!, r.backup.name) : undefined);
    // Unresolvable yet (a backup not found...): install says why when it gets there.
    if (!resolved || 'problem' in resolved) return {};
    const field = r.backup ? `spec.bootstrap.recovery.backup (PostgreSQLBackup ${r.backup.name}, status.destination)` : 'spec.bootstrap.recovery.source';
    const problem = recoverySourceProblem(cluster.metadata.namespace!, resolved.source, ctx.config.defaultBackupStore?.store, field);
    if (problem) throw new ReconcileError('RecoverySourceForbidden', `${problem}. Nothing is created for this cluster.`);
    return {};
  },
};
