// The OLM bundle (bundle/) against the real apiserver, as OLM would install it: its CRDs applied
// (server-side) and Established, its alm-examples admitted by them (server dry run), and the CSV's
// operator created for real in a namespace that enforces the restricted Pod Security level — the
// ServiceAccount and, for the AllNamespaces install mode (the only one), a ClusterRole and
// ClusterRoleBinding per `permissions` entry, then the Deployment with the olm.targetNamespaces
// annotation OLM puts on its pod template ("" for all); the ReplicaSet controller's pod is
// admitted. Then this file stands in for OLM's webhook wiring (OLM is not here): a certificate
// issued for the Service OLM would create, mounted from a Secret where OLM mounts it, the pod run by
// the process kubelet, that Service (as an ExternalName to the pod: ClusterIPs carry no traffic
// here) and the CRD's conversion pointed at it with the CA — and a v1beta1 object round-trips
// through the operator's conversion webhook, which serves the mounted certificate, and keeps
// converting after a rotation of that certificate and its CA.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { createTestNamespace, deleteTestNamespace, kubeconfigPath, waitFor } from './harness/env.js';
import { kubectl, kubectlOk } from './harness/kubectl.js';
import { REPO_ROOT, ensureBuilt, restoreCrdConversion } from './harness/operator.js';
import { startProcessKubelet, type ProcessKubelet } from './kubelet/index.js';
import { OLM_SERVING_CERT_DIR } from '../src/runtime/serving-cert-files.js';
import { createCa, issueCertificate } from '../src/runtime/x509.js';
import { parseJson } from '../src/util/json.js';

type Obj = Record<string, any>;

const MANIFESTS = join(REPO_ROOT, 'bundle/manifests');
const objects = readdirSync(MANIFESTS).map((f) => parse(readFileSync(join(MANIFESTS, f), 'utf8')) as Obj);
const csv = objects.find((o) => o.kind === 'ClusterServiceVersion')!;
const crds = objects.filter((o) => o.kind === 'CustomResourceDefinition');
const install = csv.spec.install.spec as Obj;
const DRY_RUN = ['apply', '--server-side', '--dry-run=server', '--field-manager=e2e', '-f', '-'];
const APPLY = ['apply', '--server-side', '--field-manager=e2e', '-f', '-'];
const TARGET_NAMESPACES = 'olm.targetNamespaces';

async function getJson(args: string[]): Promise<Obj> {
  return parseJson<Obj>(await kubectlOk(['get', ...args, '-o', 'json']), `kubectl get ${args.join(' ')}`);
}

const CLUSTER_CRD = 'postgresqlclusters.postgres.pgpilot.io';

describe('the bundle on the apiserver', () => {
  let ns = '';
  let other = '';
  let kubelet: ProcessKubelet | undefined;
  const clusterRbac: string[] = [];

  beforeAll(async () => {
    ns = await createTestNamespace('bundle');
    other = await createTestNamespace('bundle-other', { waitForServiceAccount: false });
    await kubectlOk(['label', 'namespace', ns, 'pod-security.kubernetes.io/enforce=restricted', 'pod-security.kubernetes.io/enforce-version=latest', 'pod-security.kubernetes.io/warn=restricted', 'pod-security.kubernetes.io/warn-version=latest']);
  });

  afterAll(async () => {
    await kubelet?.stop();
    for (const n of [ns, other]) if (n) await deleteTestNamespace(n);
    for (const name of clusterRbac) await kubectl(['delete', 'clusterrolebinding,clusterrole', name, '--ignore-not-found']);
    await restoreCrdConversion();
  });

  it('ships both CRDs; they apply (server-side, idempotent) with no warning and become Established', async () => {
    expect(crds.map((c) => c.metadata.name).sort()).toEqual(['postgresqlbackups.postgres.pgpilot.io', 'postgresqlclusters.postgres.pgpilot.io']);
    for (const crd of crds) {
      const dry = await kubectl(DRY_RUN, stringify(crd));
      expect(dry.code, dry.stderr).toBe(0);
      expect(dry.stderr.split('\n').filter((l) => /warning/i.test(l))).toEqual([]);
      await kubectlOk(APPLY, stringify(crd));
      // Polled: `kubectl wait` fails outright on a CRD so new that it has no status.conditions yet.
      await waitFor(`CRD ${crd.metadata.name} Established`, async () => {
        const live = await getJson(['customresourcedefinition', crd.metadata.name]);
        return ((live.status?.conditions ?? []) as Obj[]).some((c) => c.type === 'Established' && c.status === 'True') || undefined;
      }, { timeoutMs: 60_000, intervalMs: 250 });
    }
  });

  it('its alm-examples are admitted by those CRDs (server dry run)', async () => {
    const examples = JSON.parse(csv.metadata.annotations['alm-examples'] as string) as Obj[];
    for (const example of examples) {
      const r = await kubectl([...DRY_RUN, '-n', ns], stringify(example));
      expect(r.code, `${example.kind}: ${r.stderr}`).toBe(0);
      expect(r.stdout.trim()).toBe(`${String(example.kind).toLowerCase()}.postgres.pgpilot.io/${example.metadata.name} serverside-applied (server dry run)`);
    }
  });

  it("creates the CSV's ServiceAccount and, for AllNamespaces, a ClusterRole and ClusterRoleBinding as OLM does (the rules are valid RBAC)", async () => {
    expect(install.clusterPermissions ?? []).toEqual([]);
    expect((csv.spec.installModes as Obj[]).filter((m) => m.supported).map((m) => m.type)).toEqual(['AllNamespaces']);
    for (const p of install.permissions as Obj[]) {
      const name = `${csv.metadata.name}-${p.serviceAccountName}-${ns}`.replace(/[^a-z0-9.-]/g, '-');
      clusterRbac.push(name);
      const objs = [
        { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: p.serviceAccountName, namespace: ns } },
        { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name }, rules: p.rules },
        {
          apiVersion: 'rbac.authorization.k8s.io/v1',
          kind: 'ClusterRoleBinding',
          metadata: { name },
          roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name },
          subjects: [{ kind: 'ServiceAccount', name: p.serviceAccountName, namespace: ns }],
        },
      ];
      await kubectlOk(APPLY, objs.map((o) => stringify(o)).join('---\n'));
      const role = await getJson(['clusterrole', name]);
      expect(role.rules).toEqual(p.rules);
    }
  });

  it("creates the CSV's Deployment in a restricted namespace with no warning, and its pod is admitted", async () => {
    const [dep] = install.deployments as Obj[];
    const spec = structuredClone(dep!.spec) as Obj;
    spec.template.metadata.annotations = { ...spec.template.metadata.annotations, [TARGET_NAMESPACES]: '' };
    const deployment = { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: dep!.name, namespace: ns, labels: dep!.label }, spec };
    const r = await kubectl(APPLY, stringify(deployment));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr.split('\n').filter((l) => /warning/i.test(l))).toEqual([]);

    // The ReplicaSet controller creates the pod through admission (PodSecurity enforce=restricted,
    // ServiceAccount): a refusal would leave no pod and a FailedCreate condition on the ReplicaSet.
    const selector = Object.entries(spec.selector.matchLabels as Record<string, string>).map(([k, v]) => `${k}=${v}`).join(',');
    const pod = await waitFor(`a pod of Deployment ${dep!.name} in ${ns}`, async () => {
      const pods = (await getJson(['pods', '-n', ns, '-l', selector])).items as Obj[];
      if (pods.length > 0) return pods[0];
      const sets = (await getJson(['replicasets', '-n', ns, '-l', selector])).items as Obj[];
      const failed = sets.flatMap((s) => (s.status?.conditions ?? []) as Obj[]).find((c) => c.type === 'ReplicaFailure');
      if (failed) throw new Error(`ReplicaSet cannot create the pod: ${failed.message}`);
      return undefined;
    }, { timeoutMs: 60_000 });
    expect(pod.spec.serviceAccountName).toBe((install.permissions as Obj[])[0]!.serviceAccountName);
    expect(pod.metadata.annotations[TARGET_NAMESPACES]).toBe('');
    const env = (pod.spec.containers[0].env as Obj[]).find((e) => e.name === 'PGPILOT_WATCH_NAMESPACES');
    expect(env?.valueFrom?.fieldRef?.fieldPath).toBe(`metadata.annotations['${TARGET_NAMESPACES}']`);
  });
  it('stands in for OLM\'s webhooks: with the certificate mounted where OLM mounts it and the CRD pointed at its Service, a v1beta1 object round-trips through the operator', async () => {
    const [dep] = install.deployments as Obj[];
    const conversion = (csv.spec.webhookdefinitions as Obj[]).find((d) => d.type === 'ConversionWebhook')!;
    expect(conversion.conversionCRDs).toEqual([CLUSTER_CRD]);
    expect(conversion.deploymentName).toBe(dep!.name);
    // What OLM does: a certificate for the Service `<deploymentName>-service` it creates, in a Secret
    // mounted into the Deployment's containers at /tmp/k8s-webhook-server/serving-certs.
    const service = `${String(conversion.deploymentName).replace(/\./g, '-')}-service`;
    const ca = await createCa('olm-stand-in', 3600);
    const leaf = await issueCertificate(ca, { commonName: service, dnsNames: [service, `${service}.${ns}`, `${service}.${ns}.svc`], usage: 'server', validitySeconds: 3600 });
    const secret = { apiVersion: 'v1', kind: 'Secret', type: 'kubernetes.io/tls', metadata: { name: `${service}-cert`, namespace: ns }, stringData: { 'tls.crt': leaf.cert, 'tls.key': leaf.key } };
    await kubectlOk(APPLY, stringify(secret));
    const deployment = await getJson(['deployment', dep!.name, '-n', ns]);
    const spec = deployment.spec as Obj;
    spec.template.spec.volumes = [...(spec.template.spec.volumes ?? []), { name: 'webhook-cert', secret: { secretName: secret.metadata.name, items: [{ key: 'tls.crt', path: 'tls.crt' }, { key: 'tls.key', path: 'tls.key' }] } }];
    for (const c of spec.template.spec.containers as Obj[]) c.volumeMounts = [...(c.volumeMounts ?? []), { name: 'webhook-cert', mountPath: OLM_SERVING_CERT_DIR }];
    await kubectlOk(['replace', '-f', '-'], JSON.stringify(deployment));

    ensureBuilt();
    kubelet = await startProcessKubelet({ kubeconfigPath: kubeconfigPath(), repoRoot: REPO_ROOT });
    const selector = Object.entries(spec.selector.matchLabels as Record<string, string>).map(([k, v]) => `${k}=${v}`).join(',');
    const pod = await waitFor('the operator pod Ready on the process kubelet, serving the mounted certificate', async () => {
      const pods = (await getJson(['pods', '-n', ns, '-l', selector])).items as Obj[];
      return pods.find((p) => !p.metadata.deletionTimestamp && (p.spec.volumes as Obj[]).some((v) => v.name === 'webhook-cert') && (p.status?.conditions as Obj[] | undefined)?.some((c) => c.type === 'Ready' && c.status === 'True'));
    }, { timeoutMs: 180_000, intervalMs: 500 });
    const logs = await kubectlOk(['logs', '-n', ns, pod.metadata.name]);
    expect(logs).toContain('webhook serving certificate read from its files');
    expect(logs).not.toContain('webhook CA created or renewed');

    // OLM's Service (here an ExternalName to the pod's IP: the apiserver dials <externalName>:<port>
    // and checks the certificate for <service>.<namespace>.svc) and its caBundle in the CRD.
    const svc = { apiVersion: 'v1', kind: 'Service', metadata: { name: service, namespace: ns }, spec: { type: 'ExternalName', externalName: pod.status.podIP, ports: [{ name: 'webhook', port: conversion.containerPort }] } };
    await kubectlOk(APPLY, stringify(svc));
    const clientConfig = { service: { namespace: ns, name: service, path: conversion.webhookPath, port: conversion.containerPort }, caBundle: Buffer.from(ca.cert).toString('base64') };
    await kubectlOk(['patch', 'crd', CLUSTER_CRD, '--type=merge', '-p', JSON.stringify({ spec: { conversion: { strategy: 'Webhook', webhook: { conversionReviewVersions: conversion.admissionReviewVersions, clientConfig } } } })]);

    // Hibernated: the operator (watching every namespace) runs no pod for it.
    const beta = { apiVersion: 'postgres.pgpilot.io/v1beta1', kind: 'PostgreSQLCluster', metadata: { name: 'legacy', namespace: other }, spec: { version: '16', replicas: 2, storage: '1Gi', hibernation: true, backup: { enabled: false } } };
    await waitFor('the v1beta1 object created through the conversion webhook', async () => {
      const r = await kubectl(['create', '-f', '-'], JSON.stringify(beta));
      return r.code === 0 || (/AlreadyExists/.test(r.stderr) ? true : (console.log(`[bundle e2e] create v1beta1: ${r.stderr.trim()}`), undefined));
    }, { timeoutMs: 60_000, intervalMs: 1000 });
    const v1 = await getJson(['postgresqlclusters.v1.postgres.pgpilot.io', 'legacy', '-n', other]);
    expect(v1.apiVersion).toBe('postgres.pgpilot.io/v1');
    expect(v1.spec).toMatchObject({ instances: 2, storage: { size: '1Gi' } });
    const asBeta = await getJson(['postgresqlclusters.v1beta1.postgres.pgpilot.io', 'legacy', '-n', other]);
    expect(asBeta.apiVersion).toBe('postgres.pgpilot.io/v1beta1');
    expect(asBeta.spec).toMatchObject({ replicas: 2, storage: '1Gi' });
    // Written back as v1beta1 with a change, read as v1: the change and everything else kept (read
    // again on a conflict: the operator writes the object's status).
    await waitFor('the v1beta1 object replaced with replicas 3', async () => {
      const current = await getJson(['postgresqlclusters.v1beta1.postgres.pgpilot.io', 'legacy', '-n', other]);
      current.spec.replicas = 3;
      const r = await kubectl(['replace', '-f', '-'], JSON.stringify(current));
      if (r.code !== 0 && !/Conflict|modified/.test(r.stderr)) throw new Error(r.stderr);
      return r.code === 0 || undefined;
    }, { timeoutMs: 30_000, intervalMs: 500 });
    const after = await getJson(['postgresqlclusters.v1.postgres.pgpilot.io', 'legacy', '-n', other]);
    expect(after.spec).toEqual({ ...v1.spec, instances: 3 });

    // OLM rotates the certificate (a new CA, injected again): the kubelet rewrites the mounted
    // files, the operator swaps them in without a restart, and conversions keep working with only
    // the new CA trusted.
    const ca2 = await createCa('olm-stand-in-2', 3600);
    const leaf2 = await issueCertificate(ca2, { commonName: service, dnsNames: [service, `${service}.${ns}`, `${service}.${ns}.svc`], usage: 'server', validitySeconds: 3600 });
    await kubectlOk(APPLY, stringify({ ...secret, stringData: { 'tls.crt': leaf2.cert, 'tls.key': leaf2.key } }));
    await kubectlOk(['patch', 'crd', CLUSTER_CRD, '--type=merge', '-p', JSON.stringify({ spec: { conversion: { webhook: { clientConfig: { caBundle: Buffer.from(ca2.cert).toString('base64') } } } } })]);
    await waitFor('a v1beta1 read through the rotated certificate', async () => {
      const r = await kubectl(['get', 'postgresqlclusters.v1beta1.postgres.pgpilot.io', 'legacy', '-n', other, '-o', 'json']);
      return r.code === 0 ? parseJson<Obj>(r.stdout, 'the cluster as v1beta1').spec.replicas === 3 || undefined : undefined;
    }, { timeoutMs: 60_000, intervalMs: 500 });
    const restarts = (await getJson(['pod', pod.metadata.name, '-n', ns])).status.containerStatuses[0].restartCount;
    expect(restarts).toBe(0);
    expect((await kubectlOk(['logs', '-n', ns, pod.metadata.name])).match(/webhook serving certificate read from its files/g)?.length).toBe(2);
  });
});
