import type { V1ConfigMap } from '@kubernetes/client-node';
import { tlsRequired, type PostgreSQLCluster } from '../api/cluster.js';
import { ownedMeta } from './meta.js';
import { names } from '../api/names.js';
import { renderPgHba, renderPostgresqlConf, type ArchiveSettings } from './postgres-config.js';

/** Settings the anomaly corrections raised (status.anomalies), reloaded on every instance. */
function raisedSettings(cluster: PostgreSQLCluster): Record<string, string> {
  const maxWalSize = cluster.status?.anomalies?.maxWalSize?.value;
  return maxWalSize ? { max_wal_size: maxWalSize } : {};
}

/** `archive`: set when the cluster has a backup target (resolveBackupTarget). */
export function configMap(cluster: PostgreSQLCluster, archive?: ArchiveSettings): V1ConfigMap {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: ownedMeta(cluster, names.config(cluster.metadata.name!), 'config'),
    data: { 'postgresql.conf': renderPostgresqlConf(cluster.spec, cluster.status?.streamingReplicas, archive, raisedSettings(cluster)), 'pg_hba.conf': renderPgHba(cluster.spec, tlsRequired(cluster.spec, cluster.status)) },
  };
}
