// Node's TLS errors that are about a certificate — the peer's not verifying (another CA, a wrong
// name, expired) or ours refused by the peer (its alert) — as opposed to a peer not reached.
// Callers act on the difference: issue new credentials, or refuse a host that is not who it claims.

const CERTIFICATE_CODE = /CERT|SELF_SIGNED|UNABLE_TO_|UNKNOWN_CA/;

export function isCertificateError(err: unknown): boolean {
  return CERTIFICATE_CODE.test(String((err as { code?: unknown } | null)?.code ?? ''));
}
