// The PostgreSQLCluster API: one TypeBox definition gives the TypeScript types (Static<>) and the
// CRD's openAPIV3Schema (src/api/crd.ts renders it into crds/). Edit here, then `npm run gen`.
import { Type, type Static } from '@sinclair/typebox';
import type { V1ObjectMeta } from '@kubernetes/client-node';
import { Obj, StringEnum, StringMap, QuantityMap, cel, QUANTITY_PATTERN } from './schema-helpers.js';

/** Defaults live here once: the schema publishes them and the builders fall back on them. */
export const DEFAULTS = {
  instances: 1,
  backupEnabled: false,
  backupSchedule: '0 0 * * *',
  retentionDays: 30,
  haEnabled: true,
  synchronousCommit: false,
  synchronousReplicas: 1,
  durability: 'required',
  failoverDelaySeconds: 0,
  switchoverDelaySeconds: 60,
  isolationTimeoutSeconds: 30,
  podAntiAffinity: 'preferred',
  topologyKey: 'kubernetes.io/hostname',
  imagePullPolicy: 'IfNotPresent',
  pvcWhenDeleted: 'Delete',
  pvcWhenScaled: 'Delete',
  initdbDatabase: 'app',
  initdbOwner: 'app',
  initdbEncoding: 'UTF8',
  initdbLocale: 'C.UTF-8',
  dataChecksums: true,
  monitoringEnabled: true,
  stopDelaySeconds: 60,
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
  recoveryInclusive: true,
} as const;

export const SUPPORTED_MAJORS = [13, 14, 15, 16, 17, 18] as const;
const VERSION_PATTERN = '^(1[3-8])([.](0|[1-9][0-9]?))?$';

/**
 * Parameters the operator and the instance agent own: setting them would break replication,
 * failover or the pod's networking, so the API refuses them with a message that says why.
 */
export const OPERATOR_MANAGED_PARAMETERS = [
  'listen_addresses',
  'port',
  'unix_socket_directories',
  'data_directory',
  'hba_file',
  'ident_file',
  'config_file',
  'cluster_name',
  'primary_conninfo',
  'primary_slot_name',
  'promote_trigger_file',
  'recovery_target',
  'recovery_target_lsn',
  'recovery_target_name',
  'recovery_target_time',
  'recovery_target_xid',
  'restore_command',
  'archive_command',
  'archive_mode',
  'archive_timeout',
  'hot_standby',
  'synchronous_standby_names',
  'wal_level',
  'wal_log_hints',
  // The agent reads the server's log from stderr.
  'logging_collector',
  'log_destination',
] as const;

/** A PostgreSQL parameter name (extensions' parameters carry a dot: pg_stat_statements.max). */
export const PARAMETER_NAME_PATTERN = '^[a-z_][a-z0-9_]*([.][a-z_][a-z0-9_]*)?$';

const celStringList = (items: readonly string[]) => `[${items.map((i) => `'${i}'`).join(', ')}]`;

const StorageSize = Type.String({
  description: 'Size of the volume, a Kubernetes quantity such as "100Gi". May grow later (volume expansion) but never shrink.',
  maxLength: 32,
  pattern: QUANTITY_PATTERN,
  ...cel(
    { rule: 'isQuantity(self) && quantity(self).isGreaterThan(quantity("0"))', message: 'must be a positive Kubernetes quantity such as "100Gi"' },
    {
      rule: '!quantity(self).isLessThan(quantity(oldSelf))',
      message: 'may grow but never shrink: PostgreSQL volumes cannot be made smaller in place (create a new cluster from a backup instead)',
    },
  ),
});

const PvcRetentionPolicy = Obj('What happens to the instances\' PersistentVolumeClaims when the cluster is deleted or scaled down.', {
  whenDeleted: Type.Optional(
    StringEnum(['Retain', 'Delete'] as const, {
      description: 'Delete (default): claims are removed with the cluster (its backups stay in object storage). Retain: claims outlive the cluster.',
      default: DEFAULTS.pvcWhenDeleted,
    }),
  ),
  whenScaled: Type.Optional(
    StringEnum(['Retain', 'Delete'] as const, {
      description: 'Delete (default): the claim of a removed instance is removed. Retain: it is kept, and reused if the instance comes back.',
      default: DEFAULTS.pvcWhenScaled,
    }),
  ),
});

const Storage = (what: string) =>
  Obj(`The ${what} volume of every instance.`, {
    size: StorageSize,
    storageClass: Type.Optional(
      Type.String({ description: 'StorageClass of the claims; the cluster default when omitted. It must allow volume expansion for size increases.', maxLength: 253 }),
    ),
  });

const ResourceRequirements = Obj('CPU and memory for every PostgreSQL container (also used to tune shared_buffers and friends).', {
  requests: Type.Optional(QuantityMap('Minimum resources, e.g. {cpu: "2", memory: "4Gi"}.')),
  limits: Type.Optional(QuantityMap('Maximum resources, e.g. {cpu: "4", memory: "8Gi"}.')),
}, {
  // cpu and memory by name: iterating every key exceeds the apiserver's CEL cost budget.
  ...cel(
    ...(['cpu', 'memory'] as const).map((r) => ({
      rule: `!has(self.requests) || !has(self.limits) || !('${r}' in self.requests) || !('${r}' in self.limits) || !quantity(string(self.requests['${r}'])).isGreaterThan(quantity(string(self.limits['${r}'])))`,
      message: `requests.${r} must be less than or equal to limits.${r}`,
    })),
  ),
});

/** A path inside a store: segments of safe key characters, no leading or trailing "/", none starting with "." (no "." or ".."). */
export const STORE_PATH_PATTERN = '^[A-Za-z0-9_-][A-Za-z0-9._-]*(/[A-Za-z0-9_-][A-Za-z0-9._-]*)*$';
const STORE_PATH_RULE = 'segments of letters, digits, ".", "_" and "-" separated by "/", with no leading or trailing "/" and no segment starting with "."';

const SECRET_KEY_PATTERN = '^[-._a-zA-Z0-9]+$';
const DNS_SUBDOMAIN_PATTERN = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$';

const StorePath = (what: string, options: Record<string, unknown> = {}) =>
  Type.String({ description: `${what} Path syntax: ${STORE_PATH_RULE}.`, minLength: 1, maxLength: 512, pattern: STORE_PATH_PATTERN, ...options });

export const S3CredentialsSchema = Obj(
  'The Secret with the access key of the S3 store, in the cluster\'s namespace; pods read it through environment variables (secretKeyRef), the operator never reads it.',
  {
    secretName: Type.String({ description: 'Name of the Secret.', minLength: 1, maxLength: 253, pattern: DNS_SUBDOMAIN_PATTERN }),
    accessKeyIdKey: Type.Optional(
      Type.String({ description: 'Key of the access key id in the Secret.', default: DEFAULTS.accessKeyIdKey, minLength: 1, maxLength: 253, pattern: SECRET_KEY_PATTERN }),
    ),
    secretAccessKeyKey: Type.Optional(
      Type.String({ description: 'Key of the secret access key in the Secret.', default: DEFAULTS.secretAccessKeyKey, minLength: 1, maxLength: 253, pattern: SECRET_KEY_PATTERN }),
    ),
  },
);

/** An S3 (or S3-compatible) bucket: spec.backup.s3, a recovery source, the operator-wide default store. */
export const S3TargetSchema = Obj('An S3 or S3-compatible object store (AWS S3, MinIO, Ceph RGW, ...).', {
  endpoint: Type.Optional(
    Type.String({ description: 'URL of an S3-compatible server, e.g. "https://minio.storage:9000"; omit for AWS S3.', minLength: 8, maxLength: 2048, pattern: '^https?://[^\\s]+$' }),
  ),
  bucket: Type.String({
    description: 'Bucket name (3–63 characters: lowercase letters, digits, "." and "-", starting and ending with a letter or digit).',
    minLength: 3,
    maxLength: 63,
    pattern: '^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$',
  }),
  path: Type.Optional(StorePath('Prefix of this operator\'s objects in the bucket; a cluster\'s archive sits at <path>/<namespace>/<cluster>.', { default: DEFAULTS.backupPath })),
  region: Type.Optional(Type.String({ description: 'Region of the bucket (S3-compatible servers usually accept any).', default: DEFAULTS.region, minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_-]+$' })),
  forcePathStyle: Type.Optional(
    Type.Boolean({ description: 'Address the bucket as <endpoint>/<bucket> rather than <bucket>.<endpoint> (most S3-compatible servers need this).', default: false }),
  ),
  checksums: Type.Optional(
    StringEnum(['WHEN_SUPPORTED', 'WHEN_REQUIRED'] as const, {
      description:
        'When request and response checksums are computed and validated. WHEN_SUPPORTED (default) always; WHEN_REQUIRED only where S3 requires them, for S3-compatible servers such as s3rver or older MinIO that mishandle streamed checksums (pgpilot still checks a sha256 of every object).',
      default: DEFAULTS.checksums,
    }),
  ),
  insecureSkipTlsVerify: Type.Optional(
    Type.Boolean({ description: 'Do not verify the server\'s TLS certificate. For self-signed test servers only.', default: false }),
  ),
  serverSideEncryption: Type.Optional(
    Obj(
      'Server-side encryption of every object written.',
      {
        algorithm: StringEnum(['AES256', 'aws:kms'] as const, { description: 'AES256 (S3-managed keys) or aws:kms (a KMS key).' }),
        kmsKeyId: Type.Optional(Type.String({ description: 'KMS key id or ARN, with algorithm aws:kms; the bucket\'s default KMS key when omitted.', minLength: 1, maxLength: 2048 })),
      },
      {
        ...cel({
          rule: "!has(self.kmsKeyId) || self.algorithm == 'aws:kms'",
          message: 'kmsKeyId is only allowed with algorithm aws:kms',
          fieldPath: '.kmsKeyId',
        }),
      },
    ),
  ),
  credentials: S3CredentialsSchema,
});

/** A ReadWriteMany PersistentVolumeClaim used as the store. */
export const VolumeTargetSchema = Obj(
  'A ReadWriteMany PersistentVolumeClaim used as the store (NFS, CephFS, ...): mounted by the instances (WAL archiving) and by backup and restore pods.',
  {
    claimName: Type.String({
      description: 'Name of the PersistentVolumeClaim, in the cluster\'s namespace; it must be ReadWriteMany.',
      minLength: 1,
      maxLength: 253,
      pattern: DNS_SUBDOMAIN_PATTERN,
    }),
    path: Type.Optional(StorePath('Directory of this operator\'s files on the volume; a cluster\'s archive sits at <path>/<namespace>/<cluster>.', { default: DEFAULTS.backupPath })),
  },
);

/** Which instance base backups are taken from (spec.backup.target, PostgreSQLBackup spec.target). */
export const BACKUP_TARGETS = ['prefer-standby', 'primary'] as const;
export const BackupTargetSchema = (description: string, options: Record<string, unknown> = {}) =>
  StringEnum(BACKUP_TARGETS, { description, ...options });

export const BackupSpecSchema = Obj('Scheduled base backups and continuous WAL archiving.', {
  enabled: Type.Optional(Type.Boolean({ description: 'Take scheduled base backups and archive WAL.', default: DEFAULTS.backupEnabled })),
  schedule: Type.Optional(
    Type.String({
      description: 'Cron schedule of base backups, five fields (minute hour day-of-month month day-of-week) or a macro such as @daily. Times are UTC.',
      default: DEFAULTS.backupSchedule,
      maxLength: 128,
      pattern:
        '^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|([0-9*,/?LW#A-Za-z-]+( +[0-9*,/?LW#A-Za-z-]+){4,5}))$',
    }),
  ),
  retention: Type.Optional(
    Type.Unsafe<number | string>({
      description:
        'How long base backups are kept: an integer number of days (7), a duration ("36h", "7d", "4w"), or a count of backups ("10 backups"). WAL that no kept backup needs is removed with them.',
      'x-kubernetes-int-or-string': true,
      anyOf: [{ type: 'integer' }, { type: 'string' }],
      ...cel({
        rule: "type(self) == int ? (self >= 1 && self <= 3650) : (size(self) <= 16 && self.matches('^[1-9][0-9]{0,4}(h|d|w| backups?)$'))",
        message: 'must be a number of days from 1 to 3650, a duration such as "36h", "7d" or "4w", or a count such as "10 backups"',
      }),
    }),
  ),
  s3: Type.Optional(S3TargetSchema),
  volume: Type.Optional(VolumeTargetSchema),
  compression: Type.Optional(
    Obj('Compression of base backups and archived WAL.', {
      level: Type.Optional(Type.Integer({ description: 'gzip level from 1 to 9; 1 is fast and is the default.', minimum: 1, maximum: 9, default: DEFAULTS.compressionLevel })),
    }),
  ),
  target: Type.Optional(
    BackupTargetSchema(
      'Which instance base backups are taken from. prefer-standby (default): a healthy streaming replica when there is one, else the primary. primary: always the primary.',
      { default: DEFAULTS.backupTarget },
    ),
  ),
  archiveTimeoutSeconds: Type.Optional(
    Type.Integer({
      description:
        'Bound on how old the newest archived WAL may be under load, in seconds (PostgreSQL\'s archive_timeout: a partly filled segment is switched and archived after this long). Idle servers do not switch segments.',
      minimum: 1,
      maximum: 3600,
      default: DEFAULTS.archiveTimeoutSeconds,
    }),
  ),
  walBacklogWarningSegments: Type.Optional(
    Type.Integer({
      description: 'When this many completed WAL segments wait to be archived, the operator records an Event and sets the ContinuousArchiving condition to say so.',
      minimum: 1,
      maximum: 100000,
      default: DEFAULTS.walBacklogWarningSegments,
    }),
  ),
  onClusterDeletion: Type.Optional(
    StringEnum(['Retain', 'Delete'] as const, {
      description: 'Retain (default): backups and WAL stay in the store after the cluster is deleted, for a later recovery. Delete: they are removed with the cluster.',
      default: DEFAULTS.onClusterDeletion,
    }),
  ),
}, {
  ...cel({
    rule: '!(has(self.s3) && has(self.volume))',
    message: 'backup.s3 and backup.volume cannot both be set: choose one store (or neither, for the operator-wide default store)',
  }),
});

const HighAvailability = Obj('Replication, failover and durability.', {
  enabled: Type.Optional(Type.Boolean({ description: 'Fail over automatically to a replica when the primary is lost.', default: DEFAULTS.haEnabled })),
  synchronousCommit: Type.Optional(
    Type.Boolean({ description: 'Acknowledge a commit only once synchronousReplicas replicas have it (no committed write is lost on failover).', default: DEFAULTS.synchronousCommit }),
  ),
  synchronousReplicas: Type.Optional(
    Type.Integer({ description: 'How many replicas must confirm each commit when synchronousCommit is on (a quorum: ANY n).', minimum: 1, maximum: 8, default: DEFAULTS.synchronousReplicas }),
  ),
  failoverDelaySeconds: Type.Optional(
    Type.Integer({
      description: 'Seconds to wait after the primary is confirmed failed before promoting a replica (0: at once).',
      minimum: 0,
      maximum: 3600,
      default: DEFAULTS.failoverDelaySeconds,
    }),
  ),
  switchoverDelaySeconds: Type.Optional(
    Type.Integer({
      description: 'Seconds the old primary gets to stop cleanly during a switchover (a fast shutdown: checkpoint, all WAL shipped to the replicas); past it the stop becomes immediate and the primary role goes to the replica that received the most WAL.',
      minimum: 1,
      maximum: 3600,
      default: DEFAULTS.switchoverDelaySeconds,
    }),
  ),
  isolationTimeoutSeconds: Type.Optional(
    Type.Integer({
      description:
        'Self-isolation: a primary that has heard from no operator and has no streaming replica for this many seconds restarts read-only by itself, in case it is on the wrong side of a network partition (0: never). Clusters of one instance, or with enabled: false, never isolate.',
      minimum: 0,
      maximum: 3600,
      default: DEFAULTS.isolationTimeoutSeconds,
    }),
  ),
  durability: Type.Optional(
    StringEnum(['required', 'preferred'] as const, {
      description: 'required: commits wait while too few synchronous replicas are up. preferred: the primary keeps accepting writes with fewer, and catches up when they return.',
      default: DEFAULTS.durability,
    }),
  ),
});

const Toleration = Obj('A toleration, as in a Pod spec.', {
  key: Type.Optional(Type.String({ description: 'Taint key; empty with operator Exists matches every taint.', maxLength: 317 })),
  operator: Type.Optional(StringEnum(['Exists', 'Equal'] as const, { description: 'Exists or Equal (default).' })),
  value: Type.Optional(Type.String({ description: 'Taint value for operator Equal.', maxLength: 63 })),
  effect: Type.Optional(
    StringEnum(['NoSchedule', 'PreferNoSchedule', 'NoExecute'] as const, { description: 'Taint effect to tolerate; empty means all.' }),
  ),
  tolerationSeconds: Type.Optional(Type.Integer({ description: 'For NoExecute: how long the pod stays bound after the taint appears.', minimum: 0 })),
});

const TopologySpread = Obj('Spread instances over a topology domain; the operator adds the label selector of this cluster.', {
  maxSkew: Type.Integer({ description: 'Largest allowed difference in instance count between domains.', minimum: 1 }),
  topologyKey: Type.String({ description: 'Node label that defines the domain, e.g. topology.kubernetes.io/zone.', minLength: 1, maxLength: 317 }),
  whenUnsatisfiable: Type.Optional(
    StringEnum(['DoNotSchedule', 'ScheduleAnyway'] as const, { description: 'DoNotSchedule (default) or ScheduleAnyway.' }),
  ),
});

const Scheduling = Obj('Where instances may run.', {
  podAntiAffinity: Type.Optional(
    StringEnum(['preferred', 'required', 'disabled'] as const, {
      description: 'Keep instances of this cluster apart on topologyKey: preferred (default), required, or disabled.',
      default: DEFAULTS.podAntiAffinity,
    }),
  ),
  topologyKey: Type.Optional(Type.String({ description: 'Node label for the anti-affinity rule.', default: DEFAULTS.topologyKey, maxLength: 317 })),
  nodeSelector: Type.Optional(StringMap('Node labels an instance\'s node must have.', { maxProperties: 32 })),
  tolerations: Type.Optional(Type.Array(Toleration, { description: 'Taints the instances tolerate.', maxItems: 32 })),
  topologySpreadConstraints: Type.Optional(Type.Array(TopologySpread, { description: 'Spread constraints for the instances.', maxItems: 8 })),
  priorityClassName: Type.Optional(Type.String({ description: 'PriorityClass of the instance pods.', maxLength: 253 })),
});

const PostgresConfig = Obj('PostgreSQL server configuration.', {
  parameters: Type.Optional(
    StringMap(
      'postgresql.conf parameters, e.g. {max_connections: "200"}; they override the operator\'s defaults (which are tuned from resources). Parameters the operator manages (replication, archiving, networking, logging to stderr) are refused.',
      {
        maxProperties: 256,
        // One line per value in postgresql.conf.
        additionalProperties: { type: 'string', maxLength: 4096, pattern: '^[^\\n\\r]*$' },
        ...cel(
          {
            rule: `self.all(k, !(k in ${celStringList(OPERATOR_MANAGED_PARAMETERS)}))`,
            message: `may not set parameters the operator manages: ${OPERATOR_MANAGED_PARAMETERS.join(', ')}`,
          },
          { rule: `self.all(k, k.matches('${PARAMETER_NAME_PATTERN}'))`, message: 'parameter names are lowercase letters, digits, "_" and "." (e.g. max_connections, pg_stat_statements.max)' },
        ),
      },
    ),
  ),
  pg_hba: Type.Optional(
    Type.Array(Type.String({ maxLength: 512, minLength: 1, pattern: '^(local|host|hostssl|hostnossl|hostgssenc|hostnogssenc)\\s' }), {
      description: 'Extra pg_hba.conf lines, placed before the operator\'s own rules (local peer access, replication and every user with scram-sha-256); only the agent\'s local access as postgres comes first.',
      maxItems: 128,
    }),
  ),
});

const SecretRef = Obj('A reference to a Secret in the cluster\'s namespace.', {
  name: Type.String({ description: 'Name of the Secret.', minLength: 1, maxLength: 253 }),
});

/** Where recovery stops (spec.bootstrap.recovery.target); without one it replays all archived WAL. */
export const RecoveryTargetSchema = Obj(
  'Point in time to recover to: exactly one of time, lsn, xid, name or immediate. Without a target, recovery replays to the end of the archived WAL.',
  {
    time: Type.Optional(Type.String({ description: 'A time in RFC 3339, e.g. "2026-11-25T14:03:00Z" (recovery_target_time).', format: 'date-time', maxLength: 64 })),
    lsn: Type.Optional(Type.String({ description: 'A WAL location, e.g. "0/3000060" (recovery_target_lsn).', maxLength: 17, pattern: '^[0-9A-Fa-f]{1,8}/[0-9A-Fa-f]{1,8}$' })),
    xid: Type.Optional(Type.String({ description: 'A transaction id, in digits (recovery_target_xid).', minLength: 1, maxLength: 20, pattern: '^[0-9]+$' })),
    name: Type.Optional(Type.String({ description: 'A restore point created with pg_create_restore_point() (recovery_target_name).', minLength: 1, maxLength: 63 })),
    immediate: Type.Optional(
      Type.Boolean({
        description: 'true: end recovery as soon as the base backup is consistent (recovery_target = immediate). Only true may be given.',
        ...cel({ rule: 'self', message: 'immediate may only be true (omit it to recover to time, lsn, xid or name instead)' }),
      }),
    ),
    inclusive: Type.Optional(
      Type.Boolean({ description: 'true (default): stop just after the target; false: just before it (recovery_target_inclusive).', default: DEFAULTS.recoveryInclusive }),
    ),
  },
  {
    ...cel({
      rule: '[has(self.time), has(self.lsn), has(self.xid), has(self.name), has(self.immediate)].filter(x, x).size() == 1',
      message: 'recovery.target must set exactly one of time, lsn, xid, name or immediate',
    }),
  },
);

export const RecoverySourceSchema = Obj(
  'The archive of a cluster, which may no longer exist: exactly one of s3 or volume, and the archive\'s path in it.',
  {
    s3: Type.Optional(S3TargetSchema),
    volume: Type.Optional(VolumeTargetSchema),
    path: StorePath(
      'The cluster\'s archive path inside the store, in full (the store\'s own path prefix is not added), e.g. "pgpilot/production/prod-db": <prefix>/<namespace>/<cluster> of the cluster that wrote it.',
    ),
  },
  {
    ...cel({
      rule: 'has(self.s3) != has(self.volume)',
      message: 'recovery.source must set exactly one of s3 or volume',
    }),
  },
);

/** spec.bootstrap.recovery: create the cluster from a base backup plus archived WAL. */
export const RecoverySchema = Obj(
  'Create the cluster by restoring a base backup and replaying archived WAL: from a PostgreSQLBackup (backup) or from an archive (source), exactly one.',
  {
    backup: Type.Optional(
      Obj('A completed PostgreSQLBackup in this namespace to restore.', {
        name: Type.String({ description: 'Name of the PostgreSQLBackup.', minLength: 1, maxLength: 253 }),
      }),
    ),
    source: Type.Optional(RecoverySourceSchema),
    backupId: Type.Optional(
      Type.String({
        description: 'With source: the base backup to restore, by id (its UTC start time, e.g. "20261125T020000Z"). Default: the newest one that ends before the target.',
        maxLength: 16,
        pattern: '^[0-9]{8}T[0-9]{6}Z$',
      }),
    ),
    target: Type.Optional(RecoveryTargetSchema),
  },
  {
    ...cel(
      {
        rule: 'has(self.backup) != has(self.source)',
        message: 'recovery must set exactly one of backup (a PostgreSQLBackup) or source (an archive)',
      },
      {
        rule: '!has(self.backupId) || has(self.source)',
        message: 'recovery.backupId selects a base backup of recovery.source; with recovery.backup the PostgreSQLBackup names it',
        fieldPath: '.backupId',
      },
    ),
  },
);

export const BootstrapSchema = Obj('How a new cluster gets its first data.', {
  initdb: Type.Optional(
    Obj('Create an empty cluster with initdb.', {
      database: Type.Optional(Type.String({ description: 'Application database created at bootstrap.', default: DEFAULTS.initdbDatabase, pattern: '^[a-z_][a-z0-9_]{0,62}$' })),
      owner: Type.Optional(Type.String({ description: 'Owner role of the application database.', default: DEFAULTS.initdbOwner, pattern: '^[a-z_][a-z0-9_]{0,62}$' })),
      secret: Type.Optional(SecretRef),
      encoding: Type.Optional(Type.String({ description: 'Database encoding.', default: DEFAULTS.initdbEncoding, maxLength: 32 })),
      locale: Type.Optional(Type.String({ description: 'Locale (LC_COLLATE and LC_CTYPE).', default: DEFAULTS.initdbLocale, maxLength: 64 })),
      dataChecksums: Type.Optional(Type.Boolean({ description: 'Enable data page checksums (lets pg_rewind work and catches storage corruption).', default: DEFAULTS.dataChecksums })),
    }),
  ),
  recovery: Type.Optional(RecoverySchema),
}, {
  ...cel(
    {
      rule: '!(has(self.initdb) && has(self.recovery))',
      message: 'bootstrap.initdb and bootstrap.recovery cannot both be set: a cluster starts either empty (initdb) or from a backup (recovery)',
    },
    {
      rule: 'self == oldSelf',
      message: 'bootstrap cannot be changed after the cluster is created: it only says how the cluster got its first data (create a new cluster to bootstrap differently)',
    },
  ),
});

export const ClusterSpecSchema = Obj(
  'Desired state of a highly available PostgreSQL cluster.',
  {
    version: Type.String({
      description: `PostgreSQL version to run, "major.minor" or "major" (majors ${SUPPORTED_MAJORS[0]}–${SUPPORTED_MAJORS[SUPPORTED_MAJORS.length - 1]}), e.g. "16.4". Minor changes roll the cluster; a major change is an upgrade.`,
      maxLength: 8,
      ...cel({ rule: `self.matches('${VERSION_PATTERN}')`, message: `must be a PostgreSQL version "major.minor" or "major" with major ${SUPPORTED_MAJORS.join(', ')}, e.g. "16.4"` }),
    }),
    instances: Type.Optional(
      Type.Integer({ description: 'Number of PostgreSQL instances: one primary, the rest streaming replicas.', minimum: 1, maximum: 10, default: DEFAULTS.instances }),
    ),
    primary: Type.Optional(
      Type.String({
        description: 'Instance that should be the primary (e.g. "prod-db-2"). Changing it requests a switchover; leave unset to let the operator choose.',
        maxLength: 63,
        pattern: '^[a-z]([-a-z0-9]*[a-z0-9])?-[1-9][0-9]*$',
      }),
    ),
    imageName: Type.Optional(Type.String({ description: 'Container image for the instances, overriding the operator\'s <repository>:<version>.', maxLength: 512 })),
    imagePullPolicy: Type.Optional(
      StringEnum(['Always', 'IfNotPresent', 'Never'] as const, { description: 'Pull policy of the instance image.', default: DEFAULTS.imagePullPolicy }),
    ),
    imagePullSecrets: Type.Optional(Type.Array(SecretRef, { description: 'Secrets for pulling the instance image.', maxItems: 8 })),
    storage: Obj('Data volume (PGDATA) of every instance.', {
      ...Storage('data').properties,
      pvcRetentionPolicy: Type.Optional(PvcRetentionPolicy),
    }),
    walStorage: Type.Optional(Storage('WAL (pg_wal)')),
    resources: Type.Optional(ResourceRequirements),
    backup: Type.Optional(BackupSpecSchema),
    highAvailability: Type.Optional(HighAvailability),
    postgresql: Type.Optional(PostgresConfig),
    bootstrap: Type.Optional(BootstrapSchema),
    superuserSecret: Type.Optional(
      Obj('A Secret you provide with the postgres superuser\'s password (key "password"); the operator generates one when omitted.', SecretRef.properties),
    ),
    scheduling: Type.Optional(Scheduling),
    monitoring: Type.Optional(
      Obj('Metrics of the instances.', {
        enabled: Type.Optional(Type.Boolean({ description: 'Serve Prometheus metrics on port 9187 of every instance.', default: DEFAULTS.monitoringEnabled })),
      }),
    ),
    stopDelaySeconds: Type.Optional(
      Type.Integer({ description: 'Grace period for a PostgreSQL pod to shut down (smart, then fast) before it is killed.', minimum: 5, maximum: 3600, default: DEFAULTS.stopDelaySeconds }),
    ),
  },
  {
    ...cel(
      {
        rule: '!has(self.highAvailability) || !has(self.highAvailability.synchronousCommit) || !self.highAvailability.synchronousCommit || (has(self.instances) ? self.instances : 1) > (has(self.highAvailability.synchronousReplicas) ? self.highAvailability.synchronousReplicas : 1)',
        message: 'highAvailability.synchronousReplicas must be fewer than instances when synchronousCommit is on (the primary does not count)',
        fieldPath: '.highAvailability.synchronousReplicas',
      },
      {
        rule: 'has(self.walStorage) == has(oldSelf.walStorage)',
        message: 'walStorage cannot be added or removed after the cluster is created: pg_wal cannot move between volumes in place',
        fieldPath: '.walStorage',
      },
      {
        rule: 'has(self.bootstrap) == has(oldSelf.bootstrap)',
        message: 'bootstrap cannot be added or removed after the cluster is created: it only says how the cluster got its first data',
        fieldPath: '.bootstrap',
      },
    ),
  },
);

export const ConditionSchema = Obj('A status condition (metav1.Condition).', {
  type: Type.String({ description: 'Condition type, e.g. Ready.', maxLength: 316 }),
  status: StringEnum(['True', 'False', 'Unknown'] as const, { description: 'True, False or Unknown.' }),
  reason: Type.String({ description: 'Machine-readable CamelCase reason.', maxLength: 1024 }),
  message: Type.String({ description: 'What a person can act on.', maxLength: 32768 }),
  lastTransitionTime: Type.String({ description: 'When status last changed.', format: 'date-time' }),
  observedGeneration: Type.Optional(Type.Integer({ description: 'The generation the condition was computed from.', minimum: 0 })),
});

/** status.archiving: continuous WAL archiving as the primary last reported it. */
export const ArchivingStatusSchema = Obj('Continuous WAL archiving, as the primary last reported it.', {
  lastArchivedWal: Type.Optional(Type.String({ description: 'Newest WAL file archived.' })),
  lastArchivedTime: Type.Optional(Type.String({ description: 'When it was archived.', format: 'date-time' })),
  lastFailedWal: Type.Optional(Type.String({ description: 'Newest WAL file whose archiving failed.' })),
  lastFailureTime: Type.Optional(Type.String({ description: 'When archiving last failed.', format: 'date-time' })),
  lastFailure: Type.Optional(Type.String({ description: 'Why archiving last failed.', maxLength: 32768 })),
  backlogSegments: Type.Optional(Type.Integer({ description: 'Completed WAL segments waiting to be archived.', minimum: 0 })),
  walBytes: Type.Optional(Type.Integer({ description: 'Size of pg_wal on the primary, in bytes.', minimum: 0 })),
  walVolumeUsedPercent: Type.Optional(Type.Integer({ description: 'How full the volume holding pg_wal on the primary is, in percent.', minimum: 0, maximum: 100 })),
});

export const ClusterStatusSchema = Obj('Observed state of the cluster, written by the operator.', {
  phase: Type.Optional(Type.String({ description: 'Summary: Provisioning, Healthy, Degraded, Scaling, or Deleting.' })),
  observedGeneration: Type.Optional(Type.Integer({ description: 'The spec generation this status reflects.' })),
  instances: Type.Optional(Type.Integer({ description: 'Number of instances that exist (scale subresource).' })),
  readyInstances: Type.Optional(Type.Integer({ description: 'Number of instances that are ready.' })),
  streamingReplicas: Type.Optional(Type.Integer({ description: 'Replicas streaming from the primary when last observed (with durability preferred, fewer than synchronousReplicas relaxes synchronous commit).' })),
  selector: Type.Optional(Type.String({ description: 'Label selector of the instance pods (scale subresource).' })),
  instanceNames: Type.Optional(Type.Array(Type.String(), { description: 'Names of the instances, in ordinal order.' })),
  firstReadyTime: Type.Optional(Type.String({ description: 'When every instance was first ready; until then the cluster is Provisioning.', format: 'date-time' })),
  currentPrimary: Type.Optional(Type.String({ description: 'Instance that is the primary now.' })),
  targetPrimary: Type.Optional(Type.String({ description: 'Instance that should be the primary (differs from currentPrimary during failover or switchover).' })),
  version: Type.Optional(Type.String({ description: 'PostgreSQL version the primary reports running (spec.version is the one asked for).' })),
  secrets: Type.Optional(
    Obj('Secrets holding credentials.', {
      superuser: Type.Optional(Type.String({ description: 'Secret with the postgres superuser\'s credentials.' })),
      replication: Type.Optional(Type.String({ description: 'Secret with the replication user\'s credentials.' })),
      app: Type.Optional(Type.String({ description: 'Secret with the application user\'s credentials and connection URI.' })),
    }),
  ),
  recoverySource: Type.Optional(
    Obj('The archive and base backup the cluster was restored from (spec.bootstrap.recovery resolved once; the instances keep using it even if that PostgreSQLBackup is deleted later).', {
      ...RecoverySourceSchema.properties,
      backupId: Type.Optional(Type.String({ description: 'The base backup restored, when one was named.' })),
    }),
  ),
  archivePath: Type.Optional(Type.String({ description: 'Where the WAL and base backups of this cluster go, e.g. "s3://bucket/pgpilot/production/prod-db".' })),
  firstRecoverabilityPoint: Type.Optional(Type.String({ description: 'Earliest time the cluster can be recovered to (the end of the oldest kept base backup).', format: 'date-time' })),
  lastRecoverabilityPoint: Type.Optional(Type.String({ description: 'Latest time the cluster can be recovered to (the newest archived WAL).', format: 'date-time' })),
  lastSuccessfulBackup: Type.Optional(Type.String({ description: 'When the newest completed base backup ended.', format: 'date-time' })),
  lastBackup: Type.Optional(Type.String({ description: 'Name of the newest PostgreSQLBackup of this cluster that finished (completed or failed).' })),
  nextScheduledBackup: Type.Optional(Type.String({ description: 'When the next scheduled base backup starts.', format: 'date-time' })),
  archiving: Type.Optional(ArchivingStatusSchema),
  conditions: Type.Optional(
    Type.Array(ConditionSchema, {
      description: 'Ready, Progressing, Degraded and the conditions of each concern.',
      'x-kubernetes-list-type': 'map',
      'x-kubernetes-list-map-keys': ['type'],
    }),
  ),
});

/** Longest cluster name: derived names (`<name>-10-0`, `<name>-replication`, Service `<name>-rw`) stay DNS-1035 labels. */
export const MAX_CLUSTER_NAME = 48;

export const ClusterSchema = Obj('A highly available PostgreSQL cluster managed by pgpilot.', {
  apiVersion: Type.Optional(Type.String({ description: 'postgres.pgpilot.io/v1' })),
  kind: Type.Optional(Type.String({ description: 'PostgreSQLCluster' })),
  metadata: Type.Optional(Type.Unsafe<ObjectMetaLike>({ type: 'object' })),
  spec: ClusterSpecSchema,
  status: Type.Optional(ClusterStatusSchema),
}, {
  ...cel({
    rule: "!has(self.spec.primary) || self.spec.primary.startsWith(self.metadata.name + '-')",
    message: 'spec.primary must name an instance of this cluster: <cluster name>-<ordinal>, e.g. prod-db-2',
  }, {
    rule: `self.metadata.name.size() <= ${MAX_CLUSTER_NAME} && self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')`,
    message: `metadata.name must start with a letter, contain only lowercase letters, digits and '-', and be at most ${MAX_CLUSTER_NAME} characters (Service and pod names derive from it)`,
  }),
});

/** Object metadata as client-node types it (raw watch JSON carries timestamps as strings). */
export type ObjectMetaLike = V1ObjectMeta;

export type ClusterSpec = Static<typeof ClusterSpecSchema>;
export type ClusterStatus = Static<typeof ClusterStatusSchema>;
export type Condition = Static<typeof ConditionSchema>;
export type S3Credentials = Static<typeof S3CredentialsSchema>;
export type S3Target = Static<typeof S3TargetSchema>;
export type VolumeTarget = Static<typeof VolumeTargetSchema>;
export type BackupTarget = (typeof BACKUP_TARGETS)[number];
export type BackupSpec = Static<typeof BackupSpecSchema>;
export type RecoveryTarget = Static<typeof RecoveryTargetSchema>;
export type RecoverySource = Static<typeof RecoverySourceSchema>;
export type RecoverySpec = Static<typeof RecoverySchema>;
export type BootstrapSpec = Static<typeof BootstrapSchema>;
export type ArchivingStatus = Static<typeof ArchivingStatusSchema>;
export type PostgreSQLCluster = Static<typeof ClusterSchema> & { metadata: ObjectMetaLike };

