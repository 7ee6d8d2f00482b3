// install: everything a cluster owns in Kubernetes — credential Secrets, configuration, one
// StatefulSet per instance, Services, the disruption budget and the instances' RBAC.
import { ApiException, PatchStrategy, setHeaderOptions, type KubernetesObject, type V1PersistentVolumeClaim, type V1Secret, type V1StatefulSet } from '@kubernetes/client-node';
import { DEFAULTS, type PostgreSQLCluster } from '../api/cluster.js';
import { LABELS } from '../api/constants.js';
import { configMap } from '../builders/configmap.js';
import { planInstances } from '../builders/instance-plan.js';
import { ownerReference } from '../builders/meta.js';
import { names } from '../builders/names.js';
import { podDisruptionBudget } from '../builders/pdb.js';
import { parseQuantity } from '../builders/quantity.js';
import { instanceRole, instanceRoleBinding, instanceServiceAccount } from '../builders/rbac.js';
import { credentialSecret, generatePassword, generatedSecretNames, type CredentialKind } from '../builders/secrets.js';
import { clusterServices } from '../builders/services.js';
import { instanceStatefulSet, type ExistingClaims } from '../builders/statefulset.js';
import { applyIfChanged, createIfMissing, deleteIfExists } from '../runtime/apply.js';
import { ReconcileError, type OwnedKind, type ReconcileContext, type Reconciler, type ReconcilerResult } from './types.js';

async function ensure(ctx: ReconcileContext, kind: OwnedKind, desired: KubernetesObject): Promise<void> {
  const live = ctx.cache.get(kind, desired.metadata!.namespace!, desired.metadata!.name!);
  if ((await applyIfChanged(ctx.clients.objects, desired, live)) === 'applied') ctx.facts.writes.push(`${kind}/${desired.metadata!.name}`);
}

/** Secrets the user references must exist and hold a password before pods can start. */
async function checkReferencedSecrets(ctx: ReconcileContext): Promise<void> {
  const { cluster } = ctx;
  const refs: Array<[string, string]> = [];
  if (cluster.spec.superuserSecret) refs.push(['spec.superuserSecret', cluster.spec.superuserSecret.name]);
  if (cluster.spec.bootstrap?.initdb?.secret) refs.push(['spec.bootstrap.initdb.secret', cluster.spec.bootstrap.initdb.secret.name]);
  for (const [field, name] of refs) {
    let secret: V1Secret;
    try {
      secret = await ctx.clients.core.readNamespacedSecret({ name, namespace: cluster.metadata.namespace! });
    } catch (err) {
      if (err instanceof ApiException && err.code === 404) {
        throw new ReconcileError('SecretNotFound', `${field} names Secret "${name}", which does not exist in namespace ${cluster.metadata.namespace}: create it with a "password" key`);
      }
      throw err;
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
      if ((await createIfMissing(ctx.clients.objects, credentialSecret(ctx.cluster, kind, generatePassword()))) === 'created') ctx.facts.writes.push(`Secret/${name}`);
    }),
  );
}

function liveClaims(sts: V1StatefulSet | undefined): ExistingClaims {
  const out: ExistingClaims = {};
  for (const t of sts?.spec?.volumeClaimTemplates ?? []) {
    out[t.metadata!.name!] = { size: t.spec?.resources?.requests?.storage, storageClass: t.spec?.storageClassName };
  }
  return out;
}

/** Grow claims in place (the StatefulSet's templates are immutable), and tie their lifetime to the cluster when asked. */
async function ensureClaims(ctx: ReconcileContext, instances: string[]): Promise<void> {
  const { cluster } = ctx;
  const ns = cluster.metadata.namespace!;
  const wantOwner = (cluster.spec.storage.pvcRetentionPolicy?.whenDeleted ?? DEFAULTS.pvcWhenDeleted) === 'Delete';
  const sizes: Record<string, string | undefined> = { [names.dataVolume]: cluster.spec.storage.size, [names.walVolume]: cluster.spec.walStorage?.size };
  for (const pvc of ctx.cache.listForCluster<V1PersistentVolumeClaim>('PersistentVolumeClaim', ns, cluster.metadata.name!)) {
    const instance = pvc.metadata?.labels?.[LABELS.instance];
    if (!instance || !instances.includes(instance)) continue;
    const volume = pvc.metadata!.name!.slice(0, pvc.metadata!.name!.indexOf('-'));
    const patch: Record<string, unknown> = {};
    const want = sizes[volume];
    const have = pvc.spec?.resources?.requests?.storage;
    if (want && have && parseQuantity(want) > parseQuantity(have)) patch.spec = { resources: { requests: { storage: want } } };
    const owned = (pvc.metadata?.ownerReferences ?? []).some((o) => o.uid === cluster.metadata.uid);
    if (wantOwner && !owned) patch.metadata = { ownerReferences: [...(pvc.metadata?.ownerReferences ?? []), { ...ownerReference(cluster), controller: false }] };
    if (!wantOwner && owned) patch.metadata = { ownerReferences: (pvc.metadata?.ownerReferences ?? []).filter((o) => o.uid !== cluster.metadata.uid) };
    if (Object.keys(patch).length === 0) continue;
    await ctx.clients.core.patchNamespacedPersistentVolumeClaim(
      { name: pvc.metadata!.name!, namespace: ns, body: patch },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    ctx.facts.writes.push(`PersistentVolumeClaim/${pvc.metadata!.name}`);
  }
}

async function removeInstance(ctx: ReconcileContext, sts: V1StatefulSet): Promise<void> {
  const { cluster } = ctx;
  const instance = sts.metadata!.name!;
  await deleteIfExists(ctx.clients.objects, { apiVersion: 'apps/v1', kind: 'StatefulSet', metadata: { name: instance, namespace: cluster.metadata.namespace } });
  ctx.facts.writes.push(`StatefulSet/${instance}`);
  if ((cluster.spec.storage.pvcRetentionPolicy?.whenScaled ?? DEFAULTS.pvcWhenScaled) !== 'Delete') return;
  for (const pvc of ctx.cache.listForCluster<V1PersistentVolumeClaim>('PersistentVolumeClaim', cluster.metadata.namespace!, cluster.metadata.name!)) {
    if (pvc.metadata?.labels?.[LABELS.instance] !== instance) continue;
    await deleteIfExists(ctx.clients.objects, { apiVersion: 'v1', kind: 'PersistentVolumeClaim', metadata: { name: pvc.metadata.name, namespace: cluster.metadata.namespace } });
  }
}

export function currentPrimaryOf(cluster: PostgreSQLCluster): string | undefined {
  return cluster.status?.currentPrimary;
}

export const installReconciler: Reconciler = {
  name: 'install',
  async reconcile(ctx: ReconcileContext): Promise<ReconcilerResult> {
    const { cluster } = ctx;
    const name = cluster.metadata.name!;
    const ns = cluster.metadata.namespace!;

    // Independent objects go out together: a reconcile costs one round trip, not fifteen.
    await Promise.all([
      ensureSecrets(ctx),
      ensure(ctx, 'ConfigMap', configMap(cluster)),
      ensure(ctx, 'ServiceAccount', instanceServiceAccount(cluster)),
      // The apiserver checks a RoleBinding against its Role (escalation prevention): Role first.
      ensure(ctx, 'Role', instanceRole(cluster)).then(() => ensure(ctx, 'RoleBinding', instanceRoleBinding(cluster))),
      ...clusterServices(cluster).map((svc) => ensure(ctx, 'Service', svc)),
    ]);

    const existing = ctx.cache.listForCluster<V1StatefulSet>('StatefulSet', ns, name).filter((s) => s.metadata?.labels?.[LABELS.component] === 'instance');
    const desired = cluster.spec.instances ?? DEFAULTS.instances;
    const plan = planInstances(name, existing.map((s) => s.metadata!.name!), desired, currentPrimaryOf(cluster));
    const instances = [...plan.keep, ...plan.create].sort((a, b) => a.localeCompare(b, undefined, { numeric: true }));
    ctx.facts.instanceNames = instances;

    const pdb = podDisruptionBudget(cluster, instances.length);
    if (pdb) await ensure(ctx, 'PodDisruptionBudget', pdb);
    else if (ctx.cache.get('PodDisruptionBudget', ns, names.pdb(name))) {
      await deleteIfExists(ctx.clients.objects, { apiVersion: 'policy/v1', kind: 'PodDisruptionBudget', metadata: { name: names.pdb(name), namespace: ns } });
      ctx.facts.writes.push(`PodDisruptionBudget/${names.pdb(name)}`);
    }

    // Pods cannot start without the Secrets they mount: stop short of the StatefulSets.
    await checkReferencedSecrets(ctx);

    await Promise.all(
      instances.map((instance) => {
        const live = ctx.cache.get<V1StatefulSet>('StatefulSet', ns, instance);
        return ensure(ctx, 'StatefulSet', instanceStatefulSet(cluster, instance, ctx.config, liveClaims(live)));
      }),
    );
    await Promise.all(existing.filter((sts) => plan.remove.includes(sts.metadata!.name!)).map((sts) => removeInstance(ctx, sts)));
    await ensureClaims(ctx, instances);
    return {};
  },
};
