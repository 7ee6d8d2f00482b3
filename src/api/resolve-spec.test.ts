import { describe, expect, it } from 'vitest';
import { ClusterSpecSchema, type ClusterSpec } from './cluster.js';
import { resolveSpec } from './resolve-spec.js';

const minimal: ClusterSpec = { version: '16', storage: { size: '1Gi' } };

/** The default the CRD publishes at a dotted path of the spec schema. */
function schemaDefault(path: string): unknown {
  let node = ClusterSpecSchema as unknown as { properties?: Record<string, unknown>; default?: unknown };
  for (const key of path.split('.')) node = node.properties![key] as typeof node;
  return node.default;
}

describe('resolveSpec', () => {
  it('fills every default the CRD publishes, also under parents the manifest left out', () => {
    const r = resolveSpec(minimal);
    const published: Array<[string, unknown]> = [
      ['instances', r.instances],
      ['imagePullPolicy', r.imagePullPolicy],
      ['stopDelaySeconds', r.stopDelaySeconds],
      ['primaryUpdateMethod', r.primaryUpdateMethod],
      ['primaryUpdateStrategy', r.primaryUpdateStrategy],
      ['storage.pvcRetentionPolicy.whenDeleted', r.storage.pvcRetentionPolicy.whenDeleted],
      ['storage.pvcRetentionPolicy.whenScaled', r.storage.pvcRetentionPolicy.whenScaled],
      ['highAvailability.enabled', r.highAvailability.enabled],
      ['highAvailability.synchronousCommit', r.highAvailability.synchronousCommit],
      ['highAvailability.synchronousReplicas', r.highAvailability.synchronousReplicas],
      ['highAvailability.durability', r.highAvailability.durability],
      ['highAvailability.failoverDelaySeconds', r.highAvailability.failoverDelaySeconds],
      ['highAvailability.switchoverDelaySeconds', r.highAvailability.switchoverDelaySeconds],
      ['highAvailability.isolationTimeoutSeconds', r.highAvailability.isolationTimeoutSeconds],
      ['backup.enabled', r.backup.enabled],
      ['backup.schedule', r.backup.schedule],
      ['backup.compression.level', r.backup.compression.level],
      ['backup.target', r.backup.target],
      ['backup.archiveTimeoutSeconds', r.backup.archiveTimeoutSeconds],
      ['backup.walBacklogWarningSegments', r.backup.walBacklogWarningSegments],
      ['backup.onClusterDeletion', r.backup.onClusterDeletion],
      ['bootstrap.initdb.database', r.initdb.database],
      ['bootstrap.initdb.owner', r.initdb.owner],
      ['bootstrap.initdb.encoding', r.initdb.encoding],
      ['bootstrap.initdb.locale', r.initdb.locale],
      ['bootstrap.initdb.dataChecksums', r.initdb.dataChecksums],
      ['scheduling.podAntiAffinity', r.scheduling.podAntiAffinity],
      ['scheduling.topologyKey', r.scheduling.topologyKey],
    ];
    for (const [path, value] of published) expect([path, value]).toEqual([path, schemaDefault(path)]);
    // Retention has no schema default (int-or-string); 30 days is documented.
    expect(r.backup.retention).toBe(30);
  });

  it('keeps what the user set, and the fields it does not default', () => {
    const spec: ClusterSpec = {
      ...minimal,
      instances: 3,
      highAvailability: { synchronousCommit: true, durability: 'preferred' },
      backup: { enabled: true, retention: '10 backups', compression: { level: 6 } },
      bootstrap: { initdb: { database: 'shop', secret: { name: 'shop-owner' } } },
      storage: { size: '5Gi', pvcRetentionPolicy: { whenScaled: 'Retain' } },
    };
    const r = resolveSpec(spec);
    expect(r).toMatchObject({ version: '16', instances: 3, storage: { size: '5Gi', pvcRetentionPolicy: { whenScaled: 'Retain', whenDeleted: 'Delete' } } });
    expect(r.highAvailability).toMatchObject({ synchronousCommit: true, durability: 'preferred', enabled: true, synchronousReplicas: 1 });
    expect(r.backup).toMatchObject({ enabled: true, retention: '10 backups', compression: { level: 6 }, schedule: '0 0 * * *' });
    expect(r.initdb).toMatchObject({ database: 'shop', owner: 'app', secret: { name: 'shop-owner' } });
    // The spec itself is not changed.
    expect(spec.highAvailability).toEqual({ synchronousCommit: true, durability: 'preferred' });
  });
});
