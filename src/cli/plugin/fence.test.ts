import type { V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import type { PostgreSQLCluster } from '../../api/cluster.js';
import { ANNOTATIONS, LABELS } from '../../api/constants.js';
import { EXIT } from './exit.js';
import { fencedList, fenceStep, unfenceStep } from './fence.js';
import { checkInstance } from './instances.js';
import { timeoutWithHint } from './operator-hint.js';

const cluster = (status: PostgreSQLCluster['status'], annotation?: string): PostgreSQLCluster => ({
  metadata: { name: 'db', ...(annotation !== undefined ? { annotations: { [ANNOTATIONS.fencedInstances]: annotation } } : {}) },
  spec: { version: '16', storage: { size: '1Gi' } },
  status: { instanceNames: ['db-1', 'db-2'], currentPrimary: 'db-1', ...status },
});
const pod = (instance: string, ready: boolean, role?: string): V1Pod => ({
  metadata: { name: `${instance}-0`, labels: { [LABELS.instance]: instance, ...(role ? { [LABELS.role]: role } : {}) } },
  status: { conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }] },
});
const cond = (type: string, status: string, message = '') => ({ type, status: status as 'True', reason: 'R', message, lastTransitionTime: '2026-01-01T00:00:00Z' });

describe('fence and unfence', () => {
  it('an unknown instance is a usage error naming the instances there are', () => {
    expect(() => checkInstance(cluster({}), 'db-9')).toThrow(expect.objectContaining({ exitCode: EXIT.usage, message: 'db-9 is not an instance of db (instances: db-1, db-2)' }));
  });

  it('adds to and removes from the list, keeping the other entries; an invalid value is not overwritten', () => {
    expect(fencedList(cluster({}), 'db-2', true)).toBe('["db-2"]');
    expect(fencedList(cluster({}, '["db-2"]'), 'db-1', true)).toBe('["db-1","db-2"]');
    expect(fencedList(cluster({}, '["db-2"]'), 'db-2', true)).toBe('["db-2"]');
    expect(fencedList(cluster({}, '["db-1","db-2"]'), 'db-1', false)).toBe('["db-2"]');
    expect(fencedList(cluster({}, '["db-2"]'), 'db-2', false)).toBeNull();
    expect(() => fencedList(cluster({}, 'db-2'), 'db-1', true)).toThrow(expect.objectContaining({ exitCode: EXIT.failed, message: expect.stringMatching(/not valid JSON; .*; fix or remove it first/) as string }));
  });

  it('fenced: listed by the operator, pod not Ready, no role label', () => {
    expect(fenceStep(cluster({}), [pod('db-2', true, 'replica')], 'db-2').state).toBe('waiting');
    expect(fenceStep(cluster({ fencedInstances: ['db-2'] }), [pod('db-2', false, 'replica')], 'db-2').state).toBe('waiting');
    expect(fenceStep(cluster({ fencedInstances: ['db-2'] }), [pod('db-2', false)], 'db-2')).toMatchObject({ state: 'done', line: 'db-2: fenced by the operator, pod not Ready' });
  });

  it('unfenced: a replica Ready and streaming; the primary accepting writes with the cluster Healthy', () => {
    const notStreaming = cond('ReplicasStreaming', 'False', '0 of 1 replicas streaming; not streaming: db-2 (Starting)');
    expect(unfenceStep(cluster({ fencedInstances: ['db-2'] }), [pod('db-2', true)], 'db-2', false).state).toBe('waiting');
    expect(unfenceStep(cluster({ conditions: [notStreaming] }), [pod('db-2', true)], 'db-2', false).state).toBe('waiting');
    expect(unfenceStep(cluster({ conditions: [cond('ReplicasStreaming', 'True')] }), [pod('db-2', false)], 'db-2', false).state).toBe('waiting');
    expect(unfenceStep(cluster({ conditions: [cond('ReplicasStreaming', 'True')] }), [pod('db-2', true, 'replica')], 'db-2', false).state).toBe('done');
    const primary = (phase: string, available: string) => cluster({ phase, conditions: [cond('PrimaryAvailable', available)] });
    expect(unfenceStep(primary('Degraded', 'False'), [pod('db-1', true)], 'db-1', true).state).toBe('waiting');
    expect(unfenceStep(primary('Healthy', 'True'), [pod('db-1', true, 'primary')], 'db-1', true).state).toBe('done');
  });

  it('a timeout says so when no operator pod runs', () => {
    expect(timeoutWithHint('timed out after 60 s', 'operator not running (no pod)')).toBe('timed out after 60 s; is the operator running? operator not running (no pod)');
    expect(timeoutWithHint('timed out after 60 s', '0.1.0 (img; ns/op)')).toBe('timed out after 60 s');
  });
});
