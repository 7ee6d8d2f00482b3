// Bad manifests are refused by the real apiserver (schema + CEL rules from src/api) with a
// message that names the field and says what is allowed — through kubectl, as a user sees it.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import type { PostgreSQLCluster } from '../src/api/cluster.js';
import { allCrds } from '../src/api/crd.js';
import { createTestNamespace, deleteTestNamespace, waitFor } from './harness/env.js';
import { kubectl, kubectlOk } from './harness/kubectl.js';
import { REPO_ROOT } from './harness/operator.js';

const seed = parse(readFileSync(join(REPO_ROOT, 'examples/cluster.yaml'), 'utf8')) as PostgreSQLCluster;

type Mutator = (c: Record<string, any>) => void;

function manifest(namespace: string, name: string, mutate: Mutator): string {
  const c = structuredClone(seed) as unknown as Record<string, any>;
  c.metadata = { name, namespace };
  mutate(c);
  return stringify(c);
}

interface BadCase {
  what: string;
  mutate: Mutator;
  /** Every fragment must appear in kubectl's error. */
  expect: Array<string | RegExp>;
}

const CREATE_CASES: BadCase[] = [
  { what: 'version that is not major.minor', mutate: (c) => (c.spec.version = 'latest'), expect: ['spec.version', 'must be a PostgreSQL version'] },
  { what: 'version with a patch part', mutate: (c) => (c.spec.version = '14.5.1'), expect: ['spec.version', 'major 13, 14, 15, 16, 17, 18'] },
  { what: 'unsupported major', mutate: (c) => (c.spec.version = '9.6'), expect: ['spec.version'] },
  { what: 'instances 0', mutate: (c) => (c.spec.instances = 0), expect: ['spec.instances', 'greater than or equal to 1'] },
  { what: 'too many instances', mutate: (c) => (c.spec.instances = 11), expect: ['spec.instances', 'less than or equal to 10'] },
  { what: 'unknown field', mutate: (c) => (c.spec.storage.sizee = '10Gi'), expect: ['unknown field', 'spec.storage.sizee'] },
  { what: 'missing storage', mutate: (c) => delete c.spec.storage, expect: ['spec.storage', 'Required value'] },
  { what: 'storage size that is not a quantity', mutate: (c) => (c.spec.storage.size = 'lots'), expect: ['spec.storage.size'] },
  { what: 'bad cron schedule', mutate: (c) => (c.spec.backup.schedule = 'every day at 2'), expect: ['spec.backup.schedule', 'should match'] },
  { what: 'retention in words', mutate: (c) => (c.spec.backup.retention = '7 days'), expect: ['spec.backup.retention', 'number of days from 1 to 3650'] },
  { what: 'retention of zero days', mutate: (c) => (c.spec.backup.retention = 0), expect: ['spec.backup.retention'] },
  {
    what: 'synchronous replicas not fewer than instances',
    mutate: (c) => {
      c.spec.instances = 2;
      c.spec.highAvailability.synchronousReplicas = 2;
    },
    expect: ['spec.highAvailability.synchronousReplicas', 'must be fewer than instances'],
  },
  { what: 'a parameter the operator manages', mutate: (c) => (c.spec.postgresql = { parameters: { port: '6543' } }), expect: ['spec.postgresql.parameters', 'may not set parameters the operator manages'] },
  { what: 'a parameter name PostgreSQL does not have the shape of', mutate: (c) => (c.spec.postgresql = { parameters: { 'work mem': '4MB' } }), expect: ['spec.postgresql.parameters', 'parameter names are lowercase letters'] },
  { what: 'a parameter value with a line break', mutate: (c) => (c.spec.postgresql = { parameters: { application_name: 'a\nb' } }), expect: ['spec.postgresql.parameters.application_name', 'should match'] },
  { what: 'cpu request above its limit', mutate: (c) => (c.spec.resources.requests.cpu = '8'), expect: ['spec.resources', 'requests.cpu must be less than or equal to limits.cpu'] },
  { what: 'unknown enum value', mutate: (c) => (c.spec.storage.pvcRetentionPolicy = { whenDeleted: 'Keep' }), expect: ['spec.storage.pvcRetentionPolicy.whenDeleted', 'supported values', 'Retain', 'Delete'] },
  { what: 'a primary of another cluster', mutate: (c) => (c.spec.primary = 'other-db-2'), expect: ['spec.primary must name an instance of this cluster'] },
  { what: 'a name Services cannot carry', mutate: (c) => (c.metadata.name = '1st-db'), expect: ['metadata.name must start with a letter'] },
  { what: 'a pg_hba line of no known type', mutate: (c) => (c.spec.postgresql = { pg_hba: ['allow everyone'] }), expect: ['spec.postgresql.pg_hba[0]'] },
];

describe('bad input is refused by the apiserver with field-specific messages', () => {
  let ns: string;

  beforeAll(async () => {
    ns = await createTestNamespace('validation');
    // Only the CRDs: validation is the apiserver's, no operator is needed.
    for (const crd of allCrds()) await kubectlOk(['apply', '--server-side', '-f', '-'], stringify(crd));
    await waitFor('CRD established', async () => (await kubectl(['get', 'pgc', '-n', ns])).code === 0);
  });

  afterAll(async () => {
    if (ns) await deleteTestNamespace(ns);
  });

  it('accepts the seed manifest exactly as written (only the namespace changed)', async () => {
    await kubectlOk(['apply', '-f', '-'], manifest(ns, 'seed', () => {}));
  });

  it.each(CREATE_CASES)('refuses $what', async ({ mutate, expect: fragments }) => {
    const r = await kubectl(['apply', '-f', '-'], manifest(ns, 'bad', mutate));
    expect(r.code, r.stdout).not.toBe(0);
    for (const f of fragments) expect(r.stderr).toMatch(f);
    expect((await kubectl(['get', 'pgc', 'bad', '-n', ns])).code).not.toBe(0);
  });

  describe('changes to an existing cluster', () => {
    it('refuses shrinking storage, and allows growing it', async () => {
      const r = await kubectl(['apply', '-f', '-'], manifest(ns, 'seed', (c) => (c.spec.storage.size = '50Gi')));
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain('spec.storage.size');
      expect(r.stderr).toContain('may grow but never shrink');
      await kubectlOk(['apply', '-f', '-'], manifest(ns, 'seed', (c) => (c.spec.storage.size = '200Gi')));
    });

    it('refuses adding WAL storage after creation', async () => {
      const r = await kubectl(['apply', '-f', '-'], manifest(ns, 'seed', (c) => ((c.spec.storage.size = '200Gi'), (c.spec.walStorage = { size: '10Gi' }))));
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain('spec.walStorage');
      expect(r.stderr).toContain('cannot be added or removed after the cluster is created');
    });

    it('refuses scaling to zero through the scale subresource', async () => {
      const r = await kubectl(['scale', 'pgc', 'seed', '-n', ns, '--replicas=0']);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain('spec.instances');
    });

    it('refuses scaling below the synchronous quorum through the scale subresource', async () => {
      const r = await kubectl(['scale', 'pgc', 'seed', '-n', ns, '--replicas=1']);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain('must be fewer than instances');
    });
  });
});
