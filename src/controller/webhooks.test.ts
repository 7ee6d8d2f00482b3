import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TLSSocket } from 'node:tls';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createLogger } from '../runtime/logger.js';
import { certificateInfo, createCa, issueCertificate, type CertKeyPem } from '../runtime/x509.js';
import { Webhooks, clientConfig, servingNames } from './webhooks.js';

describe('where the apiserver reaches the webhooks', () => {
  const service = { service: { namespace: 'pgpilot-system', name: 'pgpilot-webhook', port: 9443 } };

  it('certifies every name of the Service, or the URL\'s host (IP or DNS)', () => {
    expect(servingNames(service)).toEqual({
      dnsNames: ['pgpilot-webhook', 'pgpilot-webhook.pgpilot-system', 'pgpilot-webhook.pgpilot-system.svc', 'pgpilot-webhook.pgpilot-system.svc.cluster.local'],
      ipAddresses: [],
    });
    expect(servingNames({ url: 'https://127.0.0.1:9443' })).toEqual({ dnsNames: [], ipAddresses: ['127.0.0.1'] });
    expect(servingNames({ url: 'https://[::1]:9443' })).toEqual({ dnsNames: [], ipAddresses: ['::1'] });
    expect(servingNames({ url: 'https://operator.example:9443' })).toEqual({ dnsNames: ['operator.example'], ipAddresses: [] });
  });

  it('builds a clientConfig with the path and the bundle, the other form nulled for a merge patch', () => {
    const b64 = Buffer.from('PEM').toString('base64');
    expect(clientConfig(service, '/convert', 'PEM')).toEqual({ service: { ...service.service, path: '/convert' }, url: null, caBundle: b64 });
    expect(clientConfig({ url: 'https://127.0.0.1:9443/' }, '/convert', 'PEM')).toEqual({ url: 'https://127.0.0.1:9443/convert', service: null, caBundle: b64 });
  });
});

describe('webhooks served with a certificate from files (OLM)', () => {
  const dirs: string[] = [];
  const servers: Webhooks[] = [];
  afterEach(async () => {
    for (const w of servers.splice(0)) await w.stop();
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  async function issued() {
    const ca = await createCa('olm-ca', 3600);
    return { ca, leaf: await issueCertificate(ca, { commonName: 'pgpilot-service', ipAddresses: ['127.0.0.1'], usage: 'server', validitySeconds: 3600 }) };
  }
  const write = (dir: string, leaf: CertKeyPem) => {
    // As a Secret volume rotates: the key first would not matter, both land before the reading settles.
    writeFileSync(path.join(dir, 'tls.key'), leaf.key);
    writeFileSync(path.join(dir, 'tls.crt'), leaf.cert);
  };
  const freePort = () =>
    new Promise<number>((resolve) => {
      const s = createNetServer().listen(0, '127.0.0.1', () => {
        const { port } = s.address() as AddressInfo;
        s.close(() => resolve(port));
      });
    });

  /** POSTs a ConversionReview trusting only `ca`; the converted object and the certificate presented. */
  function convert(port: number, ca: string): Promise<{ review: Record<string, any>; serial: string }> {
    const review = {
      apiVersion: 'apiextensions.k8s.io/v1',
      kind: 'ConversionReview',
      request: { uid: 'u1', desiredAPIVersion: 'postgres.pgpilot.io/v1beta1', objects: [{ apiVersion: 'postgres.pgpilot.io/v1', kind: 'PostgreSQLCluster', metadata: { name: 'a' }, spec: { version: '16', instances: 2, storage: { size: '1Gi' } } }] },
    };
    return new Promise((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path: '/convert', method: 'POST', ca, agent: false, headers: { 'content-type': 'application/json' } }, (res) => {
        const serial = (res.socket as TLSSocket).getPeerCertificate().serialNumber;
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ review: JSON.parse(body) as Record<string, any>, serial }));
      });
      req.on('error', reject);
      req.end(JSON.stringify(review));
    });
  }

  it('serves the conversion with the mounted certificate, swaps in a rotated one, and needs no Kubernetes client', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'webhook-certs-'));
    dirs.push(dir);
    const first = await issued();
    write(dir, first.leaf);
    const port = await freePort();
    const webhooks = new Webhooks({ port, host: '127.0.0.1', certificates: { dir }, log: createLogger('error', 'test') });
    servers.push(webhooks);
    await webhooks.start();

    const before = await convert(port, first.ca.cert);
    expect(before.review.response.result).toEqual({ status: 'Success' });
    expect(before.review.response.convertedObjects[0].spec.replicas).toBe(2);
    expect(before.serial.toLowerCase()).toBe(certificateInfo(first.leaf.cert).serialNumber.toLowerCase());

    // OLM rotates the certificate (and its CA, which it injects itself): new connections get the new one.
    const second = await issued();
    write(dir, second.leaf);
    await vi.waitFor(async () => {
      const after = await convert(port, second.ca.cert);
      expect(after.serial.toLowerCase()).toBe(certificateInfo(second.leaf.cert).serialNumber.toLowerCase());
    }, { timeout: 10_000, interval: 200 });
    await expect(convert(port, first.ca.cert)).rejects.toThrow(/certificate/);
  });

  it('does not start when the files are missing, naming the file', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'webhook-certs-'));
    dirs.push(dir);
    const webhooks = new Webhooks({ port: await freePort(), host: '127.0.0.1', certificates: { dir }, log: createLogger('error', 'test') });
    await expect(webhooks.start()).rejects.toThrow(`cannot read ${path.join(dir, 'tls.crt')}`);
  });
});
