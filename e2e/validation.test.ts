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
import { parseJson } from '../src/util/json.js';

const seed = parse(readFileSync(join(REPO_ROOT, 'examples/cluster.yaml'), 'utf8')) as PostgreSQLCluster;

const S3 = { bucket: 'pg-backups', credentials: { secretName: 'backup-creds' } };
const SOURCE = { path: 'pgpilot/production/prod-db', s3: S3 };

/** A PostgreSQLBackup of cluster `seed`, mutated. */
function backupManifest(namespace: string, name: string, mutate: Mutator = () => {}): string {
  const b: Record<string, any> = {
    apiVersion: 'postgres.pgpilot.io/v1',
    kind: 'PostgreSQLBackup',
    metadata: { name, namespace },
    spec: { cluster: { name: 'seed' } },
  };
  mutate(b);
  return stringify(b);
}

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
  { what: 'version with a patch part', mutate: (c) => (c.spec.version = '14.5.1'), expect: ['spec.version', 'major 14, 15, 16, 17, 18'] },
  { what: 'a major no image provides', mutate: (c) => (c.spec.version = '19'), expect: ['spec.version', 'major 14, 15, 16, 17, 18'] },
  { what: 'a major past its end of life', mutate: (c) => (c.spec.version = '13.20'), expect: ['spec.version', 'major 14, 15, 16, 17, 18'] },
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
  { what: 'autoscaling.min above max', mutate: (c) => (c.spec.autoscaling = { min: 4, max: 3 }), expect: ['spec.autoscaling.min', 'autoscaling.min must not be above autoscaling.max'] },
  {
    what: 'an autoscaling max synchronous commit cannot run with',
    mutate: (c) => ((c.spec.highAvailability.synchronousReplicas = 2), (c.spec.autoscaling = { max: 2 })),
    expect: ['spec.autoscaling.max', 'autoscaling.max must be above highAvailability.synchronousReplicas'],
  },
  {
    what: 'an autoscaling min synchronous commit cannot run with',
    mutate: (c) => (c.spec.autoscaling = { min: 1, max: 4 }),
    expect: ['spec.autoscaling.min', 'autoscaling.min must be above highAvailability.synchronousReplicas'],
  },
  { what: 'an autoscaling max above 10', mutate: (c) => (c.spec.autoscaling = { max: 11 }), expect: ['spec.autoscaling.max', 'less than or equal to 10'] },
  { what: 'a parameter the operator manages', mutate: (c) => (c.spec.postgresql = { parameters: { port: '6543' } }), expect: ['spec.postgresql.parameters', 'may not set parameters the operator manages'] },
  { what: 'a parameter name PostgreSQL does not have the shape of', mutate: (c) => (c.spec.postgresql = { parameters: { 'work mem': '4MB' } }), expect: ['spec.postgresql.parameters', 'parameter names are lowercase letters'] },
  { what: 'a parameter value with a line break', mutate: (c) => (c.spec.postgresql = { parameters: { application_name: 'a\nb' } }), expect: ['spec.postgresql.parameters.application_name', 'should match'] },
  { what: 'cpu request above its limit', mutate: (c) => (c.spec.resources.requests.cpu = '8'), expect: ['spec.resources', 'requests.cpu must be less than or equal to limits.cpu'] },
  { what: 'unknown enum value', mutate: (c) => (c.spec.storage.pvcRetentionPolicy = { whenDeleted: 'Keep' }), expect: ['spec.storage.pvcRetentionPolicy.whenDeleted', 'supported values', 'Retain', 'Delete'] },
  { what: 'a primary of another cluster', mutate: (c) => (c.spec.primary = 'other-db-2'), expect: ['spec.primary must name an instance of this cluster'] },
  { what: 'a name Services cannot carry', mutate: (c) => (c.metadata.name = '1st-db'), expect: ['metadata.name must start with a letter'] },
  { what: 'a pg_hba line of no known type', mutate: (c) => (c.spec.postgresql = { pg_hba: ['allow everyone'] }), expect: ['spec.postgresql.pg_hba[0]'] },
  {
    what: 'a hostnossl pg_hba line while TLS is required',
    mutate: (c) => ((c.spec.tls = { required: true }), (c.spec.postgresql = { pg_hba: ['hostnossl all all 10.0.0.0/8 scram-sha-256'] })),
    expect: ['spec.postgresql.pg_hba', 'hostnossl', 'tls.required'],
  },
  { what: 'a TLS parameter the operator manages', mutate: (c) => (c.spec.postgresql = { parameters: { ssl_min_protocol_version: 'TLSv1.2' } }), expect: ['ssl_min_protocol_version'] },
  { what: 'a pg_hba line that injects another line', mutate: (c) => (c.spec.postgresql = { pg_hba: ['host all all 10.0.0.0/8 scram-sha-256\nhost all all 0.0.0.0/0 trust'] }), expect: ['spec.postgresql.pg_hba[0]'] },
  {
    what: 'both an S3 and a volume backup store',
    mutate: (c) => ((c.spec.backup.s3 = S3), (c.spec.backup.volume = { claimName: 'nfs' })),
    expect: ['spec.backup', 'backup.s3 and backup.volume cannot both be set'],
  },
  { what: 'a bucket name S3 does not allow', mutate: (c) => (c.spec.backup.s3 = { ...S3, bucket: 'My_Bucket' }), expect: ['spec.backup.s3.bucket', 'should match'] },
  { what: 'an S3 store without credentials', mutate: (c) => (c.spec.backup.s3 = { bucket: 'pg-backups' }), expect: ['spec.backup.s3.credentials', 'Required value'] },
  {
    what: 'a KMS key with AES256 encryption',
    mutate: (c) => (c.spec.backup.s3 = { ...S3, serverSideEncryption: { algorithm: 'AES256', kmsKeyId: 'k' } }),
    expect: ['spec.backup.s3.serverSideEncryption.kmsKeyId', 'kmsKeyId is only allowed with algorithm aws:kms'],
  },
  { what: 'a compression level of 10', mutate: (c) => (c.spec.backup.compression = { level: 10 }), expect: ['spec.backup.compression.level', 'less than or equal to 9'] },
  {
    what: 'recovery from both a backup and a source',
    mutate: (c) => (c.spec.bootstrap = { recovery: { backup: { name: 'b' }, source: SOURCE } }),
    expect: ['spec.bootstrap.recovery', 'recovery must set exactly one of backup (a PostgreSQLBackup) or source (an archive)'],
  },
  {
    what: 'recovery from neither a backup nor a source',
    mutate: (c) => (c.spec.bootstrap = { recovery: {} }),
    expect: ['spec.bootstrap.recovery', 'recovery must set exactly one of backup'],
  },
  {
    what: 'a recovery source in both S3 and a volume',
    mutate: (c) => (c.spec.bootstrap = { recovery: { source: { ...SOURCE, volume: { claimName: 'nfs' } } } }),
    expect: ['spec.bootstrap.recovery.source', 'recovery.source must set exactly one of s3 or volume'],
  },
  {
    what: 'initdb and recovery together',
    mutate: (c) => (c.spec.bootstrap = { initdb: {}, recovery: { backup: { name: 'b' } } }),
    expect: ['spec.bootstrap', 'bootstrap.initdb and bootstrap.recovery cannot both be set'],
  },
  {
    what: 'a recovery target with both a time and an lsn',
    mutate: (c) => (c.spec.bootstrap = { recovery: { source: SOURCE, target: { time: '2026-11-25T14:03:00Z', lsn: '0/3000060' } } }),
    expect: ['spec.bootstrap.recovery.target', 'recovery.target must set exactly one of time, lsn, xid, name or immediate'],
  },
  {
    what: 'a recovery target lsn that is no LSN',
    mutate: (c) => (c.spec.bootstrap = { recovery: { source: SOURCE, target: { lsn: '3000060' } } }),
    expect: ['spec.bootstrap.recovery.target.lsn', 'should match'],
  },
  {
    what: 'a recovery target time that is not RFC 3339',
    mutate: (c) => (c.spec.bootstrap = { recovery: { source: SOURCE, target: { time: 'yesterday at noon' } } }),
    expect: ['spec.bootstrap.recovery.target.time', 'date-time'],
  },
  {
    what: 'a recovery target immediate: false',
    mutate: (c) => (c.spec.bootstrap = { recovery: { source: SOURCE, target: { immediate: false } } }),
    expect: ['spec.bootstrap.recovery.target.immediate', 'immediate may only be true'],
  },
  { what: 'an anomaly threshold of zero bytes', mutate: (c) => (c.spec.autopilot = { anomalies: { replicationLag: '0' } }), expect: ['spec.autopilot.anomalies.replicationLag', 'must be a positive Kubernetes quantity'] },
  { what: 'a connections threshold under 10 %', mutate: (c) => (c.spec.autopilot = { anomalies: { connectionsPercent: 5 } }), expect: ['spec.autopilot.anomalies.connectionsPercent', 'greater than or equal to 10'] },
  { what: 'an xid age threshold past wraparound', mutate: (c) => (c.spec.autopilot = { anomalies: { xidAge: 3_000_000_000 } }), expect: ['spec.autopilot.anomalies.xidAge', 'less than or equal to 2000000000'] },
  {
    what: 'a backupId with a PostgreSQLBackup',
    mutate: (c) => (c.spec.bootstrap = { recovery: { backup: { name: 'b' }, backupId: '20261125T020000Z' } }),
    expect: ['spec.bootstrap.recovery.backupId', 'recovery.backupId selects a base backup of recovery.source'],
  },
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

    it('refuses a lower major version than the one running, naming both; a major asked for by mistake can be taken back', async () => {
      await kubectlOk(['apply', '-f', '-'], manifest(ns, 'versions', (c) => (c.spec.version = '16')));
      // What runs, as the operator reports it.
      await kubectlOk(['patch', 'pgc', 'versions', '-n', ns, '--subresource=status', '--type=merge', '-p', JSON.stringify({ status: { version: '16.4' } })]);
      await kubectlOk(['apply', '-f', '-'], manifest(ns, 'versions', (c) => (c.spec.version = '16.2')));
      await kubectlOk(['apply', '-f', '-'], manifest(ns, 'versions', (c) => (c.spec.version = '17')));
      await kubectlOk(['apply', '-f', '-'], manifest(ns, 'versions', (c) => (c.spec.version = '16.4')));
      const down = await kubectl(['apply', '-f', '-'], manifest(ns, 'versions', (c) => (c.spec.version = '15.8')));
      expect(down.code).not.toBe(0);
      expect(down.stderr).toContain('spec.version');
      expect(down.stderr).toContain('spec.version cannot go down to major 15 while PostgreSQL 16.4 runs');
      await kubectlOk(['delete', 'pgc', 'versions', '-n', ns, '--wait=false']);
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

    it('accepts scaling below the synchronous quorum through the scale subresource (the operator holds the cluster at the minimum), but not a synchronous change that leaves too few', async () => {
      // An HPA writes spec.instances through the scale subresource: refusing would leave it
      // failing with nothing on the cluster saying why; the Autoscaling condition says it is held.
      await kubectlOk(['scale', 'pgc', 'seed', '-n', ns, '--replicas=1']);
      const raised = await kubectl(['patch', 'pgc', 'seed', '-n', ns, '--type=merge', '-p', JSON.stringify({ spec: { highAvailability: { synchronousReplicas: 2 } } })]);
      expect(raised.code).not.toBe(0);
      expect(raised.stderr).toContain('must be fewer than instances');
      await kubectlOk(['scale', 'pgc', 'seed', '-n', ns, '--replicas=3']);
    });

    it('fills in the defaults of the backup settings, keeping the seed\'s own as written', async () => {
      const c = parseJson<PostgreSQLCluster>(await kubectlOk(['get', 'pgc', 'seed', '-n', ns, '-o', 'json']), 'kubectl get pgc seed');
      expect(c.spec.backup).toEqual({
        enabled: true,
        schedule: '0 2 * * *',
        retention: 7,
        target: 'prefer-standby',
        archiveTimeoutSeconds: 5,
        walBacklogWarningSegments: 32,
        onClusterDeletion: 'Retain',
      });
    });

    it('refuses changing, adding or removing bootstrap after creation', async () => {
      const recovering = (c: Record<string, any>) => (c.spec.bootstrap = { recovery: { source: SOURCE, target: { lsn: '0/3000060' } } });
      await kubectlOk(['apply', '-f', '-'], manifest(ns, 'restored', recovering));
      const changed = await kubectl(['apply', '-f', '-'], manifest(ns, 'restored', (c) => (recovering(c), (c.spec.bootstrap.recovery.target = { lsn: '0/4000000' }))));
      expect(changed.code).not.toBe(0);
      expect(changed.stderr).toContain('spec.bootstrap');
      expect(changed.stderr).toContain('bootstrap cannot be changed after the cluster is created');
      const removed = await kubectl(['patch', 'pgc', 'restored', '-n', ns, '--type=json', '-p', '[{"op":"remove","path":"/spec/bootstrap"}]']);
      expect(removed.code).not.toBe(0);
      expect(removed.stderr).toContain('bootstrap cannot be added or removed after the cluster is created');
      const added = await kubectl(['patch', 'pgc', 'seed', '-n', ns, '--type=merge', '-p', JSON.stringify({ spec: { bootstrap: { initdb: {} } } })]);
      expect(added.code).not.toBe(0);
      expect(added.stderr).toContain('bootstrap cannot be added or removed after the cluster is created');
      // Other changes to that cluster still go through.
      await kubectlOk(['patch', 'pgc', 'restored', '-n', ns, '--type=merge', '-p', JSON.stringify({ spec: { instances: 2 } })]);
    });
  });
});

describe('PostgreSQLBackup is validated by the apiserver', () => {
  let ns: string;

  beforeAll(async () => {
    ns = await createTestNamespace('validation-backup');
    for (const crd of allCrds()) await kubectlOk(['apply', '--server-side', '-f', '-'], stringify(crd));
    await waitFor('CRD established', async () => (await kubectl(['get', 'pgb', '-n', ns])).code === 0);
  });

  afterAll(async () => {
    if (ns) await deleteTestNamespace(ns);
  });

  it('accepts a backup of a cluster, and lists it by its short name pgb with its columns', async () => {
    await kubectlOk(['apply', '-f', '-'], backupManifest(ns, 'b1', (b) => (b.spec.target = 'primary')));
    const table = await kubectlOk(['get', 'pgb', '-n', ns]);
    const [header, row] = table.trim().split('\n');
    expect(header!.split(/\s{2,}/)).toEqual(['NAME', 'CLUSTER', 'PHASE', 'STARTED', 'SIZE', 'DURATION', 'AGE']);
    expect(row).toMatch(/^b1\s+seed\s/);
    // The whole category lists it too.
    expect(await kubectlOk(['get', 'pgpilot', '-n', ns, '-o', 'name'])).toContain('postgresqlbackup.postgres.pgpilot.io/b1');
  });

  it('prints the status columns once the status is written', async () => {
    const status = { phase: 'completed', startedAt: '2026-11-25T02:00:00Z', storedBytes: 123456, durationSeconds: 12.5 };
    await kubectlOk(['patch', 'pgb', 'b1', '-n', ns, '--subresource=status', '--type=merge', '-p', JSON.stringify({ status })]);
    const row = (await kubectlOk(['get', 'pgb', 'b1', '-n', ns, '--no-headers'])).trim();
    expect(row).toMatch(/^b1\s+seed\s+completed\s+\S+\s+123456\s+12\.5\s/);
  });

  it('refuses a status phase outside pending, running, completed and failed', async () => {
    const r = await kubectl(['patch', 'pgb', 'b1', '-n', ns, '--subresource=status', '--type=merge', '-p', JSON.stringify({ status: { phase: 'Completed' } })]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('status.phase');
  });

  it('refuses a backup without spec.cluster', async () => {
    const r = await kubectl(['apply', '-f', '-'], backupManifest(ns, 'bad', (b) => (b.spec = {})));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('spec.cluster');
    expect(r.stderr).toContain('Required value');
  });

  it('refuses a backup without spec', async () => {
    const r = await kubectl(['apply', '-f', '-'], backupManifest(ns, 'bad', (b) => delete b.spec));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('spec');
    expect(r.stderr).toContain('Required value');
  });

  it('refuses an unknown target', async () => {
    const r = await kubectl(['apply', '-f', '-'], backupManifest(ns, 'bad', (b) => (b.spec.target = 'replica')));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('spec.target');
    expect(r.stderr).toMatch(/supported values.*prefer-standby.*primary/);
  });

  it('refuses a name too long to be a label value', async () => {
    const r = await kubectl(['apply', '-f', '-'], backupManifest(ns, 'b'.repeat(64)));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('metadata.name must be at most 63 characters');
  });

  it('refuses any change of the spec', async () => {
    const cluster = await kubectl(['apply', '-f', '-'], backupManifest(ns, 'b1', (b) => ((b.spec.cluster.name = 'other'), (b.spec.target = 'primary'))));
    expect(cluster.code).not.toBe(0);
    expect(cluster.stderr).toContain('spec.cluster cannot change');
    const target = await kubectl(['apply', '-f', '-'], backupManifest(ns, 'b1', (b) => (b.spec.target = 'prefer-standby')));
    expect(target.code).not.toBe(0);
    expect(target.stderr).toContain('spec cannot change after the PostgreSQLBackup is created');
    // Metadata stays editable (labels, annotations such as the backup's Job).
    await kubectlOk(['annotate', 'pgb', 'b1', '-n', ns, 'postgres.pgpilot.io/job=b1-job']);
  });
});
