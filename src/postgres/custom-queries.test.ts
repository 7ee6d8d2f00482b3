import { describe, expect, it } from 'vitest';
import { customFamilies, customSamples, loadQueries, parseQueriesFile, type CustomQuery } from './custom-queries.js';

const GOOD = `
pg_slots:
  query: "SELECT slot_name, active, lag_bytes, note FROM x"
  master: true
  cache_seconds: 30
  metrics:
    - slot_name:
        usage: "LABEL"
        description: "Name of the slot"
    - active:
        usage: "GAUGE"
        description: "1 when active"
    - lag_bytes:
        usage: "COUNTER"
        description: "Bytes behind"
    - note:
        usage: "DISCARD"
        description: "ignored"
app_mode:
  query: "SELECT mode, 1 AS n FROM y"
  metrics:
    - mode:
        usage: MAPPEDMETRIC
        metric_mapping: { ro: 0, rw: 1 }
    - n:
        usage: duration
`;

describe('parseQueriesFile: postgres_exporter\'s queries.yaml', () => {
  it('reads queries, master, cache_seconds and every column usage', () => {
    const { queries, problems } = parseQueriesFile(GOOD, 'cm/queries.yaml');
    expect(problems).toEqual([]);
    expect(queries.map((q) => [q.name, q.master, q.cacheSeconds, q.source])).toEqual([
      ['pg_slots', true, 30, 'cm/queries.yaml'],
      ['app_mode', false, 0, 'cm/queries.yaml'],
    ]);
    expect(queries[0]!.columns.map((c) => `${c.name}:${c.usage}`)).toEqual(['slot_name:LABEL', 'active:GAUGE', 'lag_bytes:COUNTER', 'note:DISCARD']);
    expect(queries[1]!.columns).toEqual([
      { name: 'mode', usage: 'MAPPEDMETRIC', description: '', mapping: { ro: 0, rw: 1 } },
      { name: 'n', usage: 'DURATION', description: '' },
    ]);
    expect(customFamilies(queries)).toEqual({
      pg_slots_active: { type: 'gauge', help: '1 when active' },
      pg_slots_lag_bytes: { type: 'counter', help: 'Bytes behind' },
      app_mode_mode: { type: 'gauge', help: 'Column mode of the custom query app_mode (cm/queries.yaml).' },
      app_mode_n: { type: 'gauge', help: 'Column n of the custom query app_mode (cm/queries.yaml).' },
    });
  });

  it('an empty file has no queries and no problem', () => {
    expect(parseQueriesFile('', 's')).toEqual({ queries: [], problems: [] });
    expect(parseQueriesFile('# nothing yet\n', 's')).toEqual({ queries: [], problems: [] });
  });

  it('a file that is not valid YAML, or not a map, is one problem of the file', () => {
    const bad = parseQueriesFile('q:\n  query: "SELECT 1\n  metrics: [', 'cm/queries.yaml');
    expect(bad.queries).toEqual([]);
    expect(bad.problems).toHaveLength(1);
    expect(bad.problems[0]).toMatchObject({ query: 'custom:cm/queries.yaml', source: 'cm/queries.yaml' });
    expect(bad.problems[0]!.error).toMatch(/^not valid YAML: /);
    expect(parseQueriesFile('- a\n- b\n', 's').problems[0]!.error).toMatch(/not a map of query names/);
    expect(parseQueriesFile('q: {}\nq: {}\n', 's').problems[0]!.error).toMatch(/not valid YAML: .*unique/i);
    const bomb = ['a: &a ["x","x","x","x","x","x","x","x","x","x"]', ...Array.from({ length: 8 }, (_, i) => `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [${Array(10).fill(`*${String.fromCharCode(97 + i)}`).join(',')}]`)].join('\n');
    expect(parseQueriesFile(bomb, 's').problems[0]!.error).toMatch(/^not usable YAML: /);
  });

  it('a broken query is a problem of its own: the others of the file load', () => {
    const text = `
ok:
  query: SELECT 1 AS v
  metrics: [{ v: { usage: GAUGE } }]
twice:
  query: SELECT 1 AS v, 2 AS v
  metrics:
    - v: { usage: GAUGE }
    - v: { usage: COUNTER }
no_sql:
  metrics: [{ v: { usage: GAUGE } }]
no_metrics:
  query: SELECT 1
empty_metrics:
  query: SELECT 1
  metrics: []
only_labels:
  query: SELECT 'a' AS l
  metrics: [{ l: { usage: LABEL } }]
bad_usage:
  query: SELECT 1 AS v
  metrics: [{ v: { usage: HISTOGRAM } }]
bad_column:
  query: SELECT 1
  metrics: [{ "a-b": { usage: GAUGE } }]
"bad-name":
  query: SELECT 1 AS v
  metrics: [{ v: { usage: GAUGE } }]
bad_master:
  query: SELECT 1 AS v
  master: "yes"
  metrics: [{ v: { usage: GAUGE } }]
bad_cache:
  query: SELECT 1 AS v
  cache_seconds: -1
  metrics: [{ v: { usage: GAUGE } }]
two_keys:
  query: SELECT 1 AS v
  metrics: [{ v: { usage: GAUGE }, w: { usage: GAUGE } }]
`;
    const { queries, problems } = parseQueriesFile(text, 'cm/k');
    expect(queries.map((q) => q.name)).toEqual(['ok']);
    const byQuery = Object.fromEntries(problems.map((p) => [p.query, p.error]));
    expect(byQuery).toEqual({
      'custom:twice': 'names the column v twice',
      'custom:no_sql': 'has no query (the SQL, a string)',
      'custom:no_metrics': 'has no metrics (a list of columns)',
      'custom:empty_metrics': 'has no metrics (a list of columns)',
      'custom:only_labels': 'has no metric column (usage COUNTER, GAUGE, DURATION, MAPPEDMETRIC)',
      'custom:bad_usage': 'column v: usage must be one of LABEL, COUNTER, GAUGE, DISCARD, DURATION, MAPPEDMETRIC (got "HISTOGRAM")',
      'custom:bad_column': 'column name "a-b" is not a valid Prometheus label or metric name part',
      'custom:bad-name': 'the query name must be a valid metric name prefix ([a-zA-Z_][a-zA-Z0-9_]*)',
      'custom:bad_master': 'master must be true or false',
      'custom:bad_cache': 'cache_seconds must be a number of seconds ≥ 0',
      'custom:two_keys': 'metrics[0] must be a map of one column name to {usage, description}',
    });
  });
});

describe('loadQueries: files against each other and the built-in metrics', () => {
  const reserved = (f: string) => f === 'pg_up' || f.startsWith('pgpilot_');
  it('refuses a metric of a built-in family, a query name already loaded, a metric of another query; an unreadable file', () => {
    const a = `
pg:
  query: SELECT 1 AS up
  metrics: [{ up: { usage: GAUGE } }]
pgpilot_instance:
  query: SELECT 1 AS role
  metrics: [{ role: { usage: GAUGE } }]
mine:
  query: SELECT 1 AS v
  metrics: [{ v: { usage: GAUGE } }]
mine_v:
  query: SELECT 1 AS x
  metrics: [{ x: { usage: GAUGE } }]
`;
    const b = `
mine:
  query: SELECT 2 AS v
  metrics: [{ v: { usage: GAUGE } }]
mine_v_x_other:
  query: SELECT 2 AS w
  metrics: [{ w: { usage: GAUGE } }]
mine_v_x:
  query: SELECT 2 AS w
  metrics: [{ ok: { usage: LABEL } }, { w: { usage: GAUGE } }]
`;
    const { queries, problems } = loadQueries(
      [
        { source: 'one/queries.yaml', text: a },
        { source: 'two/queries.yaml', text: b },
        { source: 'three/queries.yaml', text: null, readError: 'no such file (the ConfigMap or its key does not exist)' },
      ],
      reserved,
    );
    expect(queries.map((q) => `${q.source}:${q.name}`)).toEqual(['one/queries.yaml:mine', 'one/queries.yaml:mine_v', 'two/queries.yaml:mine_v_x_other', 'two/queries.yaml:mine_v_x']);
    expect(problems).toEqual([
      { query: 'custom:pg', source: 'one/queries.yaml', error: 'metric pg_up collides with a built-in metric of the exporter' },
      { query: 'custom:pgpilot_instance', source: 'one/queries.yaml', error: 'metric pgpilot_instance_role collides with a built-in metric of the exporter' },
      { query: 'custom:mine', source: 'two/queries.yaml', error: 'a query of the same name comes first (in one/queries.yaml)' },
      { query: 'custom:three/queries.yaml', source: 'three/queries.yaml', error: 'no such file (the ConfigMap or its key does not exist)' },
    ]);
  });

  it('refuses a metric name another query already has', () => {
    const t = `
a:
  query: SELECT 1 AS b_c
  metrics: [{ b_c: { usage: GAUGE } }]
a_b:
  query: SELECT 1 AS c
  metrics: [{ c: { usage: GAUGE } }]
`;
    expect(loadQueries([{ source: 's', text: t }], () => false).problems).toEqual([{ query: 'custom:a_b', source: 's', error: 'metric a_b_c is also a metric of the query a' }]);
  });
});

describe('customSamples: rows → samples', () => {
  const q = parseQueriesFile(GOOD, 'cm/q').queries as [CustomQuery, CustomQuery];
  it('names each value column <query>_<column>, labels it with the LABEL columns, leaves DISCARD and NULL out', () => {
    const rows = [
      { slot_name: 's1', active: true, lag_bytes: '123456789012', note: 'x' },
      { slot_name: 's2', active: false, lag_bytes: null, note: null },
    ];
    expect(customSamples(q[0], rows)).toEqual([
      { name: 'pg_slots_active', labels: { slot_name: 's1' }, value: 1 },
      { name: 'pg_slots_lag_bytes', labels: { slot_name: 's1' }, value: 123456789012 },
      { name: 'pg_slots_active', labels: { slot_name: 's2' }, value: 0 },
    ]);
  });

  it('maps MAPPEDMETRIC text through metric_mapping; numbers, numeric text, timestamps become values; no labels without LABEL columns', () => {
    expect(customSamples(q[1], [{ mode: 'rw', n: 2.5 }])).toEqual([
      { name: 'app_mode_mode', value: 1 },
      { name: 'app_mode_n', value: 2.5 },
    ]);
    expect(customSamples(q[1], [{ mode: '7', n: new Date(1_000_000) }])).toEqual([
      { name: 'app_mode_mode', value: 7 },
      { name: 'app_mode_n', value: 1000 },
    ]);
    expect(customSamples(q[1], [])).toEqual([]);
  });

  it('fails the query on a missing column, a value that is not a number, or two rows with the same labels', () => {
    expect(() => customSamples(q[0], [{ slot_name: 's', active: 1 }])).toThrow('the result has no column lag_bytes');
    expect(() => customSamples(q[1], [{ mode: 'weird', n: 1 }])).toThrow('column mode: "weird" is not a number');
    expect(() => customSamples(q[1], [{ mode: 'rw', n: 1 }, { mode: 'ro', n: 2 }])).toThrow(/two rows have the same labels/);
    expect(() => customSamples(q[0], [{ slot_name: 'a', active: 1, lag_bytes: 1, note: 1 }, { slot_name: 'a', active: 1, lag_bytes: 2, note: 2 }])).toThrow(/two rows have the same labels \{"slot_name":"a"\}/);
  });
});
