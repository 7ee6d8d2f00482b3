// The install reconciler against a real apiserver, controller-manager and scheduler: the seed
// manifest, printer columns, the scale subresource, cascading deletion, a steady state without
// writes after a restart, and a missing Secret reported as Degraded.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { CoreV1Api, CustomObjectsApi, type KubernetesObject } from '@kubernetes/client-node';
import { API_GROUP, API_VERSION, CLUSTER_PLURAL, LABELS } from '../src/api/constants.js';
import type { PostgreSQLCluster } from '../src/api/cluster.js';
import { createTestNamespace, deleteTestNamespace, kubeConfig, waitFor } from './harness/env.js';
import { kubectl, kubectlOk } from './harness/kubectl.js';
import { REPO_ROOT, startOperator, type RunningOperator } from './harness/operator.js';
import { parseJson } from '../src/util/json.js';

const seed = parse(readFileSync(join(REPO_ROOT, 'examples/cluster.yaml'), 'utf8')) as PostgreSQLCluster;

/** The seed manifest exactly as written, only in the test's namespace (and optionally renamed). */
function seedIn(namespace: string, name = seed.metadata.name!, patch: (c: PostgreSQLCluster) => void = () => {}): string {
  const c = structuredClone(seed);
  c.metadata = { name, namespace };
  patch(c);
  return stringify(c);
}

const custom = () => kubeConfig().makeApiClient(CustomObjectsApi);
const core = () => kubeConfig().makeApiClient(CoreV1Api);

async function getCluster(namespace: string, name: string): Promise<PostgreSQLCluster> {
  return (await custom().getNamespacedCustomObject({ group: API_GROUP, version: API_VERSION, plural: CLUSTER_PLURAL, namespace, name })) as PostgreSQLCluster;
}

/** Every object labelled as the cluster's, by "Kind/name". */
async function ownedObjects(namespace: string, cluster: string): Promise<Map<string, KubernetesObject>> {
  const out = await kubectlOk([
    'get',
    'statefulsets,services,secrets,configmaps,poddisruptionbudgets,serviceaccounts,roles,rolebindings',
    '-n',
    namespace,
    '-l',
    `${LABELS.cluster}=${cluster}`,
    '-o',
    'json',
  ]);
  const { items } = parseJson<{ items: KubernetesObject[] }>(out, `kubectl get (the objects labelled as ${namespace}/${cluster}'s)`);
  return new Map(items.map((i) => [`${i.kind}/${i.metadata!.name}`, i]));
}

const EXPECTED_OWNED = (c: string) => [
  `Secret/${c}-superuser`,
  `Secret/${c}-replication`,
  `Secret/${c}-app`,
  `Secret/${c}-agent`,
  // The PKI (docs/tls.md): the CA, its certificate for clients, PostgreSQL's server certificate.
  `Secret/${c}-ca`,
  `Secret/${c}-ca-cert`,
  `Secret/${c}-server-tls`,
  `Secret/${c}-replication-tls`,
  `ConfigMap/${c}-config`,
  `StatefulSet/${c}-1`,
  `StatefulSet/${c}-2`,
  `StatefulSet/${c}-3`,
  `Service/${c}-headless`,
  `Service/${c}-rw`,
  `Service/${c}-ro`,
  `Service/${c}-r`,
  `PodDisruptionBudget/${c}`,
  `ServiceAccount/${c}`,
  `Role/${c}`,
  `RoleBinding/${c}`,
];

describe('install reconciler', () => {
  let ns: string;
  let operator: RunningOperator;

  beforeAll(async () => {
    ns = await createTestNamespace('install');
    operator = await startOperator({ watchNamespaces: [ns] });
  });

  afterAll(async () => {
    await operator?.stop();
    if (ns) await deleteTestNamespace(ns);
  });

  it('creates every owned object of the seed manifest, owned by the cluster', async () => {
    await kubectlOk(['apply', '-f', '-'], seedIn(ns));
    const cluster = await getCluster(ns, 'prod-db');
    const owned = await waitFor('all owned objects', async () => {
      const objs = await ownedObjects(ns, 'prod-db');
      return EXPECTED_OWNED('prod-db').every((k) => objs.has(k)) ? objs : undefined;
    });
    for (const key of EXPECTED_OWNED('prod-db')) {
      const refs = owned.get(key)!.metadata!.ownerReferences ?? [];
      expect(refs, key).toEqual([expect.objectContaining({ kind: 'PostgreSQLCluster', name: 'prod-db', uid: cluster.metadata.uid, controller: true })]);
    }
    const sts = owned.get('StatefulSet/prod-db-1') as unknown as { spec: Record<string, any> };
    expect(sts.spec.replicas).toBe(1);
    expect(sts.spec.volumeClaimTemplates[0].spec.storageClassName).toBe('fast-ssd');
    expect(sts.spec.volumeClaimTemplates[0].spec.resources.requests.storage).toBe('100Gi');
    expect(sts.spec.template.spec.containers[0].resources).toEqual({ requests: { cpu: '2', memory: '4Gi' }, limits: { cpu: '4', memory: '8Gi' } });
    const conf = (owned.get('ConfigMap/prod-db-config') as unknown as { data: Record<string, string> }).data['postgresql.conf']!;
    expect(conf).toContain("synchronous_standby_names = 'ANY 1 (*)'");
    expect(conf).toContain("shared_buffers = '2048MB'");
  });

  it('reports status: phase, conditions that say why, counts, selector and primary', async () => {
    // status.instances counts StatefulSets that exist: the first pass may not see them yet, nor
    // the scheduler's verdict on the pods (they are created a moment after their StatefulSets).
    const unscheduled = /prod-db-1 \(pod Pending, not scheduled: .+\)/;
    const status = await waitFor('status with 3 instances and the scheduler\'s words in Ready', async () => {
      const c = await getCluster(ns, 'prod-db');
      const ready = c.status?.conditions?.find((x) => x.type === 'Ready');
      return c.status?.instances === 3 && ready && unscheduled.test(ready.message) ? c.status : undefined;
    });
    expect(status.phase).toBe('Provisioning');
    expect(status.observedGeneration).toBe(1);
    expect(status.instances).toBe(3);
    expect(status.readyInstances).toBe(0);
    expect(status.currentPrimary).toBe('prod-db-1');
    expect(status.selector).toBe(`${LABELS.cluster}=prod-db,${LABELS.component}=instance`);
    const ready = status.conditions!.find((c) => c.type === 'Ready')!;
    expect(ready.status).toBe('False');
    expect(ready.reason).toBe('InstancesNotReady');
    // There is no kubelet yet: the scheduler's own words reach the user.
    expect(ready.message).toMatch(unscheduled);
    expect(status.conditions!.find((c) => c.type === 'Degraded')?.status).toBe('False');
    expect(status.conditions!.find((c) => c.type === 'Progressing')?.status).toBe('True');
  });

  it('kubectl get pgc shows Instances, Ready, Phase, Primary, Version, Age', async () => {
    const out = await kubectlOk(['get', 'pgc', '-n', ns]);
    const [header, row] = out.trim().split('\n');
    expect(header!.split(/\s+/)).toEqual(['NAME', 'INSTANCES', 'READY', 'PHASE', 'PRIMARY', 'VERSION', 'AGE']);
    // VERSION is what the primary runs (status.version): empty until an instance runs (no kubelet here).
    expect(row!.split(/\s+/).slice(0, 5)).toEqual(['prod-db', '3', '0', 'Provisioning', 'prod-db-1']);
    // The short name and category work too.
    expect((await kubectlOk(['get', 'pgcluster', '-n', ns, '-o', 'name'])).trim()).toBe('postgresqlcluster.postgres.pgpilot.io/prod-db');
    expect(await kubectlOk(['get', 'pgpilot', '-n', ns, '-o', 'name'])).toContain('postgresqlcluster.postgres.pgpilot.io/prod-db');
  });

  it('kubectl explain describes the fields', async () => {
    const out = await kubectlOk(['explain', 'pgc.spec.backup']);
    expect(out).toContain('Scheduled base backups and continuous WAL archiving');
    expect(out).toMatch(/retention\s+<(Object|IntOrString)>/);
  });

  it('restarted with a converged cluster, the operator makes no write call', async () => {
    await waitFor('status settled (Progressing reason WaitingForInstances)', async () => {
      const c = await getCluster(ns, 'prod-db');
      return c.status?.conditions?.find((x) => x.type === 'Progressing')?.reason === 'WaitingForInstances';
    });
    await operator.stop();
    operator = await startOperator({ watchNamespaces: [ns] });
    await waitFor('a reconcile of the cluster', async () => (await operator.counter('pgpilot_reconcile_total')) >= 1);
    // A second pass (the periodic requeue is 30 s; an event-driven one would come sooner) must also write nothing.
    await sleep(3000);
    expect(await operator.counter('pgpilot_kube_api_requests_total', (l) => l.verb === 'list')).toBeGreaterThan(0);
    expect(await operator.writeCalls()).toBe(0);
  });

  it('kubectl scale changes the instance StatefulSets (3 → 5 → 2)', async () => {
    await kubectlOk(['scale', 'pgc', 'prod-db', '-n', ns, '--replicas=5']);
    await waitFor('5 instance StatefulSets', async () => {
      const objs = await ownedObjects(ns, 'prod-db');
      return [1, 2, 3, 4, 5].every((i) => objs.has(`StatefulSet/prod-db-${i}`));
    });
    await waitFor('status.instances = 5', async () => (await getCluster(ns, 'prod-db')).status?.instances === 5);
    await kubectlOk(['scale', 'pgc', 'prod-db', '-n', ns, '--replicas=2']);
    const objs = await waitFor('2 instance StatefulSets', async () => {
      const o = await ownedObjects(ns, 'prod-db');
      const sts = [...o.keys()].filter((k) => k.startsWith('StatefulSet/'));
      return sts.length === 2 ? o : undefined;
    });
    expect(objs.has('StatefulSet/prod-db-1')).toBe(true);
    expect(objs.has('StatefulSet/prod-db-2')).toBe(true);
    const status = await waitFor('status.instances = 2', async () => {
      const c = await getCluster(ns, 'prod-db');
      return c.status?.instances === 2 ? c.status : undefined;
    });
    expect(status.instanceNames).toEqual(['prod-db-1', 'prod-db-2']);
    // The claims of removed instances go with them (whenScaled: Delete is the default).
    await waitFor('claims of removed instances deleted', async () => {
      const pvcs = await core().listNamespacedPersistentVolumeClaim({ namespace: ns });
      const live = pvcs.items.filter((p) => !p.metadata?.deletionTimestamp).map((p) => p.metadata!.name);
      return !live.some((n) => /prod-db-[345]-0$/.test(n!));
    });
  });

  it('a missing referenced Secret is Degraded with the reason and an Event, then recovers', async () => {
    await kubectlOk(['apply', '-f', '-'], seedIn(ns, 'needs-secret', (c) => (c.spec.superuserSecret = { name: 'my-superuser' })));
    const degraded = await waitFor('Degraded=True', async () => {
      const c = await getCluster(ns, 'needs-secret');
      const d = c.status?.conditions?.find((x) => x.type === 'Degraded');
      return d?.status === 'True' ? d : undefined;
    });
    expect(degraded.reason).toBe('SecretNotFound');
    expect(degraded.message).toContain('spec.superuserSecret names Secret "my-superuser", which does not exist');
    const events = await waitFor('a SecretNotFound event', async () => {
      const list = await core().listNamespacedEvent({ namespace: ns, fieldSelector: 'involvedObject.name=needs-secret' });
      return list.items.some((e) => e.reason === 'SecretNotFound') ? list.items : undefined;
    });
    expect(events.find((e) => e.reason === 'SecretNotFound')!.type).toBe('Warning');
    // No instance can start without it, so none was created; the operator keeps running.
    expect([...(await ownedObjects(ns, 'needs-secret')).keys()].some((k) => k.startsWith('StatefulSet/'))).toBe(false);
    expect((await fetch(`http://127.0.0.1:${operator.port}/healthz`)).status).toBe(200);

    await core().createNamespacedSecret({ namespace: ns, body: { metadata: { name: 'my-superuser' }, stringData: { username: 'postgres', password: 'a-long-password' } } });
    await waitFor('Degraded=False after the Secret appears', async () => {
      const c = await getCluster(ns, 'needs-secret');
      return c.status?.conditions?.find((x) => x.type === 'Degraded')?.status === 'False';
    }, { timeoutMs: 120_000 });
    const objs = await ownedObjects(ns, 'needs-secret');
    expect(objs.has('StatefulSet/needs-secret-1')).toBe(true);
    expect(objs.has('Secret/needs-secret-superuser')).toBe(false); // the user's Secret is used instead
  });

  it('keeps claims on scale-down and deletion when pvcRetentionPolicy says Retain', async () => {
    const claimNames = async () =>
      (await core().listNamespacedPersistentVolumeClaim({ namespace: ns, labelSelector: `${LABELS.cluster}=keep` })).items
        .filter((p) => !p.metadata?.deletionTimestamp)
        .map((p) => p.metadata!.name!)
        .sort();
    await kubectlOk(
      ['apply', '-f', '-'],
      seedIn(ns, 'keep', (c) => {
        c.spec.instances = 2;
        c.spec.highAvailability = { synchronousCommit: false };
        c.spec.storage.pvcRetentionPolicy = { whenDeleted: 'Retain', whenScaled: 'Retain' };
      }),
    );
    await waitFor('two claims', async () => (await claimNames()).length === 2);
    await kubectlOk(['scale', 'pgc', 'keep', '-n', ns, '--replicas=1']);
    await waitFor('instance keep-2 removed', async () => !(await ownedObjects(ns, 'keep')).has('StatefulSet/keep-2'));
    await kubectlOk(['delete', 'pgc', 'keep', '-n', ns, '--wait=true']);
    await waitFor('no owned objects left', async () => (await ownedObjects(ns, 'keep')).size === 0, { timeoutMs: 120_000 });
    // Give the garbage collector time to (wrongly) act before checking the claims survived.
    await sleep(3000);
    expect(await claimNames()).toEqual(['pgdata-keep-1-0', 'pgdata-keep-2-0']);
  });

  it('deleting the cluster removes every owned object', async () => {
    await kubectlOk(['delete', 'pgc', 'prod-db', '-n', ns, '--wait=true']);
    await waitFor('no owned objects left', async () => (await ownedObjects(ns, 'prod-db')).size === 0, { timeoutMs: 120_000 });
    await waitFor('no claims left', async () => {
      const pvcs = await core().listNamespacedPersistentVolumeClaim({ namespace: ns, labelSelector: `${LABELS.cluster}=prod-db` });
      return pvcs.items.length === 0;
    }, { timeoutMs: 120_000 });
    const r = await kubectl(['get', 'pgc', 'prod-db', '-n', ns]);
    expect(r.code).not.toBe(0);
  });
});
