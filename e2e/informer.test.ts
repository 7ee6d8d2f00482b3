// The resilient informer against the real apiserver. Faults come from real RBAC: an informer
// whose identity may not list fails, must retry with backoff (never a tight loop), and must
// recover by itself once access is granted; it re-lists periodically.
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CoreV1Api, KubeConfig, RbacAuthorizationV1Api, type V1ConfigMap } from '@kubernetes/client-node';
import { createLogger } from '../src/runtime/logger.js';
import { OperatorMetrics } from '../src/runtime/metrics.js';
import { ResilientInformer } from '../src/runtime/informer.js';
import { createTestNamespace, deleteTestNamespace, kubeConfig, waitFor } from './harness/env.js';

const CONFIGMAPS = { group: '', version: 'v1', plural: 'configmaps', kind: 'ConfigMap' };

async function serviceAccountKubeConfig(namespace: string, name: string): Promise<KubeConfig> {
  const core = kubeConfig().makeApiClient(CoreV1Api);
  await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name } } });
  const token = await core.createNamespacedServiceAccountToken({ namespace, name, body: { spec: { audiences: [], expirationSeconds: 3600 } } });
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'e2e', server: kubeConfig().getCurrentCluster()!.server, skipTLSVerify: true }],
    users: [{ name, token: token.status!.token }],
    contexts: [{ name, cluster: 'e2e', user: name }],
    currentContext: name,
  });
  return kc;
}

describe('ResilientInformer', () => {
  let ns: string;
  let informer: ResilientInformer<V1ConfigMap>;
  const metrics = new OperatorMetrics();
  const seen: string[] = [];
  const rbac = () => kubeConfig().makeApiClient(RbacAuthorizationV1Api);
  const core = () => kubeConfig().makeApiClient(CoreV1Api);
  const counter = async (name: 'informerRestarts' | 'apiRequests', labels: Record<string, string>) =>
    (await metrics[name].get()).values.filter((v) => Object.entries(labels).every(([k, l]) => (v.labels as Record<string, unknown>)[k] === l)).reduce((a, v) => a + v.value, 0);

  beforeAll(async () => {
    ns = await createTestNamespace('informer');
    const kc = await serviceAccountKubeConfig(ns, 'watcher');
    informer = new ResilientInformer<V1ConfigMap>({ kc, type: CONFIGMAPS, namespace: ns, log: createLogger('error'), metrics, relistMs: 1500, maxBackoffMs: 1000 });
    for (const ev of ['add', 'update', 'delete'] as const) informer.on(ev, (cm) => seen.push(`${ev}:${cm.metadata!.name}`));
  });

  afterAll(async () => {
    await informer?.stop();
    if (ns) await deleteTestNamespace(ns);
  });

  it('keeps retrying with backoff while it may not list, and recovers once allowed', async () => {
    await informer.start();
    await waitFor('three restarts after 403s', async () => (await counter('informerRestarts', { resource: 'configmaps' })) >= 3);
    expect(informer.hasSynced()).toBe(false);
    expect(await counter('apiRequests', { verb: 'list', code: '403' })).toBeGreaterThanOrEqual(3);
    // Backoff: 0.5 s, 1 s, 1 s, … — a tight loop would have made hundreds of calls by now.
    const started = Date.now();
    const before = await counter('apiRequests', { verb: 'list' });
    await sleep(3000);
    const rate = ((await counter('apiRequests', { verb: 'list' })) - before) / ((Date.now() - started) / 1000);
    expect(rate).toBeLessThanOrEqual(3);

    await rbac().createNamespacedRole({ namespace: ns, body: { metadata: { name: 'watch-configmaps' }, rules: [{ apiGroups: [''], resources: ['configmaps'], verbs: ['list', 'watch'] }] } });
    await rbac().createNamespacedRoleBinding({
      namespace: ns,
      body: { metadata: { name: 'watch-configmaps' }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'watch-configmaps' }, subjects: [{ kind: 'ServiceAccount', name: 'watcher', namespace: ns }] },
    });
    await waitFor('synced after access was granted', async () => informer.hasSynced(), { timeoutMs: 30_000 });
    await informer.synced;
    expect(informer.list(ns).map((c) => c.metadata!.name)).toContain('kube-root-ca.crt');
  });

  it('delivers add, update and delete from the watch, with managedFields dropped', async () => {
    await core().createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'a' }, data: { k: '1' } } });
    await waitFor('add:a', async () => seen.includes('add:a'));
    expect((informer.get('a', ns)!.metadata as Record<string, unknown>).managedFields).toBeUndefined();
    await core().replaceNamespacedConfigMap({ name: 'a', namespace: ns, body: { metadata: { name: 'a' }, data: { k: '2' } } });
    await waitFor('the update in the cache', async () => informer.get('a', ns)?.data?.k === '2');
    expect(seen).toContain('update:a');
    await core().deleteNamespacedConfigMap({ name: 'a', namespace: ns });
    await waitFor('delete:a', async () => seen.includes('delete:a'));
    expect(informer.get('a', ns)).toBeUndefined();
  });

  it('re-lists periodically', async () => {
    const lists = await counter('apiRequests', { verb: 'list', code: '200' });
    await waitFor('two more successful lists', async () => (await counter('apiRequests', { verb: 'list', code: '200' })) >= lists + 2, { timeoutMs: 10_000 });
    // A re-list changes nothing when nothing changed: no spurious delete/add events.
    const events = seen.length;
    await sleep(2000);
    expect(seen.slice(events).filter((e) => e.startsWith('delete:'))).toEqual([]);
  });
});
