// LSNs, WAL file timelines and timeline histories (lsn.ts).
import { describe, expect, it } from 'vitest';
import { compareLsn, formatLsn, hasDiverged, lsnDiff, parseLsn, parseTimelineHistory, timelineOfWalFile } from './lsn.js';

describe('LSNs', () => {
  it('parses and formats X/Y', () => {
    expect(parseLsn('0/3000060')).toBe(0x3000060n);
    expect(parseLsn('1/0')).toBe(1n << 32n);
    expect(formatLsn(parseLsn('16/B374D848'))).toBe('16/B374D848');
    expect(formatLsn(0n)).toBe('0/0');
    expect(() => parseLsn('nope')).toThrow(/not an LSN/);
    expect(() => parseLsn('123456789/0')).toThrow();
  });
  it('compares numerically, not as text', () => {
    expect(compareLsn('0/A0', '0/9F')).toBe(1);
    expect(compareLsn('1/0', '0/FFFFFFFF')).toBe(1);
    expect(compareLsn('0/5', '0/5')).toBe(0);
    expect(compareLsn(null, '0/1')).toBe(-1);
    expect(compareLsn(null, null)).toBe(0);
    expect(lsnDiff('1/10', '0/FFFFFFF0')).toBe(0x20n);
  });
  it('reads the timeline of a WAL file name', () => {
    expect(timelineOfWalFile('000000020000000000000003')).toBe(2);
    expect(timelineOfWalFile('0000001A0000000100000000')).toBe(26);
    expect(() => timelineOfWalFile('00000002')).toThrow();
  });
});

describe('timeline divergence', () => {
  const history = parseTimelineHistory('1\t0/5028A20\tno recovery target specified\n\n2\t0/9000000\tno recovery target specified\n');
  it('parses history files', () => {
    expect(history).toEqual([
      { timeline: 1, switchpoint: '0/5028A20' },
      { timeline: 2, switchpoint: '0/9000000' },
    ]);
    expect(() => parseTimelineHistory('x y')).toThrow(/bad timeline history/);
  });
  it('finds WAL past the switchpoint of an ended timeline', () => {
    expect(hasDiverged(history, 3, 1, '0/5028A20')).toBe(false);
    expect(hasDiverged(history, 3, 1, '0/5028A21')).toBe(true);
    expect(hasDiverged(history, 3, 2, '0/8FFFFFF')).toBe(false);
    expect(hasDiverged(history, 3, 3, '5/0')).toBe(false);
    expect(hasDiverged([], 1, 1, '0/1')).toBe(false);
    expect(hasDiverged(history, 3, 4, '0/1')).toBe(true);
  });
});
