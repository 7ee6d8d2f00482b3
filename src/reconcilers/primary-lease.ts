// The `<cluster>-primary` Lease: the source of truth for which instance is primary (docs/adr).
// Status only reports it, and an informer's copy of status can lag a write by a moment — deciding
// from it once undid a switchover. Promotions replace the Lease with its resourceVersion
// (compare-and-swap), so two operators can never promote two instances.
import type { CoordinationV1Api } from '@kubernetes/client-node';
import type { PostgreSQLCluster } from '../api/cluster.js';
import { LABELS, MANAGED_BY } from '../api/constants.js';
import { names } from '../api/names.js';
import { ownerReference } from '../builders/meta.js';
import { microTime } from '../runtime/time.js';
import { ReconcileError } from './types.js';
import { apiStatus, ignoreNotFound } from '../runtime/api-status.js';

export class PrimaryLeases {
  /** Holders by cluster uid, once read or written: this operator, as leader, is the only writer. */
  private readonly holders = new Map<string, string>();

  constructor(private readonly coordination: CoordinationV1Api) {}

  /** The instance the Lease names (undefined: no Lease yet). */
  async holder(cluster: PostgreSQLCluster): Promise<string | undefined> {
    // By uid: a new cluster of the same name must not inherit the old one's primary.
    const key = cluster.metadata.uid!;
    if (this.holders.has(key)) return this.holders.get(key);
    const lease = await ignoreNotFound(this.coordination.readNamespacedLease({ name: names.primaryLease(cluster.metadata.name!), namespace: cluster.metadata.namespace! }));
    const holder = lease?.spec?.holderIdentity ?? undefined;
    if (holder) this.holders.set(key, holder);
    return holder;
  }

  /** Moves the Lease from `from` to `to`; fails with PrimaryClaimConflict when someone else moved it. */
  async claim(cluster: PostgreSQLCluster, from: string, to: string): Promise<void> {
    await this.replace(cluster, from, to);
    this.holders.set(cluster.metadata.uid!, to);
  }

  private async replace(cluster: PostgreSQLCluster, from: string, to: string): Promise<void> {
    const namespace = cluster.metadata.namespace!;
    const name = names.primaryLease(cluster.metadata.name!);
    const now = microTime(new Date());
    const lease = await ignoreNotFound(this.coordination.readNamespacedLease({ name, namespace }));
    if (!lease) {
      await this.coordination.createNamespacedLease({
        namespace,
        body: {
          // Owned by the cluster: it goes with it.
          metadata: { name, namespace, labels: { [LABELS.cluster]: cluster.metadata.name!, [LABELS.managedBy]: MANAGED_BY }, ownerReferences: [ownerReference(cluster)] },
          spec: { holderIdentity: to, acquireTime: now, renewTime: now, leaseTransitions: 0 },
        },
      });
      return;
    }
    if (lease.spec?.holderIdentity && lease.spec.holderIdentity !== from && lease.spec.holderIdentity !== to) {
      throw new ReconcileError('PrimaryClaimConflict', `the primary Lease names ${lease.spec.holderIdentity}, not ${from}: another operator acted; re-reading`);
    }
    lease.spec = { ...lease.spec, holderIdentity: to, acquireTime: now, renewTime: now, leaseTransitions: (lease.spec?.leaseTransitions ?? 0) + 1 };
    try {
      await this.coordination.replaceNamespacedLease({ name, namespace, body: lease });
    } catch (err) {
      if (apiStatus(err) === 409) throw new ReconcileError('PrimaryClaimConflict', `the primary Lease changed while promoting ${to}: another operator acted; re-reading`);
      throw err;
    }
  }
}
