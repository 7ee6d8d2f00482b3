// `pgpilot operator` settings: flags, each with an environment variable (the Helm chart sets env).
import { InvalidArgumentError, Option } from 'commander';
import { readFileSync } from 'node:fs';
import type { TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { S3TargetSchema, type S3Target } from '../api/cluster.js';
import { WEBHOOK_DEFAULTS } from '../api/webhooks.js';
import { LOG_LEVELS, type LogLevel } from '../runtime/logger.js';
import { OLM_SERVING_CERT_DIR, SERVING_CERT_FILES } from '../runtime/serving-cert-files.js';
import { errorText } from '../util/error-text.js';

export interface OperatorSettings {
  kubeconfig?: string;
  namespace: string;
  watchNamespaces: string[];
  leaderElect: boolean;
  leaseName: string;
  httpPort: number;
  httpHost: string;
  logLevel: LogLevel;
  concurrency: number;
  resyncSeconds: number;
  discoverySeconds: number;
  instanceImageRepository: string;
  operatorImage: string;
  /**
   * The operator-wide backup store (Helm value backup.defaultStore), with the schema's defaults
   * filled in; its credentials Secret is in `namespace`. Unset: no default store.
   */
  defaultBackupStore?: S3Target;
  /** HTTPS port of the conversion and validating webhooks; 0: not served, nothing injected. */
  webhookPort: number;
  /** The Service (in `namespace`) the apiserver reaches the webhooks through, port 443. */
  webhookService: string;
  /** Instead of the Service: the base URL the apiserver dials (an operator outside the cluster). */
  webhookUrl?: string;
  /** The ValidatingWebhookConfiguration to inject the CA bundle into; empty: none. */
  webhookConfiguration: string;
  /** The Secret in `namespace` holding the webhooks' CA. */
  webhookCaSecret: string;
  /**
   * A directory with tls.crt and tls.key issued by someone else (OLM): served from there, read
   * again when they change; no CA Secret, nothing injected (webhookService, webhookUrl,
   * webhookConfiguration and webhookCaSecret unused).
   */
  webhookCertDir?: string;
  /** Lifetimes of the clusters' CA and leaf certificates (docs/tls.md); unset: 10 years and 90 days. */
  tlsCaLifetimeSeconds?: number;
  tlsLeafLifetimeSeconds?: number;
  /** Namespaces whose clusters may use the default store (its keys are copied only there). */
  defaultBackupStoreNamespaces: string[];
  /** Namespace → Secret in `namespace` holding keys the store scopes to that namespace's prefix. */
  defaultBackupStoreNamespaceCredentials: Record<string, string>;
}

function integer(min: number, max: number) {
  return (value: string): number => {
    // Number() would read "" as 0 and accept "1e1" or "0x10": only plain decimal digits.
    const n = /^[0-9]+$/.test(value) ? Number(value) : NaN;
    if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`must be an integer from ${min} to ${max}, got "${value}"`);
    return n;
  };
}

function boolean(value: string): boolean {
  if (/^(true|1|yes)$/i.test(value)) return true;
  if (/^(false|0|no)$/i.test(value)) return false;
  throw new InvalidArgumentError(`must be true or false, got "${value}"`);
}

function httpsUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new InvalidArgumentError(`must be an https:// URL, got "${value}"`);
  }
  if (url.protocol !== 'https:' || url.search || url.hash || url.username) throw new InvalidArgumentError(`must be an https:// URL without query, fragment or user, got "${value}"`);
  return value.replace(/\/+$/, '');
}

function nonEmpty(value: string): string {
  if (value.trim() === '') throw new InvalidArgumentError('must not be empty');
  return value;
}

function namespaceList(value: string): string[] {
  const list = value.split(',').map((s) => s.trim()).filter(Boolean);
  for (const ns of list) if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(ns)) throw new InvalidArgumentError(`"${ns}" is not a valid namespace name`);
  return list;
}

/** Keys of `value` (deep) that `schema` does not declare: a typo would otherwise pass unnoticed. */
function unknownFields(schema: TSchema, value: unknown, at: string): string[] {
  if (schema.type !== 'object' || schema.properties === undefined || value === null || typeof value !== 'object' || Array.isArray(value)) return [];
  const properties = schema.properties as Record<string, TSchema>;
  return Object.entries(value as Record<string, unknown>).flatMap(([key, v]) =>
    key in properties ? unknownFields(properties[key]!, v, `${at}${key}.`) : [`${at}${key}`],
  );
}

/**
 * An S3 store as JSON (the shape of spec.backup.s3), checked against the API's own schema, with
 * its defaults filled in. Errors name the field and what it accepts.
 */
export function parseBackupStore(json: string): S3Target {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch (e) {
    throw new InvalidArgumentError(`must be a JSON object with the fields of spec.backup.s3: ${errorText(e)}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new InvalidArgumentError('must be a JSON object with the fields of spec.backup.s3');
  const unknown = unknownFields(S3TargetSchema, value, '');
  if (unknown.length > 0) throw new InvalidArgumentError(`unknown field${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')} (the fields are those of spec.backup.s3)`);
  const byField = new Map<string, string[]>();
  for (const e of Value.Errors(S3TargetSchema, value)) {
    const field = e.path.replace(/^\//, '').replace(/\//g, '.') || '(the store)';
    const what = Array.isArray(e.schema.enum) ? `must be one of ${e.schema.enum.join(', ')}` : e.message;
    byField.set(field, [...(byField.get(field) ?? []), what]);
  }
  // A missing field is just that: not also "Expected string".
  const problems = [...byField].map(([field, whats]) => `${field}: ${whats.includes('Expected required property') ? 'is required' : [...new Set(whats)].join(', ')}`);
  const sse = (value as S3Target).serverSideEncryption;
  if (sse?.kmsKeyId !== undefined && sse.algorithm !== 'aws:kms') problems.push('serverSideEncryption.kmsKeyId: is only allowed with algorithm aws:kms');
  if (problems.length > 0) throw new InvalidArgumentError(problems.join('; '));
  return Value.Default(S3TargetSchema, value) as S3Target;
}

/** {"<namespace>": "<Secret name>", ...} as JSON: scoped credentials of the default store per namespace. */
export function parseNamespaceCredentials(json: string): Record<string, string> {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch (e) {
    throw new InvalidArgumentError(`must be a JSON object {"<namespace>": "<Secret name>"}: ${errorText(e)}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new InvalidArgumentError('must be a JSON object {"<namespace>": "<Secret name>"}');
  const out: Record<string, string> = {};
  for (const [ns, secret] of Object.entries(value)) {
    namespaceList(ns);
    if (typeof secret !== 'string' || !/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(secret) || secret.length > 253) {
      throw new InvalidArgumentError(`${ns}: must name a Secret (a DNS subdomain), got ${JSON.stringify(secret)}`);
    }
    out[ns] = secret;
  }
  return out;
}

/** What is wrong in a combination of settings that each parse (undefined: nothing), naming the options. */
export function operatorSettingsProblem(s: OperatorSettings): string | undefined {
  if (s.webhookCertDir !== undefined && !s.webhookPort) return '--webhook-cert-dir (PGPILOT_WEBHOOK_CERT_DIR) needs --webhook-port (PGPILOT_WEBHOOK_PORT): the certificate is for the webhooks, which are not served with port 0';
  return undefined;
}

/** The namespace this pod runs in (for its leader Lease), from the service account mount. */
function podNamespace(): string {
  try {
    return readFileSync('/var/run/secrets/kubernetes.io/serviceaccount/namespace', 'utf8').trim();
  } catch {
    return 'default';
  }
}

export function operatorOptions(): Option[] {
  return [
    new Option('--kubeconfig <path>', 'kubeconfig file (default: in-cluster, then KUBECONFIG, then ~/.kube/config)'),
    new Option('--namespace <ns>', 'namespace of the leader Lease').env('PGPILOT_NAMESPACE').default(podNamespace()),
    new Option('--watch-namespaces <list>', 'comma-separated namespaces to manage; empty means all').env('PGPILOT_WATCH_NAMESPACES').argParser(namespaceList).default([]),
    new Option('--leader-elect <bool>', 'elect a leader through a Lease so replicas can run side by side').env('PGPILOT_LEADER_ELECT').argParser(boolean).default(true),
    new Option('--lease-name <name>', 'name of the leader Lease').env('PGPILOT_LEASE_NAME').default('pgpilot-operator-leader'),
    new Option('--http-port <port>', 'port for /metrics, /healthz and /readyz').env('PGPILOT_HTTP_PORT').argParser(integer(0, 65535)).default(8080),
    // The chart passes the pod IP: binding every address would also claim the port on addresses
    // that are not the pod's where pods share a network (the e2e process kubelet).
    new Option('--http-host <address>', 'address for /metrics, /healthz and /readyz').env('PGPILOT_HTTP_HOST').default('0.0.0.0'),
    new Option('--log-level <level>', 'log level').env('PGPILOT_LOG_LEVEL').choices(LOG_LEVELS).default('info'),
    new Option('--concurrency <n>', 'clusters reconciled at once').env('PGPILOT_CONCURRENCY').argParser(integer(1, 100)).default(10),
    new Option('--resync-seconds <s>', 'reconcile every cluster at least this often').env('PGPILOT_RESYNC_SECONDS').argParser(integer(10, 86400)).default(300),
    new Option('--discovery-seconds <s>', "look this often whether optional APIs (the Prometheus Operator's PodMonitor) appeared or went").env('PGPILOT_DISCOVERY_SECONDS').argParser(integer(1, 3600)).default(60),
    new Option('--instance-image-repository <repo>', 'image repository of PostgreSQL instances (<repo>:<version>)')
      .env('PGPILOT_INSTANCE_IMAGE_REPOSITORY')
      .default('ghcr.io/pgpilot/postgresql'),
    new Option('--operator-image <image>', 'the operator\'s own image, used by backup Jobs').env('PGPILOT_OPERATOR_IMAGE').default('ghcr.io/pgpilot/pgpilot:0.1.0'),
    new Option('--default-backup-store <json>', 'operator-wide S3 backup store as JSON (the fields of spec.backup.s3; credentials Secret in --namespace)')
      .env('PGPILOT_DEFAULT_BACKUP_STORE')
      .argParser(parseBackupStore),
    new Option('--webhook-port <port>', 'HTTPS port of the conversion and validating webhooks (0: not served, and the CRD is left as it is)').env('PGPILOT_WEBHOOK_PORT').argParser(integer(0, 65535)).default(0),
    new Option('--webhook-service <name>', 'Service in --namespace through which the apiserver reaches the webhooks (its port is --webhook-port)').env('PGPILOT_WEBHOOK_SERVICE').default(WEBHOOK_DEFAULTS.service),
    new Option('--webhook-url <url>', 'base URL the apiserver dials instead of the Service, e.g. https://127.0.0.1:9443 for an operator outside the cluster').env('PGPILOT_WEBHOOK_URL').argParser(httpsUrl),
    new Option('--webhook-configuration <name>', 'ValidatingWebhookConfiguration to inject the CA bundle into (empty: none)').env('PGPILOT_WEBHOOK_CONFIGURATION').default(''),
    new Option('--webhook-ca-secret <name>', 'Secret in --namespace holding the webhooks\' CA (created when missing)').env('PGPILOT_WEBHOOK_CA_SECRET').default(WEBHOOK_DEFAULTS.caSecret),
    new Option('--webhook-cert-dir <dir>', `serve the webhooks with ${SERVING_CERT_FILES.cert} and ${SERVING_CERT_FILES.key} from this directory, issued and injected by someone else (OLM: ${OLM_SERVING_CERT_DIR}); the operator then keeps no CA and patches neither the CRD nor the webhook configuration`)
      .env('PGPILOT_WEBHOOK_CERT_DIR')
      .argParser(nonEmpty)
      // Those say where the operator's own CA points the apiserver: with files, nothing is injected.
      .conflicts(['webhookUrl', 'webhookConfiguration']),
    // Lifetimes: renewal comes at 2/3 of them. Short ones are for tests of renewal (docs/tls.md).
    new Option('--tls-ca-lifetime-seconds <s>', "lifetime of each cluster's CA (default 10 years)").env('PGPILOT_TLS_CA_LIFETIME_SECONDS').argParser(integer(60, 100 * 365 * 86400)),
    new Option('--tls-leaf-lifetime-seconds <s>', 'lifetime of server and client certificates (default 90 days)').env('PGPILOT_TLS_LEAF_LIFETIME_SECONDS').argParser(integer(60, 10 * 365 * 86400)),
    new Option('--default-backup-store-namespaces <list>', 'comma-separated namespaces whose clusters may use the default backup store (its keys are copied only there)')
      .env('PGPILOT_DEFAULT_BACKUP_STORE_NAMESPACES')
      .argParser(namespaceList)
      .default([]),
    new Option('--default-backup-store-namespace-credentials <json>', 'JSON {"<namespace>": "<Secret in --namespace>"}: keys the store scopes to <path>/<namespace>/, used there instead of the bucket-wide ones')
      .env('PGPILOT_DEFAULT_BACKUP_STORE_NAMESPACE_CREDENTIALS')
      .argParser(parseNamespaceCredentials)
      .default({}),
  ];
}
