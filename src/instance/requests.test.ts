// Validation of API request bodies and the bearer token check (requests.ts).
import { describe, expect, it } from 'vitest';
import { bearerMatches, HttpError, parseBootstrapRequest, parseCorrectionRequest, parseFenceRequest, parseFollowRequest, parsePasswordRequest, parseRestartPermitRequest, parseWait } from './requests.js';

describe('API requests', () => {
  it('validates bootstrap and follow bodies', () => {
    expect(parseBootstrapRequest({ mode: 'initdb' })).toEqual({ mode: 'initdb' });
    expect(parseBootstrapRequest({ mode: 'clone', primary: { host: '10.0.0.1', port: 5432 } })).toEqual({ mode: 'clone', primary: { host: '10.0.0.1', port: 5432 } });
    expect(parseFollowRequest({ primary: { host: 'db-1.db.ns.svc', port: 5432 } }).primary.host).toBe('db-1.db.ns.svc');
    expect(parseBootstrapRequest({ mode: 'restore', extra: 1 })).toEqual({ mode: 'restore' });
    for (const bad of [null, [], { mode: 'recover' }, { mode: 'clone' }, { mode: 'clone', primary: { host: 'x y', port: 1 } }, { mode: 'clone', primary: { host: 'h', port: 0 } }, { mode: 'clone', primary: { host: 'h', port: '5432' } }]) {
      expect(() => parseBootstrapRequest(bad)).toThrow(HttpError);
    }
    expect(() => parseFollowRequest({ primary: { host: "h' or", port: 5432 } })).toThrow(/host/);
  });

  it('validates a restart permit request: whole seconds up to the maximum', () => {
    expect(parseRestartPermitRequest({ seconds: 120 }, 600)).toEqual({ seconds: 120 });
    for (const bad of [null, {}, { seconds: 0 }, { seconds: 601 }, { seconds: 1.5 }, { seconds: '120' }]) {
      expect(() => parseRestartPermitRequest(bad, 600)).toThrow(/seconds must be an integer from 1 to 600|body must be/);
    }
  });

  it('compares bearer tokens', () => {
    const token = 'abcdefghijklmnopqrstuvwxyz012345';
    expect(bearerMatches(`Bearer ${token}`, token)).toBe(true);
    expect(bearerMatches(`bearer ${token}`, token)).toBe(true);
    expect(bearerMatches(`Bearer ${token}x`, token)).toBe(false);
    expect(bearerMatches(`Basic ${token}`, token)).toBe(false);
    expect(bearerMatches(undefined, token)).toBe(false);
    expect(bearerMatches('Bearer ', '')).toBe(false);
  });
});

describe('operation requests', () => {
  it('parses ?wait= as whole milliseconds, and says what is allowed otherwise', () => {
    expect(parseWait('/v1/follow')).toBeUndefined();
    expect(parseWait('/v1/follow?wait=0')).toBe(0);
    expect(parseWait('/v1/promote?wait=5000')).toBe(5000);
    for (const bad of ['soon', '-1', '1.5', '3600001', '']) expect(() => parseWait(`/v1/fence?wait=${bad}`)).toThrow(/wait must be a whole number of milliseconds from 0 to 3600000/);
  });

  it('takes a fence stop budget only as whole seconds from 1 to 3600', () => {
    expect(parseFenceRequest({})).toEqual({});
    expect(parseFenceRequest({ stopSeconds: 60 })).toEqual({ stopSeconds: 60 });
    for (const bad of [0, 1.5, '60', 3601]) expect(() => parseFenceRequest({ stopSeconds: bad })).toThrow('stopSeconds must be an integer from 1 to 3600');
  });

  it('takes reclone in a follow request only as a boolean', () => {
    const primary = { host: '127.0.0.2', port: 5432 };
    expect(parseFollowRequest({ primary })).toEqual({ primary });
    expect(parseFollowRequest({ primary, reclone: true })).toEqual({ primary, reclone: true });
    expect(parseFollowRequest({ primary, reclone: false })).toEqual({ primary });
    expect(() => parseFollowRequest({ primary, reclone: 'yes' })).toThrow('reclone must be true or false');
  });

  it('takes a correction only with its action and well-formed fields', () => {
    expect(parseCorrectionRequest({ action: 'terminateIdleInTransaction', olderThanSeconds: 600 })).toEqual({ action: 'terminateIdleInTransaction', olderThanSeconds: 600 });
    expect(parseCorrectionRequest({ action: 'dropSlot', slot: 'stale_1', minRetainedBytes: 5 })).toEqual({ action: 'dropSlot', slot: 'stale_1', minRetainedBytes: 5 });
    expect(parseCorrectionRequest({ action: 'vacuumFreeze', databases: ['app', 'postgres'] })).toEqual({ action: 'vacuumFreeze', databases: ['app', 'postgres'] });
    expect(() => parseCorrectionRequest({ action: 'dropDatabase' })).toThrow(/action must be/);
    expect(() => parseCorrectionRequest({ action: 'terminateIdleInTransaction', olderThanSeconds: -1 })).toThrow(/olderThanSeconds/);
    expect(() => parseCorrectionRequest({ action: 'dropSlot', slot: "x'; DROP", minRetainedBytes: 0 })).toThrow(/slot must be/);
    expect(() => parseCorrectionRequest({ action: 'vacuumFreeze', databases: [] })).toThrow(/databases must be/);
  });
});

describe('parsePasswordRequest', () => {
  const digest = 'a'.repeat(64);
  it('accepts the three steps', () => {
    expect(parsePasswordRequest({ role: 'superuser', step: 'hold', digest, holdMs: 5000 }, 10_000)).toEqual({ role: 'superuser', step: 'hold', digest, holdMs: 5000 });
    expect(parsePasswordRequest({ role: 'app', step: 'apply', digest }, 10_000)).toEqual({ role: 'app', step: 'apply', digest });
    expect(parsePasswordRequest({ role: 'superuser', step: 'release', digest, lsn: '0/3000148' }, 10_000)).toEqual({ role: 'superuser', step: 'release', digest, lsn: '0/3000148' });
  });
  it('refuses what it does not know, naming the field', () => {
    expect(() => parsePasswordRequest({ role: 'replication', step: 'apply', digest }, 10_000)).toThrow(/role/);
    expect(() => parsePasswordRequest({ role: 'app', step: 'now', digest }, 10_000)).toThrow(/step/);
    expect(() => parsePasswordRequest({ role: 'app', step: 'apply', digest: 'secret' }, 10_000)).toThrow(/digest/);
    expect(() => parsePasswordRequest({ role: 'app', step: 'apply', digest, lsn: "0/1'; DROP" }, 10_000)).toThrow(/lsn/);
    expect(() => parsePasswordRequest({ role: 'superuser', step: 'hold', digest, holdMs: 60_000 }, 10_000)).toThrow(/holdMs/);
    expect(() => parsePasswordRequest([], 10_000)).toThrow(HttpError);
  });
});
