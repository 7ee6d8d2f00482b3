import { describe, expect, it } from 'vitest';
import type { PostgreSQLCluster } from '../../api/cluster.js';
import { reloadStep } from './reload.js';

const AT = '2026-12-05T03:30:00.000Z';
const cluster = (lastReload?: NonNullable<PostgreSQLCluster['status']>['lastReload']): PostgreSQLCluster => ({ metadata: { name: 'db' }, spec: { version: '16', storage: { size: '1Gi' } }, status: { phase: 'Healthy', ...(lastReload ? { lastReload } : {}) } });

describe('reloadStep', () => {
  it('waits for status.lastReload to answer this request; a failed instance fails it', () => {
    expect(reloadStep(cluster(), AT).state).toBe('waiting');
    expect(reloadStep(cluster({ requestedAt: '2026-01-01T00:00:00Z', completedAt: AT, instances: ['db-1'] }), AT).state).toBe('waiting');
    expect(reloadStep(cluster({ requestedAt: AT, completedAt: AT, instances: ['db-1', 'db-2'] }), AT)).toMatchObject({ state: 'done', line: 'db: reloaded db-1, db-2' });
    expect(reloadStep(cluster({ requestedAt: AT, completedAt: AT, instances: ['db-1'], failed: ['db-2: HTTP 409'] }), AT)).toMatchObject({ state: 'failed', line: 'db: reloaded db-1; failed: db-2: HTTP 409' });
  });
});
