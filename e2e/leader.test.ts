// Two operator replicas with one Lease: only the leader reconciles; when it stops, it releases
// the Lease and the standby (caches already warm) takes over within a retry period.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CoordinationV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import { parse } from 'yaml';
import { API_GROUP, API_VERSION, CLUSTER_PLURAL } from '../src/api/constants.js';
import type { PostgreSQLCluster } from '../src/api/cluster.js';
import { createTestNamespace, deleteTestNamespace, kubeConfig, waitFor } from './harness/env.js';
import { OPERATOR_NAMESPACE, REPO_ROOT, startOperator, type RunningOperator } from './harness/operator.js';

const seed = parse(readFileSync(join(REPO_ROOT, 'examples/cluster.yaml'), 'utf8')) as PostgreSQLCluster;

describe('leader election', () => {
  let ns: string;
  let lease: string;
  let a: RunningOperator;
  let b: RunningOperator;
  const custom = () => kubeConfig().makeApiClient(CustomObjectsApi);
  const gauge = async (op: RunningOperator) => Number(/^pgpilot_leader (\d+)$/m.exec(await op.metricsText())?.[1]);

  async function createCluster(name: string): Promise<void> {
    await custom().createNamespacedCustomObject({ group: API_GROUP, version: API_VERSION, plural: CLUSTER_PLURAL, namespace: ns, body: { ...structuredClone(seed), metadata: { name, namespace: ns } } });
  }

  async function reconciled(name: string): Promise<boolean> {
    const c = (await custom().getNamespacedCustomObject({ group: API_GROUP, version: API_VERSION, plural: CLUSTER_PLURAL, namespace: ns, name })) as PostgreSQLCluster;
    return c.status?.observedGeneration === 1;
  }

  beforeAll(async () => {
    ns = await createTestNamespace('leader');
    lease = `pgpilot-${ns}`;
    a = await startOperator({ watchNamespaces: [ns], leaseName: lease });
    await waitFor('a leads', async () => (await gauge(a)) === 1);
    b = await startOperator({ watchNamespaces: [ns], leaseName: lease });
  });

  afterAll(async () => {
    await a?.stop();
    await b?.stop();
    if (ns) await deleteTestNamespace(ns);
  });

  it('only the leader reconciles', async () => {
    await createCluster('one');
    await waitFor('cluster one reconciled', () => reconciled('one'));
    expect(await gauge(a)).toBe(1);
    expect(await gauge(b)).toBe(0);
    // The status is written inside the pass; the pass is counted when it returns, a moment later.
    await waitFor('the leader counted its reconcile', async () => (await a.counter('pgpilot_reconcile_total')) > 0, { timeoutMs: 10_000 });
    expect(await b.counter('pgpilot_reconcile_total')).toBe(0);
    expect(await b.writeCalls()).toBe(0);
    const l = await kubeConfig().makeApiClient(CoordinationV1Api).readNamespacedLease({ name: lease, namespace: OPERATOR_NAMESPACE });
    expect(l.spec?.holderIdentity).toMatch(new RegExp(`-${a.pid}$`));
  });

  it('the standby takes over when the leader stops, and reconciles', async () => {
    const stopped = Date.now();
    await a.stop();
    // The Lease was released on shutdown (no 15 s expiry wait for b): a no longer holds it.
    const l = await kubeConfig().makeApiClient(CoordinationV1Api).readNamespacedLease({ name: lease, namespace: OPERATOR_NAMESPACE });
    expect(l.spec?.holderIdentity ?? '').not.toMatch(new RegExp(`-${a.pid}$`));
    await waitFor('b leads', async () => (await gauge(b)) === 1, { intervalMs: 100 });
    console.log(`[leader] b led ${Date.now() - stopped} ms after a was stopped`);
    await createCluster('two');
    await waitFor('cluster two reconciled by b', () => reconciled('two'));
    await waitFor('b counted its reconcile', async () => (await b.counter('pgpilot_reconcile_total')) > 0, { timeoutMs: 10_000 });
  });
});
