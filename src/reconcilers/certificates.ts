// certificates: the cluster's PKI, run by the operator (docs/tls.md). Per cluster a CA (Secret
// <cluster>-ca, read by the operator only), the CA certificate alone for clients (<cluster>-ca-cert)
// PostgreSQL's server certificate (<cluster>-server-tls) and the replication user's client
// certificate (<cluster>-replication-tls), both mounted into the instance pods,
// planned by certificates-plan.ts from the Secrets' annotations. Renewal rewrites the Secret;
// the kubelet updates the mounted files and each instance agent reloads PostgreSQL (no restart).
import type { V1Secret } from '@kubernetes/client-node';
import { names } from '../api/names.js';
import { TLS_DEFAULT_CA_SECONDS, TLS_DEFAULT_LEAF_SECONDS, TLS_FILES, tlsRequiredByDefault, type TlsStatus } from '../api/tls.js';
import { ownedMeta } from '../builders/meta.js';
import { ignoreNotFound } from '../runtime/api-status.js';
import { certificateInfo, createCa, issueCertificate, type CertKeyPem } from '../runtime/x509.js';
import {
  annotationsOf,
  dnsNamesHash,
  nextRenewal,
  planCertificates,
  planWrites,
  recordOf,
  serverDnsNames,
  type CertRecord,
  type CertificatesPlan,
  type Reason,
} from './certificates-plan.js';
import type { ReconcileContext, Reconciler, ReconcilerResult } from './types.js';
import { REPLICATION_USER } from '../builders/postgres-config.js';

/** A pass looks again at least this often while a renewal is pending (setTimeout cannot wait weeks). */
const MAX_REQUEUE_MS = 3600_000;

const b64 = (s: string) => Buffer.from(s).toString('base64');
const unb64 = (s: string | undefined) => Buffer.from(s ?? '', 'base64').toString('utf8');

function record(pem: string, extra: { caSerial?: string; dnsNames?: string } = {}): CertRecord {
  const info = certificateInfo(pem);
  return { serial: info.serialNumber, notBefore: info.notBefore, notAfter: info.notAfter, ...extra };
}

function secret(ctx: ReconcileContext, name: string, component: string, type: string, data: Record<string, string>, rec: CertRecord): V1Secret {
  const meta = ownedMeta(ctx.cluster, name, component);
  return { apiVersion: 'v1', kind: 'Secret', metadata: { ...meta, annotations: annotationsOf(rec) }, type, data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, b64(v)])) };
}

/** Server-side apply (the cached Secret has no data, so it always differs: called only when the plan writes). */
async function write(ctx: ReconcileContext, s: V1Secret): Promise<void> {
  await ctx.apply('Secret', s);
}

const REASON_TEXT: Record<Reason, string> = {
  missing: 'none existed',
  due: 'two thirds of its lifetime had passed',
  expired: 'it had expired',
  'ca-changed': 'the CA changed',
  'names-changed': 'the instances (the names it must carry) changed',
};

export interface CertificateLifetimes {
  caSeconds: number;
  leafSeconds: number;
}

export function createCertificatesReconciler(lifetimes: Partial<CertificateLifetimes> = {}): Reconciler {
  const caSeconds = lifetimes.caSeconds ?? TLS_DEFAULT_CA_SECONDS;
  const leafSeconds = lifetimes.leafSeconds ?? TLS_DEFAULT_LEAF_SECONDS;
  return {
    name: 'certificates',
    statusFields: ['tls'],
    async reconcile(ctx: ReconcileContext): Promise<ReconcilerResult> {
      const { cluster } = ctx;
      const name = cluster.metadata.name!;
      const ns = cluster.metadata.namespace!;
      const now = new Date();
      const dnsNames = serverDnsNames(name, ns, [...ctx.observed.instanceNames, ...ctx.observed.deferred]);
      const ids = { ca: names.caSecret(name), server: names.serverTlsSecret(name), replication: names.replicationTlsSecret(name), caCert: names.caCertSecret(name) };
      const inputFrom = (get: (n: string) => V1Secret | undefined) => ({
        now,
        ca: recordOf(get(ids.ca)?.metadata?.annotations),
        server: recordOf(get(ids.server)?.metadata?.annotations),
        replication: recordOf(get(ids.replication)?.metadata?.annotations),
        caCert: recordOf(get(ids.caCert)?.metadata?.annotations),
        dnsNames,
      });
      let input = inputFrom((n) => ctx.cache.get<V1Secret>('Secret', ns, n));
      let plan: CertificatesPlan = planCertificates(input);
      let caSecret: V1Secret | undefined;
      if (planWrites(plan)) {
        // The cache may lag behind a write of the previous pass: decide on the live Secrets.
        const live = new Map<string, V1Secret | undefined>();
        await Promise.all(Object.values(ids).map(async (n) => live.set(n, await ignoreNotFound(ctx.clients.core.readNamespacedSecret({ name: n, namespace: ns })))));
        input = inputFrom((n) => live.get(n));
        plan = planCertificates(input);
        caSecret = live.get(ids.ca);
      }
      let ca: CertKeyPem | undefined;
      let caRec = input.ca;
      if (plan.ca) {
        ca = await createCa(`${name}.${ns} pgpilot CA`, caSeconds, now);
        caRec = record(ca.cert);
        await write(ctx, secret(ctx, ids.ca, 'tls-ca', 'Opaque', { [TLS_FILES.ca]: ca.cert, 'ca.key': ca.key }, caRec));
        await ctx.event('Normal', plan.ca === 'missing' ? 'CaCreated' : 'CaRenewed', `Created the cluster's CA (serial ${caRec.serial}, expires ${caRec.notAfter.toISOString()}) because ${REASON_TEXT[plan.ca]}`);
      } else if (plan.server || plan.replication || plan.publishCa) {
        ca = { cert: unb64(caSecret?.data?.[TLS_FILES.ca]), key: unb64(caSecret?.data?.['ca.key']) };
      }
      let serverRec = input.server;
      if (plan.server) {
        const leaf = await issueCertificate(ca!, { commonName: names.tlsServerName(name, ns), dnsNames, usage: 'server', validitySeconds: leafSeconds, now });
        serverRec = record(leaf.cert, { caSerial: caRec!.serial, dnsNames: dnsNamesHash(dnsNames) });
        await write(ctx, secret(ctx, ids.server, 'tls-server', 'kubernetes.io/tls', { [TLS_FILES.cert]: leaf.cert, [TLS_FILES.key]: leaf.key, [TLS_FILES.ca]: ca!.cert }, serverRec));
        const verb = plan.server === 'missing' ? 'Issued' : 'Renewed';
        await ctx.event(
          'Normal',
          `ServerCertificate${verb}`,
          `${verb} the PostgreSQL server certificate (serial ${serverRec.serial}, expires ${serverRec.notAfter.toISOString()}) because ${REASON_TEXT[plan.server]}; the instances reload it without a restart`,
        );
      }
      let replicationRec = input.replication;
      if (plan.replication) {
        // CN = the replication user: pg_hba.conf's "cert" method maps the certificate to that role.
        const leaf = await issueCertificate(ca!, { commonName: REPLICATION_USER, usage: 'client', validitySeconds: leafSeconds, now });
        replicationRec = record(leaf.cert, { caSerial: caRec!.serial });
        await write(ctx, secret(ctx, ids.replication, 'tls-replication', 'kubernetes.io/tls', { [TLS_FILES.cert]: leaf.cert, [TLS_FILES.key]: leaf.key, [TLS_FILES.ca]: ca!.cert }, replicationRec));
        const verb = plan.replication === 'missing' ? 'Issued' : 'Renewed';
        await ctx.event('Normal', `ReplicationCertificate${verb}`, `${verb} the replication user's client certificate (serial ${replicationRec.serial}, expires ${replicationRec.notAfter.toISOString()}) because ${REASON_TEXT[plan.replication]}`);
      }
      if (plan.publishCa) {
        await write(ctx, secret(ctx, ids.caCert, 'tls-ca-cert', 'Opaque', { [TLS_FILES.ca]: ca!.cert }, { ...caRec!, caSerial: caRec!.serial }));
      }
      const renewAt = nextRenewal([caRec!, serverRec!, replicationRec!]);
      const tls: TlsStatus = {
        caSecret: ids.caCert,
        caNotAfter: caRec!.notAfter.toISOString(),
        serverNotAfter: serverRec!.notAfter.toISOString(),
        serverSerial: serverRec!.serial,
        replicationNotAfter: replicationRec!.notAfter.toISOString(),
        renewAt: renewAt.toISOString(),
        requiredByDefault: tlsRequiredByDefault(ctx.status),
      };
      const requeueAfterMs = Math.min(MAX_REQUEUE_MS, Math.max(1000, renewAt.getTime() - Date.now() + 500));
      return { status: { tls }, requeueAfterMs };
    },
  };
}
