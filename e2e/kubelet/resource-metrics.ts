// GET /metrics/resource of the process kubelet: the kubelet's resource metrics (Prometheus text,
// with millisecond timestamps), read from each container's cgroup v2 group — what metrics-server
// v0.8 scrapes for the metrics.k8s.io API (HPA CPU targets, `kubectl top`).
//
// metrics-server (pkg/scraper/client/resource/decode.go) reads exactly these series by name:
//   node_cpu_usage_seconds_total, node_memory_working_set_bytes          (no labels)
//   container_cpu_usage_seconds_total, container_memory_working_set_bytes,
//   container_start_time_seconds                                          {container,namespace,pod}
// A sample's own timestamp is the time of the reading (the scrape's time when absent); a node with
// zero CPU or memory is dropped, and so is a whole pod when one of its containers has zero CPU or
// memory. pod_* and resource_scrape_error are served as the real kubelet serves them (metrics-server
// ignores them).
//
// Where the numbers come from:
// - container CPU: `usage_usec` of cpu.stat in the container's group (cgroup v2 keeps it without
//   the cpu controller). A restart gets a new group: the counter starts again, with a new
//   container_start_time_seconds, as with a real runtime.
// - container memory: memory.current minus `inactive_file` of memory.stat (the kubelet's working
//   set) when the memory controller is enabled for the group; otherwise — the hybrid cgroup hosts
//   of CI keep the memory controller on cgroup v1, so the v2 groups have no memory.* files — the sum
//   of the group's processes' PSS (/proc/<pid>/smaps_rollup): memory the processes map, with
//   shared pages (PostgreSQL's shared buffers) divided among the processes that share them, so
//   they count once. Page cache is not in it. Said per container in a comment line.
// - node: /proc/stat (user+nice+system+irq+softirq+steal, USER_HZ 100) and /proc/meminfo
//   (MemTotal − MemAvailable): the whole machine, as a real kubelet reports its root cgroup.
// A container without a cgroup (no writable cgroup v2) has no CPU reading: it is left out and
// resource_scrape_error is 1.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

/** One running container as the metrics see it (from the pod worker). */
export interface MetricsContainer {
  namespace: string;
  pod: string;
  container: string;
  /** When this start of the container began (ms since the epoch). */
  startedAtMs: number;
  /** Its cgroup v2 group; undefined without cgroups. */
  cgroupDir?: string;
}

export interface ContainerSample {
  namespace: string;
  pod: string;
  container: string;
  startTimeSeconds: number;
  cpuSeconds: number;
  memoryBytes: number;
  /** Where memoryBytes came from: 'cgroup' (memory.current − inactive_file) or 'pss'. */
  memorySource: 'cgroup' | 'pss';
  timestampMs: number;
}

export interface ResourceSample {
  node?: { cpuSeconds: number; memoryBytes: number; timestampMs: number };
  containers: ContainerSample[];
  scrapeError: boolean;
}

/** USER_HZ of /proc/stat (100 on every Linux architecture Kubernetes runs on). */
const USER_HZ = 100;

/** `usage_usec` of a cgroup v2 cpu.stat, in seconds; undefined when absent. */
export function cpuSecondsFromCpuStat(text: string): number | undefined {
  const m = /^usage_usec (\d+)$/m.exec(text);
  return m ? Number(m[1]) / 1e6 : undefined;
}

/** The kubelet's working set: usage minus inactive file pages (never below 0). */
export function workingSetBytes(memoryCurrent: number, memoryStat: string): number {
  const m = /^inactive_file (\d+)$/m.exec(memoryStat);
  const inactive = m ? Number(m[1]) : 0;
  return Math.max(0, memoryCurrent - inactive);
}

/** `Pss:` of /proc/<pid>/smaps_rollup in bytes (0 when absent: a kernel thread, a process gone). */
export function pssBytes(smapsRollup: string): number {
  const m = /^Pss:\s+(\d+) kB$/m.exec(smapsRollup);
  return m ? Number(m[1]) * 1024 : 0;
}

/** Busy CPU seconds of the machine from the `cpu` line of /proc/stat. */
export function nodeCpuSeconds(procStat: string): number | undefined {
  const line = procStat.split('\n').find((l) => l.startsWith('cpu '));
  if (!line) return undefined;
  // user nice system idle iowait irq softirq steal guest guest_nice: guest time is already in user.
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  const busy = [0, 1, 2, 5, 6, 7].reduce((sum, i) => sum + (f[i] ?? 0), 0);
  return busy / USER_HZ;
}

/** MemTotal − MemAvailable of /proc/meminfo, in bytes. */
export function nodeMemoryBytes(meminfo: string): number | undefined {
  const kb = (key: string) => {
    const m = new RegExp(`^${key}:\\s+(\\d+) kB$`, 'm').exec(meminfo);
    return m ? Number(m[1]) * 1024 : undefined;
  };
  const total = kb('MemTotal');
  const available = kb('MemAvailable');
  return total !== undefined && available !== undefined ? total - available : undefined;
}

/** A label value in the text format: backslash, double quote and newline escaped. */
function labelValue(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** A number as the text format takes it (Go's ParseFloat reads JavaScript's shortest form). */
function num(v: number): string {
  return Number.isFinite(v) ? String(v) : v > 0 ? '+Inf' : v < 0 ? '-Inf' : 'NaN';
}

interface Family {
  name: string;
  type: 'counter' | 'gauge';
  help: string;
  samples: Array<{ labels: Record<string, string>; value: number; timestampMs?: number }>;
}

function renderFamily(f: Family): string {
  if (f.samples.length === 0) return '';
  const lines = [`# HELP ${f.name} [STABLE] ${f.help}`, `# TYPE ${f.name} ${f.type}`];
  for (const s of f.samples) {
    const keys = Object.keys(s.labels).sort();
    const labels = keys.length ? `{${keys.map((k) => `${k}="${labelValue(s.labels[k]!)}"`).join(',')}}` : '';
    lines.push(`${f.name}${labels} ${num(s.value)}${s.timestampMs !== undefined ? ` ${Math.round(s.timestampMs)}` : ''}`);
  }
  return `${lines.join('\n')}\n`;
}

/** The /metrics/resource body (pure): families in the real kubelet's order and wording. */
export function formatResourceMetrics(sample: ResourceSample): string {
  const containers = [...sample.containers].sort((a, b) => `${a.namespace}/${a.pod}/${a.container}`.localeCompare(`${b.namespace}/${b.pod}/${b.container}`));
  const cLabels = (c: ContainerSample) => ({ container: c.container, namespace: c.namespace, pod: c.pod });
  const pods = new Map<string, { namespace: string; pod: string; cpu: number; memory: number; timestampMs: number }>();
  for (const c of containers) {
    const key = `${c.namespace}/${c.pod}`;
    const p = pods.get(key) ?? { namespace: c.namespace, pod: c.pod, cpu: 0, memory: 0, timestampMs: 0 };
    p.cpu += c.cpuSeconds;
    p.memory += c.memoryBytes;
    p.timestampMs = Math.max(p.timestampMs, c.timestampMs);
    pods.set(key, p);
  }
  const pLabels = (p: { namespace: string; pod: string }) => ({ namespace: p.namespace, pod: p.pod });
  const node = sample.node;
  const families: Family[] = [
    { name: 'container_cpu_usage_seconds_total', type: 'counter', help: 'Cumulative cpu time consumed by the container in core-seconds', samples: containers.map((c) => ({ labels: cLabels(c), value: c.cpuSeconds, timestampMs: c.timestampMs })) },
    { name: 'container_memory_working_set_bytes', type: 'gauge', help: 'Current working set of the container in bytes', samples: containers.map((c) => ({ labels: cLabels(c), value: c.memoryBytes, timestampMs: c.timestampMs })) },
    { name: 'container_start_time_seconds', type: 'gauge', help: 'Start time of the container since unix epoch in seconds', samples: containers.map((c) => ({ labels: cLabels(c), value: c.startTimeSeconds, timestampMs: c.timestampMs })) },
    { name: 'node_cpu_usage_seconds_total', type: 'counter', help: 'Cumulative cpu time consumed by the node in core-seconds', samples: node ? [{ labels: {}, value: node.cpuSeconds, timestampMs: node.timestampMs }] : [] },
    { name: 'node_memory_working_set_bytes', type: 'gauge', help: 'Current working set of the node in bytes', samples: node ? [{ labels: {}, value: node.memoryBytes, timestampMs: node.timestampMs }] : [] },
    { name: 'pod_cpu_usage_seconds_total', type: 'counter', help: 'Cumulative cpu time consumed by the pod in core-seconds', samples: [...pods.values()].map((p) => ({ labels: pLabels(p), value: p.cpu, timestampMs: p.timestampMs })) },
    { name: 'pod_memory_working_set_bytes', type: 'gauge', help: 'Current working set of the pod in bytes', samples: [...pods.values()].map((p) => ({ labels: pLabels(p), value: p.memory, timestampMs: p.timestampMs })) },
    { name: 'resource_scrape_error', type: 'gauge', help: '1 if there was an error while getting container metrics, 0 otherwise', samples: [{ labels: {}, value: sample.scrapeError ? 1 : 0 }] },
  ];
  const pss = containers.filter((c) => c.memorySource === 'pss').map((c) => `${c.namespace}/${c.pod}/${c.container}`);
  const note = pss.length ? `# process kubelet: no cgroup v2 memory controller for ${pss.join(', ')}: working set = sum of the processes' PSS\n` : '';
  return note + families.map(renderFamily).join('');
}

const readText = (path: string) => readFile(path, 'utf8').catch(() => undefined);

/** Memory of a container's group: the working set when the memory controller is on, else the PSS of its processes. */
async function containerMemory(cgroupDir: string): Promise<{ bytes: number; source: 'cgroup' | 'pss' }> {
  const current = await readText(join(cgroupDir, 'memory.current'));
  if (current !== undefined) return { bytes: workingSetBytes(Number(current.trim()), (await readText(join(cgroupDir, 'memory.stat'))) ?? ''), source: 'cgroup' };
  const procs = ((await readText(join(cgroupDir, 'cgroup.procs'))) ?? '').split('\n').filter(Boolean);
  const each = await Promise.all(procs.map(async (pid) => pssBytes((await readText(`/proc/${pid}/smaps_rollup`)) ?? '')));
  return { bytes: each.reduce((a, b) => a + b, 0), source: 'pss' };
}

/** Reads every container's group and the machine's counters now. */
export async function collectResourceMetrics(containers: MetricsContainer[]): Promise<ResourceSample> {
  let scrapeError = false;
  const samples = await Promise.all(
    containers.map(async (c): Promise<ContainerSample | undefined> => {
      const cpu = c.cgroupDir ? cpuSecondsFromCpuStat((await readText(join(c.cgroupDir, 'cpu.stat'))) ?? '') : undefined;
      if (cpu === undefined || !c.cgroupDir) {
        scrapeError = true;
        return undefined;
      }
      const memory = await containerMemory(c.cgroupDir);
      const timestampMs = Date.now();
      return { namespace: c.namespace, pod: c.pod, container: c.container, startTimeSeconds: c.startedAtMs / 1000, cpuSeconds: cpu, memoryBytes: memory.bytes, memorySource: memory.source, timestampMs };
    }),
  );
  const [stat, meminfo] = await Promise.all([readText('/proc/stat'), readText('/proc/meminfo')]);
  const cpuSeconds = nodeCpuSeconds(stat ?? '');
  const memoryBytes = nodeMemoryBytes(meminfo ?? '');
  const node = cpuSeconds !== undefined && memoryBytes !== undefined ? { cpuSeconds, memoryBytes, timestampMs: Date.now() } : undefined;
  return { ...(node ? { node } : {}), containers: samples.filter((s): s is ContainerSample => !!s), scrapeError };
}
