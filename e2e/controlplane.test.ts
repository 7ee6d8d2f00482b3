// Proves the e2e control plane is a real one: versioned apiserver, working controllers,
// a scheduler that binds pods, and RBAC that refuses what was not granted.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ApiException, AppsV1Api, BatchV1Api, CoreV1Api, DiscoveryV1Api, KubeConfig, VersionApi } from '@kubernetes/client-node';
import { apiStatus, ignoreNotFound } from '../src/runtime/api-status.js';
import { E2E_KUBECONFIG_ENV, createTestNamespace, deleteTestNamespace, kubeConfig, waitFor } from './harness/env.js';

describe('e2e control plane', () => {
  let core: CoreV1Api;
  let ns: string;

  beforeAll(async () => {
    core = kubeConfig().makeApiClient(CoreV1Api);
    // Its bare test pods (no security context, an image nothing runs) are the point: no Pod Security here.
    ns = await createTestNamespace('controlplane', { waitForServiceAccount: false, restricted: false });
  });

  afterAll(async () => {
    // Waiting proves the namespace controller finishes (it must empty the namespace first).
    if (ns) await deleteTestNamespace(ns, { wait: true });
  });

  it('reaches test workers through the environment and through inject()', () => {
    // The global setup sets the variable in vitest's main process; workers inherit it.
    expect(process.env[E2E_KUBECONFIG_ENV]).toBeTruthy();
    expect(inject('pgpilotKubeconfigPath')).toBe(process.env[E2E_KUBECONFIG_ENV]);
  });

  it('serves Kubernetes v1.36', async () => {
    const v = await kubeConfig().makeApiClient(VersionApi).getCode();
    expect(v.gitVersion).toMatch(/^v1\.36\.\d+/);
    expect(v.major).toBe('1');
    expect(v.minor).toBe('36');
  });

  it('runs the controller-manager: new namespaces get a default ServiceAccount and kube-root-ca.crt', async () => {
    const sa = await waitFor('ServiceAccount default', () => ignoreNotFound(core.readNamespacedServiceAccount({ name: 'default', namespace: ns })), {
      timeoutMs: 30_000,
    });
    expect(sa.metadata?.name).toBe('default');
    const cm = await waitFor('ConfigMap kube-root-ca.crt', () => ignoreNotFound(core.readNamespacedConfigMap({ name: 'kube-root-ca.crt', namespace: ns })), {
      timeoutMs: 30_000,
    });
    expect(cm.data?.['ca.crt']).toContain('-----BEGIN CERTIFICATE-----');
  });

  it('runs the workload, endpointslice and garbage-collector controllers', async () => {
    const kc = kubeConfig();
    const apps = kc.makeApiClient(AppsV1Api);
    const batch = kc.makeApiClient(BatchV1Api);
    const discovery = kc.makeApiClient(DiscoveryV1Api);
    await waitFor('ServiceAccount default', () => ignoreNotFound(core.readNamespacedServiceAccount({ name: 'default', namespace: ns })));
    const container = { name: 'c', image: 'example.invalid/none:1' };
    await apps.createNamespacedStatefulSet({
      namespace: ns,
      body: {
        metadata: { name: 'sts' },
        spec: {
          replicas: 1,
          serviceName: 'sts',
          selector: { matchLabels: { app: 'sts' } },
          template: { metadata: { labels: { app: 'sts' } }, spec: { containers: [container] } },
        },
      },
    });
    await batch.createNamespacedJob({
      namespace: ns,
      body: { metadata: { name: 'job' }, spec: { template: { spec: { restartPolicy: 'Never', containers: [container] } } } },
    });
    await core.createNamespacedService({
      namespace: ns,
      body: { metadata: { name: 'sts' }, spec: { clusterIP: 'None', selector: { app: 'sts' }, ports: [{ port: 5432 }] } },
    });
    const owner = await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'owner' } } });
    await core.createNamespacedConfigMap({
      namespace: ns,
      body: {
        metadata: {
          name: 'dependent',
          ownerReferences: [{ apiVersion: 'v1', kind: 'ConfigMap', name: 'owner', uid: owner.metadata!.uid! }],
        },
      },
    });

    await waitFor('StatefulSet pod sts-0', () => ignoreNotFound(core.readNamespacedPod({ name: 'sts-0', namespace: ns })));
    await waitFor('a pod of Job job', async () => {
      const pods = await core.listNamespacedPod({ namespace: ns, labelSelector: 'batch.kubernetes.io/job-name=job' });
      return pods.items[0];
    });
    await waitFor('an EndpointSlice of Service sts', async () => {
      const slices = await discovery.listNamespacedEndpointSlice({ namespace: ns, labelSelector: 'kubernetes.io/service-name=sts' });
      return slices.items[0];
    });
    await core.deleteNamespacedConfigMap({ name: 'owner', namespace: ns });
    await waitFor('the garbage collector to delete ConfigMap dependent', async () => {
      const cm = await ignoreNotFound(core.readNamespacedConfigMap({ name: 'dependent', namespace: ns }));
      return cm === undefined;
    });
  });

  it('runs the scheduler: a pod is bound to a node that fits', async () => {
    const nodeName = `fake-node-${ns}`;
    await core.createNode({
      body: {
        metadata: { name: nodeName, labels: { 'kubernetes.io/hostname': nodeName, 'pgpilot.io/e2e': 'true' } },
        status: {
          capacity: { cpu: '4', memory: '8Gi', pods: '110' },
          allocatable: { cpu: '4', memory: '8Gi', pods: '110' },
        },
      },
    });
    try {
      // Pods are refused until the namespace has its default ServiceAccount.
      await waitFor('ServiceAccount default', () => ignoreNotFound(core.readNamespacedServiceAccount({ name: 'default', namespace: ns })));
      await core.createNamespacedPod({
        namespace: ns,
        body: {
          metadata: { name: 'probe' },
          spec: {
            containers: [{ name: 'c', image: 'example.invalid/none:1', resources: { requests: { cpu: '100m', memory: '64Mi' } } }],
            nodeSelector: { 'kubernetes.io/hostname': nodeName },
            // No kubelet reports this node Ready, so the admission plugin's not-ready taint stays.
            tolerations: [
              { key: 'node.kubernetes.io/not-ready', operator: 'Exists' },
              { key: 'node.kubernetes.io/unreachable', operator: 'Exists' },
            ],
          },
        },
      });
      const bound = await waitFor(
        'pod probe to be scheduled',
        async () => {
          const pod = await core.readNamespacedPod({ name: 'probe', namespace: ns });
          return pod.spec?.nodeName ? pod : undefined;
        },
        { timeoutMs: 30_000 },
      );
      expect(bound.spec?.nodeName).toBe(nodeName);
      expect(bound.status?.conditions?.find((c) => c.type === 'PodScheduled')?.status).toBe('True');
      // No kubelet will confirm a graceful deletion: delete at once.
      await core.deleteNamespacedPod({ name: 'probe', namespace: ns, gracePeriodSeconds: 0 });
    } finally {
      await core.deleteNode({ name: nodeName });
    }
  });

  it('enforces RBAC: a ServiceAccount with no Role cannot list Secrets', async () => {
    await core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: 'nobody' } } });
    const tr = await core.createNamespacedServiceAccountToken({
      name: 'nobody',
      namespace: ns,
      body: { spec: { audiences: [], expirationSeconds: 600 } },
    });
    const token = tr.status?.token;
    expect(token).toBeTruthy();

    const admin = kubeConfig();
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'e2e', server: admin.getCurrentCluster()!.server, skipTLSVerify: true }],
      users: [{ name: 'nobody', token }],
      contexts: [{ name: 'e2e', cluster: 'e2e', user: 'nobody' }],
      currentContext: 'e2e',
    });
    const asNobody = kc.makeApiClient(CoreV1Api);

    // The token authenticates (the apiserver knows who this is) ...
    const err = await asNobody.listNamespacedSecret({ namespace: ns }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ApiException);
    expect(apiStatus(err)).toBe(403);
    // ... and is refused by name, not as anonymous.
    expect(String((err as ApiException<string>).body)).toContain(`system:serviceaccount:${ns}:nobody`);
  });
});
