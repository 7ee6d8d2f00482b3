// Checked against Node's own TLS stack and X509Certificate, not only against the library that made them.
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { connect, createServer } from 'node:tls';
import { describe, expect, it } from 'vitest';
import { certificateInfo, createCa, dueForRenewal, issueCertificate, signedBy } from './x509.js';

describe('x509', () => {
  it('a CA and a server certificate with SANs that Node verifies, and the key matches', async () => {
    const ca = await createCa('pgpilot test CA', 3600);
    const server = await issueCertificate(ca, { commonName: 'db-rw', dnsNames: ['db-rw', 'db-rw.ns.svc'], ipAddresses: ['127.0.0.1'], usage: 'server', validitySeconds: 600 });
    const c = new X509Certificate(server.cert);
    expect(c.verify(new X509Certificate(ca.cert).publicKey)).toBe(true);
    expect(c.checkPrivateKey(createPrivateKey(server.key))).toBe(true);
    expect(c.checkHost('db-rw.ns.svc')).toBe('db-rw.ns.svc');
    expect(c.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(c.checkHost('other.ns.svc')).toBeUndefined();
    expect(new X509Certificate(ca.cert).ca).toBe(true);
    expect(c.ca).toBe(false);
    expect(server.key).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
  });

  it('mutual TLS with them: a client certificate of the CA is accepted, one of another CA is refused', async () => {
    const ca = await createCa('ca-a', 3600);
    const other = await createCa('ca-b', 3600);
    const server = await issueCertificate(ca, { commonName: 'srv', dnsNames: ['localhost'], usage: 'server', validitySeconds: 600 });
    const good = await issueCertificate(ca, { commonName: 'operator', usage: 'client', validitySeconds: 600 });
    const bad = await issueCertificate(other, { commonName: 'operator', usage: 'client', validitySeconds: 600 });
    let served = 0;
    const srv = createServer({ cert: server.cert, key: server.key, ca: ca.cert, requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.3' }, (s) => {
      served++;
      s.end('ok');
    });
    srv.listen(0, '127.0.0.1');
    await once(srv, 'listening');
    const port = (srv.address() as AddressInfo).port;
    const call = (client: { cert: string; key: string }) =>
      new Promise<string>((resolve) => {
        const s = connect({ host: '127.0.0.1', port, servername: 'localhost', ca: ca.cert, cert: client.cert, key: client.key }, () => undefined);
        let data = '';
        s.on('data', (d: Buffer) => (data += d.toString()));
        let error = '';
        s.on('error', (err) => (error = `refused: ${err.message}`));
        s.on('close', () => resolve(error || data));
      });
    try {
      expect(await call(good)).toBe('ok');
      // TLS 1.3 checks the client's certificate after the client's handshake is done: refused by an alert.
      expect(await call(bad)).not.toBe('ok');
      expect(served).toBe(1);
    } finally {
      srv.close();
    }
  });

  it('reads back names and dates, says when renewal is due, and which CA signed a leaf', async () => {
    const now = new Date('2026-01-01T00:00:00Z');
    const ca = await createCa('ca', 30 * 86400, now);
    const leaf = await issueCertificate(ca, { commonName: 'x', dnsNames: ['a', 'b'], usage: 'server-and-client', validitySeconds: 3000, now });
    const info = certificateInfo(leaf.cert);
    expect(info).toMatchObject({ commonName: 'x', dnsNames: ['a', 'b'], ipAddresses: [], isCa: false });
    expect(info.notAfter.toISOString()).toBe('2026-01-01T00:50:00.000Z');
    expect(info.notBefore.toISOString()).toBe('2025-12-31T23:59:00.000Z');
    expect(certificateInfo(ca.cert).isCa).toBe(true);
    expect(dueForRenewal(leaf.cert, new Date('2026-01-01T00:30:00Z'))).toBe(false);
    expect(dueForRenewal(leaf.cert, new Date('2026-01-01T00:34:00Z'))).toBe(true);
    expect(await signedBy(leaf.cert, ca.cert)).toBe(true);
    expect(await signedBy(leaf.cert, (await createCa('other', 60)).cert)).toBe(false);
  });
});
