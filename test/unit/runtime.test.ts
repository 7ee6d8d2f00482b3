/**
 * The controller runtime's pure parts and the status decisions: steady-state comparison,
 * request classification for metrics, the keyed work queue, condition merging and the status
 * a cluster shows.
 */
import type { KubernetesObject, V1Pod, V1StatefulSet } from '@kubernetes/client-node';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Condition, PostgreSQLCluster } from '../../src/api/cluster.js';
import { LABELS } from '../../src/api/constants.js';
import { names } from '../../src/builders/names.js';
import { instanceStatefulSet } from '../../src/builders/statefulset.js';
import { findCondition, mergeConditions } from '../../src/reconcilers/conditions.js';
import { computeStatus, type StatusInputs } from '../../src/reconcilers/status.js';
import type { OwnedCache, OwnedKind } from '../../src/reconcilers/types.js';
import { isSubset, needsApply } from '../../src/runtime/compare.js';
import { classifyRequest } from '../../src/runtime/kube.js';
import { WorkQueue, type WorkQueueOptions, type WorkResult } from '../../src/runtime/workqueue.js';
import { jsonClone, seedCluster } from './fixtures.js';

describe('isSubset', () => {
  it('accepts fields the live object has in addition', () => {
    expect(isSubset({ spec: { replicas: 1 } }, { spec: { replicas: 1, revisionHistoryLimit: 10 }, status: {} })).toBe(true);
  });

  it('refuses a field the live object lacks, or holds as another shape', () => {
    expect(isSubset({ spec: { replicas: 1 } }, { spec: {} })).toBe(false);
    expect(isSubset({ spec: { selector: { a: 'b' } } }, { spec: { selector: 'a=b' } })).toBe(false);
    expect(isSubset({ spec: { ports: [] } }, { spec: { ports: {} } })).toBe(false);
  });

  it('requires arrays of the same length, compared item by item', () => {
    expect(isSubset({ args: ['a'] }, { args: ['a', 'b'] })).toBe(false);
    expect(isSubset({ args: ['a', 'b'] }, { args: ['a'] })).toBe(false);
    expect(isSubset({ args: ['a', 'b'] }, { args: ['b', 'a'] })).toBe(false);
    expect(isSubset({ c: [{ name: 'pg' }] }, { c: [{ name: 'pg', terminationMessagePath: '/dev/termination-log' }] })).toBe(true);
  });

  it.each([
    ['0.5', '500m'],
    ['1Gi', '1024Mi'],
    ['2', 2],
    ['1e3', '1k'],
    ['1.5Gi', '1536Mi'],
  ])('compares quantities by value: %j equals %j', (desired, live) => {
    expect(isSubset({ cpu: desired }, { cpu: live })).toBe(true);
  });

  it.each<[unknown, unknown]>([
    ['1Gi', '1G'],
    ['500m', '0.6'],
    ['a', 'b'],
    [true, false],
    [1, 2],
    ['x', undefined],
    [null, 'x'],
  ])('refuses a different scalar: %j vs %j', (desired, live) => {
    expect(isSubset({ v: desired }, { v: live })).toBe(false);
  });

  // Regression (fixed): compare.ts compares quantities as floats, and parseQuantity("700m") is
  // 700 * 1e-3 = 0.7000000000000001, not 0.7. The apiserver canonicalizes cpu "0.7" to "700m",
  // so a spec with cpu "0.7" (or 1.4, 1.9, 2.3, ...) never matches its live StatefulSet and every
  // reconcile re-applies it, breaking "a steady-state reconcile makes no write calls". Compare
  // exactly (e.g. scaled integers / BigInt on the parsed mantissa and exponent).
  it.each([
    ['0.7', '700m'],
    ['1.4', '1400m'],
    ['2.3', '2300m'],
  ])('compares quantities exactly: %j equals %j', (desired, live) => {
    expect(isSubset({ cpu: desired }, { cpu: live })).toBe(true);
  });
});

describe('needsApply', () => {
  const desired = () => ({
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: 'c', namespace: 'ns', labels: { a: '1' }, annotations: { n: 'x' }, ownerReferences: [{ uid: 'u', name: 'o' }] },
    data: { k: 'v' },
  });
  /** As an informer cache holds it: no apiVersion/kind, server metadata, a status. */
  const live = () => {
    const { apiVersion: _a, kind: _k, ...rest } = desired();
    return { ...rest, metadata: { ...rest.metadata, uid: 'x', resourceVersion: '7', managedFields: [{}], labels: { ...rest.metadata.labels, extra: 'y' } }, status: { anything: 1 } };
  };

  it('applies when there is no live object', () => {
    expect(needsApply(desired(), undefined)).toBe(true);
  });

  it('ignores apiVersion, kind, status and metadata other than labels, annotations and ownerReferences', () => {
    expect(needsApply(desired(), live())).toBe(false);
    expect(needsApply({ ...desired(), status: { phase: 'x' } }, live())).toBe(false);
    expect(needsApply({ ...desired(), metadata: { ...desired().metadata, name: 'other', namespace: 'elsewhere', finalizers: ['f'] } }, live())).toBe(false);
  });

  it.each<[string, (o: ReturnType<typeof live>) => void]>([
    ['a label', (o) => (o.metadata.labels.a = '2')],
    ['an annotation', (o) => delete (o.metadata.annotations as Partial<Record<string, string>>).n],
    ['the owner references', (o) => (o.metadata.ownerReferences = [])],
    ['the data', (o) => (o.data.k = 'w')],
  ])('applies when the live object differs in %s', (_what, change) => {
    const l = live();
    change(l);
    expect(needsApply(desired(), l)).toBe(true);
  });

  it('leaves a built StatefulSet alone once the apiserver has defaulted and canonicalized it', () => {
    const cluster = seedCluster({ resources: { requests: { cpu: '0.5', memory: '4Gi' }, limits: { cpu: 2, memory: '8Gi' } } });
    const built = instanceStatefulSet(cluster, 'prod-db-1', { instanceImageRepository: 'r' }) as unknown as Record<string, unknown>;
    const server = jsonClone(built) as { apiVersion?: string; kind?: string; metadata: Record<string, unknown>; spec: any; status?: unknown };
    delete server.apiVersion;
    delete server.kind;
    Object.assign(server.metadata, { uid: 'u', resourceVersion: '1', generation: 1 });
    server.spec.revisionHistoryLimit = 10;
    server.spec.template.spec.dnsPolicy = 'ClusterFirst';
    const container = server.spec.template.spec.containers[0];
    container.terminationMessagePath = '/dev/termination-log';
    container.resources = { requests: { cpu: '500m', memory: '4Gi' }, limits: { cpu: '2', memory: '8Gi' } };
    server.status = { replicas: 1, readyReplicas: 1 };
    expect(needsApply(built, server)).toBe(false);
    container.image = 'r:15.0';
    expect(needsApply(built, server)).toBe(true);
  });
});

describe('classifyRequest', () => {
  it.each([
    ['GET', '/api/v1/namespaces/ns/pods', 'list', 'pods'],
    ['GET', '/api/v1/namespaces/ns/pods?labelSelector=a%3Db', 'list', 'pods'],
    ['GET', '/api/v1/namespaces/ns/pods?watch=true&resourceVersion=5', 'watch', 'pods'],
    ['GET', '/api/v1/namespaces/ns/pods/p-0', 'get', 'pods'],
    ['GET', '/api/v1/pods', 'list', 'pods'],
    ['GET', '/apis/apps/v1/statefulsets?watch=true', 'watch', 'statefulsets'],
    ['GET', '/apis/apps/v1/namespaces/x/statefulsets/y', 'get', 'statefulsets'],
    ['POST', '/apis/apps/v1/namespaces/x/statefulsets', 'create', 'statefulsets'],
    ['PUT', '/apis/coordination.k8s.io/v1/namespaces/x/leases/l', 'update', 'leases'],
    ['patch', '/apis/postgres.pgpilot.io/v1/namespaces/ns/postgresqlclusters/c/status', 'patch', 'postgresqlclusters/status'],
    ['PATCH', '/apis/postgres.pgpilot.io/v1/namespaces/ns/postgresqlclusters/c/scale', 'patch', 'postgresqlclusters/scale'],
    ['DELETE', '/api/v1/namespaces/ns/persistentvolumeclaims/pgdata-c-1-0', 'delete', 'persistentvolumeclaims'],
    ['POST', '/api/v1/namespaces/ns/pods/p/eviction', 'create', 'pods/eviction'],
    ['GET', '/api/v1/nodes/n1', 'get', 'nodes'],
    ['GET', '/api/v1/nodes', 'list', 'nodes'],
    ['GET', '/api/v1/namespaces', 'list', 'namespaces'],
    ['GET', '/api/v1/namespaces/ns', 'get', 'namespaces'],
    ['GET', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions/postgresqlclusters.postgres.pgpilot.io', 'get', 'customresourcedefinitions'],
    ['GET', 'https://10.0.0.1:6443/apis/apps/v1/namespaces/x/statefulsets/y', 'get', 'statefulsets'],
  ])('%s %s is %s %s', (method, url, verb, resource) => {
    expect(classifyRequest(method, url)).toEqual({ verb, resource });
  });

  // Regression (fixed): classifyRequest strips "namespaces/<ns>" whenever more follows, so the namespace's own
  // subresources (status, finalize) are counted as resource "status"/"finalize" with verb "list".
  it('classifies a namespace\'s own subresources as namespaces/<sub>', () => {
    expect(classifyRequest('PUT', '/api/v1/namespaces/ns/finalize')).toEqual({ verb: 'update', resource: 'namespaces/finalize' });
    expect(classifyRequest('GET', '/api/v1/namespaces/ns/status')).toEqual({ verb: 'get', resource: 'namespaces/status' });
  });

  // Regression (fixed): a DELETE on a collection is Kubernetes' "deletecollection" verb (what RBAC and the
  // apiserver's own metrics call it); classifyRequest reports it as "delete".
  it('classifies DELETE on a collection as deletecollection', () => {
    expect(classifyRequest('DELETE', '/api/v1/namespaces/ns/pods?labelSelector=a%3Db')).toEqual({ verb: 'deletecollection', resource: 'pods' });
  });
});

describe('WorkQueue', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: 0 });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  /** Let every settled promise and due timer run. */
  const settle = () => vi.advanceTimersByTimeAsync(0);

  /**
   * A queue whose handler records each call and waits until the test releases it (or returns
   * at once with `instant`). `inFlight` tracks concurrency overall and per key.
   */
  function harness(opts: Partial<WorkQueueOptions> = {}, behaviour: { instant?: boolean; result?: (key: string, call: number) => WorkResult | Error | void } = {}) {
    const calls: Array<{ key: string; at: number }> = [];
    const pending: Array<{ key: string; release: () => void }> = [];
    const inFlight = new Map<string, number>();
    let running = 0;
    let maxRunning = 0;
    let maxPerKey = 0;
    const handler = async (key: string): Promise<WorkResult | void> => {
      calls.push({ key, at: Date.now() });
      const n = calls.filter((c) => c.key === key).length;
      running++;
      inFlight.set(key, (inFlight.get(key) ?? 0) + 1);
      maxRunning = Math.max(maxRunning, running);
      maxPerKey = Math.max(maxPerKey, inFlight.get(key)!);
      try {
        if (!behaviour.instant) await new Promise<void>((release) => pending.push({ key, release }));
        const out = behaviour.result?.(key, n);
        if (out instanceof Error) throw out;
        return out;
      } finally {
        running--;
        inFlight.set(key, inFlight.get(key)! - 1);
      }
    };
    const queue = new WorkQueue(handler, { concurrency: 1, ...opts });
    const releaseAll = async () => {
      while (pending.length > 0) {
        for (const p of pending.splice(0)) p.release();
        await settle();
      }
    };
    return {
      queue,
      calls,
      pending,
      releaseAll,
      callsOf: (key: string) => calls.filter((c) => c.key === key),
      get maxRunning() {
        return maxRunning;
      },
      get maxPerKey() {
        return maxPerKey;
      },
    };
  }

  it('handles a key once per add', async () => {
    const h = harness({}, { instant: true });
    h.queue.add('a');
    await settle();
    expect(h.calls.map((c) => c.key)).toEqual(['a']);
  });

  it('never runs one key twice at once, and runs it once more for adds made while it ran', async () => {
    const h = harness({ concurrency: 4 });
    h.queue.add('a');
    await settle();
    h.queue.add('a');
    h.queue.add('a');
    h.queue.add('a');
    await settle();
    expect(h.callsOf('a')).toHaveLength(1);
    await h.releaseAll();
    expect(h.callsOf('a')).toHaveLength(2);
    expect(h.maxPerKey).toBe(1);
  });

  it('coalesces duplicate adds of a key still waiting for a worker', async () => {
    const h = harness({ concurrency: 1 });
    h.queue.add('busy');
    await settle();
    for (let i = 0; i < 5; i++) h.queue.add('a');
    expect(h.queue.depth).toBe(1);
    await h.releaseAll();
    expect(h.callsOf('a')).toHaveLength(1);
  });

  it('runs different keys concurrently, up to the concurrency limit', async () => {
    const h = harness({ concurrency: 2 });
    for (const k of ['a', 'b', 'c', 'd', 'e']) h.queue.add(k);
    await settle();
    expect(h.calls.map((c) => c.key)).toEqual(['a', 'b']);
    expect(h.queue.depth).toBe(3);
    await h.releaseAll();
    expect(h.calls.map((c) => c.key).sort()).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(h.maxRunning).toBe(2);
  });

  it('reports the depth of the ready queue', async () => {
    const depths: number[] = [];
    const h = harness({ concurrency: 1, onDepth: (d) => depths.push(d) });
    for (const k of ['a', 'b', 'c']) h.queue.add(k);
    await h.releaseAll();
    expect(Math.max(...depths)).toBe(2);
    expect(depths.at(-1)).toBe(0);
  });

  it('retries a failing key with exponential backoff, capped at maxBackoffMs', async () => {
    const retries: Array<[number, number]> = [];
    const h = harness(
      { baseBackoffMs: 100, maxBackoffMs: 500, onRetry: (_k, attempt, delay) => retries.push([attempt, delay]) },
      { instant: true, result: () => new Error('boom') },
    );
    h.queue.add('a');
    await vi.advanceTimersByTimeAsync(100 + 200 + 400 + 500 + 500);
    const at = h.callsOf('a').map((c) => c.at);
    expect(at.slice(1).map((t, i) => t - at[i]!)).toEqual([100, 200, 400, 500, 500]);
    expect(retries.slice(0, 5)).toEqual([[1, 100], [2, 200], [3, 400], [4, 500], [5, 500]]);
  });

  it('starts the backoff over after a success', async () => {
    const h = harness({ baseBackoffMs: 100 }, { instant: true, result: (_k, n) => (n === 3 ? undefined : new Error(`fail ${n}`)) });
    h.queue.add('a');
    await vi.advanceTimersByTimeAsync(300); // fails at 0, fails at 100, succeeds at 300
    expect(h.callsOf('a')).toHaveLength(3);
    h.queue.add('a'); // fails again: the next try must come after 100 ms, not 400
    await settle();
    await vi.advanceTimersByTimeAsync(100);
    expect(h.callsOf('a')).toHaveLength(5);
  });

  it('runs a key again after requeueAfterMs, not before', async () => {
    const h = harness({}, { instant: true, result: (_k, n) => (n === 1 ? { requeueAfterMs: 5000 } : undefined) });
    h.queue.add('a');
    await vi.advanceTimersByTimeAsync(4999);
    expect(h.callsOf('a')).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(h.callsOf('a')).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(h.callsOf('a')).toHaveLength(2);
  });

  it('keeps the earlier of two delayed adds of a key', async () => {
    const h = harness({}, { instant: true });
    h.queue.add('a', 5000);
    h.queue.add('a', 1000);
    h.queue.add('a', 3000);
    await vi.advanceTimersByTimeAsync(1000);
    expect(h.callsOf('a').map((c) => c.at)).toEqual([1000]);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(h.callsOf('a')).toHaveLength(1);
  });

  it('shutdown waits for in-flight work, then takes no more', async () => {
    const h = harness({ concurrency: 1 });
    h.queue.add('a');
    h.queue.add('b');
    h.queue.add('c', 1000);
    await settle();
    let done = false;
    const stopped = h.queue.shutdown().then(() => (done = true));
    await settle();
    expect(done).toBe(false);
    h.queue.add('d');
    await h.releaseAll();
    await stopped;
    await vi.advanceTimersByTimeAsync(5000);
    expect(h.calls.map((c) => c.key)).toEqual(['a']);
  });

  it('shutdown of an idle queue resolves at once', async () => {
    const h = harness();
    await expect(h.queue.shutdown()).resolves.toBeUndefined();
  });
});

describe('mergeConditions', () => {
  const t0 = new Date('2024-05-01T10:00:00.123Z');
  const t1 = new Date('2024-05-01T11:00:00.456Z');
  const ready = (status: 'True' | 'False', reason = 'R', message = 'm') => ({ type: 'Ready', status, reason, message });

  it('stamps new conditions with the time (whole seconds) and generation', () => {
    expect(mergeConditions(undefined, [ready('True')], 3, t0)).toEqual([{ ...ready('True'), lastTransitionTime: '2024-05-01T10:00:00Z', observedGeneration: 3 }]);
  });

  it('keeps lastTransitionTime while the status stays, even as reason and message change', () => {
    const before = mergeConditions(undefined, [ready('False', 'A', 'first')], 1, t0);
    const after = mergeConditions(before, [ready('False', 'B', 'second')], 2, t1);
    expect(after).toEqual([{ ...ready('False', 'B', 'second'), lastTransitionTime: '2024-05-01T10:00:00Z', observedGeneration: 2 }]);
  });

  it('moves lastTransitionTime when the status changes', () => {
    const before = mergeConditions(undefined, [ready('False')], 1, t0);
    expect(findCondition(mergeConditions(before, [ready('True')], 1, t1), 'Ready')?.lastTransitionTime).toBe('2024-05-01T11:00:00Z');
  });

  it('keeps conditions it was not given, and sorts by type', () => {
    const previous: Condition[] = [{ type: 'Zeta', status: 'True', reason: 'Z', message: 'z', lastTransitionTime: '2024-01-01T00:00:00Z' }];
    const merged = mergeConditions(previous, [ready('True'), { type: 'Degraded', status: 'False', reason: 'D', message: 'd' }], 1, t0);
    expect(merged.map((c) => c.type)).toEqual(['Degraded', 'Ready', 'Zeta']);
    expect(findCondition(merged, 'Zeta')).toEqual(previous[0]);
  });

  it('omits observedGeneration without a generation', () => {
    expect(mergeConditions(undefined, [ready('True')], undefined, t0)[0]).not.toHaveProperty('observedGeneration');
  });
});

describe('computeStatus', () => {
  const NOW = new Date('2024-05-01T12:00:00Z');
  const NS = 'production';
  const instances = (n: number) => Array.from({ length: n }, (_, i) => names.instance('prod-db', i + 1));

  /** An OwnedCache over plain arrays: the pure function's input, not a Kubernetes mock. */
  function cacheOf(objects: Array<[OwnedKind, KubernetesObject]>): OwnedCache {
    return {
      get: <T extends KubernetesObject>(kind: OwnedKind, namespace: string, name: string) =>
        objects.find(([k, o]) => k === kind && o.metadata?.namespace === namespace && o.metadata?.name === name)?.[1] as T | undefined,
      listForCluster: <T extends KubernetesObject>(kind: OwnedKind, namespace: string, cluster: string) =>
        objects.filter(([k, o]) => k === kind && o.metadata?.namespace === namespace && o.metadata?.labels?.[LABELS.cluster] === cluster).map(([, o]) => o as T),
      backupsOf: () => [],
      getBackup: () => undefined,
    };
  }
  const sts = (instance: string, ready: boolean): [OwnedKind, V1StatefulSet] => [
    'StatefulSet',
    { metadata: { name: instance, namespace: NS, labels: { [LABELS.cluster]: 'prod-db' } }, status: { replicas: 1, readyReplicas: ready ? 1 : 0 } },
  ];
  const pod = (instance: string, status: V1Pod['status']): [OwnedKind, V1Pod] => ['Pod', { metadata: { name: names.pod(instance), namespace: NS }, status }];
  const readyAll = (n: number) => instances(n).map((i) => sts(i, true));

  function status(opts: { objects?: Array<[OwnedKind, KubernetesObject]>; cluster?: PostgreSQLCluster; instanceNames?: string[] } & Partial<StatusInputs> = {}) {
    const cluster = opts.cluster ?? seedCluster();
    return computeStatus({
      cluster,
      cache: cacheOf(opts.objects ?? []),
      instanceNames: opts.instanceNames ?? instances(cluster.spec.instances ?? 1),
      conditions: opts.conditions ?? [],
      failure: opts.failure,
      writes: opts.writes ?? [],
      now: opts.now ?? NOW,
      primary: opts.primary,
      runningVersion: opts.runningVersion,
    });
  }
  // A cluster that was Healthy or Scaling has been ready once (firstReadyTime); a Degraded one may not have.
  const withStatus = (phase: string, extra: Partial<NonNullable<PostgreSQLCluster['status']>> = {}) => ({
    ...seedCluster(),
    status: { phase, ...(phase === 'Healthy' || phase === 'Scaling' ? { firstReadyTime: '2024-05-01T10:00:00Z' } : {}), ...extra },
  });
  const cond = (s: ReturnType<typeof status>, type: string) => findCondition(s.conditions, type);

  it('is Provisioning while a new cluster\'s instances come up', () => {
    const s = status({ objects: [sts('prod-db-1', true)] });
    expect(s.phase).toBe('Provisioning');
    expect(cond(s, 'Ready')).toMatchObject({ status: 'False', reason: 'InstancesNotReady' });
    expect(cond(s, 'Ready')?.message).toContain('prod-db-2 (StatefulSet not created yet)');
    expect(cond(s, 'Progressing')).toMatchObject({ status: 'True', reason: 'WaitingForInstances' });
    expect(s.readyInstances).toBe(1);
  });

  it('records firstReadyTime when every instance is first ready, and keeps it', () => {
    const now = new Date('2024-05-02T08:00:00.123Z');
    expect(status({ objects: readyAll(3), now }).firstReadyTime).toBe('2024-05-02T08:00:00Z');
    expect(status({ objects: [sts('prod-db-1', true)], now }).firstReadyTime).toBeUndefined();
    const earlier = withStatus('Healthy');
    expect(status({ cluster: earlier, objects: [sts('prod-db-1', false)], now }).firstReadyTime).toBe('2024-05-01T10:00:00Z');
  });

  it('stays Provisioning while every instance exists but is not ready yet, if it never was healthy', () => {
    expect(status({ objects: instances(3).map((i) => sts(i, false)) }).phase).toBe('Provisioning');
  });

  it('is Healthy with every instance ready, and converged without writes', () => {
    const s = status({ objects: readyAll(3) });
    expect(s.phase).toBe('Healthy');
    expect(s.readyInstances).toBe(3);
    expect(cond(s, 'Ready')).toMatchObject({ status: 'True', reason: 'AllInstancesReady', message: '3 of 3 instances ready' });
    expect(cond(s, 'Degraded')).toMatchObject({ status: 'False' });
    expect(cond(s, 'Progressing')).toMatchObject({ status: 'False', reason: 'Converged' });
  });

  it('is Scaling when a healthy cluster gains instances', () => {
    const cluster = { ...withStatus('Healthy'), spec: { ...seedCluster().spec, instances: 4 } };
    expect(status({ cluster, objects: readyAll(3) }).phase).toBe('Scaling');
  });

  it('is Degraded when an instance of a once-healthy cluster is not ready', () => {
    const s = status({ cluster: withStatus('Healthy'), objects: [...readyAll(2), sts('prod-db-3', false)] });
    expect(s.phase).toBe('Degraded');
    expect(s.readyInstances).toBe(2);
  });

  it('is Degraded, with the failure\'s reason and message, when the reconcile failed', () => {
    const failure = { reason: 'SecretNotFound', message: 'spec.superuserSecret names Secret "x", which does not exist' };
    const s = status({ objects: readyAll(3), failure });
    expect(s.phase).toBe('Degraded');
    expect(cond(s, 'Degraded')).toMatchObject({ status: 'True', ...failure });
  });

  it('is Deleting once the cluster has a deletion timestamp', () => {
    const cluster = seedCluster({}, { deletionTimestamp: new Date('2024-05-01T11:00:00Z') });
    expect(status({ cluster, objects: readyAll(3) }).phase).toBe('Deleting');
  });

  // Regression (fixed): status.ts treats any previous phase other than Provisioning as "ever healthy". A new
  // cluster whose first reconcile fails (a missing Secret, an apiserver conflict) gets phase
  // Degraded, and from then on shows Scaling (instances being created) or Degraded (instances
  // starting) instead of Provisioning, although it was never Healthy.
  it('returns to Provisioning after a failure, if it never was healthy', () => {
    const cluster = withStatus('Degraded');
    expect(status({ cluster, objects: [sts('prod-db-1', false)] }).phase).toBe('Provisioning');
    expect(status({ cluster, objects: instances(3).map((i) => sts(i, false)) }).phase).toBe('Provisioning');
  });

  it('names why unscheduled pods wait in the Ready message', () => {
    const unschedulable = { type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: '0/3 nodes are available: 3 Insufficient memory.' };
    const s = status({
      objects: [
        ...readyAll(1),
        sts('prod-db-2', false),
        pod('prod-db-2', { phase: 'Pending', conditions: [unschedulable] }),
        sts('prod-db-3', false),
        pod('prod-db-3', { phase: 'Pending', conditions: [{ ...unschedulable, message: undefined }] }),
      ],
    });
    const message = cond(s, 'Ready')!.message;
    expect(message).toContain('prod-db-2 (pod Pending, not scheduled: 0/3 nodes are available: 3 Insufficient memory.)');
    expect(message).toContain('prod-db-3 (pod Pending, not scheduled: Unschedulable)');
    expect(message.startsWith('1 of 3 instances ready')).toBe(true);
  });

  it('names a waiting container\'s reason, and a missing pod', () => {
    const waiting = { containerStatuses: [{ name: 'postgres', image: 'i', imageID: '', ready: false, restartCount: 0, state: { waiting: { reason: 'ImagePullBackOff', message: 'not found' } } }] };
    const s = status({ objects: [...readyAll(1), sts('prod-db-2', false), pod('prod-db-2', { phase: 'Pending', ...waiting }), sts('prod-db-3', false)] });
    expect(cond(s, 'Ready')?.message).toContain('prod-db-2 (container waiting: ImagePullBackOff (not found))');
    expect(cond(s, 'Ready')?.message).toContain('prod-db-3 (pod not created yet)');
  });

  it('reports what was written in Progressing, at most ten names', () => {
    const writes = Array.from({ length: 12 }, (_, i) => `Service/s${i}`);
    const s = status({ objects: readyAll(3), writes });
    expect(cond(s, 'Progressing')).toMatchObject({ status: 'True', reason: 'Applying' });
    expect(cond(s, 'Progressing')?.message).toMatch(/^Updated Service\/s0, .*Service\/s9 and 2 more$/);
  });

  it('passes the other reconcilers\' conditions through', () => {
    const s = status({ objects: readyAll(3), conditions: [{ type: 'ContinuousArchiving', status: 'False', reason: 'NoObjectStore', message: 'no target' }] });
    expect(cond(s, 'ContinuousArchiving')).toMatchObject({ status: 'False', reason: 'NoObjectStore', observedGeneration: 1 });
  });

  it('publishes the scale selector that matches the instance pods', () => {
    const s = status({ objects: readyAll(3) });
    expect(s.selector).toBe('postgres.pgpilot.io/cluster=prod-db,app.kubernetes.io/component=instance');
    const podLabels = instanceStatefulSet(seedCluster(), 'prod-db-1', { instanceImageRepository: 'r' }).spec!.template.metadata!.labels!;
    for (const term of s.selector!.split(',')) {
      const [k, v] = term.split('=') as [string, string];
      expect(podLabels[k], term).toBe(v);
    }
  });

  it('defaults currentPrimary and targetPrimary to the first instance, and keeps a known primary', () => {
    expect(status({ objects: readyAll(3) })).toMatchObject({ currentPrimary: 'prod-db-1', targetPrimary: 'prod-db-1' });
    const known = withStatus('Healthy', { currentPrimary: 'prod-db-2', targetPrimary: 'prod-db-3' });
    // targetPrimary is what spec.primary asks for, else the current primary.
    expect(status({ cluster: known, objects: readyAll(3) })).toMatchObject({ currentPrimary: 'prod-db-2', targetPrimary: 'prod-db-2' });
    const switching = { ...known, spec: { ...known.spec, primary: 'prod-db-3' } };
    expect(status({ cluster: switching, objects: readyAll(3) })).toMatchObject({ currentPrimary: 'prod-db-2', targetPrimary: 'prod-db-3' });
    // After a failover this pass, the ha reconciler's primary wins.
    expect(status({ cluster: known, objects: readyAll(3), primary: 'prod-db-1' })).toMatchObject({ currentPrimary: 'prod-db-1' });
    expect(status({ objects: [], instanceNames: [] })).not.toHaveProperty('currentPrimary');
  });

  it('reports generation, instance names, version and Secret names', () => {
    const cluster = seedCluster({ superuserSecret: { name: 'mine' } }, { generation: 7 });
    const s = status({ cluster, objects: readyAll(3), runningVersion: '15.18' });
    expect(s).toMatchObject({
      observedGeneration: 7,
      instanceNames: instances(3),
      // What the primary runs, not what the spec asks for.
      version: '15.18',
      secrets: { superuser: 'mine', replication: 'prod-db-replication', app: 'prod-db-app' },
    });
    expect(s.conditions?.every((c) => c.observedGeneration === 7)).toBe(true);
  });

  // Regression (fixed): the schema describes status.instances (the scale subresource's statusReplicasPath) as
  // "Number of instances that exist", but computeStatus reports instanceNames.length: the
  // planned instances, including those whose StatefulSets are not created yet. `kubectl get
  // --subresource=scale` and an HPA then see the target count as the current one.
  it('counts in status.instances the instances that exist', () => {
    const cluster = seedCluster({ instances: 3 });
    expect(status({ cluster, objects: [sts('prod-db-1', true)] }).instances).toBe(1);
  });
});
