// docs/autoscaling.md's KEDA example (a TriggerAuthentication and a ScaledObject on a
// PostgreSQLCluster's scale subresource) checked against KEDA's own CRD schemas, as published in
// @kubernetes-models/keda: its validators catch wrong types, missing required fields and bad enum
// values, but let unknown fields through — so the example is also written here as typed object
// literals (IScaledObject, ITriggerAuthentication), where the type checker refuses a field KEDA
// does not have, and the page must equal them.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { ScaledObject, TriggerAuthentication, type IScaledObject, type ITriggerAuthentication } from '@kubernetes-models/keda/keda.sh/v1alpha1';
import { API_GROUP_VERSION, CLUSTER_KIND } from '../../src/api/constants.js';

const DOC = join(import.meta.dirname, '..', '..', 'docs', 'autoscaling.md');

/** Every YAML document of the page's ```yaml blocks that is a KEDA object. */
function kedaObjects(): Array<Record<string, any>> {
  const md = readFileSync(DOC, 'utf8');
  const blocks = [...md.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!);
  return blocks.flatMap((b) => parseAllDocuments(b).map((d) => d.toJS() as Record<string, any>)).filter((o) => String(o?.apiVersion ?? '').startsWith('keda.sh/'));
}

/** The page's example as typed literals: `npm run typecheck` refuses any field KEDA's CRDs lack. */
const TRIGGER_AUTHENTICATION: ITriggerAuthentication = {
  apiVersion: 'keda.sh/v1alpha1',
  kind: 'TriggerAuthentication',
  metadata: { name: 'prod-db-app', namespace: 'production' },
  spec: { secretTargetRef: [{ parameter: 'password', name: 'prod-db-app', key: 'password' }] },
};
const SCALED_OBJECT: IScaledObject = {
  apiVersion: 'keda.sh/v1alpha1',
  kind: 'ScaledObject',
  metadata: { name: 'prod-db', namespace: 'production' },
  spec: {
    scaleTargetRef: { apiVersion: 'postgres.pgpilot.io/v1', kind: 'PostgreSQLCluster', name: 'prod-db' },
    minReplicaCount: 2,
    maxReplicaCount: 5,
    cooldownPeriod: 300,
    advanced: { horizontalPodAutoscalerConfig: { behavior: { scaleDown: { stabilizationWindowSeconds: 300 } } } },
    triggers: [
      {
        type: 'postgresql',
        metadata: {
          host: 'prod-db-ro.production.svc',
          port: '5432',
          userName: 'app',
          dbName: 'app',
          sslmode: 'disable',
          query: "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND backend_type = 'client backend'",
          targetQueryValue: '20',
          activationTargetQueryValue: '5',
        },
        authenticationRef: { name: 'prod-db-app' },
      },
      { type: 'cpu', metricType: 'Utilization', metadata: { value: '70' } },
    ],
  },
};

describe('the KEDA example of docs/autoscaling.md', () => {
  const objects = kedaObjects();

  it('is exactly the typed example (no field KEDA does not have)', () => {
    expect(objects.find((o) => o.kind === 'ScaledObject')).toEqual(SCALED_OBJECT);
    expect(objects.find((o) => o.kind === 'TriggerAuthentication')).toEqual(TRIGGER_AUTHENTICATION);
  });

  it('has a ScaledObject and its TriggerAuthentication', () => {
    expect(objects.map((o) => o.kind).sort()).toEqual(['ScaledObject', 'TriggerAuthentication']);
  });

  it('validates against KEDA\'s schemas', () => {
    for (const o of objects) {
      const model = o.kind === 'ScaledObject' ? new ScaledObject(o as never) : new TriggerAuthentication(o as never);
      expect(() => model.validate(), `${o.kind} ${o.metadata?.name}`).not.toThrow();
    }
  });

  it('the schemas do catch mistakes (a misspelt field, a string count)', () => {
    const so = structuredClone(objects.find((o) => o.kind === 'ScaledObject')!);
    so.spec.maxReplicaCount = 'five';
    expect(() => new ScaledObject(so as never).validate()).toThrow();
    const typo = structuredClone(objects.find((o) => o.kind === 'ScaledObject')!);
    typo.spec.scaleTargetRef = { kind: CLUSTER_KIND };
    expect(() => new ScaledObject(typo as never).validate()).toThrow();
  });

  it('targets the cluster\'s scale subresource, never below what synchronous commit needs, with credentials from the app Secret', () => {
    const so = objects.find((o) => o.kind === 'ScaledObject')!;
    expect(so.spec.scaleTargetRef).toEqual({ apiVersion: API_GROUP_VERSION, kind: CLUSTER_KIND, name: so.metadata.name });
    expect(so.spec.minReplicaCount).toBeGreaterThanOrEqual(2);
    const pg = so.spec.triggers.find((t: { type: string }) => t.type === 'postgresql');
    const auth = objects.find((o) => o.kind === 'TriggerAuthentication')!;
    expect(pg.authenticationRef.name).toBe(auth.metadata.name);
    expect(auth.spec.secretTargetRef).toEqual([{ parameter: 'password', name: `${so.metadata.name}-app`, key: 'password' }]);
    expect(pg.metadata.host).toBe(`${so.metadata.name}-ro.${so.metadata.namespace}.svc`);
  });
});
