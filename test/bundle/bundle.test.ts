/**
 * The OLM bundle (bundle/): generated files match their sources (drift), the CSV's Deployment and
 * RBAC are the chart's (rendered here again by the real helm), the metadata agrees with
 * bundle.Dockerfile, and the validators of `operator-sdk bundle validate --select-optional
 * suite=operatorframework` (github.com/operator-framework/api, test/bundle/validator) find no
 * error and no warning.
 */
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { helmOk, parseManifests, templateArgs } from '../support/helm.js';
import { one, restrictedProblems, type K8sObject } from '../chart/checks.js';
import {
  BUNDLE_ANNOTATIONS,
  BUNDLE_DIR,
  CERT_DIR_ENV,
  INSTALL_MODES,
  OWN_CA_ENV,
  RELEASE_NAME,
  RENDER_NAMESPACE,
  TARGET_NAMESPACES_ANNOTATION,
  bundleGeneratedFiles,
  type GeneratedFile,
} from '../../scripts/bundle/index.js';
import { splitChartWebhooks } from '../../scripts/bundle/webhooks.js';
import { OLM_SERVING_CERT_DIR } from '../../src/runtime/serving-cert-files.js';
import { REPO_ROOT, ensureBundleValidator, validateBundle, type ValidatorReport } from './validator.js';

type Obj = Record<string, any>;
const read = (p: string): string => readFileSync(path.join(REPO_ROOT, p), 'utf8');
const CSV_PATH = `${BUNDLE_DIR}/manifests/pgpilot.clusterserviceversion.yaml`;

/** Every file under bundle/, relative to the repository. */
function filesUnder(dir: string): string[] {
  return readdirSync(path.join(REPO_ROOT, dir), { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? filesUnder(`${dir}/${e.name}`) : [`${dir}/${e.name}`],
  );
}

/** The schema node at a descriptor path (dots, as OLM writes them) of an openAPIV3Schema, or undefined. */
function schemaAt(schema: Obj, descriptorPath: string): Obj | undefined {
  let node: Obj | undefined = schema;
  for (const part of descriptorPath.split('.')) node = node?.properties?.[part] as Obj | undefined;
  return node;
}

const csv = parse(read(CSV_PATH)) as Obj;
const crds = readdirSync(path.join(REPO_ROOT, BUNDLE_DIR, 'manifests'))
  .map((f) => parse(read(`${BUNDLE_DIR}/manifests/${f}`)) as Obj)
  .filter((o) => o.kind === 'CustomResourceDefinition');

describe('bundle/ is what `npm run gen` generates', () => {
  let generated: GeneratedFile[] = [];
  beforeAll(async () => {
    generated = await bundleGeneratedFiles();
  });

  it('each generated file matches (run `npm run gen` after changing the chart, src/api or scripts/bundle)', () => {
    for (const { path: p, content } of generated) expect(read(p), `${p} is stale`).toBe(content);
  });

  it('holds nothing else but its README', () => {
    expect(filesUnder(BUNDLE_DIR).sort()).toEqual([...generated.map((f) => f.path), `${BUNDLE_DIR}/README.md`].sort());
  });

  it('ships the CRDs of crds/ as they are: PostgreSQLCluster v1 stored, v1beta1 served, converted by a webhook (OLM points it at its Service)', () => {
    for (const f of readdirSync(path.join(REPO_ROOT, 'crds'))) expect(read(`${BUNDLE_DIR}/manifests/${f}`)).toBe(read(`crds/${f}`));
    expect(crds.map((c) => c.metadata.name).sort()).toEqual(['postgresqlbackups.postgres.pgpilot.io', 'postgresqlclusters.postgres.pgpilot.io']);
    const cluster = crds.find((c) => c.metadata.name === 'postgresqlclusters.postgres.pgpilot.io')!;
    expect(cluster.spec.versions.map((v: Obj) => [v.name, v.served, v.storage]).sort()).toEqual([['v1', true, true], ['v1beta1', true, false]]);
    expect(cluster.spec.conversion.strategy).toBe('Webhook');
    expect(cluster.spec.preserveUnknownFields ?? false).toBe(false);
  });
});

describe('the CSV runs the chart\'s operator', () => {
  let chart: K8sObject[] = [];
  let namespaced: K8sObject[] = [];
  beforeAll(async () => {
    // As the bundle renders it (default values, webhooks on), without the chart's webhook machinery, which OLM replaces.
    chart = splitChartWebhooks(parseManifests((await helmOk(templateArgs([], {}, { namespace: RENDER_NAMESPACE, releaseName: RELEASE_NAME }))).stdout)).rest;
    namespaced = splitChartWebhooks(parseManifests((await helmOk(templateArgs([path.join(REPO_ROOT, 'test/chart/values/watch-namespaces.yaml')], {}, { namespace: RENDER_NAMESPACE, releaseName: RELEASE_NAME }))).stdout)).rest;
  });
  const install = () => csv.spec.install.spec as Obj;

  it('grants exactly the rules of the chart\'s ClusterRole (and of its per-namespace Roles), namespaced, to the chart\'s ServiceAccount', () => {
    const clusterRole = one(chart, 'ClusterRole');
    expect(install().permissions).toEqual([{ serviceAccountName: one(chart, 'ServiceAccount').metadata.name, rules: clusterRole.rules }]);
    expect(install().clusterPermissions).toBeUndefined();
    const operatorRoles = namespaced.filter((o) => o.kind === 'Role' && !/-(leader-election|backup-store)$/.test(String(o.metadata.name)));
    expect(operatorRoles.length).toBeGreaterThan(0);
    for (const role of operatorRoles) expect(role.rules).toEqual(clusterRole.rules);
  });

  it('covers the leader-election Role in the install namespace (OLM grants `permissions` there too)', () => {
    const rules = install().permissions[0].rules as Obj[];
    const leader = chart.find((o) => o.kind === 'Role' && String(o.metadata.name).endsWith('-leader-election'))!;
    for (const want of leader.rules as Obj[]) {
      for (const verb of want.verbs as string[]) {
        const covered = rules.some((r) => want.apiGroups.every((g: string) => r.apiGroups.includes(g)) && want.resources.every((x: string) => r.resources.includes(x)) && r.verbs.includes(verb));
        expect(covered, `${verb} ${want.resources} (${want.apiGroups})`).toBe(true);
      }
    }
  });

  it('grants nothing for a webhook CA of its own (OLM issues the certificate and injects its CA)', () => {
    const rules = install().permissions[0].rules as Obj[];
    expect(rules.filter((r) => (r.apiGroups as string[]).some((g) => ['apiextensions.k8s.io', 'admissionregistration.k8s.io'].includes(g)))).toEqual([]);
    expect(rules.filter((r) => r.resourceNames)).toEqual([]);
  });

  it('runs the chart\'s Deployment: its spec, with Helm\'s labels dropped, the watched namespaces from olm.targetNamespaces and OLM\'s certificate for the webhooks', () => {
    const deployment = one(chart, 'Deployment');
    const [dep, ...more] = install().deployments as Obj[];
    expect(more).toEqual([]);
    expect(dep!.name).toBe(deployment.metadata.name);
    const expected = structuredClone(deployment.spec) as Obj;
    delete expected.template.metadata.labels['helm.sh/chart'];
    delete expected.template.metadata.labels['app.kubernetes.io/managed-by'];
    const watch = (expected.template.spec.containers[0].env as Obj[]).find((e) => e.name === 'PGPILOT_WATCH_NAMESPACES')!;
    expect(watch.value).toBe('');
    delete watch.value;
    watch.valueFrom = { fieldRef: { fieldPath: `metadata.annotations['${TARGET_NAMESPACES_ANNOTATION}']` } };
    const container = expected.template.spec.containers[0] as Obj;
    expect((container.env as Obj[]).filter((e) => OWN_CA_ENV.includes(e.name as string)).length).toBe(OWN_CA_ENV.length);
    container.env = (container.env as Obj[]).flatMap((e) =>
      OWN_CA_ENV.includes(e.name as string) ? [] : e.name === 'PGPILOT_WEBHOOK_PORT' ? [e, { name: CERT_DIR_ENV, value: OLM_SERVING_CERT_DIR }] : [e],
    );
    expect(dep!.spec).toEqual(expected);
    expect(restrictedProblems(dep!.spec.template.spec, 'CSV deployment')).toEqual([]);
    expect(csv.metadata.annotations.containerImage).toBe(dep!.spec.template.spec.containers[0].image);
  });

  it('supports AllNamespaces alone (OLM\'s rule for a CSV with a conversion webhook: a CRD has one)', () => {
    expect(csv.spec.installModes).toEqual(INSTALL_MODES.map((type) => ({ type, supported: type === 'AllNamespaces' })));
  });
});

describe('the CSV\'s metadata', () => {
  it('claims Auto Pilot and says, feature by feature, what backs it', () => {
    expect(csv.metadata.annotations.capabilities).toBe('Auto Pilot');
    expect(csv.metadata.annotations.categories).toBe('Database');
    for (const feature of ['Failover', 'Self-healing', 'Upgrades', 'Tuning', 'Storage auto-grow', 'Replica autoscaling', 'Anomaly detection']) expect(csv.spec.description).toMatch(new RegExp(`\\*\\*${feature}[^|]*\\*\\* \\| done: `));
    expect(csv.spec.description).not.toContain('not yet');
  });

  it('has the seed cluster (examples/cluster.yaml, namespace left to the console) and a PostgreSQLBackup as alm-examples', () => {
    const examples = JSON.parse(csv.metadata.annotations['alm-examples'] as string) as Obj[];
    const seed = parse(read('examples/cluster.yaml')) as Obj;
    delete seed.metadata.namespace;
    expect(examples[0]).toEqual(seed);
    expect(examples.map((e) => e.kind)).toEqual(['PostgreSQLCluster', 'PostgreSQLBackup']);
    expect(examples[1]!.spec.cluster.name).toBe(seed.metadata.name);
  });

  it('describes fields that exist: every spec/status descriptor path is in its CRD\'s schema', () => {
    const owned = csv.spec.customresourcedefinitions.owned as Obj[];
    expect(owned.map((o) => o.name).sort()).toEqual(crds.map((c) => c.metadata.name).sort());
    for (const o of owned) {
      const schema = crds.find((c) => c.metadata.name === o.name)!.spec.versions.find((v: Obj) => v.name === o.version).schema.openAPIV3Schema as Obj;
      for (const [part, list] of [['spec', o.specDescriptors], ['status', o.statusDescriptors]] as const) {
        expect((list as Obj[]).length).toBeGreaterThan(0);
        for (const d of list as Obj[]) expect(schemaAt(schema.properties[part], d.path), `${o.kind} ${part}.${d.path}`).toBeDefined();
      }
    }
  });

  it("lists as resources of each owned API only kinds the operator's RBAC covers", () => {
    const granted = new Set(((csv.spec.install.spec as Obj).permissions[0].rules as Obj[]).flatMap((r) => r.resources as string[]));
    for (const o of csv.spec.customresourcedefinitions.owned as Obj[]) {
      expect((o.resources as Obj[]).length).toBeGreaterThan(0);
      for (const r of o.resources as Obj[]) expect(granted.has(`${String(r.kind).toLowerCase()}s`), `${o.kind} resource ${r.kind}`).toBe(true);
    }
  });

  it('carries a small SVG icon', () => {
    const [icon] = csv.spec.icon as Obj[];
    expect(icon!.mediatype).toBe('image/svg+xml');
    const svg = Buffer.from(icon!.base64data as string, 'base64').toString('utf8');
    expect(svg).toMatch(/^<svg [^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    expect(svg.length).toBeLessThan(4096);
  });

  it('metadata/annotations.yaml and bundle.Dockerfile\'s labels say the same', () => {
    const annotations = (parse(read(`${BUNDLE_DIR}/metadata/annotations.yaml`)) as Obj).annotations as Record<string, string>;
    expect(annotations).toEqual(BUNDLE_ANNOTATIONS);
    const labels = Object.fromEntries(
      read(`${BUNDLE_DIR}/bundle.Dockerfile`)
        .split('\n')
        .filter((l) => l.startsWith('LABEL '))
        .map((l) => l.slice('LABEL '.length).split('=') as [string, string]),
    );
    expect(labels).toEqual(annotations);
  });
});

describe('operator-framework/api validators (operator-sdk bundle validate --select-optional suite=operatorframework)', () => {
  let report: ValidatorReport;
  beforeAll(async () => {
    const bin = await ensureBundleValidator();
    const k8s = /PGPILOT_K8S_VERSION:-v(\d+\.\d+)/.exec(read('e2e/controlplane/build-k8s.sh'))?.[1];
    report = await validateBundle(bin, path.join(REPO_ROOT, BUNDLE_DIR), k8s ?? '');
  }, 900_000);

  it('finds no error', () => {
    expect(report.errors).toEqual([]);
  });

  it('finds no warning', () => {
    expect(report.warnings).toEqual([]);
  });
});
