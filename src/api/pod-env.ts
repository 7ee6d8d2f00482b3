// The environment variables the operator sets on instance pods and backup Jobs and the programs
// in them read: one list, so a rename cannot leave one side behind.
export const POD_ENV = {
  /** the PostgreSQLCluster the pod belongs to */
  cluster: 'PGPILOT_CLUSTER',
  /** the instance name (its StatefulSet) */
  instance: 'PGPILOT_INSTANCE',
  /** the namespace (downward API) */
  namespace: 'PGPILOT_NAMESPACE',
  /** the pod IP PostgreSQL and the agent listen on (downward API) */
  podIp: 'PGPILOT_POD_IP',
  /** postgresql.conf and pg_hba.conf from the cluster ConfigMap */
  configDir: 'PGPILOT_CONFIG_DIR',
  /** mounted credentials: superuser/, replication/, app/, agent/token */
  secretsDir: 'PGPILOT_SECRETS_DIR',
  /** pg_wal on its own volume */
  walDir: 'PGPILOT_WAL_DIR',
  /** application database of a new cluster */
  initdbDatabase: 'PGPILOT_INITDB_DATABASE',
  /** its owner */
  initdbOwner: 'PGPILOT_INITDB_OWNER',
  /** initdb --encoding */
  initdbEncoding: 'PGPILOT_INITDB_ENCODING',
  /** initdb --locale */
  initdbLocale: 'PGPILOT_INITDB_LOCALE',
  /** initdb --data-checksums (true|false) */
  initdbDataChecksums: 'PGPILOT_INITDB_DATA_CHECKSUMS',
  /** shutdown budget after SIGTERM */
  stopTimeoutSeconds: 'PGPILOT_STOP_TIMEOUT_SECONDS',
  /** the agent API port */
  agentPort: 'PGPILOT_AGENT_PORT',
  /**
   * directory with the server certificate (tls.crt, tls.key, ca.crt): the agent API then serves
   * HTTPS on agentPort and answers /v1/* only to a client certificate of that CA for
   * AGENT_CLIENT_CN (docs/tls.md). Unset: plain HTTP (a pod made before agent TLS; tests).
   */
  agentTlsDir: 'PGPILOT_AGENT_TLS_DIR',
  /** Unix socket the agent API also listens on, for programs inside the pod (the kubectl plugin's status) */
  agentSocket: 'PGPILOT_AGENT_SOCKET',
  /** the PostgreSQL port */
  pgPort: 'PGPILOT_PG_PORT',
  /** directory of the PostgreSQL binaries */
  pgBin: 'PGPILOT_PG_BIN',
  /** unix socket directory */
  socketDir: 'PGPILOT_SOCKET_DIR',
  /** true|false: the agent serves GET /metrics (spec.monitoring.enabled) */
  metricsEnabled: 'PGPILOT_METRICS_ENABLED',
  /** the exporter's port */
  metricsPort: 'PGPILOT_METRICS_PORT',
  /**
   * the exporter's own queries (spec.monitoring.customQueries): comma-separated absolute paths
   * <dir>/<ConfigMap name>/<key> of the mounted files (a missing one: ConfigMap or key missing)
   */
  customQueries: 'PGPILOT_CUSTOM_QUERIES',
  /**
   * the cluster's CA certificate (PEM file): the program's own PostgreSQL connections use TLS and
   * verify the server certificate against it and names.tlsServerName (docs/tls.md). Unset: plain TCP.
   */
  tlsCaFile: 'PGPILOT_TLS_CA_FILE',
  /** the name the server certificate must carry for those connections (names.tlsServerName) */
  tlsServerName: 'PGPILOT_TLS_SERVER_NAME',
  /** directory with the replication user's client certificate (tls.crt, tls.key): replication logs in with it */
  tlsClientDir: 'PGPILOT_TLS_CLIENT_DIR',
  /** log level */
  logLevel: 'PGPILOT_LOG_LEVEL',
  /** ArchiveLocation JSON: where WAL and base backups go */
  backupLocation: 'PGPILOT_BACKUP_LOCATION',
  /** gzip level 1-9 */
  backupCompressionLevel: 'PGPILOT_BACKUP_COMPRESSION_LEVEL',
  /** retention of the backup Job */
  backupRetention: 'PGPILOT_BACKUP_RETENTION',
  /** the Job running a backup (downward API) */
  jobName: 'PGPILOT_JOB_NAME',
  /** ArchiveLocation JSON a restore bootstrap reads */
  restoreSource: 'PGPILOT_RESTORE_SOURCE',
  /** base backup to restore */
  restoreBackupId: 'PGPILOT_RESTORE_BACKUP_ID',
  /** RecoveryTarget JSON */
  restoreTarget: 'PGPILOT_RESTORE_TARGET',
  /** major upgrade Jobs: the folder the old image's init container copied its PostgreSQL into (upgrade-layout.ts) */
  oldInstall: 'PGPILOT_OLD_INSTALL',
  /** major upgrade Jobs: link | copy (pg_upgrade --link or --copy) */
  upgradeMode: 'PGPILOT_UPGRADE_MODE',
  /** major upgrade check Job: host:port of the running primary (the rw Service) */
  upgradeSource: 'PGPILOT_UPGRADE_SOURCE',
  /** major upgrade check Job: scratch folder (an emptyDir) for the schema copy */
  upgradeWorkDir: 'PGPILOT_UPGRADE_WORK_DIR',
} as const;
