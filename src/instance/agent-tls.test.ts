// The agent API over TLS (agent-tls.ts, api-server.ts) against the operator's client
// (agent-client.ts), with certificates from the operator's own PKI code: the operator's client
// certificate is accepted; none, another CA's or another name from the same CA is refused; the
// probes need none; a renewed certificate is served without a restart; the Unix socket needs only
// the token.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request as httpsRequest } from 'node:https';
import { request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENT_CLIENT_CN, TLS_FILES } from '../api/tls.js';
import { createLogger } from '../runtime/logger.js';
import { certificateInfo, createCa, issueCertificate, type CertKeyPem } from '../runtime/x509.js';
import { AgentClient, AgentError, type AgentClientTls } from './agent-client.js';
import { watchAgentTls } from './agent-tls.js';
import { startApiServer, startLocalApiServer, type AgentApi } from './api-server.js';
import type { InstanceStatus } from './api-types.js';

const SERVER_NAME = 'db-rw.ns.svc';
const TOKEN = 'secret-token';
const status = { role: 'primary' } as unknown as InstanceStatus;
const api = { healthy: () => true, ready: () => true, status: async () => status, operation: () => null } as unknown as AgentApi;
const log = createLogger('error', 'test');

describe('agent API TLS', () => {
  let dir: string;
  let ca: CertKeyPem;
  let server: Server;
  let local: Server;
  let port: number;
  const client = new AgentClient(3000);

  const writeServerFiles = async (leaf: CertKeyPem, caCert: string) => {
    await writeFile(join(dir, TLS_FILES.cert), leaf.cert);
    await writeFile(join(dir, TLS_FILES.key), leaf.key);
    await writeFile(join(dir, TLS_FILES.ca), caCert);
  };
  const clientTls = async (issuer: CertKeyPem, commonName = AGENT_CLIENT_CN): Promise<AgentClientTls> => {
    const leaf = await issueCertificate(issuer, { commonName, usage: 'client', validitySeconds: 3600 });
    return { id: `ns/db#${certificateInfo(leaf.cert).serialNumber}`, ca: ca.cert, cert: leaf.cert, key: leaf.key, servername: SERVER_NAME };
  };
  const statusWith = (tls: AgentClientTls) => client.status({ host: '127.0.0.1', port, token: TOKEN, tls });
  /** A request with no client certificate at all (as a probe, or an intruder without one). */
  const bare = (path: string, headers: Record<string, string> = {}) =>
    new Promise<number>((resolve, reject) => {
      httpsRequest({ host: '127.0.0.1', port, path, headers, rejectUnauthorized: false }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      })
        .on('error', reject)
        .end();
    });

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'agent-tls-'));
    ca = await createCa('test CA', 3600);
    await writeServerFiles(await issueCertificate(ca, { commonName: SERVER_NAME, dnsNames: [SERVER_NAME], usage: 'server', validitySeconds: 3600 }), ca.cert);
    server = await startApiServer({ host: '127.0.0.1', port: 0, api, token: async () => TOKEN, log, tlsDir: dir });
    port = (server.address() as AddressInfo).port;
    local = await startLocalApiServer({ api, token: async () => TOKEN, log }, join(dir, 'agent.sock'));
  });
  afterAll(async () => {
    client.close();
    for (const s of [server, local]) {
      s?.close();
      s?.closeAllConnections();
    }
    await rm(dir, { recursive: true, force: true });
  });

  it("answers the operator's client certificate", async () => {
    expect(await statusWith(await clientTls(ca))).toEqual(status);
  });

  it('refuses /v1/* without a client certificate, with the token; the probes need none', async () => {
    expect(await bare('/v1/status', { authorization: `Bearer ${TOKEN}` })).toBe(403);
    expect(await bare('/healthz')).toBe(200);
    expect(await bare('/readyz')).toBe(200);
  });

  it("refuses another CA's certificate and another name from the cluster's CA", async () => {
    const other = await createCa('another CA', 3600);
    await expect(statusWith(await clientTls(other))).rejects.toMatchObject({ status: 403 });
    await expect(statusWith(await clientTls(ca, 'streaming_replica'))).rejects.toMatchObject({ status: 403, message: expect.stringContaining('streaming_replica') });
  });

  it('an agent whose certificate another CA signed is not trusted: a certificate error, which makes the operator re-issue its credentials', async () => {
    const tls = { ...(await clientTls(ca)), ca: (await createCa('not the cluster CA', 3600)).cert, id: 'ns/db#other' };
    const err = await statusWith(tls).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AgentError);
    expect(err).toMatchObject({ status: 'unreachable', certificate: true });
  });

  it('serves a renewed certificate without a restart', async () => {
    const renewed = await issueCertificate(ca, { commonName: SERVER_NAME, dnsNames: [SERVER_NAME], usage: 'server', validitySeconds: 7200 });
    await writeServerFiles(renewed, ca.cert);
    const stop = watchAgentTls(server as unknown as import('node:tls').Server, dir, { cert: '', key: '', ca: '' }, log, 50);
    try {
      const serial = certificateInfo(renewed.cert).serialNumber;
      let seen = '';
      for (let i = 0; i < 40 && seen !== serial; i++) {
        await sleep(50);
        seen = await new Promise<string>((resolve, reject) => {
          const req = httpsRequest({ host: '127.0.0.1', port, path: '/healthz', rejectUnauthorized: false, agent: false }, (res) => {
            res.resume();
            resolve(BigInt(`0x${(res.socket as import('node:tls').TLSSocket).getPeerCertificate().serialNumber}`).toString(16));
          });
          req.on('error', reject).end();
        });
      }
      expect(seen).toBe(BigInt(`0x${serial}`).toString(16));
    } finally {
      stop();
    }
  });

  it('on the Unix socket the token alone is asked for', async () => {
    const call = (token: string) =>
      new Promise<number>((resolve, reject) => {
        httpRequest({ socketPath: join(dir, 'agent.sock'), path: '/v1/status', headers: { authorization: `Bearer ${token}` } }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        })
          .on('error', reject)
          .end();
      });
    expect(await call(TOKEN)).toBe(200);
    expect(await call('wrong')).toBe(401);
  });
});
