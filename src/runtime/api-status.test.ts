import { ApiException } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { apiStatus, ignoreNotFound } from './api-status.js';

const apiError = (code: number) => new ApiException(code, `HTTP ${code}`, '{}', {});

describe('apiStatus', () => {
  it('the HTTP status of an ApiException, undefined for other errors', () => {
    expect(apiStatus(apiError(409))).toBe(409);
    expect(apiStatus(new Error('socket hang up'))).toBeUndefined();
    expect(apiStatus('404')).toBeUndefined();
  });
});

describe('ignoreNotFound', () => {
  it("the call's result", async () => {
    await expect(ignoreNotFound(Promise.resolve({ name: 'a' }))).resolves.toEqual({ name: 'a' });
  });

  it('undefined for a 404', async () => {
    await expect(ignoreNotFound(Promise.reject(apiError(404)))).resolves.toBeUndefined();
  });

  it('throws any other error', async () => {
    const forbidden = apiError(403);
    await expect(ignoreNotFound(Promise.reject(forbidden))).rejects.toBe(forbidden);
    await expect(ignoreNotFound(Promise.reject(new Error('timeout')))).rejects.toThrow('timeout');
  });
});
