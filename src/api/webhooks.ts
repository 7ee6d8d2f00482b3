// The operator's webhooks: paths, names shared with the chart, and the admission review of
// PostgreSQLClusters (pure; the HTTPS server is src/controller/webhooks.ts). docs/api-versions.md.
import type { RecoverySource, S3Target } from './cluster.js';
import { recoverySourceProblem } from './recovery-access.js';

export const WEBHOOK_PATHS = {
  /** ConversionReview (apiextensions.k8s.io/v1) for PostgreSQLCluster v1 ↔ v1beta1. */
  convert: '/convert',
  /** AdmissionReview (admission.k8s.io/v1) of PostgreSQLCluster creations: the recovery source rule. */
  validateCluster: '/validate/postgresqlclusters',
} as const;

/** What the chart installs by default (the operator is told its own through flags). */
export const WEBHOOK_DEFAULTS = {
  namespace: 'pgpilot-system',
  service: 'pgpilot-webhook',
  /**
   * The HTTPS port the operator serves the webhooks on, and the port of its Service (the same
   * number, so that a Service of type ExternalName — the e2e harness's way to reach a pod — works too).
   */
  port: 9443,
  /** The Secret in the operator's namespace holding the webhook CA (ca.crt, ca.key). */
  caSecret: 'pgpilot-webhook-ca',
} as const;

/** admission.k8s.io/v1 AdmissionReview (only the fields used). */
export interface AdmissionReview {
  apiVersion: string;
  kind: 'AdmissionReview';
  request?: {
    uid: string;
    operation: string;
    namespace?: string;
    object?: { metadata?: { name?: string; namespace?: string }; spec?: { bootstrap?: { recovery?: { source?: RecoverySource } } } };
  };
  response?: { uid: string; allowed: boolean; status?: { code: number; reason: string; message: string } };
}

/**
 * The answer to a PostgreSQLCluster admission: refused when spec.bootstrap.recovery.source is an
 * archive of the default store outside the cluster's namespace. v1 and v1beta1 share the field.
 */
export function reviewClusterAdmission(review: AdmissionReview, defaultStore: S3Target | undefined): AdmissionReview {
  const req = review.request;
  if (!req) throw new Error('AdmissionReview has no request');
  const source = req.object?.spec?.bootstrap?.recovery?.source;
  const namespace = req.namespace ?? req.object?.metadata?.namespace ?? '';
  const problem = req.operation === 'CREATE' && source ? recoverySourceProblem(namespace, source, defaultStore) : undefined;
  return {
    apiVersion: review.apiVersion,
    kind: 'AdmissionReview',
    response: problem ? { uid: req.uid, allowed: false, status: { code: 403, reason: 'Forbidden', message: problem } } : { uid: req.uid, allowed: true },
  };
}
