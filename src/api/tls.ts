// TLS of a cluster: the spec (spec.tls), what status shows (status.tls, never key material), and
// the paths the operator's builders and the instance agent share. The PKI itself is the
// certificates reconciler's (src/reconcilers/certificates.ts); docs/tls.md tells the whole story.
import { Type, type Static } from '@sinclair/typebox';
import { Obj } from './schema-helpers.js';

/** The server certificate Secret (tls.crt, tls.key, ca.crt) inside instance pods. */
export const TLS_SERVER_DIR = '/etc/pgpilot/tls/server';
/** The replication user's client certificate Secret (tls.crt, tls.key, ca.crt) inside instance pods and backup Jobs. */
export const TLS_REPLICATION_DIR = '/etc/pgpilot/tls/replication';
/** The CA certificate alone (ca.crt): instance pods read it from the server Secret, backup Jobs from the CA-certificate Secret. */
export const TLS_CA_DIR = '/etc/pgpilot/tls/ca';

/**
 * The Common Name the agent API requires of a client certificate (issued by the cluster's CA): the
 * operator issues itself one per cluster (src/reconcilers/agent-credentials.ts). Another name from
 * the same CA — the replication user's certificate, say — is refused.
 */
export const AGENT_CLIENT_CN = 'pgpilot-operator';

/** The agent API on a Unix socket inside the pod (token only: a peer there already runs in the pod). */
export const AGENT_SOCKET = '/var/run/postgresql/.s.pgpilot-agent';

export const TLS_FILES = {
  cert: 'tls.crt',
  key: 'tls.key',
  ca: 'ca.crt',
} as const;

/** Default lifetimes: the CA ~10 years, leaf certificates 90 days (renewed at 2/3, as cert-manager does). */
export const TLS_DEFAULT_CA_SECONDS = 10 * 365 * 24 * 3600;
export const TLS_DEFAULT_LEAF_SECONDS = 90 * 24 * 3600;

export const TlsSpecSchema = Obj(
  'TLS of PostgreSQL connections. The operator runs a per-cluster CA and issues the server certificate (docs/tls.md); PostgreSQL accepts TLS 1.3 only.',
  {
    required: Type.Optional(
      Type.Boolean({
        description:
          'true: every network connection must use TLS (pg_hba.conf has hostssl lines only; your own spec.postgresql.pg_hba "host" lines become "hostssl", "hostnossl" lines are refused). false: TLS and plain TCP are both accepted. Unset: true for a cluster created by an operator with TLS support, false for one that existed before (status.tls.requiredByDefault records which, once).',
      }),
    ),
  },
);

export const TlsStatusSchema = Obj('The cluster\'s certificates as the operator last issued them (expiry and serials; no key material).', {
  caSecret: Type.Optional(Type.String({ description: 'Secret with the CA certificate alone (key ca.crt), for clients that verify the server (sslmode=verify-full).' })),
  caNotAfter: Type.Optional(Type.String({ description: 'When the cluster\'s CA expires.', format: 'date-time' })),
  serverNotAfter: Type.Optional(Type.String({ description: 'When the server certificate expires (it is renewed at 2/3 of its lifetime).', format: 'date-time' })),
  replicationNotAfter: Type.Optional(Type.String({ description: 'When the replication user\'s client certificate expires (renewed at 2/3 of its lifetime).', format: 'date-time' })),
  serverSerial: Type.Optional(Type.String({ description: 'Serial number of the server certificate (hex).', maxLength: 64 })),
  renewAt: Type.Optional(Type.String({ description: 'When the operator renews the next certificate.', format: 'date-time' })),
  requiredByDefault: Type.Optional(
    Type.Boolean({ description: 'What an unset spec.tls.required means for this cluster: true for a cluster the operator first saw with TLS support, false for one that ran before.' }),
  ),
});

export type TlsSpec = Static<typeof TlsSpecSchema>;
export type TlsStatus = Static<typeof TlsStatusSchema>;

/**
 * What an unset spec.tls.required means: recorded in status.tls once; before that, true for a
 * cluster with no status yet (new) and false for one an older operator ran (it has a phase), so
 * an operator upgrade does not refuse the plain TCP clients of existing clusters. A CRD default
 * would not do: the apiserver applies defaults to stored objects too when it reads them.
 */
export function tlsRequiredByDefault(status?: { phase?: string; tls?: TlsStatus }): boolean {
  return status?.tls?.requiredByDefault ?? status?.phase === undefined;
}

/** Whether TLS is required: spec.tls.required, else tlsRequiredByDefault. */
export function tlsRequired(spec: { tls?: TlsSpec }, status?: { phase?: string; tls?: TlsStatus }): boolean {
  return spec.tls?.required ?? tlsRequiredByDefault(status);
}
