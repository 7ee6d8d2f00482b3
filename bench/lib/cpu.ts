// CPU time accounting for benchmarks (Linux /proc): per process, with or without the children it
// has waited for (a PostgreSQL archiver's archive_command runs are counted in its cutime/cstime),
// and machine-wide busy time (what other work on the machine took meanwhile).
import { readFileSync } from 'node:fs';

const TICK_MS = 10; // getconf CLK_TCK = 100 on Linux

/** CPU milliseconds of a process (utime+stime), plus its waited-for children's with `children`. */
export function processCpuMs(pid: number | undefined, children = false): number {
  if (!pid) return 0;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ').map(Number);
    // after "(comm) ": state=f[0], … utime=f[11], stime=f[12], cutime=f[13], cstime=f[14]
    return ((f[11] ?? 0) + (f[12] ?? 0) + (children ? (f[13] ?? 0) + (f[14] ?? 0) : 0)) * TICK_MS;
  } catch {
    return 0;
  }
}

/** CPU milliseconds of this Node process (all its threads: main and the zlib/crypto thread pool). */
export function selfCpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/** Machine-wide busy and total CPU milliseconds since boot (all cores). */
export function machineCpuMs(): { busy: number; total: number } {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  const idle = (f[3] ?? 0) + (f[4] ?? 0);
  return { busy: (total - idle) * TICK_MS, total: total * TICK_MS };
}

/** Snapshot of named counters; `since()` gives the deltas. */
export function cpuMeter(counters: Record<string, () => number>): () => Record<string, number> {
  const start = Object.fromEntries(Object.entries(counters).map(([k, f]) => [k, f()]));
  return () => Object.fromEntries(Object.entries(counters).map(([k, f]) => [k, f() - start[k]!]));
}
