// The samples of a Prometheus text exposition (the subset the agent's exporter writes), and
// lookups over them: what the agent e2e tests read from GET /metrics.
export interface Series {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export function parseExposition(text: string): Series[] {
  const out: Series[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!.replace(/\\(.)/g, '$1');
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

/** The series of a family whose labels include `labels`. */
export const findSeries = (s: Series[], name: string, labels: Record<string, string> = {}) =>
  s.filter((x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v));

/** The value of the one series of a family with `labels` (throws on none or several). */
export function oneValue(s: Series[], name: string, labels: Record<string, string> = {}): number {
  const found = findSeries(s, name, labels);
  if (found.length !== 1) throw new Error(`${found.length} series ${name}${JSON.stringify(labels)}`);
  return found[0]!.value;
}
