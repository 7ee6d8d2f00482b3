// Leader election through a coordination.k8s.io Lease with optimistic concurrency (resourceVersion).
//
// Safety: a leader acts only while it is sure no one else can. A renewal that starts at time s
// and succeeds means no other replica may take the Lease before s + leaseDuration (a replica
// counts the Lease as expired only once it has seen it unchanged for leaseDuration on its own
// clock, as client-go does, so clock skew between nodes does not matter). The leader therefore
// steps down at s + renewDeadline (< leaseDuration) unless a later renewal succeeded first. The
// step-down runs on a timer: a renewal call that hangs cannot keep the leader acting, and every
// renewal call carries a timeout no longer than the time left. On shutdown the Lease is released
// so a successor starts at once.
import { performance } from 'node:perf_hooks';
import type { CoordinationV1Api } from '@kubernetes/client-node';
import { errorText } from '../util/error-text.js';
import { ignoreNotFound } from './api-status.js';
import { withTimeout } from './kube.js';
import type { Logger } from './logger.js';
import { microTime } from './time.js';

export interface LeaderElectionOptions {
  api: CoordinationV1Api;
  namespace: string;
  name: string;
  identity: string;
  log: Logger;
  /** How long others wait, after the Lease last changed, before they may take it (default 15 s). */
  leaseDurationSeconds?: number;
  /** The leader steps down when it has not renewed for this long (default 10 s; < leaseDuration). */
  renewDeadlineMs?: number;
  /** Pause between attempts to acquire or renew (default 2 s; < renewDeadline). */
  retryPeriodMs?: number;
}

/** What an attempt found: we hold the Lease now, or someone else holds it and it has not expired. */
type Outcome = 'held' | 'other';

// Monotonic: a wall-clock step (NTP, manual change) must not stretch or shrink the deadline.
const now = () => performance.now();

const RELEASE_TIMEOUT_MS = 5_000;

export class LeaderElector {
  private leading = false;
  private stopped = false;
  private running = false;
  private timer?: NodeJS.Timeout;
  private deadlineTimer?: NodeJS.Timeout;
  /** Monotonic time by which the leader must have renewed again, or step down. */
  private renewBy = 0;
  /** The Lease as last seen (resourceVersion) and when, for expiry judged on this clock. */
  private observed?: { key: string; at: number };
  private inFlight?: Promise<unknown>;
  /** An attempt wrote this replica into the Lease (so release() has something to give up). */
  private mayHold = false;
  private onLost?: () => void;
  private readonly leaseDuration: number;
  private readonly renewDeadline: number;
  private readonly retryPeriod: number;

  constructor(private readonly opts: LeaderElectionOptions) {
    this.leaseDuration = opts.leaseDurationSeconds ?? 15;
    this.renewDeadline = opts.renewDeadlineMs ?? 10_000;
    this.retryPeriod = opts.retryPeriodMs ?? 2_000;
    // The Lease carries whole seconds.
    if (!Number.isInteger(this.leaseDuration) || this.leaseDuration < 1) {
      throw new Error(`leader election: leaseDurationSeconds must be a whole number of seconds ≥ 1, got ${this.leaseDuration}`);
    }
    if (!(this.renewDeadline > 0) || !(this.retryPeriod > 0)) {
      throw new Error(`leader election: renewDeadlineMs and retryPeriodMs must be positive, got ${this.renewDeadline} and ${this.retryPeriod}`);
    }
    // Otherwise the Lease could expire for the others while this replica still leads.
    if (this.renewDeadline >= this.leaseDuration * 1000) {
      throw new Error(
        `leader election: renewDeadlineMs (${this.renewDeadline}) must be less than leaseDurationSeconds (${this.leaseDuration} s): ` +
          'the leader must step down before its Lease can expire for the other replicas',
      );
    }
    // Otherwise a single failed renewal uses up the whole deadline, with no retry.
    if (this.retryPeriod >= this.renewDeadline) {
      throw new Error(`leader election: retryPeriodMs (${this.retryPeriod}) must be less than renewDeadlineMs (${this.renewDeadline})`);
    }
  }

  isLeader(): boolean {
    return this.leading;
  }

  /**
   * Resolves once this process leads; onLost fires (once) if leadership is lost afterwards.
   * After that this elector is done: a process that lost the Lease restarts rather than re-elects.
   */
  run(onLost: () => void): Promise<void> {
    if (this.running) throw new Error('leader election: run() was already called');
    this.running = true;
    this.onLost = onLost;
    return new Promise((resolve) => {
      const tick = async () => {
        this.timer = undefined;
        if (this.stopped) return;
        const started = now();
        // A renewal may use only the time left before the step-down. Half a deadline at most, so
        // that a call stuck on a dead connection is abandoned while a retry (on a new connection:
        // a timed-out request's socket is destroyed) still has time to succeed.
        const left = this.leading ? this.renewBy - started : this.renewDeadline;
        if (left <= 0) return this.stepDown('could not renew the lease before the renew deadline');
        const attempt = this.tryAcquireOrRenew(started + Math.min(left, this.renewDeadline / 2));
        this.inFlight = attempt.catch(() => undefined);
        let outcome: Outcome | undefined;
        try {
          outcome = await attempt;
        } catch (err) {
          this.opts.log.warn({ err: errorText(err), lease: this.opts.name, leading: this.leading }, 'leader lease update failed');
        } finally {
          this.inFlight = undefined;
        }
        if (outcome === 'held') this.mayHold = true;
        // Stepped down or released meanwhile: a late answer must not make this replica lead again.
        if (this.stopped) return;
        if (outcome === 'held') {
          // Others can take the Lease no sooner than started + leaseDuration: count from the start.
          const renewBy = started + this.renewDeadline;
          if (now() < renewBy) {
            this.renewBy = renewBy;
            clearTimeout(this.deadlineTimer);
            this.deadlineTimer = setTimeout(() => this.stepDown('could not renew the lease before the renew deadline'), renewBy - now());
            if (!this.leading) {
              this.leading = true;
              this.opts.log.info({ lease: this.opts.name, identity: this.opts.identity }, 'became leader');
              resolve();
            }
          }
        } else if (outcome === 'other' && this.leading) {
          // Another replica holds it: this one lost it already, whatever the deadline says.
          return this.stepDown('another replica holds the lease');
        }
        this.timer = setTimeout(() => void tick(), this.retryPeriod);
      };
      void tick();
    });
  }

  /** Give the Lease up (on graceful shutdown) so another replica can take over immediately. */
  async release(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    clearTimeout(this.deadlineTimer);
    // A renewal still out could land after the release and hold the Lease for a full duration.
    await this.inFlight;
    if (!this.leading && !this.mayHold) return;
    this.leading = false;
    const { api, name, namespace, identity } = this.opts;
    const budget = Math.min(RELEASE_TIMEOUT_MS, this.renewDeadline);
    try {
      const lease = await api.readNamespacedLease({ name, namespace }, withTimeout(budget));
      if (lease.spec?.holderIdentity !== identity) return;
      lease.spec.holderIdentity = undefined;
      lease.spec.leaseDurationSeconds = 1;
      await api.replaceNamespacedLease({ name, namespace, body: lease }, withTimeout(budget));
    } catch (err) {
      this.opts.log.warn({ err: errorText(err) }, 'could not release the leader lease');
    }
  }

  private stepDown(reason: string): void {
    if (this.stopped) return;
    this.stopped = true;
    clearTimeout(this.timer);
    clearTimeout(this.deadlineTimer);
    const wasLeading = this.leading;
    this.leading = false;
    if (!wasLeading) return;
    this.opts.log.error({ lease: this.opts.name, reason }, 'lost leadership');
    this.onLost?.();
  }

  /** One attempt, all of its calls finished by `deadline` (monotonic ms) or rejected. */
  private async tryAcquireOrRenew(deadline: number): Promise<Outcome> {
    const { api, namespace, name, identity } = this.opts;
    // Each call gets what is left; the race also bounds an API object that ignores the option.
    const call = <T>(what: string, fn: (opts: ReturnType<typeof withTimeout>) => Promise<T>): Promise<T> => {
      const left = Math.max(1, Math.floor(deadline - now()));
      return raceTimeout(fn(withTimeout(left)), left, `${what} lease ${namespace}/${name}`);
    };
    const stamp = microTime(new Date());
    const lease = await ignoreNotFound(call('read', (o) => api.readNamespacedLease({ name, namespace }, o)));
    if (!lease) {
      await call('create', (o) =>
        api.createNamespacedLease(
          {
            namespace,
            body: {
              metadata: { name, namespace },
              spec: { holderIdentity: identity, leaseDurationSeconds: this.leaseDuration, acquireTime: stamp, renewTime: stamp, leaseTransitions: 0 },
            },
          },
          o,
        ),
      );
      return 'held';
    }
    const spec = lease.spec ?? {};
    // Expiry is judged by how long this replica has seen the Lease unchanged, not by the
    // holder's renewTime, which was written by another node's clock.
    const key = lease.metadata?.resourceVersion ?? JSON.stringify(spec);
    if (this.observed?.key !== key) this.observed = { key, at: now() };
    const held = !!spec.holderIdentity && spec.holderIdentity !== identity;
    const expired = now() - this.observed.at > (spec.leaseDurationSeconds ?? this.leaseDuration) * 1000;
    if (held && !expired) return 'other';
    const takingOver = spec.holderIdentity !== identity;
    lease.spec = {
      ...spec,
      holderIdentity: identity,
      leaseDurationSeconds: this.leaseDuration,
      renewTime: stamp,
      ...(takingOver ? { acquireTime: stamp, leaseTransitions: (spec.leaseTransitions ?? 0) + 1 } : {}),
    };
    // replace carries metadata.resourceVersion: a concurrent writer makes this fail with 409.
    await call('replace', (o) => api.replaceNamespacedLease({ name, namespace, body: lease }, o));
    return 'held';
  }
}

function raceTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
