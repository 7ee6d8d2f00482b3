// Renders the CustomResourceDefinitions from the TypeBox schemas (pure; `npm run gen` writes them).
import type { TSchema } from '@sinclair/typebox';
import {
  API_GROUP,
  API_VERSION,
  API_VERSION_V1BETA1,
  BACKUP_KIND,
  BACKUP_PLURAL,
  BACKUP_SHORT_NAMES,
  BACKUP_SINGULAR,
  CATEGORIES,
  CLUSTER_KIND,
  CLUSTER_PLURAL,
  CLUSTER_SHORT_NAMES,
  CLUSTER_SINGULAR,
} from './constants.js';
import { BackupSchema } from './backup.js';
import { ClusterSchema } from './cluster.js';
import { ClusterV1beta1Schema } from './cluster-v1beta1.js';
import { WEBHOOK_DEFAULTS, WEBHOOK_PATHS } from './webhooks.js';

/** Plain JSON of a TypeBox schema: drops TypeBox's symbol keys and the metadata stub. */
export function toOpenApi(schema: TSchema): Record<string, unknown> {
  const plain = JSON.parse(JSON.stringify(schema)) as Record<string, unknown>;
  return plain;
}

/** The openAPIV3Schema of a kind's root TypeBox schema. */
function rootOpenApi(root: TSchema): Record<string, unknown> {
  const schema = toOpenApi(root) as { properties: Record<string, unknown> };
  // Kubernetes owns metadata's schema; a CRD may only say it is an object.
  schema.properties.metadata = { type: 'object' };
  return schema;
}

interface VersionInput {
  schema: TSchema;
  subresources: Record<string, unknown>;
  printerColumns: Array<Record<string, unknown>>;
}

interface CrdInput extends VersionInput {
  kind: string;
  plural: string;
  singular: string;
  shortNames: string[];
  /** Versions served besides the storage version (API_VERSION), converted by the operator's webhook. */
  olderVersions?: Array<VersionInput & { name: string }>;
}

const version = (name: string, storage: boolean, v: VersionInput) => ({
  name,
  served: true,
  storage,
  schema: { openAPIV3Schema: rootOpenApi(v.schema) },
  subresources: v.subresources,
  additionalPrinterColumns: v.printerColumns,
});

/**
 * The conversion webhook as installed: the chart's Service in the namespace of the README's
 * install. The operator rewrites clientConfig at start with its own Service (or URL) and the CA
 * bundle of its serving certificate (src/controller/webhooks.ts); reads and writes of the storage
 * version never call it.
 */
export const CONVERSION_WEBHOOK = {
  strategy: 'Webhook',
  webhook: {
    conversionReviewVersions: ['v1'],
    clientConfig: {
      service: { namespace: WEBHOOK_DEFAULTS.namespace, name: WEBHOOK_DEFAULTS.service, path: WEBHOOK_PATHS.convert, port: WEBHOOK_DEFAULTS.port },
    },
  },
} as const;

function crd(input: CrdInput): Record<string, unknown> {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: {
      name: `${input.plural}.${API_GROUP}`,
      labels: { 'app.kubernetes.io/name': 'pgpilot', 'app.kubernetes.io/part-of': 'pgpilot' },
    },
    spec: {
      group: API_GROUP,
      scope: 'Namespaced',
      names: {
        kind: input.kind,
        listKind: `${input.kind}List`,
        plural: input.plural,
        singular: input.singular,
        shortNames: input.shortNames,
        categories: CATEGORIES,
      },
      versions: [version(API_VERSION, true, input), ...(input.olderVersions ?? []).map((v) => version(v.name, false, v))],
      ...(input.olderVersions?.length ? { conversion: CONVERSION_WEBHOOK } : {}),
    },
  };
}

/** The columns every served version of the cluster shows after its own size columns (`kubectl get pgc`). */
function clusterStatusColumns(version: string): Array<Record<string, unknown>> {
  return [
    { name: 'Ready', type: 'integer', jsonPath: '.status.readyInstances', description: 'Instances that are ready' },
    { name: 'Phase', type: 'string', jsonPath: '.status.phase', description: 'Cluster phase' },
    { name: 'Primary', type: 'string', jsonPath: '.status.currentPrimary', description: 'Current primary instance' },
    { name: 'Version', type: 'string', jsonPath: '.status.version', description: version },
    { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
  ];
}

export function clusterCrd(): Record<string, unknown> {
  return crd({
    kind: CLUSTER_KIND,
    plural: CLUSTER_PLURAL,
    singular: CLUSTER_SINGULAR,
    shortNames: CLUSTER_SHORT_NAMES,
    schema: ClusterSchema,
    subresources: {
      status: {},
      scale: {
        specReplicasPath: '.spec.instances',
        statusReplicasPath: '.status.instances',
        labelSelectorPath: '.status.selector',
      },
    },
    printerColumns: [{ name: 'Instances', type: 'integer', jsonPath: '.spec.instances', description: 'Desired number of instances' }, ...clusterStatusColumns('PostgreSQL version the primary runs (spec.version is the one asked for)')],
    olderVersions: [
      {
        name: API_VERSION_V1BETA1,
        schema: ClusterV1beta1Schema,
        subresources: {
          status: {},
          scale: { specReplicasPath: '.spec.replicas', statusReplicasPath: '.status.replicas', labelSelectorPath: '.status.selector' },
        },
        printerColumns: [
          { name: 'Replicas', type: 'integer', jsonPath: '.spec.replicas', description: 'Desired number of instances' },
          { name: 'Storage', type: 'string', jsonPath: '.spec.storage', description: 'Size of every instance\'s data volume' },
          ...clusterStatusColumns('PostgreSQL version the primary runs'),
        ],
      },
    ],
  });
}

export function backupCrd(): Record<string, unknown> {
  return crd({
    kind: BACKUP_KIND,
    plural: BACKUP_PLURAL,
    singular: BACKUP_SINGULAR,
    shortNames: BACKUP_SHORT_NAMES,
    schema: BackupSchema,
    subresources: { status: {} },
    printerColumns: [
      { name: 'Cluster', type: 'string', jsonPath: '.spec.cluster.name', description: 'Cluster backed up' },
      { name: 'Phase', type: 'string', jsonPath: '.status.phase', description: 'pending, running, completed or failed' },
      { name: 'Started', type: 'date', jsonPath: '.status.startedAt', description: 'When the backup started' },
      { name: 'Size', type: 'integer', jsonPath: '.status.storedBytes', description: 'Bytes stored (compressed)' },
      { name: 'Duration', type: 'number', jsonPath: '.status.durationSeconds', description: 'Seconds the backup took' },
      { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
    ],
  });
}

/** Every CRD the operator serves, in install order. */
export function allCrds(): Array<Record<string, unknown>> {
  return [clusterCrd(), backupCrd()];
}
