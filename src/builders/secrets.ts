// Credential Secrets. Passwords come from the caller (crypto randomness at the edge) so this
// stays pure; the operator creates each Secret once and never rewrites it.
import { randomBytes } from 'node:crypto';
import type { V1Secret } from '@kubernetes/client-node';
import type { PostgreSQLCluster } from '../api/cluster.js';
import { POSTGRES_PORT } from '../api/constants.js';
import { ownedMeta } from './meta.js';
import { names } from '../api/names.js';
import { REPLICATION_USER } from './postgres-config.js';
import { specOf } from '../api/resolve-spec.js';

/** 32 URL-safe characters from 24 random bytes (192 bits). */
export function generatePassword(): string {
  return randomBytes(24).toString('base64url');
}

export type CredentialKind = 'superuser' | 'replication' | 'app' | 'agent';

/** The Secrets the operator generates for this spec (a user-supplied Secret replaces ours). */
export function generatedSecretNames(cluster: PostgreSQLCluster): Record<CredentialKind, string | undefined> {
  const name = cluster.metadata.name!;
  return {
    superuser: cluster.spec.superuserSecret ? undefined : names.superuserSecret(name),
    replication: names.replicationSecret(name),
    app: cluster.spec.bootstrap?.initdb?.secret ? undefined : names.appSecret(name),
    agent: names.agentSecret(name),
  };
}

/** The Secret each credential lives in, whoever made it. */
export function secretNames(cluster: PostgreSQLCluster): Record<CredentialKind, string> {
  const name = cluster.metadata.name!;
  return {
    superuser: cluster.spec.superuserSecret?.name ?? names.superuserSecret(name),
    replication: names.replicationSecret(name),
    app: cluster.spec.bootstrap?.initdb?.secret?.name ?? names.appSecret(name),
    agent: names.agentSecret(name),
  };
}

export function credentialSecret(cluster: PostgreSQLCluster, kind: CredentialKind, password: string): V1Secret {
  const name = cluster.metadata.name!;
  const ns = cluster.metadata.namespace!;
  const secretName = secretNames(cluster)[kind];
  let data: Record<string, string>;
  if (kind === 'agent') {
    return { apiVersion: 'v1', kind: 'Secret', metadata: ownedMeta(cluster, secretName, 'credentials-agent'), type: 'Opaque', stringData: { token: password } };
  }
  if (kind === 'superuser') data = { username: 'postgres', password };
  else if (kind === 'replication') data = { username: REPLICATION_USER, password };
  else {
    const { owner: user, database: db } = specOf(cluster).initdb;
    const host = `${names.rw(name)}.${ns}.svc`;
    const enc = encodeURIComponent(password);
    data = {
      username: user,
      password,
      dbname: db,
      host,
      port: String(POSTGRES_PORT),
      // verify-full: the server certificate names this host (docs/tls.md); clients find the CA
      // (Secret <cluster>-ca-cert, key ca.crt) at ~/.postgresql/root.crt or add sslrootcert=<file>.
      uri: `postgresql://${user}:${enc}@${host}:${POSTGRES_PORT}/${db}?sslmode=verify-full`,
      'jdbc-uri': `jdbc:postgresql://${host}:${POSTGRES_PORT}/${db}?user=${user}&password=${enc}&sslmode=verify-full`,
    };
  }
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: ownedMeta(cluster, secretName, `credentials-${kind}`),
    type: 'kubernetes.io/basic-auth',
    stringData: data,
  };
}
