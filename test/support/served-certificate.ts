// The certificate a PostgreSQL server presents: an SSLRequest, then a TLS handshake verified
// against `ca` and `servername` (what a verify-full client checks), for tests of TLS and renewal.
import { connect as netConnect } from 'node:net';
import { connect as tlsConnect, type PeerCertificate } from 'node:tls';

/** PostgreSQL's SSLRequest: length 8, code 80877103. */
const SSL_REQUEST = Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]);

export function servedCertificate(host: string, port: number, ca: string, servername: string): Promise<PeerCertificate> {
  return new Promise((resolve, reject) => {
    const sock = netConnect({ host, port });
    sock.setTimeout(5000, () => sock.destroy(new Error('timeout')));
    sock.once('error', reject);
    sock.once('connect', () => sock.write(SSL_REQUEST));
    sock.once('data', (d: Buffer) => {
      if (d[0] !== 0x53) return reject(new Error(`the server refused TLS (${String.fromCharCode(d[0]!)})`));
      const t = tlsConnect({ socket: sock, ca, servername }, () => {
        resolve(t.getPeerCertificate());
        t.destroy();
      });
      t.once('error', reject);
    });
  });
}

/** A serial number as OpenSSL prints it and as x509.ts records it, compared alike. */
export const normSerial = (s: string) => s.toLowerCase().replace(/^0+/, '');
