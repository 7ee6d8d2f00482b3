/**
 * The alerts (src/builders/alerts.ts) as the chart ships them: the generated template does not
 * drift, the chart renders the PrometheusRule only when asked and with the values' thresholds,
 * and promtool (Debian's `prometheus`) checks the rendered rules and runs the unit tests beside
 * this file (one file per group) against them. Every rule has a case where it fires, with its
 * labels and annotations, and one where it stays quiet; every runbook_url has its section.
 */
import { execFile } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import {
  ALERT_GROUPS,
  DEFAULT_THRESHOLDS,
  alertGeneratedFiles,
  alertMetricNames,
  metricNamesOf,
  prometheusRuleGroups,
  runbookUrl,
  type AlertOptions,
  type PrometheusRuleGroup,
} from '../../src/builders/alerts.js';
import { helmOk, parseManifests, runHelm, templateArgs } from '../support/helm.js';

const execFileAsync = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..', '..');
const TEST_FILES = readdirSync(here)
  .filter((f) => f.endsWith('.yaml'))
  .sort();
const MONITORING_API = ['--api-versions', 'monitoring.coreos.com/v1'];

/** The metric contract of issue 12 (exporter, operator and `up`): the alerts may read nothing else. */
const CONTRACT_METRICS = new Set([
  'up',
  'pg_up',
  ...['xact_commit', 'xact_rollback', 'blks_read', 'blks_hit', 'tup_returned', 'tup_fetched', 'tup_inserted', 'tup_updated', 'tup_deleted', 'deadlocks', 'temp_bytes', 'numbackends'].map(
    (m) => `pg_stat_database_${m}`,
  ),
  'pg_stat_activity_count',
  'pg_stat_activity_max_tx_duration',
  'pg_locks_count',
  ...['max_connections', 'superuser_reserved_connections', 'max_wal_senders', 'max_replication_slots', 'shared_buffers_bytes', 'max_wal_size_bytes'].map((m) => `pg_settings_${m}`),
  'pg_database_size_bytes',
  'pg_database_xid_age',
  'pg_replication_lag_seconds',
  'pg_stat_replication_replay_lag_bytes',
  'pg_stat_archiver_archived_count',
  'pg_stat_archiver_failed_count',
  'pg_stat_archiver_last_archive_age',
  'pg_stat_wal_bytes_total',
  ...['role', 'timeline', 'fenced', 'pending_restart', 'replication_lag_bytes', 'replication_lag_seconds', 'archiver_backlog_segments', 'last_archived_wal_age_seconds', 'archiving_failing', 'volume_capacity_bytes', 'volume_used_bytes'].map(
    (m) => `pgpilot_instance_${m}`,
  ),
  ...['condition', 'phase', 'instances', 'ready_instances', 'failovers_total', 'switchovers_total', 'last_successful_backup_timestamp_seconds'].map((m) => `pgpilot_cluster_${m}`),
  'pgpilot_reconcile_total',
  'pgpilot_leader',
  'pgpilot_workqueue_depth',
]);

async function promtool(args: string[], cwd?: string): Promise<{ code: number; out: string }> {
  try {
    const { stdout, stderr } = await execFileAsync('promtool', args, { cwd, timeout: 120_000, maxBuffer: 16 * 1024 * 1024 });
    return { code: 0, out: stdout + stderr };
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { code?: unknown; stdout?: string; stderr?: string };
    if (e.code === 'ENOENT') {
      throw new Error(
        "promtool is not installed: it comes with Debian's `prometheus` package (apt-get install -y prometheus; " +
          'scripts/ensure-deps.sh installs it, no service is started)',
      );
    }
    if (typeof e.code !== 'number') throw err;
    return { code: e.code, out: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

/** `helm template` with the PrometheusRule enabled; returns the rendered PrometheusRules. */
async function renderRules(set: Record<string, string> = {}, extra: string[] = MONITORING_API): Promise<Array<Record<string, any>>> {
  const res = await helmOk([...templateArgs([], { 'monitoring.prometheusRule.enabled': 'true', ...set }), ...extra]);
  return parseManifests(res.stdout).filter((o) => o.kind === 'PrometheusRule');
}

/** A PrometheusRule unwrapped to its spec, as a Prometheus rule file (what promtool reads). */
function ruleFile(prometheusRule: Record<string, any>): string {
  return stringify(prometheusRule.spec, { lineWidth: 0 });
}

interface PromtoolTestFile {
  rule_files: string[];
  tests: Array<{
    alert_rule_test?: Array<{
      alertname: string;
      exp_alerts?: Array<{ exp_labels?: Record<string, string>; exp_annotations?: Record<string, string> }>;
    }>;
  }>;
}

let work = '';
let chartRule: Record<string, any> = {};

beforeAll(async () => {
  work = mkdtempSync(path.join(os.tmpdir(), 'pgpilot-alerts-'));
  const rules = await renderRules();
  expect(rules).toHaveLength(1);
  chartRule = rules[0]!;
  writeFileSync(path.join(work, 'rules.yaml'), ruleFile(chartRule));
  for (const f of TEST_FILES) copyFileSync(path.join(here, f), path.join(work, f));
}, 120_000);

afterAll(() => {
  if (work !== '') rmSync(work, { recursive: true, force: true });
});

describe('the source and the chart', () => {
  it('the chart template is what npm run gen writes (no drift)', () => {
    for (const { path: file, content } of alertGeneratedFiles()) {
      expect(readFileSync(path.join(repo, file), 'utf8'), `${file} is stale: run npm run gen`).toBe(content);
    }
  });

  it('renders the same rules as the source, with the default thresholds', () => {
    expect(chartRule.apiVersion).toBe('monitoring.coreos.com/v1');
    expect(chartRule.metadata).toMatchObject({ name: 'pgpilot', namespace: 'pgpilot-system' });
    expect(chartRule.metadata.labels).toMatchObject({ 'app.kubernetes.io/name': 'pgpilot', 'app.kubernetes.io/part-of': 'pgpilot' });
    expect(chartRule.spec).toEqual({ groups: prometheusRuleGroups() });
    expect(chartRule.spec.groups.map((g: PrometheusRuleGroup) => g.name)).toEqual(ALERT_GROUPS.map((k) => `pgpilot.${k}`));
  });

  it('renders nothing by default, nor without the monitoring.coreos.com/v1 API unless forced', async () => {
    const off = parseManifests((await helmOk(templateArgs([], {}))).stdout);
    expect(off.filter((o) => o.kind === 'PrometheusRule')).toEqual([]);
    expect(await renderRules({}, [])).toEqual([]);
    const forced = await renderRules({ 'monitoring.prometheusRule.force': 'true' }, []);
    expect(forced.map((r) => r.spec)).toEqual([{ groups: prometheusRuleGroups() }]);
    expect(await renderRules(Object.fromEntries(ALERT_GROUPS.map((g) => [`monitoring.prometheusRule.groups.${g}`, 'false'])))).toEqual([]);
  });

  it('follows the values: thresholds, group toggles, object and alert labels (severity stays)', async () => {
    const opts: AlertOptions = {
      thresholds: { replicationLagWarningSeconds: 15, xidAgeCritical: 1_500_000_000, lastBackupMaxAgeHours: 170, volumeUsageCriticalPercent: 93 },
      groups: { database: false, operator: false },
      alertLabels: { team: 'dba', severity: 'info' },
    };
    const set: Record<string, string> = { 'monitoring.prometheusRule.labels.release': 'kube-prometheus-stack' };
    for (const [k, v] of Object.entries(opts.thresholds!)) set[`monitoring.prometheusRule.thresholds.${k}`] = String(v);
    for (const [k, v] of Object.entries(opts.groups!)) set[`monitoring.prometheusRule.groups.${k}`] = String(v);
    for (const [k, v] of Object.entries(opts.alertLabels!)) set[`monitoring.prometheusRule.alertLabels.${k}`] = v;
    const [rule] = await renderRules(set);
    expect(rule!.metadata.labels.release).toBe('kube-prometheus-stack');
    expect(rule!.spec).toEqual({ groups: prometheusRuleGroups(opts) });
    const rules = rule!.spec.groups.flatMap((g: PrometheusRuleGroup) => g.rules);
    expect(rules.every((r: any) => r.labels.team === 'dba' && (r.labels.severity === 'warning' || r.labels.severity === 'critical'))).toBe(true);
    expect(rules.find((r: any) => r.alert === 'PgpilotReplicationLag').expr).toBe('pg_replication_lag_seconds > 15');
    expect(rule!.spec.groups.map((g: PrometheusRuleGroup) => g.name)).toEqual(['pgpilot.availability', 'pgpilot.replication', 'pgpilot.backup', 'pgpilot.storage']);
  });

  it('the values file and its schema hold every threshold and group, and the schema refuses a non-integer', async () => {
    const values = parse(readFileSync(path.join(repo, 'charts/pgpilot/values.yaml'), 'utf8'));
    expect(values.monitoring.prometheusRule.thresholds).toEqual(DEFAULT_THRESHOLDS);
    expect(Object.keys(values.monitoring.prometheusRule.groups).sort()).toEqual([...ALERT_GROUPS].sort());
    const res = await runHelm(templateArgs([], { 'monitoring.prometheusRule.thresholds.xidAgeWarning': 'lots' }));
    expect(res.code).not.toBe(0);
    expect(res.stderr).toMatch(/xidAgeWarning/);
  });
});

describe('every alert', () => {
  const rules = prometheusRuleGroups().flatMap((g) => g.rules);

  it('has a severity, a summary, a description naming the namespace and cluster, and a runbook section', () => {
    const runbooks = readFileSync(path.join(repo, 'docs/runbooks.md'), 'utf8');
    const headings = new Set([...runbooks.matchAll(/^## (\S+)\s*$/gm)].map((m) => m[1]!.toLowerCase()));
    for (const r of rules) {
      expect(['warning', 'critical'], r.alert).toContain(r.labels.severity);
      expect(r.annotations.summary.length, r.alert).toBeGreaterThan(10);
      expect(r.annotations.description, r.alert).toMatch(/\{\{ \$labels\.namespace \}\}/);
      if (!r.alert.startsWith('PgpilotOperator') && r.alert !== 'PgpilotReconcileErrors') expect(r.annotations.description, r.alert).toMatch(/\{\{ \$labels\.cluster \}\}/);
      expect(r.annotations.runbook_url).toBe(runbookUrl(r.alert));
      expect(headings.has(r.alert.toLowerCase()), `docs/runbooks.md has a "## ${r.alert}" section`).toBe(true);
    }
    // ... and the runbooks describe no alert that does not exist.
    expect([...headings].sort()).toEqual([...new Set(rules.map((r) => r.alert.toLowerCase()))].sort());
  });

  it('reads only metrics of the contract', () => {
    expect(metricNamesOf('sum by (a) (rate(x_total{b="c d"}[5m])) / on (a) y > 3 or absent(up{job="j"})')).toEqual(['up', 'x_total', 'y']);
    expect(alertMetricNames().filter((n) => !CONTRACT_METRICS.has(n))).toEqual([]);
  });

  it('passes promtool check rules', async () => {
    const res = await promtool(['check', 'rules', path.join(work, 'rules.yaml')]);
    expect(res.code, res.out).toBe(0);
    expect(res.out).toContain(`SUCCESS: ${rules.length} rules found`);
  });

  it('has a promtool case where it fires (labels and annotations) and one where it stays quiet', () => {
    const fires = new Set<string>();
    const quiet = new Set<string>();
    const cases = TEST_FILES.flatMap((f) => {
      const file = parse(readFileSync(path.join(here, f), 'utf8')) as PromtoolTestFile;
      expect(file.rule_files, f).toEqual(['rules.yaml']);
      return file.tests.flatMap((t) => t.alert_rule_test ?? []);
    });
    for (const c of cases) {
      for (const sev of ['warning', 'critical']) {
        const firing = (c.exp_alerts ?? []).filter((a) => a.exp_labels?.severity === sev);
        if (firing.length === 0) quiet.add(`${c.alertname}/${sev}`);
        if (firing.some((a) => ['summary', 'description', 'runbook_url'].every((k) => a.exp_annotations?.[k] !== undefined))) fires.add(`${c.alertname}/${sev}`);
      }
    }
    for (const r of rules) {
      const key = `${r.alert}/${r.labels.severity}`;
      expect(fires.has(key), `${key} fires in a test, with annotations`).toBe(true);
      expect(quiet.has(key), `${key} stays quiet in a test`).toBe(true);
    }
  });

  it.each(TEST_FILES)('passes promtool test rules %s', async (file) => {
    const res = await promtool(['test', 'rules', file], work);
    expect(res.code, res.out).toBe(0);
    expect(res.out).toContain('SUCCESS');
  });

  it('promtool test rules fails when an expectation is wrong (the tests can fail)', async () => {
    const broken = readFileSync(path.join(here, 'operator.yaml'), 'utf8').replace('for 5 minutes (job pgpilot-operator). Without it', 'for 6 minutes (job pgpilot-operator). Without it');
    writeFileSync(path.join(work, 'broken.yaml'), broken);
    const res = await promtool(['test', 'rules', 'broken.yaml'], work);
    expect(res.code).not.toBe(0);
    expect(res.out).toMatch(/FAILED[\s\S]*PgpilotOperatorDown/);
  });
});
