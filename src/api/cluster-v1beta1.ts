// PostgreSQLCluster v1beta1: the older shape of the spec, served beside v1 (the storage version)
// and converted by the operator's webhook (src/api/conversion.ts, docs/api-versions.md). It is v1
// with two differences: `replicas` for spec.instances (and status.replicas for status.instances),
// and a flat `storage: "100Gi"` string with `storageClass` beside it for spec.storage. The schema
// is derived from v1's, so every other field, default and rule stays one definition.
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { ClusterSchema, ClusterSpecSchema, ClusterStatusSchema, StorageSize, type ObjectMetaLike } from './cluster.js';
import { Obj } from './schema-helpers.js';

const { version, instances, storage, ...specCommon } = ClusterSpecSchema.properties;
const { instances: statusInstances, ...statusCommon } = ClusterStatusSchema.properties;

/** A schema's own options, without TypeBox's symbol keys (Optional, Kind), to derive another from. */
function options(schema: TSchema, drop: string[] = []): Record<string, unknown> {
  const plain = JSON.parse(JSON.stringify(schema)) as Record<string, unknown>;
  for (const k of ['type', 'properties', 'required', ...drop]) delete plain[k];
  return plain;
}

/**
 * v1's spec-level rules name spec.instances; v1beta1 calls it replicas. The rules are v1's own,
 * renamed, so a change to one reaches both versions.
 */
function renamedRules(schema: TSchema): Record<string, unknown> {
  const rules = (schema as { 'x-kubernetes-validations'?: unknown[] })['x-kubernetes-validations'] ?? [];
  return { 'x-kubernetes-validations': JSON.parse(JSON.stringify(rules).replaceAll('self.instances', 'self.replicas')) as unknown[] };
}

export const ClusterSpecV1beta1Schema = Obj(
  `${ClusterSpecSchema.description!} (v1beta1: replicas for v1's instances, a flat storage size with storageClass beside it.)`,
  {
    version,
    replicas: Type.Optional(
      Type.Integer({ ...options(instances), description: 'Number of PostgreSQL instances: one primary, the rest streaming replicas (v1: spec.instances).' }),
    ),
    storage: Type.String({ ...options(StorageSize), description: 'Size of every instance\'s data volume, a Kubernetes quantity such as "100Gi" (v1: spec.storage.size). May grow but never shrink.' }),
    storageClass: Type.Optional(
      Type.String({ ...options(storage.properties.storageClass), description: 'StorageClass of the data volumes (v1: spec.storage.storageClass); the cluster default when omitted.' }),
    ),
    ...specCommon,
  },
  renamedRules(ClusterSpecSchema),
);

export const ClusterStatusV1beta1Schema = Obj(ClusterStatusSchema.description!, {
  ...statusCommon,
  replicas: Type.Optional(Type.Integer({ ...options(statusInstances), description: 'Number of instances that exist (scale subresource; v1: status.instances).' })),
});

export const ClusterV1beta1Schema = Obj(
  `${ClusterSchema.description!} (v1beta1, an older shape; v1 is the storage version.)`,
  {
    ...ClusterSchema.properties,
    apiVersion: Type.Optional(Type.String({ description: 'postgres.pgpilot.io/v1beta1' })),
    spec: ClusterSpecV1beta1Schema,
    status: Type.Optional(ClusterStatusV1beta1Schema),
  },
  options(ClusterSchema, ['description']),
);

export type ClusterSpecV1beta1 = Static<typeof ClusterSpecV1beta1Schema>;
export type ClusterStatusV1beta1 = Static<typeof ClusterStatusV1beta1Schema>;
export type PostgreSQLClusterV1beta1 = Static<typeof ClusterV1beta1Schema> & { metadata: ObjectMetaLike };
