/**
 * pgpilot's Prometheus alerts: the one source of the rules. `npm run gen` writes them into the
 * chart as a Helm template (charts/pgpilot/templates/prometheusrule.yaml), with each threshold a
 * value, each group a toggle and `{{ $labels.* }}` escaped for Helm; `prometheusRuleGroups()`
 * renders the same rules with concrete thresholds (what the chart renders with those values: a
 * test compares the two, and promtool checks and unit-tests the chart's rendered text).
 *
 * Metric names and labels are the monitoring contract's (issue 12): the instance exporter's series
 * carry `namespace`, `cluster`, `pod` (and `role`) from the PodMonitor's relabelling; the operator's
 * carry `namespace`, `cluster`; the operator's scrape job is `pgpilot-operator`.
 */
import { stringify } from 'yaml';

/** Each group is a chart value `monitoring.prometheusRule.groups.<key>` (true by default). */
export const ALERT_GROUPS = ['availability', 'replication', 'backup', 'storage', 'database', 'operator'] as const;
export type AlertGroupKey = (typeof ALERT_GROUPS)[number];

/** The numbers of the alerts, chart values `monitoring.prometheusRule.thresholds.<name>` (integers). */
export const DEFAULT_THRESHOLDS = {
  /** A replica replays WAL this many seconds behind the primary: warning. */
  replicationLagWarningSeconds: 10,
  /** ... critical. */
  replicationLagCriticalSeconds: 60,
  /** The newest archived WAL segment is older than this while segments wait to be archived. */
  archivedWalMaxAgeMinutes: 10,
  /** The last successful base backup is older than this (a daily schedule plus slack). */
  lastBackupMaxAgeHours: 26,
  /** A volume's use, extrapolated linearly over the last hour, reaches its capacity within this. */
  volumeFullWithinHours: 4,
  volumeUsageWarningPercent: 80,
  volumeUsageCriticalPercent: 90,
  /** Connections in use, per cent of max_connections. */
  connectionsWarningPercent: 80,
  connectionsCriticalPercent: 95,
  /** age(datfrozenxid) of a database (wraparound at about 2.1 billion). */
  xidAgeWarning: 500_000_000,
  xidAgeCritical: 1_000_000_000,
  /** A transaction (not idle in transaction) has been open this long. */
  longTransactionMinutes: 30,
  /** A session has been idle in transaction this long. */
  idleInTransactionMinutes: 30,
} as const;
export type ThresholdName = keyof typeof DEFAULT_THRESHOLDS;
export type Thresholds = Record<ThresholdName, number>;

/** Where runbook_url points: docs/runbooks.md in the repository, one section per alert. */
export const RUNBOOK_BASE = 'https://github.com/pgpilot/pgpilot/blob/main/docs/runbooks.md';

/** The Prometheus job of the operator's ServiceMonitor (the contract's name). */
export const OPERATOR_JOB = 'pgpilot-operator';

export type Severity = 'warning' | 'critical';

export interface AlertDefinition {
  alert: string;
  expr: string;
  for?: string;
  severity: Severity;
  summary: string;
  description: string;
}

export interface AlertGroupDefinition {
  key: AlertGroupKey;
  /** The rule group's name in Prometheus. */
  name: string;
  rules: AlertDefinition[];
}

/** A rule as Prometheus (and a PrometheusRule's spec.groups[].rules[]) has it. */
export interface PrometheusAlertRule {
  alert: string;
  expr: string;
  for?: string;
  labels: Record<string, string>;
  annotations: { summary: string; description: string; runbook_url: string };
}

export interface PrometheusRuleGroup {
  name: string;
  rules: PrometheusAlertRule[];
}

/** runbook_url of an alert: GitHub's anchor of a `## <alertname>` heading. */
export function runbookUrl(alert: string): string {
  return `${RUNBOOK_BASE}#${alert.toLowerCase()}`;
}

// Series of the instance pods' targets (the PodMonitor sets `cluster` and `pod`; the operator's has neither).
const INSTANCE_UP = `up{cluster!="", pod!="", job!="${OPERATOR_JOB}"}`;
const BY_POD = 'namespace, cluster, pod';
const WHERE = 'cluster {{ $labels.namespace }}/{{ $labels.cluster }}';
const INSTANCE = 'instance {{ $labels.pod }} of cluster {{ $labels.namespace }}/{{ $labels.cluster }}';

/** Every alert, with thresholds as `t(name)` gives them (numbers, or Helm placeholders). */
export function alertGroupDefinitions(t: (name: ThresholdName) => string): AlertGroupDefinition[] {
  const lag = (severity: Severity, name: ThresholdName): AlertDefinition => ({
    alert: 'PgpilotReplicationLag',
    expr: `pg_replication_lag_seconds > ${t(name)}`,
    for: '2m',
    severity,
    summary: `Replica {{ $labels.namespace }}/{{ $labels.pod }} is more than ${t(name)} s behind the primary`,
    description: `${cap(INSTANCE)} replays WAL {{ $value | humanizeDuration }} behind the primary (${severity} above ${t(name)} s). Reads from it are stale, and a failover to it takes longer.`,
  });
  const volume = (severity: Severity, name: ThresholdName): AlertDefinition => ({
    alert: 'PgpilotVolumeUsageHigh',
    expr: `100 * pgpilot_instance_volume_used_bytes
  / on (${BY_POD}, volume)
pgpilot_instance_volume_capacity_bytes
> ${t(name)}`,
    for: '5m',
    severity,
    summary: `The {{ $labels.volume }} volume of {{ $labels.namespace }}/{{ $labels.pod }} is more than ${t(name)} % full`,
    description: `The {{ $labels.volume }} volume of ${INSTANCE} is {{ $value | printf "%.1f" }} % full (${severity} above ${t(name)} %). PostgreSQL stops when its data or WAL volume is full.`,
  });
  const connections = (severity: Severity, name: ThresholdName): AlertDefinition => ({
    alert: 'PgpilotConnectionsHigh',
    expr: `100 * sum by (${BY_POD}) (pg_stat_activity_count)
  / on (${BY_POD})
max by (${BY_POD}) (pg_settings_max_connections)
> ${t(name)}`,
    for: '5m',
    severity,
    summary: `{{ $labels.namespace }}/{{ $labels.pod }} uses more than ${t(name)} % of max_connections`,
    description: `${cap(INSTANCE)} has {{ $value | printf "%.1f" }} % of max_connections in use (${severity} above ${t(name)} %). New connections are refused once none is left.`,
  });
  const xid = (severity: Severity, name: ThresholdName): AlertDefinition => ({
    alert: 'PgpilotXidWraparound',
    expr: `max by (namespace, cluster, datname) (pg_database_xid_age) > ${t(name)}`,
    for: '5m',
    severity,
    summary: `Database {{ $labels.datname }} in {{ $labels.namespace }}/{{ $labels.cluster }} nears transaction-ID wraparound`,
    description: `The oldest unfrozen transaction ID of database {{ $labels.datname }} in ${WHERE} is {{ $value | humanize }} transactions old (${severity} above ${t(name)}). At about 2.1 billion PostgreSQL stops accepting writes to prevent wraparound.`,
  });
  return [
    {
      key: 'availability',
      name: 'pgpilot.availability',
      rules: [
        {
          alert: 'PgpilotInstanceDown',
          expr: `pg_up == 0
or on (${BY_POD})
${INSTANCE_UP} == 0`,
          for: '1m',
          severity: 'critical',
          summary: 'PostgreSQL instance {{ $labels.namespace }}/{{ $labels.pod }} is down',
          description: `${cap(INSTANCE)} has been down for a minute: PostgreSQL does not answer (pg_up is 0) or the instance's metrics cannot be scraped.`,
        },
        {
          alert: 'PgpilotNoPrimary',
          expr: `(
  count by (namespace, cluster) (${INSTANCE_UP})
  unless on (namespace, cluster)
  (
    pgpilot_instance_role{role="primary"} == 1
    and on (${BY_POD}) pg_up == 1
    and on (${BY_POD}) pgpilot_instance_fenced == 0
  )
)
or on (namespace, cluster)
max by (namespace, cluster) (pgpilot_cluster_condition{type="PrimaryAvailable", status="False"}) == 1`,
          for: '1m',
          severity: 'critical',
          summary: 'Cluster {{ $labels.namespace }}/{{ $labels.cluster }} has no writable primary',
          description: `No instance of ${WHERE} has been an unfenced primary that answers for a minute (or the operator's PrimaryAvailable condition is False): writes to the cluster fail.`,
        },
        {
          alert: 'PgpilotFailover',
          expr: 'sum by (namespace, cluster) (increase(pgpilot_cluster_failovers_total[15m])) > 0',
          severity: 'warning',
          summary: 'Cluster {{ $labels.namespace }}/{{ $labels.cluster }} failed over',
          description: `The operator promoted a replica of ${WHERE} in the last 15 minutes because its primary failed. The cluster is writable again; find out why the old primary failed.`,
        },
      ],
    },
    {
      key: 'replication',
      name: 'pgpilot.replication',
      rules: [
        {
          alert: 'PgpilotReplicaNotStreaming',
          // pg_stat_replication's application_name is the instance name (cluster_name), whose pod is "<instance>-0".
          expr: `(
  pgpilot_instance_role{role="replica"} == 1
  and on (${BY_POD}) pg_up == 1
)
unless on (${BY_POD})
label_replace(pg_stat_replication_replay_lag_bytes, "pod", "$1-0", "application_name", "(.+)")`,
          for: '5m',
          severity: 'warning',
          summary: 'Replica {{ $labels.namespace }}/{{ $labels.pod }} is not streaming from the primary',
          description: `${cap(INSTANCE)} runs as a replica but the primary has not listed it in pg_stat_replication for 5 minutes: it receives no WAL, falls behind and cannot be promoted without data loss.`,
        },
        lag('warning', 'replicationLagWarningSeconds'),
        lag('critical', 'replicationLagCriticalSeconds'),
      ],
    },
    {
      key: 'backup',
      name: 'pgpilot.backup',
      rules: [
        {
          alert: 'PgpilotArchivingFailing',
          expr: `pgpilot_instance_archiving_failing == 1
or on (${BY_POD})
(
  increase(pg_stat_archiver_failed_count[5m]) > 0
  and on (${BY_POD}) increase(pg_stat_archiver_archived_count[5m]) == 0
)`,
          for: '5m',
          severity: 'critical',
          summary: 'WAL archiving of {{ $labels.namespace }}/{{ $labels.pod }} is failing',
          description: `${cap(INSTANCE)} has failed to archive WAL for 5 minutes. Point-in-time recovery stops at the last archived segment, and unarchived WAL accumulates on the WAL volume until it is full.`,
        },
        {
          alert: 'PgpilotArchivedWalTooOld',
          expr: `pgpilot_instance_last_archived_wal_age_seconds > ${t('archivedWalMaxAgeMinutes')} * 60
and on (${BY_POD})
pgpilot_instance_archiver_backlog_segments > 0`,
          for: '5m',
          severity: 'warning',
          summary: 'The newest archived WAL of {{ $labels.namespace }}/{{ $labels.pod }} is older than ' + `${t('archivedWalMaxAgeMinutes')} minutes`,
          description: `The newest WAL segment archived by ${INSTANCE} is {{ $value | humanizeDuration }} old while completed segments wait to be archived: a restore would lose everything written since.`,
        },
        {
          alert: 'PgpilotBackupTooOld',
          expr: `time() - max by (namespace, cluster) (pgpilot_cluster_last_successful_backup_timestamp_seconds) > ${t('lastBackupMaxAgeHours')} * 3600
and on (namespace, cluster)
max by (namespace, cluster) (pgpilot_cluster_last_successful_backup_timestamp_seconds) > 0`,
          severity: 'warning',
          summary: `The last backup of {{ $labels.namespace }}/{{ $labels.cluster }} is older than ${t('lastBackupMaxAgeHours')} hours`,
          description: `The last successful base backup of ${WHERE} finished {{ $value | humanizeDuration }} ago, longer than its schedule allows (${t('lastBackupMaxAgeHours')} h). Restores replay more WAL, and retention may remove the last good base backup.`,
        },
      ],
    },
    {
      key: 'storage',
      name: 'pgpilot.storage',
      rules: [
        {
          alert: 'PgpilotVolumeFillingUp',
          expr: `predict_linear(pgpilot_instance_volume_used_bytes[1h], ${t('volumeFullWithinHours')} * 3600)
> on (${BY_POD}, volume)
pgpilot_instance_volume_capacity_bytes`,
          for: '10m',
          severity: 'warning',
          summary: `The {{ $labels.volume }} volume of {{ $labels.namespace }}/{{ $labels.pod }} fills up within ${t('volumeFullWithinHours')} hours`,
          description: `At the rate of the last hour, the {{ $labels.volume }} volume of ${INSTANCE} is full within ${t('volumeFullWithinHours')} hours. PostgreSQL stops when its data or WAL volume is full.`,
        },
        volume('warning', 'volumeUsageWarningPercent'),
        volume('critical', 'volumeUsageCriticalPercent'),
      ],
    },
    {
      key: 'database',
      name: 'pgpilot.database',
      rules: [
        connections('warning', 'connectionsWarningPercent'),
        connections('critical', 'connectionsCriticalPercent'),
        xid('warning', 'xidAgeWarning'),
        xid('critical', 'xidAgeCritical'),
        {
          alert: 'PgpilotLongRunningTransaction',
          expr: `max by (${BY_POD}, datname) (pg_stat_activity_max_tx_duration{state!~"idle|idle in transaction.*"}) > ${t('longTransactionMinutes')} * 60`,
          severity: 'warning',
          summary: `A transaction on {{ $labels.namespace }}/{{ $labels.pod }} has been open for more than ${t('longTransactionMinutes')} minutes`,
          description: `The oldest open transaction in database {{ $labels.datname }} on ${INSTANCE} started {{ $value | humanizeDuration }} ago. It holds back vacuum (bloat, transaction-ID age) and may hold locks others wait for.`,
        },
        {
          alert: 'PgpilotIdleInTransaction',
          expr: `max by (${BY_POD}, datname) (pg_stat_activity_max_tx_duration{state=~"idle in transaction.*"}) > ${t('idleInTransactionMinutes')} * 60`,
          severity: 'warning',
          summary: `A session on {{ $labels.namespace }}/{{ $labels.pod }} has been idle in transaction for more than ${t('idleInTransactionMinutes')} minutes`,
          description: `A session in database {{ $labels.datname }} on ${INSTANCE} opened a transaction {{ $value | humanizeDuration }} ago and is idle in it: it holds back vacuum and keeps its locks.`,
        },
        {
          alert: 'PgpilotDeadlocks',
          expr: `sum by (${BY_POD}, datname) (increase(pg_stat_database_deadlocks[5m])) > 0`,
          severity: 'warning',
          summary: 'Deadlocks in database {{ $labels.datname }} on {{ $labels.namespace }}/{{ $labels.pod }}',
          description: `PostgreSQL detected deadlocks in database {{ $labels.datname }} on ${INSTANCE} in the last 5 minutes and aborted one transaction of each.`,
        },
      ],
    },
    {
      key: 'operator',
      name: 'pgpilot.operator',
      rules: [
        {
          alert: 'PgpilotOperatorDown',
          expr: `up{job="${OPERATOR_JOB}"} == 0
or absent(up{job="${OPERATOR_JOB}"})`,
          for: '5m',
          severity: 'critical',
          summary: 'The pgpilot operator is down',
          description: `Prometheus has not scraped the pgpilot operator {{ with $labels.pod }}pod {{ $labels.namespace }}/{{ . }} {{ end }}for 5 minutes (job ${OPERATOR_JOB}). Without it no failover, backup schedule or rollout happens.`,
        },
        {
          alert: 'PgpilotReconcileErrors',
          expr: 'sum by (namespace, pod) (rate(pgpilot_reconcile_total{result="error"}[5m])) > 0',
          for: '15m',
          severity: 'warning',
          summary: 'The pgpilot operator keeps failing to reconcile',
          description: `The operator pod {{ $labels.namespace }}/{{ $labels.pod }} has ended reconciles with an error for 15 minutes: the clusters it manages do not converge to their spec.`,
        },
      ],
    },
  ];
}

function cap(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

export interface AlertOptions {
  thresholds?: Partial<Thresholds>;
  /** Groups to leave out (every group is in by default). */
  groups?: Partial<Record<AlertGroupKey, boolean>>;
  /** Extra labels on every alert; `severity` is always the rule's own. */
  alertLabels?: Record<string, string>;
}

function toRule(d: AlertDefinition, alertLabels: Record<string, string>): PrometheusAlertRule {
  return {
    alert: d.alert,
    expr: d.expr,
    ...(d.for !== undefined ? { for: d.for } : {}),
    labels: { ...alertLabels, severity: d.severity },
    annotations: { summary: d.summary, description: d.description, runbook_url: runbookUrl(d.alert) },
  };
}

/** The rule groups with concrete thresholds: a PrometheusRule's `.spec.groups`, or a Prometheus rule file's `groups`. */
export function prometheusRuleGroups(opts: AlertOptions = {}): PrometheusRuleGroup[] {
  const thresholds: Thresholds = { ...DEFAULT_THRESHOLDS, ...opts.thresholds };
  return alertGroupDefinitions((name) => String(thresholds[name]))
    .filter((g) => opts.groups?.[g.key] !== false)
    .map((g) => ({ name: g.name, rules: g.rules.map((r) => toRule(r, opts.alertLabels ?? {})) }));
}

/** A Prometheus rule file (what promtool reads) with these options. */
export function prometheusRuleFile(opts: AlertOptions = {}): string {
  return stringify({ groups: prometheusRuleGroups(opts) }, { lineWidth: 0 });
}

const VALUES = '.Values.monitoring.prometheusRule';
const LABELS_TOKEN = '@@pgpilot-labels:';
const THRESHOLD_TOKEN = '@@pgpilot-threshold:';
/** Spaces before each `- name:` of spec.groups in the template. */
const GROUP_INDENT = 4;

/** Escapes Prometheus's `{{ ... }}` templates so Helm prints them as they are. */
function escapeForHelm(text: string): string {
  return text.replace(/\{\{.*?\}\}/g, (m) => {
    if (m.includes('`')) throw new Error(`a Prometheus template with a backquote cannot be escaped for Helm: ${m}`);
    return `{{\`${m}\`}}`;
  });
}

function indent(text: string, spaces: number): string {
  const pad = ' '.repeat(spaces);
  return text
    .split('\n')
    .map((l) => (l === '' ? l : pad + l))
    .join('\n');
}

/**
 * The chart's templates/prometheusrule.yaml: rendered when monitoring.prometheusRule.enabled and the
 * cluster serves monitoring.coreos.com/v1 (or .force), with the groups the values enable.
 */
export function prometheusRuleHelmTemplate(): string {
  const groups = alertGroupDefinitions((name) => `${THRESHOLD_TOKEN}${name}@@`);
  const body = groups.map((g) => {
    const rules = g.rules.map((r) => ({ ...toRule(r, {}), labels: `${LABELS_TOKEN}${r.severity}@@` }));
    let yaml = escapeForHelm(stringify([{ name: g.name, rules }], { lineWidth: 0 }));
    yaml = yaml.replace(new RegExp(`^( *)labels: .*${LABELS_TOKEN}(\\w+)@@.*$`, 'gm'), (_m, pad: string, severity: string) => {
      const n = GROUP_INDENT + pad.length + 2;
      return `${pad}labels:\n${pad}  {{- merge (dict "severity" "${severity}") $p.alertLabels | toYaml | nindent ${n} }}`;
    });
    yaml = yaml.replace(new RegExp(`${THRESHOLD_TOKEN}(\\w+)@@`, 'g'), (_m, name: string) => `{{ $p.thresholds.${name} | int64 }}`);
    if (yaml.includes('@@pgpilot-')) throw new Error(`unreplaced placeholder in group ${g.name}`);
    return `{{- if $p.groups.${g.key} }}\n${indent(yaml.trimEnd(), GROUP_INDENT)}\n{{- end }}`;
  });
  const anyGroup = `(or ${ALERT_GROUPS.map((k) => `$p.groups.${k}`).join(' ')})`;
  return `{{- /* Generated from src/builders/alerts.ts by \`npm run gen\`. Do not edit by hand. */}}
{{- $p := ${VALUES} }}
{{- if and $p.enabled (or $p.force (.Capabilities.APIVersions.Has "monitoring.coreos.com/v1")) ${anyGroup} }}
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: {{ include "pgpilot.fullname" . }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- merge (include "pgpilot.labels" . | fromYaml) $p.labels | toYaml | nindent 4 }}
spec:
  groups:
${body.join('\n')}
{{- end }}
`;
}

export const PROMETHEUS_RULE_TEMPLATE_PATH = 'charts/pgpilot/templates/prometheusrule.yaml';

/** The files `npm run gen` writes from this module. */
export function alertGeneratedFiles(): Array<{ path: string; content: string }> {
  return [{ path: PROMETHEUS_RULE_TEMPLATE_PATH, content: prometheusRuleHelmTemplate() }];
}

/**
 * Metric names an expression reads (for checks against the metric contract and, in the e2e
 * suite, that each has a series): identifiers that are not functions, keywords or label names.
 */
export function metricNamesOf(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""') // string literals
    .replace(/\{[^}]*\}/g, '') // label matchers
    .replace(/\[[^\]]*\]/g, '') // ranges
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ''); // label lists
  const keywords = new Set(['and', 'or', 'unless', 'bool', 'offset', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right']);
  const names = new Set<string>();
  for (const m of stripped.matchAll(/(?<![\w:.])[a-zA-Z_:][\w:]*(?=\s*(\()?)/g)) {
    if (m[1] !== undefined || keywords.has(m[0])) continue;
    names.add(m[0]);
  }
  return [...names].sort();
}

/** Every metric name the alerts read. */
export function alertMetricNames(): string[] {
  const names = new Set<string>();
  for (const g of prometheusRuleGroups()) for (const r of g.rules) for (const n of metricNamesOf(r.expr)) names.add(n);
  return [...names].sort();
}
