// Status of WAL archiving and of pg_wal (archiving.ts).
import { describe, expect, it } from 'vitest';
import { archivingStatus, usedPercent } from './archiving.js';

describe('status of archiving and pg_wal', () => {
  it('reports the archiver fields the API promises', () => {
    const st = archivingStatus({
      lastArchivedWal: '000000010000000000000003',
      lastArchivedTime: '2026-01-01T00:00:00.000Z',
      lastFailedWal: null,
      lastFailureTime: null,
      lastFailure: null,
      backlogSegments: 2,
      inFlight: 1,
      archivedCount: 7,
      bytesIn: 1,
      bytesStored: 1,
    });
    expect(Object.keys(st).sort()).toEqual(['archivedCount', 'backlogSegments', 'inFlight', 'lastArchivedTime', 'lastArchivedWal', 'lastFailedWal', 'lastFailure', 'lastFailureTime']);
    expect(st).toMatchObject({ lastArchivedWal: '000000010000000000000003', backlogSegments: 2, inFlight: 1, archivedCount: 7 });
  });

  it('computes how full a volume is as df does (reserved blocks count as unavailable)', () => {
    expect(usedPercent({ blocks: 1000, bfree: 500, bavail: 500 })).toBe(50);
    // 100 blocks reserved for root: 400 used of 400 + 500 available to users.
    expect(usedPercent({ blocks: 1000, bfree: 600, bavail: 500 })).toBe(44.4);
    expect(usedPercent({ blocks: 1000, bfree: 50, bavail: 0 })).toBe(100);
    expect(usedPercent({ blocks: 0, bfree: 0, bavail: 0 })).toBeNull();
  });
});
