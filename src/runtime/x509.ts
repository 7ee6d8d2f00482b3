// X.509 for the operator's PKI (per-cluster CAs, PostgreSQL server and client certificates, the
// webhook's serving certificate): ECDSA P-256 keys, PEM in and out, through @peculiar/x509 on
// WebCrypto — no openssl binary in the operator image. Keys are PKCS#8 PEM ("BEGIN PRIVATE KEY"),
// which OpenSSL (PostgreSQL, libpq) and Node's tls read as they are.
import 'reflect-metadata'; // @peculiar/x509's dependency injection (tsyringe) needs the polyfill
import { createPrivateKey, randomBytes, webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const subtle = webcrypto.subtle;
type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

/** A certificate and its private key, both PEM. */
export interface CertKeyPem {
  cert: string;
  key: string;
}

export type CertificateUsage = 'server' | 'client' | 'server-and-client';

export interface IssueOptions {
  commonName: string;
  /** subjectAltName DNS entries (servers: every name clients dial). */
  dnsNames?: string[];
  /** subjectAltName IP entries. */
  ipAddresses?: string[];
  usage: CertificateUsage;
  /** Validity from `now`; a minute of backdating absorbs clock skew between nodes. */
  validitySeconds: number;
  now?: Date;
}

export interface CertificateInfo {
  commonName: string;
  serialNumber: string;
  notBefore: Date;
  notAfter: Date;
  dnsNames: string[];
  ipAddresses: string[];
  isCa: boolean;
  issuer: string;
}

const BACKDATE_MS = 60_000;

function serial(): string {
  // 16 random bytes with the top bit clear: a positive INTEGER, unique without a counter.
  const b = randomBytes(16);
  b[0]! &= 0x7f;
  return b.toString('hex');
}

function pemKey(pkcs8: ArrayBuffer): string {
  const b64 = Buffer.from(pkcs8).toString('base64').replace(/(.{64})/g, '$1\n');
  return `-----BEGIN PRIVATE KEY-----\n${b64.replace(/\n$/, '')}\n-----END PRIVATE KEY-----\n`;
}

async function newKeys(): Promise<CryptoKeyPair> {
  return subtle.generateKey(ALG, true, ['sign', 'verify']);
}

async function importSigningKey(pem: string): Promise<CryptoKey> {
  const der = createPrivateKey(pem).export({ format: 'der', type: 'pkcs8' });
  return subtle.importKey('pkcs8', der, ALG, false, ['sign']);
}

function validity(now: Date, seconds: number): { notBefore: Date; notAfter: Date } {
  return { notBefore: new Date(now.getTime() - BACKDATE_MS), notAfter: new Date(now.getTime() + seconds * 1000) };
}

/** A self-signed CA that may sign leaf certificates only (path length 0). */
export async function createCa(commonName: string, validitySeconds: number, now = new Date()): Promise<CertKeyPem> {
  const keys = await newKeys();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: [{ CN: [commonName] }],
    ...validity(now, validitySeconds),
    keys,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { cert: cert.toString('pem') + '\n', key: pemKey(await subtle.exportKey('pkcs8', keys.privateKey)) };
}

/** A leaf certificate signed by `ca`, with a new key. */
export async function issueCertificate(ca: CertKeyPem, opts: IssueOptions): Promise<CertKeyPem> {
  const caCert = new x509.X509Certificate(ca.cert);
  const keys = await newKeys();
  const usages: string[] = [];
  if (opts.usage !== 'client') usages.push(x509.ExtendedKeyUsage.serverAuth);
  if (opts.usage !== 'server') usages.push(x509.ExtendedKeyUsage.clientAuth);
  const names = [...(opts.dnsNames ?? []).map((value) => ({ type: 'dns' as const, value })), ...(opts.ipAddresses ?? []).map((value) => ({ type: 'ip' as const, value }))];
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: [{ CN: [opts.commonName] }],
    issuer: caCert.subject,
    ...validity(opts.now ?? new Date(), opts.validitySeconds),
    publicKey: keys.publicKey,
    signingKey: await importSigningKey(ca.key),
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension(usages, false),
      ...(names.length ? [new x509.SubjectAlternativeNameExtension(names, false)] : []),
      await x509.AuthorityKeyIdentifierExtension.create(caCert, false),
    ],
  });
  return { cert: cert.toString('pem') + '\n', key: pemKey(await subtle.exportKey('pkcs8', keys.privateKey)) };
}

/** What a PEM certificate says (the first one, when the PEM holds a chain). */
export function certificateInfo(pem: string): CertificateInfo {
  const cert = new x509.X509Certificate(pem);
  const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
  const entries = san?.names.toJSON() ?? [];
  const cn = cert.subjectName.getField('CN')[0] ?? '';
  return {
    commonName: cn,
    serialNumber: cert.serialNumber,
    notBefore: cert.notBefore,
    notAfter: cert.notAfter,
    dnsNames: entries.filter((n) => n.type === 'dns').map((n) => n.value),
    ipAddresses: entries.filter((n) => n.type === 'ip').map((n) => n.value),
    isCa: cert.getExtension(x509.BasicConstraintsExtension)?.ca ?? false,
    issuer: cert.issuer,
  };
}

/** True once `fraction` of the certificate's lifetime has passed (renew early, as cert-manager does at 2/3). */
export function dueForRenewal(pem: string, now = new Date(), fraction = 2 / 3): boolean {
  const { notBefore, notAfter } = certificateInfo(pem);
  const renewAt = notBefore.getTime() + (notAfter.getTime() - notBefore.getTime()) * fraction;
  return now.getTime() >= renewAt;
}

/** Whether `leaf` was signed by `ca` (a rotated CA makes every leaf due). */
export async function signedBy(leaf: string, ca: string): Promise<boolean> {
  try {
    return await new x509.X509Certificate(leaf).verify({ publicKey: new x509.X509Certificate(ca).publicKey, signatureOnly: true });
  } catch {
    return false;
  }
}
