// Renders the CustomResourceDefinition from the TypeBox schema (pure; `npm run gen` writes it out).
import type { TSchema } from '@sinclair/typebox';
import {
  API_GROUP,
  API_VERSION,
  CATEGORIES,
  CLUSTER_KIND,
  CLUSTER_PLURAL,
  CLUSTER_SHORT_NAMES,
  CLUSTER_SINGULAR,
} from './constants.js';
import { ClusterSchema } from './cluster.js';

/** Plain JSON of a TypeBox schema: drops TypeBox's symbol keys and the metadata stub. */
export function toOpenApi(schema: TSchema): Record<string, unknown> {
  const plain = JSON.parse(JSON.stringify(schema)) as Record<string, unknown>;
  return plain;
}

function clusterOpenApi(): Record<string, unknown> {
  const schema = toOpenApi(ClusterSchema) as { properties: Record<string, unknown> };
  // Kubernetes owns metadata's schema; a CRD may only say it is an object.
  schema.properties.metadata = { type: 'object' };
  return schema;
}

export function clusterCrd(): Record<string, unknown> {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: {
      name: `${CLUSTER_PLURAL}.${API_GROUP}`,
      labels: { 'app.kubernetes.io/name': 'pgpilot', 'app.kubernetes.io/part-of': 'pgpilot' },
    },
    spec: {
      group: API_GROUP,
      scope: 'Namespaced',
      names: {
        kind: CLUSTER_KIND,
        listKind: `${CLUSTER_KIND}List`,
        plural: CLUSTER_PLURAL,
        singular: CLUSTER_SINGULAR,
        shortNames: CLUSTER_SHORT_NAMES,
        categories: CATEGORIES,
      },
      versions: [
        {
          name: API_VERSION,
          served: true,
          storage: true,
          schema: { openAPIV3Schema: clusterOpenApi() },
          subresources: {
            status: {},
            scale: {
              specReplicasPath: '.spec.instances',
              statusReplicasPath: '.status.instances',
              labelSelectorPath: '.status.selector',
            },
          },
          additionalPrinterColumns: [
            { name: 'Instances', type: 'integer', jsonPath: '.spec.instances', description: 'Desired number of instances' },
            { name: 'Ready', type: 'integer', jsonPath: '.status.readyInstances', description: 'Instances that are ready' },
            { name: 'Phase', type: 'string', jsonPath: '.status.phase', description: 'Cluster phase' },
            { name: 'Primary', type: 'string', jsonPath: '.status.currentPrimary', description: 'Current primary instance' },
            { name: 'Version', type: 'string', jsonPath: '.spec.version', description: 'PostgreSQL version' },
            { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
          ],
        },
      ],
    },
  };
}

/** Every CRD the operator serves, in install order. */
export function allCrds(): Array<Record<string, unknown>> {
  return [clusterCrd()];
}
