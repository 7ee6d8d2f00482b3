// A real Prometheus (Debian's 2.42, e2e/harness/prometheus.ts) scraping a real two-instance cluster
// with WAL archiving to s3rver and the operator, with the scrape configuration derived from the
// operator's PodMonitor and the chart's ServiceMonitor (the Prometheus Operator's relabelling, file_sd
// in place of Kubernetes service discovery, which Debian's build lacks) and the chart's
// PrometheusRule loaded as rules — every `for:` shortened to 5 s: this file proves the alert
// EXPRESSIONS against real series; test/alerts proves the durations with promtool.
//
// It asserts through Prometheus's HTTP API: every target up; every metric a dashboard or an alert
// reads has a series; every dashboard query returns data; InstanceDown fires for a frozen replica
// (the kubelet's pod freeze), the archiving alert during an S3 outage (s3rver killed), the lag alert
// while a replica's WAL replay is stopped right after the switchover that restarted it (SIGSTOP of its startup process only — a
// frozen pod would freeze its exporter too) under writes — each resolving afterwards; the failover
// alert once the operator fails over from a frozen primary.
//
// The Prometheus Operator's CRDs are installed with server-side apply and never deleted here
// (e2e/monitoring.test.ts deletes them at its end); the harness keeps the last PodMonitor it saw.
import { readFileSync, readdirSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CustomObjectsApi } from '@kubernetes/client-node';
import { API_GROUP, API_VERSION, BACKUP_PLURAL } from '../src/api/constants.js';
import { alertMetricNames, metricNamesOf, OPERATOR_JOB } from '../src/builders/alerts.js';
import { allDashboardQueries, substituteVariables } from '../scripts/dashboards/index.js';
import { helmOk, parseManifests, templateArgs } from '../test/support/helm.js';
import { startS3rver, S3RVER_ACCESS_KEY, S3RVER_SECRET_KEY, type S3rver } from '../test/support/s3rver.js';
import { createTestNamespace, deleteTestNamespace, kubeConfig, kubeconfigPath, waitFor } from './harness/env.js';
import { HaCluster } from './harness/ha-cluster.js';
import { kubectlOk } from './harness/kubectl.js';
import { OPERATOR_NAMESPACE, RELEASE, REPO_ROOT, ensureBuilt, startOperator, type RunningOperator } from './harness/operator.js';
import { LedgerWriter, query, serviceClientConfig, superuserCredentials } from './harness/postgres.js';
import { PROMETHEUS_OPERATOR_CRDS, prometheusOperatorCrdFiles } from './harness/prometheus-operator.js';
import { startPrometheus, type ActiveAlert, type RunningPrometheus } from './harness/prometheus.js';
import { startProcessKubelet, type ProcessKubelet } from './kubelet/index.js';

const NAME = 'prom-db';
const BUCKET = 'prom-archive';
/** The `pod` label of the operator's target: a local process stands in for the chart's Deployment. */
const OPERATOR_POD = `${RELEASE}-local-0`;
type Obj = Record<string, any>;

/**
 * Metric names that have no series in this run, and why (the only exceptions to "every name a
 * dashboard or an alert reads has a series").
 */
const METRICS_WITHOUT_SERIES: Record<string, string> = {
  pgpilot_cluster_rollout_updated_instances: 'exists only during a rollout (none runs here)',
  pgpilot_cluster_rollout_total_instances: 'exists only during a rollout (none runs here)',
};

/**
 * Dashboard queries that legitimately return nothing in this run, by `<dashboard> / <where>`, and why.
 */
const QUERIES_WITHOUT_DATA: Record<string, string> = {
  'pgpilot-operator / Rollouts [pgpilot_cluster_rollout_total_instances pgpilot_cluster_rollout_updated_instances]':
    'the rollout gauges exist only while a rollout runs (e2e/rollout.test.ts runs one)',
};

describe('a real Prometheus scraping a real cluster', () => {
  let ns: string;
  let s3: S3rver;
  let kubelet: ProcessKubelet;
  let operator: RunningOperator;
  let db: HaCluster;
  let prom: RunningPrometheus;
  const custom = () => kubeConfig().makeApiClient(CustomObjectsApi);

  const podMonitor = async (): Promise<Obj | undefined> => {
    try {
      return (await custom().getNamespacedCustomObject({ group: 'monitoring.coreos.com', version: 'v1', plural: 'podmonitors', namespace: ns, name: NAME })) as Obj;
    } catch {
      return undefined;
    }
  };

  const status = async () => (await db.get()).status!;
  const primaryPod = async () => db.podOf((await status()).currentPrimary!);
  const replicaPod = async () => {
    const s = await status();
    return db.podOf(s.instanceNames!.find((i) => i !== s.currentPrimary)!);
  };

  const superuser = async () => {
    return serviceClientConfig(kubelet, ns, `${NAME}-rw`, await superuserCredentials(ns, NAME));
  };

  /**
   * After a role change: the operator done (spec.primary, pinned by the switchover test, primary
   * again — after a failover the operator switches back to it), the cluster healthy, and Prometheus
   * seeing it so: one primary with its replica in pg_stat_replication, both pods' pg_up 1.
   */
  const settled = async (what: string): Promise<void> => {
    const pinned = ((await db.get()).spec as { primary?: string }).primary;
    if (pinned) await waitFor(`${pinned} primary again (${what})`, async () => (await status()).currentPrimary === pinned, { timeoutMs: 120_000, intervalMs: 500 });
    await db.healthy(2, 180_000);
    const primary = await primaryPod();
    await waitFor(`Prometheus sees ${primary} as the primary with its replica streaming (${what})`, async () => {
      const roles = await prom.query(`pgpilot_instance_role{namespace="${ns}", cluster="${NAME}", role="primary"} == 1`);
      const streaming = await prom.query(`pg_stat_replication_replay_lag_bytes{namespace="${ns}", cluster="${NAME}", pod="${primary}"}`);
      const up = await prom.query(`pg_up{namespace="${ns}", cluster="${NAME}"} == 1`);
      return roles.length === 1 && roles[0]!.metric.pod === primary && streaming.length === 1 && up.length === 2;
    }, { timeoutMs: 120_000, intervalMs: 1000 });
  };

  const alertsNamed = async (name: string, pod?: string): Promise<ActiveAlert[]> =>
    (await prom.alerts()).filter((a) => a.labels.alertname === name && a.labels.namespace === ns && (pod === undefined || a.labels.pod === pod));
  const firing = (name: string, pod?: string) => waitFor(`${name} firing${pod ? ` for ${pod}` : ''}`, async () => {
    const a = (await alertsNamed(name, pod)).filter((x) => x.state === 'firing');
    return a.length > 0 ? a : undefined;
  }, { timeoutMs: 120_000, intervalMs: 1000 });
  const resolved = (name: string, pod?: string) =>
    waitFor(`${name} resolved${pod ? ` for ${pod}` : ''}`, async () => (await alertsNamed(name, pod)).length === 0, { timeoutMs: 120_000, intervalMs: 1000 });

  beforeAll(async () => {
    ensureBuilt();
    const crdFiles = await prometheusOperatorCrdFiles();
    ns = await createTestNamespace('prometheus');
    s3 = await startS3rver({ buckets: [BUCKET] });
    kubelet = await startProcessKubelet({ kubeconfigPath: kubeconfigPath(), repoRoot: REPO_ROOT });
    // Installed (idempotently) before the operator starts; never deleted here (see the header).
    for (const plural of PROMETHEUS_OPERATOR_CRDS) await kubectlOk(['apply', '--server-side', '--force-conflicts', '-f', crdFiles[plural]]);
    await kubectlOk(['wait', '--for=condition=Established', ...PROMETHEUS_OPERATOR_CRDS.map((p) => `crd/${p}.monitoring.coreos.com`), '--timeout=60s']);
    operator = await startOperator({ watchNamespaces: [ns], extraEnv: { PGPILOT_DISCOVERY_SECONDS: '2' } });
    db = new HaCluster(kubelet, ns, NAME);
    await db.createArchived({ endpoint: s3.endpoint, accessKeyId: S3RVER_ACCESS_KEY, secretAccessKey: S3RVER_SECRET_KEY }, BUCKET, (c) => {
      c.spec.version = '16';
      c.spec.instances = 2;
      c.spec.highAvailability = { enabled: true, synchronousCommit: false };
    });
    await db.healthy(2, 300_000);
    await db.archiving();
    await waitFor('the PodMonitor of the cluster', podMonitor, { timeoutMs: 60_000 });

    const set = { 'metrics.serviceMonitor.enabled': 'true', 'monitoring.prometheusRule.enabled': 'true', 'monitoring.prometheusRule.force': 'true' };
    const objects = parseManifests((await helmOk(templateArgs([], set, { namespace: OPERATOR_NAMESPACE, releaseName: RELEASE }))).stdout);
    const serviceMonitor = objects.find((o) => o.kind === 'ServiceMonitor')!;
    const prometheusRule = objects.find((o) => o.kind === 'PrometheusRule')!;
    prom = await startPrometheus({ namespace: ns, operator: { serviceMonitor, address: `127.0.0.1:${operator.port}`, service: RELEASE, pod: OPERATOR_POD }, prometheusRule });
    console.log(`[prometheus] ${prom.url} (dir ${prom.dir}); kubelet log ${kubelet.logPath}; operator log ${operator.logPath}`);
  }, 600_000);

  afterAll(async () => {
    await prom?.stop();
    await operator?.stop();
    await kubelet?.stop();
    await s3?.stop();
    if (ns) await deleteTestNamespace(ns);
  });

  it('scrapes every instance pod through the PodMonitor and the operator through the ServiceMonitor, all up', async () => {
    const pods = (await status()).instanceNames!.map((i) => db.podOf(i)).sort();
    const targets = await waitFor('every target up', async () => {
      const t = await prom.activeTargets();
      const instances = t.filter((x) => x.labels.job === `${ns}/${NAME}`);
      const op = t.filter((x) => x.labels.job === OPERATOR_JOB);
      const all = [...instances, ...op];
      return instances.length === pods.length && op.length === 1 && all.every((x) => x.health === 'up') ? { instances, op } : undefined;
    }, { timeoutMs: 60_000, intervalMs: 1000 });
    // The Prometheus Operator's labels plus the PodMonitor's own relabelling (cluster, instance from pod labels).
    expect(targets.instances.map((x) => x.labels.pod).sort()).toEqual(pods);
    for (const t of targets.instances) {
      expect(t.labels).toMatchObject({ namespace: ns, cluster: NAME, container: 'postgres', endpoint: 'metrics', job: `${ns}/${NAME}` });
      expect(t.labels.instance).toBe(t.labels.pod!.replace(/-0$/, ''));
      expect(t.scrapeUrl).toMatch(/^http:\/\/127\.[0-9.]+:9187\/metrics$/);
    }
    expect(targets.op[0]!.labels).toMatchObject({ job: OPERATOR_JOB, namespace: OPERATOR_NAMESPACE, pod: OPERATOR_POD, endpoint: 'http' });
    // Through PromQL as the alerts see them.
    const up = await prom.query(`up{namespace="${ns}", cluster="${NAME}"} == 1`);
    expect(up.map((s) => s.metric.pod).sort()).toEqual(pods);
    expect(await prom.query(`up{job="${OPERATOR_JOB}"} == 1`)).toHaveLength(1);
    // The operator's per-cluster series keep the cluster's namespace (honorLabels).
    expect(await prom.query(`pgpilot_cluster_ready_instances{namespace="${ns}", cluster="${NAME}"} == 2`)).toHaveLength(1);
  });

  it('a base backup and a switchover produce the series that need them', async () => {
    await custom().createNamespacedCustomObject({
      group: API_GROUP,
      version: API_VERSION,
      plural: BACKUP_PLURAL,
      namespace: ns,
      body: { apiVersion: `${API_GROUP}/${API_VERSION}`, kind: 'PostgreSQLBackup', metadata: { name: 'prom-1' }, spec: { cluster: { name: NAME } } },
    });
    await waitFor('backup prom-1 completed', async () => {
      const b = (await custom().getNamespacedCustomObject({ group: API_GROUP, version: API_VERSION, plural: BACKUP_PLURAL, namespace: ns, name: 'prom-1' })) as Obj;
      if (b.status?.phase === 'failed') throw new Error(`backup failed: ${b.status.error}`);
      return b.status?.phase === 'completed';
    }, { timeoutMs: 180_000, intervalMs: 1000 });
    const s = await status();
    const next = s.instanceNames!.find((i) => i !== s.currentPrimary)!;
    await db.patchSpec({ primary: next });
    await settled('the switchover');
    await waitFor('the backup and the switchover in the operator\'s series', async () => {
      const b = await prom.query(`pgpilot_cluster_last_successful_backup_timestamp_seconds{namespace="${ns}"} > 0`);
      const r = await prom.query(`pgpilot_cluster_last_role_change_duration_seconds{namespace="${ns}"}`);
      return b.length > 0 && r.length > 0;
    }, { timeoutMs: 60_000, intervalMs: 1000 });
  });

  it('PgpilotReplicationLag fires while a replica stops replaying under writes and resolves after', async () => {
    // The hard case, right after the switchover: the replica is the old primary, restarted from its
    // shutdown checkpoint, and has replayed no transaction since (pg_last_xact_replay_timestamp()
    // NULL); its replay stops (SIGSTOP of the startup process only: a frozen pod would freeze its
    // exporter too) while writes go on through -rw.
    const pod = await replicaPod();
    const instance = pod.replace(/-0$/, '');
    const startup = startupProcess(kubelet.podPids(ns, pod));
    expect(startup, `the startup process of ${pod}`).toBeDefined();
    process.kill(startup!, 'SIGSTOP');
    const writer = new LedgerWriter(db.rw(), 'prom_lag');
    try {
      const replayed = await query<{ t: Date | null }>(db.podConfig(instance), 'SELECT pg_last_xact_replay_timestamp() AS t');
      expect(replayed[0]!.t, 'a transaction replayed since the switchover').toBeNull();
      await writer.prepare();
      writer.start();
      const a = await firing('PgpilotReplicationLag', pod);
      expect(a.some((x) => x.labels.severity === 'warning')).toBe(true);
      // The agent's own lag figures agree.
      expect((await prom.query(`pgpilot_instance_replication_lag_bytes{namespace="${ns}", pod="${pod}"} > 0`)).length).toBe(1);
      expect((await prom.query(`pgpilot_instance_replication_lag_seconds{namespace="${ns}", pod="${pod}"} > 10`)).length).toBe(1);
    } finally {
      process.kill(startup!, 'SIGCONT');
      await writer.stop();
    }
    await resolved('PgpilotReplicationLag', pod);
  });

  it('PgpilotInstanceDown fires while a replica is frozen and resolves once it is thawed', async () => {
    const pod = await replicaPod();
    await kubelet.freeze(ns, pod);
    try {
      const a = await firing('PgpilotInstanceDown', pod);
      expect(a[0]!.labels).toMatchObject({ severity: 'critical', cluster: NAME });
      expect(a[0]!.annotations.runbook_url).toMatch(/#pgpilotinstancedown$/);
    } finally {
      await kubelet.thaw(ns, pod);
    }
    await resolved('PgpilotInstanceDown', pod);
    await db.healthy(2, 180_000);
  });

  it('PgpilotArchivingFailing fires during an S3 outage and resolves after it', async () => {
    const pod = await primaryPod();
    const su = await superuser();
    await s3.kill();
    try {
      // A segment with something in it each time (pg_switch_wal on an empty segment switches nothing).
      await query(su, 'CREATE TABLE IF NOT EXISTS prom_archive (at timestamptz DEFAULT now())');
      for (let i = 0; i < 2; i++) {
        await query(su, 'INSERT INTO prom_archive DEFAULT VALUES');
        await query(su, 'SELECT pg_switch_wal()');
      }
      await firing('PgpilotArchivingFailing', pod);
      expect((await prom.query(`pgpilot_instance_archiver_backlog_segments{namespace="${ns}", pod="${pod}"} > 0`)).length).toBe(1);
    } finally {
      await s3.restart();
    }
    await resolved('PgpilotArchivingFailing', pod);
  });

  it('PgpilotFailover fires once the operator fails over from a frozen primary', async () => {
    const old = (await status()).currentPrimary!;
    await kubelet.freeze(ns, db.podOf(old));
    try {
      await waitFor('another primary', async () => {
        const p = (await status()).currentPrimary;
        return p !== undefined && p !== old;
      }, { timeoutMs: 120_000, intervalMs: 500 });
    } finally {
      await kubelet.thaw(ns, db.podOf(old));
    }
    const a = await firing('PgpilotFailover');
    expect(a[0]!.labels).toMatchObject({ cluster: NAME, severity: 'warning' });
    // The checks below read every series of a settled cluster.
    await settled('the failover');
  });

  it('every metric name a dashboard panel or an alert reads has a series', async () => {
    // What the panels and alerts read (the exporter's whole list also has families that exist only
    // under conditions no panel shows, e.g. a checksum failure or a statistics reset).
    const names = new Set<string>(alertMetricNames());
    for (const q of allDashboardQueries()) for (const n of metricNamesOf(substituteVariables(q.expr))) names.add(n);
    const missing: string[] = [];
    for (const name of [...names].sort()) {
      if ((await prom.seriesCount(`{__name__="${name}"}`)) === 0) missing.push(name);
    }
    expect(missing.filter((n) => !(n in METRICS_WITHOUT_SERIES))).toEqual([]);
    // The allow-list holds no name that has a series after all.
    expect(Object.keys(METRICS_WITHOUT_SERIES).filter((n) => !missing.includes(n))).toEqual([]);
  });

  it('every dashboard query returns data for this namespace, cluster and pod', async () => {
    const s = await status();
    const pods = s.instanceNames!.map((i) => db.podOf(i));
    const empty: string[] = [];
    const problems: string[] = [];
    for (const q of allDashboardQueries()) {
      const key = `${q.dashboard} / ${q.where} [${metricNamesOf(substituteVariables(q.expr)).join(' ')}]`;
      let data = false;
      // The operator dashboard's pod is the operator's; the others' either instance pod (some panels are one role's only).
      for (const pod of q.dashboard === 'pgpilot-operator' ? [OPERATOR_POD] : pods) {
        const expr = substituteVariables(q.expr, { namespace: ns, cluster: NAME, pod, datasource: 'prometheus' });
        try {
          if ((await prom.query(expr)).length > 0) data = true;
        } catch (err) {
          problems.push(`${key}: ${String(err)}`);
        }
        if (data) break;
      }
      if (!data) empty.push(key);
    }
    expect(problems).toEqual([]);
    expect(empty.filter((k) => !(k in QUERIES_WITHOUT_DATA))).toEqual([]);
    expect(Object.keys(QUERIES_WITHOUT_DATA).filter((k) => !empty.includes(k))).toEqual([]);
  });
});

/** The pid of the `postgres: … startup …` process below the pod's main processes (the WAL replay of a replica). */
function startupProcess(mainPids: number[]): number | undefined {
  const children = new Map<number, number[]>();
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(e)]);
    } catch {
      /* gone */
    }
  }
  const queue = [...mainPids];
  while (queue.length) {
    const pid = queue.shift()!;
    for (const c of children.get(pid) ?? []) {
      try {
        const cmd = readFileSync(`/proc/${c}/cmdline`, 'utf8').replace(/\0/g, ' ');
        if (/^postgres: .*startup/.test(cmd)) return c;
      } catch {
        /* gone */
      }
      queue.push(c);
    }
  }
  return undefined;
}
