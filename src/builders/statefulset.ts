// One StatefulSet per instance (replicas 0/1), as Crunchy PGO does: the operator controls each
// instance on its own (primary-last rollouts, removing one failed instance, direct PVC resizing).
import type { V1Container, V1PersistentVolumeClaim, V1PodSpec, V1StatefulSet, V1Affinity, V1ResourceRequirements, V1Volume, V1VolumeMount } from '@kubernetes/client-node';
import { DEFAULT_CUSTOM_QUERIES_KEY, type PostgreSQLCluster } from '../api/cluster.js';
import { AGENT_PORT, ANNOTATIONS, LABELS, MANAGED_BY, METRICS_PORT, POSTGRES_PORT } from '../api/constants.js';
import { ownedMeta } from './meta.js';
import { podSelector } from '../api/labels.js';
import { names } from '../api/names.js';
import { secretNames } from './secrets.js';
import type { PodAccess, ResolvedTarget } from './backup-target.js';
import { POD_ENV } from '../api/pod-env.js';
import { specOf } from '../api/resolve-spec.js';
import { restartSettingsHash, standbyMinimums } from '../postgres/restart-settings.js';
import { postgresParameters } from './postgres-config.js';
import { AGENT_SOCKET, TLS_FILES, TLS_REPLICATION_DIR, TLS_SERVER_DIR } from '../api/tls.js';

/** What instance pods get from the backup concern: the archive target and the recovery source. */
export interface InstanceBackupAccess {
  target?: ResolvedTarget | null;
  restore?: PodAccess | null;
}

export interface InstanceImageConfig {
  /** `<repository>:<spec.version>` unless spec.imageName overrides it. */
  instanceImageRepository: string;
}

/** UID/GID of the postgres user inside the instance image. */
export const POSTGRES_UID = 26;
export const DATA_MOUNT = '/var/lib/postgresql/data';
export const WAL_MOUNT = '/var/lib/postgresql/wal';
export const CONFIG_MOUNT = '/etc/pgpilot/config';
export const SECRETS_MOUNT = '/etc/pgpilot/secrets';
/** spec.monitoring.customQueries: each ConfigMap under <CUSTOM_QUERIES_MOUNT>/<its name>/<key>. */
export const CUSTOM_QUERIES_MOUNT = '/etc/pgpilot/custom-queries';

/**
 * The custom-queries ConfigMaps as volumes (one per ConfigMap, only the keys named, optional: a
 * missing ConfigMap or key leaves the file out and the pod starts), their mounts and the
 * variable listing the files the agent reads. Absent when there are none or monitoring is off.
 */
export function customQueriesAccess(cluster: PostgreSQLCluster): PodAccess {
  const spec = specOf(cluster);
  const refs = spec.monitoring.enabled ? (spec.monitoring.customQueries ?? []) : [];
  const keys = new Map<string, string[]>();
  for (const r of refs) {
    const key = r.key ?? DEFAULT_CUSTOM_QUERIES_KEY;
    const list = keys.get(r.name) ?? [];
    if (!list.includes(key)) list.push(key);
    keys.set(r.name, list);
  }
  const entries = [...keys.entries()];
  if (entries.length === 0) return { env: [], volumes: [], mounts: [] };
  return {
    env: [{ name: POD_ENV.customQueries, value: entries.flatMap(([name, ks]) => ks.map((k) => `${CUSTOM_QUERIES_MOUNT}/${name}/${k}`)).join(',') }],
    volumes: entries.map(([name, ks], i) => ({ name: `custom-queries-${i}`, configMap: { name, optional: true, items: ks.map((k) => ({ key: k, path: k })) } })),
    mounts: entries.map(([name], i) => ({ name: `custom-queries-${i}`, mountPath: `${CUSTOM_QUERIES_MOUNT}/${name}`, readOnly: true })),
  };
}

export function instanceImage(cluster: PostgreSQLCluster, cfg: InstanceImageConfig): string {
  return cluster.spec.imageName ?? `${cfg.instanceImageRepository}:${cluster.spec.version}`;
}

function claimTemplate(cluster: PostgreSQLCluster, instance: string, volume: string, size: string, storageClass: string | undefined): V1PersistentVolumeClaim {
  // Claims carry the instance label: the operator finds them to grow them or remove them with their instance.
  const labels = { ...podSelector(cluster.metadata.name!), [LABELS.managedBy]: MANAGED_BY, [LABELS.instance]: instance };
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: { name: volume, labels },
    spec: {
      accessModes: ['ReadWriteOnce'],
      ...(storageClass ? { storageClassName: storageClass } : {}),
      resources: { requests: { storage: size } },
    },
  };
}

function affinity(cluster: PostgreSQLCluster): V1Affinity | undefined {
  const s = specOf(cluster).scheduling;
  const mode = s.podAntiAffinity;
  if (mode === 'disabled') return undefined;
  const term = { labelSelector: { matchLabels: podSelector(cluster.metadata.name!) }, topologyKey: s.topologyKey };
  return mode === 'required'
    ? { podAntiAffinity: { requiredDuringSchedulingIgnoredDuringExecution: [term] } }
    : { podAntiAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 100, podAffinityTerm: term }] } };
}

/** Quantities may be numbers in our API (cpu: 2); Pods take strings. */
function containerResources(r: NonNullable<PostgreSQLCluster['spec']['resources']>): V1ResourceRequirements {
  const str = (m?: Record<string, string | number>) => (m ? Object.fromEntries(Object.entries(m).map(([k, v]) => [k, String(v)])) : undefined);
  return { ...(r.requests ? { requests: str(r.requests) } : {}), ...(r.limits ? { limits: str(r.limits) } : {}) };
}

function backupPieces(cluster: PostgreSQLCluster, b: InstanceBackupAccess): PodAccess {
  const parts = [b.target, b.restore].filter((p): p is PodAccess => !!p);
  const level = specOf(cluster).backup.compression.level;
  return {
    env: [...parts.flatMap((p) => p.env), ...(b.target ? [{ name: POD_ENV.backupCompressionLevel, value: String(level) }] : [])],
    volumes: parts.flatMap((p) => p.volumes),
    mounts: parts.flatMap((p) => p.mounts),
  };
}

function instanceContainer(cluster: PostgreSQLCluster, instance: string, cfg: InstanceImageConfig, backup: PodAccess, queries: PodAccess): V1Container {
  const hasWal = !!cluster.spec.walStorage;
  const mounts: V1VolumeMount[] = [
    { name: names.dataVolume, mountPath: DATA_MOUNT },
    ...(hasWal ? [{ name: names.walVolume, mountPath: WAL_MOUNT }] : []),
    { name: 'config', mountPath: CONFIG_MOUNT, readOnly: true },
    { name: 'superuser', mountPath: `${SECRETS_MOUNT}/superuser`, readOnly: true },
    { name: 'replication', mountPath: `${SECRETS_MOUNT}/replication`, readOnly: true },
    { name: 'app', mountPath: `${SECRETS_MOUNT}/app`, readOnly: true },
    { name: 'agent', mountPath: `${SECRETS_MOUNT}/agent`, readOnly: true },
    { name: 'server-tls', mountPath: TLS_SERVER_DIR, readOnly: true },
    { name: 'replication-tls', mountPath: TLS_REPLICATION_DIR, readOnly: true },
    { name: 'run', mountPath: '/var/run/postgresql' },
    { name: 'tmp', mountPath: '/tmp' },
    { name: 'shm', mountPath: '/dev/shm' },
    ...backup.mounts,
    ...queries.mounts,
  ];
  const spec = specOf(cluster);
  const { initdb } = spec;
  return {
    name: 'postgres',
    image: instanceImage(cluster, cfg),
    imagePullPolicy: spec.imagePullPolicy,
    args: ['instance'],
    env: [
      { name: POD_ENV.cluster, value: cluster.metadata.name! },
      { name: POD_ENV.instance, value: instance },
      { name: POD_ENV.namespace, valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
      { name: POD_ENV.podIp, valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
      { name: POD_ENV.configDir, value: CONFIG_MOUNT },
      { name: POD_ENV.secretsDir, value: SECRETS_MOUNT },
      { name: POD_ENV.tlsCaFile, value: `${TLS_SERVER_DIR}/${TLS_FILES.ca}` },
      { name: POD_ENV.tlsServerName, value: names.tlsServerName(cluster.metadata.name!, cluster.metadata.namespace!) },
      { name: POD_ENV.tlsClientDir, value: TLS_REPLICATION_DIR },
      // The agent API: HTTPS with the operator's client certificate (docs/tls.md); the socket for the plugin.
      { name: POD_ENV.agentTlsDir, value: TLS_SERVER_DIR },
      { name: POD_ENV.agentSocket, value: AGENT_SOCKET },
      { name: 'PGDATA', value: `${DATA_MOUNT}/pgdata` },
      ...(hasWal ? [{ name: POD_ENV.walDir, value: `${WAL_MOUNT}/pg_wal` }] : []),
      { name: POD_ENV.initdbDatabase, value: initdb.database },
      { name: POD_ENV.initdbOwner, value: initdb.owner },
      { name: POD_ENV.initdbEncoding, value: initdb.encoding },
      { name: POD_ENV.initdbLocale, value: initdb.locale },
      { name: POD_ENV.initdbDataChecksums, value: String(initdb.dataChecksums) },
      // The agent moves from a smart to a fast shutdown at half of this, and to immediate near its end.
      { name: POD_ENV.stopTimeoutSeconds, value: String(spec.stopDelaySeconds) },
      // Always explicit: an agent reading no variable would serve /metrics.
      { name: POD_ENV.metricsEnabled, value: String(spec.monitoring.enabled) },
      ...queries.env,
      ...backup.env,
    ],
    ports: [
      { name: 'postgresql', containerPort: POSTGRES_PORT, protocol: 'TCP' },
      { name: 'agent', containerPort: AGENT_PORT, protocol: 'TCP' },
      ...(spec.monitoring.enabled ? [{ name: 'metrics', containerPort: METRICS_PORT, protocol: 'TCP' }] : []),
    ],
    // Bootstrapping (initdb, or cloning a large primary) can take long: the startup probe
    // allows an hour before liveness applies.
    // The kubelet does not verify the certificate, and /healthz and /readyz need no client certificate.
    startupProbe: { httpGet: { path: '/healthz', port: 'agent', scheme: 'HTTPS' }, periodSeconds: 2, failureThreshold: 1800, timeoutSeconds: 2 },
    livenessProbe: { httpGet: { path: '/healthz', port: 'agent', scheme: 'HTTPS' }, periodSeconds: 5, failureThreshold: 6, timeoutSeconds: 3 },
    readinessProbe: { httpGet: { path: '/readyz', port: 'agent', scheme: 'HTTPS' }, periodSeconds: 2, failureThreshold: 3, timeoutSeconds: 2 },
    ...(cluster.spec.resources ? { resources: containerResources(cluster.spec.resources) } : {}),
    securityContext: {
      runAsNonRoot: true,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    },
    volumeMounts: mounts,
  };
}

function podSpec(cluster: PostgreSQLCluster, instance: string, cfg: InstanceImageConfig, backupAccess: InstanceBackupAccess): V1PodSpec {
  const backup = backupPieces(cluster, backupAccess);
  const queries = customQueriesAccess(cluster);
  const name = cluster.metadata.name!;
  const secrets = secretNames(cluster);
  const s = cluster.spec.scheduling;
  const volumes: V1Volume[] = [
    { name: 'config', configMap: { name: names.config(name) } },
    { name: 'superuser', secret: { secretName: secrets.superuser } },
    { name: 'replication', secret: { secretName: secrets.replication } },
    { name: 'app', secret: { secretName: secrets.app } },
    { name: 'agent', secret: { secretName: secrets.agent } },
    // 0640 with the pod's fsGroup: root-owned, group-readable, as PostgreSQL allows a key file.
    { name: 'server-tls', secret: { secretName: names.serverTlsSecret(name), defaultMode: 0o640 } },
    // libpq accepts a client key owned by root and readable by its group (0640) too.
    { name: 'replication-tls', secret: { secretName: names.replicationTlsSecret(name), defaultMode: 0o640 } },
    { name: 'run', emptyDir: {} },
    { name: 'tmp', emptyDir: {} },
    { name: 'shm', emptyDir: { medium: 'Memory' } },
    ...backup.volumes,
    ...queries.volumes,
  ];
  const aff = affinity(cluster);
  return {
    serviceAccountName: names.serviceAccount(name),
    // The instance agent never calls the Kubernetes API (src/api/permissions.test.ts holds it to
    // that): no token in the pod. Backup Jobs, which do, mount theirs.
    automountServiceAccountToken: false,
    terminationGracePeriodSeconds: specOf(cluster).stopDelaySeconds,
    securityContext: {
      runAsNonRoot: true,
      runAsUser: POSTGRES_UID,
      runAsGroup: POSTGRES_UID,
      fsGroup: POSTGRES_UID,
      seccompProfile: { type: 'RuntimeDefault' },
    },
    containers: [instanceContainer(cluster, instance, cfg, backup, queries)],
    volumes,
    ...(aff ? { affinity: aff } : {}),
    ...(s?.nodeSelector ? { nodeSelector: s.nodeSelector } : {}),
    ...(s?.tolerations ? { tolerations: s.tolerations } : {}),
    ...(s?.priorityClassName ? { priorityClassName: s.priorityClassName } : {}),
    ...(s?.topologySpreadConstraints
      ? {
          topologySpreadConstraints: s.topologySpreadConstraints.map((c) => ({
            maxSkew: c.maxSkew,
            topologyKey: c.topologyKey,
            whenUnsatisfiable: c.whenUnsatisfiable ?? 'DoNotSchedule',
            labelSelector: { matchLabels: podSelector(name) },
          })),
        }
      : {}),
    ...(cluster.spec.imagePullSecrets ? { imagePullSecrets: cluster.spec.imagePullSecrets } : {}),
  };
}

/** The conventional annotations of a pod Prometheus should scrape (kubernetes_sd with the usual relabelling). */
export function scrapeAnnotations(cluster: PostgreSQLCluster): Record<string, string> {
  if (!specOf(cluster).monitoring.enabled) return {};
  return { 'prometheus.io/scrape': 'true', 'prometheus.io/port': String(METRICS_PORT), 'prometheus.io/path': '/metrics' };
}

/** A restart asked for on the cluster (ANNOTATIONS.restartedAt): a new value is a new pod template. */
function restartRequest(cluster: PostgreSQLCluster): Record<string, string> {
  const at = cluster.metadata.annotations?.[ANNOTATIONS.restartedAt];
  return at ? { [ANNOTATIONS.restartedAt]: at } : {};
}

/** What decides a rollout: which settings need a restart, and whether they go down (primary first). */
function restartAnnotations(params: Record<string, string>): Record<string, string> {
  return { [ANNOTATIONS.restartSettings]: restartSettingsHash(params), [ANNOTATIONS.standbyMinimums]: standbyMinimums(params) };
}

/** What one instance's pod template carries besides the cluster's (see instanceStatefulSet). */
export interface InstanceTemplateOptions {
  /**
   * This instance's value of the cluster annotation restartInstances (validated against the
   * cluster's instances by the caller: an invalid annotation gives none): copied into its pod
   * template only, so a new value restarts this instance alone through the rollout.
   */
  restartedAt?: string;
}

export interface ExistingClaims {
  /** Sizes in the live StatefulSet's claim templates, which Kubernetes never lets change. */
  [volume: string]: { size?: string; storageClass?: string } | undefined;
}

export function instanceStatefulSet(
  cluster: PostgreSQLCluster,
  instance: string,
  cfg: InstanceImageConfig,
  existing: ExistingClaims = {},
  backup: InstanceBackupAccess = {},
  own: InstanceTemplateOptions = {},
): V1StatefulSet {
  const name = cluster.metadata.name!;
  const podLabels = { ...podSelector(name), [LABELS.instance]: instance };
  const claim = (volume: string, size: string, storageClass?: string) =>
    existing[volume]
      ? claimTemplate(cluster, instance, volume, existing[volume]!.size ?? size, existing[volume]!.storageClass)
      : claimTemplate(cluster, instance, volume, size, storageClass);
  return {
    apiVersion: 'apps/v1',
    kind: 'StatefulSet',
    metadata: ownedMeta(cluster, instance, 'instance', { [LABELS.instance]: instance }),
    spec: {
      replicas: 1,
      serviceName: names.headless(name),
      podManagementPolicy: 'Parallel',
      selector: { matchLabels: podLabels },
      // With Delete, the StatefulSet controller makes the set own its claims, so deleting the
      // cluster (which cascades to the set) removes them. The operator removes an instance by
      // deleting its set; when whenScaled differs from whenDeleted it first adjusts the claims
      // (removeInstance in reconcilers/install.ts). Replicas never shrink: whenScaled here is moot.
      persistentVolumeClaimRetentionPolicy: { whenDeleted: specOf(cluster).storage.pvcRetentionPolicy.whenDeleted, whenScaled: 'Retain' },
      updateStrategy: { type: 'RollingUpdate' },
      template: {
        metadata: {
          labels: { ...podLabels, [LABELS.managedBy]: MANAGED_BY, [LABELS.name]: 'postgresql', [LABELS.instanceOf]: name },
          // archive_mode follows the backup target (postgres-config.ts): present or not is what counts here.
          annotations: {
            ...restartAnnotations(postgresParameters(cluster.spec, undefined, backup.target ? { timeoutSeconds: 0 } : undefined)),
            ...scrapeAnnotations(cluster),
            ...restartRequest(cluster),
            ...(own.restartedAt ? { [ANNOTATIONS.instanceRestartedAt]: own.restartedAt } : {}),
            [ANNOTATIONS.agentTls]: 'mutual',
          },
        },
        spec: podSpec(cluster, instance, cfg, backup),
      },
      volumeClaimTemplates: [
        claim(names.dataVolume, cluster.spec.storage.size, cluster.spec.storage.storageClass),
        ...(cluster.spec.walStorage ? [claim(names.walVolume, cluster.spec.walStorage.size, cluster.spec.walStorage.storageClass)] : []),
      ],
    },
  };
}
