/**
 * The Helm chart, checked with the real helm binary: lint, render with each values file, and
 * validate every rendered object (labels, RBAC without wildcards, restricted pods, the operator's
 * env contract), plus the values schema rejecting bad input.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { helmPath, kubectlPath } from '../support/binaries.js';
import {
  DEFAULT_NAMESPACE,
  DEFAULT_RELEASE,
  chartDir,
  parseManifests,
  renderChart,
  runHelm,
  templateArgs,
} from '../support/helm.js';
import { parseBackupStore, parseNamespaceCredentials } from '../../src/cli/operator-config.js';
import { S3TargetSchema } from '../../src/api/cluster.js';
import { parseJson } from '../../src/util/json.js';
import { jsonClone } from '../support/cluster-fixtures.js';
import {
  BACKUP_STORE_GRANTS,
  CONTRACT_ENV,
  INSTANCE_GRANTS,
  LEADER_ELECTION_GRANTS,
  OPERATOR_GRANTS,
  OPTIONAL_ENV,
  basicProblems,
  byKind,
  envOf,
  envProblems,
  extraGrants,
  isWebhookObject,
  WEBHOOK_CLUSTER_GRANTS,
  WEBHOOK_NAMESPACE_GRANTS,
  grantsOf,
  isRbac,
  missingGrants,
  one,
  podSpecOf,
  rbacWildcardProblems,
  restrictedProblems,
  selects,
  wildcardPaths,
  type K8sObject,
  type PolicyRule,
} from './checks.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const valuesDir = path.join(here, 'values');
const values = (name: string): string => path.join(valuesDir, `${name}.yaml`);
const VALUES_FILES = readdirSync(valuesDir)
  .filter((f) => f.endsWith('.yaml'))
  .sort();

const NS = DEFAULT_NAMESPACE;
const FULLNAME = `${DEFAULT_RELEASE}`; // release "pgpilot" contains the chart name
const chartCrdsDir = path.join(chartDir, 'crds');
const chartCrdFiles = existsSync(chartCrdsDir)
  ? readdirSync(chartCrdsDir).filter((f) => /\.(ya?ml|json)$/.test(f))
  : [];

function deploymentContainer(objects: K8sObject[]): K8sObject {
  const containers: K8sObject[] = one(objects, 'Deployment').spec.template.spec.containers;
  expect(containers.map((c) => c.name)).toEqual(['operator']);
  return containers[0]!;
}

/** Expected env for the given values, on top of the defaults. */
function expectedEnv(over: Partial<Record<(typeof CONTRACT_ENV)[number], string>> = {}) {
  return {
    PGPILOT_NAMESPACE: { fieldRef: 'metadata.namespace' },
    PGPILOT_HTTP_HOST: { fieldRef: 'status.podIP' },
    PGPILOT_WATCH_NAMESPACES: '',
    PGPILOT_LEADER_ELECT: 'true',
    PGPILOT_LEASE_NAME: `${FULLNAME}-leader`,
    PGPILOT_HTTP_PORT: '8080',
    PGPILOT_LOG_LEVEL: 'info',
    PGPILOT_CONCURRENCY: '10',
    PGPILOT_RESYNC_SECONDS: '300',
    PGPILOT_INSTANCE_IMAGE_REPOSITORY: 'ghcr.io/pgpilot/postgresql',
    PGPILOT_OPERATOR_IMAGE: 'ghcr.io/pgpilot/pgpilot:0.1.0',
    ...over,
  };
}

beforeAll(async () => {
  // Extract the binaries up front so the first test does not pay for it in its own timeout.
  await Promise.all([helmPath(), kubectlPath()]);
}, 120_000);

describe('test support', () => {
  it('extracts runnable helm v4 and kubectl binaries', async () => {
    const helm = await runHelm(['version', '--short']);
    expect(helm.code).toBe(0);
    expect(helm.stdout).toMatch(/^v4\./);
    expect(await kubectlPath()).toMatch(/kubectl$/);
    expect(await helmPath()).toBe(await helmPath());
  });

  it('parseManifests drops empty documents and rejects broken YAML', () => {
    expect(parseManifests('---\n# c\n---\nkind: A\n---\n')).toEqual([{ kind: 'A' }]);
    expect(() => parseManifests('kind: [unclosed\n')).toThrow(/invalid YAML/);
  });
});

describe('the checks catch what they are meant to', () => {
  const goodPod = {
    securityContext: { runAsNonRoot: true, runAsUser: 65532, seccompProfile: { type: 'RuntimeDefault' } },
    containers: [
      {
        name: 'c',
        securityContext: {
          allowPrivilegeEscalation: false,
          readOnlyRootFilesystem: true,
          capabilities: { drop: ['ALL'] },
        },
      },
    ],
  };

  it('restrictedProblems accepts a compliant pod and flags each violation', () => {
    expect(restrictedProblems(goodPod)).toEqual([]);
    const bad = structuredClone(goodPod) as K8sObject;
    bad.securityContext.runAsNonRoot = false;
    bad.containers[0].securityContext.allowPrivilegeEscalation = true;
    bad.containers[0].securityContext.capabilities = { drop: ['NET_RAW'], add: ['SYS_ADMIN'] };
    bad.containers[0].securityContext.readOnlyRootFilesystem = false;
    bad.hostNetwork = true;
    const problems = restrictedProblems(bad).join('\n');
    for (const m of ['runAsNonRoot', 'allowPrivilegeEscalation', 'drop ALL', 'SYS_ADMIN', 'readOnlyRootFilesystem', 'host namespaces']) {
      expect(problems).toContain(m);
    }
    const noSeccomp = structuredClone(goodPod) as K8sObject;
    delete noSeccomp.securityContext.seccompProfile;
    expect(restrictedProblems(noSeccomp).join()).toContain('seccompProfile');
  });

  it('rbacWildcardProblems finds * in verbs, resources and apiGroups', () => {
    const role = {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRole',
      metadata: { name: 'x' },
      rules: [{ apiGroups: ['*'], resources: ['pods'], verbs: ['get'] }, { apiGroups: [''], resources: ['*'], verbs: ['*'] }],
    };
    expect(rbacWildcardProblems(role)).toHaveLength(3);
    expect(wildcardPaths({ a: ['x', 'y*'] })).toEqual(['$.a[1]']);
    expect(rbacWildcardProblems({ ...role, kind: 'ConfigMap', apiVersion: 'v1' })).toEqual([]);
  });

  it('basicProblems requires names and the standard labels', () => {
    expect(basicProblems({ kind: 'ConfigMap', metadata: {} }).join('\n')).toMatch(/apiVersion[\s\S]*metadata.name[\s\S]*helm.sh\/chart/);
    expect(basicProblems({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'Bad_Name' } }).join()).toContain('DNS subdomain');
  });

  it('envProblems reports missing and wrong values', () => {
    const c = { env: [{ name: 'A', value: '1' }, { name: 'B', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } }] };
    expect(envProblems(c, { A: '1', B: { fieldRef: 'metadata.name' } })).toEqual([]);
    expect(envProblems(c, { A: '2', C: 'x' })).toEqual(['env A = "1", want "2"', 'env C missing']);
    expect(() => envOf({ env: [{ name: 'A', value: '1' }, { name: 'A', value: '2' }] })).toThrow(/duplicate/);
  });

  it('grant sets: the instance Role is a subset of what the operator holds', () => {
    expect(missingGrants(OPERATOR_GRANTS, INSTANCE_GRANTS)).toEqual([]);
    expect(missingGrants(grantsOf([{ apiGroups: [''], resources: ['pods'], verbs: ['get'] }]), INSTANCE_GRANTS)).toContain('/pods:list');
  });
});

describe('RBAC escalation contract with the operator code', () => {
  it('the chart grants everything the Role built for instance pods (src/builders/rbac.ts) contains', async () => {
    // Imported lazily so a broken builder fails this test only, not the whole file.
    const { instanceRole } = await import('../../src/builders/rbac.js');
    const cluster = parseManifests(readFileSync(path.join(here, '..', '..', 'examples', 'cluster.yaml'), 'utf8'))[0]!;
    cluster.metadata.uid = '00000000-0000-0000-0000-000000000001';
    const instanceRules = instanceRole(cluster as Parameters<typeof instanceRole>[0]).rules as PolicyRule[];
    const wanted = grantsOf(instanceRules);
    expect(wanted.size).toBeGreaterThan(0);
    for (const file of ['default', 'watch-namespaces']) {
      const objs = await renderChart([values(file)]);
      const operatorRoles = [...byKind(objs, 'ClusterRole'), ...byKind(objs, 'Role').filter((r) => !r.metadata.name.endsWith('-leader-election'))].filter((r) => !isWebhookObject(r));
      expect(operatorRoles.length).toBeGreaterThan(0);
      for (const role of operatorRoles) {
        expect(missingGrants(grantsOf(role.rules), wanted), `${file}: ${role.kind} ${role.metadata.namespace ?? ''}/${role.metadata.name}`).toEqual([]);
      }
    }
  });
});

describe('helm lint --strict', () => {
  it('passes on the chart with its defaults', async () => {
    const res = await runHelm(['lint', '--strict', chartDir]);
    expect(res.code, res.stdout + res.stderr).toBe(0);
    expect(res.stdout).toContain('0 chart(s) failed');
  });

  it.each(VALUES_FILES)('passes with %s', async (file) => {
    const res = await runHelm(['lint', '--strict', chartDir, '--values', path.join(valuesDir, file)]);
    expect(res.code, res.stdout + res.stderr).toBe(0);
  });

  it('fails on values the schema rejects', async () => {
    const res = await runHelm(['lint', '--strict', chartDir, '--set', 'logLevel=loud']);
    expect(res.code).not.toBe(0);
    expect(res.stdout + res.stderr).toContain('logLevel');
  });
});

describe.each(VALUES_FILES)('every object rendered with %s', (file) => {
  let objects: K8sObject[] = [];
  beforeAll(async () => {
    objects = await renderChart([path.join(valuesDir, file)]);
  });

  it('renders a Deployment', () => {
    expect(byKind(objects, 'Deployment')).toHaveLength(1);
  });

  it('has apiVersion, kind, a valid name and the standard labels', () => {
    expect(objects.flatMap(basicProblems)).toEqual([]);
  });

  it('has unique kind/namespace/name', () => {
    const keys = objects.map((o) => `${o.kind}/${o.metadata?.namespace ?? ''}/${o.metadata?.name}`);
    expect(new Set(keys).size).toBe(keys.length);
  });

  it('puts namespaced objects in the release namespace (RBAC for watched namespaces aside)', () => {
    for (const o of objects) {
      if (o.kind === 'ClusterRole' || o.kind === 'ClusterRoleBinding' || o.kind === 'CustomResourceDefinition' || o.kind === 'ValidatingWebhookConfiguration') {
        expect(o.metadata.namespace, `${o.kind} ${o.metadata.name}`).toBeUndefined();
      } else if (!isRbac(o)) {
        expect(o.metadata.namespace, `${o.kind} ${o.metadata.name}`).toBe(NS);
      }
    }
  });

  it('uses no wildcard in any RBAC rule', () => {
    expect(objects.flatMap(rbacWildcardProblems)).toEqual([]);
  });

  it('meets the restricted Pod Security profile in every pod template', () => {
    const pods = objects.filter((o) => podSpecOf(o) !== undefined);
    expect(pods.length).toBeGreaterThan(0);
    expect(pods.flatMap((o) => restrictedProblems(podSpecOf(o)!, `${o.kind} ${o.metadata.name}`))).toEqual([]);
  });

  it('sets every contract env var exactly once, and args ["operator"]', () => {
    const c = deploymentContainer(objects);
    expect(c.args).toEqual(['operator']);
    expect(c.command).toBeUndefined(); // the image's ENTRYPOINT is `pgpilot`
    const env = envOf(c);
    for (const name of CONTRACT_ENV) expect(env.has(name), name).toBe(true);
    const known = new Set<string>([...CONTRACT_ENV, ...OPTIONAL_ENV]);
    expect([...env.keys()].filter((n) => !known.has(n))).toEqual([]);
  });

  it('binds every role to the operator ServiceAccount in the release namespace', () => {
    const sa = one(objects, 'Deployment').spec.template.spec.serviceAccountName;
    for (const b of [...byKind(objects, 'RoleBinding'), ...byKind(objects, 'ClusterRoleBinding')]) {
      expect(b.subjects).toEqual([{ kind: 'ServiceAccount', name: sa, namespace: NS }]);
      const roleKind = b.roleRef.kind;
      const target = objects.find(
        (o) => o.kind === roleKind && o.metadata.name === b.roleRef.name && o.metadata.namespace === b.metadata.namespace,
      );
      expect(target, `${b.kind} ${b.metadata.name} refers to a rendered ${roleKind}`).toBeDefined();
    }
  });

  it('wires probes and Service to the named http port', () => {
    const c = deploymentContainer(objects);
    const port = c.ports.find((p: K8sObject) => p.name === 'http');
    expect(port).toBeDefined();
    expect(String(port.containerPort)).toBe(envOf(c).get('PGPILOT_HTTP_PORT'));
    expect(c.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'http' });
    expect(c.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'http' });
    const deploy = one(objects, 'Deployment');
    expect(selects(deploy.spec.selector.matchLabels, deploy.spec.template.metadata.labels)).toBe(true);
    for (const svc of byKind(objects, 'Service')) {
      expect(svc.spec.type).toBe('ClusterIP');
      expect(selects(svc.spec.selector, deploy.spec.template.metadata.labels)).toBe(true);
      // The webhook Service targets the named "webhook" port (its own block below).
      if (isWebhookObject(svc)) expect(svc.spec.ports).toEqual([{ name: 'webhook', port: 9443, targetPort: 'webhook', protocol: 'TCP' }]);
      else expect(svc.spec.ports).toEqual([{ name: 'http', port: port.containerPort, targetPort: 'http', protocol: 'TCP' }]);
    }
  });
});

describe('defaults', () => {
  let objects: K8sObject[] = [];
  beforeAll(async () => {
    // The webhook's objects have their own block (describe('webhook')).
    objects = (await renderChart([values('default')])).filter((o) => !isWebhookObject(o));
  });

  it('renders exactly the expected objects', () => {
    const kinds = objects.map((o) => `${o.kind}/${o.metadata.name}`).sort();
    expect(kinds).toEqual(
      [
        `ClusterRole/${FULLNAME}`,
        `ClusterRoleBinding/${FULLNAME}`,
        `Deployment/${FULLNAME}`,
        `Role/${FULLNAME}-leader-election`,
        `RoleBinding/${FULLNAME}-leader-election`,
        `Service/${FULLNAME}-metrics`,
        `ServiceAccount/${FULLNAME}`,
      ].sort(),
    );
  });

  it('sets the env contract to its defaults', () => {
    expect(envProblems(deploymentContainer(objects), expectedEnv())).toEqual([]);
  });

  it('runs the default image with the documented pod settings', () => {
    const deploy = one(objects, 'Deployment');
    const spec = deploy.spec.template.spec;
    const c = deploymentContainer(objects);
    expect(c.image).toBe('ghcr.io/pgpilot/pgpilot:0.1.0');
    expect(c.imagePullPolicy).toBe('IfNotPresent');
    expect(c.resources).toEqual({ requests: { cpu: '100m', memory: '128Mi' }, limits: { memory: '512Mi' } });
    expect(deploy.spec.replicas).toBe(1);
    expect(deploy.spec.strategy.type).toBe('RollingUpdate');
    expect(spec.terminationGracePeriodSeconds).toBe(30);
    expect(spec.serviceAccountName).toBe(FULLNAME);
    for (const k of ['nodeSelector', 'tolerations', 'affinity', 'priorityClassName', 'imagePullSecrets']) {
      expect(spec[k], k).toBeUndefined();
    }
    expect(spec.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 65532, seccompProfile: { type: 'RuntimeDefault' } });
    expect(c.securityContext).toMatchObject({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
    });
  });

  it('grants the ClusterRole exactly the operator contract', () => {
    const held = grantsOf(one(objects, 'ClusterRole').rules);
    expect(missingGrants(held, OPERATOR_GRANTS)).toEqual([]);
    expect(extraGrants(held, OPERATOR_GRANTS)).toEqual([]);
    // The operator can only grant its instance pods what it holds itself.
    expect(missingGrants(held, INSTANCE_GRANTS)).toEqual([]);
  });

  it('grants the leader-election Role leases and events in the release namespace only', () => {
    const role = byKind(objects, 'Role').find((r) => r.metadata.name === `${FULLNAME}-leader-election`)!;
    expect(role.metadata.namespace).toBe(NS);
    const held = grantsOf(role.rules);
    expect(missingGrants(held, LEADER_ELECTION_GRANTS)).toEqual([]);
    expect(extraGrants(held, LEADER_ELECTION_GRANTS)).toEqual([]);
    expect(one(objects, 'ClusterRoleBinding').roleRef).toEqual({
      apiGroup: 'rbac.authorization.k8s.io',
      kind: 'ClusterRole',
      name: FULLNAME,
    });
  });

  it('labels the metrics Service so a ServiceMonitor can select it', () => {
    const svc = one(objects, 'Service');
    expect(svc.metadata.labels).toMatchObject({
      'app.kubernetes.io/name': 'pgpilot',
      'app.kubernetes.io/instance': DEFAULT_RELEASE,
      'pgpilot.io/metrics': 'true',
    });
    expect(svc.spec.ports[0]).toMatchObject({ name: 'http', port: 8080 });
  });

  it('follows the release name and namespace', async () => {
    const objs = (await renderChart([], undefined, { releaseName: 'db-ops', namespace: 'ops' })).filter((o) => !isWebhookObject(o));
    const deploy = one(objs, 'Deployment');
    expect(deploy.metadata).toMatchObject({ name: 'db-ops-pgpilot', namespace: 'ops' });
    expect(envProblems(deploymentContainer(objs), { PGPILOT_LEASE_NAME: 'db-ops-pgpilot-leader' })).toEqual([]);
    expect(one(objs, 'ClusterRoleBinding').subjects).toEqual([{ kind: 'ServiceAccount', name: 'db-ops-pgpilot', namespace: 'ops' }]);
  });

  it('keeps names within 63 characters for long release names', async () => {
    const release = 'a'.repeat(50);
    const objs = await renderChart([], undefined, { releaseName: release });
    for (const o of objs) expect(o.metadata.name.length, o.metadata.name).toBeLessThanOrEqual(63);
    expect(objs.flatMap(basicProblems)).toEqual([]);
  });
});

describe('watchNamespaces', () => {
  let objects: K8sObject[] = [];
  beforeAll(async () => {
    objects = (await renderChart([values('watch-namespaces')])).filter((o) => !isWebhookObject(o));
  });

  it('renders no ClusterRole or ClusterRoleBinding', () => {
    expect(byKind(objects, 'ClusterRole')).toEqual([]);
    expect(byKind(objects, 'ClusterRoleBinding')).toEqual([]);
  });

  it.each(['team-a', 'team-b'])('renders a Role and RoleBinding with the operator rules in %s', (ns) => {
    const roles = byKind(objects, 'Role').filter((r) => r.metadata.namespace === ns);
    expect(roles.map((r) => r.metadata.name)).toEqual([FULLNAME]);
    const held = grantsOf(roles[0]!.rules);
    expect(missingGrants(held, OPERATOR_GRANTS)).toEqual([]);
    expect(extraGrants(held, OPERATOR_GRANTS)).toEqual([]);
    expect(missingGrants(held, INSTANCE_GRANTS)).toEqual([]);
    const bindings = byKind(objects, 'RoleBinding').filter((b) => b.metadata.namespace === ns);
    expect(bindings).toHaveLength(1);
    expect(bindings[0]!.roleRef).toEqual({ apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: FULLNAME });
    expect(bindings[0]!.subjects).toEqual([{ kind: 'ServiceAccount', name: FULLNAME, namespace: NS }]);
  });

  it('grants nothing but leader election in the release namespace', () => {
    const roles = byKind(objects, 'Role').filter((r) => r.metadata.namespace === NS);
    expect(roles.map((r) => r.metadata.name)).toEqual([`${FULLNAME}-leader-election`]);
    expect(byKind(objects, 'Role').map((r) => r.metadata.namespace).sort()).toEqual(['pgpilot-system', 'team-a', 'team-b']);
  });

  it('passes the namespaces comma-joined to the operator', () => {
    expect(envProblems(deploymentContainer(objects), expectedEnv({ PGPILOT_WATCH_NAMESPACES: 'team-a,team-b' }))).toEqual([]);
  });

  it('also works when the release namespace is itself watched', async () => {
    const objs = (await renderChart([], { 'watchNamespaces[0]': NS })).filter((o) => !isWebhookObject(o));
    const names = byKind(objs, 'Role').map((r) => `${r.metadata.namespace}/${r.metadata.name}`).sort();
    expect(names).toEqual([`${NS}/${FULLNAME}`, `${NS}/${FULLNAME}-leader-election`]);
  });
});

describe('custom image, resources and scheduling', () => {
  let objects: K8sObject[] = [];
  beforeAll(async () => {
    objects = (await renderChart([values('custom')])).filter((o) => !isWebhookObject(o));
  });

  it('uses the custom images and settings in the env contract', () => {
    const image = 'registry.example.com/mirror/pgpilot:1.2.3-rc.1';
    const c = deploymentContainer(objects);
    expect(c.image).toBe(image);
    expect(c.imagePullPolicy).toBe('Always');
    expect(
      envProblems(
        c,
        expectedEnv({
          PGPILOT_LEASE_NAME: 'custom-leader',
          PGPILOT_HTTP_PORT: '9090',
          PGPILOT_LOG_LEVEL: 'debug',
          PGPILOT_CONCURRENCY: '25',
          PGPILOT_RESYNC_SECONDS: '60',
          PGPILOT_INSTANCE_IMAGE_REPOSITORY: 'registry.example.com/mirror/postgresql',
          PGPILOT_OPERATOR_IMAGE: image,
        }),
      ),
    ).toEqual([]);
    expect(c.ports).toEqual([
      { name: 'http', containerPort: 9090, protocol: 'TCP' },
      { name: 'webhook', containerPort: 9443, protocol: 'TCP' },
    ]);
  });

  it('applies resources, scheduling and pod metadata', () => {
    const spec = one(objects, 'Deployment').spec.template;
    const c = deploymentContainer(objects);
    expect(c.resources).toEqual({ requests: { cpu: '250m', memory: '256Mi' }, limits: { cpu: '1', memory: '1Gi' } });
    expect(spec.spec.nodeSelector).toEqual({ 'kubernetes.io/os': 'linux', 'node-role.example.com/infra': 'true' });
    expect(spec.spec.tolerations).toEqual([{ key: 'dedicated', operator: 'Equal', value: 'infra', effect: 'NoSchedule' }]);
    expect(spec.spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight).toBe(100);
    expect(spec.spec.priorityClassName).toBe('system-cluster-critical');
    expect(spec.spec.imagePullSecrets).toEqual([{ name: 'regcred' }]);
    expect(spec.spec.terminationGracePeriodSeconds).toBe(45);
    expect(spec.metadata.annotations).toEqual({ 'example.com/owner': 'dba-team' });
    expect(spec.metadata.labels).toMatchObject({ team: 'dba', 'app.kubernetes.io/name': 'pgpilot' });
  });

  it('names and annotates the ServiceAccount and binds that name', () => {
    const sa = one(objects, 'ServiceAccount');
    expect(sa.metadata.name).toBe('pgpilot-operator');
    expect(sa.metadata.annotations).toEqual({ 'eks.amazonaws.com/role-arn': 'arn:aws:iam::123456789012:role/pgpilot-backups' });
    expect(one(objects, 'Deployment').spec.template.spec.serviceAccountName).toBe('pgpilot-operator');
    expect(one(objects, 'ClusterRoleBinding').subjects[0].name).toBe('pgpilot-operator');
  });

  it('adds the metrics Service labels and annotations', () => {
    const svc = one(objects, 'Service');
    expect(svc.metadata.labels).toMatchObject({ release: 'kube-prometheus-stack', 'pgpilot.io/metrics': 'true' });
    expect(svc.metadata.annotations).toEqual({ 'prometheus.io/scrape': 'true' });
    expect(svc.spec.ports[0]).toMatchObject({ port: 9090, targetPort: 'http' });
  });

  it('never lets podLabels or Service labels override the selector labels', async () => {
    const objs = await renderChart([], {
      'podLabels.app\\.kubernetes\\.io/instance': 'hijack',
      'metrics.service.labels.app\\.kubernetes\\.io/instance': 'hijack',
    });
    const deploy = one(objs, 'Deployment');
    expect(deploy.spec.template.metadata.labels['app.kubernetes.io/instance']).toBe(DEFAULT_RELEASE);
    expect(selects(deploy.spec.selector.matchLabels, deploy.spec.template.metadata.labels)).toBe(true);
    for (const svc of byKind(objs, 'Service')) expect(svc.metadata.labels['app.kubernetes.io/instance']).toBe(DEFAULT_RELEASE);
  });
});

describe('backup.defaultStore', () => {
  const valuesOf = (file: string) => parseManifests(readFileSync(values(file), 'utf8'))[0] as K8sObject;
  const backupStoreRoles = (objs: K8sObject[]) => byKind(objs, 'Role').filter((r) => r.metadata.name === `${FULLNAME}-backup-store`);

  it('is unset by default: no PGPILOT_DEFAULT_BACKUP_STORE and no Role for its Secret', async () => {
    const objects = await renderChart([values('default')]);
    expect(envOf(deploymentContainer(objects)).has('PGPILOT_DEFAULT_BACKUP_STORE')).toBe(false);
    expect(backupStoreRoles(objects)).toEqual([]);
    const watching = await renderChart([values('watch-namespaces')]);
    expect(backupStoreRoles(watching)).toEqual([]);
  });

  it('is passed to the operator as JSON that its --default-backup-store parser accepts as given', async () => {
    const objects = await renderChart([values('backup-store')]);
    const env = envOf(deploymentContainer(objects)).get('PGPILOT_DEFAULT_BACKUP_STORE');
    expect(typeof env).toBe('string');
    const store = valuesOf('backup-store').backup.defaultStore;
    expect(JSON.parse(env as string)).toEqual(store);
    expect(parseBackupStore(env as string)).toEqual(store);
  });

  it('passes the namespaces that may use it, and their scoped credentials, in forms the operator parses', async () => {
    const objects = await renderChart([values('backup-store')]);
    const env = envOf(deploymentContainer(objects));
    expect(env.get('PGPILOT_DEFAULT_BACKUP_STORE_NAMESPACES')).toBe('team-c');
    expect(parseNamespaceCredentials(env.get('PGPILOT_DEFAULT_BACKUP_STORE_NAMESPACE_CREDENTIALS') as string)).toEqual({ 'team-d': 'pgpilot-backup-team-d' });
    // Unset: no variable, and the operator lets no namespace use the store.
    const bare = envOf(deploymentContainer(await renderChart([], { 'backup.defaultStore.bucket': 'pg-backups', 'backup.defaultStore.credentials.secretName': 'creds' })));
    expect(bare.has('PGPILOT_DEFAULT_BACKUP_STORE_NAMESPACES')).toBe(false);
    expect(bare.has('PGPILOT_DEFAULT_BACKUP_STORE_NAMESPACE_CREDENTIALS')).toBe(false);
  });

  it.each<[string, Record<string, string>, RegExp]>([
    ['a namespace that is not a DNS label', { 'backup.defaultStoreNamespaces[0]': 'Team_A' }, /defaultStoreNamespaces/],
    ['a Secret name that is not one', { 'backup.defaultStoreNamespaceCredentials.team-a': 'Bad Name' }, /defaultStoreNamespaceCredentials/],
  ])('refuses %s in the opt-in values', async (_what, set, message) => {
    const res = await runHelm(templateArgs([], set));
    expect(res.code, res.stdout).not.toBe(0);
    expect(res.stderr).toMatch(message);
  });

  it('watching listed namespaces, lets the operator read that one Secret in the release namespace', async () => {
    const objects = await renderChart([values('backup-store')]);
    const [role] = backupStoreRoles(objects);
    expect(role?.metadata.namespace).toBe(NS);
    expect(role!.rules).toEqual([{ apiGroups: [''], resources: ['secrets'], resourceNames: ['pgpilot-backup-credentials', 'pgpilot-backup-team-d'], verbs: ['get'] }]);
    expect(extraGrants(grantsOf(role!.rules), BACKUP_STORE_GRANTS)).toEqual([]);
    const binding = byKind(objects, 'RoleBinding').find((b) => b.metadata.name === `${FULLNAME}-backup-store`);
    expect(binding?.roleRef).toEqual({ apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: `${FULLNAME}-backup-store` });
    expect(binding?.subjects).toEqual([{ kind: 'ServiceAccount', name: FULLNAME, namespace: NS }]);
  });

  it('cluster-wide, adds no Role (the ClusterRole already reads Secrets) but still passes the store', async () => {
    const objects = await renderChart([], { 'backup.defaultStore.bucket': 'pg-backups', 'backup.defaultStore.credentials.secretName': 'creds' });
    expect(backupStoreRoles(objects)).toEqual([]);
    expect(envProblems(deploymentContainer(objects), { PGPILOT_DEFAULT_BACKUP_STORE: '{"bucket":"pg-backups","credentials":{"secretName":"creds"}}' })).toEqual([]);
  });

  it.each<[string, Record<string, string>, RegExp]>([
    ['a store without credentials', { 'backup.defaultStore.bucket': 'pg-backups' }, /defaultStore.*missing property 'credentials'/],
    ['a store without bucket', { 'backup.defaultStore.credentials.secretName': 'c' }, /defaultStore.*missing property 'bucket'/],
    ['a bucket S3 does not allow', { 'backup.defaultStore.bucket': 'PG_Backups', 'backup.defaultStore.credentials.secretName': 'c' }, /defaultStore\/bucket/],
    ['an unknown checksums mode', { 'backup.defaultStore.bucket': 'pg-b', 'backup.defaultStore.credentials.secretName': 'c', 'backup.defaultStore.checksums': 'NEVER' }, /defaultStore\/checksums/],
    [
      'a KMS key with AES256',
      { 'backup.defaultStore.bucket': 'pg-b', 'backup.defaultStore.credentials.secretName': 'c', 'backup.defaultStore.serverSideEncryption.algorithm': 'AES256', 'backup.defaultStore.serverSideEncryption.kmsKeyId': 'k' },
      /serverSideEncryption\/algorithm.*aws:kms/,
    ],
    ['a misspelt field', { 'backup.defaultStore.bukket': 'pg-b' }, /bukket/],
  ])('refuses %s, naming the value', async (_what, set, message) => {
    const res = await runHelm(templateArgs([], set));
    expect(res.code, res.stdout).not.toBe(0);
    expect(res.stderr).toMatch(/schema/);
    expect(res.stderr).toMatch(message);
  });

  it('the values schema of the store has the fields, enums, patterns and bounds of the API\'s S3TargetSchema', () => {
    type JsonSchema = Record<string, any>;
    const schemaPath = path.join(chartDir, 'values.schema.json');
    const chartSchema = parseJson<JsonSchema>(readFileSync(schemaPath, 'utf8'), schemaPath);
    const deref = (s: JsonSchema): JsonSchema => (s.$ref ? deref(chartSchema.definitions[String(s.$ref).split('/').pop()!]) : s);
    const KEYS = ['type', 'enum', 'pattern', 'minLength', 'maxLength'] as const;
    const compare = (api: JsonSchema, chart: JsonSchema, at: string) => {
      chart = deref(chart);
      expect(Object.keys(chart.properties ?? {}).sort(), at).toEqual(Object.keys(api.properties ?? {}).sort());
      expect(chart.additionalProperties, at).toBe(false);
      for (const [name, a] of Object.entries(api.properties ?? {}) as Array<[string, JsonSchema]>) {
        const c = deref(chart.properties[name]);
        for (const k of KEYS) expect(c[k], `${at}.${name} ${k}`).toEqual(a[k]);
        if (a.type === 'object') compare(a, c, `${at}.${name}`);
      }
      // Required fields: the API's, except that an empty store ({}) means none.
      const required = chart.required ?? chart.then?.required;
      expect([...(required ?? [])].sort(), at).toEqual([...(api.required ?? [])].sort());
    };
    compare(jsonClone(S3TargetSchema) as JsonSchema, chartSchema.properties.backup.properties.defaultStore, 'backup.defaultStore');
  });
});

describe('leader election and replicas', () => {
  it('off: PGPILOT_LEADER_ELECT=false, Recreate strategy, no leader-election Role', async () => {
    const objects = (await renderChart([values('leader-election-off')])).filter((o) => !isWebhookObject(o));
    expect(envProblems(deploymentContainer(objects), { PGPILOT_LEADER_ELECT: 'false' })).toEqual([]);
    const deploy = one(objects, 'Deployment');
    expect(deploy.spec.strategy).toEqual({ type: 'Recreate' });
    expect(deploy.spec.replicas).toBe(1);
    expect(byKind(objects, 'Role')).toEqual([]);
    expect(byKind(objects, 'RoleBinding')).toEqual([]);
    expect(byKind(objects, 'ClusterRole')).toHaveLength(1);
    expect(byKind(objects, 'Service')).toEqual([]); // metrics.service.enabled=false in that file
  });

  it('on with two replicas: rolling update that never drops below the desired count', async () => {
    const objects = await renderChart([values('ha')]);
    const deploy = one(objects, 'Deployment');
    expect(deploy.spec.replicas).toBe(2);
    expect(deploy.spec.strategy).toEqual({ type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } });
    expect(envProblems(deploymentContainer(objects), { PGPILOT_LEADER_ELECT: 'true' })).toEqual([]);
  });

  it('refuses two replicas without leader election', async () => {
    const res = await runHelm(templateArgs([values('leader-election-off')], { replicaCount: '2' }));
    expect(res.code).not.toBe(0);
    expect(res.stderr).toMatch(/replicaCount=2 requires leaderElection\.enabled=true/);
  });
});

describe('rbac.create=false and serviceAccount.create=false', () => {
  it('renders no RBAC and no ServiceAccount, and uses the given ServiceAccount', async () => {
    const objects = await renderChart([values('no-rbac')]);
    expect(objects.filter(isRbac)).toEqual([]);
    expect(byKind(objects, 'ServiceAccount')).toEqual([]);
    expect(one(objects, 'Deployment').spec.template.spec.serviceAccountName).toBe('preexisting-sa');
  });
});

describe('values.schema.json rejects bad values with a message naming them', () => {
  const cases: Array<[string, Record<string, string>, RegExp]> = [
    ['a non-integer concurrency', { concurrency: 'notanumber' }, /concurrency.*(integer|string)/],
    ['a concurrency above 100', { concurrency: '101' }, /concurrency/],
    ['a concurrency below 1', { concurrency: '0' }, /concurrency/],
    ['an unknown log level', { logLevel: 'loud' }, /logLevel/],
    ['an unknown top-level value', { notAChartValue: 'x' }, /notAChartValue/],
    ['an unknown nested value', { 'image.notAField': 'x' }, /notAField/],
    ['an unknown metrics.service value', { 'metrics.service.nodePort': '30000' }, /nodePort/],
    ['a non-boolean leaderElection.enabled', { 'leaderElection.enabled': 'maybe' }, /leaderElection/],
    ['a bad pull policy', { 'image.pullPolicy': 'Sometimes' }, /pullPolicy/],
    ['an invalid namespace name', { 'watchNamespaces[0]': 'Team_A' }, /watchNamespaces/],
    ['a negative resyncSeconds', { resyncSeconds: '-1' }, /resyncSeconds/],
    ['a privileged metrics port', { 'metrics.port': '80' }, /metrics\/port|port/],
  ];

  it.each(cases)('fails on %s', async (_what, set, message) => {
    const res = await runHelm(templateArgs([], set));
    expect(res.code, res.stdout).not.toBe(0);
    expect(res.stderr).toMatch(/schema/);
    expect(res.stderr).toMatch(message);
  });

  it('accepts the same keys with valid values', async () => {
    const objs = await renderChart([], { concurrency: '100', logLevel: 'trace', resyncSeconds: '0', 'metrics.port': '9443' });
    expect(
      envProblems(deploymentContainer(objs), {
        PGPILOT_CONCURRENCY: '100',
        PGPILOT_LOG_LEVEL: 'trace',
        PGPILOT_RESYNC_SECONDS: '0',
        PGPILOT_HTTP_PORT: '9443',
      }),
    ).toEqual([]);
  });
});

describe('NOTES.txt', () => {
  it('tells the user where the operator runs and what it watches', async () => {
    const res = await runHelm([
      'install',
      DEFAULT_RELEASE,
      chartDir,
      '--dry-run=client',
      '--namespace',
      NS,
      '--values',
      values('watch-namespaces'),
    ]);
    expect(res.code, res.stderr).toBe(0);
    const notes = res.stdout.slice(res.stdout.indexOf('NOTES:'));
    expect(notes).toContain(`Lease ${NS}/${FULLNAME}-leader`);
    expect(notes).toContain('team-a, team-b');
    expect(notes).toContain(`deployment/${FULLNAME}`);
  });
});

describe('CRDs from charts/pgpilot/crds/', () => {
  it.skipIf(chartCrdFiles.length === 0)('are rendered by --include-crds and only then', async () => {
    const withCrds = await renderChart([], undefined, { includeCrds: true });
    const crds = byKind(withCrds, 'CustomResourceDefinition');
    const pgc = crds.find((c) => c.metadata.name === 'postgresqlclusters.postgres.pgpilot.io');
    expect(pgc, 'CRD postgresqlclusters.postgres.pgpilot.io').toBeDefined();
    expect(pgc!.apiVersion).toBe('apiextensions.k8s.io/v1');
    expect(pgc!.spec.group).toBe('postgres.pgpilot.io');
    expect(pgc!.spec.scope).toBe('Namespaced');
    expect(pgc!.spec.names).toMatchObject({ plural: 'postgresqlclusters', kind: 'PostgreSQLCluster' });
    const v1 = pgc!.spec.versions.find((v: K8sObject) => v.name === 'v1');
    expect(v1).toMatchObject({ served: true, storage: true });
    expect(withCrds.flatMap(basicProblems)).toEqual([]);

    const without = await renderChart([]);
    expect(byKind(without, 'CustomResourceDefinition')).toEqual([]);
  });

  it('leave rendering intact with --include-crds whether or not the generator has written them', async () => {
    const objs = await renderChart([], undefined, { includeCrds: true });
    expect(byKind(objs, 'Deployment')).toHaveLength(1);
    const crdCount = byKind(objs, 'CustomResourceDefinition').length;
    if (chartCrdFiles.length === 0) expect(crdCount).toBe(0);
    else expect(crdCount).toBeGreaterThanOrEqual(1);
  });
});

describe('metrics.serviceMonitor.enabled', () => {
  it("renders a ServiceMonitor that selects exactly the operator's metrics Service and names its job pgpilot-operator", async () => {
    const objects = await renderChart([values('default')], { 'metrics.serviceMonitor.enabled': 'true', 'metrics.serviceMonitor.labels.release': 'kube-prometheus' });
    const sm = one(objects, 'ServiceMonitor');
    const svc = one(objects.filter((o) => !isWebhookObject(o)), 'Service');
    // and not the webhook's Service
    const webhookSvc = one(objects.filter(isWebhookObject), 'Service');
    expect(selects(sm.spec.selector.matchLabels, webhookSvc.metadata.labels)).toBe(false);
    expect(sm.apiVersion).toBe('monitoring.coreos.com/v1');
    expect(sm.metadata.labels.release).toBe('kube-prometheus');
    for (const [k, v] of Object.entries(sm.spec.selector.matchLabels as Record<string, string>)) expect(svc.metadata.labels[k], k).toBe(v);
    expect(sm.spec.namespaceSelector).toEqual({ matchNames: [svc.metadata.namespace] });
    expect(sm.spec.endpoints).toEqual([
      { port: 'http', path: '/metrics', honorLabels: true, interval: '30s', relabelings: [{ action: 'replace', targetLabel: 'job', replacement: 'pgpilot-operator' }] },
    ]);
    expect(svc.spec.ports[0].name).toBe('http');
  });

  it('renders none by default, nor without the metrics Service', async () => {
    expect(byKind(await renderChart([values('default')]), 'ServiceMonitor')).toEqual([]);
    expect(byKind(await renderChart([values('default')], { 'metrics.serviceMonitor.enabled': 'true', 'metrics.service.enabled': 'false' }), 'ServiceMonitor')).toEqual([]);
  });
});

describe('webhook', () => {
  const FULL = FULLNAME;
  let objects: K8sObject[] = [];
  beforeAll(async () => {
    objects = (await renderChart([values('default')])).filter(isWebhookObject);
  });

  it('renders the Service, the ValidatingWebhookConfiguration and their RBAC, all named <fullname>-webhook', () => {
    expect(objects.map((o) => `${o.kind}/${o.metadata.name}`).sort()).toEqual(
      ['ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding', 'Service', 'ValidatingWebhookConfiguration'].map((k) => `${k}/${FULL}-webhook`),
    );
  });

  it('passes the Service, configuration, CA Secret and port to the operator, which exposes the port', async () => {
    const all = await renderChart([values('default')]);
    const c = deploymentContainer(all);
    expect(envProblems(c, {
      PGPILOT_WEBHOOK_PORT: '9443',
      PGPILOT_WEBHOOK_SERVICE: `${FULL}-webhook`,
      PGPILOT_WEBHOOK_CONFIGURATION: `${FULL}-webhook`,
      PGPILOT_WEBHOOK_CA_SECRET: `${FULL}-webhook-ca`,
    })).toEqual([]);
    expect(c.ports).toContainEqual({ name: 'webhook', containerPort: 9443, protocol: 'TCP' });
  });

  it('validates only PostgreSQLCluster creations, both versions, with failurePolicy Ignore and a short timeout', () => {
    const [hook] = one(objects, 'ValidatingWebhookConfiguration').webhooks;
    expect(hook).toMatchObject({
      failurePolicy: 'Ignore',
      timeoutSeconds: 5,
      sideEffects: 'None',
      admissionReviewVersions: ['v1'],
      clientConfig: { service: { name: `${FULL}-webhook`, namespace: NS, path: '/validate/postgresqlclusters', port: 9443 } },
      rules: [{ apiGroups: ['postgres.pgpilot.io'], apiVersions: ['v1', 'v1beta1'], resources: ['postgresqlclusters'], operations: ['CREATE'], scope: 'Namespaced' }],
    });
    expect(hook.clientConfig.caBundle).toBeUndefined();
  });

  it('grants the CRD and the configuration by name, and the CA Secret in the release namespace', () => {
    const cr = one(objects, 'ClusterRole');
    expect(missingGrants(grantsOf(cr.rules), WEBHOOK_CLUSTER_GRANTS)).toEqual([]);
    expect(extraGrants(grantsOf(cr.rules), WEBHOOK_CLUSTER_GRANTS)).toEqual([]);
    expect(cr.rules.map((r: PolicyRule) => r.resourceNames)).toEqual([['postgresqlclusters.postgres.pgpilot.io'], [`${FULL}-webhook`]]);
    const role = one(objects, 'Role');
    expect(role.metadata.namespace).toBe(NS);
    expect(extraGrants(grantsOf(role.rules), WEBHOOK_NAMESPACE_GRANTS)).toEqual([]);
    expect(role.rules.find((r: PolicyRule) => (r.verbs ?? []).includes('get')).resourceNames).toEqual([`${FULL}-webhook-ca`]);
  });

  it('limits the configuration to the watched namespaces', async () => {
    const objs = (await renderChart([values('watch-namespaces')])).filter(isWebhookObject);
    expect(one(objs, 'ValidatingWebhookConfiguration').webhooks[0].namespaceSelector).toEqual({
      matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'In', values: ['team-a', 'team-b'] }],
    });
  });

  it('renders none of it with webhook.enabled=false', async () => {
    const objs = await renderChart([], { 'webhook.enabled': 'false' });
    expect(objs.filter(isWebhookObject)).toEqual([]);
    expect([...envOf(deploymentContainer(objs)).keys()].filter((k) => k.startsWith('PGPILOT_WEBHOOK_'))).toEqual([]);
  });
});
