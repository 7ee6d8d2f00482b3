// The agent API's TLS (docs/tls.md): HTTPS with the pod's server certificate (the cluster's
// <cluster>-server-tls Secret, mounted) and, for /v1/*, a client certificate of the same CA whose
// Common Name is AGENT_CLIENT_CN — the operator's. The kubelet rewrites the mounted files on
// renewal: they are polled and the server's context replaced, so new connections get them and the
// process never restarts.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { IncomingMessage } from 'node:http';
import type { Server as TlsServer, SecureContextOptions, TLSSocket } from 'node:tls';
import { AGENT_CLIENT_CN, TLS_FILES } from '../api/tls.js';
import type { Logger } from '../runtime/logger.js';
import { readServingCert } from '../runtime/serving-cert-files.js';
import { errorText } from '../util/error-text.js';

const POLL_MS = 5000;

/**
 * The server certificate and its key (checked to belong together, runtime/serving-cert-files.ts)
 * and the CA clients must come from, as the server context takes them.
 */
export async function readAgentTls(dir: string): Promise<SecureContextOptions & { cert: string; key: string; ca: string }> {
  const [serving, ca] = await Promise.all([readServingCert(dir), readFile(join(dir, TLS_FILES.ca), 'utf8')]);
  return { ...serving, ca };
}

const digest = (o: { cert: string; key: string; ca: string }) => createHash('sha256').update(o.cert).update('\0').update(o.key).update('\0').update(o.ca).digest('hex');

/**
 * Replaces the server's certificate, key and trusted CA when the files in `dir` change; returns the
 * function that stops watching. A half-written or unreadable set keeps the current context.
 */
export function watchAgentTls(server: TlsServer, dir: string, initial: { cert: string; key: string; ca: string }, log: Logger, pollMs = POLL_MS): () => void {
  let current = digest(initial);
  const timer = setInterval(() => {
    readAgentTls(dir)
      .then((next) => {
        const d = digest(next);
        if (d === current) return;
        server.setSecureContext(next);
        current = d;
        log.info('the agent API serves the renewed certificate');
      })
      .catch((err: unknown) => log.warn({ err: errorText(err) }, 'agent API certificate not reloaded; keeping the current one'));
  }, pollMs);
  timer.unref();
  return () => clearInterval(timer);
}

/**
 * Why a request may not use /v1/* over TLS, or undefined when its client certificate is the
 * operator's: verified against the mounted CA (the server asks for it but lets the handshake
 * through without one, so that the kubelet's probes of /healthz and /readyz need none).
 */
export function operatorCertificateProblem(req: IncomingMessage): string | undefined {
  const socket = req.socket as TLSSocket;
  const cert = socket.getPeerCertificate?.();
  if (!cert || Object.keys(cert).length === 0) return `a client certificate of the cluster's CA for ${AGENT_CLIENT_CN} is required`;
  if (!socket.authorized) return `the client certificate is not trusted (${String(socket.authorizationError)})`;
  const cn = cert.subject?.CN;
  if (cn !== AGENT_CLIENT_CN) return `the client certificate is for ${JSON.stringify(cn)}, not ${AGENT_CLIENT_CN}`;
  return undefined;
}
