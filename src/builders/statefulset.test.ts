// The per-instance StatefulSet (pure), and how it compares with its live form.
import type { V1StatefulSet } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { DEFAULTS, type PostgreSQLCluster } from '../api/cluster.js';
import { ANNOTATIONS, LABELS, MANAGED_BY } from '../api/constants.js';
import { podSelector } from '../api/labels.js';
import { names } from '../api/names.js';
import { type InstanceBackupAccess, instanceStatefulSet } from './statefulset.js';
import { jsonClone, seedCluster } from '../../test/support/cluster-fixtures.js';
import { needsApply } from '../runtime/compare.js';
import { BACKUP_VOLUME_MOUNT, restoreAccess } from './backup-target.js';
import { containerOf, CREDS, envOf, IMAGES, locationOf, podSpecOf, S3, s3Cluster, statefulSet, target, withBackup } from '../../test/support/builder-fixtures.js';

const claimsOf = (sts: V1StatefulSet) => sts.spec!.volumeClaimTemplates ?? [];

describe('instance StatefulSet', () => {
  it('runs one pod behind the headless Service, selected by cluster and instance', () => {
    const sts = statefulSet();
    expect(sts.metadata?.name).toBe('prod-db-2');
    expect(sts.spec?.replicas).toBe(1);
    expect(sts.spec?.serviceName).toBe('prod-db-headless');
    expect(sts.spec?.selector.matchLabels).toEqual({ ...podSelector('prod-db'), [LABELS.instance]: 'prod-db-2' });
  });

  it('labels its pods with everything its selector, the Services and the scale selector match', () => {
    const sts = statefulSet();
    const podLabels = sts.spec!.template.metadata!.labels!;
    expect(podLabels).toMatchObject(sts.spec!.selector.matchLabels!);
    expect(podLabels).toMatchObject(podSelector('prod-db'));
    expect(podLabels[LABELS.managedBy]).toBe(MANAGED_BY);
  });

  it('meets the restricted Pod Security profile', () => {
    const sts = statefulSet();
    const pod = podSpecOf(sts);
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
    expect(pod.securityContext?.runAsUser).toBeGreaterThan(0);
    expect(pod.hostNetwork ?? false).toBe(false);
    expect(pod.volumes?.filter((v) => v.hostPath)).toEqual([]);
    for (const c of [...pod.containers, ...(pod.initContainers ?? [])]) {
      expect(c.securityContext, c.name).toMatchObject({
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem: true,
        capabilities: { drop: ['ALL'] },
      });
      expect(c.securityContext?.privileged ?? false).toBe(false);
      expect(c.securityContext?.capabilities?.add ?? []).toEqual([]);
    }
  });

  it('mounts no ServiceAccount token: the instance agent does not call the Kubernetes API', () => {
    expect(podSpecOf(statefulSet()).automountServiceAccountToken).toBe(false);
  });

  it('gives a read-only root filesystem writable mounts where PostgreSQL writes', () => {
    const mounts = containerOf(statefulSet()).volumeMounts!.filter((m) => !m.readOnly).map((m) => m.mountPath);
    expect(mounts).toEqual(expect.arrayContaining(['/var/lib/postgresql/data', '/var/run/postgresql', '/tmp', '/dev/shm']));
  });

  it('carries the restart asked for on the cluster into the pod template (a new value rolls the instances)', () => {
    const asked = seedCluster();
    asked.metadata.annotations = { [ANNOTATIONS.restartedAt]: '2026-12-05T03:00:00Z' };
    const annotations = (c: PostgreSQLCluster) => instanceStatefulSet(c, 'prod-db-2', IMAGES).spec!.template.metadata!.annotations!;
    expect(annotations(asked)[ANNOTATIONS.restartedAt]).toBe('2026-12-05T03:00:00Z');
    expect(annotations(seedCluster())[ANNOTATIONS.restartedAt]).toBeUndefined();
  });

  it('carries one instance\'s restart (restart-instances) into its own pod template, and nothing when none is given', () => {
    const annotations = (own?: { restartedAt?: string }) => instanceStatefulSet(seedCluster(), 'prod-db-2', IMAGES, {}, {}, own).spec!.template.metadata!.annotations!;
    expect(annotations({ restartedAt: '2026-12-05T03:00:00Z' })[ANNOTATIONS.instanceRestartedAt]).toBe('2026-12-05T03:00:00Z');
    expect(annotations()[ANNOTATIONS.instanceRestartedAt]).toBeUndefined();
  });

  it('runs <repository>:<version>, or spec.imageName when set', () => {
    expect(containerOf(statefulSet()).image).toBe('registry.example/pgpilot/postgresql:14.5');
    expect(containerOf(statefulSet(seedCluster({ imageName: 'mirror.example/pg:14.5-custom' }))).image).toBe('mirror.example/pg:14.5-custom');
  });

  it('passes resources to the container as strings', () => {
    const cluster = seedCluster({ resources: { requests: { cpu: 2, memory: '4Gi' }, limits: { cpu: 4 } } });
    expect(containerOf(statefulSet(cluster)).resources).toEqual({ requests: { cpu: '2', memory: '4Gi' }, limits: { cpu: '4' } });
    expect(containerOf(statefulSet(seedCluster({ resources: undefined }))).resources).toBeUndefined();
  });

  it('has a WAL volume, mount and claim only with walStorage', () => {
    const without = statefulSet();
    expect(claimsOf(without).map((c) => c.metadata?.name)).toEqual(['pgdata']);
    expect(containerOf(without).volumeMounts!.some((m) => m.name === 'pgwal')).toBe(false);
    expect(containerOf(without).env!.some((e) => e.name === 'PGPILOT_WAL_DIR')).toBe(false);

    const withWal = statefulSet(seedCluster({ walStorage: { size: '20Gi', storageClass: 'fast-wal' } }));
    expect(claimsOf(withWal).map((c) => [c.metadata?.name, c.spec?.resources?.requests?.storage, c.spec?.storageClassName])).toEqual([
      ['pgdata', '100Gi', 'fast-ssd'],
      ['pgwal', '20Gi', 'fast-wal'],
    ]);
    expect(containerOf(withWal).volumeMounts!.find((m) => m.name === 'pgwal')?.mountPath).toBe('/var/lib/postgresql/wal');
  });

  it('labels claim templates with the instance and managed-by labels', () => {
    for (const claim of claimsOf(statefulSet(seedCluster({ walStorage: { size: '20Gi' } })))) {
      expect(claim.metadata?.labels, claim.metadata?.name).toMatchObject({ [LABELS.instance]: 'prod-db-2', [LABELS.managedBy]: MANAGED_BY, [LABELS.cluster]: 'prod-db' });
    }
  });

  it('keeps the live claim templates (immutable) even when the spec grows or changes class', () => {
    const grown = seedCluster({ storage: { size: '200Gi', storageClass: 'other' } });
    const claim = claimsOf(statefulSet(grown, { pgdata: { size: '100Gi', storageClass: 'fast-ssd' } }))[0]!;
    expect(claim.spec?.resources?.requests?.storage).toBe('100Gi');
    expect(claim.spec?.storageClassName).toBe('fast-ssd');
    const fresh = claimsOf(statefulSet(grown))[0]!;
    expect([fresh.spec?.resources?.requests?.storage, fresh.spec?.storageClassName]).toEqual(['200Gi', 'other']);
  });

  it('prefers to keep instances apart by default', () => {
    const anti = podSpecOf(statefulSet()).affinity?.podAntiAffinity;
    expect(anti?.requiredDuringSchedulingIgnoredDuringExecution).toBeUndefined();
    expect(anti?.preferredDuringSchedulingIgnoredDuringExecution).toEqual([
      { weight: 100, podAffinityTerm: { labelSelector: { matchLabels: podSelector('prod-db') }, topologyKey: 'kubernetes.io/hostname' } },
    ]);
  });

  it('requires anti-affinity on the given topology key, or drops it when disabled', () => {
    const required = podSpecOf(statefulSet(seedCluster({ scheduling: { podAntiAffinity: 'required', topologyKey: 'topology.kubernetes.io/zone' } }))).affinity?.podAntiAffinity;
    expect(required?.preferredDuringSchedulingIgnoredDuringExecution).toBeUndefined();
    expect(required?.requiredDuringSchedulingIgnoredDuringExecution).toEqual([
      { labelSelector: { matchLabels: podSelector('prod-db') }, topologyKey: 'topology.kubernetes.io/zone' },
    ]);
    expect(podSpecOf(statefulSet(seedCluster({ scheduling: { podAntiAffinity: 'disabled' } }))).affinity).toBeUndefined();
  });

  it('passes tolerations, node selector and priority class, and fills topology spread selectors', () => {
    const tolerations = [{ key: 'dedicated', operator: 'Equal' as const, value: 'postgres', effect: 'NoSchedule' as const }];
    const pod = podSpecOf(
      statefulSet(
        seedCluster({
          scheduling: {
            tolerations,
            nodeSelector: { disk: 'ssd' },
            priorityClassName: 'db-critical',
            topologySpreadConstraints: [{ maxSkew: 1, topologyKey: 'topology.kubernetes.io/zone' }],
          },
        }),
      ),
    );
    expect(pod.tolerations).toEqual(tolerations);
    expect(pod.nodeSelector).toEqual({ disk: 'ssd' });
    expect(pod.priorityClassName).toBe('db-critical');
    expect(pod.topologySpreadConstraints).toEqual([
      { maxSkew: 1, topologyKey: 'topology.kubernetes.io/zone', whenUnsatisfiable: 'DoNotSchedule', labelSelector: { matchLabels: podSelector('prod-db') } },
    ]);
  });

  it('leaves scheduling fields out when the spec has none', () => {
    const pod = podSpecOf(statefulSet());
    expect([pod.tolerations, pod.nodeSelector, pod.topologySpreadConstraints, pod.priorityClassName]).toEqual([undefined, undefined, undefined, undefined]);
  });

  it('waits stopDelaySeconds for shutdown (60 by default)', () => {
    expect(podSpecOf(statefulSet()).terminationGracePeriodSeconds).toBe(60);
    expect(podSpecOf(statefulSet(seedCluster({ stopDelaySeconds: 300 }))).terminationGracePeriodSeconds).toBe(300);
  });
});

describe('metrics on the pod (spec.monitoring)', () => {
  const annotationsOf = (sts: V1StatefulSet) => sts.spec!.template.metadata!.annotations ?? {};
  it('declares the metrics port and the prometheus.io annotations by default, and tells the agent to serve', () => {
    const sts = statefulSet();
    expect(containerOf(sts).ports).toContainEqual({ name: 'metrics', containerPort: 9187, protocol: 'TCP' });
    expect(annotationsOf(sts)).toMatchObject({ 'prometheus.io/scrape': 'true', 'prometheus.io/port': '9187', 'prometheus.io/path': '/metrics' });
    expect(envOf(containerOf(sts).env, 'PGPILOT_METRICS_ENABLED')?.value).toBe('true');
  });

  it('with monitoring.enabled: true as without monitoring', () => {
    expect(statefulSet(seedCluster({ monitoring: { enabled: true } }))).toEqual(statefulSet());
  });

  it('drops the port and the annotations with monitoring.enabled: false, and the agent does not listen', () => {
    const sts = statefulSet(seedCluster({ monitoring: { enabled: false } }));
    expect(containerOf(sts).ports?.map((p) => p.name)).toEqual(['postgresql', 'agent']);
    expect(Object.keys(annotationsOf(sts)).filter((k) => k.startsWith('prometheus.io/'))).toEqual([]);
    expect(envOf(containerOf(sts).env, 'PGPILOT_METRICS_ENABLED')?.value).toBe('false');
  });
});

describe('custom exporter queries on the pod (spec.monitoring.customQueries)', () => {
  it('mounts each ConfigMap once, optional and read-only, with only the keys named, and lists the files for the agent', () => {
    const sts = statefulSet(seedCluster({ monitoring: { customQueries: [{ name: 'app-queries' }, { name: 'more.queries', key: 'slow.yaml' }, { name: 'app-queries', key: 'other.yaml' }, { name: 'app-queries' }] } }));
    const vols = podSpecOf(sts).volumes!.filter((v) => v.name.startsWith('custom-queries-'));
    expect(vols).toEqual([
      { name: 'custom-queries-0', configMap: { name: 'app-queries', optional: true, items: [{ key: 'queries.yaml', path: 'queries.yaml' }, { key: 'other.yaml', path: 'other.yaml' }] } },
      { name: 'custom-queries-1', configMap: { name: 'more.queries', optional: true, items: [{ key: 'slow.yaml', path: 'slow.yaml' }] } },
    ]);
    expect(containerOf(sts).volumeMounts!.filter((m) => m.name.startsWith('custom-queries-'))).toEqual([
      { name: 'custom-queries-0', mountPath: '/etc/pgpilot/custom-queries/app-queries', readOnly: true },
      { name: 'custom-queries-1', mountPath: '/etc/pgpilot/custom-queries/more.queries', readOnly: true },
    ]);
    expect(envOf(containerOf(sts).env, 'PGPILOT_CUSTOM_QUERIES')?.value).toBe(
      '/etc/pgpilot/custom-queries/app-queries/queries.yaml,/etc/pgpilot/custom-queries/app-queries/other.yaml,/etc/pgpilot/custom-queries/more.queries/slow.yaml',
    );
  });

  it('adds nothing without custom queries, with an empty list, or with monitoring off', () => {
    expect(statefulSet(seedCluster({ monitoring: { customQueries: [] } }))).toEqual(statefulSet());
    const off = statefulSet(seedCluster({ monitoring: { enabled: false, customQueries: [{ name: 'q' }] } }));
    expect(envOf(containerOf(off).env, 'PGPILOT_CUSTOM_QUERIES')).toBeUndefined();
    expect(podSpecOf(off).volumes!.map((v) => v.name).filter((n) => n.startsWith('custom-queries-'))).toEqual([]);
  });
});

describe('a built StatefulSet compared with its live form', () => {
  it('leaves a built StatefulSet alone once the apiserver has defaulted and canonicalized it', () => {
    const cluster = seedCluster({ resources: { requests: { cpu: '0.5', memory: '4Gi' }, limits: { cpu: 2, memory: '8Gi' } } });
    const built = instanceStatefulSet(cluster, 'prod-db-1', { instanceImageRepository: 'r' }) as unknown as Record<string, unknown>;
    const server = jsonClone(built) as { apiVersion?: string; kind?: string; metadata: Record<string, unknown>; spec: any; status?: unknown };
    delete server.apiVersion;
    delete server.kind;
    Object.assign(server.metadata, { uid: 'u', resourceVersion: '1', generation: 1 });
    server.spec.revisionHistoryLimit = 10;
    server.spec.template.spec.dnsPolicy = 'ClusterFirst';
    const container = server.spec.template.spec.containers[0];
    container.terminationMessagePath = '/dev/termination-log';
    container.resources = { requests: { cpu: '500m', memory: '4Gi' }, limits: { cpu: '2', memory: '8Gi' } };
    server.status = { replicas: 1, readyReplicas: 1 };
    expect(needsApply(built, server)).toBe(false);
    container.image = 'r:15.0';
    expect(needsApply(built, server)).toBe(true);
  });
});

describe('instance StatefulSet with backup access', () => {
  const sts = (cluster: PostgreSQLCluster, backup?: InstanceBackupAccess): V1StatefulSet => instanceStatefulSet(cluster, names.instance('prod-db', 1), IMAGES, {}, backup);
  const postgres = (s: V1StatefulSet) => s.spec!.template.spec!.containers.find((c) => c.name === 'postgres')!;
  const BACKUP_ENV = /^PGPILOT_(BACKUP|RESTORE)_/;

  it('has no backup env, volumes or mounts without a target or restore', () => {
    for (const s of [sts(s3Cluster()), sts(s3Cluster(), { target: null, restore: null })]) {
      const c = postgres(s);
      expect(c.env!.filter((e) => BACKUP_ENV.test(e.name))).toEqual([]);
      expect(s.spec!.template.spec!.volumes!.map((v) => v.name)).not.toContain('backup-target');
      expect(s.spec!.template.spec!.volumes!.map((v) => v.name)).not.toContain('restore-source');
      expect(c.volumeMounts!.map((m) => m.mountPath)).not.toContain(BACKUP_VOLUME_MOUNT);
    }
  });

  it('carries the env, volumes and mounts of both the target and the restore source', () => {
    const cluster = withBackup({ enabled: true, volume: { claimName: 'nfs-backups' } });
    const t = target(cluster);
    const source = { volume: { claimName: 'old-nfs' }, path: 'pgpilot/production/old-db', backupId: '20260101T020000Z' };
    const restore = restoreAccess(cluster, source);
    const s = sts(cluster, { target: t, restore });
    const c = postgres(s);
    for (const e of [...t.env, ...restore.env]) expect(c.env).toContainEqual(e);
    for (const m of [...t.mounts, ...restore.mounts]) expect(c.volumeMounts).toContainEqual(m);
    for (const v of [...t.volumes, ...restore.volumes]) expect(s.spec!.template.spec!.volumes).toContainEqual(v);
    expect(envOf(c.env, 'PGPILOT_BACKUP_COMPRESSION_LEVEL')!.value).toBe(String(DEFAULTS.compressionLevel));
    expect(DEFAULTS.compressionLevel).toBe(1);
    // No duplicate names (the apiserver refuses them).
    const names_ = (xs: Array<{ name: string }>) => xs.map((x) => x.name);
    expect(new Set(names_(c.env!)).size).toBe(c.env!.length);
    expect(new Set(names_(s.spec!.template.spec!.volumes!)).size).toBe(s.spec!.template.spec!.volumes!.length);
  });

  it('an S3 target: location and credential refs, and the compression level of the spec', () => {
    const cluster = withBackup({ enabled: true, s3: S3, compression: { level: 9 } });
    const t = target(cluster);
    const c = postgres(sts(cluster, { target: t }));
    for (const e of t.env) expect(c.env).toContainEqual(e);
    expect(envOf(c.env, 'PGPILOT_BACKUP_COMPRESSION_LEVEL')!.value).toBe('9');
    expect(c.env!.filter((e) => e.name.startsWith('PGPILOT_RESTORE_'))).toEqual([]);
  });

  it('an S3 target and an S3 restore source side by side: distinct credential volumes and files, each with its own Secret, no credential variables', () => {
    const cluster = withBackup({ enabled: true, s3: S3 });
    const source = { s3: { ...S3, bucket: 'old-backups', credentials: { secretName: 'old-creds' } }, path: 'pgpilot/production/old-db' };
    const spec = sts(cluster, { target: target(cluster), restore: restoreAccess(cluster, source) }).spec!.template.spec!;
    const c = spec.containers.find((x) => x.name === 'postgres')!;
    expect(new Set(c.env!.map((e) => e.name)).size).toBe(c.env!.length);
    // No variable of the instance (whose environment postgres inherits) comes from a Secret or names a key.
    expect(c.env!.filter((e) => e.valueFrom?.secretKeyRef || /ACCESS_KEY|SECRET_ACCESS/.test(e.name))).toEqual([]);
    const secretOf = (name: string) => spec.volumes!.find((v) => v.name === name)?.secret?.secretName;
    expect(secretOf('backup-credentials')).toBe(CREDS);
    expect(secretOf('restore-credentials')).toBe('old-creds');
    expect(c.volumeMounts).toEqual(expect.arrayContaining([
      { name: 'backup-credentials', mountPath: '/var/run/pgpilot/backup-s3', readOnly: true },
      { name: 'restore-credentials', mountPath: '/var/run/pgpilot/restore-s3', readOnly: true },
    ]));
    expect(locationOf(c.env, 'PGPILOT_RESTORE_SOURCE').store).toMatchObject({ bucket: 'old-backups', accessKeyIdFile: '/var/run/pgpilot/restore-s3/ACCESS_KEY_ID' });
    expect(locationOf(c.env).store).toMatchObject({ bucket: 'pg-backups', accessKeyIdFile: '/var/run/pgpilot/backup-s3/ACCESS_KEY_ID' });
  });
});

describe('restart-requiring settings on the pod template', () => {
  const hashOf = (params: Record<string, string>) => statefulSet(seedCluster({ postgresql: { parameters: params } })).spec!.template.metadata!.annotations![ANNOTATIONS.restartSettings];

  it('leaves the template alone for a setting a reload applies, and changes it for one that needs a restart', () => {
    const base = hashOf({});
    expect(base).toMatch(/^[0-9a-f]{16}$/);
    expect(hashOf({ work_mem: '64MB', log_min_duration_statement: '1s' })).toBe(base);
    expect(hashOf({ max_connections: '300' })).not.toBe(base);
    expect(hashOf({ shared_preload_libraries: 'pg_stat_statements' })).not.toBe(base);
  });

  it('follows resources through the tuned shared_buffers', () => {
    const small = statefulSet(seedCluster({ resources: { requests: { memory: '1Gi' } } })).spec!.template.metadata!.annotations![ANNOTATIONS.restartSettings];
    const big = statefulSet(seedCluster({ resources: { requests: { memory: '8Gi' } } })).spec!.template.metadata!.annotations![ANNOTATIONS.restartSettings];
    expect(small).not.toBe(big);
  });
});

describe('TLS in the instance pods', () => {
  it('mounts the server certificate Secret 0640 (root-owned, group fsGroup: PostgreSQL accepts the key) and never the CA key', () => {
    const sts = statefulSet();
    const vol = podSpecOf(sts).volumes!.find((v) => v.secret?.secretName === names.serverTlsSecret('prod-db'))!;
    expect(vol.secret!.defaultMode).toBe(0o640);
    expect(podSpecOf(sts).securityContext!.fsGroup).toBe(26);
    expect(containerOf(sts).volumeMounts).toContainEqual({ name: vol.name, mountPath: '/etc/pgpilot/tls/server', readOnly: true });
    expect(podSpecOf(sts).volumes!.some((v) => v.secret?.secretName === names.caSecret('prod-db'))).toBe(false);
  });

  it('tells the agent the CA file and the name to verify its connections against', () => {
    const env = containerOf(statefulSet()).env;
    expect(envOf(env, 'PGPILOT_TLS_CA_FILE')?.value).toBe('/etc/pgpilot/tls/server/ca.crt');
    expect(envOf(env, 'PGPILOT_TLS_SERVER_NAME')?.value).toBe('prod-db-rw.production.svc');
  });
});
