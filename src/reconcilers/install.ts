// install: everything a cluster owns in Kubernetes — credential Secrets, configuration, one
// StatefulSet per instance, Services, the disruption budget and the instances' RBAC.
import { tuningStatus } from '../builders/postgres-config.js';
import { PatchStrategy, setHeaderOptions, type V1PersistentVolumeClaim, type V1Secret, type V1StatefulSet } from '@kubernetes/client-node';
import { LABELS } from '../api/constants.js';
import { configMap } from '../builders/configmap.js';
import { names } from '../api/names.js';
import { podDisruptionBudget } from '../builders/pdb.js';
import { networkPolicy } from '../builders/network-policy.js';
import { instanceRole, instanceRoleBinding, instanceServiceAccount } from '../builders/rbac.js';
import { credentialSecret, generatePassword, generatedSecretNames, type CredentialKind } from '../builders/secrets.js';
import { clusterServices } from '../builders/services.js';
import { createIfMissing } from '../runtime/apply.js';
import { defaultStoreCredentials, resolveRecoverySource, type RecoverySourceStatus, type ResolvedTarget } from '../builders/backup-target.js';
import { desiredInstanceSets, heldBack } from './instance-sets.js';
import { ownedMeta } from '../builders/meta.js';
import { ReconcileError, type ReconcileContext, type Reconciler, type ReconcilerResult } from './types.js';
import { ignoreNotFound } from '../runtime/api-status.js';
import { passBackupTarget } from './pass-target.js';
import { claimSizes, growClaims } from './claim-growth.js';

/** Secrets the user references must exist and hold a password before pods can start. */
async function checkReferencedSecrets(ctx: ReconcileContext): Promise<void> {
  const { cluster } = ctx;
  const refs: Array<[string, string]> = [];
  if (cluster.spec.superuserSecret) refs.push(['spec.superuserSecret', cluster.spec.superuserSecret.name]);
  if (cluster.spec.bootstrap?.initdb?.secret) refs.push(['spec.bootstrap.initdb.secret', cluster.spec.bootstrap.initdb.secret.name]);
  for (const [field, name] of refs) {
    const secret = await ignoreNotFound(ctx.clients.core.readNamespacedSecret({ name, namespace: cluster.metadata.namespace! }));
    if (!secret) {
      throw new ReconcileError('SecretNotFound', `${field} names Secret "${name}", which does not exist in namespace ${cluster.metadata.namespace}: create it with a "password" key`);
    }
    if (!secret.data?.password) {
      throw new ReconcileError('SecretInvalid', `${field} names Secret "${name}", which has no "password" key`);
    }
  }
}

async function ensureSecrets(ctx: ReconcileContext): Promise<void> {
  const ns = ctx.cluster.metadata.namespace!;
  const missing = (Object.entries(generatedSecretNames(ctx.cluster)) as Array<[CredentialKind, string | undefined]>).filter(
    ([, name]) => name && !ctx.cache.get('Secret', ns, name),
  );
  await Promise.all(
    missing.map(async ([kind, name]) => {
      // Created once with a fresh random password and never rewritten: the password is kept.
      if ((await createIfMissing(ctx.clients.objects, credentialSecret(ctx.cluster, kind, generatePassword()))) === 'created') ctx.wrote(`Secret/${name}`);
    }),
  );
}

function claimsOf(ctx: ReconcileContext, instance: (name: string) => boolean): V1PersistentVolumeClaim[] {
  const { cluster } = ctx;
  return ctx.cache
    .listForCluster<V1PersistentVolumeClaim>('PersistentVolumeClaim', cluster.metadata.namespace!, cluster.metadata.name!)
    .filter((pvc) => instance(pvc.metadata?.labels?.[LABELS.instance] ?? ''));
}

/**
 * Remove one instance: its StatefulSet, and its claims as whenScaled says. The set owns its
 * claims exactly when whenDeleted is Delete, so deleting the set decides their fate unless the
 * two policies differ.
 */
async function removeInstance(ctx: ReconcileContext, sts: V1StatefulSet): Promise<void> {
  const ns = ctx.cluster.metadata.namespace!;
  const instance = sts.metadata!.name!;
  const { whenScaled, whenDeleted } = ctx.spec.storage.pvcRetentionPolicy;
  const claims = claimsOf(ctx, (i) => i === instance);
  if (whenScaled === 'Retain' && whenDeleted === 'Delete') {
    // Keep the claims: take them out of the set's hands before the set goes.
    await Promise.all(
      claims.map((pvc) =>
        ctx.clients.core.patchNamespacedPersistentVolumeClaim(
          { name: pvc.metadata!.name!, namespace: ns, body: { metadata: { ownerReferences: (pvc.metadata?.ownerReferences ?? []).filter((o) => o.uid !== sts.metadata!.uid) } } },
          setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
        ),
      ),
    );
  }
  await ctx.remove({ apiVersion: 'apps/v1', kind: 'StatefulSet', metadata: { name: instance, namespace: ns } });
  if (whenScaled === 'Delete' && whenDeleted === 'Retain') {
    await Promise.all(claims.map((pvc) => ctx.remove({ apiVersion: 'v1', kind: 'PersistentVolumeClaim', metadata: { name: pvc.metadata!.name, namespace: ns } })));
  }
}


/** Annotation on a copy of the default store's credentials: the Secret it was copied from. */
const COPIED_FROM = 'pgpilot.io/copied-from';

/**
 * A cluster on the operator-wide default store gets a copy of the store's credentials in its own
 * namespace (pods can only mount Secrets there): the namespace's scoped keys when the chart gives
 * it some, else the bucket-wide ones. Created once and replaced only when the namespace's source
 * changes (delete it to pick up rotated keys). It stays when the cluster is deleted, as the
 * backups do.
 */
async function ensureDefaultStoreCredentials(ctx: ReconcileContext, target: ResolvedTarget): Promise<void> {
  const { cluster } = ctx;
  const ns = cluster.metadata.namespace!;
  const copy = target.s3!.credentials.secretName;
  const from = defaultStoreCredentials(ctx.config.defaultBackupStore!, ns)!;
  const existing = ctx.cache.get<V1Secret>('Secret', ns, copy);
  if (existing && (existing.metadata?.annotations?.[COPIED_FROM] ?? ctx.config.defaultBackupStore!.store.credentials.secretName) === from.secretName) return;
  const opNs = ctx.config.operatorNamespace ?? ns;
  const source = await ignoreNotFound(ctx.clients.core.readNamespacedSecret({ name: from.secretName, namespace: opNs }));
  if (!source) {
    const value = from.scoped ? `backup.defaultStoreNamespaceCredentials.${ns}` : 'backup.defaultStore.credentials.secretName';
    throw new ReconcileError('BackupCredentialsNotFound', `the operator's default backup store names credentials Secret "${from.secretName}" for namespace ${ns}, which does not exist in namespace ${opNs} (Helm value ${value})`);
  }
  // Not owned by the cluster: its backups outlive it and name this Secret in status.destination,
  // so a restore after the cluster is gone still finds the credentials.
  const { ownerReferences: _owners, ...metadata } = ownedMeta(cluster, copy, 'backup');
  const secret: V1Secret = { apiVersion: 'v1', kind: 'Secret', metadata: { ...metadata, annotations: { [COPIED_FROM]: from.secretName } }, type: 'Opaque', data: source.data ?? {} };
  // Replaced by delete and create: the operator holds no Secret update or patch (generated
  // credentials are never changed), and the pods read the files at each use.
  if (existing) await ctx.remove({ apiVersion: 'v1', kind: 'Secret', metadata: { name: copy, namespace: ns } });
  if ((await createIfMissing(ctx.clients.objects, secret)) === 'created') ctx.wrote(`Secret/${copy}`);
  if (existing) await ctx.event('Normal', 'BackupCredentialsReplaced', `Secret ${copy} now holds the default backup store's credentials from ${opNs}/${from.secretName}${from.scoped ? ' (scoped to this namespace)' : ''}`);
}

/**
 * A namespace that may not use the default store holds no copy of its keys: a copy made before
 * the namespace left backup.defaultStoreNamespaces is deleted, loudly — the cluster's archiving
 * stops (its pods roll without a backup target; ContinuousArchiving says why).
 */
async function removeDefaultStoreCredentials(ctx: ReconcileContext): Promise<void> {
  const { cluster } = ctx;
  const ns = cluster.metadata.namespace!;
  const copy = names.backupCredentials(cluster.metadata.name!);
  const existing = ctx.cache.get<V1Secret>('Secret', ns, copy);
  // Only the operator's own copy (its labels), never a Secret the cluster names itself.
  if (!existing || existing.metadata?.labels?.[LABELS.component] !== 'backup' || cluster.spec.backup?.s3?.credentials.secretName === copy) return;
  await ctx.remove({ apiVersion: 'v1', kind: 'Secret', metadata: { name: copy, namespace: ns } });
  await ctx.event(
    'Warning',
    'BackupCredentialsRemoved',
    `Deleted Secret ${copy}, the copy of the operator's default backup store credentials: namespace ${ns} is no longer in the Helm value backup.defaultStoreNamespaces (or backup.defaultStoreNamespaceCredentials). WAL archiving and base backups of this cluster stop until it names its own target or the namespace is listed again`,
  );
}

/** spec.bootstrap.recovery, resolved once and then kept in status (a deleted backup must not roll the pods). */
function recoverySource(ctx: ReconcileContext): RecoverySourceStatus | undefined {
  const { cluster } = ctx;
  if (!cluster.spec.bootstrap?.recovery) return undefined;
  if (cluster.status?.recoverySource) return cluster.status.recoverySource;
  const named = cluster.spec.bootstrap.recovery.backup?.name;
  const resolved = resolveRecoverySource(cluster, named ? ctx.cache.getBackup(cluster.metadata.namespace!, named) : undefined);
  if (resolved && 'problem' in resolved) throw new ReconcileError('RecoverySourceUnavailable', resolved.problem);
  return resolved?.source;
}

export const installReconciler: Reconciler = {
  name: 'install',
  statusFields: ['recoverySource', 'tuning'],
  async reconcile(ctx: ReconcileContext): Promise<ReconcilerResult> {
    const { cluster, observed } = ctx;
    const name = cluster.metadata.name!;
    const ns = cluster.metadata.namespace!;
    const target = passBackupTarget(ctx);
    const archive = target ? { timeoutSeconds: ctx.spec.backup.archiveTimeoutSeconds } : undefined;

    // Independent objects go out together: a reconcile costs one round trip, not fifteen.
    await Promise.all([
      ensureSecrets(ctx),
      ...(target?.origin === 'default' ? [ensureDefaultStoreCredentials(ctx, target)] : []),
      ...(ctx.config.defaultBackupStore && !defaultStoreCredentials(ctx.config.defaultBackupStore, ns) ? [removeDefaultStoreCredentials(ctx)] : []),
      ctx.apply('ConfigMap', configMap(cluster, archive)),
      ctx.apply('ServiceAccount', instanceServiceAccount(cluster)),
      // The apiserver checks a RoleBinding against its Role (escalation prevention): Role first.
      ctx.apply('Role', instanceRole(cluster)).then(() => ctx.apply('RoleBinding', instanceRoleBinding(cluster))),
      ...clusterServices(cluster).map((svc) => ctx.apply('Service', svc)),
    ]);

    // The instance plan (which to keep, create, remove) is part of the pass's observation.
    const instances = observed.instanceNames;
    const pdb = podDisruptionBudget(cluster, instances.length);
    if (pdb) await ctx.apply('PodDisruptionBudget', pdb);
    else if (ctx.cache.get('PodDisruptionBudget', ns, names.pdb(name))) {
      await ctx.remove({ apiVersion: 'policy/v1', kind: 'PodDisruptionBudget', metadata: { name: names.pdb(name), namespace: ns } });
    }

    const policy = networkPolicy(cluster, ctx.config.operatorNamespace);
    if (policy) await ctx.apply('NetworkPolicy', policy);
    else if (ctx.cache.get('NetworkPolicy', ns, names.networkPolicy(name))) {
      await ctx.remove({ apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: names.networkPolicy(name), namespace: ns } });
    }

    // Pods cannot start without the Secrets they mount: stop short of the StatefulSets.
    await checkReferencedSecrets(ctx);
    const source = recoverySource(ctx);
    const sets = desiredInstanceSets(ctx, target, source);
    // A new pod template reaches an existing instance only when rollout (earlier in this pass) names it; new instances get it at once.
    const updating = ctx.status.rollout?.updating;
    const held = sets.filter((s) => heldBack(s, updating));
    if (held.length) ctx.log.debug({ held: held.map((s) => s.instance.name), updating }, 'new pod template held back by the rollout');
    await Promise.all(sets.filter((s) => !held.includes(s)).map((s) => ctx.apply('StatefulSet', s.desired)));
    await Promise.all(observed.statefulSets.filter((sts) => observed.plan.remove.includes(sts.metadata!.name!)).map((sts) => removeInstance(ctx, sts)));
    // Grow claims in place to max(spec size, the size storage auto-grow chose). A StorageClass
    // that cannot expand holds back only this: Degraded says so, no retry with backoff.
    const { refused } = await growClaims(ctx, claimSizes(cluster.spec, ctx.status));
    const degraded = refused.length
      ? { degraded: { reason: 'StorageExpansionRefused', message: `The claims cannot grow to the size asked for: ${refused.map((r) => `${r.claim}: ${r.message}`).join('; ')}` } }
      : {};
    // Kept once resolved, even if spec.bootstrap.recovery goes (status says where the data came from).
    return { status: { tuning: tuningStatus(cluster.spec), ...(source ? { recoverySource: source } : {}) }, ...degraded };
  },
};
