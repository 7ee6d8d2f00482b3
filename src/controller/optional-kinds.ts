// Kinds the operator owns only while their CRDs exist (the Prometheus Operator's PodMonitor):
// discovered at start and re-checked every `everyMs`, their informers started when the API
// appears and stopped when it goes — no operator restart either way, and no informer left
// retrying against a resource that is not there. Each change re-queues every cluster.
import type { KubeConfig, KubernetesObject } from '@kubernetes/client-node';
import { LABELS, MANAGED_BY } from '../api/constants.js';
import type { OwnedKind } from '../reconcilers/types.js';
import { ResilientInformer, type ResourceType } from '../runtime/informer.js';
import type { Logger } from '../runtime/logger.js';
import type { OperatorMetrics } from '../runtime/metrics.js';
import { KubeHttpError, getJson } from '../runtime/raw-request.js';
import { errorText } from '../util/error-text.js';

export const OPTIONAL_RESOURCES: Partial<Record<OwnedKind, ResourceType>> = {
  PodMonitor: { group: 'monitoring.coreos.com', version: 'v1', plural: 'podmonitors', kind: 'PodMonitor' },
};

const DISCOVERY_TIMEOUT_MS = 5000;

export interface OptionalKindsOptions {
  kc: KubeConfig;
  log: Logger;
  metrics: OperatorMetrics;
  relistMs?: number;
  /** Namespaces to watch ([undefined]: all). */
  scopes: Array<string | undefined>;
  everyMs: number;
  /** An object of an optional kind changed (its owner is re-queued). */
  onObject: (o: KubernetesObject) => void;
  /** A kind's informers have listed, or were stopped (every cluster is re-queued). */
  onChange: (kind: OwnedKind) => void;
}

/** Whether the apiserver serves `type` (its group/version's discovery document lists the plural). */
export async function served(kc: KubeConfig, type: ResourceType): Promise<boolean> {
  try {
    const list = await getJson<{ resources?: Array<{ name: string }> }>(kc, `/apis/${type.group}/${type.version}`, {}, { timeoutMs: DISCOVERY_TIMEOUT_MS });
    return (list.resources ?? []).some((r) => r.name === type.plural);
  } catch (err) {
    if (err instanceof KubeHttpError && err.statusCode === 404) return false;
    throw err;
  }
}

export class OptionalKinds {
  private readonly running = new Map<OwnedKind, Array<ResilientInformer<KubernetesObject>>>();
  private timer?: NodeJS.Timeout;
  private checking = false;

  constructor(private readonly o: OptionalKindsOptions) {}

  /** The first check (awaited), then one every `everyMs`. */
  async start(): Promise<void> {
    await this.check();
    this.timer = setInterval(() => void this.check(), this.o.everyMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await Promise.all([...this.running.values()].flat().map((i) => i.stop()));
    this.running.clear();
  }

  async check(): Promise<void> {
    if (this.checking) return;
    this.checking = true;
    try {
      for (const [kind, type] of Object.entries(OPTIONAL_RESOURCES) as Array<[OwnedKind, ResourceType]>) await this.checkKind(kind, type);
    } finally {
      this.checking = false;
    }
  }

  private async checkKind(kind: OwnedKind, type: ResourceType): Promise<void> {
    let present: boolean;
    try {
      present = await served(this.o.kc, type);
    } catch (err) {
      // Unknown this time: keep what runs, look again next time.
      this.o.log.warn({ kind, err: errorText(err) }, 'could not discover whether the API is served');
      return;
    }
    const informers = this.running.get(kind);
    if (present && !informers) await this.startKind(kind, type);
    if (!present && informers) {
      this.running.delete(kind);
      await Promise.all(informers.map((i) => i.stop()));
      this.o.log.info({ kind, group: type.group }, 'the API is gone: stopped watching it');
      this.o.onChange(kind);
    }
  }

  /** The informers of a kind, while it is served. */
  informers(kind: OwnedKind): Array<ResilientInformer<KubernetesObject>> {
    return this.running.get(kind) ?? [];
  }

  /** Served, and listed by every informer. */
  watching(kind: OwnedKind): boolean {
    const informers = this.running.get(kind);
    return !!informers && informers.every((i) => i.hasSynced());
  }

  /** Starts the informers; the change is announced once they have listed (not awaited: a list refused by RBAC must not hold the checks). */
  private async startKind(kind: OwnedKind, type: ResourceType): Promise<void> {
    const { kc, log, metrics, relistMs } = this.o;
    const informers = this.o.scopes.map(
      (namespace) => new ResilientInformer<KubernetesObject>({ kc, log, metrics, relistMs, type, namespace, labelSelector: `${LABELS.managedBy}=${MANAGED_BY}` }),
    );
    for (const inf of informers) for (const ev of ['add', 'update', 'delete'] as const) inf.on(ev, (o) => this.o.onObject(o));
    this.running.set(kind, informers);
    await Promise.all(informers.map((i) => i.start()));
    void Promise.all(informers.map((i) => i.synced)).then(() => {
      if (this.running.get(kind) !== informers) return;
      log.info({ kind, group: type.group }, 'the API is served: watching it');
      this.o.onChange(kind);
    });
  }
}
