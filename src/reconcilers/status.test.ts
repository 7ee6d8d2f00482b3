import type { KubernetesObject, V1Pod, V1StatefulSet } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import type { PostgreSQLCluster } from '../api/cluster.js';
import { LABELS } from '../api/constants.js';
import { names } from '../api/names.js';
import { instanceStatefulSet } from '../builders/statefulset.js';
import { findCondition, type ConditionType } from './conditions.js';
import { computeStatus, type StatusInputs } from './status.js';
import type { OwnedKind } from './types.js';
import { seedCluster } from '../../test/support/cluster-fixtures.js';
import { cacheOf } from '../../test/support/owned-cache.js';

describe('computeStatus', () => {
  const NOW = new Date('2024-05-01T12:00:00Z');
  const NS = 'production';
  const instances = (n: number) => Array.from({ length: n }, (_, i) => names.instance('prod-db', i + 1));

  const sts = (instance: string, ready: boolean): [OwnedKind, V1StatefulSet] => [
    'StatefulSet',
    { metadata: { name: instance, namespace: NS, labels: { [LABELS.cluster]: 'prod-db' } }, status: { replicas: 1, readyReplicas: ready ? 1 : 0 } },
  ];
  const pod = (instance: string, status: V1Pod['status']): [OwnedKind, V1Pod] => ['Pod', { metadata: { name: names.pod(instance), namespace: NS }, status }];
  const readyAll = (n: number) => instances(n).map((i) => sts(i, true));

  /** primary / runningVersion: what the ha reconciler set this pass (its status fields). */
  function status(opts: { objects?: Array<[OwnedKind, KubernetesObject]>; cluster?: PostgreSQLCluster; instanceNames?: string[]; primary?: string; runningVersion?: string } & Partial<StatusInputs> = {}) {
    const cluster = opts.cluster ?? seedCluster();
    const cache = cacheOf(opts.objects ?? []);
    const instanceNames = opts.instanceNames ?? instances(cluster.spec.instances ?? 1);
    const observed = {
      instanceNames,
      instances: instanceNames.map((name) => ({ name, statefulSet: cache.get<V1StatefulSet>('StatefulSet', NS, name), pod: cache.get<V1Pod>('Pod', NS, names.pod(name)), claims: [] })),
      primary: cluster.status?.currentPrimary ?? instanceNames[0],
    };
    const base = { ...cluster.status, ...(opts.primary ? { currentPrimary: opts.primary } : {}), ...(opts.runningVersion ? { version: opts.runningVersion } : {}) };
    return computeStatus({ cluster, observed, base, conditions: opts.conditions ?? [], failure: opts.failure, writes: opts.writes ?? [], now: opts.now ?? NOW });
  }
  // A cluster that was Healthy or Scaling has been ready once (firstReadyTime); a Degraded one may not have.
  const withStatus = (phase: string, extra: Partial<NonNullable<PostgreSQLCluster['status']>> = {}) => ({
    ...seedCluster(),
    status: { phase, ...(phase === 'Healthy' || phase === 'Scaling' ? { firstReadyTime: '2024-05-01T10:00:00Z' } : {}), ...extra },
  });
  const cond = (s: ReturnType<typeof status>, type: ConditionType) => findCondition(s.conditions, type);

  it('is Provisioning while a new cluster\'s instances come up', () => {
    const s = status({ objects: [sts('prod-db-1', true)] });
    expect(s.phase).toBe('Provisioning');
    expect(cond(s, 'Ready')).toMatchObject({ status: 'False', reason: 'InstancesNotReady' });
    expect(cond(s, 'Ready')?.message).toContain('prod-db-2 (StatefulSet not created yet)');
    expect(cond(s, 'Progressing')).toMatchObject({ status: 'True', reason: 'WaitingForInstances' });
    expect(s.readyInstances).toBe(1);
  });

  it('records firstReadyTime when every instance is first ready, and keeps it', () => {
    const now = new Date('2024-05-02T08:00:00.123Z');
    expect(status({ objects: readyAll(3), now }).firstReadyTime).toBe('2024-05-02T08:00:00Z');
    expect(status({ objects: [sts('prod-db-1', true)], now }).firstReadyTime).toBeUndefined();
    const earlier = withStatus('Healthy');
    expect(status({ cluster: earlier, objects: [sts('prod-db-1', false)], now }).firstReadyTime).toBe('2024-05-01T10:00:00Z');
  });

  it('stays Provisioning while every instance exists but is not ready yet, if it never was healthy', () => {
    expect(status({ objects: instances(3).map((i) => sts(i, false)) }).phase).toBe('Provisioning');
  });

  it('is Healthy with every instance ready, and converged without writes', () => {
    const s = status({ objects: readyAll(3) });
    expect(s.phase).toBe('Healthy');
    expect(s.readyInstances).toBe(3);
    expect(cond(s, 'Ready')).toMatchObject({ status: 'True', reason: 'AllInstancesReady', message: '3 of 3 instances ready' });
    expect(cond(s, 'Degraded')).toMatchObject({ status: 'False' });
    expect(cond(s, 'Progressing')).toMatchObject({ status: 'False', reason: 'Converged' });
  });

  it('is Scaling when a healthy cluster gains instances', () => {
    const cluster = { ...withStatus('Healthy'), spec: { ...seedCluster().spec, instances: 4 } };
    expect(status({ cluster, objects: readyAll(3) }).phase).toBe('Scaling');
  });

  it('is Degraded when an instance of a once-healthy cluster is not ready', () => {
    const s = status({ cluster: withStatus('Healthy'), objects: [...readyAll(2), sts('prod-db-3', false)] });
    expect(s.phase).toBe('Degraded');
    expect(s.readyInstances).toBe(2);
  });

  it('is Degraded, with the failure\'s reason and message, when the reconcile failed', () => {
    const failure = { reason: 'SecretNotFound', message: 'spec.superuserSecret names Secret "x", which does not exist' };
    const s = status({ objects: readyAll(3), failure });
    expect(s.phase).toBe('Degraded');
    expect(cond(s, 'Degraded')).toMatchObject({ status: 'True', ...failure });
  });

  it('is Deleting once the cluster has a deletion timestamp', () => {
    const cluster = seedCluster({}, { deletionTimestamp: new Date('2024-05-01T11:00:00Z') });
    expect(status({ cluster, objects: readyAll(3) }).phase).toBe('Deleting');
  });

  // Regression (fixed): status.ts treats any previous phase other than Provisioning as "ever healthy". A new
  // cluster whose first reconcile fails (a missing Secret, an apiserver conflict) gets phase
  // Degraded, and from then on shows Scaling (instances being created) or Degraded (instances
  // starting) instead of Provisioning, although it was never Healthy.
  it('returns to Provisioning after a failure, if it never was healthy', () => {
    const cluster = withStatus('Degraded');
    expect(status({ cluster, objects: [sts('prod-db-1', false)] }).phase).toBe('Provisioning');
    expect(status({ cluster, objects: instances(3).map((i) => sts(i, false)) }).phase).toBe('Provisioning');
  });

  it('names why unscheduled pods wait in the Ready message', () => {
    const unschedulable = { type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: '0/3 nodes are available: 3 Insufficient memory.' };
    const s = status({
      objects: [
        ...readyAll(1),
        sts('prod-db-2', false),
        pod('prod-db-2', { phase: 'Pending', conditions: [unschedulable] }),
        sts('prod-db-3', false),
        pod('prod-db-3', { phase: 'Pending', conditions: [{ ...unschedulable, message: undefined }] }),
      ],
    });
    const message = cond(s, 'Ready')!.message;
    expect(message).toContain('prod-db-2 (pod Pending, not scheduled: 0/3 nodes are available: 3 Insufficient memory.)');
    expect(message).toContain('prod-db-3 (pod Pending, not scheduled: Unschedulable)');
    expect(message.startsWith('1 of 3 instances ready')).toBe(true);
  });

  it('names a waiting container\'s reason, and a missing pod', () => {
    const waiting = { containerStatuses: [{ name: 'postgres', image: 'i', imageID: '', ready: false, restartCount: 0, state: { waiting: { reason: 'ImagePullBackOff', message: 'not found' } } }] };
    const s = status({ objects: [...readyAll(1), sts('prod-db-2', false), pod('prod-db-2', { phase: 'Pending', ...waiting }), sts('prod-db-3', false)] });
    expect(cond(s, 'Ready')?.message).toContain('prod-db-2 (container waiting: ImagePullBackOff (not found))');
    expect(cond(s, 'Ready')?.message).toContain('prod-db-3 (pod not created yet)');
  });

  it('reports what was written in Progressing, at most ten names', () => {
    const writes = Array.from({ length: 12 }, (_, i) => `Service/s${i}`);
    const s = status({ objects: readyAll(3), writes });
    expect(cond(s, 'Progressing')).toMatchObject({ status: 'True', reason: 'Applying' });
    expect(cond(s, 'Progressing')?.message).toMatch(/^Updated Service\/s0, .*Service\/s9 and 2 more$/);
  });

  it('passes the other reconcilers\' conditions through', () => {
    const s = status({ objects: readyAll(3), conditions: [{ type: 'ContinuousArchiving', status: 'False', reason: 'NoObjectStore', message: 'no target' }] });
    expect(cond(s, 'ContinuousArchiving')).toMatchObject({ status: 'False', reason: 'NoObjectStore', observedGeneration: 1 });
  });

  it('publishes the scale selector that matches the instance pods', () => {
    const s = status({ objects: readyAll(3) });
    expect(s.selector).toBe('postgres.pgpilot.io/cluster=prod-db,app.kubernetes.io/component=instance');
    const podLabels = instanceStatefulSet(seedCluster(), 'prod-db-1', { instanceImageRepository: 'r' }).spec!.template.metadata!.labels!;
    for (const term of s.selector!.split(',')) {
      const [k, v] = term.split('=') as [string, string];
      expect(podLabels[k], term).toBe(v);
    }
  });

  it('defaults currentPrimary and targetPrimary to the first instance, and keeps a known primary', () => {
    expect(status({ objects: readyAll(3) })).toMatchObject({ currentPrimary: 'prod-db-1', targetPrimary: 'prod-db-1' });
    const known = withStatus('Healthy', { currentPrimary: 'prod-db-2', targetPrimary: 'prod-db-3' });
    // targetPrimary is what spec.primary asks for, else the current primary.
    expect(status({ cluster: known, objects: readyAll(3) })).toMatchObject({ currentPrimary: 'prod-db-2', targetPrimary: 'prod-db-2' });
    const switching = { ...known, spec: { ...known.spec, primary: 'prod-db-3' } };
    expect(status({ cluster: switching, objects: readyAll(3) })).toMatchObject({ currentPrimary: 'prod-db-2', targetPrimary: 'prod-db-3' });
    // After a failover this pass, the ha reconciler's primary wins.
    expect(status({ cluster: known, objects: readyAll(3), primary: 'prod-db-1' })).toMatchObject({ currentPrimary: 'prod-db-1' });
    expect(status({ objects: [], instanceNames: [] })).not.toHaveProperty('currentPrimary');
  });

  it('reports generation, instance names, version and Secret names', () => {
    const cluster = seedCluster({ superuserSecret: { name: 'mine' } }, { generation: 7 });
    const s = status({ cluster, objects: readyAll(3), runningVersion: '15.18' });
    expect(s).toMatchObject({
      observedGeneration: 7,
      instanceNames: instances(3),
      // What the primary runs, not what the spec asks for.
      version: '15.18',
      secrets: { superuser: 'mine', replication: 'prod-db-replication', app: 'prod-db-app' },
    });
    expect(s.conditions?.every((c) => c.observedGeneration === 7)).toBe(true);
  });

  // Regression (fixed): the schema describes status.instances (the scale subresource's statusReplicasPath) as
  // "Number of instances that exist", but computeStatus reports instanceNames.length: the
  // planned instances, including those whose StatefulSets are not created yet. `kubectl get
  // --subresource=scale` and an HPA then see the target count as the current one.
  it('counts in status.instances the instances that exist', () => {
    const cluster = seedCluster({ instances: 3 });
    expect(status({ cluster, objects: [sts('prod-db-1', true)] }).instances).toBe(1);
  });
});
