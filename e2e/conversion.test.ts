// PostgreSQLCluster v1beta1 beside v1 through the real apiserver, converted by the operator's
// webhook over TLS (its own CA, kept in a Secret, the bundle injected into the CRD), and the
// validating webhook of recovery sources — and the operator's own check of that rule when the
// webhook is bypassed. The operator runs as a local process: the CRD and the webhook configuration
// reach it by clientConfig.url (https://127.0.0.1:<port>), which it injects itself.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import { ANNOTATIONS, API_GROUP, CLUSTER_PLURAL, LABELS } from '../src/api/constants.js';
import type { PostgreSQLCluster } from '../src/api/cluster.js';
import type { PostgreSQLClusterV1beta1 } from '../src/api/cluster-v1beta1.js';
import { parseJson } from '../src/util/json.js';
import { freePort } from './harness/control-plane.js';
import { createTestNamespace, deleteTestNamespace, kubeConfig, kubeconfigPath, waitFor } from './harness/env.js';
import { HaCluster } from './harness/ha-cluster.js';
import { kubectl, kubectlOk } from './harness/kubectl.js';
import { DEFAULT_CHART_ARGS, OPERATOR_NAMESPACE, REPO_ROOT, ensureBuilt, installChart, restoreCrdConversion, startOperator, type RunningOperator } from './harness/operator.js';
import { tearDown } from './harness/teardown.js';
import { startProcessKubelet, type ProcessKubelet } from './kubelet/index.js';

const CRD = `${CLUSTER_PLURAL}.${API_GROUP}`;
const VWC = 'pgpilot-webhook';
const CA_SECRET = 'pgpilot-webhook-ca';
const DEFAULT_STORE = { endpoint: 'http://127.0.0.1:9', bucket: 'pgpilot-e2e-default', path: 'pgpilot', forcePathStyle: true, credentials: { secretName: 'pgpilot-default-store' } };
const NAME = 'legacy';

const custom = () => kubeConfig().makeApiClient(CustomObjectsApi);

async function getAs<T>(version: 'v1' | 'v1beta1', namespace: string, name: string): Promise<T> {
  return (await custom().getNamespacedCustomObject({ group: API_GROUP, version, plural: CLUSTER_PLURAL, namespace, name })) as T;
}

/** A cluster recovering from `path` of the default store's bucket, as `version`. */
function recoveryManifest(namespace: string, name: string, path: string, version: 'v1' | 'v1beta1' = 'v1'): string {
  const storage = version === 'v1' ? { instances: 1, storage: { size: '1Gi' } } : { replicas: 1, storage: '1Gi' };
  return stringify({
    apiVersion: `${API_GROUP}/${version}`,
    kind: 'PostgreSQLCluster',
    metadata: { name, namespace },
    spec: {
      version: '16',
      ...storage,
      backup: { enabled: false },
      bootstrap: { recovery: { source: { s3: { ...DEFAULT_STORE, credentials: { secretName: 'my-copy-of-the-keys' } }, path } } },
    },
  });
}

describe('API versions: v1beta1 converted by the operator\'s webhook; the recovery-source webhook', () => {
  let nsA: string;
  let nsB: string;
  let kubelet: ProcessKubelet;
  let operator: RunningOperator;

  beforeAll(async () => {
    ensureBuilt();
    nsA = await createTestNamespace('conv-a');
    nsB = await createTestNamespace('conv-b');
    kubelet = await startProcessKubelet({ kubeconfigPath: kubeconfigPath(), repoRoot: REPO_ROOT });
    const port = await freePort();
    operator = await startOperator({
      watchNamespaces: [nsA, nsB],
      // The chart with its webhooks (Service, ValidatingWebhookConfiguration, RBAC); no operator pod.
      chartArgs: ['--set', 'replicaCount=0'],
      extraEnv: {
        PGPILOT_WEBHOOK_PORT: String(port),
        PGPILOT_WEBHOOK_URL: `https://127.0.0.1:${port}`,
        PGPILOT_WEBHOOK_CONFIGURATION: VWC,
        PGPILOT_DEFAULT_BACKUP_STORE: JSON.stringify(DEFAULT_STORE),
      },
    });
    console.log(`[conversion] kubelet log ${kubelet.logPath}; operator log ${operator.logPath}`);
  }, 600_000);

  afterAll(async () => {
    await tearDown({ operator, kubelet });
    for (const ns of [nsA, nsB]) if (ns) await deleteTestNamespace(ns);
    // Back to how the other files install the chart (no webhook nobody answers), the CRD without this operator's URL.
    await restoreCrdConversion();
    await installChart(DEFAULT_CHART_ARGS);
  });

  it('keeps its CA in a Secret of its namespace and injects the bundle and its address into the CRD and the webhook configuration', async () => {
    const secret = await kubeConfig().makeApiClient(CoreV1Api).readNamespacedSecret({ namespace: OPERATOR_NAMESPACE, name: CA_SECRET });
    const bundle = secret.data!['ca-bundle.crt']!;
    expect(Buffer.from(bundle, 'base64').toString()).toContain('BEGIN CERTIFICATE');
    const crd = parseJson<{ spec: { conversion: { strategy: string; webhook: { clientConfig: { url?: string; caBundle?: string } } } } }>(await kubectlOk(['get', 'crd', CRD, '-o', 'json']), 'the CRD');
    expect(crd.spec.conversion.strategy).toBe('Webhook');
    expect(crd.spec.conversion.webhook.clientConfig).toEqual({ url: expect.stringMatching(/^https:\/\/127\.0\.0\.1:\d+\/convert$/), caBundle: bundle });
    const vwc = parseJson<{ webhooks: Array<{ clientConfig: { url?: string; caBundle?: string } }> }>(await kubectlOk(['get', 'validatingwebhookconfiguration', VWC, '-o', 'json']), 'the webhook configuration');
    expect(vwc.webhooks[0]!.clientConfig).toEqual({ url: expect.stringMatching(/\/validate\/postgresqlclusters$/), caBundle: bundle });
  });

  it('accepts a cluster written as v1beta1 and serves it as v1 (replicas → instances, storage → storage.size)', async () => {
    await kubectlOk(['apply', '-f', '-'], stringify({
      apiVersion: `${API_GROUP}/v1beta1`,
      kind: 'PostgreSQLCluster',
      metadata: { name: NAME, namespace: nsA },
      spec: {
        version: '16',
        replicas: 1,
        storage: '1Gi',
        storageClass: 'fast-ssd',
        backup: { enabled: false },
        resources: { requests: { cpu: '100m', memory: '256Mi' }, limits: { cpu: '2', memory: '1Gi' } },
      },
    }));
    const v1 = await getAs<PostgreSQLCluster>('v1', nsA, NAME);
    expect(v1.apiVersion).toBe(`${API_GROUP}/v1`);
    expect(v1.spec.instances).toBe(1);
    expect(v1.spec.storage).toMatchObject({ size: '1Gi', storageClass: 'fast-ssd' });
    expect(v1.spec).not.toHaveProperty('replicas');
    expect(v1.metadata.annotations?.[ANNOTATIONS.conversionData]).toBeUndefined();
  });

  it('runs that cluster: it becomes Healthy, and its status reads as v1beta1 too (status.replicas)', async () => {
    const db = new HaCluster(kubelet, nsA, NAME);
    await db.healthy(1, 300_000);
    const beta = await getAs<PostgreSQLClusterV1beta1>('v1beta1', nsA, NAME);
    expect(beta.status?.phase).toBe('Healthy');
    expect(beta.status?.replicas).toBe(1);
    expect(beta.status).not.toHaveProperty('instances');
  }, 360_000);

  it('patched as v1 with fields v1beta1 lacks, read back as v1beta1 and written again as v1beta1: nothing is lost', async () => {
    const extra = { pvcRetentionPolicy: { whenDeleted: 'Retain', whenScaled: 'Retain' }, autoGrow: { enabled: false, maxSize: '4Gi' } };
    await kubectlOk(['patch', `${CLUSTER_PLURAL}.v1.${API_GROUP}`, NAME, '-n', nsA, '--type', 'merge', '-p', JSON.stringify({ spec: { storage: extra, stopDelaySeconds: 40 } })]);
    const beta = await getAs<PostgreSQLClusterV1beta1>('v1beta1', nsA, NAME);
    expect(beta.spec).toMatchObject({ replicas: 1, storage: '1Gi', storageClass: 'fast-ssd', stopDelaySeconds: 40 });
    expect(JSON.parse(beta.metadata.annotations![ANNOTATIONS.conversionData]!)).toMatchObject({ storage: extra });

    // A v1beta1 client edits the object (a full update, as kubectl edit / replace would send it;
    // read again on a conflict: the operator writes status meanwhile).
    await waitFor('a v1beta1 update without a conflict', async () => {
      const current = await getAs<PostgreSQLClusterV1beta1>('v1beta1', nsA, NAME);
      current.spec.stopDelaySeconds = 50;
      const res = await custom().replaceNamespacedCustomObject({ group: API_GROUP, version: 'v1beta1', plural: CLUSTER_PLURAL, namespace: nsA, name: NAME, body: current }).catch((e: { code?: number }) => {
        if (e.code === 409) return undefined;
        throw e;
      });
      return res !== undefined;
    }, { timeoutMs: 30_000 });
    beta.spec.stopDelaySeconds = 50;
    const v1 = await getAs<PostgreSQLCluster>('v1', nsA, NAME);
    expect(v1.spec.stopDelaySeconds).toBe(50);
    expect(v1.spec.storage).toMatchObject({ size: '1Gi', storageClass: 'fast-ssd', ...extra });
    expect(v1.metadata.annotations?.[ANNOTATIONS.conversionData]).toBeUndefined();
    // And v1 → v1beta1 → v1 again is the same object.
    const again = await getAs<PostgreSQLClusterV1beta1>('v1beta1', nsA, NAME);
    expect(again.spec).toEqual({ ...beta.spec, stopDelaySeconds: 50 });
  });

  it('kubectl get pgc.v1beta1.postgres.pgpilot.io works, and the v1beta1 printer columns show', async () => {
    const columns = (out: string) => {
      const [header, row] = out.trim().split('\n');
      return { header: header!.split(/\s+/), row: row!.split(/\s+/) };
    };
    const beta = ['NAME', 'REPLICAS', 'STORAGE', 'READY', 'PHASE', 'PRIMARY', 'VERSION', 'AGE'];
    // The full resource name reaches v1beta1 (…/postgres.pgpilot.io/v1beta1/…) and its columns.
    const full = columns(await kubectlOk(['get', `${CLUSTER_PLURAL}.v1beta1.${API_GROUP}`, '-n', nsA]));
    expect(full.header).toEqual(beta);
    // (READY and PHASE follow the rollout that stopDelaySeconds started above.)
    expect([...full.row.slice(0, 3), full.row[5]]).toEqual([NAME, '1', '1Gi', `${NAME}-1`]);
    // The short name with the version: kubectl lists the cluster; which version it asks for is
    // kubectl's choice (logged), and the columns are that version's.
    const verbose = await kubectl(['get', `pgc.v1beta1.${API_GROUP}`, '-n', nsA, '-v=6']);
    expect(verbose.code, verbose.stderr).toBe(0);
    const url = /url="([^"]+postgresqlclusters[^"]*)"/.exec(verbose.stderr)?.[1] ?? '';
    console.log(`[conversion] kubectl get pgc.v1beta1.${API_GROUP} asked for ${url}`);
    const short = columns(verbose.stdout);
    expect(short.row[0]).toBe(NAME);
    expect(short.header).toEqual(url.includes('/v1beta1/') ? beta : ['NAME', 'INSTANCES', 'READY', 'PHASE', 'PRIMARY', 'VERSION', 'AGE']);
  });

  it('the validating webhook refuses another namespace\'s archive of the default store, naming the field and what is allowed', async () => {
    for (const version of ['v1', 'v1beta1'] as const) {
      const res = await kubectl(['create', '-f', '-'], recoveryManifest(nsB, `steal-${version}`, `pgpilot/${nsA}/${NAME}`, version));
      expect(res.code, res.stdout).not.toBe(0);
      expect(res.stderr).toContain('admission webhook "recovery-source.postgresqlclusters.postgres.pgpilot.io" denied the request');
      expect(res.stderr).toContain(`spec.bootstrap.recovery.source.path "pgpilot/${nsA}/${NAME}" is not an archive of namespace ${nsB}`);
      expect(res.stderr).toContain(`under "pgpilot/${nsB}/"`);
    }
  });

  it('the validating webhook admits the cluster\'s own namespace\'s archive (server-side dry run: nothing is created)', async () => {
    const out = await kubectlOk(['create', '--dry-run=server', '-f', '-'], recoveryManifest(nsB, 'own', `pgpilot/${nsB}/old-db`));
    expect(out).toContain('created (server dry run)');
  });

  it('with the webhook bypassed (its configuration deleted), the operator refuses the source itself and creates nothing', async () => {
    await kubectlOk(['delete', 'validatingwebhookconfiguration', VWC]);
    await kubectlOk(['create', '-f', '-'], recoveryManifest(nsB, 'steal', `pgpilot/${nsA}/${NAME}`));
    const degraded = await waitFor('Degraded RecoverySourceForbidden on steal', async () => {
      const c = await getAs<PostgreSQLCluster>('v1', nsB, 'steal');
      const d = c.status?.conditions?.find((x) => x.type === 'Degraded');
      return d?.reason === 'RecoverySourceForbidden' ? d : undefined;
    }, { timeoutMs: 60_000 });
    expect(degraded.status).toBe('True');
    expect(degraded.message).toContain(`spec.bootstrap.recovery.source.path "pgpilot/${nsA}/${NAME}" is not an archive of namespace ${nsB}`);
    const owned = parseJson<{ items: unknown[] }>(
      await kubectlOk(['get', 'statefulsets,services,secrets,configmaps,poddisruptionbudgets,serviceaccounts,roles,rolebindings,jobs', '-n', nsB, '-l', `${LABELS.cluster}=steal`, '-o', 'json']),
      'objects of steal',
    );
    expect(owned.items).toEqual([]);
  });
});
