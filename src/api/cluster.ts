// The PostgreSQLCluster API (the spec here; defaults, stores, recovery and status beside it): one
// TypeBox definition gives the TypeScript types (Static<>) and the
// CRD's openAPIV3Schema (src/api/crd.ts renders it into crds/). Edit here, then `npm run gen`.
import { Type, type Static } from '@sinclair/typebox';
import type { V1ObjectMeta } from '@kubernetes/client-node';
import { Obj, StringEnum, StringMap, QuantityMap, cel, QUANTITY_PATTERN } from './schema-helpers.js';
import { ClusterStatusSchema } from './cluster-status.js';
import { DEFAULTS } from './defaults.js';
import { RecoverySchema } from './recovery.js';
import { BackupTargetSchema, S3TargetSchema, VolumeTargetSchema } from './stores.js';
import { AutopilotSpecSchema } from './anomalies.js';
import { AUTOGROW_MAX_SIZE_RULE, AutoGrowSchema } from './autogrow.js';

// The parts in their own modules, re-exported: importers name the API by this one module.
export { DEFAULTS } from './defaults.js';
export * from './stores.js';
export * from './recovery.js';
export * from './cluster-status.js';
export * from './anomalies.js';
export * from './autogrow.js';

/** PostgreSQL 13 reached its end of life in November 2025; 14–18 are the ones with builds and images. */
export const SUPPORTED_MAJORS = [14, 15, 16, 17, 18] as const;
const VERSION_PATTERN = `^(${SUPPORTED_MAJORS.join('|')})([.](0|[1-9][0-9]?))?$`;

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
    autoGrow: Type.Optional(AutoGrowSchema),
  }, { ...cel(AUTOGROW_MAX_SIZE_RULE) });

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

/** The synchronous quorum as a CEL expression over the spec: synchronousReplicas when synchronousCommit is on, else 0. */
const CEL_SYNC_REPLICAS =
  '(has(self.highAvailability) && has(self.highAvailability.synchronousCommit) && self.highAvailability.synchronousCommit ? (has(self.highAvailability.synchronousReplicas) ? self.highAvailability.synchronousReplicas : 1) : 0)';

export const AutoscalingSpecSchema = Obj(
  'Replica autoscaling: the operator owns a HorizontalPodAutoscaler (autoscaling/v2, named after the cluster) that drives spec.instances through the scale subresource from the instance pods\' CPU (metrics.k8s.io, e.g. metrics-server). Removing this block removes the HPA; spec.instances keeps its last value. New instances are added one at a time (each clones before the next is created), and scale-down never removes the primary. docs/autoscaling.md.',
  {
    min: Type.Optional(
      Type.Integer({
        description: 'Fewest instances (the HPA\'s minReplicas). Default: what synchronous commit needs (synchronousReplicas + 1 when synchronousCommit is on), else 1.',
        minimum: 1,
        maximum: 10,
      }),
    ),
    max: Type.Integer({ description: 'Most instances (the HPA\'s maxReplicas).', minimum: 1, maximum: 10 }),
    targetCPUUtilizationPercentage: Type.Optional(
      Type.Integer({
        description: 'Average CPU use of the instance pods the HPA aims for, in percent of their CPU request (spec.resources.requests.cpu must be set, or the HPA cannot compute it).',
        minimum: 1,
        maximum: 1000,
        default: DEFAULTS.autoscalingTargetCPU,
      }),
    ),
    scaleDownStabilizationSeconds: Type.Optional(
      Type.Integer({
        description: 'How long the HPA waits, after the load falls, before it removes instances (behavior.scaleDown.stabilizationWindowSeconds; Kubernetes\' default is 300).',
        minimum: 0,
        maximum: 3600,
      }),
    ),
  },
  { ...cel({ rule: '!has(self.min) || self.min <= self.max', message: 'autoscaling.min must not be above autoscaling.max', fieldPath: '.min' }) },
);

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

/** Workload profiles of spec.postgresql.tuning (pgtune's; olap is its "dw"). */
export const TUNING_PROFILES = ['oltp', 'web', 'olap', 'mixed'] as const;
/** Storage kinds of spec.postgresql.tuning: random_page_cost and effective_io_concurrency follow them. */
export const STORAGE_TYPES = ['ssd', 'hdd', 'san'] as const;

const Tuning = Obj(
  'How the operator tunes memory, parallelism, WAL and I/O settings from the instance\'s resources (limits, else requests): pgtune\'s formulas for the profile. The values and their reasons are in status.tuning; spec.postgresql.parameters win over them. Without this block: profile mixed on ssd, and wal_buffers left to PostgreSQL.',
  {
    profile: Type.Optional(
      StringEnum(TUNING_PROFILES, {
        description: 'Workload: oltp (many short transactions, 300 connections), web (200), olap (analytics: few connections, large work_mem and statistics, 40), mixed (100).',
        default: 'mixed',
      }),
    ),
    storageType: Type.Optional(StringEnum(STORAGE_TYPES, { description: 'What the volumes are: ssd, hdd or san (random_page_cost, effective_io_concurrency).', default: 'ssd' })),
    maxConnections: Type.Optional(
      Type.Integer({ description: 'max_connections the memory per connection (work_mem) is sized for (default: the profile\'s); spec.postgresql.parameters.max_connections wins.', minimum: 10, maximum: 10000 }),
    ),
  },
);

const PostgresConfig = Obj('PostgreSQL server configuration.', {
  tuning: Type.Optional(Tuning),
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
    Type.Array(Type.String({ maxLength: 512, minLength: 1, pattern: '^(local|host|hostssl|hostnossl|hostgssenc|hostnogssenc)\\s[^\\n\\r]*$' }), {
      description: 'Extra pg_hba.conf lines, placed before the operator\'s own rules (local peer access, replication and every user with scram-sha-256); only the agent\'s local access as postgres comes first.',
      maxItems: 128,
    }),
  ),
});

/** Most ConfigMaps of custom exporter queries a cluster may name (each is a volume of every instance pod). */
export const MAX_CUSTOM_QUERY_SOURCES = 8;
/** The key of a custom-queries ConfigMap when none is named (postgres_exporter's file name). */
export const DEFAULT_CUSTOM_QUERIES_KEY = 'queries.yaml';

const CustomQueriesRef = Obj('A ConfigMap key holding exporter queries in postgres_exporter\'s queries.yaml format.', {
  name: Type.String({
    description: 'Name of the ConfigMap, in the cluster\'s namespace.',
    minLength: 1,
    maxLength: 253,
    pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$',
  }),
  key: Type.Optional(
    Type.String({
      description: `Key of the ConfigMap holding the queries (default ${DEFAULT_CUSTOM_QUERIES_KEY}).`,
      minLength: 1,
      maxLength: 253,
      pattern: '^[-._a-zA-Z0-9]+$',
      default: DEFAULT_CUSTOM_QUERIES_KEY,
      ...cel({ rule: "self != '.' && !self.startsWith('..')", message: "key must be a ConfigMap key: not '.' and not starting with '..'" }),
    }),
  ),
});

const LabelSelector = (description: string) =>
  Obj(description, {
    matchLabels: Type.Optional(StringMap('Labels the selected objects have.', { maxProperties: 32 })),
    matchExpressions: Type.Optional(
      Type.Array(
        Obj('A label requirement, as in a LabelSelector.', {
          key: Type.String({ description: 'Label key.', minLength: 1, maxLength: 317 }),
          operator: StringEnum(['In', 'NotIn', 'Exists', 'DoesNotExist'] as const, { description: 'In, NotIn, Exists or DoesNotExist.' }),
          values: Type.Optional(Type.Array(Type.String({ maxLength: 63 }), { description: 'Values for In and NotIn.', maxItems: 32 })),
        }),
        { description: 'Label requirements (all must hold).', maxItems: 16 },
      ),
    ),
  });

const NetworkPeer = Obj(
  'Who may connect, as a NetworkPolicy peer: pods (podSelector: in this namespace, or in the namespaces namespaceSelector picks), whole namespaces (namespaceSelector alone), or addresses (ipBlock alone).',
  {
    podSelector: Type.Optional(LabelSelector('Pods, in the cluster\'s namespace unless namespaceSelector is given too.')),
    namespaceSelector: Type.Optional(LabelSelector('Namespaces (kubernetes.io/metadata.name is every namespace\'s own name label).')),
    ipBlock: Type.Optional(
      Obj('Addresses outside the cluster network.', {
        cidr: Type.String({ description: 'A CIDR, e.g. 10.0.0.0/8.', minLength: 1, maxLength: 43 }),
        except: Type.Optional(Type.Array(Type.String({ maxLength: 43 }), { description: 'CIDRs inside cidr that may not connect.', maxItems: 16 })),
      }),
    ),
  },
  cel({ rule: 'has(self.ipBlock) ? !has(self.podSelector) && !has(self.namespaceSelector) : has(self.podSelector) || has(self.namespaceSelector)', message: 'a peer is either ipBlock alone, or podSelector and/or namespaceSelector' }),
);

export const NetworkPolicySpecSchema = Obj(
  'An owned NetworkPolicy (<name>) for the instance pods: the operator\'s pods reach the agent port and PostgreSQL, the cluster\'s own pods (replication, backup and upgrade Jobs) reach PostgreSQL, clients reach PostgreSQL (5432), and Prometheus reaches the metrics port (9187). Only a CNI that implements NetworkPolicy enforces it (docs/security.md).',
  {
    enabled: Type.Optional(Type.Boolean({ description: 'true: the operator owns the NetworkPolicy; false (default): none (one it made is removed).', default: false })),
    clients: Type.Optional(
      Type.Array(NetworkPeer, {
        description: 'Who may connect to PostgreSQL (5432) besides the cluster\'s own pods and the operator. Absent: anyone. []: nobody else.',
        maxItems: 32,
      }),
    ),
    metrics: Type.Optional(
      Type.Array(NetworkPeer, {
        description: 'Who may scrape the metrics port (9187, with monitoring.enabled). Absent: pods labelled app.kubernetes.io/name=prometheus in any namespace. []: nobody.',
        maxItems: 32,
      }),
    ),
  },
);

const SecretRef = Obj('A reference to a Secret in the cluster\'s namespace.', {
  name: Type.String({ description: 'Name of the Secret.', minLength: 1, maxLength: 253 }),
});

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
    primaryUpdateMethod: Type.Optional(
      StringEnum(['switchover', 'restart'] as const, {
        description:
          'How a change that restarts pods (version, resources, a restart-requiring setting) reaches the primary, after every replica runs it: switchover (default) moves the primary role to the most caught-up updated replica first, so only the switchover is felt; restart updates the primary in place (writes stop while it restarts).',
        default: DEFAULTS.primaryUpdateMethod,
      }),
    ),
    primaryUpdateStrategy: Type.Optional(
      StringEnum(['unsupervised', 'supervised'] as const, {
        description:
          'unsupervised (default): the rollout updates the primary by itself. supervised: it stops once every replica is updated, says so in the RollingUpdate condition, and goes on when you switch over (set spec.primary to an updated replica).',
        default: DEFAULTS.primaryUpdateStrategy,
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
    }, { ...cel(AUTOGROW_MAX_SIZE_RULE) }),
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
      Obj(
        'Metrics of the instances: each instance\'s agent serves PostgreSQL\'s and its own state in the Prometheus text format on port 9187 (GET /metrics, no authentication; the metrics are listed in docs/metrics.md), and its pod declares the container port "metrics" and the prometheus.io/scrape, /port and /path annotations.',
        {
          enabled: Type.Optional(
            Type.Boolean({
              description: 'Serve /metrics on port 9187 and announce it on the pod (port and prometheus.io annotations). false: the agent does not listen on 9187 and the pod carries neither the port nor the annotations. Changing it rolls the instances (a pod template change).',
              default: DEFAULTS.monitoringEnabled,
            }),
          ),
          customQueries: Type.Optional(
            Type.Array(CustomQueriesRef, {
              description:
                'Your own exporter queries, in postgres_exporter\'s queries.yaml format, from ConfigMaps in the cluster\'s namespace (docs/metrics.md, "Your own queries"). Each is mounted read-only and optional into the instance pods: a missing ConfigMap or key does not stop a pod, and the agent re-reads a changed one without a restart. A query that cannot load or fails is counted in pgpilot_exporter_query_errors_total{query="custom:<name>"} and reported in the MonitoringQueriesValid condition; every other metric is served. Changing the list rolls the instances (a pod template change).',
              maxItems: MAX_CUSTOM_QUERY_SOURCES,
            }),
          ),
        },
      ),
    ),
    hibernation: Type.Optional(
      Type.Boolean({
        description:
          'true: every instance stops cleanly (the primary first) and no pod runs; the claims, the data and the primary are kept, scheduled backups are suspended. false (default): the cluster runs; a hibernated one wakes with the same primary. The Hibernated condition and status.hibernation say where it stands.',
        default: false,
      }),
    ),
    majorUpgrade: Type.Optional(
      Obj('How a change of spec.version to a higher major version is carried out: checked first with pg_upgrade --check while the cluster runs, then every instance stops, pg_upgrade upgrades the primary\'s data in a Job, the primary starts on the new version, the replicas are cloned from it and a base backup is taken (status.majorUpgrade and the Upgrading condition tell the stage; docs/major-upgrades.md).', {
        mode: Type.Optional(
          StringEnum(['link', 'copy'] as const, {
            description:
              'link (default): pg_upgrade --link hard-links the data files, seconds whatever the size; the old data directory is unusable once the new version has started. copy: pg_upgrade --copy copies them, which needs as much free space again and takes time in proportion, and keeps the old data directory whole.',
            default: DEFAULTS.majorUpgradeMode,
          }),
        ),
      }),
    ),
    autopilot: Type.Optional(AutopilotSpecSchema),
    stopDelaySeconds: Type.Optional(
      Type.Integer({ description: 'Grace period for a PostgreSQL pod to shut down (smart, then fast) before it is killed.', minimum: 5, maximum: 3600, default: DEFAULTS.stopDelaySeconds }),
    ),
    autoscaling: Type.Optional(AutoscalingSpecSchema),
    networkPolicy: Type.Optional(NetworkPolicySpecSchema),
  },
  {
    ...cel(
      {
        // A new cluster, or a change of the synchronous settings, must leave enough instances. A
        // change of spec.instances alone (the scale subresource: an HPA, `kubectl scale`) is
        // accepted and held at the minimum by the operator (the Autoscaling condition says so):
        // a refused write would leave an HPA failing to scale with nothing on the cluster to say why.
        rule: `(has(self.instances) ? self.instances : 1) > ${CEL_SYNC_REPLICAS} || (oldSelf.hasValue() && has(self.highAvailability) && has(oldSelf.value().highAvailability) && self.highAvailability == oldSelf.value().highAvailability)`,
        message: 'highAvailability.synchronousReplicas must be fewer than instances when synchronousCommit is on (the primary does not count)',
        fieldPath: '.highAvailability.synchronousReplicas',
        optionalOldSelf: true,
      },
      {
        rule: `!has(self.autoscaling) || self.autoscaling.max > ${CEL_SYNC_REPLICAS}`,
        message: 'autoscaling.max must be above highAvailability.synchronousReplicas when synchronousCommit is on: the primary and its synchronous replicas are the fewest instances the cluster can run with',
        fieldPath: '.autoscaling.max',
      },
      {
        rule: `!has(self.autoscaling) || !has(self.autoscaling.min) || self.autoscaling.min > ${CEL_SYNC_REPLICAS}`,
        message: 'autoscaling.min must be above highAvailability.synchronousReplicas when synchronousCommit is on: the primary and its synchronous replicas are the fewest instances the cluster can run with',
        fieldPath: '.autoscaling.min',
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
  }, {
    // Data written by a newer major cannot be read by an older one. Against what runs (status),
    // not the previous spec: a major asked for by mistake and never run can be taken back. Only
    // when spec.version changes, so no status write can ever be refused by it.
    rule: [
      '!has(oldSelf.status) || !has(oldSelf.status.version) || self.spec.version == oldSelf.spec.version',
      `|| !self.spec.version.matches('${VERSION_PATTERN}') || !oldSelf.status.version.matches('^[0-9]+')`,
      "|| int(self.spec.version.find('^[0-9]+')) >= int(oldSelf.status.version.find('^[0-9]+'))",
    ].join(' '),
    fieldPath: '.spec.version',
    message: 'spec.version cannot name a lower major version than the one running: an older PostgreSQL cannot read the data of a newer one (restore a logical dump into a new cluster instead)',
    messageExpression:
      "'spec.version cannot go down to major ' + self.spec.version.find('^[0-9]+') + ' while PostgreSQL ' + oldSelf.status.version + ' runs: an older PostgreSQL cannot read the data of a newer one (restore a logical dump into a new cluster instead)'",
  }),
});

/** Object metadata as client-node types it (raw watch JSON carries timestamps as strings). */
export type ObjectMetaLike = V1ObjectMeta;

export type ClusterSpec = Static<typeof ClusterSpecSchema>;
export type BackupSpec = Static<typeof BackupSpecSchema>;
export type AutoscalingSpec = Static<typeof AutoscalingSpecSchema>;
export type BootstrapSpec = Static<typeof BootstrapSchema>;
export type PostgreSQLCluster = Static<typeof ClusterSchema> & { metadata: ObjectMetaLike };


export type NetworkPolicySpec = Static<typeof NetworkPolicySpecSchema>;
