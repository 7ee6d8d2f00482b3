// Storage auto-grow in e2e and in the autopilot benchmark: a writer that fills a cluster's data
// volume through <cluster>-rw, and a watch of one instance's data volume (the PV's tmpfs on this
// host, statfs) and claim (its requested size) that records when the volume crossed the
// auto-grow threshold and when the claim grew.
import { statfs } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { CoreV1Api, StorageV1Api } from '@kubernetes/client-node';
import type { AutoGrowSpec, PostgreSQLCluster } from '../../src/api/cluster.js';
import { parseQuantity } from '../../src/api/quantity.js';
import { errorText } from '../../src/util/error-text.js';
import { kubeConfig } from './env.js';
import type { HaCluster } from './ha-cluster.js';

/** PostgreSQL's words for a full disk (a relation that cannot grow, a file that cannot be written). */
export const ENOSPC = /No space left on device|could not extend file/i;

export interface FillReport {
  /** Bytes of rows acknowledged (payload only). */
  bytes: number;
  batches: number;
  /** Errors that say the disk is full. */
  enospc: number;
  /** Every error, in order (first 20). */
  errors: string[];
}

/** One row is 1 KiB of random hex: below the TOAST threshold, so it is stored as written (no compression). */
const FILL_SQL = 'INSERT INTO fill (payload) SELECT repeat(md5(random()::text), 32) FROM generate_series(1, $1)';

/**
 * Inserts `batchRows` rows of 1 KiB, pausing `pauseMs` between batches, on one connection
 * (reconnecting after an error). stopOnEnospc: ends at the first full-disk error.
 */
export class FillWriter {
  private stopped = false;
  private done?: Promise<void>;
  readonly report: FillReport = { bytes: 0, batches: 0, enospc: 0, errors: [] };

  constructor(
    private readonly config: pg.ClientConfig,
    private readonly opts: { batchRows: number; pauseMs: number; stopOnEnospc?: boolean },
  ) {}

  async prepare(): Promise<void> {
    const c = new pg.Client(this.config);
    c.on('error', () => {});
    await c.connect();
    try {
      await c.query('CREATE TABLE IF NOT EXISTS fill (id bigserial PRIMARY KEY, payload text)');
    } finally {
      await c.end().catch(() => {});
    }
  }

  start(): void {
    this.stopped = false;
    this.done = this.loop();
  }

  async stop(): Promise<FillReport> {
    this.stopped = true;
    await this.done;
    return this.report;
  }

  private async loop(): Promise<void> {
    let client: pg.Client | undefined;
    while (!this.stopped) {
      try {
        if (!client) {
          client = new pg.Client(this.config);
          client.on('error', () => {});
          await client.connect();
        }
        await client.query(FILL_SQL, [this.opts.batchRows]);
        this.report.bytes += this.opts.batchRows * 1024;
        this.report.batches++;
      } catch (err) {
        const text = errorText(err);
        if (this.report.errors.length < 20) this.report.errors.push(text);
        if (ENOSPC.test(text)) {
          this.report.enospc++;
          if (this.opts.stopOnEnospc) this.stopped = true;
        }
        await client?.end().catch(() => {});
        client = undefined;
      }
      await sleep(this.opts.pauseMs);
    }
    await client?.end().catch(() => {});
  }
}

/** A 1-instance cluster with a small data volume on `storageClass` and pg_wal on a 1Gi volume of its own. */
export async function createFillCluster(db: HaCluster, storageClass: string, size: string, autoGrow?: AutoGrowSpec): Promise<void> {
  await db.create((c: PostgreSQLCluster) => {
    c.spec.instances = 1;
    c.spec.highAvailability = { enabled: true, synchronousCommit: false };
    c.spec.backup = { enabled: false };
    c.spec.storage = { size, storageClass, ...(autoGrow ? { autoGrow } : {}) };
    // WAL on its own (large) volume: the data volume fills with table data, and a full data
    // volume fails the INSERT that extends a table ("could not extend file"), as on a real disk.
    c.spec.walStorage = { size: '1Gi', storageClass };
  });
}

/** A StorageClass that allows expansion (the apiserver refuses to grow claims of any other). */
export async function createExpandableStorageClass(name: string): Promise<void> {
  await kubeConfig()
    .makeApiClient(StorageV1Api)
    .createStorageClass({ body: { metadata: { name }, provisioner: 'pgpilot.io/process-kubelet', allowVolumeExpansion: true } });
}

export async function deleteStorageClass(name: string): Promise<void> {
  await kubeConfig().makeApiClient(StorageV1Api).deleteStorageClass({ name }).catch(() => undefined);
}

/** The host directory (the tmpfs) behind a claim. */
export async function claimDir(namespace: string, claim: string): Promise<string> {
  const core = kubeConfig().makeApiClient(CoreV1Api);
  const pvc = await core.readNamespacedPersistentVolumeClaim({ namespace, name: claim });
  const pv = await core.readPersistentVolume({ name: pvc.spec!.volumeName! });
  return pv.spec!.hostPath!.path;
}

export interface Growth {
  /** The claim's request before and after. */
  fromBytes: number;
  toBytes: number;
  /** When a sample first saw used% at the threshold before this growth (undefined: none did — it grew before the watch or between two samples). */
  crossedAt?: number;
  grownAt: number;
}

/**
 * Samples a claim's file system (statfs on the host) and its request every `intervalMs`: each
 * growth of the request is one Growth, with when used% was first seen at `thresholdPercent`
 * before it. `fromBytes` starts at `initialBytes` when given (the size the claim was created
 * with), so a growth before the watch started is one too. Also the fullest it ever was.
 */
export class GrowthWatch {
  readonly growths: Growth[] = [];
  maxUsedPercent = 0;
  private crossedAt?: number;
  private stopped = false;
  private done?: Promise<void>;

  constructor(
    private readonly namespace: string,
    private readonly claim: string,
    private readonly dir: string,
    private readonly thresholdPercent: number,
    private readonly intervalMs = 100,
    private readonly initialBytes?: number,
  ) {}

  start(): void {
    this.done = this.loop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.done;
  }

  private async loop(): Promise<void> {
    const core = kubeConfig().makeApiClient(CoreV1Api);
    let request = this.initialBytes ?? parseQuantity((await core.readNamespacedPersistentVolumeClaim({ namespace: this.namespace, name: this.claim })).spec!.resources!.requests!.storage!);
    while (!this.stopped) {
      const s = await statfs(this.dir);
      const used = s.blocks - s.bfree;
      const pct = (used / (used + s.bavail)) * 100;
      this.maxUsedPercent = Math.max(this.maxUsedPercent, pct);
      if (pct >= this.thresholdPercent) this.crossedAt ??= Date.now();
      const now = parseQuantity((await core.readNamespacedPersistentVolumeClaim({ namespace: this.namespace, name: this.claim })).spec!.resources!.requests!.storage!);
      if (now > request) {
        this.growths.push({ fromBytes: request, toBytes: now, ...(this.crossedAt !== undefined ? { crossedAt: this.crossedAt } : {}), grownAt: Date.now() });
        this.crossedAt = undefined;
        request = now;
      }
      await sleep(this.intervalMs);
    }
  }
}

/** The cluster's condition of a type, if any. */
export function conditionOf(c: PostgreSQLCluster, type: string) {
  return c.status?.conditions?.find((x) => x.type === type);
}
