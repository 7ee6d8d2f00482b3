// A cluster's spec with every default applied: reconcilers read ctx.spec (resolved once per pass)
// and builders `specOf(cluster)`, instead of repeating `spec.x ?? DEFAULTS.x` at each use.
// The apiserver applies the schema's defaults only where the parent object is given (an absent
// `highAvailability` gets no `enabled`), so the operator must fill them in itself.
import type { ClusterSpec, PostgreSQLCluster } from './cluster.js';
import { DEFAULTS } from './defaults.js';

/** The given object over its defaults: a field the user left out (undefined) takes the default. */
function withDefaults<T extends object, D extends object>(given: T | undefined, defaults: D): Omit<T, keyof D> & { [K in keyof D]: K extends keyof T ? Exclude<T[K], undefined> | D[K] : D[K] } {
  const set = Object.fromEntries(Object.entries(given ?? {}).filter(([, v]) => v !== undefined));
  return { ...defaults, ...set } as never;
}

export function resolveSpec(spec: ClusterSpec) {
  const backup = withDefaults(spec.backup, {
    enabled: DEFAULTS.backupEnabled as boolean,
    schedule: DEFAULTS.backupSchedule as string,
    retention: DEFAULTS.retentionDays as number | string,
    target: DEFAULTS.backupTarget,
    archiveTimeoutSeconds: DEFAULTS.archiveTimeoutSeconds as number,
    walBacklogWarningSegments: DEFAULTS.walBacklogWarningSegments as number,
    onClusterDeletion: DEFAULTS.onClusterDeletion,
  });
  return {
    ...spec,
    ...withDefaults(
      { instances: spec.instances, imagePullPolicy: spec.imagePullPolicy, stopDelaySeconds: spec.stopDelaySeconds, primaryUpdateMethod: spec.primaryUpdateMethod, primaryUpdateStrategy: spec.primaryUpdateStrategy },
      {
        instances: DEFAULTS.instances as number,
        imagePullPolicy: DEFAULTS.imagePullPolicy,
        stopDelaySeconds: DEFAULTS.stopDelaySeconds as number,
        primaryUpdateMethod: DEFAULTS.primaryUpdateMethod,
        primaryUpdateStrategy: DEFAULTS.primaryUpdateStrategy,
      },
    ),
    storage: {
      ...spec.storage,
      pvcRetentionPolicy: withDefaults(spec.storage.pvcRetentionPolicy, { whenDeleted: DEFAULTS.pvcWhenDeleted, whenScaled: DEFAULTS.pvcWhenScaled }),
    },
    highAvailability: withDefaults(spec.highAvailability, {
      enabled: DEFAULTS.haEnabled as boolean,
      synchronousCommit: DEFAULTS.synchronousCommit as boolean,
      synchronousReplicas: DEFAULTS.synchronousReplicas as number,
      durability: DEFAULTS.durability,
      failoverDelaySeconds: DEFAULTS.failoverDelaySeconds as number,
      switchoverDelaySeconds: DEFAULTS.switchoverDelaySeconds as number,
      isolationTimeoutSeconds: DEFAULTS.isolationTimeoutSeconds as number,
    }),
    backup: { ...backup, compression: withDefaults(spec.backup?.compression, { level: DEFAULTS.compressionLevel as number }) },
    /** bootstrap.initdb with its defaults (also for a cluster that names no bootstrap). */
    initdb: withDefaults(spec.bootstrap?.initdb, {
      database: DEFAULTS.initdbDatabase as string,
      owner: DEFAULTS.initdbOwner as string,
      encoding: DEFAULTS.initdbEncoding as string,
      locale: DEFAULTS.initdbLocale as string,
      dataChecksums: DEFAULTS.dataChecksums as boolean,
    }),
    monitoring: withDefaults(spec.monitoring, { enabled: DEFAULTS.monitoringEnabled as boolean }),
    majorUpgrade: withDefaults(spec.majorUpgrade, { mode: DEFAULTS.majorUpgradeMode }),
    scheduling: withDefaults(spec.scheduling, { podAntiAffinity: DEFAULTS.podAntiAffinity, topologyKey: DEFAULTS.topologyKey as string }),
  };
}

export type ResolvedSpec = ReturnType<typeof resolveSpec>;

/** The resolved spec of a cluster (cheap: a few spreads; reconcilers get it once per pass as ctx.spec). */
export function specOf(cluster: Pick<PostgreSQLCluster, 'spec'>): ResolvedSpec {
  return resolveSpec(cluster.spec);
}
