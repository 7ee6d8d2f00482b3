// A serving certificate issued and rotated by someone else — OLM mounts the one it issues for the
// operator's webhooks as tls.crt and tls.key (controller-runtime's convention) — read from its
// directory. The webhook server (src/controller/webhooks.ts) reads it again when the files change.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { createSecureContext } from 'node:tls';
import { errorText } from '../util/error-text.js';
import type { CertKeyPem } from './x509.js';

export const SERVING_CERT_FILES = { cert: 'tls.crt', key: 'tls.key' } as const;

/** Where OLM mounts the certificate of a CSV's webhooks (webhookdefinitions) in the Deployment's containers. */
export const OLM_SERVING_CERT_DIR = '/tmp/k8s-webhook-server/serving-certs';

/** What is wrong with the files (the caller names the setting that points at them). */
export class ServingCertError extends Error {}

/** tls.crt and tls.key of `dir`, checked to be a certificate and its key; errors name the file and what is wrong. */
export async function readServingCert(dir: string): Promise<CertKeyPem> {
  const read = async (name: string): Promise<string> => {
    try {
      return await readFile(path.join(dir, name), 'utf8');
    } catch (err) {
      throw new ServingCertError(`cannot read ${path.join(dir, name)}: ${errorText(err)}`);
    }
  };
  const [cert, key] = await Promise.all([read(SERVING_CERT_FILES.cert), read(SERVING_CERT_FILES.key)]);
  try {
    // What the HTTPS server will do with them: fails on a bad PEM or a key that is not the certificate's.
    createSecureContext({ cert, key });
  } catch (err) {
    throw new ServingCertError(`${SERVING_CERT_FILES.cert} and ${SERVING_CERT_FILES.key} in ${dir} are not a certificate and its private key: ${errorText(err)}`);
  }
  return { cert, key };
}
