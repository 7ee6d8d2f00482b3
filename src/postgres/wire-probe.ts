// Is a PostgreSQL server alive at host:port? Asked in its own protocol: an SSLRequest, which a
// live postmaster answers at once ('S' or 'N') even under load or at max_connections, and which
// needs no credentials. A frozen server whose kernel still accepts TCP does not answer. And which
// certificate it presents: the same request, then a verified TLS handshake — still no credentials.
import { connect } from 'node:net';
import { connect as tlsConnect, type PeerCertificate } from 'node:tls';
import type { TlsVerify } from './tls-client.js';
import { isCertificateError } from '../runtime/tls-errors.js';

const sslRequest = () => {
  const req = Buffer.alloc(8);
  req.writeInt32BE(8, 0);
  req.writeInt32BE(80877103, 4);
  return req;
};

/** Does a PostgreSQL server answer at host:port? (SSLRequest → 'S' or 'N'.) */
export function postgresAnswers(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write(sslRequest()));
    socket.once('data', (d: Buffer) => done(d[0] === 0x53 || d[0] === 0x4e));
  });
}

/** A certificate the server's identity was not proven by (as opposed to a server not reached). */
export class UnverifiedServer extends Error {}

/**
 * The certificate the server at host:port presents, verified against `t` (the CA, TLS 1.3, the
 * name): rejects with UnverifiedServer when it refuses TLS or its certificate does not verify,
 * with another error when it cannot be reached in `timeoutMs`.
 */
export function servedCertificate(host: string, port: number, t: TlsVerify, timeoutMs: number): Promise<PeerCertificate> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port });
    const timer = setTimeout(() => socket.destroy(new Error(`no TLS answer from ${host}:${port} within ${timeoutMs} ms`)), timeoutMs);
    const fail = (err: Error) => {
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    };
    socket.once('error', fail);
    socket.once('connect', () => socket.write(sslRequest()));
    socket.once('data', (d: Buffer) => {
      if (d[0] !== 0x53) return fail(new UnverifiedServer(`${host}:${port} refused TLS`));
      const secure = tlsConnect({ socket, ca: t.ca, servername: t.serverName, minVersion: 'TLSv1.3' }, () => {
        clearTimeout(timer);
        resolve(secure.getPeerCertificate());
        secure.destroy();
      });
      secure.once('error', (err: Error) => fail(isCertificateError(err) ? new UnverifiedServer(`${host}:${port}: ${err.message}`) : err));
    });
  });
}
