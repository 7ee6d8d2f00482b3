// /healthz (the process is alive), /readyz (caches synced: able to reconcile or stand by) and
// /metrics (Prometheus text) on one port.
import { createServer, type Server } from 'node:http';
import type { Server as NetServer } from 'node:net';
import type { Registry } from 'prom-client';
import { errorText } from '../util/error-text.js';

export interface ProbeServerOptions {
  port: number;
  host?: string;
  registry: Registry;
  ready: () => boolean;
}

export async function startProbeServer(opts: ProbeServerOptions): Promise<Server> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
    } else if (path === '/readyz') {
      const ok = opts.ready();
      res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' }).end(ok ? 'ok\n' : 'not ready\n');
    } else if (path === '/metrics') {
      opts.registry
        .metrics()
        .then((text) => res.writeHead(200, { 'content-type': opts.registry.contentType }).end(text))
        .catch((err: unknown) => res.writeHead(500).end(errorText(err)));
    } else {
      res.writeHead(404).end();
    }
  });
  return listen(server, opts.port, opts.host ?? '0.0.0.0');
}

/** Starts listening; rejects with the bind error (address in use, no such address) instead of emitting it. */
export async function listen<S extends NetServer>(server: S, port: number, host: string): Promise<S> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return server;
}
