import { describe, expect, it } from 'vitest';
import { isRfc3339, parseFencedInstances, parseRestartInstances } from './cluster-annotations.js';

const NAMES = ['db-1', 'db-2'];

describe('cluster annotations', () => {
  it('fenced-instances: a JSON array of instance names, in instance order, duplicates once', () => {
    expect(parseFencedInstances(undefined, NAMES)).toEqual({ ok: true, value: [] });
    expect(parseFencedInstances(' ', NAMES)).toEqual({ ok: true, value: [] });
    expect(parseFencedInstances('["db-2","db-1","db-2"]', NAMES)).toEqual({ ok: true, value: ['db-1', 'db-2'] });
    const bad = parseFencedInstances('["db-3","db-4"]', NAMES);
    expect(bad).toEqual({ ok: false, problem: 'annotation postgres.pgpilot.io/fenced-instances is "[\\"db-3\\",\\"db-4\\"]": db-3, db-4 are not instances of this cluster; it must be a JSON array of instance names of this cluster (db-1, db-2), e.g. ["db-2"]' });
    expect(parseFencedInstances('"db-1"', NAMES)).toMatchObject({ ok: false, problem: expect.stringContaining('not an array of strings') as string });
  });

  it('restart-instances: a JSON object of instance names to RFC 3339 times', () => {
    expect(parseRestartInstances(undefined, NAMES)).toEqual({ ok: true, value: {} });
    expect(parseRestartInstances('{"db-2":"2026-01-02T03:04:05.123Z"}', NAMES)).toEqual({ ok: true, value: { 'db-2': '2026-01-02T03:04:05.123Z' } });
    expect(parseRestartInstances('["db-2"]', NAMES)).toMatchObject({ ok: false, problem: expect.stringContaining('not a JSON object') as string });
    expect(parseRestartInstances('{"db-2":"yesterday"}', NAMES)).toMatchObject({ ok: false, problem: expect.stringContaining('the value of db-2 is not an RFC 3339 time') as string });
    expect(parseRestartInstances('{"db-2":"2026-01-02T03:04:05Z","db-7":"2026-01-02T03:04:05Z"}', NAMES)).toMatchObject({
      ok: false,
      problem: expect.stringContaining('db-7 is not an instance of this cluster; it must be a JSON object of instance names of this cluster (db-1, db-2) to RFC 3339 times') as string,
    });
    expect(parseRestartInstances('{', NAMES)).toMatchObject({ ok: false, problem: expect.stringContaining('not valid JSON') as string });
  });

  it('RFC 3339 times need a zone', () => {
    expect(isRfc3339('2026-01-02T03:04:05Z')).toBe(true);
    expect(isRfc3339('2026-01-02T03:04:05+02:00')).toBe(true);
    expect(isRfc3339('2026-01-02T03:04:05')).toBe(false);
    expect(isRfc3339('2026-13-02T03:04:05Z')).toBe(false);
  });
});
