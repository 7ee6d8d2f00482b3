// The primary monitor against a stand-in agent and a TCP listener on the PostgreSQL port: a frozen
// primary (TCP accepted, nothing answered) is confirmed failed; a slow agent in front of a live
// postmaster is not; a primary that answers but is not writable triggers a look without a failure.
import { createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { POSTGRES_PORT } from '../api/constants.js';
import { PrimaryMonitor, type MonitorEvent } from './primary-monitor.js';
import type { AgentClient } from '../instance/agent-client.js';
import type { InstanceStatus } from '../instance/api-types.js';

const HOST = `127.0.${100 + Math.floor(Math.random() * 100)}.${10 + Math.floor(Math.random() * 200)}`;

/** A listener on HOST:5432: 'postmaster' answers an SSLRequest with N, 'frozen' never answers. */
async function listen(mode: 'postmaster' | 'frozen'): Promise<{ server: Server; sockets: Socket[] }> {
  const sockets: Socket[] = [];
  const server = createServer((s) => {
    sockets.push(s);
    s.on('error', () => undefined);
    if (mode === 'postmaster') s.once('data', () => s.write('N'));
  });
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(POSTGRES_PORT, HOST, resolve));
  return { server, sockets };
}

const status = (over: Partial<InstanceStatus>) => ({ running: true, role: 'primary', fenced: false, ...over }) as InstanceStatus;
const agentThat = (answer: () => Promise<InstanceStatus>) => ({ status: () => answer() }) as unknown as AgentClient;
const never = () => new Promise<InstanceStatus>(() => undefined);

describe('PrimaryMonitor', () => {
  let monitor: PrimaryMonitor | undefined;
  let listener: { server: Server; sockets: Socket[] } | undefined;
  afterEach(async () => {
    monitor?.stop();
    for (const s of listener?.sockets ?? []) s.destroy();
    await new Promise((r) => (listener ? listener.server.close(r) : r(undefined)));
    listener = undefined;
  });

  const watch = (agent: AgentClient) => {
    const events: { event: MonitorEvent; at: number }[] = [];
    monitor = new PrimaryMonitor(agent, (_key, event) => events.push({ event, at: Date.now() }), { intervalMs: 100 });
    const started = Date.now();
    monitor.watch('ns/db', { host: HOST, token: 't' });
    return { events, started };
  };

  it('confirms a frozen primary (TCP accepted, nothing answers) failed within about a second', async () => {
    listener = await listen('frozen');
    const { events, started } = watch(agentThat(never));
    await expect.poll(() => events.find((e) => e.event === 'failed'), { timeout: 5000, interval: 20 }).toBeDefined();
    const failedAt = events.find((e) => e.event === 'failed')!.at;
    expect(failedAt - started).toBeLessThan(3000);
    // Recorded by the monitor just before it calls back (a millisecond may pass in between).
    const since = monitor!.failedSince('ns/db', HOST)!;
    expect(since).toBeLessThanOrEqual(failedAt);
    expect(failedAt - since).toBeLessThan(100);
  });

  it('never fails a live postmaster whose agent is slow', async () => {
    listener = await listen('postmaster');
    const { events } = watch(agentThat(never));
    await new Promise((r) => setTimeout(r, 1500));
    expect(events).toEqual([]);
    expect(monitor!.failedSince('ns/db', HOST)).toBeUndefined();
  });

  it('asks for a look, without a failure, when the primary answers but is not writable (restarted read-only)', async () => {
    listener = await listen('postmaster');
    const { events } = watch(agentThat(async () => status({ role: 'replica' })));
    await expect.poll(() => events.length, { timeout: 3000, interval: 20 }).toBeGreaterThan(0);
    expect(events.every((e) => e.event === 'unhealthy')).toBe(true);
    expect(monitor!.failedSince('ns/db', HOST)).toBeUndefined();
  });

  it('fails a primary whose agent answers but whose postgres is down', async () => {
    const { events } = watch(agentThat(async () => status({ running: false })));
    await expect.poll(() => events.find((e) => e.event === 'failed'), { timeout: 3000, interval: 20 }).toBeDefined();
  });

  it('says nothing while the primary is healthy', async () => {
    const { events } = watch(agentThat(async () => status({})));
    await new Promise((r) => setTimeout(r, 600));
    expect(events).toEqual([]);
  });
});
