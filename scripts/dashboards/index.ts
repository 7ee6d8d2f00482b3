/**
 * pgpilot's Grafana dashboards, written with @grafana/grafana-foundation-sdk: the one source of
 * dashboards/*.json and of the chart's copies in charts/pgpilot/dashboards/ (which
 * templates/dashboards.yaml ships as ConfigMaps for the Grafana sidecar). `npm run gen` writes
 * both; `npm run gen -- --check` and test/dashboards fail when either drifts.
 *
 * They live under scripts/ rather than src/builders/: the SDK is a development dependency, and
 * everything under src/ is compiled into dist/, which ships in the image without development
 * dependencies. Nothing at run time needs a dashboard.
 */
import type * as dash from '@grafana/grafana-foundation-sdk/dashboard';
import { clusterOverview } from './cluster-overview.js';
import { instanceDetail } from './instance-detail.js';
import { operatorDashboard } from './operator.js';

export { DASHBOARD_METRICS, EXPORTER_METRICS, OPERATOR_METRICS, OPERATOR_JOB } from './metrics.js';
export { DATASOURCE_VARIABLE } from './kit.js';

/** Each dashboard by file name (without `.json`). */
export const DASHBOARDS: Record<string, () => dash.Dashboard> = {
  'pgpilot-cluster-overview': clusterOverview,
  'pgpilot-instance-detail': instanceDetail,
  'pgpilot-operator': operatorDashboard,
};

/** The variables every dashboard has (besides the data source, each a label_values query). */
export const REQUIRED_VARIABLES = ['datasource', 'namespace', 'cluster', 'pod'] as const;

export const DASHBOARDS_DIR = 'dashboards';
export const CHART_DASHBOARDS_DIR = 'charts/pgpilot/dashboards';

/** A dashboard as its file holds it: pretty-printed JSON with a trailing newline. */
export function dashboardJson(d: dash.Dashboard): string {
  return `${JSON.stringify(d, null, 2)}\n`;
}

/** The files `npm run gen` writes from this module: each dashboard in dashboards/ and in the chart. */
export function dashboardGeneratedFiles(): Array<{ path: string; content: string }> {
  return Object.entries(DASHBOARDS).flatMap(([name, build]) => {
    const content = dashboardJson(build());
    return [DASHBOARDS_DIR, CHART_DASHBOARDS_DIR].map((dir) => ({ path: `${dir}/${name}.json`, content }));
  });
}

export interface DashboardQuery {
  dashboard: string;
  /** Panel title, `variable <name>` or `annotation <name>`. */
  where: string;
  /** PromQL with Grafana's variables in it ($__rate_interval, $namespace, ...). */
  expr: string;
}

/** The selector of a `label_values(<selector>, <label>)` variable query. */
export function labelValuesSelector(query: string): string | undefined {
  return /^label_values\((.+),\s*\w+\)$/.exec(query)?.[1];
}

/** Every PromQL expression of a dashboard: panel targets, annotations, variable selectors. */
export function dashboardQueries(name: string, d: dash.Dashboard): DashboardQuery[] {
  const out: DashboardQuery[] = [];
  for (const p of d.panels ?? []) {
    if (!('targets' in p)) continue;
    for (const t of p.targets ?? []) {
      const expr = (t as { expr?: unknown }).expr;
      if (typeof expr === 'string') out.push({ dashboard: name, where: p.title ?? '', expr });
    }
  }
  for (const a of d.annotations?.list ?? []) if (a.expr !== undefined) out.push({ dashboard: name, where: `annotation ${a.name}`, expr: a.expr });
  for (const v of d.templating?.list ?? []) {
    const selector = typeof v.query === 'string' && v.type === 'query' ? labelValuesSelector(v.query) : undefined;
    if (selector !== undefined) out.push({ dashboard: name, where: `variable ${v.name}`, expr: selector });
  }
  return out;
}

/** Every PromQL expression of every dashboard (for tests, and for an e2e check that each returns data). */
export function allDashboardQueries(): DashboardQuery[] {
  return Object.entries(DASHBOARDS).flatMap(([name, build]) => dashboardQueries(name, build()));
}

/**
 * A dashboard expression as Prometheus takes it: Grafana's ranges become durations
 * ($__rate_interval 5m, $__interval 1m, $__range 1h) and each selection variable the regex in
 * `values` (default `.*`: the queries match variables with =~).
 */
export function substituteVariables(expr: string, values: Record<string, string> = {}): string {
  return expr
    .replace(/\$__rate_interval/g, '5m')
    .replace(/\$__interval/g, '1m')
    .replace(/\$__range/g, '1h')
    .replace(/\$\{(\w+)\}|\$(\w+)/g, (_m, a?: string, b?: string) => values[(a ?? b)!] ?? '.*');
}
