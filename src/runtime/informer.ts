// An informer that keeps going: client-node's ListWatch stops on any watch error but 410 (and,
// since 2.x, the TimeoutError of its Watch's 30 s inactivity timeout), and a half-open connection
// can leave it silently stale. This wrapper restarts it with exponential
// backoff (never a tight loop against the apiserver) and re-lists periodically.
import { ListWatch, Watch, type KubeConfig, type KubernetesListObject, type KubernetesObject } from '@kubernetes/client-node';
import { errorText } from '../util/error-text.js';
import type { Logger } from './logger.js';
import type { OperatorMetrics } from './metrics.js';
import { getJson } from './raw-request.js';

export interface ResourceType {
  group: string; // '' for the core group
  version: string;
  plural: string;
  kind: string;
}

export function resourcePath(type: ResourceType, namespace?: string): string {
  const base = type.group ? `/apis/${type.group}/${type.version}` : `/api/${type.version}`;
  return namespace ? `${base}/namespaces/${namespace}/${type.plural}` : `${base}/${type.plural}`;
}

export type InformerEvent = 'add' | 'update' | 'delete';

export interface InformerOptions {
  kc: KubeConfig;
  type: ResourceType;
  namespace?: string;
  labelSelector?: string;
  log: Logger;
  metrics?: OperatorMetrics;
  /** Re-list this often (with ±10% jitter) to heal a watch that hangs without an error. */
  relistMs?: number;
  maxBackoffMs?: number;
  /** Drop more of each object before it is cached (what this kind's readers never use). */
  trim?: (obj: KubernetesObject) => void;
}

export class ResilientInformer<T extends KubernetesObject> {
  private readonly lw: ListWatch<T>;
  private backoffMs = 500;
  private stopped = false;
  private restartTimer?: NodeJS.Timeout;
  private relistTimer?: NodeJS.Timeout;
  private syncedResolve!: () => void;
  readonly synced: Promise<void> = new Promise((r) => (this.syncedResolve = r));
  private isSynced = false;

  constructor(private readonly opts: InformerOptions) {
    const path = resourcePath(opts.type, opts.namespace);
    const list = async (): Promise<KubernetesListObject<T>> => {
      try {
        const result = await getJson<KubernetesListObject<T>>(opts.kc, path, { labelSelector: opts.labelSelector });
        opts.metrics?.apiRequests.inc({ verb: 'list', resource: opts.type.plural, code: '200' });
        this.backoffMs = 500;
        if (!this.isSynced) {
          this.isSynced = true;
          this.syncedResolve();
        }
        return result;
      } catch (err) {
        const code = (err as { statusCode?: number }).statusCode;
        opts.metrics?.apiRequests.inc({ verb: 'list', resource: opts.type.plural, code: String(code ?? 'error') });
        throw err;
      }
    };
    const trim = (obj: T): T => {
      trimObject(obj);
      opts.trim?.(obj);
      return obj;
    };
    const trimmedList = async () => {
      const result = await list();
      result.items.forEach(trim);
      return result;
    };
    this.lw = new ListWatch<T>(path, new TrimmingWatch(opts.kc, trim as unknown as (o: KubernetesObject) => KubernetesObject), trimmedList, false, opts.labelSelector);
    this.lw.on('connect', () => opts.metrics?.apiRequests.inc({ verb: 'watch', resource: opts.type.plural, code: '200' }));
    this.lw.on('error', (err) => this.restartLater(err));
    // The restarts counter of this resource exists from 0, so increase() sees its first restart.
    opts.metrics?.informerRestarts.inc({ resource: opts.type.plural }, 0);
  }

  get name(): string {
    return this.opts.namespace ? `${this.opts.type.plural}@${this.opts.namespace}` : this.opts.type.plural;
  }

  on(event: InformerEvent, handler: (obj: T) => void): void {
    this.lw.on(event, handler);
  }

  list(namespace?: string): ReadonlyArray<T> {
    return this.lw.list(namespace);
  }

  get(name: string, namespace?: string): T | undefined {
    return this.lw.get(name, namespace);
  }

  hasSynced(): boolean {
    return this.isSynced;
  }

  async start(): Promise<void> {
    this.stopped = false;
    await this.lw.start();
    this.scheduleRelist();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.restartTimer);
    clearTimeout(this.relistTimer);
    await this.lw.stop();
  }

  private restartLater(err: unknown): void {
    // Our own stop()/relist aborts the watch request; that is not a failure to recover from.
    if (this.stopped || isAbort(err)) return;
    const delay = this.backoffMs;
    this.backoffMs = Math.min(this.backoffMs * 2, this.opts.maxBackoffMs ?? 30_000);
    this.opts.metrics?.informerRestarts.inc({ resource: this.opts.type.plural });
    this.opts.log.warn({ informer: this.name, err: errorText(err), retryInMs: delay }, 'informer stopped on an error; restarting');
    clearTimeout(this.restartTimer);
    this.restartTimer = setTimeout(() => {
      // start() resumes the watch from the last resourceVersion; a 410 makes it re-list.
      if (!this.stopped) this.lw.start().catch((e) => this.restartLater(e));
    }, delay);
  }

  private scheduleRelist(): void {
    const base = this.opts.relistMs ?? 10 * 60_000;
    const delay = base * (0.9 + Math.random() * 0.2);
    clearTimeout(this.relistTimer);
    this.relistTimer = setTimeout(() => void this.relist(), delay);
    this.relistTimer.unref();
  }

  /** A full re-list: differences against the cache fire add/update/delete as usual. */
  private async relist(): Promise<void> {
    if (this.stopped) return;
    await this.lw.stop();
    // ListWatch re-lists only when it has no resourceVersion; forget it to force one.
    (this.lw as unknown as { resourceVersion: string }).resourceVersion = '';
    await this.lw.start().catch((e) => this.restartLater(e));
    this.scheduleRelist();
  }
}

/**
 * What the operator never reads is dropped before it is cached: managedFields (often half of an
 * object) and kubectl's last-applied copy of the whole object. At hundreds of clusters this is
 * most of the operator's memory.
 */
export function trimObject<T extends KubernetesObject>(obj: T): T {
  const meta = obj.metadata as (KubernetesObject['metadata'] & { managedFields?: unknown }) | undefined;
  if (meta) {
    delete meta.managedFields;
    if (meta.annotations) delete meta.annotations['kubectl.kubernetes.io/last-applied-configuration'];
  }
  return obj;
}

class TrimmingWatch extends Watch {
  constructor(
    kc: KubeConfig,
    private readonly trim: (obj: KubernetesObject) => KubernetesObject,
  ) {
    super(kc);
  }

  override watch(path: string, query: Record<string, string | number | boolean | undefined>, callback: (phase: string, apiObj: any, watchObj?: any) => void, done: (err: any) => void): Promise<AbortController> {
    // ERROR events carry a Status, not an object of this kind: pass those through untouched.
    return super.watch(path, query, (phase, obj, raw) => callback(phase, phase !== 'ERROR' && obj && typeof obj === 'object' ? this.trim(obj) : obj, raw), done);
  }
}

function isAbort(err: unknown): boolean {
  const e = err as { name?: string; type?: string } | undefined;
  return e?.name === 'AbortError' || e?.type === 'aborted';
}
