// The pure parts of postgres supervision (postgres-process.ts): log levels and restart backoff.
import { describe, expect, it } from 'vitest';
import { restartDelayMs, serverLineLevel } from './postgres-process.js';

describe('postgres supervision helpers', () => {
  it('maps server log severities to log levels', () => {
    expect(serverLineLevel('2024-01-01 00:00:00 UTC [12] LOG:  database system is ready')).toBe('info');
    expect(serverLineLevel('... [12] WARNING:  x')).toBe('warn');
    expect(serverLineLevel('... [12] postgres@app FATAL:  password authentication failed')).toBe('error');
    expect(serverLineLevel('... [12] postgres@postgres FATAL:  the database system is starting up')).toBe('info');
    expect(serverLineLevel('... [12] PANIC:  could not write')).toBe('error');
    expect(serverLineLevel('... [12] DEBUG2:  x')).toBe('debug');
    expect(serverLineLevel('continuation without a severity')).toBe('info');
  });
  it('backs off restarts exponentially up to 10 s', () => {
    expect([1, 2, 3, 4, 8, 20].map(restartDelayMs)).toEqual([100, 200, 400, 800, 10_000, 10_000]);
  });
});
