// The observation step: the instance plan from the caches, and one agent status call per running
// instance per pass. The agent client, token store, monitor and Lease are small fakes: the real
// ones are exercised against real agents in e2e/ha.test.ts and e2e/chaos.test.ts.
import type { KubernetesObject, V1Pod, V1StatefulSet } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import type { PostgreSQLCluster } from '../api/cluster.js';
import { LABELS } from '../api/constants.js';
import { names } from '../api/names.js';
import { AgentError, type AgentClient, type AgentEndpoint } from '../instance/agent-client.js';
import type { InstanceStatus } from '../instance/api-types.js';
import { agentEndpointAt, isolationSecondsFor, Observer, type AgentTokens } from './observe.js';
import type { AgentCertificates } from './agent-certificates.js';
import type { PrimaryLeases } from './primary-lease.js';
import type { PrimaryMonitor } from './primary-monitor.js';
import type { OwnedKind } from './types.js';
import { seedCluster } from '../../test/support/cluster-fixtures.js';
import { cacheOf } from '../../test/support/owned-cache.js';

const NS = 'production';

/** Instance i of prod-db: its StatefulSet, and a running pod at 10.0.0.i (or none). */
function instance(i: number, pod = true): Array<[OwnedKind, KubernetesObject]> {
  const name = `prod-db-${i}`;
  const labels = { [LABELS.cluster]: 'prod-db', [LABELS.component]: 'instance', [LABELS.instance]: name };
  const sts: V1StatefulSet = { metadata: { name, namespace: NS, labels } };
  const p: V1Pod = { metadata: { name: names.pod(name), namespace: NS, labels: { ...labels, [LABELS.role]: i === 1 ? 'primary' : 'replica' } }, status: { phase: 'Running', podIP: `10.0.0.${i}` } };
  return [['StatefulSet', sts], ...(pod ? [['Pod', p] as [OwnedKind, KubernetesObject]] : [])];
}

interface Fakes {
  calls: string[];
  observer: Observer;
  tokenReads: () => number;
}

function fakes(opts: { answer?: (host: string, token: string) => InstanceStatus; failedPrimary?: string; holder?: string; tokens?: string[] } = {}): Fakes {
  const calls: string[] = [];
  let reads = 0;
  const tokenList = opts.tokens ?? ['t1'];
  let current: string | undefined;
  const agent = {
    status: async (ep: AgentEndpoint) => {
      calls.push(ep.host);
      if (ep.token !== tokenList[tokenList.length - 1]) throw new AgentError(401, 'unauthorized');
      return opts.answer?.(ep.host, ep.token) ?? ({ phase: 'Running', running: true } as InstanceStatus);
    },
  } as unknown as AgentClient;
  const tokens = {
    get: async () => (current ??= tokenList[Math.min(reads++, tokenList.length - 1)]),
    forget: () => {
      current = undefined;
    },
  } as unknown as AgentTokens;
  const monitor = { failedSince: (_key: string, host: string) => (host === opts.failedPrimary ? 1 : undefined) } as unknown as PrimaryMonitor;
  const leases = { holder: async () => opts.holder } as unknown as PrimaryLeases;
  // No CA in these clusters: their pods (made without agent TLS) are called over plain HTTP.
  const certificates = { get: async () => undefined, forget: () => undefined } as unknown as AgentCertificates;
  return { calls, observer: new Observer({ agent, tokens, certificates, monitor, leases }), tokenReads: () => reads };
}

const cluster = (patch: Partial<PostgreSQLCluster['spec']> = {}): PostgreSQLCluster => {
  const c = seedCluster(patch);
  c.metadata = { ...c.metadata, name: 'prod-db', namespace: NS, uid: 'u-1' };
  return c;
};

describe('Observer', () => {
  it('asks every running instance once, and plans the instances from the caches', async () => {
    const f = fakes({ holder: 'prod-db-2' });
    const o = await f.observer.observe(cluster({ instances: 3 }), cacheOf([...instance(1), ...instance(2), ...instance(3, false)]));
    expect(f.calls.sort()).toEqual(['10.0.0.1', '10.0.0.2']);
    expect(o.statusCalls).toBe(2);
    expect(o.instanceNames).toEqual(['prod-db-1', 'prod-db-2', 'prod-db-3']);
    expect(o.primary).toBe('prod-db-2');
    expect(o.leaseHolder).toBe('prod-db-2');
    expect(o.agentToken).toBe('t1');
    expect(o.instances.map((i) => [i.name, i.podIP, !!i.statefulSet, i.agent?.phase])).toEqual([
      ['prod-db-1', '10.0.0.1', true, 'Running'],
      ['prod-db-2', '10.0.0.2', true, 'Running'],
      ['prod-db-3', undefined, true, undefined],
    ]);
  });

  it('plans creations and removals (scale 3 → 2 removes the highest ordinal, never the primary)', async () => {
    const f = fakes({ holder: 'prod-db-3' });
    const o = await f.observer.observe(cluster({ instances: 2 }), cacheOf([...instance(1), ...instance(2), ...instance(3)]));
    expect(o.plan).toEqual({ keep: ['prod-db-1', 'prod-db-3'], create: [], remove: ['prod-db-2'] });
    expect(o.statefulSets).toHaveLength(3);
    expect(f.calls.sort()).toEqual(['10.0.0.1', '10.0.0.3']);
  });

  it('does not ask a primary the monitor confirmed failed (a frozen one would hold the pass)', async () => {
    const f = fakes({ holder: 'prod-db-1', failedPrimary: '10.0.0.1' });
    const o = await f.observer.observe(cluster({ instances: 2 }), cacheOf([...instance(1), ...instance(2)]));
    expect(f.calls).toEqual(['10.0.0.2']);
    expect(o.instances[0]!.agent).toBeUndefined();
  });

  it('after a 401 reads the token again and asks once more', async () => {
    const f = fakes({ holder: 'prod-db-1', tokens: ['old', 'new'] });
    const o = await f.observer.observe(cluster({ instances: 2 }), cacheOf([...instance(1), ...instance(2)]));
    expect(o.statusCalls).toBe(4);
    expect(o.agentToken).toBe('new');
    expect(o.instances.every((i) => i.agent?.running)).toBe(true);
  });

  it('reports operations that ended since the last pass', async () => {
    let state: 'running' | 'succeeded' = 'running';
    const op = () => ({ kind: 'follow', state, step: 'rewind', startedAt: '2026-12-04T10:00:00Z' });
    const f = fakes({ holder: 'prod-db-1', answer: () => ({ phase: 'Running', running: true, operation: op() }) as unknown as InstanceStatus });
    const c = cluster({ instances: 2 });
    const cache = cacheOf([...instance(1), ...instance(2)]);
    expect((await f.observer.observe(c, cache)).endedOperations).toEqual([]);
    state = 'succeeded';
    const ended = (await f.observer.observe(c, cache)).endedOperations;
    expect(ended.map((e) => [e.instance, e.op.state])).toEqual([
      ['prod-db-1', 'succeeded'],
      ['prod-db-2', 'succeeded'],
    ]);
    expect((await f.observer.observe(c, cache)).endedOperations).toEqual([]);
  });

  it('asks nobody before the token exists, and nobody from the caches alone', async () => {
    const f = fakes({ holder: undefined, tokens: [] });
    const c = cluster({ instances: 1 });
    const o = await f.observer.observe(c, cacheOf(instance(1)));
    expect(o.agentToken).toBeUndefined();
    expect(f.calls).toEqual([]);
    const fromCache = f.observer.fromCache(c, cacheOf(instance(1)));
    expect(fromCache.primary).toBe('prod-db-1');
    expect(fromCache.statusCalls).toBe(0);
  });
});

describe('isolationSecondsFor', () => {
  it('is the spec timeout with HA and more than one instance, else 0', () => {
    expect(isolationSecondsFor(cluster({ instances: 3 }), 3)).toBe(30);
    expect(isolationSecondsFor(cluster({ instances: 3, highAvailability: { isolationTimeoutSeconds: 12 } }), 3)).toBe(12);
    expect(isolationSecondsFor(cluster({ instances: 1 }), 1)).toBe(0);
    expect(isolationSecondsFor(cluster({ instances: 3, highAvailability: { enabled: false } }), 3)).toBe(0);
  });
});

describe('agentEndpointAt', () => {
  const tls = { id: 'ns/db#1', ca: 'CA', cert: 'CERT', key: 'KEY', servername: 'db-rw.ns.svc' };
  const o = { agentToken: 't', isolationSeconds: 5, instances: [{ name: 'db-1', podIP: '10.0.0.1', agentTls: true, claims: [] }, { name: 'db-2', podIP: '10.0.0.2', agentTls: false, claims: [] }] };
  it('a pod serving mutual TLS is called with the client certificate, an older one over plain HTTP', () => {
    expect(agentEndpointAt({ ...o, agentTls: tls }, '10.0.0.1')).toEqual({ host: '10.0.0.1', token: 't', isolationSeconds: 5, tls });
    expect(agentEndpointAt({ ...o, agentTls: tls }, '10.0.0.2')).toEqual({ host: '10.0.0.2', token: 't', isolationSeconds: 5 });
  });
  it('without a client certificate (no CA yet) or a token, a TLS agent cannot be called', () => {
    expect(agentEndpointAt(o, '10.0.0.1')).toBeUndefined();
    expect(agentEndpointAt({ ...o, agentToken: undefined, agentTls: tls }, '10.0.0.2')).toBeUndefined();
  });
});
