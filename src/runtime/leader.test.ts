/**
 * Leader election against a loopback stand-in for the apiserver's Lease endpoints (with
 * resourceVersion checks), through the clients the operator uses. Short durations keep each
 * test within a few seconds; bounds are generous and only say "before", never "exactly when".
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Socket } from 'node:net';
import { KubeConfig, type CoordinationV1Api, type V1Lease } from '@kubernetes/client-node';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { makeClients } from './kube.js';
import { LeaderElector, type LeaderElectionOptions } from './leader.js';

const NS = 'ops';
const NAME = 'pgpilot-leader';
const LEASE_PATH = `/apis/coordination.k8s.io/v1/namespaces/${NS}/leases/${NAME}`;
const log = pino({ level: 'silent' });
// Others may take the Lease 2 s after it last changed; the leader must be gone after 1 s.
const TIMING = { leaseDurationSeconds: 2, renewDeadlineMs: 1_000, retryPeriodMs: 200 } as const;

interface LeaseServer {
  api: CoordinationV1Api;
  lease: () => V1Lease | undefined;
  /** Replace the stored Lease as another writer would (bumps resourceVersion). */
  write: (mutate: (l: V1Lease) => void) => void;
  /** While set, requests are accepted and never answered. */
  hang: boolean;
  /** Date.now() of the last accepted write whose holder was `identity`. */
  lastWriteBy: (identity: string) => number | undefined;
}

let cleanups: (() => Promise<void> | void)[] = [];

afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
});

async function leaseServer(): Promise<LeaseServer> {
  let lease: V1Lease | undefined;
  let rv = 0;
  const writes = new Map<string, number>();
  const sockets = new Set<Socket>();
  const state = { hang: false };
  const store = (l: V1Lease) => {
    lease = { ...l, apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { ...l.metadata, resourceVersion: String(++rv) } };
    if (l.spec?.holderIdentity) writes.set(l.spec.holderIdentity, Date.now());
    return lease;
  };
  const server: Server = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (state.hang) return;
      const send = (code: number, body: unknown) => {
        res.writeHead(code, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify(body));
      };
      const status = (code: number, reason: string) => send(code, { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason, code });
      const url = new URL(req.url ?? '/', 'http://x');
      if (req.method === 'GET' && url.pathname === LEASE_PATH) return lease ? send(200, lease) : status(404, 'NotFound');
      if (req.method === 'POST' && url.pathname === `/apis/coordination.k8s.io/v1/namespaces/${NS}/leases`) {
        if (lease) return status(409, 'AlreadyExists');
        return send(201, store(JSON.parse(Buffer.concat(chunks).toString()) as V1Lease));
      }
      if (req.method === 'PUT' && url.pathname === LEASE_PATH) {
        const body = JSON.parse(Buffer.concat(chunks).toString()) as V1Lease;
        if (!lease) return status(404, 'NotFound');
        if (body.metadata?.resourceVersion !== lease.metadata?.resourceVersion) return status(409, 'Conflict');
        return send(200, store(body));
      }
      status(404, 'NotFound');
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((r) => server.close(r));
  });
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'stub', server: `http://127.0.0.1:${(server.address() as { port: number }).port}`, skipTLSVerify: true }],
    users: [{ name: 'u', token: 't' }],
    contexts: [{ name: 'stub', cluster: 'stub', user: 'u' }],
    currentContext: 'stub',
  });
  // The operator's own clients, with their 10 s default: the elector must bound its calls itself.
  const api = makeClients(kc).coordination;
  return {
    api,
    lease: () => lease,
    write: (mutate) => {
      const next = structuredClone(lease!);
      mutate(next);
      store(next);
    },
    get hang() {
      return state.hang;
    },
    set hang(v: boolean) {
      state.hang = v;
    },
    lastWriteBy: (identity) => writes.get(identity),
  };
}

function elector(api: CoordinationV1Api, identity: string, extra: Partial<LeaderElectionOptions> = {}): LeaderElector {
  const e = new LeaderElector({ api, namespace: NS, name: NAME, identity, log, ...TIMING, ...extra });
  // Stop its timers whatever the test did (release() on a lost elector is a no-op on the API).
  cleanups.push(() => {
    void e.release();
  });
  return e;
}

/** Resolves with Date.now() when the elector reports lost leadership. */
function lost(): { onLost: () => void; at: Promise<number> } {
  let resolve!: (t: number) => void;
  const at = new Promise<number>((r) => (resolve = r));
  return { onLost: () => resolve(Date.now()), at };
}

function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms))]);
}

describe('LeaderElector', () => {
  it('refuses a renew deadline that is not shorter than the lease duration', () => {
    const api = {} as CoordinationV1Api;
    const base = { api, namespace: NS, name: NAME, identity: 'a', log };
    expect(() => new LeaderElector({ ...base, leaseDurationSeconds: 2, renewDeadlineMs: 2_000 })).toThrow(
      /renewDeadlineMs \(2000\) must be less than leaseDurationSeconds \(2 s\)/,
    );
    expect(() => new LeaderElector({ ...base, leaseDurationSeconds: 15, renewDeadlineMs: 10_000, retryPeriodMs: 10_000 })).toThrow(/retryPeriodMs \(10000\) must be less than renewDeadlineMs/);
    expect(() => new LeaderElector({ ...base, leaseDurationSeconds: 1.5 })).toThrow(/whole number of seconds/);
    expect(() => new LeaderElector(base)).not.toThrow();
  });

  it('acquires a free Lease, keeps renewing it, and releases it on shutdown', async () => {
    const s = await leaseServer();
    const a = elector(s.api, 'a');
    await within(a.run(() => {}), 3_000, 'a leads');
    expect(a.isLeader()).toBe(true);
    expect(s.lease()?.spec?.holderIdentity).toBe('a');
    const firstRenew = s.lease()?.spec?.renewTime;
    await sleep(600);
    expect(s.lease()?.spec?.renewTime).not.toEqual(firstRenew);
    expect(a.isLeader()).toBe(true);
    await a.release();
    expect(a.isLeader()).toBe(false);
    expect(s.lease()?.spec?.holderIdentity).toBeUndefined();
  });

  it('a leader whose renewals hang steps down within renewDeadline, before its Lease could expire for others', async () => {
    const s = await leaseServer();
    const { onLost, at } = lost();
    const a = elector(s.api, 'a');
    await within(a.run(onLost), 3_000, 'a leads');
    await sleep(300);
    s.hang = true;
    const hungAt = Date.now();
    const lostAt = await within(at, TIMING.renewDeadlineMs + 1_500, 'onLost');
    expect(a.isLeader()).toBe(false);
    // The safety property: gone before leaseDuration has passed since the Lease last changed.
    const lastWrite = s.lastWriteBy('a')!;
    expect(lostAt - lastWrite).toBeLessThan(TIMING.leaseDurationSeconds * 1000);
    expect(lostAt - hungAt).toBeLessThanOrEqual(TIMING.renewDeadlineMs + 1_500);
    // Once lost, it stays lost even when the apiserver answers again.
    s.hang = false;
    await sleep(500);
    expect(a.isLeader()).toBe(false);
  });

  it('steps down on its own timer even when a renewal call never returns at all', async () => {
    const s = await leaseServer();
    let stuck = false;
    // An API whose calls, once stuck, neither answer nor honour timeouts: only a timer can help.
    const api = {
      readNamespacedLease: (p: never, o: never) => (stuck ? new Promise(() => {}) : s.api.readNamespacedLease(p, o)),
      replaceNamespacedLease: (p: never, o: never) => (stuck ? new Promise(() => {}) : s.api.replaceNamespacedLease(p, o)),
      createNamespacedLease: (p: never, o: never) => (stuck ? new Promise(() => {}) : s.api.createNamespacedLease(p, o)),
    } as unknown as CoordinationV1Api;
    const { onLost, at } = lost();
    const a = elector(api, 'a');
    await within(a.run(onLost), 3_000, 'a leads');
    stuck = true;
    const stuckAt = Date.now();
    const lostAt = await within(at, TIMING.renewDeadlineMs + 1_500, 'onLost');
    expect(lostAt - stuckAt).toBeLessThanOrEqual(TIMING.renewDeadlineMs + 1_500);
    expect(a.isLeader()).toBe(false);
  });

  it('a leader steps down at once when it finds another replica holding the Lease', async () => {
    const s = await leaseServer();
    const { onLost, at } = lost();
    // A long renew deadline, so that "at once" (a retry period or so) is told apart from it.
    const a = elector(s.api, 'a', { leaseDurationSeconds: 6, renewDeadlineMs: 4_000 });
    await within(a.run(onLost), 3_000, 'a leads');
    s.write((l) => (l.spec!.holderIdentity = 'intruder'));
    await within(at, 1_500, 'onLost');
    expect(a.isLeader()).toBe(false);
    expect(s.lease()?.spec?.holderIdentity).toBe('intruder');
  });

  it('never two leaders: a standby takes a silent leader\'s Lease only after the leader stepped down', async () => {
    const s = await leaseServer();
    let aCut = false;
    // The leader alone loses the apiserver (a partition): its calls hang, the standby's do not.
    const cut = <K extends keyof CoordinationV1Api>(k: K) => (p: never, o: never) => (aCut ? new Promise(() => {}) : (s.api[k] as (p: never, o: never) => Promise<unknown>)(p, o));
    const aApi = { readNamespacedLease: cut('readNamespacedLease'), replaceNamespacedLease: cut('replaceNamespacedLease'), createNamespacedLease: cut('createNamespacedLease') } as unknown as CoordinationV1Api;
    const aLost = lost();
    const a = elector(aApi, 'a');
    await within(a.run(aLost.onLost), 3_000, 'a leads');
    const b = elector(s.api, 'b');
    let bLeadsAt = 0;
    const bLeads = b.run(() => {}).then(() => (bLeadsAt = Date.now()));
    await sleep(400);
    expect(b.isLeader()).toBe(false);
    aCut = true;
    const aLostAt = await within(aLost.at, TIMING.renewDeadlineMs + 1_500, 'a steps down');
    await within(bLeads, TIMING.leaseDurationSeconds * 1000 + 2_000, 'b takes over');
    expect(aLostAt).toBeLessThan(bLeadsAt);
    expect(s.lease()?.spec?.holderIdentity).toBe('b');
  });

  it('a standby takes over a released Lease without waiting for it to expire', async () => {
    const s = await leaseServer();
    const a = elector(s.api, 'a');
    await within(a.run(() => {}), 3_000, 'a leads');
    const b = elector(s.api, 'b');
    const bLeads = b.run(() => {});
    await sleep(400);
    expect(b.isLeader()).toBe(false);
    await a.release();
    // Well under the 2 s lease duration: a few retry periods.
    await within(bLeads, 1_500, 'b takes over');
    expect(s.lease()?.spec?.holderIdentity).toBe('b');
  });
});
