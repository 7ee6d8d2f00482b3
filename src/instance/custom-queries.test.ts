// The custom query files as the agent reads them: re-read after POLL_MS when they change, a
// missing file as a problem, run failures reported until the next success or reload; and the
// exporter counting load problems at every scrape without PostgreSQL.
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../runtime/logger.js';
import { CustomQueryFiles, POLL_MS, reservedFamily, sourceOf } from './custom-queries.js';
import { MetricsExporter } from './exporter.js';

const log = createLogger('error', 'test');
const Q = (name: string, col = 'v') => `${name}:\n  query: SELECT 1 AS ${col}\n  metrics:\n    - ${col}: { usage: GAUGE, description: "d" }\n`;

describe('custom query files', () => {
  let dir = '';
  let a = '';
  let b = '';
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pgpilot-cq-'));
    await mkdir(join(dir, 'cm-a'));
    a = join(dir, 'cm-a', 'queries.yaml');
    b = join(dir, 'cm-b', 'queries.yaml');
    await writeFile(a, Q('one'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('names files <ConfigMap>/<key>; reserves the built-in PostgreSQL families and every pgpilot_ name', () => {
    expect(sourceOf('/etc/pgpilot/custom-queries/app.q/queries.yaml')).toBe('app.q/queries.yaml');
    expect(['pg_up', 'pg_stat_database_xact_commit', 'pgpilot_anything'].map(reservedFamily)).toEqual([true, true, true]);
    expect(['pg_mine', 'app_x'].map(reservedFamily)).toEqual([false, false]);
  });

  it('reads the files, reports a missing one, re-reads them only after POLL_MS, and forgets run errors on a change', async () => {
    let now = 0;
    const files = new CustomQueryFiles([a, b], log, () => now);
    const first = await files.current();
    expect(first.queries.map((q) => q.name)).toEqual(['one']);
    expect(first.problems).toEqual([{ query: 'custom:cm-b/queries.yaml', source: 'cm-b/queries.yaml', error: 'no such file: the ConfigMap or its key does not exist' }]);

    files.recordRun(first.queries[0]!, 'relation "x" does not exist');
    expect(await files.status()).toEqual({
      files: ['cm-a/queries.yaml', 'cm-b/queries.yaml'],
      loaded: 1,
      problems: [first.problems[0], { query: 'custom:one', source: 'cm-a/queries.yaml', error: 'relation "x" does not exist' }],
    });

    await writeFile(a, Q('one') + Q('two'));
    expect(await files.current()).toBe(first); // within POLL_MS
    now += POLL_MS;
    const same = await files.current();
    expect(same.queries.map((q) => q.name)).toEqual(['one', 'two']);
    expect(files.problems()).toEqual([first.problems[0]]); // the run error went with the reload
    files.recordRun(first.queries[0]!, 'late news of a replaced query'); // ignored
    expect(files.problems()).toHaveLength(1);

    now += POLL_MS;
    expect(await files.current()).toBe(same); // nothing changed: the same parse
    files.recordRun(same.queries[1]!, 'boom');
    files.recordRun(same.queries[1]!, null);
    expect(files.problems()).toHaveLength(1);
  });

  it('the exporter counts each load problem at every scrape and says which queries are valid, PostgreSQL down or not', async () => {
    await writeFile(a, `${Q('good')}bad:\n  metrics: []\n`);
    const customQueries = new CustomQueryFiles([a, b], log);
    const exporter = new MetricsExporter({
      source: {
        postgresAvailable: () => false,
        connectOptions: () => Promise.reject(new Error('must not connect')),
        facts: () => Promise.resolve({ role: 'primary', fenced: false, archiving: undefined, volumes: [] }),
        customQueries,
      },
      log,
    });
    await exporter.scrape();
    const text = await exporter.scrape();
    expect(text).toMatch(/^pg_up 0$/m);
    expect(text).toMatch(/^pgpilot_exporter_query_errors_total\{query="custom:good"\} 0$/m);
    expect(text).toMatch(/^pgpilot_exporter_query_errors_total\{query="custom:bad"\} 2$/m);
    expect(text).toMatch(/^pgpilot_exporter_query_errors_total\{query="custom:cm-b\/queries.yaml"\} 2$/m);
    expect(text).toMatch(/^pgpilot_exporter_custom_query_valid\{query="custom:good"\} 1$/m);
    expect(text).toMatch(/^pgpilot_exporter_custom_query_valid\{query="custom:bad"\} 0$/m);
    expect(text).toMatch(/^pgpilot_exporter_custom_query_valid\{query="custom:cm-b\/queries.yaml"\} 0$/m);
  });
});
