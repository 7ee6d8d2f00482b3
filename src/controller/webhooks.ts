// The operator's webhooks over HTTPS: /convert (PostgreSQLCluster v1 ↔ v1beta1) and the
// validating webhook of PostgreSQLCluster creations (the recovery source rule). Every replica
// serves them (the apiserver may call any pod behind the Service). The serving certificate comes
// from one of two places, the server being the same:
//   - the operator's own CA (the Helm chart): issued from the CA in the operator's namespace
//     (src/runtime/webhook-ca.ts), whose bundle and the operator's address are injected into the
//     CRD's conversion webhook and the validating webhook configuration at start and whenever the
//     CA changes;
//   - files someone else issues, rotates and injects the CA of (OLM, from the CSV's
//     webhookdefinitions): read from a directory, again when they change; nothing is written to
//     the API. docs/api-versions.md.
import { watch, type FSWatcher } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isIP } from 'node:net';
import { PatchStrategy, setHeaderOptions, type V1ValidatingWebhook } from '@kubernetes/client-node';
import { CLUSTER_PLURAL, API_GROUP } from '../api/constants.js';
import type { S3Target } from '../api/cluster.js';
import { reviewConversion, type ConversionReview } from '../api/conversion.js';
import { WEBHOOK_PATHS, reviewClusterAdmission, type AdmissionReview } from '../api/webhooks.js';
import { ignoreNotFound } from '../runtime/api-status.js';
import { listen } from '../runtime/http-server.js';
import type { KubeClients } from '../runtime/kube.js';
import type { Logger } from '../runtime/logger.js';
import { readServingCert } from '../runtime/serving-cert-files.js';
import { ensureWebhookCa, WEBHOOK_CERT_VALIDITY_SECONDS, type WebhookCa } from '../runtime/webhook-ca.js';
import { dueForRenewal, issueCertificate, signedBy, type CertKeyPem } from '../runtime/x509.js';
import { errorText } from '../util/error-text.js';

/** How the apiserver reaches the webhooks: the chart's Service, or a URL (an operator outside the cluster). */
export type WebhookTarget = { service: { namespace: string; name: string; port: number }; url?: undefined } | { url: string; service?: undefined };

/** The operator's own CA: it issues the serving certificate and injects the CA bundle and its address. */
export interface OwnCaCertificates {
  /** The operator's namespace, where the CA Secret lives. */
  namespace: string;
  caSecret: string;
  target: WebhookTarget;
  /** The ValidatingWebhookConfiguration to inject into (none: the validating webhook is not installed). */
  validatingConfiguration?: string;
  clients: KubeClients;
}

/** A directory holding tls.crt and tls.key that someone else issues and rotates, and whose CA they inject (OLM). */
export interface CertificateFiles {
  dir: string;
}

export interface WebhookOptions {
  port: number;
  host: string;
  certificates: OwnCaCertificates | CertificateFiles;
  defaultStore?: S3Target;
  log: Logger;
  /** How often the CA and the serving certificate (or the files) are looked at again. */
  refreshMs?: number;
}

const fromFiles = (c: OwnCaCertificates | CertificateFiles): c is CertificateFiles => 'dir' in c;

const CRD_NAME = `${CLUSTER_PLURAL}.${API_GROUP}`;
const MAX_BODY = 8 * 2 ** 20;
const REFRESH_MS = 10 * 60_000;
/** A rotation rewrites both files (a Secret volume swaps them at once): read them once it has settled. */
const FILES_SETTLE_MS = 500;

/** The names the serving certificate must carry: what the apiserver dials and checks. */
export function servingNames(target: WebhookTarget): { dnsNames: string[]; ipAddresses: string[] } {
  if (target.url) {
    const host = new URL(target.url).hostname.replace(/^\[|\]$/g, '');
    return isIP(host) ? { dnsNames: [], ipAddresses: [host] } : { dnsNames: [host], ipAddresses: [] };
  }
  const { name, namespace } = target.service!;
  return { dnsNames: [name, `${name}.${namespace}`, `${name}.${namespace}.svc`, `${name}.${namespace}.svc.cluster.local`], ipAddresses: [] };
}

/** A webhook clientConfig for `path`, in the shape the apiserver stores (the unused form set to null, for a merge patch). */
export function clientConfig(target: WebhookTarget, path: string, bundle: string): Record<string, unknown> {
  const caBundle = Buffer.from(bundle, 'utf8').toString('base64');
  return target.url
    ? { url: `${target.url.replace(/\/+$/, '')}${path}`, service: null, caBundle }
    : { service: { ...target.service, path }, url: null, caBundle };
}

/** Whether `live` already says what `desired` does (nulls mean absent). */
function sameConfig(live: Record<string, unknown> | undefined, desired: Record<string, unknown>): boolean {
  const strip = (o: Record<string, unknown>) => JSON.stringify(Object.fromEntries(Object.entries(o).filter(([, v]) => v !== null).sort(([a], [b]) => a.localeCompare(b))));
  const norm = (o: Record<string, unknown> | undefined) => (o ? strip({ ...o, ...(o.service ? { service: strip(o.service as Record<string, unknown>) } : {}) }) : '');
  return norm(live) === norm(desired);
}

async function readBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) throw new Error(`request body over ${MAX_BODY} bytes`);
    chunks.push(chunk as Buffer);
  }
  return JSON.parse(Buffer.concat(chunks).toString('utf8'));
}

export class Webhooks {
  private server?: Server;
  private ca?: WebhookCa;
  private serving?: CertKeyPem;
  private timer?: NodeJS.Timeout;
  private watcher?: FSWatcher;
  private settle?: NodeJS.Timeout;

  constructor(private readonly opts: WebhookOptions) {}

  /** The serving certificate, the HTTPS server, then the injection (the server answers before the apiserver is told of it). */
  async start(): Promise<void> {
    await this.refreshCertificates();
    this.server = createServer({ cert: this.serving!.cert, key: this.serving!.key, minVersion: 'TLSv1.2' }, (req, res) => void this.handle(req, res));
    // The apiserver's own webhook timeout is at most 30 s; a stalled client must not hold a socket longer.
    this.server.requestTimeout = 30_000;
    await listen(this.server, this.opts.port, this.opts.host);
    const c = this.opts.certificates;
    this.opts.log.info({ port: this.opts.port, ...(fromFiles(c) ? { certDir: c.dir } : { target: c.target }) }, 'webhooks serving');
    if (fromFiles(c)) {
      // Rotations show at once; the timer below catches what a watch misses (some volume types).
      this.watcher = watch(c.dir, () => {
        clearTimeout(this.settle);
        this.settle = setTimeout(() => void this.refresh(), FILES_SETTLE_MS);
      });
      this.watcher.on('error', (err) => this.opts.log.warn({ err: errorText(err), certDir: c.dir }, 'watching the webhook certificate files failed; reading them on a timer only'));
      this.watcher.unref();
    } else {
      await this.inject(c);
    }
    this.timer = setInterval(() => void this.refresh(), this.opts.refreshMs ?? REFRESH_MS);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    clearTimeout(this.settle);
    this.watcher?.close();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }

  /** Renews or re-reads what changed; a new CA bundle is injected again. Failures are logged and retried at the next tick. */
  private async refresh(): Promise<void> {
    try {
      const before = { bundle: this.ca?.bundle, serving: this.serving };
      await this.refreshCertificates();
      if (this.serving !== before.serving) this.server?.setSecureContext({ cert: this.serving!.cert, key: this.serving!.key, minVersion: 'TLSv1.2' });
      const c = this.opts.certificates;
      if (!fromFiles(c) && this.ca!.bundle !== before.bundle) await this.inject(c);
    } catch (err) {
      this.opts.log.warn({ err: errorText(err) }, 'webhook certificate refresh failed; trying again later');
    }
  }

  /** Sets `serving` to a new object only when the certificate changed. */
  private async refreshCertificates(): Promise<void> {
    const c = this.opts.certificates;
    if (fromFiles(c)) {
      const read = await readServingCert(c.dir);
      if (read.cert === this.serving?.cert && read.key === this.serving.key) return;
      this.serving = read;
      this.opts.log.info({ certDir: c.dir }, 'webhook serving certificate read from its files');
      return;
    }
    const { ca, written } = await ensureWebhookCa(c.clients.core, c.namespace, c.caSecret, new Date(), { 'app.kubernetes.io/managed-by': 'pgpilot' });
    if (written) this.opts.log.info({ secret: `${c.namespace}/${c.caSecret}` }, 'webhook CA created or renewed');
    this.ca = ca;
    if (this.serving && !dueForRenewal(this.serving.cert) && (await signedBy(this.serving.cert, ca.ca.cert))) return;
    this.serving = await issueCertificate(ca.ca, { commonName: 'pgpilot-webhook', ...servingNames(c.target), usage: 'server', validitySeconds: WEBHOOK_CERT_VALIDITY_SECONDS });
    this.opts.log.info('webhook serving certificate issued');
  }

  /** Points the CRD's conversion webhook and the validating webhooks at this operator, with the CA bundle; writes only what differs. */
  private async inject(c: OwnCaCertificates): Promise<void> {
    const { apiextensions, admission } = c.clients;
    const bundle = this.ca!.bundle;
    const crd = await apiextensions.readCustomResourceDefinition({ name: CRD_NAME });
    const desired = clientConfig(c.target, WEBHOOK_PATHS.convert, bundle);
    if (!sameConfig(crd.spec.conversion?.webhook?.clientConfig as Record<string, unknown> | undefined, desired)) {
      await apiextensions.patchCustomResourceDefinition(
        { name: CRD_NAME, body: { spec: { conversion: { strategy: 'Webhook', webhook: { conversionReviewVersions: ['v1'], clientConfig: desired } } } } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
      this.opts.log.info({ crd: CRD_NAME }, 'conversion webhook address and CA bundle injected into the CRD');
    }
    const name = c.validatingConfiguration;
    if (!name) return;
    // Deleted (by hand, or by an uninstall in progress): nothing to point at us; the operator's own check still holds.
    const vwc = await ignoreNotFound(admission.readValidatingWebhookConfiguration({ name }));
    if (!vwc) {
      this.opts.log.warn({ validatingWebhookConfiguration: name }, 'validating webhook configuration not found: not injected (the operator still checks recovery sources itself)');
      return;
    }
    const wanted = clientConfig(c.target, WEBHOOK_PATHS.validateCluster, bundle);
    if ((vwc.webhooks ?? []).every((w) => sameConfig(w.clientConfig as Record<string, unknown>, wanted))) return;
    const strip = (cc: Record<string, unknown>) => Object.fromEntries(Object.entries(cc).filter(([, v]) => v !== null)) as V1ValidatingWebhook['clientConfig'];
    await admission.replaceValidatingWebhookConfiguration({ name, body: { ...vwc, webhooks: (vwc.webhooks ?? []).map((w) => ({ ...w, clientConfig: strip(wanted) })) } });
    this.opts.log.info({ validatingWebhookConfiguration: name }, 'validating webhook address and CA bundle injected');
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    const reply = (code: number, body: unknown) => res.writeHead(code, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    if (req.method !== 'POST' || (path !== WEBHOOK_PATHS.convert && path !== WEBHOOK_PATHS.validateCluster)) {
      reply(404, { error: `no webhook at ${req.method} ${path}` });
      return;
    }
    try {
      const body = await readBody(req);
      if (path === WEBHOOK_PATHS.convert) {
        const review = body as ConversionReview;
        const out = reviewConversion(review);
        if (out.response!.result.status !== 'Success') this.opts.log.warn({ uid: review.request?.uid, message: out.response!.result.message }, 'conversion refused');
        reply(200, out);
      } else {
        const review = body as AdmissionReview;
        const out = reviewClusterAdmission(review, this.opts.defaultStore);
        if (!out.response!.allowed) {
          this.opts.log.info({ namespace: review.request?.namespace, name: review.request?.object?.metadata?.name, message: out.response!.status?.message }, 'PostgreSQLCluster refused by the validating webhook');
        }
        reply(200, out);
      }
    } catch (err) {
      this.opts.log.warn({ path, err: errorText(err) }, 'webhook request failed');
      reply(400, { error: errorText(err) });
    }
  }
}
