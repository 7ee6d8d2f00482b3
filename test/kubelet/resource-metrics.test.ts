// The process kubelet's /metrics/resource body (pure): what metrics-server v0.8 parses.
import { describe, expect, it } from 'vitest';
import { cpuSecondsFromCpuStat, formatResourceMetrics, nodeCpuSeconds, nodeMemoryBytes, pssBytes, workingSetBytes, type ContainerSample } from '../../e2e/kubelet/resource-metrics.js';

const c = (over: Partial<ContainerSample> = {}): ContainerSample => ({
  namespace: 'ns',
  pod: 'db-1-0',
  container: 'postgres',
  startTimeSeconds: 1_700_000_000.5,
  cpuSeconds: 12.345678,
  memoryBytes: 52_428_800,
  memorySource: 'cgroup',
  timestampMs: 1_700_000_100_123,
  ...over,
});

describe('formatResourceMetrics', () => {
  it('serves the series metrics-server reads, with labels container/namespace/pod and millisecond timestamps', () => {
    const text = formatResourceMetrics({ node: { cpuSeconds: 1000.5, memoryBytes: 2e9, timestampMs: 1_700_000_100_200 }, containers: [c()], scrapeError: false });
    const lines = text.split('\n');
    expect(lines).toContain('container_cpu_usage_seconds_total{container="postgres",namespace="ns",pod="db-1-0"} 12.345678 1700000100123');
    expect(lines).toContain('container_memory_working_set_bytes{container="postgres",namespace="ns",pod="db-1-0"} 52428800 1700000100123');
    expect(lines).toContain('container_start_time_seconds{container="postgres",namespace="ns",pod="db-1-0"} 1700000000.5 1700000100123');
    expect(lines).toContain('node_cpu_usage_seconds_total 1000.5 1700000100200');
    expect(lines).toContain('node_memory_working_set_bytes 2000000000 1700000100200');
    expect(lines).toContain('pod_cpu_usage_seconds_total{namespace="ns",pod="db-1-0"} 12.345678 1700000100123');
    expect(lines).toContain('resource_scrape_error 0');
    expect(lines).toContain('# TYPE container_cpu_usage_seconds_total counter');
    expect(lines).toContain('# TYPE container_memory_working_set_bytes gauge');
    expect(text.endsWith('\n')).toBe(true);
  });

  it('sums a pod\'s containers into pod_*, orders series stably, and escapes label values', () => {
    const text = formatResourceMetrics({
      containers: [c({ container: 'b', cpuSeconds: 1, memoryBytes: 10 }), c({ container: 'a', cpuSeconds: 2, memoryBytes: 20, timestampMs: 5 }), c({ pod: 'we"ird\\', container: 'x' })],
      scrapeError: true,
    });
    expect(text).toMatch(/pod_cpu_usage_seconds_total\{namespace="ns",pod="db-1-0"\} 3 /);
    expect(text).toMatch(/pod_memory_working_set_bytes\{namespace="ns",pod="db-1-0"\} 30 /);
    expect(text).toContain('pod="we\\"ird\\\\"');
    const cpu = text.split('\n').filter((l) => l.startsWith('container_cpu_usage_seconds_total{'));
    expect(cpu.map((l) => /container="(\w+)"/.exec(l)?.[1])).toEqual(['a', 'b', 'x']);
    // No node reading: no node series at all (metrics-server then skips the node, not the pods).
    expect(text).not.toContain('node_cpu_usage_seconds_total');
    expect(text).toContain('resource_scrape_error 1');
  });

  it('says in a comment which containers\' memory is PSS (no memory controller)', () => {
    const text = formatResourceMetrics({ containers: [c({ memorySource: 'pss' })], scrapeError: false });
    expect(text.split('\n')[0]).toBe("# process kubelet: no cgroup v2 memory controller for ns/db-1-0/postgres: working set = sum of the processes' PSS");
    expect(formatResourceMetrics({ containers: [c()], scrapeError: false })).not.toContain('PSS');
  });
});

describe('the readings', () => {
  it('cpu.stat usage_usec → seconds', () => {
    expect(cpuSecondsFromCpuStat('usage_usec 6908150\nuser_usec 4105883\nsystem_usec 2802267\n')).toBeCloseTo(6.90815, 6);
    expect(cpuSecondsFromCpuStat('')).toBeUndefined();
  });

  it('working set = memory.current − inactive_file, never negative', () => {
    expect(workingSetBytes(1000, 'anon 600\nfile 400\nactive_file 100\ninactive_file 300\n')).toBe(700);
    expect(workingSetBytes(100, 'inactive_file 300\n')).toBe(0);
    expect(workingSetBytes(100, '')).toBe(100);
  });

  it('PSS from smaps_rollup, node CPU from /proc/stat, node memory from /proc/meminfo', () => {
    expect(pssBytes('556b-7ffc ---p 00000000 00:00 0 [rollup]\nRss:  1772 kB\nPss:  229 kB\nPss_Dirty: 116 kB\n')).toBe(229 * 1024);
    expect(pssBytes('')).toBe(0);
    // user nice system idle iowait irq softirq steal: idle and iowait are not busy.
    expect(nodeCpuSeconds('cpu  100 10 50 9999 77 5 3 2 0 0\ncpu0 1 2 3 4\n')).toBeCloseTo(1.7, 6);
    expect(nodeMemoryBytes('MemTotal: 1000 kB\nMemFree: 100 kB\nMemAvailable: 400 kB\n')).toBe(600 * 1024);
    expect(nodeMemoryBytes('MemTotal: 1000 kB\n')).toBeUndefined();
  });
});
