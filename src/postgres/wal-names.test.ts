import { describe, expect, it } from 'vitest';
import {
  compareWalNames,
  formatWalName,
  isBackupLabel,
  isHistoryFile,
  isPartial,
  isSegmentName,
  isWalFileName,
  nextWalName,
  nextWalNames,
  parseWalName,
  walNameForLsn,
} from './wal-names.js';

describe('WAL file names', () => {
  it('parses and formats 16 MiB segment names', () => {
    expect(parseWalName('000000010000000A000000FF')).toEqual({ timeline: 1, log: 10, seg: 255, segNo: 10 * 256 + 255 });
    expect(formatWalName(1, 10 * 256 + 255)).toBe('000000010000000A000000FF');
    expect(formatWalName(0x2a, 3)).toBe('0000002A0000000000000003');
    expect(parseWalName('000000020000000000000003.partial').segNo).toBe(3);
    expect(parseWalName('000000010000000000000002.00000028.backup').segNo).toBe(2);
  });

  it('rejects what is not a segment', () => {
    for (const bad of ['00000001000000000000000', '00000001000000000000000g', '0000000100000000000001FF0', '00000002.history', '000000000000000000000001']) {
      expect(() => parseWalName(bad), bad).toThrow();
    }
    // seg 0x100 does not exist with 16 MiB segments (256 per log)
    expect(() => parseWalName('000000010000000000000100')).toThrow(/out of range/);
  });

  it('steps to the next segments across a log boundary', () => {
    expect(nextWalName('0000000100000000000000FE')).toBe('0000000100000000000000FF');
    expect(nextWalName('0000000100000000000000FF')).toBe('000000010000000100000000');
    expect(nextWalNames('0000000300000000000000FF', 3)).toEqual(['000000030000000100000000', '000000030000000100000001', '000000030000000100000002']);
  });

  it('honours other segment sizes', () => {
    const mb64 = 64 * 1024 * 1024; // 64 segments per log
    expect(nextWalName('00000001000000000000003F', mb64)).toBe('000000010000000100000000');
    expect(() => parseWalName('000000010000000000000040', mb64)).toThrow(/out of range/);
    expect(walNameForLsn('1/4000000', 1, mb64)).toBe('000000010000000100000001');
    expect(() => formatWalName(1, 1, 3_000_000)).toThrow(/segment size/);
  });

  it('finds the segment holding an LSN', () => {
    expect(walNameForLsn('0/3000028', 1)).toBe('000000010000000000000003');
    expect(walNameForLsn('0/2FFFFFF', 2)).toBe('000000020000000000000002');
    expect(walNameForLsn('0/3000000', 1)).toBe('000000010000000000000003');
    expect(walNameForLsn('A/FF000001', 1)).toBe('000000010000000A000000FF');
  });

  it('orders by position, then timeline', () => {
    const names = ['000000020000000000000004', '000000010000000100000000', '000000010000000000000004', '0000000100000000000000FF'];
    expect([...names].sort(compareWalNames)).toEqual([
      '000000010000000000000004',
      '000000020000000000000004',
      '0000000100000000000000FF',
      '000000010000000100000000',
    ]);
  });

  it('classifies archive file names', () => {
    expect(isHistoryFile('00000002.history')).toBe(true);
    expect(isHistoryFile('00000002.history.gz')).toBe(false);
    expect(isPartial('000000010000000000000003.partial')).toBe(true);
    expect(isBackupLabel('000000010000000000000002.00000028.backup')).toBe(true);
    expect(isBackupLabel('000000010000000000000002.backup')).toBe(false);
    expect(isSegmentName('000000010000000000000002')).toBe(true);
    expect(isSegmentName('000000010000000000000002.partial')).toBe(false);
    expect(isWalFileName('RECOVERYXLOG')).toBe(false);
    expect(isWalFileName('00000002.history')).toBe(true);
  });
});
