// The pure parts of postgres supervision (postgres-process.ts): log levels and restart backoff.
import { describe, expect, it } from 'vitest';
import { restartDelayMs, serverLineLevel } from './postgres-process.js';

describe('postgres supervision helpers', () => {
  it('maps server log severities to log levels', () => {
    const lines = {
      '2024-01-01 00:00:00 UTC [12] LOG:  database system is ready': 'info',
      '... [12] WARNING:  x': 'warn',
      '... [12] postgres@app FATAL:  password authentication failed': 'error',
      '... [12] postgres@postgres FATAL:  the database system is starting up': 'info',
      '... [12] PANIC:  could not write': 'error',
      '... [12] DEBUG2:  x': 'debug',
      'continuation without a severity': 'info',
    };
    expect(Object.fromEntries(Object.keys(lines).map((l) => [l, serverLineLevel(l)]))).toEqual(lines);
  });
  it('backs off restarts exponentially up to 10 s', () => {
    expect([1, 2, 3, 4, 8, 20].map(restartDelayMs)).toEqual([100, 200, 400, 800, 10_000, 10_000]);
  });
});
