// Every name the operator derives from a cluster's name, in one place.
export const names = {
  instance: (cluster: string, ordinal: number) => `${cluster}-${ordinal}`,
  /** One StatefulSet per instance, replicas 0/1: its only pod is `<instance>-0`. */
  pod: (instance: string) => `${instance}-0`,
  headless: (cluster: string) => `${cluster}-headless`,
  rw: (cluster: string) => `${cluster}-rw`,
  ro: (cluster: string) => `${cluster}-ro`,
  r: (cluster: string) => `${cluster}-r`,
  config: (cluster: string) => `${cluster}-config`,
  superuserSecret: (cluster: string) => `${cluster}-superuser`,
  replicationSecret: (cluster: string) => `${cluster}-replication`,
  appSecret: (cluster: string) => `${cluster}-app`,
  /** Bearer token of the instance agents' API (the operator is its only client). */
  agentSecret: (cluster: string) => `${cluster}-agent`,
  /** Copy of the operator-wide default store's credentials in the cluster's namespace. */
  backupCredentials: (cluster: string) => `${cluster}-backup-credentials`,
  /** CronJob names may have 52 characters (Job names add 11); cluster names have up to 48. */
  backupCronJob: (cluster: string) => (cluster.length <= 45 ? `${cluster}-backup` : `${cluster}-bk`),
  /** Deletes the archive of a deleted cluster (spec.backup.onClusterDeletion: Delete). */
  purgeJob: (cluster: string) => `${cluster}-purge-backups`,
  /** The Lease naming the primary instance: the source of truth about who is primary. */
  primaryLease: (cluster: string) => `${cluster}-primary`,
  pdb: (cluster: string) => cluster,
  /** The NetworkPolicy of spec.networkPolicy. */
  networkPolicy: (cluster: string) => cluster,
  /** The HorizontalPodAutoscaler of spec.autoscaling. */
  hpa: (cluster: string) => cluster,
  serviceAccount: (cluster: string) => cluster,
  role: (cluster: string) => cluster,
  dataVolume: 'pgdata',
  walVolume: 'pgwal',
};

/** The ordinal of an instance name of this cluster, or undefined for a foreign name. */
export function instanceOrdinal(cluster: string, instance: string): number | undefined {
  const prefix = `${cluster}-`;
  if (!instance.startsWith(prefix)) return undefined;
  const rest = instance.slice(prefix.length);
  return /^[1-9][0-9]*$/.test(rest) ? Number(rest) : undefined;
}
