/**
 * The pure builders (spec → manifests): names, instance plans, quantities, PostgreSQL
 * configuration, credentials, the per-instance StatefulSet, Services, PDB and RBAC.
 */
import type { KubernetesObject, V1Container, V1PodSpec, V1StatefulSet } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { OPERATOR_MANAGED_PARAMETERS, type PostgreSQLCluster } from '../api/cluster.js';
import { LABELS, MANAGED_BY } from '../api/constants.js';
import { configMap } from './configmap.js';
import { planInstances } from './instance-plan.js';
import { podSelector } from '../api/labels.js';
import { instanceOrdinal, names } from '../api/names.js';
import { podDisruptionBudget } from './pdb.js';
import { postgresParameters, renderPgHba, renderPostgresqlConf, synchronousStandbyNames, tunedParameters } from './postgres-config.js';
import { parseQuantity } from '../api/quantity.js';
import { instanceRole, instanceRoleBinding, instanceServiceAccount } from './rbac.js';
import { credentialSecret, generatePassword, generatedSecretNames, secretNames } from './secrets.js';
import { clusterServices } from './services.js';
import { instanceStatefulSet, type ExistingClaims } from './statefulset.js';
import { CLUSTER_UID, jsonClone, seedCluster } from '../../test/support/cluster-fixtures.js';
import { needsApply } from '../runtime/compare.js';

const IMAGES = { instanceImageRepository: 'registry.example/pgpilot/postgresql' };
const GiB = 2 ** 30;

function statefulSet(cluster: PostgreSQLCluster = seedCluster(), existing?: ExistingClaims): V1StatefulSet {
  return instanceStatefulSet(cluster, names.instance(cluster.metadata.name!, 2), IMAGES, existing);
}
const podSpecOf = (sts: V1StatefulSet): V1PodSpec => sts.spec!.template.spec!;
const containerOf = (sts: V1StatefulSet): V1Container => podSpecOf(sts).containers[0]!;
const claimsOf = (sts: V1StatefulSet) => sts.spec!.volumeClaimTemplates ?? [];

describe('names', () => {
  it('derives instance, pod, Service and Secret names from the cluster name', () => {
    expect(names.instance('prod-db', 3)).toBe('prod-db-3');
    expect(names.pod('prod-db-3')).toBe('prod-db-3-0');
    expect([names.headless('c'), names.rw('c'), names.ro('c'), names.r('c')]).toEqual(['c-headless', 'c-rw', 'c-ro', 'c-r']);
    expect([names.superuserSecret('c'), names.replicationSecret('c'), names.appSecret('c')]).toEqual(['c-superuser', 'c-replication', 'c-app']);
  });

  it.each([
    ['prod-db-1', 1],
    ['prod-db-10', 10],
    ['prod-db-0', undefined],
    ['prod-db-01', undefined],
    ['prod-db-x', undefined],
    ['prod-db-1-2', undefined],
    ['other-db-1', undefined],
    ['prod-db', undefined],
  ])('instanceOrdinal("prod-db", %s) is %s', (instance, ordinal) => {
    expect(instanceOrdinal('prod-db', instance)).toBe(ordinal);
  });

  it('does not claim the instances of a cluster whose name extends this one', () => {
    // Cluster "db-1" owns "db-1-2"; cluster "db" must not read it as an ordinal.
    expect(instanceOrdinal('db', names.instance('db-1', 2))).toBeUndefined();
  });
});

describe('planInstances', () => {
  const inst = (...ordinals: number[]) => ordinals.map((o) => names.instance('db', o));

  it('creates instances 1..n for a new cluster', () => {
    expect(planInstances('db', [], 3)).toEqual({ keep: [], create: inst(1, 2, 3), remove: [] });
  });

  it('changes nothing when the count matches', () => {
    expect(planInstances('db', inst(1, 2, 3), 3, 'db-1')).toEqual({ keep: inst(1, 2, 3), create: [], remove: [] });
  });

  it('scales up into the lowest free ordinals, filling gaps first', () => {
    expect(planInstances('db', inst(1, 3), 4)).toEqual({ keep: inst(1, 3), create: inst(2, 4), remove: [] });
    expect(planInstances('db', inst(2, 5), 3)).toEqual({ keep: inst(2, 5), create: inst(1), remove: [] });
  });

  it('scales down from the highest ordinal first', () => {
    expect(planInstances('db', inst(1, 2, 3, 4, 5), 3, 'db-1')).toEqual({ keep: inst(1, 2, 3), create: [], remove: inst(5, 4) });
  });

  it('never removes the primary, even when it has the highest ordinal', () => {
    expect(planInstances('db', inst(1, 2, 3), 2, 'db-3')).toEqual({ keep: inst(1, 3), create: [], remove: inst(2) });
    expect(planInstances('db', inst(1, 2, 3), 1, 'db-2')).toEqual({ keep: inst(2), create: [], remove: inst(3, 1) });
  });

  it('ignores names that are not instances of this cluster', () => {
    expect(planInstances('db', ['db-1', 'db-replica', 'other-1', 'db-1-2'], 1)).toEqual({ keep: inst(1), create: [], remove: [] });
  });

  it('holds its invariants for every set of ordinals 1..6, size 1..6 and choice of primary', () => {
    const subsets = Array.from({ length: 64 }, (_, mask) => [1, 2, 3, 4, 5, 6].filter((o) => mask & (1 << (o - 1))));
    for (const existing of subsets) {
      for (const desired of [1, 2, 3, 4, 5, 6]) {
        for (const primaryOrdinal of [undefined, ...existing]) {
          const primary = primaryOrdinal === undefined ? undefined : names.instance('db', primaryOrdinal);
          const plan = planInstances('db', inst(...existing), desired, primary);
          const label = `existing=${existing} desired=${desired} primary=${primary}`;
          const after = [...plan.keep, ...plan.create].map((n) => instanceOrdinal('db', n)!);
          expect(after.length, label).toBe(desired);
          expect(new Set(after).size, label).toBe(desired);
          expect([...plan.keep, ...plan.remove].sort(), label).toEqual(inst(...existing).sort());
          if (primary) expect(plan.keep, label).toContain(primary);
          // Removed: the highest ordinals other than the primary, highest first.
          const removable = existing.filter((o) => o !== primaryOrdinal).sort((a, b) => b - a);
          expect(plan.remove, label).toEqual(inst(...removable.slice(0, plan.remove.length)));
          // Created: the lowest ordinals not in use.
          const free = [1, 2, 3, 4, 5, 6, 7].filter((o) => !existing.includes(o));
          expect(plan.create, label).toEqual(inst(...free.slice(0, plan.create.length)));
        }
      }
    }
  });
});

describe('parseQuantity', () => {
  it.each<[string | number, number]>([
    ['4Gi', 4 * GiB],
    ['128Mi', 128 * 2 ** 20],
    ['1.5Gi', 1.5 * GiB],
    ['500m', 0.5],
    ['1e3', 1000],
    ['1E3', 1000],
    ['2', 2],
    ['0.5', 0.5],
    ['.5', 0.5],
    ['1k', 1000],
    ['2G', 2e9],
    [' 8Gi ', 8 * GiB],
    [2, 2],
  ])('%j is %d', (input, value) => {
    expect(parseQuantity(input)).toBe(value);
  });

  it.each(['4GB', '', 'lots', '1.2.3', 'Gi', '4 Gi', '1e'])('refuses %j with a message naming it', (bad) => {
    expect(() => parseQuantity(bad)).toThrow(`"${bad}" is not a Kubernetes quantity`);
  });
});

describe('postgresql.conf', () => {
  const seedSpec = () => seedCluster().spec;

  it('tunes memory and CPU settings from the seed\'s limits (8Gi, 4 cores)', () => {
    expect(tunedParameters(seedSpec())).toEqual({
      shared_buffers: '2048MB',
      effective_cache_size: '6144MB',
      maintenance_work_mem: '512MB',
      work_mem: '20MB',
      max_worker_processes: '8',
      max_parallel_workers: '4',
      max_parallel_workers_per_gather: '2',
      max_parallel_maintenance_workers: '2',
    });
  });

  it('falls back on requests when there are no limits, and tunes nothing without resources', () => {
    const spec = seedCluster({ resources: { requests: { memory: '4Gi', cpu: 2 } } }).spec;
    expect(tunedParameters(spec)).toMatchObject({ shared_buffers: '1024MB', effective_cache_size: '3072MB', max_parallel_workers: '2' });
    expect(tunedParameters(seedCluster({ resources: undefined }).spec)).toEqual({});
  });

  it('never sets shared_buffers below 128MB', () => {
    expect(tunedParameters(seedCluster({ resources: { limits: { memory: '256Mi' } } }).spec).shared_buffers).toBe('128MB');
  });

  it('lets user parameters override tuned ones', () => {
    const params = postgresParameters(seedCluster({ postgresql: { parameters: { shared_buffers: '3GB', max_connections: '300' } } }).spec);
    expect(params.shared_buffers).toBe('3GB');
    expect(params.max_connections).toBe('300');
    expect(params.effective_cache_size).toBe('6144MB');
  });

  it('never lets user parameters override the replication settings it manages', () => {
    const user = { wal_level: 'minimal', hot_standby: 'off', wal_log_hints: 'off', synchronous_standby_names: 'nobody' };
    const params = postgresParameters(seedCluster({ postgresql: { parameters: user } }).spec);
    expect(params).toMatchObject({ wal_level: 'replica', hot_standby: 'on', wal_log_hints: 'on', synchronous_standby_names: 'ANY 1 (*)' });
  });

  // Regression (fixed): postgresParameters() forces max_wal_senders, max_replication_slots, wal_keep_size,
  // password_encryption, logging_collector, log_destination, log_line_prefix and log_checkpoints,
  // but the API (OPERATOR_MANAGED_PARAMETERS and its CEL rule) accepts them: a user's
  // `max_wal_senders: "20"` is admitted and then silently dropped. Either refuse them in the API
  // or let the user's value win.
  it('every parameter the operator forces is one the API refuses', () => {
    const forced = Object.keys(postgresParameters(seedSpec())).filter((k) => {
      const spec = seedCluster({ postgresql: { parameters: { [k]: 'user-value' } } }).spec;
      return postgresParameters(spec)[k] !== 'user-value';
    });
    expect(forced.filter((k) => !(OPERATOR_MANAGED_PARAMETERS as readonly string[]).includes(k))).toEqual([]);
  });

  it('sets a quorum of synchronous standbys only with synchronousCommit', () => {
    expect(synchronousStandbyNames(seedSpec())).toBe('ANY 1 (*)');
    expect(synchronousStandbyNames(seedCluster({ highAvailability: { synchronousCommit: true, synchronousReplicas: 2 } }).spec)).toBe('ANY 2 (*)');
    expect(synchronousStandbyNames(seedCluster({ highAvailability: { enabled: true, synchronousCommit: false } }).spec)).toBe('');
    expect(synchronousStandbyNames(seedCluster({ highAvailability: undefined }).spec)).toBe('');
  });

  it('renders one sorted, quoted line per parameter, doubling quotes and backslashes', () => {
    const conf = renderPostgresqlConf(seedCluster({ postgresql: { parameters: { application_name: "it's", search_path: '"$user", public', log_directory: 'C:\\logs' } } }).spec);
    const lines = conf.split('\n').filter((l) => l && !l.startsWith('#'));
    expect(lines).toContain("application_name = 'it''s'");
    expect(lines).toContain('search_path = \'"$user", public\'');
    expect(lines).toContain("log_directory = 'C:\\\\logs'");
    expect(lines).toContain("synchronous_standby_names = 'ANY 1 (*)'");
    const keys = lines.map((l) => l.split(' = ')[0]!);
    expect(keys).toEqual([...keys].sort());
    expect(conf.endsWith('\n')).toBe(true);
  });

  // Regression (fixed): parameter names are not validated anywhere (the API's CEL rule only compares them with
  // OPERATOR_MANAGED_PARAMETERS) and values may hold newlines; renderPostgresqlConf() writes both
  // verbatim. A name such as "work_mem = '4MB'\narchive_command" injects a line that sets a
  // refused parameter, and a value with a newline leaves an unterminated string that stops
  // PostgreSQL from starting. Names should match ^[a-z_][a-z0-9_.]*$ (in the API) and values
  // should escape newlines ('\n').
  it('refuses a parameter name or value that would inject a line, naming it', () => {
    const badName = { "work_mem = '4MB'\narchive_command": 'curl evil' };
    expect(() => renderPostgresqlConf(seedCluster({ postgresql: { parameters: badName } }).spec)).toThrow(/spec\.postgresql\.parameters\[.*archive_command.*\]: is not a PostgreSQL parameter name/);
    const badValue = { application_name: 'two\nlines' };
    expect(() => renderPostgresqlConf(seedCluster({ postgresql: { parameters: badValue } }).spec)).toThrow('spec.postgresql.parameters.application_name: may not contain a line break');
    const fine = renderPostgresqlConf(seedCluster({ postgresql: { parameters: { 'pg_stat_statements.max': '5000' } } }).spec);
    expect(fine).toContain("pg_stat_statements.max = '5000'");
  });
});

describe('pg_hba.conf', () => {
  const CATCH_ALL = 'host    all          all                  all       scram-sha-256';
  const REPLICATION = /^host\s+replication\s+streaming_replica\s+all\s+scram-sha-256$/m;

  it('always allows the replication user, with or without user rules', () => {
    expect(renderPgHba(seedCluster().spec)).toMatch(REPLICATION);
    expect(renderPgHba(seedCluster({ postgresql: { pg_hba: ['host all all 10.0.0.0/8 md5'] } }).spec)).toMatch(REPLICATION);
  });

  it('puts user rules, in order, before the operator\'s catch-all rule', () => {
    const user = ['hostssl app app 10.0.0.0/8 scram-sha-256', 'host all all 0.0.0.0/0 reject'];
    const lines = renderPgHba(seedCluster({ postgresql: { pg_hba: user } }).spec).split('\n');
    const at = (l: string) => lines.indexOf(l);
    expect(at(user[0]!)).toBeGreaterThan(-1);
    expect(at(user[0]!)).toBeLessThan(at(user[1]!));
    expect(at(user[1]!)).toBeLessThan(at(CATCH_ALL));
    expect(lines.findIndex((l) => REPLICATION.test(l))).toBeGreaterThan(at(user[1]!));
  });

  it('ends with the catch-all rule', () => {
    expect(renderPgHba(seedCluster().spec).trimEnd().split('\n').at(-1)).toBe(CATCH_ALL);
  });

  it('ships both files in the cluster\'s ConfigMap', () => {
    const cm = configMap(seedCluster());
    expect(cm.metadata?.name).toBe('prod-db-config');
    expect(cm.data).toEqual({ 'postgresql.conf': renderPostgresqlConf(seedCluster().spec), 'pg_hba.conf': renderPgHba(seedCluster().spec) });
  });
});

describe('credentials', () => {
  it('generates 32 URL-safe characters, different on every call', () => {
    const passwords = Array.from({ length: 50 }, generatePassword);
    for (const p of passwords) expect(p).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(new Set(passwords).size).toBe(passwords.length);
  });

  it('gives the app Secret URIs with the URL-encoded password and the rw Service\'s host', () => {
    const password = 'p@ss/w:rd?&=%';
    const data = credentialSecret(seedCluster(), 'app', password).stringData!;
    const host = 'prod-db-rw.production.svc';
    const enc = encodeURIComponent(password);
    expect(data).toEqual({
      username: 'app',
      password,
      dbname: 'app',
      host,
      port: '5432',
      uri: `postgresql://app:${enc}@${host}:5432/app`,
      'jdbc-uri': `jdbc:postgresql://${host}:5432/app?user=app&password=${enc}`,
    });
    expect(decodeURIComponent(new URL(data.uri!).password)).toBe(password);
  });

  it('uses the initdb owner and database in the app Secret', () => {
    const cluster = seedCluster({ bootstrap: { initdb: { owner: 'shop', database: 'orders' } } });
    const data = credentialSecret(cluster, 'app', 'x').stringData!;
    expect([data.username, data.dbname]).toEqual(['shop', 'orders']);
    expect(data.uri).toBe('postgresql://shop:x@prod-db-rw.production.svc:5432/orders');
  });

  it('names the users of the superuser and replication Secrets', () => {
    const cluster = seedCluster();
    expect(credentialSecret(cluster, 'superuser', 's').stringData).toEqual({ username: 'postgres', password: 's' });
    expect(credentialSecret(cluster, 'replication', 'r').stringData).toEqual({ username: 'streaming_replica', password: 'r' });
    expect(credentialSecret(cluster, 'replication', 'r').type).toBe('kubernetes.io/basic-auth');
  });

  it('generates every Secret by default, the agent\'s API token included', () => {
    expect(generatedSecretNames(seedCluster())).toEqual({ superuser: 'prod-db-superuser', replication: 'prod-db-replication', app: 'prod-db-app', agent: 'prod-db-agent' });
    const agent = credentialSecret(seedCluster(), 'agent', 'tok');
    expect(agent.stringData).toEqual({ token: 'tok' });
    expect(podSpecOf(statefulSet(seedCluster())).volumes!.find((v) => v.name === 'agent')?.secret?.secretName).toBe('prod-db-agent');
  });

  it('generates no superuser Secret when the user supplies one, and points everything at theirs', () => {
    const cluster = seedCluster({ superuserSecret: { name: 'my-superuser' } });
    expect(generatedSecretNames(cluster).superuser).toBeUndefined();
    expect(secretNames(cluster).superuser).toBe('my-superuser');
    const volume = podSpecOf(statefulSet(cluster)).volumes!.find((v) => v.name === 'superuser');
    expect(volume?.secret?.secretName).toBe('my-superuser');
    const secretRule = instanceRole(cluster).rules!.find((r) => r.resources?.includes('secrets'));
    expect(secretRule?.resourceNames).toContain('my-superuser');
  });

  it('generates no app Secret when initdb names one', () => {
    const cluster = seedCluster({ bootstrap: { initdb: { secret: { name: 'my-app' } } } });
    expect(generatedSecretNames(cluster).app).toBeUndefined();
    expect(secretNames(cluster).app).toBe('my-app');
  });
});

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

  it('gives a read-only root filesystem writable mounts where PostgreSQL writes', () => {
    const mounts = containerOf(statefulSet()).volumeMounts!.filter((m) => !m.readOnly).map((m) => m.mountPath);
    expect(mounts).toEqual(expect.arrayContaining(['/var/lib/postgresql/data', '/var/run/postgresql', '/tmp', '/dev/shm']));
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

describe('Services and disruption budget', () => {
  const byName = () => new Map(clusterServices(seedCluster()).map((s) => [s.metadata!.name!, s.spec!]));

  it('rw selects the primary, ro the replicas, r every instance', () => {
    const svc = byName();
    const pods = podSelector('prod-db');
    expect(svc.get('prod-db-rw')?.selector).toEqual({ ...pods, [LABELS.role]: 'primary' });
    expect(svc.get('prod-db-ro')?.selector).toEqual({ ...pods, [LABELS.role]: 'replica' });
    expect(svc.get('prod-db-r')?.selector).toEqual(pods);
  });

  it('headless has no cluster IP and publishes pods before they are ready', () => {
    const headless = byName().get('prod-db-headless');
    expect(headless).toMatchObject({ clusterIP: 'None', publishNotReadyAddresses: true, selector: podSelector('prod-db') });
    for (const name of ['prod-db-rw', 'prod-db-ro', 'prod-db-r']) expect(byName().get(name)?.clusterIP).toBeUndefined();
  });

  it('targets the container port named postgresql on 5432', () => {
    const containerPort = containerOf(statefulSet()).ports!.find((p) => p.name === 'postgresql');
    expect(containerPort?.containerPort).toBe(5432);
    for (const spec of byName().values()) expect(spec.ports).toEqual([{ name: 'postgresql', port: 5432, targetPort: 'postgresql', protocol: 'TCP' }]);
  });

  it('has no PDB for one instance, and maxUnavailable 1 over the instance pods otherwise', () => {
    expect(podDisruptionBudget(seedCluster(), 1)).toBeUndefined();
    for (const n of [2, 3]) {
      expect(podDisruptionBudget(seedCluster(), n)?.spec).toEqual({ maxUnavailable: 1, selector: { matchLabels: podSelector('prod-db') } });
    }
  });
});

describe('instance RBAC', () => {
  const rules = () => instanceRole(seedCluster()).rules!;

  it('has no wildcards', () => {
    for (const r of rules()) {
      for (const v of [...(r.apiGroups ?? []), ...(r.resources ?? []), ...r.verbs, ...(r.resourceNames ?? [])]) expect(v, JSON.stringify(r)).not.toContain('*');
    }
  });

  it.each([
    ['postgres.pgpilot.io', 'postgresqlclusters', ['prod-db']],
    ['', 'configmaps', ['prod-db-config']],
    ['', 'secrets', ['prod-db-superuser', 'prod-db-replication', 'prod-db-app', 'prod-db-agent']],
  ])('restricts %s %s to this cluster\'s objects by name', (group, resource, resourceNames) => {
    const matching = rules().filter((r) => r.apiGroups?.includes(group) && r.resources?.includes(resource));
    expect(matching.length).toBeGreaterThan(0);
    for (const r of matching) expect([...(r.resourceNames ?? [])].sort()).toEqual([...resourceNames].sort());
  });

  it('only reads Secrets', () => {
    for (const r of rules().filter((r) => r.resources?.includes('secrets'))) expect(r.verbs).toEqual(['get']);
  });

  it('lets backup Job pods create, record and delete PostgreSQLBackups, and nothing else of the API group by other names', () => {
    const backups = rules().filter((r) => r.apiGroups?.includes('postgres.pgpilot.io') && r.resources?.some((x) => x.startsWith('postgresqlbackups')));
    expect(backups.map((r) => ({ resources: r.resources, verbs: [...r.verbs].sort(), resourceNames: r.resourceNames }))).toEqual([
      { resources: ['postgresqlbackups'], verbs: ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'], resourceNames: undefined },
      { resources: ['postgresqlbackups/status'], verbs: ['get', 'patch', 'update'], resourceNames: undefined },
    ]);
    const group = rules().filter((r) => r.apiGroups?.includes('postgres.pgpilot.io')).flatMap((r) => r.resources ?? []);
    expect(group.sort()).toEqual(['postgresqlbackups', 'postgresqlbackups/status', 'postgresqlclusters']);
  });

  it('binds the Role to the instances\' ServiceAccount in the cluster\'s namespace', () => {
    const cluster = seedCluster();
    const binding = instanceRoleBinding(cluster);
    expect(binding.roleRef).toEqual({ apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: instanceRole(cluster).metadata!.name });
    expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name: instanceServiceAccount(cluster).metadata!.name, namespace: 'production' }]);
    expect(podSpecOf(statefulSet(cluster)).serviceAccountName).toBe(instanceServiceAccount(cluster).metadata!.name);
  });
});

describe('every owned object', () => {
  const cluster = seedCluster();
  const owned: KubernetesObject[] = [
    configMap(cluster),
    ...clusterServices(cluster),
    podDisruptionBudget(cluster, 3)!,
    instanceServiceAccount(cluster),
    instanceRole(cluster),
    instanceRoleBinding(cluster),
    ...(['superuser', 'replication', 'app'] as const).map((k) => credentialSecret(cluster, k, 'pw')),
    statefulSet(cluster),
  ];

  it.each(owned.map((o) => [`${o.kind}/${o.metadata?.name}`, o] as const))('%s is controlled by the cluster, labelled and in its namespace', (_id, obj) => {
    expect(obj.metadata?.namespace).toBe('production');
    expect(obj.metadata?.ownerReferences).toEqual([
      { apiVersion: 'postgres.pgpilot.io/v1', kind: 'PostgreSQLCluster', name: 'prod-db', uid: CLUSTER_UID, controller: true, blockOwnerDeletion: true },
    ]);
    expect(obj.metadata?.labels).toMatchObject({ [LABELS.managedBy]: MANAGED_BY, [LABELS.cluster]: 'prod-db' });
  });

  it('have distinct names within each kind', () => {
    const ids = owned.map((o) => `${o.kind}/${o.metadata?.name}`);
    expect(new Set(ids).size).toBe(ids.length);
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
