// A cluster's spec with every default applied: reconcilers read ctx.spec (resolved once per pass)
// and builders `specOf(cluster)`, instead of repeating `spec.x ?? DEFAULTS.x` at each use.
// The apiserver applies the schema's defaults only where the parent object is given (an absent
// `highAvailability` gets no `enabled`), so the operator must fill them in itself.
import type { ClusterSpec, PostgreSQLCluster } from './cluster.js';
import { DEFAULTS } from './defaults.js';

export function resolveSpec(spec: ClusterSpec) {
  const ha = spec.highAvailability ?? {};
  const backup = spec.backup ?? {};
  const initdb = spec.bootstrap?.initdb ?? {};
  const scheduling = spec.scheduling ?? {};
  return {
    ...spec,
    instances: spec.instances ?? DEFAULTS.instances,
    imagePullPolicy: spec.imagePullPolicy ?? DEFAULTS.imagePullPolicy,
    stopDelaySeconds: spec.stopDelaySeconds ?? DEFAULTS.stopDelaySeconds,
    storage: {
      ...spec.storage,
      pvcRetentionPolicy: {
        whenDeleted: spec.storage.pvcRetentionPolicy?.whenDeleted ?? DEFAULTS.pvcWhenDeleted,
        whenScaled: spec.storage.pvcRetentionPolicy?.whenScaled ?? DEFAULTS.pvcWhenScaled,
      },
    },
    highAvailability: {
      ...ha,
      enabled: ha.enabled ?? DEFAULTS.haEnabled,
      synchronousCommit: ha.synchronousCommit ?? DEFAULTS.synchronousCommit,
      synchronousReplicas: ha.synchronousReplicas ?? DEFAULTS.synchronousReplicas,
      durability: ha.durability ?? DEFAULTS.durability,
      failoverDelaySeconds: ha.failoverDelaySeconds ?? DEFAULTS.failoverDelaySeconds,
      switchoverDelaySeconds: ha.switchoverDelaySeconds ?? DEFAULTS.switchoverDelaySeconds,
      isolationTimeoutSeconds: ha.isolationTimeoutSeconds ?? DEFAULTS.isolationTimeoutSeconds,
    },
    backup: {
      ...backup,
      enabled: backup.enabled ?? DEFAULTS.backupEnabled,
      schedule: backup.schedule ?? DEFAULTS.backupSchedule,
      retention: backup.retention ?? DEFAULTS.retentionDays,
      compression: { level: backup.compression?.level ?? DEFAULTS.compressionLevel },
      target: backup.target ?? DEFAULTS.backupTarget,
      archiveTimeoutSeconds: backup.archiveTimeoutSeconds ?? DEFAULTS.archiveTimeoutSeconds,
      walBacklogWarningSegments: backup.walBacklogWarningSegments ?? DEFAULTS.walBacklogWarningSegments,
      onClusterDeletion: backup.onClusterDeletion ?? DEFAULTS.onClusterDeletion,
    },
    /** bootstrap.initdb with its defaults (also for a cluster that names no bootstrap). */
    initdb: {
      ...initdb,
      database: initdb.database ?? DEFAULTS.initdbDatabase,
      owner: initdb.owner ?? DEFAULTS.initdbOwner,
      encoding: initdb.encoding ?? DEFAULTS.initdbEncoding,
      locale: initdb.locale ?? DEFAULTS.initdbLocale,
      dataChecksums: initdb.dataChecksums ?? DEFAULTS.dataChecksums,
    },
    scheduling: {
      ...scheduling,
      podAntiAffinity: scheduling.podAntiAffinity ?? DEFAULTS.podAntiAffinity,
      topologyKey: scheduling.topologyKey ?? DEFAULTS.topologyKey,
    },
  };
}

export type ResolvedSpec = ReturnType<typeof resolveSpec>;

/** The resolved spec of a cluster (cheap: a few spreads; reconcilers get it once per pass as ctx.spec). */
export function specOf(cluster: Pick<PostgreSQLCluster, 'spec'>): ResolvedSpec {
  return resolveSpec(cluster.spec);
}
