import { describe, expect, it } from 'vitest';
import { reasonFromLog } from './major-upgrade.js';

describe('reasonFromLog', () => {
  it('takes the msg of the last error line a Job printed', () => {
    const log = ['{"level":"info","msg":"running pg_upgrade"}', '{"level":"error","msg":"pg_upgrade --check failed at \\"Checking for reg* data types\\": public.t.f"}'].join('\n');
    expect(reasonFromLog(log)).toBe('pg_upgrade --check failed at "Checking for reg* data types": public.t.f');
  });
  it('says what a killed container was doing when it had no error to print', () => {
    const log = '{"level":"info","tool":"pg_upgrade","msg":"Checking cluster versions                 ok"}';
    expect(reasonFromLog(log, { exitCode: 137, reason: 'Error' })).toBe('the container ended with exit code 137 (Error) without saying why; its last line: Checking cluster versions ok');
    expect(reasonFromLog('')).toBeUndefined();
  });
});
