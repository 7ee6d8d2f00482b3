/**
 * The small vocabulary the pgpilot dashboards are written in, on top of
 * @grafana/grafana-foundation-sdk: every panel reads the `${datasource}` variable (on the panel and
 * on each query), queries get refIds A, B, C..., panels get ids in order, and each dashboard has
 * the same tags, links, time settings and built-in annotation.
 */
import type * as cog from '@grafana/grafana-foundation-sdk/cog';
import * as common from '@grafana/grafana-foundation-sdk/common';
import * as dash from '@grafana/grafana-foundation-sdk/dashboard';
import * as prom from '@grafana/grafana-foundation-sdk/prometheus';
import * as bargauge from '@grafana/grafana-foundation-sdk/bargauge';
import * as stat from '@grafana/grafana-foundation-sdk/stat';
import * as statetimeline from '@grafana/grafana-foundation-sdk/statetimeline';
import * as table from '@grafana/grafana-foundation-sdk/table';
import * as timeseries from '@grafana/grafana-foundation-sdk/timeseries';

/** The name of the data source variable every panel and query refers to. */
export const DATASOURCE_VARIABLE = 'datasource';
export const DATASOURCE: dash.DataSourceRef = { type: 'prometheus', uid: `\${${DATASOURCE_VARIABLE}}` };
/** Tags of every pgpilot dashboard (the dashboards link to each other through the first). */
export const TAGS = ['pgpilot', 'postgresql'];

export interface Query {
  expr: string;
  legend?: string;
  /** An instant query (tables and "now" stats). */
  instant?: boolean;
  /** Table format (one row per series, labels as columns). */
  table?: boolean;
}

/** A PromQL query with an optional legend (`{{label}}`). */
export const q = (expr: string, legend?: string, more: Omit<Query, 'expr' | 'legend'> = {}): Query => ({ expr, legend, ...more });

export interface PanelOptions {
  description?: string;
  unit?: string;
  /** Width in grid columns (of 24) and height in grid rows. */
  w?: number;
  h?: number;
  min?: number;
  max?: number;
  decimals?: number;
  /** Threshold steps as [from, color]; the first starts at null (minus infinity). */
  thresholds?: Array<[number | null, string]>;
  /** Value → text (and color) mappings. */
  mappings?: Record<string, { text: string; color?: string }>;
}

/** The builder methods every panel kind has. */
interface PanelLike<T> extends cog.Builder<dash.Panel> {
  title(title: string): T;
  description(description: string): T;
  datasource(datasource: dash.DataSourceRef): T;
  withTarget(target: cog.Builder<cog.Dataquery>): T;
  span(w: number): T;
  height(h: number): T;
  unit(unit: string): T;
  min(min: number): T;
  max(max: number): T;
  decimals(decimals: number): T;
  thresholds(thresholds: cog.Builder<dash.ThresholdsConfig>): T;
  mappings(mappings: dash.ValueMapping[]): T;
}

function target(query: Query, index: number): prom.DataqueryBuilder {
  const b = new prom.DataqueryBuilder().expr(query.expr).refId(String.fromCharCode(65 + index)).datasource(DATASOURCE);
  if (query.legend !== undefined) b.legendFormat(query.legend);
  if (query.instant === true) b.instant();
  else b.range();
  if (query.table === true) b.format(prom.PromQueryFormat.Table);
  return b;
}

function thresholds(steps: Array<[number | null, string]>): dash.ThresholdsConfigBuilder {
  return new dash.ThresholdsConfigBuilder().mode(dash.ThresholdsMode.Absolute).steps(steps.map(([value, color]) => ({ value, color })));
}

function valueMappings(m: NonNullable<PanelOptions['mappings']>): dash.ValueMapping[] {
  const options: Record<string, dash.ValueMappingResult> = {};
  Object.entries(m).forEach(([value, r], index) => (options[value] = { ...r, index }));
  return [{ type: dash.MappingType.ValueToText, options }];
}

function setUp<T extends PanelLike<T>>(panel: T, title: string, queries: Query[], o: PanelOptions, defaults: { w: number; h: number }): T {
  panel.title(title).datasource(DATASOURCE).span(o.w ?? defaults.w).height(o.h ?? defaults.h);
  if (o.description !== undefined) panel.description(o.description);
  if (o.unit !== undefined) panel.unit(o.unit);
  if (o.min !== undefined) panel.min(o.min);
  if (o.max !== undefined) panel.max(o.max);
  if (o.decimals !== undefined) panel.decimals(o.decimals);
  if (o.thresholds !== undefined) panel.thresholds(thresholds(o.thresholds));
  if (o.mappings !== undefined) panel.mappings(valueMappings(o.mappings));
  queries.forEach((query, i) => panel.withTarget(target(query, i)));
  return panel;
}

const LAST = () => new common.ReduceDataOptionsBuilder().calcs(['lastNotNull']).values(false);

/** A time series graph (lines), legend as a table with last and max. */
export function graph(title: string, queries: Query[], o: PanelOptions & { stack?: boolean; thresholdLines?: boolean } = {}): timeseries.PanelBuilder {
  const p = setUp(new timeseries.PanelBuilder(), title, queries, o, { w: 12, h: 8 })
    .fillOpacity(o.stack === true ? 30 : 10)
    .lineWidth(1)
    .showPoints(common.VisibilityMode.Never)
    .legend(new common.VizLegendOptionsBuilder().displayMode(common.LegendDisplayMode.Table).placement(common.LegendPlacement.Bottom).showLegend(true).calcs(['lastNotNull', 'max']));
  if (o.stack === true) p.stacking(new common.StackingConfigBuilder().mode(common.StackingMode.Normal));
  if (o.thresholdLines === true) p.thresholdsStyle(new common.GraphThresholdsStyleConfigBuilder().mode(common.GraphThresholdsStyleMode.Dashed));
  return p;
}

/** A single value (the last of each series); `names` shows the series' legends instead of values. */
export function single(title: string, queries: Query[], o: PanelOptions & { names?: boolean; background?: boolean } = {}): stat.PanelBuilder {
  return setUp(new stat.PanelBuilder(), title, queries, o, { w: 4, h: 4 })
    .reduceOptions(LAST())
    .graphMode(common.BigValueGraphMode.None)
    .colorMode(o.background === true ? common.BigValueColorMode.Background : common.BigValueColorMode.Value)
    .textMode(o.names === true ? common.BigValueTextMode.Name : common.BigValueTextMode.Auto);
}

/** Horizontal bars, one per series (fill levels and the like). */
export function bars(title: string, queries: Query[], o: PanelOptions = {}): bargauge.PanelBuilder {
  return setUp(new bargauge.PanelBuilder(), title, queries, o, { w: 12, h: 8 })
    .reduceOptions(LAST())
    .orientation(common.VizOrientation.Horizontal)
    .displayMode(common.BarGaugeDisplayMode.Gradient)
    .showUnfilled(true);
}

/** A state over time per series (value mappings name the states). */
export function timeline(title: string, queries: Query[], o: PanelOptions = {}): statetimeline.PanelBuilder {
  return setUp(new statetimeline.PanelBuilder(), title, queries, o, { w: 12, h: 8 })
    .showValue(common.VisibilityMode.Auto)
    .mergeValues(true)
    .fillOpacity(70)
    .legend(new common.VizLegendOptionsBuilder().showLegend(false));
}

/** A table of instant series: labels as columns, without the time column and the metric name. */
export function labelTable(title: string, queries: Query[], o: PanelOptions & { hide?: string[] } = {}): table.PanelBuilder {
  const excludeByName: Record<string, boolean> = { Time: true, __name__: true };
  for (const h of o.hide ?? []) excludeByName[h] = true;
  return setUp(
    new table.PanelBuilder(),
    title,
    queries.map((query) => ({ ...query, instant: true, table: true })),
    o,
    { w: 12, h: 8 },
  )
    .withTransformation({ id: 'merge', options: {} })
    .withTransformation({ id: 'organize', options: { excludeByName } });
}

/** A dashboard variable with the values of a label: `label_values(<selector>, <label>)`. */
export function labelVariable(label: string, title: string, selector: string, o: { all?: boolean; multi?: boolean } = {}): dash.QueryVariableBuilder {
  const v = new dash.QueryVariableBuilder(label)
    .label(title)
    .datasource(DATASOURCE)
    .query(`label_values(${selector}, ${label})`)
    .refresh(dash.VariableRefresh.OnTimeRangeChanged)
    .sort(dash.VariableSort.AlphabeticalAsc)
    .multi(o.multi === true);
  if (o.all === true) {
    const all = o.multi === true ? { text: ['All'], value: ['$__all'] } : { text: 'All', value: '$__all' };
    v.includeAll(true).allValue('.*').current({ selected: true, ...all });
  }
  return v;
}

export function datasourceVariable(): dash.DatasourceVariableBuilder {
  return new dash.DatasourceVariableBuilder(DATASOURCE_VARIABLE).label('Data source').type('prometheus');
}

export interface Row {
  title: string;
  panels: Array<cog.Builder<dash.Panel>>;
}

export interface DashboardDefinition {
  uid: string;
  title: string;
  description: string;
  variables: Array<cog.Builder<dash.VariableModel>>;
  /** Prometheus annotations on every graph (e.g. failovers), name → expression. */
  annotations?: Record<string, { expr: string; color: string }>;
  rows: Row[];
}

/** Builds a dashboard: common settings, rows in order, panel ids 1, 2, 3... */
export function dashboard(d: DashboardDefinition): dash.Dashboard {
  const b = new dash.DashboardBuilder(d.title)
    .uid(d.uid)
    .description(d.description)
    .tags(TAGS)
    .editable()
    .tooltip(dash.DashboardCursorSync.Crosshair)
    .refresh('30s')
    .time({ from: 'now-3h', to: 'now' })
    .timezone('browser')
    .link(new dash.DashboardLinkBuilder('pgpilot').type(dash.DashboardLinkType.Dashboards).tags([TAGS[0]!]).asDropdown(true).includeVars(true).keepTime(true))
    .annotation(
      new dash.AnnotationQueryBuilder()
        .name('Annotations & Alerts')
        .builtIn(1)
        .type('dashboard')
        .datasource({ type: 'grafana', uid: '-- Grafana --' })
        .enable(true)
        .hide(true)
        .iconColor('rgba(0, 211, 255, 1)'),
    );
  for (const [name, a] of Object.entries(d.annotations ?? {})) {
    b.annotation(new dash.AnnotationQueryBuilder().name(name).datasource(DATASOURCE).enable(true).iconColor(a.color).expr(a.expr));
  }
  for (const v of d.variables) b.withVariable(v);
  for (const row of d.rows) {
    b.withRow(new dash.RowBuilder(row.title));
    for (const p of row.panels) b.withPanel(p);
  }
  const built = b.build();
  (built.panels ?? []).forEach((p, i) => (p.id = i + 1));
  return built;
}
