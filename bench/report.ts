// Shared by benchmark suites: a table for people, then one JSON line for machines (always last).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export function printReport(suite: string, metrics: Record<string, number | boolean>, rows: Array<[string, string]>): void {
  const width = Math.max(...rows.map(([k]) => k.length));
  console.log(`\n${suite}`);
  console.log('-'.repeat(width + 40));
  for (const [k, v] of rows) console.log(`${k.padEnd(width)}  ${v}`);
  console.log('-'.repeat(width + 40));
  const line = JSON.stringify({ suite, metrics });
  const dir = join(import.meta.dirname, '..', 'bench-results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `${suite}.json`), line + '\n');
  console.log(line);
}

/** Run task(0..n-1) with at most `limit` in flight. */
export async function runLimited(n: number, limit: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < n) await task(next++);
  };
  await Promise.all(Array.from({ length: Math.min(limit, n) }, worker));
}

/** Prometheus histogram_quantile over a histogram's cumulative buckets in exposition text. */
export function histogramQuantile(text: string, name: string, q: number): number {
  const buckets: Array<[number, number]> = [];
  for (const m of text.matchAll(new RegExp(`^${name}_bucket\\{le="([^"]+)"\\} ([0-9.e+-]+)$`, 'gm'))) {
    buckets.push([m[1] === '+Inf' ? Infinity : Number(m[1]), Number(m[2])]);
  }
  buckets.sort((a, b) => a[0] - b[0]);
  const total = buckets.at(-1)?.[1] ?? 0;
  if (total === 0) return NaN;
  const rank = q * total;
  let prevLe = 0;
  let prevCount = 0;
  for (const [le, count] of buckets) {
    if (count >= rank) {
      if (le === Infinity) return prevLe;
      return prevLe + ((le - prevLe) * (rank - prevCount)) / Math.max(count - prevCount, 1e-9);
    }
    prevLe = le;
    prevCount = count;
  }
  return prevLe;
}
