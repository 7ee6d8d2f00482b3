// One PostgreSQLCluster on the process kubelet, with the moves HA tests and the failover benchmark
// make: wait until healthy, fail the primary under a write load, switch over — each measured.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CustomObjectsApi, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { parse, stringify } from 'yaml';
import type pg from 'pg';
import { API_GROUP, API_VERSION, CLUSTER_PLURAL } from '../../src/api/constants.js';
import type { PostgreSQLCluster } from '../../src/api/cluster.js';
import type { ProcessKubelet } from '../kubelet/index.js';
import { kubeConfig, waitFor } from './env.js';
import { kubectlOk } from './kubectl.js';
import { REPO_ROOT } from './operator.js';
import { LedgerWriter, appCredentials, missingIds, serviceClientConfig, type Credentials } from './postgres.js';

export interface FailoverResult {
  oldPrimary: string;
  newPrimary: string;
  /** Fault in effect (process killed or frozen) → first write acknowledged afterwards (through the rw Service). */
  writeGapMs: number;
  acknowledged: number;
  lost: number[];
}

export class HaCluster {
  private creds?: Credentials;

  constructor(
    readonly kubelet: ProcessKubelet,
    readonly namespace: string,
    readonly name: string,
  ) {}

  /** The seed manifest in this namespace, with small storage and resources, then `patch`. */
  async create(patch: (c: PostgreSQLCluster) => void = () => {}): Promise<void> {
    const c = parse(readFileSync(join(REPO_ROOT, 'examples/cluster.yaml'), 'utf8')) as PostgreSQLCluster;
    c.metadata = { name: this.name, namespace: this.namespace };
    c.spec.storage = { size: '1Gi', storageClass: 'fast-ssd' };
    // Small enough for several instances on 2 cores; the seed's own resources are exercised elsewhere.
    c.spec.resources = { requests: { cpu: '100m', memory: '256Mi' }, limits: { cpu: '2', memory: '1Gi' } };
    patch(c);
    await kubectlOk(['apply', '-f', '-'], stringify(c));
  }

  async get(): Promise<PostgreSQLCluster> {
    const api = kubeConfig().makeApiClient(CustomObjectsApi);
    return (await api.getNamespacedCustomObject({ group: API_GROUP, version: API_VERSION, plural: CLUSTER_PLURAL, namespace: this.namespace, name: this.name })) as PostgreSQLCluster;
  }

  async patchSpec(spec: Record<string, unknown>): Promise<void> {
    const api = kubeConfig().makeApiClient(CustomObjectsApi);
    await api.patchNamespacedCustomObject(
      { group: API_GROUP, version: API_VERSION, plural: CLUSTER_PLURAL, namespace: this.namespace, name: this.name, body: { spec } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
  }

  /** Healthy: every instance ready, the primary accepting writes, every replica streaming. */
  async healthy(instances: number, timeoutMs = 180_000): Promise<PostgreSQLCluster> {
    const c = await waitFor(
      `${this.name} healthy with ${instances} instances`,
      async () => {
        const c = await this.get();
        const cond = (t: string) => c.status?.conditions?.find((x) => x.type === t)?.status;
        const ok = c.status?.phase === 'Healthy' && c.status.readyInstances === instances && cond('PrimaryAvailable') === 'True' && cond('ReplicasStreaming') === 'True';
        return ok ? c : undefined;
      },
      { timeoutMs, intervalMs: 250 },
    );
    this.creds ??= await appCredentials(this.namespace, this.name);
    return c;
  }

  rw(): pg.ClientConfig {
    return serviceClientConfig(this.kubelet, this.namespace, `${this.name}-rw`, this.creds!);
  }

  ro(): pg.ClientConfig {
    return serviceClientConfig(this.kubelet, this.namespace, `${this.name}-ro`, this.creds!);
  }

  private async underLoad<T>(table: string, act: (writer: LedgerWriter) => Promise<T>): Promise<{ result: T; acknowledged: number[]; lost: number[]; longestGapMs: number }> {
    const writer = new LedgerWriter(this.rw(), table);
    // Healthy in status can precede the Services' routing by a moment (a rejoin just finished).
    await waitFor(`table ${table} created through -rw`, () => writer.prepare().then(() => true, () => false), { timeoutMs: 60_000, intervalMs: 250 });
    writer.start();
    await waitFor('writes flowing', async () => writer.acknowledged.length >= 20);
    const result = await act(writer);
    await new Promise((r) => setTimeout(r, 500));
    const report = await writer.stop();
    // Reading the ledger back may meet a connection the proxy drops while an old primary rejoins: retry it.
    const lost = await waitFor(`ledger ${table} read back through -rw`, () => missingIds(this.rw(), report.acknowledged, table).catch(() => undefined), { timeoutMs: 60_000, intervalMs: 250 });
    return { result, acknowledged: report.acknowledged, lost, longestGapMs: report.longestGapMs };
  }

  /** Fault the primary's pod under a write load; returns once a new primary acknowledged a write. */
  async failover(table: string, fault: (pod: string) => Promise<unknown>, recover: (pod: string) => Promise<unknown> = async () => {}): Promise<FailoverResult> {
    const oldPrimary = (await this.get()).status!.currentPrimary!;
    const run = await this.underLoad(table, async (writer) => {
      await fault(`${oldPrimary}-0`);
      // From the moment the fault is in effect: an INSERT the old primary acknowledged before it
      // died must not count as the first write after the failover.
      const faultAt = Date.now();
      const after = await waitFor('a new primary', async () => {
        const c = await this.get();
        return c.status?.currentPrimary && c.status.currentPrimary !== oldPrimary ? c : undefined;
      }, { timeoutMs: 60_000, intervalMs: 100 });
      const firstAck = await waitFor('a write acknowledged after the fault', async () => writer.firstAckAfter(faultAt + 1), { timeoutMs: 60_000, intervalMs: 20 });
      return { newPrimary: after.status!.currentPrimary!, writeGapMs: firstAck - faultAt };
    });
    await recover(`${oldPrimary}-0`);
    return { oldPrimary, ...run.result, acknowledged: run.acknowledged.length, lost: run.lost };
  }

  /** Switch over to `target` under a write load; the longest gap between acknowledged writes. */
  async switchover(table: string, target: string): Promise<{ gapMs: number; lost: number[] }> {
    const run = await this.underLoad(table, async () => {
      await this.patchSpec({ primary: target });
      await waitFor(`${target} is primary`, async () => (await this.get()).status?.currentPrimary === target, { timeoutMs: 60_000, intervalMs: 100 });
    });
    return { gapMs: run.longestGapMs, lost: run.lost };
  }
}
