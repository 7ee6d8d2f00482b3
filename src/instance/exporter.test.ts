// The exporter without PostgreSQL: the agent's own samples, the text format, pg_up 0 at once
// when the agent knows postgres is not running, one collection for concurrent scrapes.
import { describe, expect, it } from 'vitest';
import { createLogger } from '../runtime/logger.js';
import { agentSamples, type AgentFacts, MetricsExporter, samplesRegistry, type ExporterSource } from './exporter.js';

const log = createLogger('error', 'test');
const archiving = (o: Partial<NonNullable<AgentFacts['archiving']>> = {}): NonNullable<AgentFacts['archiving']> => ({
  lastArchivedWal: null,
  lastArchivedTime: null,
  lastFailedWal: null,
  lastFailureTime: null,
  lastFailure: null,
  backlogSegments: 0,
  inFlight: 0,
  archivedCount: 0,
  ...o,
});
const facts = (o: Partial<AgentFacts> = {}): AgentFacts => ({ role: 'replica', fenced: false, archiving: undefined, volumes: [], nowMs: Date.parse('2026-12-04T12:00:00Z'), ...o });

describe('the agent\'s own samples', () => {
  it('one role series per role, 1 for the current one', () => {
    expect(agentSamples(facts()).filter((s) => s.name === 'pgpilot_instance_role')).toEqual([
      { name: 'pgpilot_instance_role', labels: { role: 'primary' }, value: 0 },
      { name: 'pgpilot_instance_role', labels: { role: 'replica' }, value: 1 },
    ]);
    expect(agentSamples(facts({ role: 'none' })).filter((s) => s.name === 'pgpilot_instance_role').map((s) => s.value)).toEqual([0, 0]);
  });

  it('archiving series only with archiving; failing while the last failure is newer than the last success', () => {
    expect(agentSamples(facts()).some((s) => s.name.includes('archiv'))).toBe(false);
    const ok = agentSamples(facts({ archiving: archiving({ backlogSegments: 3, lastArchivedTime: '2026-12-04T11:59:00Z', lastFailureTime: '2026-12-04T11:58:00Z' }) }));
    expect(ok.find((s) => s.name === 'pgpilot_instance_archiver_backlog_segments')?.value).toBe(3);
    expect(ok.find((s) => s.name === 'pgpilot_instance_last_archived_wal_age_seconds')?.value).toBe(60);
    expect(ok.find((s) => s.name === 'pgpilot_instance_archiving_failing')?.value).toBe(0);
    const failing = agentSamples(facts({ archiving: archiving({ lastFailureTime: '2026-12-04T11:59:30Z' }) }));
    expect(failing.find((s) => s.name === 'pgpilot_instance_archiving_failing')?.value).toBe(1);
    expect(failing.some((s) => s.name === 'pgpilot_instance_last_archived_wal_age_seconds')).toBe(false);
  });

  it('volumes by name', () => {
    const s = agentSamples(facts({ volumes: [{ volume: 'data', capacityBytes: 100, usedBytes: 40 }, { volume: 'wal', capacityBytes: 50, usedBytes: 5 }] }));
    expect(s.filter((x) => x.name.startsWith('pgpilot_instance_volume'))).toHaveLength(4);
  });
});

describe('the text format', () => {
  it('prints HELP and TYPE of the families with samples only, and refuses an unknown family', async () => {
    const text = await samplesRegistry([{ name: 'pg_up', value: 1 }, { name: 'pg_stat_database_xact_commit', labels: { datname: 'a"b' }, value: 5 }]).metrics();
    expect(text).toContain('# TYPE pg_up gauge\npg_up 1');
    expect(text).toContain('# TYPE pg_stat_database_xact_commit untyped\npg_stat_database_xact_commit{datname="a\\"b"} 5');
    expect(text).not.toContain('pg_locks_count');
    expect(() => samplesRegistry([{ name: 'nope', value: 1 }])).toThrow(/no metric family nope/);
  });
});

describe('a scrape', () => {
  const source = (o: Partial<ExporterSource> & { calls?: { facts: number } } = {}): ExporterSource => ({
    postgresAvailable: () => false,
    connectOptions: () => Promise.reject(new Error('must not connect')),
    facts: () => {
      if (o.calls) o.calls.facts++;
      return new Promise((r) => setTimeout(() => r({ role: 'primary', fenced: true, archiving: undefined, volumes: [] }), 20));
    },
    ...o,
  });

  it('says pg_up 0 without connecting when postgres is not running, with the agent\'s metrics', async () => {
    const exporter = new MetricsExporter({ source: source(), log });
    const text = await exporter.scrape();
    expect(text).toMatch(/^pg_up 0$/m);
    expect(text).toMatch(/^pgpilot_instance_fenced 1$/m);
    expect(text).toMatch(/^pgpilot_instance_role\{role="primary"\} 1$/m);
    expect(text).toMatch(/^pgpilot_exporter_query_errors_total\{query="instance"\} 0$/m);
    expect(text).toMatch(/^pgpilot_exporter_scrape_duration_seconds /m);
    expect(exporter.contentType).toMatch(/^text\/plain; version=0\.0\.4/);
  });

  it('shares one collection between concurrent scrapes', async () => {
    const calls = { facts: 0 };
    const exporter = new MetricsExporter({ source: source({ calls }), log });
    const [a, b] = await Promise.all([exporter.scrape(), exporter.scrape()]);
    expect(a).toBe(b);
    expect(calls.facts).toBe(1);
    await exporter.scrape();
    expect(calls.facts).toBe(2);
  });

  it('says pg_up 0 when the server refuses the connection', async () => {
    const exporter = new MetricsExporter({
      source: source({ postgresAvailable: () => true, connectOptions: () => Promise.resolve({ host: '127.0.0.1', port: 1, credentials: { username: 'x', password: 'y' } }) }),
      log,
    });
    expect(await exporter.scrape()).toMatch(/^pg_up 0$/m);
  });
});
