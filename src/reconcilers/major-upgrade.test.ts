import { describe, expect, it } from 'vitest';
import type { V1Job, V1Pod } from '@kubernetes/client-node';
import { jobStateOf, reasonFromLog } from './major-upgrade.js';

describe('reasonFromLog', () => {
  it('takes the msg of the last error line a Job printed', () => {
    const log = ['{"level":"info","msg":"running pg_upgrade"}', '{"level":"error","msg":"pg_upgrade --check failed at \\"Checking for reg* data types\\": public.t.f"}'].join('\n');
    expect(reasonFromLog(log)).toBe('pg_upgrade --check failed at "Checking for reg* data types": public.t.f');
  });
  it('says what a killed container was doing when it had no error to print', () => {
    const log = '{"level":"info","tool":"pg_upgrade","msg":"Checking cluster versions                 ok"}';
    expect(reasonFromLog(log, { exitCode: 137, reason: 'Error' })).toBe('the container ended with exit code 137 (Error) without saying why; its last line: Checking cluster versions ok');
    expect(reasonFromLog('')).toBeUndefined();
  });
});

describe('jobStateOf', () => {
  const job = (annotation: string, status: V1Job['status'] = {}): V1Job => ({ metadata: { annotations: { 'postgres.pgpilot.io/upgrade-started-at': annotation } }, status });
  const pod = (exitCode?: number, message?: string): V1Pod => ({ status: { containerStatuses: [{ name: 'upgrade', image: 'x', imageID: '', ready: false, restartCount: 0, state: exitCode === undefined ? { running: {} } : { terminated: { exitCode, ...(message ? { message } : {}) } } }] } });
  it('tells absent, stale, running, succeeded and failed apart', () => {
    expect(jobStateOf(undefined, [], 'upgrade', 't1')).toEqual({ state: 'absent' });
    expect(jobStateOf(job('t0'), [], 'upgrade', 't1')).toEqual({ state: 'stale' });
    expect(jobStateOf(job('t1'), [], 'upgrade', undefined)).toEqual({ state: 'stale' });
    expect(jobStateOf(job('t1'), [pod()], 'upgrade', 't1')).toEqual({ state: 'running' });
    // The pod's exit decides before the Job controller catches up.
    expect(jobStateOf(job('t1'), [pod(0)], 'upgrade', 't1')).toEqual({ state: 'succeeded' });
    expect(jobStateOf(job('t1', { succeeded: 1 }), [], 'upgrade', 't1')).toEqual({ state: 'succeeded' });
    expect(jobStateOf(job('t1'), [pod(1, '{"level":"error","msg":"pg_upgrade failed"}')], 'upgrade', 't1')).toEqual({ state: 'failed', message: 'pg_upgrade failed' });
    expect(jobStateOf(job('t1', { conditions: [{ type: 'Failed', status: 'True', reason: 'DeadlineExceeded', message: 'too long' }] }), [], 'upgrade', 't1')).toEqual({ state: 'failed', message: 'DeadlineExceeded: too long' });
  });
});
