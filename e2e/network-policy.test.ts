// spec.networkPolicy against a real apiserver: the operator owns the NetworkPolicy it describes,
// leaves it alone once converged (no write per reconcile), removes it when turned off, and the
// apiserver refuses a malformed peer. Enforcement is the CNI's job: the process kubelet enforces no
// NetworkPolicy, so nothing here sends traffic through one (docs/security.md).
import { CustomObjectsApi, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PostgreSQLCluster } from '../src/api/cluster.js';
import { API_GROUP, API_VERSION, CLUSTER_PLURAL } from '../src/api/constants.js';
import { apiErrorMessage } from '../src/runtime/apply.js';
import { createTestNamespace, deleteTestNamespace, kubeConfig, waitFor } from './harness/env.js';
import { kubectl } from './harness/kubectl.js';
import { OPERATOR_NAMESPACE, startOperator, type RunningOperator } from './harness/operator.js';
import { parseJson } from '../src/util/json.js';

const NAME = 'np-db';
const custom = () => kubeConfig().makeApiClient(CustomObjectsApi);
const ref = (namespace: string) => ({ group: API_GROUP, version: API_VERSION, plural: CLUSTER_PLURAL, namespace, name: NAME });
const merge = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

interface Policy {
  metadata: { ownerReferences?: Array<{ kind: string; name: string }> };
  spec: { podSelector: { matchLabels: Record<string, string> }; ingress: Array<{ from?: unknown[]; ports: Array<{ port: number }> }> };
}

async function policy(ns: string): Promise<Policy | undefined> {
  const r = await kubectl(['get', 'networkpolicy', NAME, '-n', ns, '-o', 'json']);
  return r.code === 0 ? parseJson<Policy>(r.stdout, 'kubectl get networkpolicy') : undefined;
}

describe('spec.networkPolicy', () => {
  let ns: string;
  let operator: RunningOperator;
  beforeAll(async () => {
    ns = await createTestNamespace('netpol');
    operator = await startOperator({ watchNamespaces: [ns] });
    const cluster: PostgreSQLCluster = {
      apiVersion: `${API_GROUP}/${API_VERSION}`,
      kind: 'PostgreSQLCluster',
      metadata: { name: NAME, namespace: ns },
      spec: { version: '16.4', instances: 1, storage: { size: '1Gi' }, networkPolicy: { enabled: true, clients: [{ podSelector: { matchLabels: { app: 'web' } } }] } },
    } as PostgreSQLCluster;
    await custom().createNamespacedCustomObject({ group: API_GROUP, version: API_VERSION, plural: CLUSTER_PLURAL, namespace: ns, body: cluster });
  });
  afterAll(async () => {
    await operator?.stop();
    if (ns) await deleteTestNamespace(ns);
  });

  it('owns a NetworkPolicy that admits the operator to the agent port and the listed clients to PostgreSQL', async () => {
    const np = await waitFor('the NetworkPolicy', () => policy(ns), { timeoutMs: 60_000 });
    expect(np.metadata.ownerReferences).toEqual([expect.objectContaining({ kind: 'PostgreSQLCluster', name: NAME })]);
    expect(np.spec.podSelector.matchLabels).toEqual({ 'postgres.pgpilot.io/cluster': NAME, 'app.kubernetes.io/component': 'instance' });
    const byPort = (port: number) => np.spec.ingress.filter((r) => r.ports.some((p) => p.port === port)).flatMap((r) => r.from ?? ['anyone']);
    expect(byPort(8000)).toEqual([{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': OPERATOR_NAMESPACE } }, podSelector: { matchLabels: { 'app.kubernetes.io/part-of': 'pgpilot', 'app.kubernetes.io/component': 'operator' } } }]);
    expect(byPort(5432)).toContainEqual({ podSelector: { matchLabels: { app: 'web' } } });
    expect(byPort(5432)).not.toContain('anyone');
    expect(byPort(9187)).toEqual([{ namespaceSelector: {}, podSelector: { matchLabels: { 'app.kubernetes.io/name': 'prometheus' } } }]);
  });

  it('writes it no more once converged', async () => {
    const writes = () => operator.counter('pgpilot_kube_api_requests_total', (l) => l.resource === 'networkpolicies' && l.verb === 'patch');
    const before = await writes();
    expect(before).toBeGreaterThan(0);
    // Each change of the cluster's annotations is a reconcile.
    for (let i = 0; i < 3; i++) {
      await custom().patchNamespacedCustomObject({ ...ref(ns), body: { metadata: { annotations: { 'e2e/poke': String(i) } } } }, merge);
      await sleep(1500);
    }
    expect(await writes()).toBe(before);
  });

  it('refuses a peer that mixes ipBlock with selectors, naming the field', async () => {
    const err = await custom()
      .patchNamespacedCustomObject({ ...ref(ns), body: { spec: { networkPolicy: { enabled: true, clients: [{ ipBlock: { cidr: '10.0.0.0/8' }, podSelector: {} }] } } } }, merge)
      .then(() => undefined, (e: unknown) => apiErrorMessage(e));
    expect(err).toMatch(/spec\.networkPolicy\.clients\[0\].*a peer is either ipBlock alone, or podSelector and\/or namespaceSelector/);
  });

  it('removes it when turned off', async () => {
    await custom().patchNamespacedCustomObject({ ...ref(ns), body: { spec: { networkPolicy: { enabled: false } } } }, merge);
    await waitFor('the NetworkPolicy removed', async () => (await policy(ns)) === undefined, { timeoutMs: 60_000 });
  });
});
