// Self-isolation with a real PostgreSQL 15 under the agent: a primary that hears from no operator
// and has no streaming replica for the timeout the operator sent restarts read-only by itself,
// and is promoted again when the operator confirms it. Needs no apiserver.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClusterSpec } from '../../src/api/cluster.js';
import { ISOLATION_HEADER, type InstanceStatus, type PromoteResult } from '../../src/instance/api-types.js';
import { AgentCluster, type AgentProcess, pickIps, until } from './agent-harness.js';

const spec = { version: '15', instances: 2, storage: { size: '1Gi' }, highAvailability: { enabled: true } } as ClusterSpec;

describe('self-isolation of a primary that nobody reaches', () => {
  const cluster = new AgentCluster();
  let solo: AgentProcess;
  let failed = false;

  beforeAll(async () => {
    await cluster.setup(spec);
    solo = await cluster.add('solo', (await pickIps(1))[0]!);
    await until('agent up', async () => (await solo.api('GET', '/healthz', undefined, null)).status === 200, 30_000);
    expect((await solo.api('POST', '/v1/bootstrap', { mode: 'initdb' })).status).toBe(202);
    await until('a running primary', async () => {
      const s = await solo.status();
      if (s.phase === 'Failed') throw new Error(`bootstrap failed: ${s.lastError}`);
      return s.phase === 'Running' && s.role === 'primary' ? s : undefined;
    }, 60_000);
  });

  afterAll(async () => {
    await cluster.cleanup(failed || process.env.PGPILOT_E2E_KEEP_LOGS === '1');
  });

  it('restarts read-only after the timeout without operator calls or replicas, and is promoted back', async () => {
    try {
      // The operator's calls carry the timeout; this one is the last the agent hears for a while.
      // Timed from before the call: the agent counts from when the request reached it, which is
      // after t0 (timing from the answer instead made a slow answer look like an early isolation).
      const t0 = Date.now();
      const told = await solo.api<InstanceStatus>('GET', '/v1/status', undefined, undefined, { [ISOLATION_HEADER]: '2' });
      expect(told.body.role).toBe('primary');
      // Watched over SQL only: an API call would count as the operator reaching it.
      await until('read-only by itself', async () => (await solo.sql<{ r: boolean }>('SELECT pg_is_in_recovery() AS r').catch(() => []))[0]?.r === true, 30_000, 200);
      const tookMs = Date.now() - t0;
      expect(tookMs).toBeGreaterThanOrEqual(2000);
      await expect(solo.sql('CREATE TABLE written_while_isolated (v int)')).rejects.toThrow(/read-only/);
      // SQL answers read-only a moment before the agent marks its isolate operation done.
      const s = await until('the isolate operation finished', async () => {
        const st = await solo.status();
        return st.operation?.state === 'running' ? undefined : st;
      }, 10_000, 100);
      expect(s).toMatchObject({ role: 'replica', awaitingRole: true, following: null, operation: { kind: 'isolate', state: 'succeeded' } });
      console.log(`[agent-isolation] read-only ${tookMs} ms after the last operator call (timeout 2 s)`);
      const promoted = await solo.api<PromoteResult>('POST', '/v1/promote?wait=10000', undefined, undefined, { [ISOLATION_HEADER]: '0' });
      expect(promoted.status).toBe(200);
      await solo.sql('CREATE TABLE written_after_confirmation (v int)');
      // Timeout 0 (what the operator sends for one instance): it stays a primary however long it is alone.
      await new Promise((r) => setTimeout(r, 3500));
      expect((await solo.sql<{ r: boolean }>('SELECT pg_is_in_recovery() AS r'))[0]!.r).toBe(false);
    } catch (err) {
      failed = true;
      throw err;
    }
  });
});
