// The messages of a restore bootstrap (restore-bootstrap.ts): targets, and why recovery stopped.
import { describe, expect, it } from 'vitest';
import { describeTarget, lastTransactionTime, recoveryFailureMessage, restoredSegment } from './restore-bootstrap.js';

describe('restore: messages', () => {
  const window = { first: '2026-11-25T02:00:05.000Z', last: '2026-11-25T02:10:00.000Z', firstLsn: '0/5000100', lastLsn: '0/9000000' };
  const base = { target: { time: '2026-11-25T02:09:00Z' }, window, location: 's3://backups/pgpilot/ns/old', fetcherError: null, serverLines: [] as string[], lastExit: 'exit code 1' };

  it('names targets', () => {
    expect(describeTarget({})).toBe('the end of the archive');
    expect(describeTarget({ time: 't' })).toBe('time t');
    expect(describeTarget({ lsn: '0/1' })).toBe('LSN 0/1');
    expect(describeTarget({ xid: '7' })).toBe('transaction 7');
    expect(describeTarget({ name: 'x' })).toBe('restore point "x"');
    expect(describeTarget({ immediate: true })).toMatch(/^immediate/);
  });

  it('says where the archive ends when the target was not reached', () => {
    const m = recoveryFailureMessage({
      ...base,
      serverLines: [
        '2026-11-25 02:11:00.000 UTC [42] LOG:  last completed transaction was at log time 2026-11-25 02:08:00+00',
        '2026-11-25 02:11:00.000 UTC [42] FATAL:  recovery ended before configured recovery target was reached',
        '2026-11-25 02:11:00.000 UTC [41] LOG:  startup process (PID 42) exited with exit code 1',
      ],
    });
    expect(m).toBe(
      'recovery ended before the target time 2026-11-25T02:09:00Z was reached: the last transaction in the archive was committed at 2026-11-25 02:08:00+00; ' +
        "the archive's WAL ends at 2026-11-25T02:10:00.000Z (LSN 0/9000000); " +
        'recoverable window 2026-11-25T02:00:05.000Z … 2026-11-25T02:10:00.000Z (LSN 0/5000100 … 0/9000000) of s3://backups/pgpilot/ns/old',
    );
  });

  it('reads restored segments and the last commit from the server log', () => {
    expect(restoredSegment('2026-11-25 05:53:18.221 GMT [5814] LOG:  restored log file "000000010000000000000005" from archive ')).toBe('000000010000000000000005');
    expect(restoredSegment('LOG:  restored log file "00000002.history" from archive')).toBeNull();
    expect(lastTransactionTime('2026-11-25 05:53:18.291 GMT [5814] LOG:  last completed transaction was at log time 2026-11-25 05:53:12.770348+00 ')).toBe('2026-11-25 05:53:12.770348+00');
    expect(lastTransactionTime('LOG:  redo done at 0/5000338')).toBeNull();
  });

  it('names the corrupt object the fetcher refused, before anything postgres said', () => {
    const err = 'WAL 000000010000000000000007: object s3://backups/pgpilot/ns/old/wal/0000000100000000/000000010000000000000007.gz is corrupt: sha256 expected aa, actual bb';
    const m = recoveryFailureMessage({ ...base, fetcherError: err, serverLines: ['x FATAL:  could not restore file "000000010000000000000007" from archive: child process exited with exit code 127'] });
    expect(m).toBe(`recovery stopped: ${err}`);
  });

  it('explains missing WAL of the base backup, and passes on any other FATAL', () => {
    expect(recoveryFailureMessage({ ...base, serverLines: ['x FATAL:  WAL ends before end of online backup'] })).toMatch(/^recovery ended before the base backup became consistent: the archive lacks WAL/);
    expect(recoveryFailureMessage({ ...base, window: null, serverLines: ['x PANIC:  could not locate a valid checkpoint record'] })).toBe(
      'postgres exited during recovery (exit code 1): could not locate a valid checkpoint record',
    );
  });
});
