/**
 * The PostgreSQLCluster API: the CRD's names, columns and subresources, the structural-schema
 * rules the apiserver enforces, descriptions for `kubectl explain`, the generated files on disk,
 * and the spec schema against the seed manifest and against specs it must refuse.
 */
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { ClusterSpecSchema, type ClusterSpec } from '../../src/api/cluster.js';
import { clusterCrd } from '../../src/api/crd.js';
import { generatedFiles } from '../../src/api/generated-files.js';
import { jsonClone, readRepoFile, repoRoot, seedManifest } from './fixtures.js';

type Schema = Record<string, unknown> & {
  properties?: Record<string, Schema>;
  items?: Schema;
  additionalProperties?: Schema | boolean;
  anyOf?: Schema[];
  allOf?: Schema[];
  oneOf?: Schema[];
  not?: Schema;
  description?: string;
  'x-kubernetes-validations'?: Array<{ rule: string; message: string }>;
};

interface CrdVersion {
  name: string;
  served: boolean;
  storage: boolean;
  schema: { openAPIV3Schema: Schema };
  subresources: { status?: object; scale?: Record<string, string> };
  additionalPrinterColumns: Array<{ name: string; type: string; jsonPath: string }>;
}

interface Crd {
  metadata: { name: string };
  spec: {
    group: string;
    scope: string;
    names: { kind: string; listKind: string; plural: string; singular: string; shortNames: string[]; categories: string[] };
    versions: CrdVersion[];
  };
}

const crd = clusterCrd() as unknown as Crd;

function onlyVersion(): CrdVersion {
  expect(crd.spec.versions).toHaveLength(1);
  return crd.spec.versions[0]!;
}

interface SchemaNode {
  path: string;
  schema: Schema;
  /** A member of some object's `properties` (what `kubectl explain` lists). */
  isProperty: boolean;
  /** At or below an int-or-string or preserve-unknown-fields node. */
  opaque: boolean;
}

const isOpaque = (s: Schema) => s['x-kubernetes-int-or-string'] === true || s['x-kubernetes-preserve-unknown-fields'] === true;

/** Every schema node of the tree, depth first, with where it sits. */
function* walk(schema: Schema, at = '', isProperty = false, insideOpaque = false): Generator<SchemaNode> {
  const opaque = insideOpaque || isOpaque(schema);
  yield { path: at || '<root>', schema, isProperty, opaque };
  for (const [name, child] of Object.entries(schema.properties ?? {})) yield* walk(child, `${at}.${name}`, true, opaque);
  if (schema.items) yield* walk(schema.items, `${at}[]`, false, opaque);
  if (typeof schema.additionalProperties === 'object') yield* walk(schema.additionalProperties, `${at}{}`, false, opaque);
  for (const keyword of ['anyOf', 'allOf', 'oneOf'] as const) {
    for (const [i, child] of (schema[keyword] ?? []).entries()) yield* walk(child, `${at}<${keyword}${i}>`, false, opaque);
  }
  if (schema.not) yield* walk(schema.not, `${at}<not>`, false, opaque);
}

const rootSchema = onlyVersion().schema.openAPIV3Schema;
const nodes = [...walk(rootSchema)];
const offenders = (bad: (n: SchemaNode) => boolean) => nodes.filter(bad).map((n) => n.path);

describe('CRD names, columns and subresources', () => {
  it('is the namespaced postgresqlclusters.postgres.pgpilot.io, served and stored as v1', () => {
    expect(crd.metadata.name).toBe('postgresqlclusters.postgres.pgpilot.io');
    expect(crd.spec.group).toBe('postgres.pgpilot.io');
    expect(crd.spec.scope).toBe('Namespaced');
    const v = onlyVersion();
    expect([v.name, v.served, v.storage]).toEqual(['v1', true, true]);
  });

  it('names the kind PostgreSQLCluster with short names pgc and pgcluster in categories all and pgpilot', () => {
    expect(crd.spec.names).toEqual({
      kind: 'PostgreSQLCluster',
      listKind: 'PostgreSQLClusterList',
      plural: 'postgresqlclusters',
      singular: 'postgresqlcluster',
      shortNames: ['pgc', 'pgcluster'],
      categories: ['all', 'pgpilot'],
    });
  });

  it('prints Instances, Ready, Phase, Primary, Version and Age from the right fields', () => {
    const columns = onlyVersion().additionalPrinterColumns.map(({ name, type, jsonPath }) => ({ name, type, jsonPath }));
    expect(columns).toEqual([
      { name: 'Instances', type: 'integer', jsonPath: '.spec.instances' },
      { name: 'Ready', type: 'integer', jsonPath: '.status.readyInstances' },
      { name: 'Phase', type: 'string', jsonPath: '.status.phase' },
      { name: 'Primary', type: 'string', jsonPath: '.status.currentPrimary' },
      { name: 'Version', type: 'string', jsonPath: '.spec.version' },
      { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
    ]);
  });

  it('every printer column points at a field the schema declares', () => {
    for (const { jsonPath } of onlyVersion().additionalPrinterColumns) {
      if (jsonPath.startsWith('.metadata.')) continue;
      const declared = nodes.some((n) => n.path === jsonPath);
      expect(declared, `${jsonPath} is not in the schema`).toBe(true);
    }
  });

  it('has a status subresource and a scale subresource on spec.instances / status.instances / status.selector', () => {
    const { subresources } = onlyVersion();
    expect(subresources.status).toEqual({});
    expect(subresources.scale).toEqual({
      specReplicasPath: '.spec.instances',
      statusReplicasPath: '.status.instances',
      labelSelectorPath: '.status.selector',
    });
  });

  it('declares the scale paths as an integer and a string in the schema', () => {
    const typeAt = (p: string) => nodes.find((n) => n.path === p)?.schema.type;
    expect(typeAt('.spec.instances')).toBe('integer');
    expect(typeAt('.status.instances')).toBe('integer');
    expect(typeAt('.status.selector')).toBe('string');
  });
});

describe('CRD schema: structural rules and descriptions', () => {
  it('the walk reaches nested, array-item and int-or-string nodes (so the checks below are not vacuous)', () => {
    const paths = nodes.map((n) => n.path);
    expect(paths).toEqual(
      expect.arrayContaining(['.spec.storage.size', '.spec.scheduling.tolerations[].key', '.spec.backup.retention', '.status.conditions[].type']),
    );
    expect(nodes.find((n) => n.path === '.spec.backup.retention')?.opaque).toBe(true);
    expect(nodes.length).toBeGreaterThan(80);
  });

  it('gives every property outside int-or-string / preserve-unknown nodes a description', () => {
    // metadata is exempt: Kubernetes owns its schema and publishes ObjectMeta's docs in its place.
    const missing = offenders((n) => n.isProperty && !n.opaque && n.path !== '.metadata' && !String(n.schema.description ?? '').trim());
    expect(missing).toEqual([]);
  });

  it('types every node, as a structural schema must (int-or-string and preserve-unknown excepted)', () => {
    expect(offenders((n) => !n.opaque && n.schema.type === undefined)).toEqual([]);
  });

  it('uses no const and no patternProperties anywhere', () => {
    expect(offenders((n) => 'const' in n.schema)).toEqual([]);
    expect(offenders((n) => 'patternProperties' in n.schema)).toEqual([]);
  });

  it('uses anyOf only as the exact int-or-string pair, with nothing else in the items', () => {
    const intOrString = [{ type: 'integer' }, { type: 'string' }];
    const withAnyOf = nodes.filter((n) => n.schema.anyOf !== undefined);
    expect(withAnyOf.length).toBeGreaterThan(0);
    for (const n of withAnyOf) {
      expect(n.schema.anyOf, n.path).toEqual(intOrString);
      expect(n.schema['x-kubernetes-int-or-string'], n.path).toBe(true);
    }
    expect(offenders((n) => n.schema.allOf !== undefined || n.schema.oneOf !== undefined || n.schema.not !== undefined)).toEqual([]);
  });

  it('never sets additionalProperties: false (the apiserver prunes unknown fields itself)', () => {
    expect(offenders((n) => n.schema.additionalProperties === false)).toEqual([]);
  });

  it('keeps metadata a bare object (a CRD may not describe ObjectMeta)', () => {
    expect(rootSchema.properties?.metadata).toEqual({ type: 'object' });
  });
});

describe('generated files', () => {
  const files = generatedFiles();
  const dirs = ['crds', 'charts/pgpilot/crds'];

  it('writes the CRD to both crds/ and the chart', () => {
    expect(files.map((f) => f.path).sort()).toEqual(dirs.map((d) => `${d}/postgresqlclusters.postgres.pgpilot.io.yaml`).sort());
  });

  it.each(files.map((f) => [f.path, f.content] as const))('%s on disk matches src/api (run `npm run gen` after editing src/api)', (file, content) => {
    expect(readRepoFile(file)).toBe(content);
  });

  it.each(dirs)('%s holds no stale YAML that src/api no longer generates', (dir) => {
    const onDisk = readdirSync(path.join(repoRoot, dir)).filter((f) => /\.ya?ml$/.test(f)).map((f) => `${dir}/${f}`);
    expect(onDisk.sort()).toEqual(files.filter((f) => f.path.startsWith(`${dir}/`)).map((f) => f.path).sort());
  });
});

describe('spec schema (ajv)', () => {
  const validate = new Ajv({ strict: false, allErrors: true }).compile(jsonClone(ClusterSpecSchema));
  const seedSpec = () => seedManifest().spec;
  const errorsOf = (spec: unknown) => (validate(spec) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message}`));

  it('accepts examples/cluster.yaml exactly as written', () => {
    expect(errorsOf(seedSpec())).toEqual([]);
  });

  it('the seed is a ClusterSpec to the type checker too', () => {
    const spec: ClusterSpec = {
      version: '14.5',
      instances: 3,
      storage: { size: '100Gi', storageClass: 'fast-ssd' },
      backup: { enabled: true, schedule: '0 2 * * *', retention: 7 },
      resources: { requests: { cpu: '2', memory: '4Gi' }, limits: { cpu: '4', memory: '8Gi' } },
      highAvailability: { enabled: true, synchronousCommit: true },
    };
    expect(spec).toEqual(seedSpec());
  });

  it.each<[string, (s: Record<string, any>) => void, string]>([
    ['instances 0', (s) => (s.instances = 0), '/instances'],
    ['instances 11', (s) => (s.instances = 11), '/instances'],
    ['instances 2.5', (s) => (s.instances = 2.5), '/instances'],
    ['storage.size a number', (s) => (s.storage.size = 100), '/storage/size'],
    ['storage.size not a quantity', (s) => (s.storage.size = '100GB'), '/storage/size'],
    ['storage without size', (s) => delete s.storage.size, '/storage'],
    ['no version', (s) => delete s.version, ''],
    ['a memory limit that is no quantity', (s) => (s.resources.limits.memory = 'lots'), '/resources/limits/memory'],
    ['a cpu request as a float', (s) => (s.resources.requests.cpu = 0.5), '/resources/requests/cpu'],
    ['backup.retention a boolean', (s) => (s.backup.retention = true), '/backup/retention'],
    ['a backup schedule with three fields', (s) => (s.backup.schedule = '0 2 *'), '/backup/schedule'],
    ['an unknown podAntiAffinity mode', (s) => (s.scheduling = { podAntiAffinity: 'sometimes' }), '/scheduling/podAntiAffinity'],
    ['synchronousReplicas 0', (s) => (s.highAvailability.synchronousReplicas = 0), '/highAvailability/synchronousReplicas'],
  ])('refuses %s', (_name, mutate, pointer) => {
    const spec = seedSpec() as Record<string, any>;
    mutate(spec);
    const errors = errorsOf(spec);
    expect(errors.length).toBeGreaterThan(0);
    expect(errors.some((e) => e.startsWith(`${pointer} `))).toBe(true);
  });

  it('accepts retention as days, a duration string and a backup count (int-or-string)', () => {
    for (const retention of [30, '36h', '10 backups']) {
      const spec = seedSpec() as Record<string, any>;
      spec.backup.retention = retention;
      expect(errorsOf(spec), String(retention)).toEqual([]);
    }
  });

  it('the CEL rule on version accepts "major" and "major.minor" for majors 13–18 only', () => {
    const rule = (ClusterSpecSchema.properties.version as Schema)['x-kubernetes-validations']?.[0]?.rule ?? '';
    const pattern = /^self\.matches\('(.+)'\)$/.exec(rule)?.[1];
    expect(pattern, rule).toBeDefined();
    const re = new RegExp(pattern!);
    for (const ok of ['14.5', '16', '13.0', '18.10']) expect(re.test(ok), ok).toBe(true);
    for (const bad of ['latest', '12.4', '19', '14.', '14.05', '14.5.1', 'v14']) expect(re.test(bad), bad).toBe(false);
  });
});
