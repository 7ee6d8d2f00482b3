// Watches a cluster's instances while it scales (polling the apiserver every 250 ms): when each
// instance's StatefulSet appeared and its pod first became Ready, how many instances were not
// ready at once (a replica cloning), and whether the primary's pod was ever replaced. Creation
// and readiness times come from the server's own timestamps (creationTimestamp, the Ready
// condition's lastTransitionTime: whole seconds) when a sample sees them, so a gap in sampling
// (a slow or failed list) does not lose them; a sample that takes over 5 s is abandoned.
import type { V1Pod } from '@kubernetes/client-node';
import { LABELS } from '../../src/api/constants.js';
import { makeClients } from '../../src/runtime/kube.js';
import { kubeConfig } from './env.js';

export interface InstanceTimes {
  /** When its StatefulSet was created (ms since epoch). */
  created?: number;
  /** When its pod became Ready. */
  ready?: number;
  /** When its StatefulSet was last seen gone after having existed. */
  removed?: number;
}

export interface ScaleRecord {
  instances: Map<string, InstanceTimes>;
  /** Most instances seen existing with a pod not Ready, at one sample. */
  maxNotReady: number;
  /** The sample where that happened: instance names. */
  maxNotReadyAt: string[];
  /** Every distinct UID the primary's pod had. */
  primaryPodUids: Set<string>;
  samples: number;
  /** Samples that failed (the apiserver refused or timed out), and the last error: a gap in the record. */
  failedSamples: number;
  lastError?: string;
}

const SAMPLE_TIMEOUT_MS = 5000;

const serverTime = (t: Date | string | undefined): number | undefined => (t === undefined ? undefined : new Date(t).getTime());

const ready = (pod: V1Pod | undefined) => !!pod?.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');

export class ScaleWatch {
  readonly record: ScaleRecord = { instances: new Map(), maxNotReady: 0, maxNotReadyAt: [], primaryPodUids: new Set(), samples: 0, failedSamples: 0 };
  private stopped = false;
  private readonly done: Promise<void>;
  // The product's clients: every list is abandoned (aborted) after SAMPLE_TIMEOUT_MS.
  private readonly clients = makeClients(kubeConfig(), undefined, { requestTimeoutMs: SAMPLE_TIMEOUT_MS });

  /** `primaryPod`: the pod of the instance that must never be touched (e.g. "db-1-0"). */
  constructor(
    readonly namespace: string,
    readonly cluster: string,
    readonly primaryPod: string,
  ) {
    this.done = this.loop();
  }

  private async sample(): Promise<void> {
    const selector = `${LABELS.cluster}=${this.cluster},${LABELS.component}=instance`;
    const [sets, pods] = await Promise.all([
      this.clients.apps.listNamespacedStatefulSet({ namespace: this.namespace, labelSelector: selector }),
      this.clients.core.listNamespacedPod({ namespace: this.namespace, labelSelector: selector }),
    ]);
    const now = Date.now();
    const podOf = (instance: string) => pods.items.find((p) => p.metadata?.name === `${instance}-0`);
    const present = new Map(sets.items.map((s) => [s.metadata!.name!, s]));
    const notReady: string[] = [];
    for (const [name, set] of present) {
      const t = this.record.instances.get(name) ?? {};
      t.created ??= serverTime(set.metadata?.creationTimestamp) ?? now;
      delete t.removed;
      const pod = podOf(name);
      if (ready(pod)) t.ready ??= serverTime(pod?.status?.conditions?.find((c) => c.type === 'Ready')?.lastTransitionTime) ?? now;
      else notReady.push(name);
      this.record.instances.set(name, t);
    }
    for (const [name, t] of this.record.instances) if (!present.has(name)) t.removed ??= now;
    if (notReady.length > this.record.maxNotReady) {
      this.record.maxNotReady = notReady.length;
      this.record.maxNotReadyAt = notReady;
    }
    const primary = pods.items.find((p) => p.metadata?.name === this.primaryPod);
    if (primary?.metadata?.uid) this.record.primaryPodUids.add(primary.metadata.uid);
    this.record.samples++;
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      await this.sample().catch((err: unknown) => {
        this.record.failedSamples++;
        this.record.lastError = err instanceof Error ? err.message : String(err);
      });
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  async stop(): Promise<ScaleRecord> {
    this.stopped = true;
    await this.done;
    return this.record;
  }
}
