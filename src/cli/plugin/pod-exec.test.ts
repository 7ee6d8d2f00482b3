import { describe, expect, it } from 'vitest';
import { exitCodeOf } from './pod-exec.js';

describe('exec status', () => {
  it('Success is 0; NonZeroExitCode carries the code; anything else is unknown', () => {
    expect(exitCodeOf({ status: 'Success' })).toBe(0);
    expect(exitCodeOf({ status: 'Failure', reason: 'NonZeroExitCode', details: { causes: [{ reason: 'ExitCode', message: '3' }] } })).toBe(3);
    expect(exitCodeOf({ status: 'Failure', message: 'container not found ("postgres")' })).toBeNull();
  });
});
