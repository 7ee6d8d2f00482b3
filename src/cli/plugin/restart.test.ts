import type { V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import type { PostgreSQLCluster } from '../../api/cluster.js';
import { ANNOTATIONS } from '../../api/constants.js';
import { restartStep } from './restart.js';

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
