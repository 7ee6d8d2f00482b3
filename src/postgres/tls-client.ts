// TLS of pgpilot's own PostgreSQL connections (the instance agent, backup and upgrade Jobs): the
// cluster's CA certificate and the name the server certificate must carry — verify-full, also
// when the host dialled is a pod IP (the name goes in SNI and the identity check, not in DNS).
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { POD_ENV } from '../api/pod-env.js';

export interface TlsVerify {
  /** The CA certificate, PEM. */
  ca: string;
  /** A DNS name the server certificate must carry (names.tlsServerName). */
  serverName: string;
}

/**
 * From PGPILOT_TLS_CA_FILE and PGPILOT_TLS_SERVER_NAME, read at every call (a renewed CA is a new
 * file); undefined when they are unset (a pod made before TLS: plain TCP, as before) or the file is
 * not there yet.
 */
export async function tlsFromEnv(env: Record<string, string | undefined> = process.env): Promise<TlsVerify | undefined> {
  const caFile = env[POD_ENV.tlsCaFile]?.trim();
  const serverName = env[POD_ENV.tlsServerName]?.trim();
  if (!caFile || !serverName) return undefined;
  const ca = await readFile(caFile, 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  });
  return ca ? { ca, serverName } : undefined;
}

/** node-postgres' `ssl` option for a TCP connection (TLS 1.3, the server verified against the CA and the name). */
export function pgSsl(t: TlsVerify): { ca: string; servername: string; minVersion: 'TLSv1.3' } {
  return { ca: t.ca, servername: t.serverName, minVersion: 'TLSv1.3' };
}

/** libpq's side (pg_basebackup, pg_rewind, the walreceiver): file paths rather than contents. */
export interface LibpqTls {
  caFile: string;
  serverName: string;
  /** The replication user's client certificate and key, when this pod has them. */
  client?: { certFile: string; keyFile: string };
}

/** From the same variables and PGPILOT_TLS_CLIENT_DIR; undefined when unset or the CA file is not there. */
export function libpqTlsFromEnv(env: Record<string, string | undefined> = process.env): LibpqTls | undefined {
  const caFile = env[POD_ENV.tlsCaFile]?.trim();
  const serverName = env[POD_ENV.tlsServerName]?.trim();
  if (!caFile || !serverName || !existsSync(caFile)) return undefined;
  const dir = env[POD_ENV.tlsClientDir]?.trim();
  const client = dir ? { certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key') } : undefined;
  return { caFile, serverName, ...(client && existsSync(client.certFile) ? { client } : {}) };
}

/**
 * Connection parameters for verify-full to a server dialled by IP: host is the name the
 * certificate carries (checked, and sent as SNI), hostaddr the address dialled.
 */
export function libpqTlsParams(t: LibpqTls, address: string): Record<string, string> {
  return {
    // A name (not an IP) is dialled and verified as it is: the certificate carries every pod's and Service's name.
    ...(isIP(address) ? { host: t.serverName, hostaddr: address } : { host: address }),
    sslmode: 'verify-full',
    sslrootcert: t.caFile,
    ...(t.client ? { sslcert: t.client.certFile, sslkey: t.client.keyFile } : {}),
  };
}
