import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import type { PostgreSQLCluster } from './cluster.js';
import { ClusterV1beta1Schema, type PostgreSQLClusterV1beta1 } from './cluster-v1beta1.js';
import { ANNOTATIONS } from './constants.js';
import { ConversionError, convertCluster, reviewConversion, toV1, toV1beta1 } from './conversion.js';

const clone = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;

/** A v1 cluster with every field v1beta1 names differently, both v1-only fields, and status. */
const v1Full: PostgreSQLCluster = {
  apiVersion: 'postgres.pgpilot.io/v1',
  kind: 'PostgreSQLCluster',
  metadata: { name: 'prod-db', namespace: 'production', uid: 'u-1', resourceVersion: '42', annotations: { team: 'payments' }, labels: { tier: 'db' } },
  spec: {
    version: '16.4',
    instances: 3,
    storage: {
      size: '100Gi',
      storageClass: 'fast-ssd',
      autoGrow: { enabled: true, thresholdPercent: 85, increment: '25%', maxSize: '1Ti' },
      pvcRetentionPolicy: { whenDeleted: 'Retain', whenScaled: 'Delete' },
    },
    walStorage: { size: '20Gi', autoGrow: { enabled: true, maxSize: '100Gi' } },
    backup: { enabled: true, schedule: '0 2 * * *', retention: 7 },
    highAvailability: { enabled: true, synchronousCommit: true, synchronousReplicas: 1 },
    resources: { requests: { cpu: '2', memory: '4Gi' } },
  },
  status: { phase: 'Healthy', instances: 3, readyInstances: 3, currentPrimary: 'prod-db-1', selector: 'x=y', conditions: [] },
} as unknown as PostgreSQLCluster;

/** The seed-like v1beta1 cluster: fields v1beta1 has, nothing v1-only. */
const betaPlain: PostgreSQLClusterV1beta1 = {
  apiVersion: 'postgres.pgpilot.io/v1beta1',
  kind: 'PostgreSQLCluster',
  metadata: { name: 'legacy', namespace: 'apps' },
  spec: { version: '15', replicas: 2, storage: '10Gi', storageClass: 'standard', backup: { enabled: false } },
  status: { replicas: 2, readyInstances: 1, phase: 'Degraded' },
} as unknown as PostgreSQLClusterV1beta1;

describe('v1 → v1beta1', () => {
  it('renames instances to replicas, flattens storage, moves status.instances to status.replicas', () => {
    const beta = toV1beta1(clone(v1Full));
    expect(beta.apiVersion).toBe('postgres.pgpilot.io/v1beta1');
    expect(beta.spec.replicas).toBe(3);
    expect(beta.spec.storage).toBe('100Gi');
    expect(beta.spec.storageClass).toBe('fast-ssd');
    expect(beta.spec).not.toHaveProperty('instances');
    expect(beta.spec.walStorage).toEqual(v1Full.spec.walStorage);
    expect(beta.status?.replicas).toBe(3);
    expect(beta.status).not.toHaveProperty('instances');
    expect(beta.metadata.labels).toEqual({ tier: 'db' });
  });

  it('keeps what v1beta1 cannot express in the conversion-data annotation, beside the user\'s annotations', () => {
    const beta = toV1beta1(clone(v1Full));
    expect(beta.metadata.annotations!.team).toBe('payments');
    expect(JSON.parse(beta.metadata.annotations![ANNOTATIONS.conversionData]!)).toEqual({
      storage: { autoGrow: v1Full.spec.storage.autoGrow, pvcRetentionPolicy: v1Full.spec.storage.pvcRetentionPolicy },
    });
  });

  it('adds no annotation when nothing is v1-only', () => {
    const v1 = clone(v1Full);
    v1.spec.storage = { size: '5Gi' };
    delete v1.metadata.annotations;
    expect(toV1beta1(v1).metadata).not.toHaveProperty('annotations');
  });

  it('gives an object the v1beta1 schema accepts', () => {
    const beta = toV1beta1(clone(v1Full));
    const validate = new Ajv({ strict: false, allErrors: true, validateFormats: false }).compile(clone(ClusterV1beta1Schema));
    expect(validate(beta), JSON.stringify(validate.errors)).toBe(true);
    // and one with a v1 field in it is not (the schema is not just v1's)
    expect(validate({ ...beta, spec: { ...beta.spec, storage: { size: '1Gi' } } })).toBe(false);
  });
});

describe('round trips', () => {
  it('v1 → v1beta1 → v1 is deep-equal, v1-only fields included', () => {
    expect(toV1(toV1beta1(clone(v1Full)))).toEqual(v1Full);
  });

  it('v1 → v1beta1 → v1 with only one of the v1-only fields', () => {
    const v1 = clone(v1Full);
    delete v1.spec.storage.autoGrow;
    delete v1.metadata.annotations;
    expect(toV1(toV1beta1(clone(v1)))).toEqual(v1);
  });

  it('v1beta1 → v1 → v1beta1 is deep-equal', () => {
    const v1 = toV1(clone(betaPlain));
    expect(v1.spec.instances).toBe(2);
    expect(v1.spec.storage).toEqual({ size: '10Gi', storageClass: 'standard' });
    expect(v1.status?.instances).toBe(2);
    expect(toV1beta1(v1)).toEqual(betaPlain);
  });

  it('a v1beta1 object carrying the annotation (read earlier, now edited) gets the v1-only fields back, and loses the annotation', () => {
    const beta = toV1beta1(clone(v1Full));
    beta.spec.replicas = 5;
    beta.spec.storage = '200Gi';
    const v1 = toV1(beta);
    expect(v1.spec.instances).toBe(5);
    expect(v1.spec.storage).toEqual({ ...v1Full.spec.storage, size: '200Gi' });
    expect(v1.metadata.annotations).toEqual({ team: 'payments' });
    expect(toV1beta1(v1)).toEqual(beta);
  });
});

describe('the annotation, which a user can edit while the object is v1beta1', () => {
  const withAnnotation = (value: string) => {
    const beta = clone(betaPlain);
    beta.metadata.annotations = { [ANNOTATIONS.conversionData]: value };
    return beta;
  };

  it('refuses one that is not JSON, naming the annotation', () => {
    expect(() => toV1(withAnnotation('{oops'))).toThrow(/postgres.pgpilot.io\/conversion-data is not JSON/);
  });

  it('refuses fields v1 does not have there, or values v1 would refuse', () => {
    expect(() => toV1(withAnnotation('{"spec":{"instances":9}}'))).toThrow(ConversionError);
    expect(() => toV1(withAnnotation('{"storage":{"pvcRetentionPolicy":{"whenDeleted":"Shred"}}}'))).toThrow(/conversion-data/);
  });
});

describe('ConversionReview', () => {
  const review = (desiredAPIVersion: string, objects: unknown[]) =>
    reviewConversion({ apiVersion: 'apiextensions.k8s.io/v1', kind: 'ConversionReview', request: { uid: 'r-1', desiredAPIVersion, objects: objects as Record<string, unknown>[] } });

  it('converts every object, leaves those already in the desired version alone, and echoes the uid', () => {
    const res = review('postgres.pgpilot.io/v1', [clone(betaPlain), clone(v1Full)]).response!;
    expect(res.uid).toBe('r-1');
    expect(res.result.status).toBe('Success');
    expect(res.convertedObjects).toEqual([toV1(clone(betaPlain)), v1Full]);
  });

  it('fails the review, saying why, on an unknown version or kind', () => {
    const res = review('postgres.pgpilot.io/v2', [clone(v1Full)]).response!;
    expect(res.result).toEqual({ status: 'Failure', message: expect.stringMatching(/cannot convert to postgres.pgpilot.io\/v2/) });
    expect(res.convertedObjects).toEqual([]);
    expect(() => convertCluster({ apiVersion: 'postgres.pgpilot.io/v1', kind: 'PostgreSQLBackup', spec: {} }, 'postgres.pgpilot.io/v1beta1')).toThrow(/only PostgreSQLCluster/);
  });
});
