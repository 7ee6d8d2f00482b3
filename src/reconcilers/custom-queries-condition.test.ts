import { describe, expect, it } from 'vitest';
import type { ClusterSpec } from '../api/cluster.js';
import type { CustomQueriesStatus, InstanceStatus } from '../instance/api-types.js';
import { seedCluster } from '../../test/support/cluster-fixtures.js';
import { conditionEvents, mergeConditions } from './conditions.js';
import { customQueriesCondition } from './custom-queries-condition.js';

const spec = (monitoring: ClusterSpec['monitoring']): ClusterSpec => seedCluster({ monitoring }).spec;
const withQueries = spec({ customQueries: [{ name: 'app-queries' }, { name: 'more', key: 'x.yaml' }] });
const agent = (cq: CustomQueriesStatus | null | undefined) => ({ customQueries: cq }) as InstanceStatus;
const report = (problems: CustomQueriesStatus['problems'], loaded = 2): CustomQueriesStatus => ({ files: ['app-queries/queries.yaml', 'more/x.yaml'], loaded, problems });

describe('MonitoringQueriesValid', () => {
  it('is True without custom queries, and with monitoring off', () => {
    for (const s of [spec(undefined), spec({ customQueries: [] }), spec({ enabled: false, customQueries: [{ name: 'q' }] })]) {
      expect(customQueriesCondition(s, [{ name: 'db-1', agent: agent(null) }])).toMatchObject({ type: 'MonitoringQueriesValid', status: 'True', reason: 'NoCustomQueries' });
    }
  });

  it('is Unknown while no agent has reported, True when they report no problem', () => {
    expect(customQueriesCondition(withQueries, [{ name: 'db-1' }, { name: 'db-2', agent: agent(undefined) }])).toMatchObject({ status: 'Unknown', reason: 'NoReport' });
    expect(customQueriesCondition(withQueries, [{ name: 'db-1', agent: agent(report([], 3)) }, { name: 'db-2' }])).toEqual({
      type: 'MonitoringQueriesValid',
      status: 'True',
      reason: 'CustomQueriesLoaded',
      message: '3 custom queries loaded from ConfigMap app-queries key queries.yaml, ConfigMap more key x.yaml',
    });
  });

  it('is False naming the ConfigMap, the key, the query and the error, with the instances when not all report it', () => {
    const bad = { query: 'custom:app_failing', source: 'app-queries/queries.yaml', error: 'relation "nope" does not exist' };
    const file = { query: 'custom:more/x.yaml', source: 'more/x.yaml', error: 'no such file: the ConfigMap or its key does not exist' };
    const c = customQueriesCondition(withQueries, [
      { name: 'db-1', agent: agent(report([bad, file])) },
      { name: 'db-2', agent: agent(report([file])) },
    ]);
    expect(c).toEqual({
      type: 'MonitoringQueriesValid',
      status: 'False',
      reason: 'CustomQueryProblems',
      message:
        'Custom exporter queries with problems (the other metrics are served): ConfigMap app-queries key queries.yaml: query app_failing: relation "nope" does not exist (on db-1); ConfigMap more key x.yaml: no such file: the ConfigMap or its key does not exist',
    });
    const long = customQueriesCondition(withQueries, [{ name: 'db-1', agent: agent(report(Array.from({ length: 50 }, (_, i) => ({ ...bad, query: `custom:q${i}` })))) }]);
    expect(long.message.length).toBeLessThanOrEqual(1024);
  });

  it('becomes a Warning Event when it turns False and a Normal one when it recovers', () => {
    const now = new Date('2026-12-05T00:00:00Z');
    const ok = mergeConditions([], [customQueriesCondition(withQueries, [{ name: 'db-1', agent: agent(report([])) }])], 1, now);
    const broken = mergeConditions(ok, [customQueriesCondition(withQueries, [{ name: 'db-1', agent: agent(report([{ query: 'custom:a', source: 'app-queries/queries.yaml', error: 'boom' }])) }])], 1, now);
    expect(conditionEvents(ok, broken)).toEqual([{ type: 'Warning', reason: 'CustomQueryProblems', message: 'Custom exporter queries with problems (the other metrics are served): ConfigMap app-queries key queries.yaml: query a: boom' }]);
    expect(conditionEvents(broken, ok)).toEqual([{ type: 'Normal', reason: 'CustomQueriesValid', message: 'The custom exporter queries reported earlier load and run again' }]);
  });
});
