// What TLS tests compare: the certificate a PostgreSQL server presents (the product's own check,
// src/postgres/wire-probe.ts) and serial numbers as OpenSSL prints them and x509.ts records them.
import type { PeerCertificate } from 'node:tls';
import { servedCertificate as served } from '../../src/postgres/wire-probe.js';

export function servedCertificate(host: string, port: number, ca: string, servername: string): Promise<PeerCertificate> {
  return served(host, port, { ca, serverName: servername }, 5000);
}

export const normSerial = (s: string) => s.toLowerCase().replace(/^0+/, '');
