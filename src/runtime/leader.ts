// Leader election through a coordination.k8s.io Lease with optimistic concurrency (resourceVersion).
// A leader that cannot renew within renewDeadline stops leading (onStoppedLeading), so two
// operators never act at once; on shutdown the Lease is released so a successor starts at once.
import { ApiException, type CoordinationV1Api, type V1Lease } from '@kubernetes/client-node';
import type { Logger } from './logger.js';
import { microTime } from './time.js';

export interface LeaderElectionOptions {
  api: CoordinationV1Api;
  namespace: string;
  name: string;
  identity: string;
  log: Logger;
  leaseDurationSeconds?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
}

export class LeaderElector {
  private leading = false;
  private stopped = false;
  private timer?: NodeJS.Timeout;
  private lastRenew = 0;
  private readonly leaseDuration: number;
  private readonly renewDeadline: number;
  private readonly retryPeriod: number;

  constructor(private readonly opts: LeaderElectionOptions) {
    this.leaseDuration = opts.leaseDurationSeconds ?? 15;
    this.renewDeadline = opts.renewDeadlineMs ?? 10_000;
    this.retryPeriod = opts.retryPeriodMs ?? 2_000;
  }

  isLeader(): boolean {
    return this.leading;
  }

  /** Resolves once this process leads; onLost fires if leadership is lost afterwards. */
  run(onLost: () => void): Promise<void> {
    return new Promise((resolve) => {
      const tick = async () => {
        if (this.stopped) return;
        const ok = await this.tryAcquireOrRenew().catch((err) => {
          this.opts.log.warn({ err: (err as Error).message, lease: this.opts.name }, 'leader lease update failed');
          return false;
        });
        if (ok) {
          this.lastRenew = Date.now();
          if (!this.leading) {
            this.leading = true;
            this.opts.log.info({ lease: this.opts.name, identity: this.opts.identity }, 'became leader');
            resolve();
          }
        } else if (this.leading && Date.now() - this.lastRenew > this.renewDeadline) {
          this.leading = false;
          this.opts.log.error({ lease: this.opts.name }, 'lost leadership: could not renew the lease in time');
          onLost();
          return;
        }
        this.timer = setTimeout(tick, this.retryPeriod);
      };
      void tick();
    });
  }

  /** Give the Lease up (on graceful shutdown) so another replica can take over immediately. */
  async release(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    if (!this.leading) return;
    this.leading = false;
    try {
      const lease = await this.opts.api.readNamespacedLease({ name: this.opts.name, namespace: this.opts.namespace });
      if (lease.spec?.holderIdentity !== this.opts.identity) return;
      lease.spec.holderIdentity = undefined;
      lease.spec.leaseDurationSeconds = 1;
      await this.opts.api.replaceNamespacedLease({ name: this.opts.name, namespace: this.opts.namespace, body: lease });
    } catch (err) {
      this.opts.log.warn({ err: (err as Error).message }, 'could not release the leader lease');
    }
  }

  private async tryAcquireOrRenew(): Promise<boolean> {
    const { api, namespace, name, identity } = this.opts;
    const now = microTime(new Date());
    let lease: V1Lease;
    try {
      lease = await api.readNamespacedLease({ name, namespace });
    } catch (err) {
      if (err instanceof ApiException && err.code === 404) {
        await api.createNamespacedLease({
          namespace,
          body: {
            metadata: { name, namespace },
            spec: { holderIdentity: identity, leaseDurationSeconds: this.leaseDuration, acquireTime: now, renewTime: now, leaseTransitions: 0 },
          },
        });
        return true;
      }
      throw err;
    }
    const spec = lease.spec ?? {};
    const held = spec.holderIdentity && spec.holderIdentity !== identity;
    const renewed = spec.renewTime ? new Date(spec.renewTime).getTime() : 0;
    const expired = renewed + (spec.leaseDurationSeconds ?? this.leaseDuration) * 1000 < Date.now();
    if (held && !expired) return false;
    const takingOver = spec.holderIdentity !== identity;
    lease.spec = {
      ...spec,
      holderIdentity: identity,
      leaseDurationSeconds: this.leaseDuration,
      renewTime: now,
      ...(takingOver ? { acquireTime: now, leaseTransitions: (spec.leaseTransitions ?? 0) + 1 } : {}),
    };
    // replace carries metadata.resourceVersion: a concurrent writer makes this fail with 409.
    await api.replaceNamespacedLease({ name, namespace, body: lease });
    return true;
  }
}

