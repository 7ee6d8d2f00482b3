import type { V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { LABELS } from '../../api/constants.js';
import { EXIT } from './exit.js';
import { choosePod, databaseOf, psqlArgs } from './psql.js';

const pod = (instance: string, role: string | undefined, ready = true, phase = 'Running'): V1Pod => ({
  metadata: { name: `${instance}-0`, labels: { [LABELS.instance]: instance, ...(role ? { [LABELS.role]: role } : {}) } },
  status: { phase, conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }] },
});

describe('psql target', () => {
  const pods = [pod('db-3', 'replica'), pod('db-1', 'replica', false), pod('db-2', 'primary')];
  it('the ready primary by default, the first ready replica with --replica, any running instance by name', () => {
    expect(choosePod('db', pods, {}).metadata!.name).toBe('db-2-0');
    expect(choosePod('db', pods, { replica: true }).metadata!.name).toBe('db-3-0');
    expect(choosePod('db', pods, { instance: 'db-1' }).metadata!.name).toBe('db-1-0');
  });
  it('says what exists when nothing fits', () => {
    expect(() => choosePod('db', pods, { instance: 'db-9' })).toThrow(expect.objectContaining({ exitCode: EXIT.usage, message: expect.stringContaining('instances: db-1, db-2, db-3') }));
    expect(() => choosePod('db', [pod('db-1', undefined, false)], {})).toThrow(/db has no ready primary to connect to: db-1-0 \(no role, not ready\)/);
    expect(() => choosePod('db', [pod('db-1', 'primary', false, 'Pending')], { instance: 'db-1' })).toThrow(/db-1 is not running/);
  });
  it('kubectl exec of psql over the pod\'s socket as postgres, the user\'s psql arguments last', () => {
    expect(psqlArgs({ namespace: 'prod' }, { kubeconfig: '/k', context: 'c' }, 'db-2-0', 'app', ['-c', 'select 1'], false)).toEqual([
      '--kubeconfig', '/k', '--context', 'c', '--namespace', 'prod', 'exec', '-i', 'db-2-0', '-c', 'postgres', '--',
      'psql', '--host', '/var/run/postgresql', '--port', '5432', '--username', 'postgres', '--dbname', 'app', '-c', 'select 1',
    ]);
    expect(psqlArgs({ namespace: 'prod' }, {}, 'p', 'app', [], true)).toContain('-it');
  });
  it('the application database is the default', () => {
    expect(databaseOf({ spec: { version: '16', storage: { size: '1Gi' } } } as never)).toBe('app');
    expect(databaseOf({ spec: { version: '16', storage: { size: '1Gi' }, bootstrap: { initdb: { database: 'shop' } } } } as never)).toBe('shop');
  });
});
