// A real Prometheus (Debian's `prometheus` 2.42) scraping the test cluster the way the Prometheus
// Operator would make it scrape a real one.
//
// Debian's build has no Kubernetes service discovery (NOTES.md), so the harness plays the part of
// the Prometheus Operator and of `kubernetes_sd_configs` itself, from the objects the product makes:
// - each PodMonitor of the namespace, read from the apiserver, becomes a scrape job with the
//   Prometheus Operator's own relabelling for a PodMonitor (v0.85.0, pkg/prometheus/promcfg.go
//   generatePodMonitorConfig: keep by the selector and the port name, then namespace, container,
//   pod, job = <namespace>/<name>, endpoint) followed by the PodMonitor's relabelings as they are;
// - its targets come from `file_sd_configs`: a JSON file rewritten as pods change, one target per
//   container port of every pod of the namespace with the `__meta_kubernetes_*` labels Kubernetes
//   service discovery (role pod) sets — the relabelling above picks the PodMonitor's pods and port;
// - the operator (a local process) is one static target with what the chart's ServiceMonitor says
//   (path, honorLabels, its relabelings: job `pgpilot-operator`);
// - the rules are the chart's PrometheusRule rendered by helm, unwrapped to `.spec`.
//
// The alerts' `for:` durations are minutes (test/alerts proves their semantics with promtool); the
// rule file loaded here has every `for:` shortened to `forOverride` (default 5 s), so an e2e test
// proves the EXPRESSIONS against real series, not the durations.
//
// PodMonitors come and go with the Prometheus Operator's CRDs (another test file deletes them):
// the last PodMonitor seen is kept, so the scrape goes on while the CRDs are absent.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CoreV1Api, CustomObjectsApi, type V1Pod } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { apiStatus } from '../../src/runtime/api-status.js';
import { errorText } from '../../src/util/error-text.js';
import { freePort } from './control-plane.js';
import { kubeConfig, waitFor } from './env.js';

type Obj = Record<string, any>;
type Relabel = Record<string, unknown>;

export const PROMETHEUS_BINARY = process.env.PGPILOT_PROMETHEUS ?? '/usr/bin/prometheus';

/** Prometheus's label-name rule, as the Prometheus Operator and Kubernetes SD apply it. */
export function sanitizeLabelName(name: string): string {
  return name.replace(/[^a-zA-Z0-9_]/g, '_');
}

/** A Prometheus Operator RelabelConfig (camelCase) as Prometheus config (generateRelabelConfig). */
export function translateRelabeling(rc: Obj): Relabel {
  const out: Relabel = {};
  if (Array.isArray(rc.sourceLabels) && rc.sourceLabels.length > 0) out.source_labels = rc.sourceLabels;
  if (rc.separator !== undefined) out.separator = rc.separator;
  if (rc.targetLabel) out.target_label = rc.targetLabel;
  if (rc.regex) out.regex = rc.regex;
  if (rc.modulus) out.modulus = rc.modulus;
  if (rc.replacement !== undefined) out.replacement = rc.replacement;
  if (rc.action) out.action = String(rc.action).toLowerCase();
  return out;
}

/** The Prometheus Operator's relabelling that keeps the pods a PodMonitor's matchLabels select. */
function selectorRelabelings(pm: Obj): Relabel[] {
  const matchLabels = (pm.spec.selector?.matchLabels ?? {}) as Record<string, string>;
  if (pm.spec.selector?.matchExpressions?.length) throw new Error('podMonitorScrapeConfig: matchExpressions are not translated here');
  return Object.keys(matchLabels)
    .sort()
    .map((k) => {
      const l = sanitizeLabelName(k);
      return { action: 'keep', source_labels: [`__meta_kubernetes_pod_label_${l}`, `__meta_kubernetes_pod_labelpresent_${l}`], regex: `(${matchLabels[k]});true` };
    });
}

/** The relabel_configs the Prometheus Operator generates for one endpoint of a PodMonitor. */
export function podMonitorRelabelings(pm: Obj, ep: Obj): Relabel[] {
  const ns = pm.metadata.namespace as string;
  const relabelings: Relabel[] = [
    { source_labels: ['job'], target_label: '__tmp_prometheus_job_name' },
    { action: 'drop', source_labels: ['__meta_kubernetes_pod_phase'], regex: '(Failed|Succeeded)' },
    ...selectorRelabelings(pm),
  ];
  if (ep.port) relabelings.push({ action: 'keep', source_labels: ['__meta_kubernetes_pod_container_port_name'], regex: ep.port });
  relabelings.push(
    { source_labels: ['__meta_kubernetes_namespace'], target_label: 'namespace' },
    { source_labels: ['__meta_kubernetes_pod_container_name'], target_label: 'container' },
    { source_labels: ['__meta_kubernetes_pod_name'], target_label: 'pod' },
  );
  for (const l of (pm.spec.podTargetLabels ?? []) as string[]) {
    relabelings.push({ source_labels: [`__meta_kubernetes_pod_label_${sanitizeLabelName(l)}`], target_label: sanitizeLabelName(l), regex: '(.+)', replacement: '${1}' });
  }
  relabelings.push({ target_label: 'job', replacement: `${ns}/${pm.metadata.name}` });
  if (pm.spec.jobLabel) relabelings.push({ source_labels: [`__meta_kubernetes_pod_label_${sanitizeLabelName(pm.spec.jobLabel)}`], target_label: 'job', regex: '(.+)', replacement: '${1}' });
  if (ep.port) relabelings.push({ target_label: 'endpoint', replacement: ep.port });
  for (const rc of (ep.relabelings ?? []) as Obj[]) relabelings.push(translateRelabeling(rc));
  return relabelings;
}

/** The scrape job the Prometheus Operator generates for one endpoint of a PodMonitor (file_sd in place of kubernetes_sd). */
export function podMonitorScrapeConfig(pm: Obj, endpointIndex: number, targetsFile: string, scrapeInterval: string): Obj {
  const ep = pm.spec.podMetricsEndpoints[endpointIndex] as Obj;
  return {
    job_name: `podMonitor/${pm.metadata.namespace}/${pm.metadata.name}/${endpointIndex}`,
    honor_labels: ep.honorLabels ?? false,
    honor_timestamps: ep.honorTimestamps ?? true,
    scrape_interval: ep.interval ?? scrapeInterval,
    metrics_path: ep.path ?? '/metrics',
    scheme: ep.scheme ?? 'http',
    file_sd_configs: [{ files: [targetsFile], refresh_interval: '1s' }],
    relabel_configs: podMonitorRelabelings(pm, ep),
    ...(ep.metricRelabelings?.length ? { metric_relabel_configs: (ep.metricRelabelings as Obj[]).map(translateRelabeling) } : {}),
  };
}

type TargetGroup = { targets: string[]; labels: Record<string, string> };

/** The pod-level meta labels Kubernetes SD (role pod) sets. */
function podMetaLabels(pod: V1Pod, ip: string): Record<string, string> {
  const labels: Record<string, string> = {
    __meta_kubernetes_namespace: pod.metadata!.namespace!,
    __meta_kubernetes_pod_name: pod.metadata!.name!,
    __meta_kubernetes_pod_ip: ip,
    __meta_kubernetes_pod_uid: pod.metadata!.uid ?? '',
    __meta_kubernetes_pod_node_name: pod.spec?.nodeName ?? '',
    __meta_kubernetes_pod_host_ip: pod.status?.hostIP ?? '',
    __meta_kubernetes_pod_phase: pod.status?.phase ?? '',
    __meta_kubernetes_pod_ready: String(pod.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True'),
  };
  const add = (kind: 'label' | 'annotation', map: Record<string, string> | undefined) => {
    for (const [k, v] of Object.entries(map ?? {})) {
      labels[`__meta_kubernetes_pod_${kind}_${sanitizeLabelName(k)}`] = v;
      labels[`__meta_kubernetes_pod_${kind}present_${sanitizeLabelName(k)}`] = 'true';
    }
  };
  add('label', pod.metadata?.labels);
  add('annotation', pod.metadata?.annotations);
  return labels;
}

/** What Kubernetes SD (role pod) reports: one target per declared container port, with its meta labels. */
export function podTargets(pods: V1Pod[]): TargetGroup[] {
  const groups: TargetGroup[] = [];
  for (const pod of pods) {
    const ip = pod.status?.podIP;
    if (!ip) continue;
    const podLabels = podMetaLabels(pod, ip);
    for (const c of pod.spec?.containers ?? []) {
      for (const p of c.ports ?? []) {
        groups.push({
          targets: [`${ip}:${p.containerPort}`],
          labels: {
            ...podLabels,
            __meta_kubernetes_pod_container_init: 'false',
            __meta_kubernetes_pod_container_name: c.name,
            __meta_kubernetes_pod_container_image: c.image ?? '',
            __meta_kubernetes_pod_container_port_name: p.name ?? '',
            __meta_kubernetes_pod_container_port_number: String(p.containerPort),
            __meta_kubernetes_pod_container_port_protocol: p.protocol ?? 'TCP',
          },
        });
      }
    }
  }
  return groups;
}

/**
 * The operator's job from the chart's ServiceMonitor: its endpoint's path, honorLabels and
 * relabelings, after the labels the Prometheus Operator sets for a ServiceMonitor target
 * (namespace, service, pod, container, job = the Service's name, endpoint). There is no Service or
 * pod here (the operator is a local process standing in for the chart's Deployment, scaled to 0):
 * the target is static, with the meta labels the Service's endpoints would give, the pod's name
 * being `target.pod`.
 */
export function serviceMonitorScrapeConfig(sm: Obj, target: { address: string; service: string; pod: string }, scrapeInterval: string): Obj {
  const ep = sm.spec.endpoints[0] as Obj;
  const meta = {
    __meta_kubernetes_namespace: sm.metadata.namespace,
    __meta_kubernetes_service_name: target.service,
    __meta_kubernetes_endpoint_port_name: ep.port ?? '',
    __meta_kubernetes_endpoint_address_target_kind: 'Pod',
    __meta_kubernetes_endpoint_address_target_name: target.pod,
    __meta_kubernetes_pod_name: target.pod,
    __meta_kubernetes_pod_container_name: 'operator',
  };
  const byTarget = (kind: string, label: string) => ({
    source_labels: ['__meta_kubernetes_endpoint_address_target_kind', '__meta_kubernetes_endpoint_address_target_name'],
    separator: ';',
    regex: `${kind};(.*)`,
    replacement: '${1}',
    target_label: label,
  });
  return {
    job_name: `serviceMonitor/${sm.metadata.namespace}/${sm.metadata.name}/0`,
    honor_labels: ep.honorLabels ?? false,
    scrape_interval: scrapeInterval,
    metrics_path: ep.path ?? '/metrics',
    static_configs: [{ targets: [target.address], labels: meta }],
    relabel_configs: [
      { source_labels: ['job'], target_label: '__tmp_prometheus_job_name' },
      byTarget('Node', 'node'),
      byTarget('Pod', 'pod'),
      { source_labels: ['__meta_kubernetes_namespace'], target_label: 'namespace' },
      { source_labels: ['__meta_kubernetes_service_name'], target_label: 'service' },
      { source_labels: ['__meta_kubernetes_pod_name'], target_label: 'pod' },
      { source_labels: ['__meta_kubernetes_pod_container_name'], target_label: 'container' },
      { source_labels: ['__meta_kubernetes_service_name'], target_label: 'job', replacement: '${1}' },
      ...(ep.port ? [{ target_label: 'endpoint', replacement: ep.port }] : []),
      ...((ep.relabelings ?? []) as Obj[]).map(translateRelabeling),
    ],
  };
}

/** A PrometheusRule's `.spec` as a rule file, every `for:` replaced by `forOverride` (see the header). */
export function ruleFileFromPrometheusRule(rule: Obj, forOverride: string | undefined): string {
  const groups = (rule.spec.groups as Obj[]).map((g) => ({
    ...g,
    rules: (g.rules as Obj[]).map((r) => (forOverride !== undefined && r.for !== undefined ? { ...r, for: forOverride } : r)),
  }));
  return stringify({ groups }, { lineWidth: 0 });
}

export interface PrometheusOptions {
  /** The namespace whose PodMonitors and pods are followed. */
  namespace: string;
  /** The chart's rendered ServiceMonitor and the operator's address (127.0.0.1:<port>), if scraped. */
  /** `pod` names the operator process's stand-in pod (the dashboards' operator `pod` variable). */
  operator?: { serviceMonitor: Obj; address: string; service: string; pod: string };
  /** The chart's rendered PrometheusRule. */
  prometheusRule?: Obj;
  /** Replaces every `for:` of the rules (default '5s'); undefined keeps them. */
  forOverride?: string | undefined;
  /** Scrape and rule evaluation interval (default '2s'). */
  interval?: string;
}

export interface Sample {
  metric: Record<string, string>;
  value: [number, string];
}

export interface ActiveAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  state: 'pending' | 'firing';
  activeAt: string;
  value: string;
}

export interface ActiveTarget {
  labels: Record<string, string>;
  discoveredLabels: Record<string, string>;
  scrapePool: string;
  scrapeUrl: string;
  health: 'up' | 'down' | 'unknown';
  lastError: string;
}

export interface RunningPrometheus {
  url: string;
  pid: number;
  dir: string;
  logPath: string;
  /** The PodMonitors the config was last built from (by name). */
  podMonitors(): Obj[];
  /** An instant query; throws on an error answer. */
  query(expr: string): Promise<Sample[]>;
  /** Series names ever seen since the start (/api/v1/series over the whole run). */
  seriesCount(selector: string): Promise<number>;
  alerts(): Promise<ActiveAlert[]>;
  activeTargets(): Promise<ActiveTarget[]>;
  /** Rewrite the config and the targets now (it also happens every second). */
  sync(): Promise<void>;
  stop(): Promise<void>;
}

async function api<T>(url: string): Promise<T> {
  const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  const body = (await res.json()) as { status: string; data: T; error?: string };
  if (body.status !== 'success') throw new Error(`${url}: ${body.error ?? res.status}`);
  return body.data;
}

async function writeAtomically(path: string, content: string): Promise<void> {
  await writeFile(`${path}.tmp`, content);
  await rename(`${path}.tmp`, path);
}

/** Starts Prometheus on a free loopback port and keeps its config and targets in step with the namespace. */
export async function startPrometheus(opts: PrometheusOptions): Promise<RunningPrometheus> {
  const dir = await mkdtemp(join(tmpdir(), 'pgpilot-prometheus-'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const interval = opts.interval ?? '2s';
  const configPath = join(dir, 'prometheus.yml');
  const rulesPath = join(dir, 'rules.yml');
  const logPath = join(dir, 'prometheus.log');
  const startedAt = Date.now() / 1000;
  const kc = kubeConfig();
  const custom = kc.makeApiClient(CustomObjectsApi);
  const core = kc.makeApiClient(CoreV1Api);

  if (opts.prometheusRule) await writeFile(rulesPath, ruleFileFromPrometheusRule(opts.prometheusRule, 'forOverride' in opts ? opts.forOverride : '5s'));
  const podMonitors = new Map<string, Obj>();
  let lastConfig = '';
  const lastTargets = new Map<string, string>();

  const buildConfig = (): string => {
    const jobs: Obj[] = [];
    for (const pm of [...podMonitors.values()].sort((a, b) => String(a.metadata.name).localeCompare(b.metadata.name))) {
      (pm.spec.podMetricsEndpoints as Obj[]).forEach((_ep, i) => jobs.push(podMonitorScrapeConfig(pm, i, join(dir, `targets-${pm.metadata.name}-${i}.json`), interval)));
    }
    if (opts.operator) jobs.push(serviceMonitorScrapeConfig(opts.operator.serviceMonitor, opts.operator, interval));
    return stringify(
      {
        global: { scrape_interval: interval, scrape_timeout: interval, evaluation_interval: interval },
        ...(opts.prometheusRule ? { rule_files: [rulesPath] } : {}),
        scrape_configs: jobs,
      },
      { lineWidth: 0 },
    );
  };

  const readPodMonitors = async (): Promise<void> => {
    try {
      const list = (await custom.listNamespacedCustomObject({ group: 'monitoring.coreos.com', version: 'v1', plural: 'podmonitors', namespace: opts.namespace })) as { items: Obj[] };
      podMonitors.clear();
      for (const pm of list.items) podMonitors.set(pm.metadata.name, pm);
    } catch (err) {
      // The CRDs are absent (not yet installed, or deleted by another test): keep what was seen.
      if (apiStatus(err) !== 404) throw err;
    }
  };

  let child: ChildProcess | undefined;
  let exited = false;
  const sync = async (): Promise<void> => {
    await readPodMonitors();
    const pods = (await core.listNamespacedPod({ namespace: opts.namespace })).items;
    const groups = podTargets(pods);
    for (const pm of podMonitors.values()) {
      for (let i = 0; i < pm.spec.podMetricsEndpoints.length; i++) {
        const file = join(dir, `targets-${pm.metadata.name}-${i}.json`);
        const text = JSON.stringify(groups, null, 1);
        if (lastTargets.get(file) === text) continue;
        await writeAtomically(file, text);
        lastTargets.set(file, text);
      }
    }
    const config = buildConfig();
    if (config === lastConfig) return;
    await writeAtomically(configPath, config);
    const first = lastConfig === '';
    lastConfig = config;
    if (!first && child && !exited) {
      const res = await fetch(`${url}/-/reload`, { method: 'POST', signal: AbortSignal.timeout(10_000) });
      if (!res.ok) throw new Error(`prometheus reload: HTTP ${res.status} ${await res.text()}`);
    }
  };

  await sync();
  const log = createWriteStream(logPath);
  child = spawn(
    PROMETHEUS_BINARY,
    [
      `--config.file=${configPath}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--web.enable-lifecycle',
      '--storage.tsdb.retention.time=1d',
      // Debian's defaults point at /usr/share/prometheus; nothing here serves consoles.
      `--web.console.templates=${dir}`,
      `--web.console.libraries=${dir}`,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  child.stdout!.pipe(log);
  child.stderr!.pipe(log);
  child.on('exit', () => (exited = true));
  // A test process that dies without stop() takes its Prometheus along.
  const killOnExit = () => child?.kill('SIGKILL');
  process.once('exit', killOnExit);
  const exitedPromise = new Promise<void>((r) => child!.once('exit', () => r()));

  await waitFor(`prometheus (pid ${child.pid}) ready on ${url}; log ${logPath}`, async () => {
    if (exited) throw new Error(`prometheus exited at start; see ${logPath}`);
    const res = await fetch(`${url}/-/ready`).catch(() => undefined);
    return res?.status === 200;
  }, { timeoutMs: 60_000, intervalMs: 200 });

  let stopped = false;
  let lastSyncError = '';
  const loop = (async () => {
    while (!stopped) {
      try {
        await sync();
        lastSyncError = '';
      } catch (err) {
        const text = errorText(err);
        if (text !== lastSyncError) log.write(`[harness] sync failed: ${text}\n`);
        lastSyncError = text;
      }
      await sleep(1000);
    }
  })();

  return {
    url,
    pid: child.pid!,
    dir,
    logPath,
    podMonitors: () => [...podMonitors.values()],
    query: async (expr) => (await api<{ resultType: string; result: Sample[] }>(`${url}/api/v1/query?query=${encodeURIComponent(expr)}`)).result,
    seriesCount: async (selector) => {
      const q = new URLSearchParams({ 'match[]': selector, start: String(startedAt), end: String(Date.now() / 1000 + 60) });
      return (await api<unknown[]>(`${url}/api/v1/series?${q.toString()}`)).length;
    },
    alerts: async () => (await api<{ alerts: ActiveAlert[] }>(`${url}/api/v1/alerts`)).alerts,
    activeTargets: async () => (await api<{ activeTargets: ActiveTarget[] }>(`${url}/api/v1/targets?state=active`)).activeTargets,
    sync,
    stop: async () => {
      stopped = true;
      await loop;
      if (!exited) {
        child!.kill('SIGTERM');
        const timer = setTimeout(() => child!.kill('SIGKILL'), 10_000);
        await exitedPromise;
        clearTimeout(timer);
      }
      process.removeListener('exit', killOnExit);
      log.end();
      if (process.env.PGPILOT_E2E_KEEP_LOGS !== '1') await rm(join(dir, 'data'), { recursive: true, force: true });
    },
  };
}
