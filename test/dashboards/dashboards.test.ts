/**
 * The Grafana dashboards (scripts/dashboards/) as the repository and the chart ship them: the
 * generated JSON does not drift, every dashboard has its variables, every panel reads the data
 * source variable and has queries, every PromQL expression parses (promtool, each written as a
 * recording rule with Grafana's variables substituted), rates use $__rate_interval, and every
 * metric name is in the list scripts/dashboards/metrics.ts keeps (whose operator part is checked
 * against the operator's real registry). The chart renders one ConfigMap per dashboard for the
 * Grafana sidecar with dashboards.enabled=true, and none by default.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import {
  CHART_DASHBOARDS_DIR,
  DASHBOARDS,
  DASHBOARDS_DIR,
  DASHBOARD_METRICS,
  DATASOURCE_VARIABLE,
  OPERATOR_METRICS,
  REQUIRED_VARIABLES,
  allDashboardQueries,
  dashboardGeneratedFiles,
  dashboardJson,
  dashboardQueries,
  substituteVariables,
  type DashboardQuery,
} from '../../scripts/dashboards/index.js';
import { metricNamesOf } from '../../src/builders/alerts.js';
import { OperatorMetrics } from '../../src/runtime/metrics.js';
import { ClusterMetrics } from '../../src/controller/cluster-metrics.js';
import { DEFAULT_NAMESPACE, renderChart, runHelm, templateArgs } from '../support/helm.js';
import { basicProblems } from '../chart/checks.js';

const execFileAsync = promisify(execFile);
const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const NAMES = Object.keys(DASHBOARDS);
const built = Object.fromEntries(NAMES.map((n) => [n, DASHBOARDS[n]!()]));
const DS = { type: 'prometheus', uid: `\${${DATASOURCE_VARIABLE}}` };

type AnyPanel = { type: string; id?: number; title?: string; datasource?: unknown; targets?: Array<Record<string, unknown>>; gridPos?: { x: number; y: number; w: number; h: number } };
const panelsOf = (name: string) => (built[name]!.panels ?? []) as AnyPanel[];
const contentPanels = (name: string) => panelsOf(name).filter((p) => p.type !== 'row');

async function promtool(args: string[]): Promise<{ code: number; out: string }> {
  try {
    const { stdout, stderr } = await execFileAsync('promtool', args, { timeout: 120_000, maxBuffer: 16 * 1024 * 1024 });
    return { code: 0, out: stdout + stderr };
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { code?: unknown; stdout?: string; stderr?: string };
    if (e.code === 'ENOENT') throw new Error("promtool is not installed: it comes with Debian's `prometheus` package (scripts/ensure-deps.sh installs it)");
    if (typeof e.code !== 'number') throw err;
    return { code: e.code, out: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

const tmp = mkdtempSync(path.join(os.tmpdir(), 'pgpilot-dashboards-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** `promtool check rules` on the queries, each a recording rule. */
async function checkRules(queries: DashboardQuery[], file: string): Promise<{ code: number; out: string }> {
  const rules = queries.map((q, i) => ({ record: `pgpilot:dashboard_query:${i}`, expr: substituteVariables(q.expr) }));
  const p = path.join(tmp, file);
  writeFileSync(p, stringify({ groups: [{ name: 'pgpilot-dashboards', rules }] }, { lineWidth: 0 }));
  return promtool(['check', 'rules', p]);
}

describe('generated files', () => {
  it('dashboards/ and the chart hold exactly what npm run gen writes', () => {
    const files = dashboardGeneratedFiles();
    for (const { path: p, content } of files) {
      expect(readFileSync(path.join(repo, p), 'utf8'), `${p} is stale: run npm run gen`).toBe(content);
    }
    for (const dir of [DASHBOARDS_DIR, CHART_DASHBOARDS_DIR]) {
      const onDisk = readdirSync(path.join(repo, dir)).filter((f) => f.endsWith('.json')).sort();
      expect(onDisk, `${dir}: a JSON file no dashboard writes`).toEqual(NAMES.map((n) => `${n}.json`).sort());
    }
  });

  it('is pretty-printed JSON with a trailing newline, and building twice gives the same text', () => {
    for (const n of NAMES) {
      const text = dashboardJson(DASHBOARDS[n]!());
      expect(text).toBe(dashboardJson(built[n]!));
      expect(text.endsWith('}\n')).toBe(true);
      expect(text).toBe(`${JSON.stringify(JSON.parse(text), null, 2)}\n`);
    }
  });
});

describe('dashboards', () => {
  it('have a stable uid (the file name), a title and the pgpilot tag', () => {
    expect(NAMES.length).toBe(3);
    for (const n of NAMES) {
      expect(built[n]!.uid).toBe(n);
      expect(built[n]!.title).toMatch(/^pgpilot \/ /);
      expect(built[n]!.tags).toContain('pgpilot');
    }
    expect(new Set(NAMES.map((n) => built[n]!.title)).size).toBe(NAMES.length);
  });

  it.each(NAMES)('%s has the datasource, namespace, cluster and pod variables', (n) => {
    const vars = built[n]!.templating?.list ?? [];
    expect(vars.map((v) => v.name)).toEqual([...REQUIRED_VARIABLES]);
    const [ds, ...labels] = vars;
    expect(ds).toMatchObject({ type: 'datasource', query: 'prometheus' });
    for (const v of labels) {
      expect(v.type).toBe('query');
      expect(v.datasource).toEqual(DS);
      expect(v.query).toMatch(new RegExp(`^label_values\\(.+, ${v.name}\\)$`));
    }
  });

  it.each(NAMES)('%s: every panel reads the data source variable and has queries', (n) => {
    const panels = contentPanels(n);
    expect(panels.length).toBeGreaterThan(10);
    for (const p of panels) {
      const what = `${n}: panel ${p.title}`;
      expect(p.datasource, what).toEqual(DS);
      expect(p.targets?.length ?? 0, what).toBeGreaterThan(0);
      const refIds = p.targets!.map((t) => t.refId);
      expect(new Set(refIds).size, `${what}: refIds`).toBe(refIds.length);
      for (const t of p.targets!) {
        expect(t.datasource, what).toEqual(DS);
        expect(typeof t.expr === 'string' && t.expr.trim() !== '', what).toBe(true);
        expect(t.refId, what).toMatch(/^[A-Z]$/);
      }
    }
  });

  it.each(NAMES)('%s: panel ids are unique, panels fit the 24-column grid', (n) => {
    const panels = panelsOf(n);
    expect(new Set(panels.map((p) => p.id)).size).toBe(panels.length);
    for (const p of panels) {
      expect(p.gridPos, `${p.title}`).toBeDefined();
      expect(p.gridPos!.x + p.gridPos!.w, `${p.title}`).toBeLessThanOrEqual(24);
    }
  });

  it.each(NAMES)('%s: queries use only its own variables, and every rate uses $__rate_interval', (n) => {
    const defined = new Set((built[n]!.templating?.list ?? []).map((v) => v.name));
    for (const q of dashboardQueries(n, built[n]!)) {
      for (const m of q.expr.matchAll(/\$\{?(\w+)\}?/g)) {
        if (!m[1]!.startsWith('__')) expect(defined.has(m[1]!), `${n} ${q.where}: $${m[1]}`).toBe(true);
      }
      for (const m of q.expr.matchAll(/\b(i?rate)\([^[]*\[([^\]]+)\]/g)) expect(m[2], `${n} ${q.where}: ${m[0]}`).toBe('$__rate_interval');
      // Grafana's variables are regex-matched (a multi-value selection becomes an alternation).
      for (const m of q.expr.matchAll(/(\w+)\s*(=|!=)\s*"\$/g)) expect.fail(`${n} ${q.where}: ${m[1]}${m[2]}"$...": use =~`);
    }
  });

  it('every query (panels, annotations, variable selectors) parses: promtool check rules', async () => {
    const queries = allDashboardQueries();
    expect(queries.length).toBeGreaterThan(100);
    const res = await checkRules(queries, 'dashboards.rules.yaml');
    expect(res.out).toContain(`SUCCESS: ${queries.length} rules found`);
    expect(res.code).toBe(0);
  });

  it('the promtool check fails on a query that does not parse', async () => {
    const res = await checkRules([{ dashboard: 'x', where: 'broken', expr: 'sum by (pod (rate(pg_up[$__rate_interval]))' }], 'broken.rules.yaml');
    expect(res.code).not.toBe(0);
  });

  it('substitutes variables the way the check needs', () => {
    expect(substituteVariables('rate(x{pod=~"$pod", ns=~"${namespace}"}[$__rate_interval]) + increase(y[$__range])')).toBe(
      'rate(x{pod=~".*", ns=~".*"}[5m]) + increase(y[1h])',
    );
    expect(substituteVariables('x{cluster=~"$cluster", pod=~"$pod"}', { cluster: 'prod-db' })).toBe('x{cluster=~"prod-db", pod=~".*"}');
  });
});

describe('metric names', () => {
  it('every metric a query reads is in the contract list (scripts/dashboards/metrics.ts)', () => {
    const unknown = allDashboardQueries().flatMap((q) => metricNamesOf(q.expr).filter((m) => !DASHBOARD_METRICS.has(m)).map((m) => `${q.dashboard} ${q.where}: ${m}`));
    expect(unknown).toEqual([]);
  });

  it("the list's operator names are what the operator's registry exposes", async () => {
    const m = new OperatorMetrics();
    new ClusterMetrics(m.registry, () => []);
    const exposed = new Set<string>();
    for (const [, name, type] of (await m.registry.metrics()).matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
      if (type === 'histogram') for (const s of ['_bucket', '_sum', '_count']) exposed.add(`${name}${s}`);
      else exposed.add(name!);
    }
    expect(OPERATOR_METRICS.filter((n) => !exposed.has(n))).toEqual([]);
  });

  it('the dashboards cover the cluster overview, instance and operator metrics the issue names', () => {
    const used = new Set(allDashboardQueries().flatMap((q) => metricNamesOf(q.expr)));
    const wanted = [
      'pgpilot_cluster_phase',
      'pgpilot_cluster_condition',
      'pgpilot_instance_role',
      'pg_stat_database_xact_commit',
      'pg_stat_database_xact_rollback',
      'pg_stat_activity_count',
      'pg_settings_max_connections',
      'pg_replication_lag_seconds',
      'pgpilot_instance_replication_lag_bytes',
      'pg_stat_wal_bytes_total',
      'pgpilot_instance_archiving_failing',
      'pgpilot_instance_archiver_backlog_segments',
      'pgpilot_instance_last_archived_wal_age_seconds',
      'pgpilot_cluster_last_successful_backup_timestamp_seconds',
      'pgpilot_cluster_first_recoverability_point_timestamp_seconds',
      'pgpilot_cluster_last_recoverability_point_timestamp_seconds',
      'pgpilot_instance_volume_used_bytes',
      'pgpilot_instance_volume_capacity_bytes',
      'pg_locks_count',
      'pg_stat_activity_max_tx_duration',
      'pg_database_xid_age',
      'pg_database_size_bytes',
      'pgpilot_instance_pending_restart',
      'pgpilot_instance_fenced',
      'pgpilot_instance_timeline',
      ...OPERATOR_METRICS,
    ];
    expect(wanted.filter((n) => !used.has(n))).toEqual([]);
  });
});

describe('chart', () => {
  const isDashboard = (o: Record<string, any>) => o.kind === 'ConfigMap' && o.metadata?.labels?.grafana_dashboard !== undefined;

  it('renders no dashboard ConfigMap by default', async () => {
    const objects = await renderChart([]);
    expect(objects.filter((o) => o.kind === 'ConfigMap')).toEqual([]);
  });

  it('renders one ConfigMap per dashboard for the Grafana sidecar with dashboards.enabled=true', async () => {
    const objects = await renderChart([], { 'dashboards.enabled': 'true' });
    const maps = objects.filter(isDashboard);
    expect(maps.map((o) => o.metadata.name).sort()).toEqual(NAMES.map((n) => n.replace(/^pgpilot-/, 'pgpilot-dashboard-')).sort());
    expect(maps.flatMap(basicProblems)).toEqual([]);
    for (const cm of maps) {
      expect(cm.metadata.namespace).toBe(DEFAULT_NAMESPACE);
      expect(cm.metadata.labels.grafana_dashboard).toBe('1');
      const [key, ...more] = Object.keys(cm.data);
      expect(more).toEqual([]);
      expect(cm.data[key!]).toBe(readFileSync(path.join(repo, DASHBOARDS_DIR, key!), 'utf8'));
      expect(JSON.parse(cm.data[key!]).uid).toBe(key!.replace(/\.json$/, ''));
    }
  });

  it('takes the label, its value, the namespace, labels and annotations from the values', async () => {
    const objects = await renderChart([], {
      'dashboards.enabled': 'true',
      'dashboards.label': 'grafana.example.com/dashboard',
      'dashboards.labelValue': 'pgpilot',
      'dashboards.namespace': 'monitoring',
      'dashboards.labels.team': 'dba',
      'dashboards.annotations.grafana_folder': 'PostgreSQL',
    });
    const maps = objects.filter((o) => o.kind === 'ConfigMap');
    expect(maps.length).toBe(NAMES.length);
    for (const cm of maps) {
      expect(cm.metadata.namespace).toBe('monitoring');
      expect(cm.metadata.labels).toMatchObject({ 'grafana.example.com/dashboard': 'pgpilot', team: 'dba', 'app.kubernetes.io/part-of': 'pgpilot' });
      expect(cm.metadata.labels.grafana_dashboard).toBeUndefined();
      expect(cm.metadata.annotations).toEqual({ grafana_folder: 'PostgreSQL' });
    }
    // `--set dashboards.labelValue=1` arrives as a number: still the label "1".
    const numeric = await renderChart([], { 'dashboards.enabled': 'true', 'dashboards.labelValue': '1' });
    expect(numeric.filter(isDashboard).map((o) => o.metadata.labels.grafana_dashboard)).toEqual(NAMES.map(() => '1'));
  });

  it.each([
    ['an unknown key', { 'dashboards.folder': 'x' }, /folder/],
    ['a label key with a space', { 'dashboards.label': 'bad label' }, /dashboards\/label/],
    ['a namespace that is no DNS label', { 'dashboards.namespace': 'Bad_NS' }, /dashboards\/namespace/],
    ['enabled that is no boolean', { 'dashboards.enabled': 'yes' }, /dashboards\/enabled/],
  ])('the values schema rejects %s', async (_what, set, message) => {
    const res = await runHelm(templateArgs([], set));
    expect(res.code).not.toBe(0);
    expect(res.stderr).toMatch(message);
  });
});
