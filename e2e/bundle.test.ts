// The OLM bundle (bundle/) against the real apiserver, as OLM would install it: its CRDs applied
// (server-side) and Established, its alm-examples admitted by them (server dry run), and the CSV's
// operator created for real in a namespace that enforces the restricted Pod Security level — the
// ServiceAccount and a Role/RoleBinding per `permissions` entry, then the Deployment with the
// olm.targetNamespaces annotation OLM puts on its pod template; the ReplicaSet controller's pod is
// admitted (no node runs it: this proves the objects, not the operator, which e2e/chart covers).
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { createTestNamespace, deleteTestNamespace, waitFor } from './harness/env.js';
import { kubectl, kubectlOk } from './harness/kubectl.js';
import { REPO_ROOT } from './harness/operator.js';
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

describe('the bundle on the apiserver', () => {
  let ns = '';
  let watched = '';

  beforeAll(async () => {
    ns = await createTestNamespace('bundle');
    watched = await createTestNamespace('bundle-watched', { waitForServiceAccount: false });
    await kubectlOk(['label', 'namespace', ns, 'pod-security.kubernetes.io/enforce=restricted', 'pod-security.kubernetes.io/enforce-version=latest', 'pod-security.kubernetes.io/warn=restricted', 'pod-security.kubernetes.io/warn-version=latest']);
  });

  afterAll(async () => {
    for (const n of [ns, watched]) if (n) await deleteTestNamespace(n);
  });

  it('ships both CRDs; they apply (server-side, idempotent) with no warning and become Established', async () => {
    expect(crds.map((c) => c.metadata.name).sort()).toEqual(['postgresqlbackups.postgres.pgpilot.io', 'postgresqlclusters.postgres.pgpilot.io']);
    for (const crd of crds) {
      const dry = await kubectl(DRY_RUN, stringify(crd));
      expect(dry.code, dry.stderr).toBe(0);
      expect(dry.stderr.split('\n').filter((l) => /warning/i.test(l))).toEqual([]);
      await kubectlOk(APPLY, stringify(crd));
      await kubectlOk(['wait', '--for=condition=Established', `customresourcedefinition/${crd.metadata.name}`, '--timeout=60s']);
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

  it("creates the CSV's ServiceAccount, Role and RoleBinding as OLM does (the rules are valid RBAC)", async () => {
    expect(install.clusterPermissions ?? []).toEqual([]);
    for (const p of install.permissions as Obj[]) {
      const name = `${csv.metadata.name}-${p.serviceAccountName}`.replace(/[^a-z0-9.-]/g, '-');
      const objs = [
        { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: p.serviceAccountName, namespace: ns } },
        { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: { name, namespace: ns }, rules: p.rules },
        {
          apiVersion: 'rbac.authorization.k8s.io/v1',
          kind: 'RoleBinding',
          metadata: { name, namespace: ns },
          roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name },
          subjects: [{ kind: 'ServiceAccount', name: p.serviceAccountName, namespace: ns }],
        },
      ];
      await kubectlOk(APPLY, objs.map((o) => stringify(o)).join('---\n'));
      const role = await getJson(['role', name, '-n', ns]);
      expect(role.rules).toEqual(p.rules);
    }
  });

  it("creates the CSV's Deployment in a restricted namespace with no warning, and its pod is admitted", async () => {
    const [dep] = install.deployments as Obj[];
    const spec = structuredClone(dep!.spec) as Obj;
    spec.template.metadata.annotations = { ...spec.template.metadata.annotations, [TARGET_NAMESPACES]: `${ns},${watched}` };
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
    expect(pod.metadata.annotations[TARGET_NAMESPACES]).toBe(`${ns},${watched}`);
    const env = (pod.spec.containers[0].env as Obj[]).find((e) => e.name === 'PGPILOT_WATCH_NAMESPACES');
    expect(env?.valueFrom?.fieldRef?.fieldPath).toBe(`metadata.annotations['${TARGET_NAMESPACES}']`);
  });
});
