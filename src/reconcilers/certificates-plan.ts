// What the cluster's PKI needs now (pure): a CA when there is none or it is due, a server
// certificate when there is none, it is due (2/3 of its lifetime), the CA changed or the names it
// must carry changed, and the CA-certificate Secret for clients when it does not hold the CA.
// The plan reads only the annotations the operator puts on its Secrets (the operator's caches
// drop Secret data), so a steady-state pass reads no key material and writes nothing.
import { createHash } from 'node:crypto';
import { names } from '../api/names.js';

/** Annotations on the certificate Secrets: what the plan needs, without the key material. */
export const TLS_ANNOTATIONS = {
  serial: 'postgres.pgpilot.io/tls-serial',
  notBefore: 'postgres.pgpilot.io/tls-not-before',
  notAfter: 'postgres.pgpilot.io/tls-not-after',
  /** On leaf and CA-certificate Secrets: the serial of the CA that signed (or is) their CA certificate. */
  caSerial: 'postgres.pgpilot.io/tls-ca-serial',
  /** On the server certificate Secret: a hash of its DNS names (dnsNamesHash). */
  dnsNames: 'postgres.pgpilot.io/tls-dns-names',
} as const;

/** Renew at 2/3 of the lifetime, as cert-manager does (runtime/x509.ts dueForRenewal). */
export const RENEW_FRACTION = 2 / 3;

export interface CertRecord {
  serial: string;
  notBefore: Date;
  notAfter: Date;
  caSerial?: string;
  dnsNames?: string;
}

/** A Secret's certificate record from its annotations; undefined when they are missing or unreadable. */
export function recordOf(annotations: Record<string, string> | undefined): CertRecord | undefined {
  const a = annotations ?? {};
  const serial = a[TLS_ANNOTATIONS.serial];
  const notBefore = new Date(a[TLS_ANNOTATIONS.notBefore] ?? '');
  const notAfter = new Date(a[TLS_ANNOTATIONS.notAfter] ?? '');
  if (!serial || Number.isNaN(notBefore.getTime()) || Number.isNaN(notAfter.getTime())) return undefined;
  return { serial, notBefore, notAfter, caSerial: a[TLS_ANNOTATIONS.caSerial], dnsNames: a[TLS_ANNOTATIONS.dnsNames] };
}

export function annotationsOf(r: CertRecord): Record<string, string> {
  return {
    [TLS_ANNOTATIONS.serial]: r.serial,
    [TLS_ANNOTATIONS.notBefore]: r.notBefore.toISOString(),
    [TLS_ANNOTATIONS.notAfter]: r.notAfter.toISOString(),
    ...(r.caSerial ? { [TLS_ANNOTATIONS.caSerial]: r.caSerial } : {}),
    ...(r.dnsNames ? { [TLS_ANNOTATIONS.dnsNames]: r.dnsNames } : {}),
  };
}

/** Every form of a Service's name a client in the cluster may dial. */
function serviceForms(service: string, namespace: string): string[] {
  return [service, `${service}.${namespace}`, `${service}.${namespace}.svc`, `${service}.${namespace}.svc.cluster.local`];
}

/**
 * The server certificate's DNS names: the rw, ro and r Services and the headless one, and each
 * instance's pod behind the headless Service (<pod>.<cluster>-headless[.<ns>[.svc[.cluster.local]]]).
 */
export function serverDnsNames(cluster: string, namespace: string, instances: readonly string[]): string[] {
  const headless = names.headless(cluster);
  const services = [names.rw(cluster), names.ro(cluster), names.r(cluster), headless].flatMap((s) => serviceForms(s, namespace));
  const pods = [...instances]
    .sort((a, b) => a.localeCompare(b, undefined, { numeric: true }))
    .flatMap((i) => {
      const pod = names.pod(i);
      return [`${pod}.${headless}`, ...serviceForms(headless, namespace).slice(1).map((h) => `${pod}.${h}`)];
    });
  return [...services, ...pods];
}

export function dnsNamesHash(dnsNames: readonly string[]): string {
  return createHash('sha256').update([...dnsNames].sort().join('\n')).digest('hex').slice(0, 32);
}

export interface CertificatesInput {
  now: Date;
  ca?: CertRecord;
  server?: CertRecord;
  /** The replication user's client certificate. */
  replication?: CertRecord;
  /** The CA-certificate Secret's record (its caSerial says which CA it publishes). */
  caCert?: CertRecord;
  dnsNames: readonly string[];
}

export type Reason = 'missing' | 'due' | 'expired' | 'ca-changed' | 'names-changed';

export interface CertificatesPlan {
  /** Create a new CA (and with it every leaf). */
  ca?: Reason;
  /** Issue a new server certificate. */
  server?: Reason;
  /** Issue a new client certificate for the replication user. */
  replication?: Reason;
  /** Write the CA-certificate Secret. */
  publishCa: boolean;
}

function renewTime(r: CertRecord): Date {
  return new Date(r.notBefore.getTime() + (r.notAfter.getTime() - r.notBefore.getTime()) * RENEW_FRACTION);
}

function lifeReason(r: CertRecord | undefined, now: Date): Reason | undefined {
  if (!r) return 'missing';
  if (now >= r.notAfter) return 'expired';
  if (now >= renewTime(r)) return 'due';
  return undefined;
}

export function planCertificates(i: CertificatesInput): CertificatesPlan {
  const ca = lifeReason(i.ca, i.now);
  // A new CA makes every leaf new: one signed by the old CA would not verify against the new one.
  const server: Reason | undefined = ca
    ? 'ca-changed'
    : (lifeReason(i.server, i.now) ??
      (i.server!.caSerial !== i.ca!.serial ? 'ca-changed' : i.server!.dnsNames !== dnsNamesHash(i.dnsNames) ? 'names-changed' : undefined));
  const replication: Reason | undefined = ca ? 'ca-changed' : (lifeReason(i.replication, i.now) ?? (i.replication!.caSerial !== i.ca!.serial ? 'ca-changed' : undefined));
  const publishCa = !!ca || i.caCert?.caSerial !== i.ca?.serial;
  return { ...(ca ? { ca } : {}), ...(server ? { server } : {}), ...(replication ? { replication } : {}), publishCa };
}

/** When the first of these certificates falls due. */
export function nextRenewal(records: readonly CertRecord[]): Date {
  return new Date(Math.min(...records.map((r) => renewTime(r).getTime())));
}

/** Whether the plan writes anything. */
export function planWrites(p: CertificatesPlan): boolean {
  return !!p.ca || !!p.server || !!p.replication || p.publishCa;
}

