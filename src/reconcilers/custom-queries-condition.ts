// MonitoringQueriesValid (owned by `monitoring`): what the agents report about the cluster's own
// exporter queries (spec.monitoring.customQueries; InstanceStatus.customQueries). False names the
// ConfigMap, the key, the query and the error, with the instances that report it; its
// transitions become Events (conditions.ts, conditionEvents).
import type { ClusterSpec } from '../api/cluster.js';
import type { InstanceStatus } from '../instance/api-types.js';
import type { ConditionInput } from './conditions.js';

/** Longest message: a condition is read by people in `kubectl describe`. */
const MAX_MESSAGE = 1024;

/** `<ConfigMap>/<key>` as a person reads it. */
const where = (source: string): string => {
  const i = source.lastIndexOf('/');
  return i < 0 ? source : `ConfigMap ${source.slice(0, i)} key ${source.slice(i + 1)}`;
};

/** `custom:<name>`: the query, unless it names the whole file. */
const what = (query: string, source: string): string => (query === `custom:${source}` ? '' : `query ${query.replace(/^custom:/, '')}: `);

export function customQueriesCondition(spec: ClusterSpec, instances: { name: string; agent?: InstanceStatus }[]): ConditionInput {
  const type = 'MonitoringQueriesValid' as const;
  const refs = spec.monitoring?.enabled === false ? [] : (spec.monitoring?.customQueries ?? []);
  if (refs.length === 0) return { type, status: 'True', reason: 'NoCustomQueries', message: 'No custom exporter queries (spec.monitoring.customQueries)' };
  const reports = instances.flatMap((i) => (i.agent?.customQueries ? [{ name: i.name, cq: i.agent.customQueries }] : []));
  if (reports.length === 0) return { type, status: 'Unknown', reason: 'NoReport', message: 'No instance reported its custom queries yet' };
  const problems = new Map<string, string[]>();
  for (const r of reports) {
    for (const p of r.cq.problems) {
      const text = `${where(p.source)}: ${what(p.query, p.source)}${p.error}`;
      problems.set(text, [...(problems.get(text) ?? []), r.name]);
    }
  }
  if (problems.size === 0) {
    const loaded = Math.max(...reports.map((r) => r.cq.loaded));
    return { type, status: 'True', reason: 'CustomQueriesLoaded', message: `${loaded} custom quer${loaded === 1 ? 'y' : 'ies'} loaded from ${refs.map((r) => where(`${r.name}/${r.key ?? 'queries.yaml'}`)).join(', ')}` };
  }
  const all = reports.length;
  const lines = [...problems].map(([text, on]) => (on.length === all ? text : `${text} (on ${on.join(', ')})`));
  let message = `Custom exporter queries with problems (the other metrics are served): ${lines.join('; ')}`;
  if (message.length > MAX_MESSAGE) message = `${message.slice(0, MAX_MESSAGE - 1)}…`;
  return { type, status: 'False', reason: 'CustomQueryProblems', message };
}
