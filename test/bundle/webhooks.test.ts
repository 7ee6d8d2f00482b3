/**
 * The CSV's webhookdefinitions (scripts/bundle/webhooks.ts): derived from the chart's rendered
 * webhook objects and the CRDs, so a chart value shows in them, and they call the paths the
 * operator serves.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { RELEASE_NAME, RENDER_NAMESPACE } from '../../scripts/bundle/index.js';
import { splitChartWebhooks, webhookDefinitions } from '../../scripts/bundle/webhooks.js';
import { WEBHOOK_PATHS } from '../../src/api/webhooks.js';
import { helmOk, parseManifests, templateArgs } from '../support/helm.js';
import { REPO_ROOT } from './validator.js';

type Obj = Record<string, any>;
const CLUSTER_CRD = 'postgresqlclusters.postgres.pgpilot.io';
const crds = ['postgresqlclusters', 'postgresqlbackups'].map((p) => parse(readFileSync(path.join(REPO_ROOT, `crds/${p}.postgres.pgpilot.io.yaml`), 'utf8')) as Obj);
const render = async (set: Record<string, string> = {}) => parseManifests((await helmOk(templateArgs([], set, { namespace: RENDER_NAMESPACE, releaseName: RELEASE_NAME }))).stdout) as Obj[];
const deploymentOf = (chart: Obj[]) => chart.find((o) => o.kind === 'Deployment')!;

describe('the CSV\'s webhookdefinitions', () => {
  it('are the chart\'s: a conversion webhook for PostgreSQLCluster and its validating webhook, served by its Deployment on the webhook port', async () => {
    const chart = await render();
    const deployment = deploymentOf(chart);
    const { configuration, service } = splitChartWebhooks(chart);
    const [conversion, validating, ...more] = webhookDefinitions(chart, deployment, crds);
    expect(more).toEqual([]);
    const port = (deployment.spec.template.spec.containers[0].ports as Obj[]).find((p) => p.name === 'webhook')!.containerPort as number;
    expect(port).toBe(service.spec.ports[0].port);
    expect(conversion).toEqual({
      type: 'ConversionWebhook',
      generateName: `conversion.${CLUSTER_CRD}`,
      deploymentName: deployment.metadata.name,
      containerPort: port,
      targetPort: port,
      webhookPath: WEBHOOK_PATHS.convert,
      sideEffects: 'None',
      admissionReviewVersions: ['v1'],
      conversionCRDs: [CLUSTER_CRD],
    });
    const w = configuration.webhooks[0] as Obj;
    expect(validating).toEqual({
      type: 'ValidatingAdmissionWebhook',
      generateName: w.name,
      deploymentName: deployment.metadata.name,
      containerPort: port,
      targetPort: port,
      webhookPath: WEBHOOK_PATHS.validateCluster,
      rules: w.rules,
      failurePolicy: 'Ignore',
      matchPolicy: 'Equivalent',
      sideEffects: 'None',
      timeoutSeconds: 5,
      admissionReviewVersions: ['v1'],
    });
    expect(w.rules).toEqual([{ apiGroups: ['postgres.pgpilot.io'], apiVersions: ['v1', 'v1beta1'], resources: ['postgresqlclusters'], operations: ['CREATE'], scope: 'Namespaced' }]);
  });

  it('follow the chart\'s values (nothing about them is written twice)', async () => {
    const chart = await render({ 'webhook.port': '9555', 'webhook.failurePolicy': 'Fail', 'webhook.timeoutSeconds': '12', fullnameOverride: 'pgo' });
    const defs = webhookDefinitions(chart, deploymentOf(chart), crds);
    for (const d of defs) expect([d.deploymentName, d.containerPort, d.targetPort]).toEqual(['pgo', 9555, 9555]);
    expect(defs[1]).toMatchObject({ failurePolicy: 'Fail', timeoutSeconds: 12 });
  });

  it('refuse what OLM cannot express: a namespaceSelector of the chart (OLM sets the OperatorGroup\'s), or no webhooks at all', async () => {
    const chart = await render({ 'watchNamespaces[0]': 'team-a' });
    expect(() => webhookDefinitions(chart, deploymentOf(chart), crds)).toThrow(/has a namespaceSelector: OLM sets its own/);
    const off = await render({ 'webhook.enabled': 'false' });
    expect(() => webhookDefinitions(off, deploymentOf(off), crds)).toThrow(/renders 0 ValidatingWebhookConfigurations .*is webhook.enabled false/);
  });

  it('leave out the chart\'s own webhook machinery (Service, configuration, CA RBAC), which OLM replaces', async () => {
    const { machinery, rest } = splitChartWebhooks(await render());
    expect(machinery.map((o) => o.kind).sort()).toEqual(['ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding', 'Service', 'ValidatingWebhookConfiguration']);
    expect(rest.filter((o) => o.kind === 'ClusterRole').length).toBe(1);
  });
});
