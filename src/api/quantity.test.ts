import { describe, expect, it } from 'vitest';
import { parseQuantity } from './quantity.js';

const GiB = 2 ** 30;

describe('parseQuantity', () => {
  it.each<[string | number, number]>([
    ['4Gi', 4 * GiB],
    ['128Mi', 128 * 2 ** 20],
    ['1.5Gi', 1.5 * GiB],
    ['500m', 0.5],
    ['1e3', 1000],
    ['1E3', 1000],
    ['2', 2],
    ['0.5', 0.5],
    ['.5', 0.5],
    ['1k', 1000],
    ['2G', 2e9],
    [' 8Gi ', 8 * GiB],
    [2, 2],
  ])('%j is %d', (input, value) => {
    expect(parseQuantity(input)).toBe(value);
  });

  it.each(['4GB', '', 'lots', '1.2.3', 'Gi', '4 Gi', '1e'])('refuses %j with a message naming it', (bad) => {
    expect(() => parseQuantity(bad)).toThrow(`"${bad}" is not a Kubernetes quantity`);
  });
});
