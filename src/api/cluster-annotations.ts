// The cluster annotations that ask the operator for something (constants.ts ANNOTATIONS): their
// parsers, shared by the operator (which acts on them) and the kubectl plugin (which writes them).
// Pure; a value that cannot be parsed says what it is and what is allowed.
import { ANNOTATIONS } from './constants.js';

export type Parsed<T> = { ok: true; value: T } | { ok: false; problem: string };

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/i;

/** An RFC 3339 time with a zone (what the restart annotations carry). */
export const isRfc3339 = (s: string): boolean => RFC3339.test(s) && !Number.isNaN(Date.parse(s));

function parseJson(raw: string): Parsed<unknown> {
  try {
    return { ok: true, value: JSON.parse(raw) as unknown };
  } catch {
    return { ok: false, problem: 'not valid JSON' };
  }
}

function problem(key: string, raw: string, why: string, allowed: string): { ok: false; problem: string } {
  const shown = raw.length > 200 ? `${raw.slice(0, 200)}…` : raw;
  return { ok: false, problem: `annotation ${key} is ${JSON.stringify(shown)}: ${why}; it must be ${allowed}` };
}

/**
 * ANNOTATIONS.fencedInstances: a JSON array of instance names of this cluster (absent or empty:
 * none). Duplicates count once; the order is the cluster's instance order.
 */
export function parseFencedInstances(raw: string | undefined, instances: readonly string[]): Parsed<string[]> {
  if (raw === undefined || raw.trim() === '') return { ok: true, value: [] };
  const allowed = `a JSON array of instance names of this cluster (${instances.join(', ') || 'none yet'}), e.g. ["${instances.at(-1) ?? 'db-2'}"]`;
  const json = parseJson(raw);
  if (!json.ok) return problem(ANNOTATIONS.fencedInstances, raw, json.problem, allowed);
  const v = json.value;
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) return problem(ANNOTATIONS.fencedInstances, raw, 'not an array of strings', allowed);
  const unknown = v.filter((x) => !instances.includes(x));
  if (unknown.length > 0) return problem(ANNOTATIONS.fencedInstances, raw, `${unknown.join(', ')} ${unknown.length > 1 ? 'are not instances' : 'is not an instance'} of this cluster`, allowed);
  return { ok: true, value: instances.filter((i) => v.includes(i)) };
}

/** ANNOTATIONS.restartInstances: a JSON object of instance name → RFC 3339 time (absent: none). */
export function parseRestartInstances(raw: string | undefined, instances: readonly string[]): Parsed<Record<string, string>> {
  if (raw === undefined || raw.trim() === '') return { ok: true, value: {} };
  const allowed = `a JSON object of instance names of this cluster (${instances.join(', ') || 'none yet'}) to RFC 3339 times, e.g. {"${instances.at(-1) ?? 'db-2'}": "2026-01-02T03:04:05Z"}`;
  const json = parseJson(raw);
  if (!json.ok) return problem(ANNOTATIONS.restartInstances, raw, json.problem, allowed);
  const v = json.value;
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return problem(ANNOTATIONS.restartInstances, raw, 'not a JSON object', allowed);
  const entries = Object.entries(v as Record<string, unknown>);
  const unknown = entries.filter(([k]) => !instances.includes(k)).map(([k]) => k);
  if (unknown.length > 0) return problem(ANNOTATIONS.restartInstances, raw, `${unknown.join(', ')} ${unknown.length > 1 ? 'are not instances' : 'is not an instance'} of this cluster`, allowed);
  const bad = entries.filter(([, t]) => typeof t !== 'string' || !isRfc3339(t)).map(([k]) => k);
  if (bad.length > 0) return problem(ANNOTATIONS.restartInstances, raw, `the value of ${bad.join(', ')} is not an RFC 3339 time`, allowed);
  return { ok: true, value: Object.fromEntries(entries) as Record<string, string> };
}
