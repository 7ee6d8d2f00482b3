// The CA of the operator's webhook serving certificates, kept in a Secret in the operator's own
// namespace so that restarts and every replica agree on it (any replica may answer the
// apiserver, which trusts the bundle injected into the CRD and the webhook configuration).
// Each replica issues its own short-lived serving certificate from it in memory. The CA is
// renewed at 2/3 of its life; the bundle keeps the previous CA until it expires, so certificates
// of replicas that have not yet re-read the Secret stay trusted.
import type { CoreV1Api, V1Secret } from '@kubernetes/client-node';
import { apiStatus } from './api-status.js';
import { certificateInfo, createCa, dueForRenewal, type CertKeyPem } from './x509.js';

export const WEBHOOK_CA_VALIDITY_SECONDS = 5 * 365 * 24 * 3600;
export const WEBHOOK_CERT_VALIDITY_SECONDS = 30 * 24 * 3600;
const KEYS = { cert: 'ca.crt', key: 'ca.key', bundle: 'ca-bundle.crt' } as const;

export interface WebhookCa {
  ca: CertKeyPem;
  /** PEM of every CA the apiserver should trust: the current one, and the previous one until it expires. */
  bundle: string;
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/g;

/** The certificates of a PEM bundle that are still valid at `now`. */
function unexpired(bundle: string, now: Date): string[] {
  return (bundle.match(PEM_CERT) ?? []).map((c) => (c.endsWith('\n') ? c : `${c}\n`)).filter((c) => {
    try {
      return certificateInfo(c).notAfter > now;
    } catch {
      return false;
    }
  });
}

function readable(ca: WebhookCa | undefined): boolean {
  if (!ca?.ca.cert || !ca.ca.key) return false;
  try {
    return certificateInfo(ca.ca.cert).isCa;
  } catch {
    return false;
  }
}

/**
 * The CA to keep for what the Secret holds (undefined: none yet or unreadable): the same when it
 * is good for a while yet, else a new one, trusted alongside the old in the bundle. `changed`
 * says whether the Secret must be written.
 */
export async function nextWebhookCa(current: WebhookCa | undefined, now = new Date(), validitySeconds = WEBHOOK_CA_VALIDITY_SECONDS): Promise<{ ca: WebhookCa; changed: boolean }> {
  if (readable(current) && !dueForRenewal(current!.ca.cert, now)) return { ca: current!, changed: false };
  const ca = await createCa('pgpilot-webhook-ca', validitySeconds, now);
  const previous = readable(current) ? unexpired(current!.ca.cert, now) : [];
  return { ca: { ca, bundle: [ca.cert, ...previous].join('') }, changed: true };
}

const decode = (s: V1Secret, key: string) => (s.data?.[key] ? Buffer.from(s.data[key], 'base64').toString('utf8') : '');
const encode = (s: string) => Buffer.from(s, 'utf8').toString('base64');

function fromSecret(s: V1Secret | undefined): WebhookCa | undefined {
  if (!s) return undefined;
  return { ca: { cert: decode(s, KEYS.cert), key: decode(s, KEYS.key) }, bundle: decode(s, KEYS.bundle) || decode(s, KEYS.cert) };
}

async function readSecret(core: CoreV1Api, namespace: string, name: string): Promise<V1Secret | undefined> {
  try {
    return await core.readNamespacedSecret({ name, namespace });
  } catch (err) {
    if (apiStatus(err) === 404) return undefined;
    throw err;
  }
}

/**
 * The webhook CA from the Secret `name` in `namespace`, created or renewed there when needed. Two
 * replicas racing are settled by the apiserver (create conflict, resourceVersion): the loser
 * reads and uses the winner's CA.
 */
export async function ensureWebhookCa(core: CoreV1Api, namespace: string, name: string, now = new Date(), labels: Record<string, string> = {}): Promise<{ ca: WebhookCa; written: boolean }> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const secret = await readSecret(core, namespace, name);
    const next = await nextWebhookCa(fromSecret(secret), now);
    if (!next.changed) return { ca: next.ca, written: false };
    const data = { [KEYS.cert]: encode(next.ca.ca.cert), [KEYS.key]: encode(next.ca.ca.key), [KEYS.bundle]: encode(next.ca.bundle) };
    try {
      if (secret) {
        await core.replaceNamespacedSecret({ name, namespace, body: { ...secret, data } });
      } else {
        await core.createNamespacedSecret({ namespace, body: { apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace, labels }, type: 'Opaque', data } });
      }
      return { ca: next.ca, written: true };
    } catch (err) {
      // Another replica wrote first: read again and take its CA.
      if (apiStatus(err) !== 409) throw err;
    }
  }
  throw new Error(`the webhook CA Secret ${namespace}/${name} kept changing under us (3 conflicts in a row)`);
}
