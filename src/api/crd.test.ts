/**
 * The PostgreSQLCluster and PostgreSQLBackup APIs: the CRDs' names, columns and subresources, the
 * structural-schema rules the apiserver enforces, descriptions for `kubectl explain`, the
 * generated files on disk, and the spec schema against the seed manifest and against specs it
 * must refuse. (CEL rules run in the real apiserver: e2e/validation.test.ts.)
 */
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { BACKUP_PHASES, BackupResourceSpecSchema, BackupStatusSchema } from './backup.js';
import { BootstrapSchema, ClusterSpecSchema, ClusterStatusSchema, DEFAULTS, S3TargetSchema, VolumeTargetSchema, type ClusterSpec, type RecoverySpec, type S3Target } from './cluster.js';
import { ANNOTATIONS, LABELS } from './constants.js';
import { backupCrd, clusterCrd } from './crd.js';
import { generatedFiles } from './generated-files.js';
import { jsonClone, readRepoFile, repoRoot, seedManifest } from '../../test/support/cluster-fixtures.js';

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
const bCrd = backupCrd() as unknown as Crd;

/** The storage version (v1): the only one PostgreSQLBackup has; PostgreSQLCluster also serves v1beta1. */
function onlyVersion(c: Crd = crd): CrdVersion {
  const stored = c.spec.versions.filter((v) => v.storage);
  expect(stored).toHaveLength(1);
  expect(stored[0]!.name).toBe('v1');
  return stored[0]!;
}

const betaVersion = (): CrdVersion => crd.spec.versions.find((v) => v.name === 'v1beta1')!;

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
const backupNodes = [...walk(onlyVersion(bCrd).schema.openAPIV3Schema)];

describe('CRD names, columns and subresources', () => {
  it('is the namespaced postgresqlclusters.postgres.pgpilot.io, served and stored as v1', () => {
    expect(crd.metadata.name).toBe('postgresqlclusters.postgres.pgpilot.io');
    expect(crd.spec.group).toBe('postgres.pgpilot.io');
    expect(crd.spec.scope).toBe('Namespaced');
    const v = onlyVersion();
    expect([v.name, v.served, v.storage]).toEqual(['v1', true, true]);
  });

  it('serves v1beta1 (not stored) beside v1, converted by the operator\'s webhook; PostgreSQLBackup has v1 alone', () => {
    expect(crd.spec.versions.map((v) => [v.name, v.served, v.storage])).toEqual([['v1', true, true], ['v1beta1', true, false]]);
    expect((crd.spec as unknown as { conversion: unknown }).conversion).toEqual({
      strategy: 'Webhook',
      webhook: { conversionReviewVersions: ['v1'], clientConfig: { service: { namespace: 'pgpilot-system', name: 'pgpilot-webhook', path: '/convert', port: 9443 } } },
    });
    expect(bCrd.spec.versions).toHaveLength(1);
    expect(bCrd.spec).not.toHaveProperty('conversion');
  });

  it('prints Replicas, Storage, Ready, Phase, Primary, Version and Age for v1beta1, each from a field its schema declares', () => {
    const v = betaVersion();
    expect(v.additionalPrinterColumns.map((c) => c.name)).toEqual(['Replicas', 'Storage', 'Ready', 'Phase', 'Primary', 'Version', 'Age']);
    const betaNodes = [...walk(v.schema.openAPIV3Schema)];
    for (const { jsonPath } of v.additionalPrinterColumns) {
      if (jsonPath.startsWith('.metadata.')) continue;
      expect(betaNodes.some((n) => n.path === jsonPath), `${jsonPath} is not in the v1beta1 schema`).toBe(true);
    }
    expect(v.subresources.scale).toEqual({ specReplicasPath: '.spec.replicas', statusReplicasPath: '.status.replicas', labelSelectorPath: '.status.selector' });
    const spec = v.schema.openAPIV3Schema.properties!.spec!;
    expect(spec.properties!.storage!.type).toBe('string');
    expect(spec.properties).not.toHaveProperty('instances');
    expect(JSON.stringify(spec['x-kubernetes-validations'])).not.toContain('self.instances');
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
      { name: 'Version', type: 'string', jsonPath: '.status.version' },
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

describe('CRD PostgreSQLBackup: names, columns and subresources', () => {
  it('is the namespaced postgresqlbackups.postgres.pgpilot.io, served and stored as v1, short name pgb', () => {
    expect(bCrd.metadata.name).toBe('postgresqlbackups.postgres.pgpilot.io');
    expect(bCrd.spec.group).toBe('postgres.pgpilot.io');
    expect(bCrd.spec.scope).toBe('Namespaced');
    const v = onlyVersion(bCrd);
    expect([v.name, v.served, v.storage]).toEqual(['v1', true, true]);
    expect(bCrd.spec.names).toEqual({
      kind: 'PostgreSQLBackup',
      listKind: 'PostgreSQLBackupList',
      plural: 'postgresqlbackups',
      singular: 'postgresqlbackup',
      shortNames: ['pgb'],
      categories: ['all', 'pgpilot'],
    });
  });

  it('prints Cluster, Phase, Started, Size, Duration and Age, each from a declared field', () => {
    const columns = onlyVersion(bCrd).additionalPrinterColumns.map(({ name, type, jsonPath }) => ({ name, type, jsonPath }));
    expect(columns).toEqual([
      { name: 'Cluster', type: 'string', jsonPath: '.spec.cluster.name' },
      { name: 'Phase', type: 'string', jsonPath: '.status.phase' },
      { name: 'Started', type: 'date', jsonPath: '.status.startedAt' },
      { name: 'Size', type: 'integer', jsonPath: '.status.storedBytes' },
      { name: 'Duration', type: 'number', jsonPath: '.status.durationSeconds' },
      { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
    ]);
    for (const { jsonPath, type } of columns) {
      if (jsonPath.startsWith('.metadata.')) continue;
      const node = backupNodes.find((n) => n.path === jsonPath);
      expect(node, `${jsonPath} is not in the schema`).toBeDefined();
      expect(type === 'date' ? node!.schema.format : node!.schema.type, jsonPath).toBe(type === 'date' ? 'date-time' : type);
    }
  });

  it('has a status subresource and no scale subresource', () => {
    expect(onlyVersion(bCrd).subresources).toEqual({ status: {} });
  });

  it('requires spec and spec.cluster.name, and keeps both immutable', () => {
    const root = onlyVersion(bCrd).schema.openAPIV3Schema;
    expect(root.required).toEqual(['spec']);
    const spec = root.properties!.spec!;
    expect(spec.required).toEqual(['cluster']);
    expect(spec.properties!.cluster!.required).toEqual(['name']);
    expect(spec['x-kubernetes-validations']?.map((r) => r.rule)).toEqual(['self == oldSelf']);
    expect(spec.properties!.cluster!['x-kubernetes-validations']?.map((r) => r.rule)).toEqual(['self == oldSelf']);
    expect(spec.properties!.target!.enum).toEqual(['prefer-standby', 'primary']);
    expect(spec.properties!.target!.default).toBeUndefined(); // unset: the cluster's spec.backup.target
  });

  it('records the phase in lowercase, the destination with the same store schemas as the cluster, and conditions', () => {
    const status = onlyVersion(bCrd).schema.openAPIV3Schema.properties!.status!;
    expect(status.properties!.phase!.enum).toEqual(['pending', 'running', 'completed', 'failed']);
    expect(BACKUP_PHASES).toEqual(['pending', 'running', 'completed', 'failed']);
    const dest = status.properties!.destination!;
    const clusterBackup = rootSchema.properties!.spec!.properties!.backup!;
    expect(dest.properties!.s3).toEqual(clusterBackup.properties!.s3);
    expect(dest.properties!.volume).toEqual(clusterBackup.properties!.volume);
    expect(status.properties!.conditions!.items).toEqual(rootSchema.properties!.status!.properties!.conditions!.items);
    for (const k of ['backupId', 'instance', 'fromReplica', 'startedAt', 'stoppedAt', 'durationSeconds', 'timeline', 'startLsn', 'stopLsn', 'startWal', 'stopWal', 'dataBytes', 'storedBytes', 'progressBytes', 'dataSha256', 'job', 'attempts', 'error']) {
      expect(Object.keys(BackupStatusSchema.properties), k).toContain(k);
    }
  });
});

describe('label and annotation keys of backups', () => {
  it('are in the API group', () => {
    expect(LABELS.backupName).toBe('postgres.pgpilot.io/backup');
    expect(LABELS.scheduled).toBe('postgres.pgpilot.io/scheduled');
    expect(ANNOTATIONS.backupJob).toBe('postgres.pgpilot.io/job');
  });
});

// Each schema with paths its walk must reach, the int-or-string (opaque) ones among them, and how
// many nodes at least, so that the checks below are not vacuous.
describe.each([
  ['PostgreSQLCluster', nodes, ['.spec.storage.size', '.spec.scheduling.tolerations[].key', '.spec.backup.retention', '.status.conditions[].type'], ['.spec.backup.retention'], 80],
  ['PostgreSQLBackup', backupNodes, ['.spec.cluster.name', '.status.destination.s3.credentials.secretName', '.status.conditions[].type'], [], 40],
] as const)('CRD %s schema: structural rules and descriptions', (kind, nodes, mustReach, opaque, minNodes) => {
  const offenders = (bad: (n: SchemaNode) => boolean) => nodes.filter(bad).map((n) => n.path);
  const rootSchema = nodes[0]!.schema;

  it('the walk reaches nested and array-item nodes (so the checks below are not vacuous)', () => {
    expect(nodes.map((n) => n.path)).toEqual(expect.arrayContaining([...mustReach]));
    expect(nodes.length).toBeGreaterThan(minNodes);
    for (const p of opaque) expect(nodes.find((n) => n.path === p)?.opaque).toBe(true);
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
    if (kind === 'PostgreSQLCluster') expect(withAnyOf.length).toBeGreaterThan(0);
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

  it('writes both CRDs to crds/ and to the chart', () => {
    const names = ['postgresqlclusters.postgres.pgpilot.io.yaml', 'postgresqlbackups.postgres.pgpilot.io.yaml'];
    expect(files.map((f) => f.path).sort()).toEqual(dirs.flatMap((d) => names.map((n) => `${d}/${n}`)).sort());
  });

  it.each(files.map((f) => [f.path, f.content] as const))('%s on disk matches src/api (run `npm run gen` after editing src/api)', (file, content) => {
    expect(readRepoFile(file)).toBe(content);
  });

  it.each(dirs)('%s holds no stale YAML that src/api no longer generates', (dir) => {
    const onDisk = readdirSync(path.join(repoRoot, dir)).filter((f) => /\.ya?ml$/.test(f)).map((f) => `${dir}/${f}`);
    expect(onDisk.sort()).toEqual(files.filter((f) => f.path.startsWith(`${dir}/`)).map((f) => f.path).sort());
  });
});

/** RFC 3339 date-time, as the apiserver checks `format: date-time`. */
const RFC3339 = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/i;
const ajvOptions = { strict: false, allErrors: true, formats: { 'date-time': (v: string) => RFC3339.test(v) && !Number.isNaN(Date.parse(v)) } };

describe('spec schema (ajv)', () => {
  const validate = new Ajv(ajvOptions).compile(jsonClone(ClusterSpecSchema));
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

  it('the CEL rule on version accepts "major" and "major.minor" for majors 14–18 only (13 is past its end of life)', () => {
    const rule = (ClusterSpecSchema.properties.version as Schema)['x-kubernetes-validations']?.[0]?.rule ?? '';
    const pattern = /^self\.matches\('(.+)'\)$/.exec(rule)?.[1];
    expect(pattern, rule).toBeDefined();
    const re = new RegExp(pattern!);
    for (const ok of ['14.5', '16', '14.0', '18.10']) expect(re.test(ok), ok).toBe(true);
    for (const bad of ['latest', '12.4', '13.0', '19', '14.', '14.05', '14.5.1', 'v14']) expect(re.test(bad), bad).toBe(false);
  });
});

describe('spec.monitoring.customQueries (ajv)', () => {
  const validate = new Ajv({ ...ajvOptions, useDefaults: true }).compile(jsonClone(ClusterSpecSchema));
  const withQueries = (customQueries: unknown) => ({ ...seedManifest().spec, monitoring: { customQueries } });
  it('accepts ConfigMap names (DNS-1123 subdomains) and keys, and defaults the key to queries.yaml', () => {
    const spec = withQueries([{ name: 'app-queries' }, { name: 'team.metrics', key: 'slow_queries-1.yaml' }]) as ClusterSpec;
    expect(validate(spec), JSON.stringify(validate.errors)).toBe(true);
    expect(spec.monitoring!.customQueries![0]!.key).toBe('queries.yaml');
  });
  it('refuses names that are not DNS-1123 subdomains, keys with other characters, and more than 8 sources', () => {
    for (const bad of [[{ name: 'App' }], [{ name: '-x' }], [{ name: '' }], [{ name: 'a', key: 'a/b' }], [{ name: 'a', key: '' }], [{}], Array.from({ length: 9 }, (_, i) => ({ name: `q${i}` }))]) {
      expect(validate(withQueries(bad)), JSON.stringify(bad)).toBe(false);
    }
  });
  it("refuses the keys '.' and '..x' in CEL (not ConfigMap keys)", () => {
    const key = ((ClusterSpecSchema.properties.monitoring as unknown as Schema).properties!.customQueries!.items as Schema).properties!.key!;
    expect(celOf(key).map((r) => r.rule)).toEqual(["self != '.' && !self.startsWith('..')"]);
  });
});

/** The CEL rules on a schema node, by message. */
const celOf = (schema: unknown): Array<{ rule: string; message: string; fieldPath?: string }> =>
  ((schema as Schema)['x-kubernetes-validations'] ?? []) as Array<{ rule: string; message: string; fieldPath?: string }>;

describe('spec.backup: stores and archiving (ajv)', () => {
  const validate = new Ajv({ ...ajvOptions, useDefaults: true }).compile(jsonClone(ClusterSpecSchema));
  const errorsOf = (spec: unknown) => (validate(spec) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message}`));
  const s3: S3Target = { bucket: 'pg-backups', credentials: { secretName: 'backup-creds' } };
  const withBackup = (backup: Record<string, unknown>) => {
    const spec = seedManifest().spec as Record<string, any>;
    Object.assign(spec.backup, backup);
    return spec;
  };

  it('keeps the seed\'s backup fields as they are and fills in the defaults of the new ones', () => {
    const spec = withBackup({ s3: structuredClone(s3) });
    expect(errorsOf(spec)).toEqual([]);
    expect(spec.backup).toEqual({
      enabled: true,
      schedule: '0 2 * * *',
      retention: 7,
      target: 'prefer-standby',
      archiveTimeoutSeconds: 5,
      walBacklogWarningSegments: 32,
      onClusterDeletion: 'Retain',
      s3: {
        bucket: 'pg-backups',
        path: 'pgpilot',
        region: 'us-east-1',
        forcePathStyle: false,
        checksums: 'WHEN_SUPPORTED',
        insecureSkipTlsVerify: false,
        credentials: { secretName: 'backup-creds', accessKeyIdKey: 'ACCESS_KEY_ID', secretAccessKeyKey: 'ACCESS_SECRET_KEY' },
      },
    });
  });

  it('publishes DEFAULTS as the schema defaults', () => {
    expect(DEFAULTS).toMatchObject({
      backupPath: 'pgpilot',
      region: 'us-east-1',
      checksums: 'WHEN_SUPPORTED',
      accessKeyIdKey: 'ACCESS_KEY_ID',
      secretAccessKeyKey: 'ACCESS_SECRET_KEY',
      compressionLevel: 1,
      backupTarget: 'prefer-standby',
      archiveTimeoutSeconds: 5,
      walBacklogWarningSegments: 32,
      onClusterDeletion: 'Retain',
    });
    const spec = withBackup({ volume: { claimName: 'nfs' }, compression: {} });
    expect(errorsOf(spec)).toEqual([]);
    expect(spec.backup.volume).toEqual({ claimName: 'nfs', path: 'pgpilot' });
    expect(spec.backup.compression).toEqual({ level: 1 });
  });

  it('accepts a full S3 target', () => {
    const full: S3Target = {
      endpoint: 'https://minio.storage:9000',
      bucket: 'a.b-c',
      path: 'team/pg_01',
      region: 'eu-west-3',
      forcePathStyle: true,
      checksums: 'WHEN_REQUIRED',
      insecureSkipTlsVerify: true,
      serverSideEncryption: { algorithm: 'aws:kms', kmsKeyId: 'arn:aws:kms:eu-west-3:1:key/x' },
      credentials: { secretName: 's3', accessKeyIdKey: 'id', secretAccessKeyKey: 'key' },
    };
    expect(errorsOf(withBackup({ s3: full, compression: { level: 9 }, target: 'primary', archiveTimeoutSeconds: 3600, walBacklogWarningSegments: 100000, onClusterDeletion: 'Delete' }))).toEqual([]);
  });

  it.each<[string, Record<string, unknown>, string]>([
    ['an endpoint without a scheme', { s3: { ...s3, endpoint: 'minio:9000' } }, '/backup/s3/endpoint'],
    ['a bucket of two characters', { s3: { ...s3, bucket: 'ab' } }, '/backup/s3/bucket'],
    ['a bucket with capitals', { s3: { ...s3, bucket: 'My-Bucket' } }, '/backup/s3/bucket'],
    ['a bucket of 64 characters', { s3: { ...s3, bucket: 'a'.repeat(64) } }, '/backup/s3/bucket'],
    ['a path with a leading "/"', { s3: { ...s3, path: '/pgpilot' } }, '/backup/s3/path'],
    ['a path with a trailing "/"', { s3: { ...s3, path: 'pgpilot/' } }, '/backup/s3/path'],
    ['a path with ".."', { volume: { claimName: 'nfs', path: 'a/../b' } }, '/backup/volume/path'],
    ['a path with a space', { s3: { ...s3, path: 'my backups' } }, '/backup/s3/path'],
    ['an unknown checksums mode', { s3: { ...s3, checksums: 'NEVER' } }, '/backup/s3/checksums'],
    ['an unknown encryption', { s3: { ...s3, serverSideEncryption: { algorithm: 'rot13' } } }, '/backup/s3/serverSideEncryption/algorithm'],
    ['s3 without credentials', { s3: { bucket: 'pg-backups' } }, '/backup/s3'],
    ['credentials without secretName', { s3: { ...s3, credentials: {} } }, '/backup/s3/credentials'],
    ['a volume without claimName', { volume: {} }, '/backup/volume'],
    ['compression level 0', { compression: { level: 0 } }, '/backup/compression/level'],
    ['compression level 10', { compression: { level: 10 } }, '/backup/compression/level'],
    ['an unknown target', { target: 'replica' }, '/backup/target'],
    ['archiveTimeoutSeconds 0', { archiveTimeoutSeconds: 0 }, '/backup/archiveTimeoutSeconds'],
    ['walBacklogWarningSegments 0', { walBacklogWarningSegments: 0 }, '/backup/walBacklogWarningSegments'],
    ['an unknown onClusterDeletion', { onClusterDeletion: 'Keep' }, '/backup/onClusterDeletion'],
  ])('refuses %s', (_what, backup, pointer) => {
    const errors = errorsOf(withBackup(backup));
    expect(errors.some((e) => e.startsWith(`${pointer} `)), errors.join('\n')).toBe(true);
  });

  it('has CEL rules that name the fields: not both s3 and volume; kmsKeyId only with aws:kms', () => {
    const backup = ClusterSpecSchema.properties.backup;
    expect(celOf(backup)).toEqual([
      { rule: '!(has(self.s3) && has(self.volume))', message: expect.stringMatching(/backup\.s3 and backup\.volume cannot both be set/) },
    ]);
    const sse = (backup as unknown as Schema).properties!.s3!.properties!.serverSideEncryption!;
    expect(celOf(sse)).toEqual([{ rule: "!has(self.kmsKeyId) || self.algorithm == 'aws:kms'", message: 'kmsKeyId is only allowed with algorithm aws:kms', fieldPath: '.kmsKeyId' }]);
  });

  it('describes checksums for S3-compatible servers and retention as days, a duration or a count', () => {
    const props = (ClusterSpecSchema.properties.backup as unknown as Schema).properties!;
    expect(props.s3!.properties!.checksums!.description).toMatch(/WHEN_REQUIRED.*s3rver.*MinIO/);
    expect(props.retention!.description).toMatch(/integer number of days.*"36h", "7d", "4w".*"10 backups"/);
    expect(props.compression!.properties!.level!.description).toMatch(/1 is fast and is the default/);
  });
});

describe('spec.bootstrap.recovery (ajv)', () => {
  const validate = new Ajv({ ...ajvOptions, useDefaults: true }).compile(jsonClone(ClusterSpecSchema));
  const errorsOf = (spec: unknown) => (validate(spec) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message}`));
  const withRecovery = (recovery: Record<string, unknown>) => ({ ...seedManifest().spec, bootstrap: { recovery } });
  const source = { path: 'pgpilot/production/prod-db', s3: { bucket: 'pg-backups', credentials: { secretName: 'old-creds' } } };

  it('accepts a PostgreSQLBackup, or a source with a backup id and each kind of target', () => {
    const fromBackup: RecoverySpec = { backup: { name: 'prod-db-20261125t020000z' } };
    expect(errorsOf(withRecovery(fromBackup))).toEqual([]);
    for (const target of [{ time: '2026-11-25T14:03:00Z' }, { time: '2026-11-25T15:03:00.5+01:00' }, { lsn: '0/3000060' }, { lsn: 'AB/FFFFFFFF' }, { xid: '1234' }, { name: 'before-migration' }, { immediate: true }]) {
      const spec = withRecovery({ source: structuredClone(source), backupId: '20261125T020000Z', target: { ...target } });
      expect(errorsOf(spec), JSON.stringify(target)).toEqual([]);
      expect(spec.bootstrap.recovery.target).toEqual({ ...target, inclusive: true });
    }
    expect(errorsOf(withRecovery({ source: { path: 'pgpilot/ns/db', volume: { claimName: 'nfs' } }, target: { xid: '7', inclusive: false } }))).toEqual([]);
  });

  it.each<[string, Record<string, unknown>, string]>([
    ['a source without path', { source: { s3: source.s3 } }, '/bootstrap/recovery/source'],
    ['a source path with a leading "/"', { source: { ...source, path: '/pgpilot/x' } }, '/bootstrap/recovery/source/path'],
    ['a backup without name', { backup: {} }, '/bootstrap/recovery/backup'],
    ['a backupId that is not a backup id', { source, backupId: '2026-11-25' }, '/bootstrap/recovery/backupId'],
    ['a time that is not RFC 3339', { source, target: { time: 'yesterday' } }, '/bootstrap/recovery/target/time'],
    ['a time without a zone', { source, target: { time: '2026-11-25T14:03:00' } }, '/bootstrap/recovery/target/time'],
    ['an lsn without "/"', { source, target: { lsn: '3000060' } }, '/bootstrap/recovery/target/lsn'],
    ['an lsn with non-hex digits', { source, target: { lsn: '0/30000G0' } }, '/bootstrap/recovery/target/lsn'],
    ['an xid with letters', { source, target: { xid: '12a' } }, '/bootstrap/recovery/target/xid'],
    ['a restore point name of 64 characters', { source, target: { name: 'n'.repeat(64) } }, '/bootstrap/recovery/target/name'],
  ])('refuses %s', (_what, recovery, pointer) => {
    const errors = errorsOf(withRecovery(structuredClone(recovery)));
    expect(errors.some((e) => e.startsWith(`${pointer} `)), errors.join('\n')).toBe(true);
  });

  it('reuses the spec.backup store schemas for the source (one definition)', () => {
    const backup = (ClusterSpecSchema.properties.backup as unknown as Schema).properties!;
    const src = (BootstrapSchema.properties.recovery as unknown as Schema).properties!.source!.properties!;
    // TypeBox's Optional() copies; the content is the one S3TargetSchema / VolumeTargetSchema.
    expect(jsonClone(src.s3)).toEqual(jsonClone(S3TargetSchema));
    expect(jsonClone(backup.s3)).toEqual(jsonClone(S3TargetSchema));
    expect(jsonClone(src.volume)).toEqual(jsonClone(VolumeTargetSchema));
    expect(jsonClone(backup.volume)).toEqual(jsonClone(VolumeTargetSchema));
  });

  it('has CEL rules for exactly one of backup/source, of s3/volume, of the targets, and immediate true', () => {
    const recovery = BootstrapSchema.properties.recovery as unknown as Schema;
    expect(celOf(recovery).map((r) => r.message)).toEqual([
      'recovery must set exactly one of backup (a PostgreSQLBackup) or source (an archive)',
      expect.stringMatching(/^recovery\.backupId selects a base backup of recovery\.source/),
    ]);
    expect(celOf(recovery.properties!.source).map((r) => [r.rule, r.message])).toEqual([['has(self.s3) != has(self.volume)', 'recovery.source must set exactly one of s3 or volume']]);
    const target = recovery.properties!.target!;
    expect(celOf(target).map((r) => r.message)).toEqual(['recovery.target must set exactly one of time, lsn, xid, name or immediate']);
    expect(celOf(target)[0]!.rule).toMatch(/has\(self\.time\), has\(self\.lsn\), has\(self\.xid\), has\(self\.name\), has\(self\.immediate\)\]\.filter\(x, x\)\.size\(\) == 1/);
    expect(celOf(target.properties!.immediate).map((r) => r.rule)).toEqual(['self']);
  });

  it('makes bootstrap immutable and refuses initdb with recovery', () => {
    expect(celOf(BootstrapSchema).map((r) => r.rule)).toEqual(['!(has(self.initdb) && has(self.recovery))', 'self == oldSelf']);
    expect(celOf(BootstrapSchema)[0]!.message).toMatch(/bootstrap\.initdb and bootstrap\.recovery cannot both be set/);
    expect(celOf(BootstrapSchema)[1]!.message).toMatch(/^bootstrap cannot be changed after the cluster is created/);
    expect(celOf(ClusterSpecSchema).find((r) => r.fieldPath === '.bootstrap')?.rule).toBe('has(self.bootstrap) == has(oldSelf.bootstrap)');
  });
});

describe('status: recoverability and archiving', () => {
  it('declares the recoverability window, backups and the archiving report', () => {
    const props = ClusterStatusSchema.properties as unknown as Record<string, Schema>;
    for (const k of ['firstRecoverabilityPoint', 'lastRecoverabilityPoint', 'lastSuccessfulBackup', 'nextScheduledBackup']) expect(props[k]?.format, k).toBe('date-time');
    expect(props.lastBackup?.type).toBe('string');
    expect(props.archivePath?.type).toBe('string');
    const archiving = props.archiving!.properties!;
    expect(Object.fromEntries(Object.entries(archiving).map(([k, v]) => [k, v.type]))).toEqual({
      lastArchivedWal: 'string',
      lastArchivedTime: 'string',
      lastFailedWal: 'string',
      lastFailureTime: 'string',
      lastFailure: 'string',
      backlogSegments: 'integer',
      walBytes: 'integer',
      walVolumeUsedPercent: 'integer',
    });
  });
});

describe('PostgreSQLBackup spec (ajv)', () => {
  const validate = new Ajv(ajvOptions).compile(jsonClone(BackupResourceSpecSchema));
  it('accepts a cluster with or without a target, and refuses no cluster or an unknown target', () => {
    expect(validate({ cluster: { name: 'prod-db' } })).toBe(true);
    expect(validate({ cluster: { name: 'prod-db' }, target: 'primary' })).toBe(true);
    expect(validate({})).toBe(false);
    expect(validate({ cluster: {} })).toBe(false);
    expect(validate({ cluster: { name: 'prod-db' }, target: 'any' })).toBe(false);
  });
});
