// PostgreSQLCluster conversion between v1 (storage) and v1beta1, and the ConversionReview the
// apiserver sends the operator's /convert webhook. Pure and lossless both ways: what v1beta1
// cannot express (spec.storage.autoGrow, spec.storage.pvcRetentionPolicy) travels in the
// annotation ANNOTATIONS.conversionData while the object is read as v1beta1, and comes back when
// it is converted to v1 again; v1beta1 has no field v1 lacks. docs/api-versions.md.
import { Type } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { ClusterSpecSchema, type ClusterSpec, type ClusterStatus, type PostgreSQLCluster } from './cluster.js';
import type { ClusterSpecV1beta1, ClusterStatusV1beta1, PostgreSQLClusterV1beta1 } from './cluster-v1beta1.js';
import { ANNOTATIONS, API_GROUP, API_GROUP_VERSION, API_GROUP_VERSION_V1BETA1, CLUSTER_KIND } from './constants.js';

type Json = Record<string, unknown>;

/** A conversion the webhook refuses (the apiserver returns the message to the client). */
export class ConversionError extends Error {}

/** The v1 fields only v1 can express, as the annotation carries them. */
const V1OnlySchema = Type.Object(
  {
    storage: Type.Optional(
      Type.Object(
        {
          autoGrow: Type.Optional(ClusterSpecSchema.properties.storage.properties.autoGrow),
          pvcRetentionPolicy: Type.Optional(ClusterSpecSchema.properties.storage.properties.pvcRetentionPolicy),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);

interface V1Only {
  storage?: Pick<ClusterSpec['storage'], 'autoGrow' | 'pvcRetentionPolicy'>;
}

function withAnnotation(metadata: PostgreSQLCluster['metadata'], value: string | undefined): PostgreSQLCluster['metadata'] {
  const { [ANNOTATIONS.conversionData]: _old, ...others } = metadata.annotations ?? {};
  const annotations = value === undefined ? others : { ...others, [ANNOTATIONS.conversionData]: value };
  const { annotations: _a, ...rest } = metadata;
  return Object.keys(annotations).length > 0 ? { ...rest, annotations } : rest;
}

function statusDown(status: ClusterStatus): ClusterStatusV1beta1 {
  const { instances, ...rest } = status;
  return { ...rest, ...(instances !== undefined ? { replicas: instances } : {}) };
}

function statusUp(status: ClusterStatusV1beta1): ClusterStatus {
  const { replicas, ...rest } = status;
  return { ...rest, ...(replicas !== undefined ? { instances: replicas } : {}) };
}

/** v1 → v1beta1: spec.instances → replicas, spec.storage → storage (size) + storageClass; the rest in the annotation. */
export function toV1beta1(cluster: PostgreSQLCluster): PostgreSQLClusterV1beta1 {
  const { instances, storage, ...spec } = cluster.spec;
  const { size, storageClass, autoGrow, pvcRetentionPolicy } = storage ?? ({} as Partial<ClusterSpec['storage']>);
  const only: V1Only = autoGrow !== undefined || pvcRetentionPolicy !== undefined
    ? { storage: { ...(autoGrow !== undefined ? { autoGrow } : {}), ...(pvcRetentionPolicy !== undefined ? { pvcRetentionPolicy } : {}) } }
    : {};
  const betaSpec = {
    ...spec,
    ...(instances !== undefined ? { replicas: instances } : {}),
    ...(size !== undefined ? { storage: size } : {}),
    ...(storageClass !== undefined ? { storageClass } : {}),
  } as ClusterSpecV1beta1;
  return {
    ...cluster,
    apiVersion: API_GROUP_VERSION_V1BETA1,
    metadata: withAnnotation(cluster.metadata, only.storage ? JSON.stringify(only) : undefined),
    spec: betaSpec,
    ...(cluster.status ? { status: statusDown(cluster.status) } : {}),
  } as PostgreSQLClusterV1beta1;
}

/** The annotation's v1-only fields, checked against v1's schema: it is user-editable while the object is v1beta1. */
function v1Only(raw: string | undefined): V1Only {
  if (raw === undefined) return {};
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    throw new ConversionError(`annotation ${ANNOTATIONS.conversionData} is not JSON: it carries the v1 fields v1beta1 cannot express (spec.storage.autoGrow, spec.storage.pvcRetentionPolicy); remove it or restore the value the operator wrote`);
  }
  if (!Value.Check(V1OnlySchema, value)) {
    const first = [...Value.Errors(V1OnlySchema, value)][0];
    throw new ConversionError(
      `annotation ${ANNOTATIONS.conversionData}: ${first ? `${first.path || '/'} ${first.message}` : 'invalid'}; it may only hold {"storage": {"autoGrow": ..., "pvcRetentionPolicy": ...}} as v1 defines them (edit them through v1 instead)`,
    );
  }
  return value as V1Only;
}

/** v1beta1 → v1: the inverse of toV1beta1; the annotation's fields return to spec.storage and the annotation goes. */
export function toV1(cluster: PostgreSQLClusterV1beta1): PostgreSQLCluster {
  const { replicas, storage, storageClass, ...spec } = cluster.spec;
  const only = v1Only(cluster.metadata.annotations?.[ANNOTATIONS.conversionData]);
  const v1Storage = {
    ...(storage !== undefined ? { size: storage } : {}),
    ...(storageClass !== undefined ? { storageClass } : {}),
    ...only.storage,
  };
  const v1Spec = {
    ...spec,
    ...(replicas !== undefined ? { instances: replicas } : {}),
    ...(Object.keys(v1Storage).length > 0 ? { storage: v1Storage } : {}),
  } as ClusterSpec;
  return {
    ...cluster,
    apiVersion: API_GROUP_VERSION,
    metadata: withAnnotation(cluster.metadata, undefined),
    spec: v1Spec,
    ...(cluster.status ? { status: statusUp(cluster.status) } : {}),
  } as PostgreSQLCluster;
}

/** One object to `desiredAPIVersion`; an object already there comes back unchanged. */
export function convertCluster(object: Json, desiredAPIVersion: string): Json {
  const from = object.apiVersion;
  if (object.kind !== CLUSTER_KIND) throw new ConversionError(`only ${CLUSTER_KIND} objects convert, not ${String(object.kind)}`);
  if (from === desiredAPIVersion) return object;
  // spec is required by both schemas; a partial object (an apiserver never sends one) is refused, not guessed at.
  if (typeof object.spec !== 'object' || object.spec === null) throw new ConversionError(`${CLUSTER_KIND} ${String((object.metadata as Json | undefined)?.name)} has no spec`);
  const v1 = from === API_GROUP_VERSION ? (object as unknown as PostgreSQLCluster)
    : from === API_GROUP_VERSION_V1BETA1 ? toV1(object as unknown as PostgreSQLClusterV1beta1)
    : undefined;
  if (!v1) throw new ConversionError(`cannot convert from ${String(from)}: ${API_GROUP} serves ${API_GROUP_VERSION} and ${API_GROUP_VERSION_V1BETA1}`);
  if (desiredAPIVersion === API_GROUP_VERSION) return v1 as unknown as Json;
  if (desiredAPIVersion === API_GROUP_VERSION_V1BETA1) return toV1beta1(v1) as unknown as Json;
  throw new ConversionError(`cannot convert to ${desiredAPIVersion}: ${API_GROUP} serves ${API_GROUP_VERSION} and ${API_GROUP_VERSION_V1BETA1}`);
}

/** apiextensions.k8s.io/v1 ConversionReview (only the fields used). */
export interface ConversionReview {
  apiVersion: string;
  kind: 'ConversionReview';
  request?: { uid: string; desiredAPIVersion: string; objects: Json[] };
  response?: { uid: string; convertedObjects: Json[]; result: { status: 'Success' | 'Failure'; message?: string } };
}

/** The response to a ConversionReview: every object converted, or a Failure saying which and why. */
export function reviewConversion(review: ConversionReview): ConversionReview {
  const req = review.request;
  if (!req) throw new ConversionError('ConversionReview has no request');
  try {
    const convertedObjects = req.objects.map((o) => convertCluster(o, req.desiredAPIVersion));
    return { apiVersion: review.apiVersion, kind: 'ConversionReview', response: { uid: req.uid, convertedObjects, result: { status: 'Success' } } };
  } catch (err) {
    if (!(err instanceof ConversionError)) throw err;
    return { apiVersion: review.apiVersion, kind: 'ConversionReview', response: { uid: req.uid, convertedObjects: [], result: { status: 'Failure', message: err.message } } };
  }
}
