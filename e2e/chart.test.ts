// The Helm chart against the real apiserver: every object rendered with each values file of
// test/chart/values passes a server-side dry run (schema, defaulting, admission); a real
// `helm install` gives the operator what it needs and nothing it must not have (checked with
// `kubectl auth can-i` as its ServiceAccount); and the operator's and the PostgreSQL instances'
// pods are admitted by the PodSecurity "restricted" level.
import { randomBytes } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import type { PostgreSQLCluster } from '../src/api/cluster.js';
import { LEADER_ELECTION_PERMISSIONS, OPERATOR_PERMISSIONS, type Permission } from '../src/api/permissions.js';
import { instanceStatefulSet } from '../src/builders/statefulset.js';
import { instanceRole, instanceRoleBinding, instanceServiceAccount } from '../src/builders/rbac.js';
import { helmOk, parseManifests, templateArgs } from '../test/support/helm.js';
import { createTestNamespace, deleteTestNamespace, waitFor } from './harness/env.js';
import { kubectl, kubectlOk, type KubectlResult } from './harness/kubectl.js';
import { DEFAULT_CHART_ARGS, OPERATOR_NAMESPACE, RELEASE, REPO_ROOT, installChart } from './harness/operator.js';
import { parseJson } from '../src/util/json.js';

type Obj = Record<string, any>;

const VALUES_DIR = join(REPO_ROOT, 'test/chart/values');
const VALUES_FILES = readdirSync(VALUES_DIR)
  .filter((f) => /\.ya?ml$/.test(f))
  .sort();
const CRD_NAME = 'postgresqlclusters.postgres.pgpilot.io';
const BACKUP_CRD_NAME = 'postgresqlbackups.postgres.pgpilot.io';
const OPERATOR_SA = `system:serviceaccount:${OPERATOR_NAMESPACE}:${RELEASE}`;
const APP_VERSION = String((parse(readFileSync(join(REPO_ROOT, 'charts/pgpilot/Chart.yaml'), 'utf8')) as Obj).appVersion);
const seed = parse(readFileSync(join(REPO_ROOT, 'examples/cluster.yaml'), 'utf8')) as PostgreSQLCluster;

const DRY_RUN = ['apply', '--server-side', '--dry-run=server', '--field-manager=e2e', '-f', '-'];
const DRY_RUN_LINE = /^(\S+) serverside-applied \(server dry run\)$/;

const suffix = () => randomBytes(3).toString('hex');

/** `helm template` output (raw YAML, as a user would pipe it to kubectl) and its objects. */
async function render(valuesFile: string, namespace: string, releaseName: string, extra: string[] = []): Promise<{ yaml: string; objects: Obj[] }> {
  const args = [...templateArgs(valuesFile ? [valuesFile] : [], undefined, { namespace, releaseName, includeCrds: true }), ...extra];
  const yaml = (await helmOk(args)).stdout;
  return { yaml, objects: parseManifests(yaml) };
}

/** How kubectl names an object in its output: `<kind>[.<group>]/<name>`, lower-case kind. */
function printedName(o: Obj): string {
  const apiVersion = String(o.apiVersion);
  const group = apiVersion.includes('/') ? apiVersion.split('/')[0] : '';
  return `${String(o.kind).toLowerCase()}${group ? `.${group}` : ''}/${o.metadata.name}`;
}

/** Apply the CRDs among objects for real (server-side, idempotent) and wait until they are Established. */
async function applyCrds(objects: Obj[]): Promise<string[]> {
  const crds = objects.filter((o) => o.kind === 'CustomResourceDefinition');
  for (const crd of crds) {
    await kubectlOk(['apply', '--server-side', '--field-manager=e2e', '-f', '-'], stringify(crd));
    await kubectlOk(['wait', '--for=condition=Established', `customresourcedefinition/${crd.metadata.name}`, '--timeout=60s']);
  }
  return crds.map((c) => c.metadata.name as string);
}

/** PodSecurity warnings kubectl relays from the apiserver (warn mode). */
const podSecurityWarnings = (r: KubectlResult) => r.stderr.split('\n').filter((l) => /would violate PodSecurity/.test(l));

/** Every string in a value (deep), with its path. */
function stringsOf(v: unknown, path = '$'): Array<[string, string]> {
  if (typeof v === 'string') return [[path, v]];
  if (Array.isArray(v)) return v.flatMap((x, i) => stringsOf(x, `${path}[${i}]`));
  if (v && typeof v === 'object') return Object.entries(v).flatMap(([k, x]) => stringsOf(x, `${path}.${k}`));
  return [];
}

/** The instance cluster of the brief: examples/cluster.yaml as `x` in the given namespace. */
function exampleCluster(namespace: string): PostgreSQLCluster {
  const c = structuredClone(seed);
  c.metadata = { name: 'x', namespace, uid: '00000000-0000-0000-0000-000000000001' };
  return c;
}

/** The pod a StatefulSet / Deployment controller would create from a workload's template. */
function podFrom(workload: Obj, name: string): Obj {
  const tpl = structuredClone(workload.spec.template) as Obj;
  const spec = tpl.spec as Obj;
  // The StatefulSet controller adds one PVC volume per claim template (pods cannot reference
  // volumeClaimTemplates themselves).
  for (const claim of (workload.spec.volumeClaimTemplates ?? []) as Obj[]) {
    spec.volumes = [...(spec.volumes ?? []), { name: claim.metadata.name, persistentVolumeClaim: { claimName: `${claim.metadata.name}-${name}` } }];
  }
  return { apiVersion: 'v1', kind: 'Pod', metadata: { ...tpl.metadata, name, namespace: workload.metadata.namespace }, spec };
}

// ---------------------------------------------------------------------------------------------
// 1. Every rendered object of every values file, dry-run against the apiserver.
// ---------------------------------------------------------------------------------------------

describe.each(VALUES_FILES)('chart rendered with test/chart/values/%s', (file) => {
  const valuesPath = join(VALUES_DIR, file);
  const values = (parse(readFileSync(valuesPath, 'utf8')) ?? {}) as Obj;
  const listedWatch: string[] = Array.isArray(values.watchNamespaces) ? values.watchNamespaces.map(String) : [];
  const created: string[] = [];
  let releaseNs = '';
  let watchNamespaces: string[] = [];
  // A release of its own per case: cluster-scoped objects (ClusterRole/Binding) are named after
  // the release and must not collide with the real `pgpilot` release other files install.
  const releaseName = `pgpilot-${suffix()}`;
  let yaml = '';
  let objects: Obj[] = [];

  beforeAll(async () => {
    releaseNs = await createTestNamespace(`chart-${file.replace(/\.ya?ml$/, '')}`);
    created.push(releaseNs);
    // Namespaces the values file watches, made unique per run (team-a → team-a-<random>).
    for (const ns of listedWatch) {
      const real = await createTestNamespace(ns, { waitForServiceAccount: false });
      created.push(real);
      watchNamespaces.push(real);
    }
    const extra = listedWatch.length > 0 ? ['--set-json', `watchNamespaces=${JSON.stringify(watchNamespaces)}`] : [];
    ({ yaml, objects } = await render(valuesPath, releaseNs, releaseName, extra));
  });

  afterAll(async () => {
    for (const ns of created) await deleteTestNamespace(ns);
    watchNamespaces = [];
  });

  it('renders objects only into namespaces that exist (release namespace and watched ones)', () => {
    expect(objects.length).toBeGreaterThan(0);
    expect(objects.map((o) => o.kind)).toContain('Deployment');
    const namespaces = new Set(objects.map((o) => o.metadata?.namespace).filter((n): n is string => typeof n === 'string'));
    expect([...namespaces].sort()).toEqual([...new Set([releaseNs, ...watchNamespaces])].sort());
    if (listedWatch.length > 0) {
      // The override took effect: one Role per watched namespace, and the operator is told so.
      // The operator's Role per watched namespace (leader election and the default backup store's
      // Secret have Roles of their own in the release namespace).
      const roleNamespaces = objects
        .filter((o) => o.kind === 'Role' && !/-(leader-election|backup-store|webhook)$/.test(String(o.metadata.name)))
        .map((o) => o.metadata.namespace);
      expect(roleNamespaces.sort()).toEqual([...watchNamespaces].sort());
      const env = objects.find((o) => o.kind === 'Deployment')!.spec.template.spec.containers[0].env as Obj[];
      expect(env.find((e) => e.name === 'PGPILOT_WATCH_NAMESPACES')?.value).toBe(watchNamespaces.join(','));
    }
  });

  it('applies its CRDs for real (server-side, idempotent) and they become Established', async () => {
    const names = await applyCrds(objects);
    expect([...names].sort()).toEqual([BACKUP_CRD_NAME, CRD_NAME].sort());
    // Idempotent: a second apply changes nothing and does not conflict.
    await applyCrds(objects);
  });

  it('every rendered object passes a server-side dry run, and kubectl names each one', async () => {
    const r = await kubectl(DRY_RUN, yaml);
    expect(r.code, `kubectl apply --dry-run=server failed:\n${r.stderr}${r.stdout}`).toBe(0);
    // No deprecation or other warnings from the apiserver either.
    expect(r.stderr.split('\n').filter((l) => /warning/i.test(l))).toEqual([]);
    const lines = r.stdout.split('\n').filter((l) => l.trim() !== '');
    const unexpected = lines.filter((l) => !DRY_RUN_LINE.test(l));
    expect(unexpected, 'kubectl output lines other than "... serverside-applied (server dry run)"').toEqual([]);
    const printed = lines.map((l) => DRY_RUN_LINE.exec(l)![1]!).sort();
    expect(printed).toEqual(objects.map(printedName).sort());
  });
});

// ---------------------------------------------------------------------------------------------
// 2. A real `helm install`, checked with the apiserver.
// ---------------------------------------------------------------------------------------------

async function getJson(args: string[]): Promise<Obj> {
  const command = ['get', ...args, '-o', 'json'];
  return parseJson<Obj>(await kubectlOk(command), `kubectl ${command.join(' ')}`);
}

interface CanI {
  verb: string;
  resource: string;
  namespace?: string;
  subresource?: string;
}

async function canI(q: CanI): Promise<{ answer: string; result: KubectlResult }> {
  const args = ['auth', 'can-i', q.verb, q.resource, `--as=${OPERATOR_SA}`];
  if (q.subresource) args.push(`--subresource=${q.subresource}`);
  if (q.namespace) args.push(`--namespace=${q.namespace}`);
  const result = await kubectl(args);
  return { answer: result.stdout.trim().split('\n')[0] ?? '', result };
}

const describeCanI = (q: CanI) => `${q.verb} ${q.resource}${q.subresource ? `/${q.subresource}` : ''}${q.namespace ? ` in ${q.namespace}` : ' (cluster scope)'}`;

const SOME_NS = 'default';

/** A row of src/api/permissions.ts as `kubectl auth can-i` questions, one per verb. */
const questions = (permissions: readonly Permission[], namespace: string): CanI[] =>
  permissions.flatMap((p) => {
    const [plural, subresource] = p.resource.split('/') as [string, string | undefined];
    const resource = p.group ? `${plural}.${p.group}` : plural;
    return p.verbs.map((verb) => ({ verb, resource, namespace, ...(subresource ? { subresource } : {}) }));
  });

/** Everything src/api/permissions.ts declares (checked there against the code): must be allowed. */
const ALLOWED: CanI[] = [...questions(OPERATOR_PERMISSIONS, SOME_NS), ...questions(LEADER_ELECTION_PERMISSIONS, OPERATOR_NAMESPACE)]
  // The Prometheus Operator's CRDs are not installed here, so kubectl cannot name PodMonitors.
  .filter((q) => !q.resource.endsWith('.monitoring.coreos.com'));

/** Not in the chart's rules: must be refused. */
const DENIED: CanI[] = [
  { verb: 'delete', resource: 'namespaces' },
  { verb: 'create', resource: 'namespaces' },
  { verb: 'create', resource: 'clusterroles.rbac.authorization.k8s.io' },
  { verb: 'create', resource: 'clusterrolebindings.rbac.authorization.k8s.io' },
  { verb: 'get', resource: 'nodes' },
  { verb: 'create', resource: 'customresourcedefinitions.apiextensions.k8s.io' },
  { verb: 'create', resource: 'pods', namespace: SOME_NS },
  { verb: 'delete', resource: 'pods', namespace: SOME_NS },
  { verb: 'create', resource: 'pods', subresource: 'exec', namespace: SOME_NS },
  { verb: 'create', resource: 'serviceaccounts', subresource: 'token', namespace: SOME_NS },
  { verb: 'create', resource: 'postgresqlclusters.postgres.pgpilot.io', namespace: SOME_NS },
  { verb: 'delete', resource: 'postgresqlclusters.postgres.pgpilot.io', namespace: SOME_NS },
  { verb: 'create', resource: 'deployments.apps', namespace: SOME_NS },
  { verb: 'patch', resource: 'statefulsets.apps', subresource: 'status', namespace: SOME_NS },
  { verb: 'bind', resource: 'roles.rbac.authorization.k8s.io', namespace: SOME_NS },
  { verb: 'escalate', resource: 'roles.rbac.authorization.k8s.io', namespace: SOME_NS },
  { verb: 'impersonate', resource: 'serviceaccounts', namespace: SOME_NS },
  // The leader-election Role lives in the release namespace only, and has no delete.
  { verb: 'delete', resource: 'leases.coordination.k8s.io', namespace: SOME_NS },
  { verb: 'delete', resource: 'leases.coordination.k8s.io', namespace: OPERATOR_NAMESPACE },
  // Batch beyond CronJobs and Jobs, and the Jobs' status, are not the operator's.
  { verb: 'patch', resource: 'jobs.batch', subresource: 'status', namespace: SOME_NS },
  { verb: 'patch', resource: 'cronjobs.batch', subresource: 'status', namespace: SOME_NS },
  { verb: 'delete', resource: 'postgresqlbackups.postgres.pgpilot.io', subresource: 'status', namespace: SOME_NS },
  { verb: 'deletecollection', resource: 'postgresqlbackups.postgres.pgpilot.io', namespace: SOME_NS },
  // Granted once, never used by the code (src/api/permissions.test.ts): removed.
  { verb: 'update', resource: 'secrets', namespace: SOME_NS },
  { verb: 'patch', resource: 'events', namespace: SOME_NS },
  { verb: 'create', resource: 'events.events.k8s.io', namespace: SOME_NS },
  { verb: 'update', resource: 'postgresqlclusters.postgres.pgpilot.io', namespace: SOME_NS },
  { verb: 'update', resource: 'postgresqlclusters.postgres.pgpilot.io', subresource: 'scale', namespace: SOME_NS },
  { verb: 'update', resource: 'postgresqlclusters.postgres.pgpilot.io', subresource: 'status', namespace: SOME_NS },
  { verb: 'update', resource: 'postgresqlbackups.postgres.pgpilot.io', namespace: SOME_NS },
  { verb: 'get', resource: 'pods', namespace: SOME_NS },
  { verb: 'delete', resource: 'configmaps', namespace: SOME_NS },
  { verb: 'update', resource: 'statefulsets.apps', namespace: SOME_NS },
];

describe('helm install of the chart (release pgpilot in pgpilot-system)', () => {
  beforeAll(async () => {
    await installChart();
  });
  // The chart's validating webhook has no operator pod behind it here: leave the release as the
  // other files install it, or each creation of a cluster waits for the webhook's timeout.
  afterAll(async () => {
    await installChart(DEFAULT_CHART_ARGS);
  });

  it('creates the operator Deployment with the env contract and a restricted security context', async () => {
    const dep = await getJson(['deployment', RELEASE, '-n', OPERATOR_NAMESPACE]);
    const pod = dep.spec.template.spec as Obj;
    expect(pod.serviceAccountName).toBe(RELEASE);
    expect((pod.containers as Obj[]).map((c) => c.name)).toEqual(['operator']);
    const c = (pod.containers as Obj[])[0]!;
    const env = Object.fromEntries((c.env as Obj[]).map((e) => [e.name, e.valueFrom ?? e.value ?? '']));
    expect(env).toEqual({
      PGPILOT_NAMESPACE: { fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.namespace' } },
      PGPILOT_WATCH_NAMESPACES: '',
      PGPILOT_LEADER_ELECT: 'true',
      PGPILOT_LEASE_NAME: `${RELEASE}-leader`,
      PGPILOT_HTTP_PORT: '8080',
      PGPILOT_HTTP_HOST: { fieldRef: { apiVersion: 'v1', fieldPath: 'status.podIP' } },
      PGPILOT_LOG_LEVEL: 'info',
      PGPILOT_CONCURRENCY: '10',
      PGPILOT_RESYNC_SECONDS: '300',
      PGPILOT_INSTANCE_IMAGE_REPOSITORY: 'ghcr.io/pgpilot/postgresql',
      PGPILOT_OPERATOR_IMAGE: `ghcr.io/pgpilot/pgpilot:${APP_VERSION}`,
      PGPILOT_WEBHOOK_PORT: '9443',
      PGPILOT_WEBHOOK_SERVICE: `${RELEASE}-webhook`,
      PGPILOT_WEBHOOK_CONFIGURATION: `${RELEASE}-webhook`,
      PGPILOT_WEBHOOK_CA_SECRET: `${RELEASE}-webhook-ca`,
    });
    expect(c.image).toBe(`ghcr.io/pgpilot/pgpilot:${APP_VERSION}`);
    expect(c.args).toEqual(['operator']);
    expect(c.ports).toEqual([
      { name: 'http', containerPort: 8080, protocol: 'TCP' },
      { name: 'webhook', containerPort: 9443, protocol: 'TCP' },
    ]);
    expect(c.livenessProbe.httpGet).toMatchObject({ path: '/healthz', port: 'http' });
    expect(c.readinessProbe.httpGet).toMatchObject({ path: '/readyz', port: 'http' });
    // Restricted: non-root, RuntimeDefault seccomp, no privilege escalation, all capabilities dropped.
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
    expect(pod.hostNetwork ?? false).toBe(false);
    expect(pod.hostPID ?? false).toBe(false);
    expect(pod.hostIPC ?? false).toBe(false);
    expect(c.securityContext).toMatchObject({
      allowPrivilegeEscalation: false,
      privileged: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
    });
    expect(c.securityContext.capabilities.add ?? []).toEqual([]);
    expect(typeof c.securityContext.runAsUser === 'number' ? c.securityContext.runAsUser : pod.securityContext.runAsUser).toBeGreaterThan(0);
  });

  it('creates the webhook Service and ValidatingWebhookConfiguration; the operator may patch its own CRD and configuration, by name only', async () => {
    const svc = await getJson(['service', `${RELEASE}-webhook`, '-n', OPERATOR_NAMESPACE]);
    expect(svc.spec.ports).toEqual([{ name: 'webhook', port: 9443, targetPort: 'webhook', protocol: 'TCP' }]);
    const vwc = await getJson(['validatingwebhookconfiguration', `${RELEASE}-webhook`]);
    expect(vwc.webhooks[0].failurePolicy).toBe('Ignore');
    const can = async (args: string[]) => (await kubectl(['auth', 'can-i', ...args, `--as=${OPERATOR_SA}`])).stdout.trim();
    expect(await can(['patch', `customresourcedefinitions/${CRD_NAME}`])).toBe('yes');
    expect(await can(['patch', `customresourcedefinitions/${BACKUP_CRD_NAME}`])).toBe('no');
    expect(await can(['update', `validatingwebhookconfigurations/${RELEASE}-webhook`])).toBe('yes');
    expect(await can(['update', 'validatingwebhookconfigurations/another'])).toBe('no');
    expect(await can(['update', `secrets/${RELEASE}-webhook-ca`, '-n', OPERATOR_NAMESPACE])).toBe('yes');
  });

  it('creates the ServiceAccount pgpilot', async () => {
    const sa = await getJson(['serviceaccount', RELEASE, '-n', OPERATOR_NAMESPACE]);
    expect(sa.metadata.name).toBe(RELEASE);
    expect(sa.metadata.labels?.['app.kubernetes.io/managed-by']).toBe('Helm');
  });

  it('creates a ClusterRole without wildcards, bound to the ServiceAccount', async () => {
    const role = await getJson(['clusterrole', RELEASE]);
    expect((role.rules as Obj[]).length).toBeGreaterThan(0);
    expect(role.aggregationRule).toBeUndefined();
    const wild = stringsOf(role.rules, '$.rules').filter(([, s]) => s.includes('*'));
    expect(wild, 'wildcards in the ClusterRole').toEqual([]);
    const binding = await getJson(['clusterrolebinding', RELEASE]);
    expect(binding.roleRef).toEqual({ apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: RELEASE });
    expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name: RELEASE, namespace: OPERATOR_NAMESPACE }]);
  });

  it.each([
    [CRD_NAME, 'PostgreSQLCluster'],
    [BACKUP_CRD_NAME, 'PostgreSQLBackup'],
  ])('installs the CRD %s, Established with its names accepted', async (name, kind) => {
    await kubectlOk(['wait', '--for=condition=Established', `customresourcedefinition/${name}`, '--timeout=60s']);
    const crd = await getJson(['customresourcedefinition', name]);
    const cond = (t: string) => (crd.status.conditions as Obj[]).find((c) => c.type === t);
    expect(cond('Established')?.status).toBe('True');
    expect(cond('NamesAccepted')?.status).toBe('True');
    expect(crd.status.acceptedNames.kind).toBe(kind);
  });

  it.each(ALLOWED.map((q) => [describeCanI(q), q] as const))('the operator ServiceAccount can %s', async (_, q) => {
    const { answer, result } = await canI(q);
    expect(result.stderr, 'kubectl did not recognize the resource').not.toMatch(/doesn't have a resource type/);
    expect(answer, result.stderr).toBe('yes');
    expect(result.code).toBe(0);
  });

  it.each(DENIED.map((q) => [describeCanI(q), q] as const))('the operator ServiceAccount cannot %s', async (_, q) => {
    const { answer, result } = await canI(q);
    expect(result.stderr, 'kubectl did not recognize the resource').not.toMatch(/doesn't have a resource type/);
    expect(answer, result.stderr).toBe('no');
    expect(result.code).toBe(1);
  });

  describe('as the operator ServiceAccount, the objects it creates for a cluster', () => {
    let ns = '';
    beforeAll(async () => {
      ns = await createTestNamespace('chart-operator-sa', { waitForServiceAccount: false });
    });
    afterAll(async () => {
      if (ns) await deleteTestNamespace(ns);
    });

    it('are admitted (dry run): the instance Role is no escalation, the StatefulSet is allowed', async () => {
      const cluster = exampleCluster(ns);
      const objs = [instanceServiceAccount(cluster), instanceRole(cluster), instanceStatefulSet(cluster, 'x-1', { instanceImageRepository: 'r' })];
      const r = await kubectl([...DRY_RUN, `--as=${OPERATOR_SA}`], objs.map((o) => stringify(o)).join('---\n'));
      expect(r.code, `${r.stderr}${r.stdout}`).toBe(0);
      const printed = r.stdout.split('\n').filter((l) => l !== '').map((l) => DRY_RUN_LINE.exec(l)?.[1]);
      expect(printed).toEqual(objs.map((o) => printedName(o as Obj)));
    });

    it('binding the instance Role is admitted too (the operator holds every permission it grants)', async () => {
      // Without `bind`, the apiserver only lets a subject bind a Role whose rules it holds itself;
      // it must read that Role, so it exists for real here (the operator creates it first too).
      const cluster = exampleCluster(ns);
      await kubectlOk(['apply', '--server-side', '--field-manager=e2e', '-f', '-'], stringify(unowned(instanceRole(cluster))));
      const r = await kubectlAfterCaches([...DRY_RUN, `--as=${OPERATOR_SA}`], stringify(instanceRoleBinding(cluster)));
      expect(r.code, `${r.stderr}${r.stdout}`).toBe(0);
      expect(r.stdout.trim()).toBe('rolebinding.rbac.authorization.k8s.io/x serverside-applied (server dry run)');
    });
  });
});

// ---------------------------------------------------------------------------------------------
// 3. Pod Security "restricted": the operator's and the instances' pods.
// ---------------------------------------------------------------------------------------------

/**
 * A builder's object without its owner reference: the fake cluster it names does not exist, and
 * the garbage collector deletes such orphans at once (as soon as it has discovered the CRD).
 */
function unowned<T extends { metadata?: { ownerReferences?: unknown } }>(obj: T): T {
  const copy = structuredClone(obj);
  delete copy.metadata?.ownerReferences;
  return copy;
}

/**
 * kubectl, retried while the apiserver still answers "not found" for an object just created: its
 * admission plugins (ServiceAccount, RBAC escalation checks) read their own caches, which lag.
 */
async function kubectlAfterCaches(args: string[], input: string): Promise<Awaited<ReturnType<typeof kubectl>>> {
  let last!: Awaited<ReturnType<typeof kubectl>>;
  await waitFor('admission caches to see objects just created', async () => {
    last = await kubectl(args, input);
    return !/not found/i.test(last.stderr);
  }, { timeoutMs: 15_000, intervalMs: 250 });
  return last;
}

describe('Pod Security: a namespace labelled enforce=restricted, warn=restricted', () => {
  let ns = '';
  let deployment: Obj;
  let statefulSet: Obj;

  beforeAll(async () => {
    ns = await createTestNamespace('chart-psa');
    await kubectlOk([
      'label',
      'namespace',
      ns,
      'pod-security.kubernetes.io/enforce=restricted',
      'pod-security.kubernetes.io/enforce-version=latest',
      'pod-security.kubernetes.io/warn=restricted',
      'pod-security.kubernetes.io/warn-version=latest',
    ]);
    const { objects } = await render('', ns, `pgpilot-${suffix()}`);
    deployment = objects.find((o) => o.kind === 'Deployment')!;
    // The pods' ServiceAccounts must exist for a Pod to be admitted (ServiceAccount admission).
    const chartSa = objects.find((o) => o.kind === 'ServiceAccount')!;
    await kubectlOk(['apply', '--server-side', '--field-manager=e2e', '-f', '-'], stringify(chartSa));
    const cluster = exampleCluster(ns);
    statefulSet = instanceStatefulSet(cluster, 'x-1', { instanceImageRepository: 'r' }) as Obj;
    await kubectlOk(['apply', '--server-side', '--field-manager=e2e', '-f', '-'], stringify(unowned(instanceServiceAccount(cluster))));
  });

  afterAll(async () => {
    if (ns) await deleteTestNamespace(ns);
  });

  it('the PodSecurity admission plugin is active here (a violating pod is refused, a violating StatefulSet warned about)', async () => {
    const badSts = structuredClone(statefulSet);
    badSts.spec.template.spec.containers[0].securityContext.allowPrivilegeEscalation = true;
    const sts = await kubectl(DRY_RUN, stringify(badSts));
    expect(sts.code, sts.stderr).toBe(0);
    expect(podSecurityWarnings(sts).join('\n')).toMatch(/allowPrivilegeEscalation != false/);
    const pod = await kubectlAfterCaches(DRY_RUN, stringify(podFrom(badSts, 'x-1-0')));
    expect(pod.code).not.toBe(0);
    expect(pod.stderr).toMatch(/violates PodSecurity "restricted:latest".*allowPrivilegeEscalation != false/);
  });

  it("admits the chart's Deployment with no PodSecurity warning", async () => {
    expect(deployment.metadata.namespace).toBe(ns);
    const r = await kubectl(DRY_RUN, stringify(deployment));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe(`deployment.apps/${deployment.metadata.name} serverside-applied (server dry run)`);
    expect(podSecurityWarnings(r)).toEqual([]);
  });

  it("admits (enforce) a pod of the chart's Deployment", async () => {
    const r = await kubectlAfterCaches(DRY_RUN, stringify(podFrom(deployment, `${deployment.metadata.name}-0`)));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).not.toMatch(/PodSecurity/);
  });

  it('admits an instance StatefulSet (src/builders/statefulset.ts) with no PodSecurity warning', async () => {
    expect(statefulSet.metadata.namespace).toBe(ns);
    const r = await kubectl(DRY_RUN, stringify(statefulSet));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe('statefulset.apps/x-1 serverside-applied (server dry run)');
    expect(podSecurityWarnings(r)).toEqual([]);
  });

  it("admits (enforce) the instance StatefulSet's pod", async () => {
    const r = await kubectlAfterCaches(DRY_RUN, stringify(podFrom(statefulSet, 'x-1-0')));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).not.toMatch(/PodSecurity/);
  });
});
