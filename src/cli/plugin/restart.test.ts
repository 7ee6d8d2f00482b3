import type { V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import type { PostgreSQLCluster } from '../../api/cluster.js';
import { ANNOTATIONS } from '../../api/constants.js';
import { restartInstancesValue, restartInstanceStep, restartStep } from './restart.js';

const AT = '2026-12-05T03:30:00.000Z';
const cluster = (status: PostgreSQLCluster['status']): PostgreSQLCluster => ({ metadata: { name: 'db' }, spec: { version: '16', storage: { size: '1Gi' } }, status });
const pod = (at: string | undefined, isReady = true): V1Pod => ({
  metadata: { annotations: at ? { [ANNOTATIONS.restartedAt]: at } : {} },
  status: { conditions: [{ type: 'Ready', status: isReady ? 'True' : 'False' }] },
});

describe('restartStep', () => {
  it('waits until every instance runs the restarted template, ready, with no rollout left', () => {
    const rolling = cluster({ phase: 'Healthy', instanceNames: ['db-1', 'db-2'], rollout: { updated: 1, total: 2, updating: 'db-1' } });
    expect(restartStep(rolling, [pod(AT), pod(undefined)], AT)).toEqual({ state: 'waiting', line: 'db: 1 of 2 instances restarted, phase Healthy, restarting db-1' });
    expect(restartStep(cluster({ phase: 'Healthy', instanceNames: ['db-1', 'db-2'] }), [pod(AT), pod(AT, false)], AT).state).toBe('waiting');
    expect(restartStep(cluster({ phase: 'Healthy', instanceNames: ['db-1', 'db-2'] }), [pod(AT), pod(AT)], AT).state).toBe('done');
    // An earlier restart's pods do not count.
    expect(restartStep(cluster({ phase: 'Healthy', instanceNames: ['db-1'] }), [pod('2026-01-01T00:00:00Z')], AT).state).toBe('waiting');
  });
});

describe('restart of one instance', () => {
  const one = (instance: string, at: string | undefined, isReady = true): V1Pod => ({
    metadata: { name: `${instance}-0`, labels: { 'postgres.pgpilot.io/instance': instance }, annotations: at ? { [ANNOTATIONS.instanceRestartedAt]: at } : {} },
    status: { conditions: [{ type: 'Ready', status: isReady ? 'True' : 'False' }] },
  });

  it('keeps the other instances\' entries, replaces an invalid value', () => {
    const c = cluster({ instanceNames: ['db-1', 'db-2'] });
    expect(restartInstancesValue(c, 'db-2', AT)).toBe(JSON.stringify({ 'db-2': AT }));
    c.metadata.annotations = { [ANNOTATIONS.restartInstances]: JSON.stringify({ 'db-1': '2026-01-01T00:00:00Z' }) };
    expect(JSON.parse(restartInstancesValue(c, 'db-2', AT))).toEqual({ 'db-1': '2026-01-01T00:00:00Z', 'db-2': AT });
    c.metadata.annotations = { [ANNOTATIONS.restartInstances]: 'nonsense' };
    expect(restartInstancesValue(c, 'db-2', AT)).toBe(JSON.stringify({ 'db-2': AT }));
  });

  it('waits until that instance\'s pod carries the value, Ready, and the cluster is Healthy with no rollout', () => {
    const healthy = cluster({ phase: 'Healthy', instanceNames: ['db-1', 'db-2'], currentPrimary: 'db-1' });
    expect(restartInstanceStep(healthy, [one('db-1', undefined), one('db-2', undefined)], 'db-1', AT).state).toBe('waiting');
    const switching = cluster({ phase: 'Healthy', instanceNames: ['db-1', 'db-2'], currentPrimary: 'db-1', rollout: { updated: 1, total: 2, switchoverTo: 'db-2' } });
    expect(restartInstanceStep(switching, [one('db-1', undefined), one('db-2', undefined)], 'db-1', AT).line).toContain('switching over to db-2');
    expect(restartInstanceStep(healthy, [one('db-1', AT, false)], 'db-1', AT).state).toBe('waiting');
    expect(restartInstanceStep(healthy, [one('db-1', AT), one('db-2', undefined)], 'db-1', AT).state).toBe('done');
  });
});
