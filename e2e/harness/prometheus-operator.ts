// The Prometheus Operator's own CRDs (PodMonitor, ServiceMonitor, PrometheusRule), from its Go
// module as released (v0.85.0, example/prometheus-operator-crd/): `go mod download` through the
// Go module proxy, cached in the Go module cache like the control plane's sources.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';

export const PROMETHEUS_OPERATOR_MODULE = 'github.com/prometheus-operator/prometheus-operator@v0.85.0';

export const PROMETHEUS_OPERATOR_CRDS = ['podmonitors', 'servicemonitors', 'prometheusrules'] as const;

/** Paths of the CRD manifests (downloads the module once). */
export async function prometheusOperatorCrdFiles(): Promise<Record<(typeof PROMETHEUS_OPERATOR_CRDS)[number], string>> {
  const { stdout } = await promisify(execFile)('go', ['mod', 'download', '-json', PROMETHEUS_OPERATOR_MODULE], { timeout: 300_000, maxBuffer: 1 << 20 });
  const dir = (JSON.parse(stdout) as { Dir?: string; Error?: string }).Dir;
  if (!dir) throw new Error(`go mod download ${PROMETHEUS_OPERATOR_MODULE} gave no directory: ${stdout}`);
  const file = (plural: string) => join(dir, 'example/prometheus-operator-crd', `monitoring.coreos.com_${plural}.yaml`);
  return { podmonitors: file('podmonitors'), servicemonitors: file('servicemonitors'), prometheusrules: file('prometheusrules') };
}
