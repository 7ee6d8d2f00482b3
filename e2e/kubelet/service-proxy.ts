// A userspace service proxy on loopback. Every ClusterIP Service (not headless, with a selector)
// gets its own loopback address (from 127.0.200.0 on: <base>.<200+i/254>.<1+i%254>) and listens
// there on each of its ports, forwarding each TCP connection to a ready endpoint, round robin.
//
// Deviation from Kubernetes: endpoints are computed here, not read from EndpointSlices. The
// apiserver refuses loopback addresses in Endpoints/EndpointSlices, so the endpointslice
// controller writes none for pods with 127.x IPs. Instead: Service selector → pods with those
// labels, not terminating, Ready=True, with status.podIP, targetPort resolved by name from the
// pod's container ports (numbers taken as is); pods the kubelet isolated are left out.
//
// Following changes: re-synced on every pod/Service event and every second. A connection whose
// endpoint left the set is closed (clients of <cluster>-rw notice a failover, as with kube-proxy
// conntrack flushes). A service with no endpoints accepts and closes at once.
import { writeFile } from 'node:fs/promises';
import { createServer, connect, type Server, type Socket } from 'node:net';
import type { V1Pod, V1Service, V1ServicePort } from '@kubernetes/client-node';
import type { Logger } from '../../src/runtime/logger.js';
import { resolvePort } from './probes.js';

interface Endpoint {
  uid: string;
  ip: string;
  port: number;
}

interface Listener {
  key: string;
  server: Server;
  endpoints: Endpoint[];
  next: number;
  conns: Set<{ client: Socket; upstream: Socket; ep: Endpoint }>;
}

export interface ServiceAddress {
  host: string;
  port: number;
}

function selects(selector: Record<string, string>, pod: V1Pod): boolean {
  const labels = pod.metadata?.labels ?? {};
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}

export function isReady(pod: V1Pod): boolean {
  return !pod.metadata?.deletionTimestamp && !!pod.status?.podIP && !!pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
}

function targetPort(sp: V1ServicePort, pod: V1Pod): number | undefined {
  const tp = (sp.targetPort ?? sp.port) as number | string;
  if (typeof tp === 'number') return tp;
  for (const c of pod.spec?.containers ?? []) {
    try {
      return resolvePort(tp, c);
    } catch {
      /* next container */
    }
  }
  return undefined;
}

export class ServiceProxy {
  private readonly addresses = new Map<string, string>(); // ns/name → ip
  private readonly listeners = new Map<string, Listener>(); // ns/name/port → listener
  private readonly free: number[] = [];
  private nextIndex = 0;
  private timer?: NodeJS.Timeout;
  private pending?: NodeJS.Timeout;
  private lastMap = '';
  private readonly warned = new Set<string>();

  constructor(
    private readonly services: () => ReadonlyArray<V1Service>,
    private readonly pods: () => ReadonlyArray<V1Pod>,
    private readonly excluded: (podUid: string) => boolean,
    private readonly mapFile: string,
    private readonly log: Logger,
    private readonly base = '127.0',
    private readonly firstOctet = 200,
  ) {}

  start(): void {
    this.timer = setInterval(() => this.sync(), 1000);
    this.sync();
  }

  /** Debounced re-sync (informer events come in bursts). */
  kick(): void {
    if (this.pending || !this.timer) return;
    this.pending = setTimeout(() => {
      this.pending = undefined;
      this.sync();
    }, 20);
  }

  serviceAddress(namespace: string, name: string, port?: number | string): ServiceAddress | undefined {
    const ip = this.addresses.get(`${namespace}/${name}`);
    const svc = this.services().find((s) => s.metadata?.namespace === namespace && s.metadata?.name === name);
    if (!ip || !svc) return undefined;
    const sp = port === undefined ? svc.spec?.ports?.[0] : svc.spec?.ports?.find((p) => p.port === port || p.name === port);
    return sp ? { host: ip, port: sp.port } : undefined;
  }

  /** /etc/hosts lines: Services by DNS name → proxy address; headless Services → ready pod IPs. */
  hostsFor(pod: V1Pod): string {
    const lines: string[] = [];
    const names = (name: string, ns: string) => `${name}.${ns}.svc.cluster.local ${name}.${ns}.svc ${name}.${ns}${ns === pod.metadata?.namespace ? ` ${name}` : ''}`;
    for (const svc of this.services()) {
      const { name, namespace } = svc.metadata!;
      const ip = this.addresses.get(`${namespace}/${name}`);
      if (ip) lines.push(`${ip}\t${names(name!, namespace!)}`);
      else if (svc.spec?.clusterIP === 'None') {
        for (const podIP of this.headlessMembers(svc)) lines.push(`${podIP}\t${names(name!, namespace!)}`);
      }
    }
    // StatefulSet pods: <hostname>.<subdomain>.<ns>.svc.cluster.local, published even before ready.
    for (const p of this.pods()) {
      const line = subdomainHostsLine(p, pod.metadata?.namespace);
      if (line) lines.push(line);
    }
    return lines.join('\n') + '\n';
  }

  /** The IPs of the ready pods a headless Service selects. */
  private headlessMembers(svc: V1Service): string[] {
    const selector = svc.spec?.selector;
    if (!selector) return [];
    return this.pods()
      .filter((p) => p.metadata?.namespace === svc.metadata!.namespace && isReady(p) && selects(selector, p))
      .map((p) => p.status!.podIP!);
  }

  private allocate(): string {
    const i = this.free.shift() ?? this.nextIndex++;
    return `${this.base}.${this.firstOctet + Math.floor(i / 254)}.${1 + (i % 254)}`;
  }

  private release(ip: string): void {
    const [, , c, d] = ip.split('.').map(Number) as [number, number, number, number];
    this.free.push((c - this.firstOctet) * 254 + d - 1);
  }

  sync(): void {
    if (!this.timer) return; // not started (another kubelet proxies) or stopped
    const wanted = new Set<string>();
    const keep = new Set<string>();
    const pods = this.pods();
    for (const svc of this.services()) {
      const { name, namespace } = svc.metadata!;
      const type = svc.spec?.type ?? 'ClusterIP';
      if (type === 'ExternalName' || svc.spec?.clusterIP === 'None' || !svc.spec?.selector) continue;
      const skey = `${namespace}/${name}`;
      keep.add(skey);
      let ip = this.addresses.get(skey);
      if (!ip) {
        ip = this.allocate();
        this.addresses.set(skey, ip);
      }
      const selector = svc.spec.selector;
      const members = pods.filter((p) => p.metadata?.namespace === namespace && selects(selector, p) && isReady(p) && !this.excluded(p.metadata!.uid!));
      for (const sp of svc.spec.ports ?? []) {
        if ((sp.protocol ?? 'TCP') !== 'TCP') continue;
        const key = `${skey}/${sp.port}`;
        wanted.add(key);
        const endpoints = members.flatMap((p) => {
          const port = targetPort(sp, p);
          return port === undefined ? [] : [{ uid: p.metadata!.uid!, ip: p.status!.podIP!, port }];
        });
        this.ensureListener(key, ip, sp.port).endpoints = endpoints;
        this.dropStale(this.listeners.get(key)!);
      }
    }
    for (const [key, l] of this.listeners) {
      if (wanted.has(key)) continue;
      for (const c of l.conns) c.client.destroy();
      l.server.close();
      this.listeners.delete(key);
    }
    for (const [skey, ip] of this.addresses) {
      if (keep.has(skey)) continue;
      this.addresses.delete(skey);
      this.release(ip);
    }
    void this.writeMap();
  }

  private ensureListener(key: string, ip: string, port: number): Listener {
    const existing = this.listeners.get(key);
    if (existing) return existing;
    const l: Listener = { key, server: createServer((c) => this.accept(l, c)), endpoints: [], next: 0, conns: new Set() };
    // EADDRINUSE: a pod bound 0.0.0.0:<this port> (pods share the host network). Retried on the
    // next sync, so the Service comes back once that pod is gone; warned once per service port.
    l.server.on('error', (err) => {
      if (this.listeners.get(key) === l) this.listeners.delete(key);
      if (!this.warned.has(key)) this.log.warn({ service: key, address: `${ip}:${port}`, err: err.message }, 'service proxy cannot listen; retrying every second');
      this.warned.add(key);
    });
    l.server.listen(port, ip);
    this.listeners.set(key, l);
    this.log.debug({ service: key, address: `${ip}:${port}` }, 'service proxy listening');
    return l;
  }

  private accept(l: Listener, client: Socket): void {
    if (l.endpoints.length === 0) {
      client.destroy();
      return;
    }
    const ep = l.endpoints[l.next++ % l.endpoints.length]!;
    const upstream = connect({ host: ep.ip, port: ep.port });
    const conn = { client, upstream, ep };
    l.conns.add(conn);
    const close = () => {
      client.destroy();
      upstream.destroy();
      l.conns.delete(conn);
    };
    client.on('error', close).on('close', close);
    upstream.on('error', close).on('close', close);
    client.pipe(upstream);
    upstream.pipe(client);
  }

  private dropStale(l: Listener): void {
    for (const c of l.conns) {
      if (!l.endpoints.some((e) => e.uid === c.ep.uid && e.ip === c.ep.ip && e.port === c.ep.port)) {
        c.client.destroy();
        c.upstream.destroy();
        l.conns.delete(c);
      }
    }
  }

  /** Endpoints per service, for people and tests. */
  endpoints(namespace: string, name: string): Endpoint[] {
    return [...this.listeners.values()].filter((l) => l.key.startsWith(`${namespace}/${name}/`)).flatMap((l) => l.endpoints);
  }

  private async writeMap(): Promise<void> {
    const map: Record<string, { host: string; ports: Record<string, number>; endpoints: string[] }> = {};
    for (const [skey, ip] of this.addresses) {
      const [ns, name] = skey.split('/') as [string, string];
      const svc = this.services().find((s) => s.metadata?.namespace === ns && s.metadata?.name === name);
      const ports = Object.fromEntries((svc?.spec?.ports ?? []).map((p) => [p.name ?? String(p.port), p.port]));
      map[skey] = { host: ip, ports, endpoints: this.endpoints(ns, name).map((e) => `${e.ip}:${e.port}`) };
    }
    const text = JSON.stringify(map, null, 2);
    if (text === this.lastMap) return;
    this.lastMap = text;
    await writeFile(this.mapFile, text + '\n').catch(() => undefined);
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    clearTimeout(this.pending);
    for (const l of this.listeners.values()) {
      for (const c of l.conns) c.client.destroy();
      await new Promise((r) => l.server.close(r));
    }
    this.listeners.clear();
  }
}

/** The hosts line of a pod with a subdomain (StatefulSet pods), or undefined; short names within `ns`. */
function subdomainHostsLine(p: V1Pod, ns: string | undefined): string | undefined {
  const sub = p.spec?.subdomain;
  if (!sub || !p.status?.podIP || p.metadata?.deletionTimestamp) return undefined;
  const host = p.spec?.hostname ?? p.metadata!.name!;
  const podNs = p.metadata!.namespace!;
  return `${p.status.podIP}\t${host}.${sub}.${podNs}.svc.cluster.local ${host}.${sub}.${podNs}.svc${podNs === ns ? ` ${host}.${sub}` : ''}`;
}
