/**
 * The CSV's webhookdefinitions, from the chart's rendered webhook objects (webhook.enabled, the
 * default). OLM runs a CSV's webhooks itself: it issues the serving certificate and mounts it into
 * the Deployment (tls.crt and tls.key under /tmp/k8s-webhook-server/serving-certs), creates the
 * Service `<deploymentName>-service` (containerPort → targetPort) and the
 * ValidatingWebhookConfiguration, and points the conversion of each of conversionCRDs at that
 * Service, with its CA in each caBundle. So the chart's own machinery — its Service, its
 * configuration, the RBAC and settings of the operator's CA — is left out of the bundle, and what it
 * says (paths, ports, rules, policies) becomes the definitions; the operator serves the mounted
 * certificate (PGPILOT_WEBHOOK_CERT_DIR) and writes nothing.
 */
type Obj = Record<string, any>;

/** What OLM does in place of the chart's webhook objects: they share the ValidatingWebhookConfiguration's name. */
export function splitChartWebhooks(chart: Obj[]): { service: Obj; configuration: Obj; machinery: Obj[]; rest: Obj[] } {
  const configurations = chart.filter((o) => o.kind === 'ValidatingWebhookConfiguration');
  if (configurations.length !== 1) throw new Error(`the chart renders ${configurations.length} ValidatingWebhookConfigurations with its default values, expected 1 (is webhook.enabled false?)`);
  const name = configurations[0]!.metadata.name as string;
  const machinery = chart.filter((o) => o.metadata?.name === name);
  const services = machinery.filter((o) => o.kind === 'Service');
  if (services.length !== 1) throw new Error(`the chart renders no Service ${name} for its webhooks`);
  return { service: services[0]!, configuration: configurations[0]!, machinery, rest: chart.filter((o) => !machinery.includes(o)) };
}

/** The port numbers OLM's Service needs: the chart's Service port, and the container port its targetPort names. */
function ports(service: Obj, deployment: Obj): { containerPort: number; targetPort: number } {
  const servicePorts = service.spec.ports as Obj[];
  if (servicePorts.length !== 1) throw new Error(`the chart's webhook Service ${service.metadata.name} has ${servicePorts.length} ports, expected 1`);
  const { port, targetPort } = servicePorts[0]!;
  const containerPorts = (deployment.spec.template.spec.containers as Obj[]).flatMap((c) => (c.ports ?? []) as Obj[]);
  const target = typeof targetPort === 'number' ? targetPort : containerPorts.find((p) => p.name === targetPort)?.containerPort;
  if (typeof target !== 'number') throw new Error(`the chart's Deployment has no container port "${targetPort}" for its webhook Service`);
  return { containerPort: port as number, targetPort: target };
}

/** The path of a clientConfig; with `service`, checked to call the chart's webhook Service on its port. */
function pathOf(clientConfig: Obj | undefined, what: string, service?: Obj): string {
  const ref = (clientConfig?.service ?? {}) as Obj;
  if (typeof ref.path !== 'string') throw new Error(`${what} calls no Service path`);
  if (service && (ref.name !== service.metadata.name || ref.port !== service.spec.ports[0].port)) {
    throw new Error(`${what} does not call the chart's webhook Service ${service.metadata.name} on port ${service.spec.ports[0].port}`);
  }
  return ref.path;
}

/**
 * A ValidatingAdmissionWebhook per webhook of the chart's configuration, and a ConversionWebhook
 * per CRD converted by a webhook (its path and review versions from the CRD's spec.conversion),
 * all served by the chart's Deployment. No namespaceSelector: OLM sets it from the OperatorGroup.
 */
export function webhookDefinitions(chart: Obj[], deployment: Obj, crds: Obj[]): Obj[] {
  const { service, configuration } = splitChartWebhooks(chart);
  const served = { deploymentName: deployment.metadata.name as string, ...ports(service, deployment) };
  const validating = (configuration.webhooks as Obj[]).map((w) => {
    if (w.namespaceSelector) throw new Error(`the chart's webhook ${w.name} has a namespaceSelector: OLM sets its own (the OperatorGroup's namespaces)`);
    return {
      type: 'ValidatingAdmissionWebhook',
      generateName: w.name,
      ...served,
      webhookPath: pathOf(w.clientConfig, `the chart's webhook ${w.name}`, service),
      rules: w.rules,
      failurePolicy: w.failurePolicy,
      matchPolicy: w.matchPolicy,
      ...(w.objectSelector ? { objectSelector: w.objectSelector } : {}),
      sideEffects: w.sideEffects,
      timeoutSeconds: w.timeoutSeconds,
      admissionReviewVersions: w.admissionReviewVersions,
    };
  });
  const conversion = crds
    .filter((crd) => crd.spec.conversion?.strategy === 'Webhook')
    .map((crd) => ({
      type: 'ConversionWebhook',
      generateName: `conversion.${crd.metadata.name}`,
      ...served,
      // The CRD's Service is a placeholder (the chart's operator points it at itself, OLM at its Service): its path is what counts.
      webhookPath: pathOf(crd.spec.conversion.webhook?.clientConfig, `the conversion of CRD ${crd.metadata.name}`),
      // A conversion has no side effects; OLM gives the CRD these as its conversionReviewVersions.
      sideEffects: 'None',
      admissionReviewVersions: crd.spec.conversion.webhook.conversionReviewVersions,
      conversionCRDs: [crd.metadata.name],
    }));
  return [...conversion, ...validating];
}
