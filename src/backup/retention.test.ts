// Backup retention (pure): the policy's syntax, what a window or a count keeps, which WAL goes.
import { describe, expect, it } from 'vitest';
import type { BackupManifest } from './archive-layout.js';
import type { ArchivedWal, IncompleteBackup } from './catalog.js';
import { describeRetention, parseRetention, planRetention, walToDelete } from './retention.js';

const NOW = new Date('2026-11-25T12:00:00Z');
const hoursAgo = (h: number) => new Date(NOW.getTime() - h * 3600_000).toISOString();

/** A backup that ended `h` hours before NOW and whose WAL starts at segment `seg` (timeline 1). */
function backup(h: number, seg: number, timeline = 1): BackupManifest {
  const wal = (s: number) => `${timeline.toString(16).padStart(8, '0').toUpperCase()}00000000${s.toString(16).padStart(8, '0').toUpperCase()}`;
  return { id: `b${h}`, stopTime: hoursAgo(h), startWal: wal(seg), stopWal: wal(seg + 1) } as BackupManifest;
}

const ids = (bs: BackupManifest[]) => bs.map((b) => b.id);

describe('parseRetention', () => {
  it.each([
    [7, { days: 7 }],
    ['7', { days: 7 }],
    ['36h', { hours: 36 }],
    ['7d', { days: 7 }],
    ['4w', { days: 28 }],
    [' 2 D ', { days: 2 }],
    ['10 backups', { count: 10 }],
    ['1 backup', { count: 1 }],
    ['3backups', { count: 3 }],
  ])('%j → %j', (value, policy) => {
    expect(parseRetention(value)).toEqual(policy);
  });

  it.each([0, -1, 1.5, '0d', '', '7 days', '1 backups', '2 backup', 'forever', '5m', '1e3'])('refuses %j with a hint', (value) => {
    expect(() => parseRetention(value)).toThrow(/invalid backup retention .*number of days \(7\), a duration \("36h", "7d", "4w"\) or a number of backups/);
  });

  it('prints a policy as people write it', () => {
    expect([{ days: 7 }, { hours: 36 }, { count: 1 }, { count: 10 }].map((p) => describeRetention(p))).toEqual(['7d', '36h', '1 backup', '10 backups']);
  });
});

describe('planRetention with a time window', () => {
  // Daily backups: 5, 4, 3, 2, 1 days old (ended at those times), WAL from segments 10, 20, ...
  const daily = [backup(120, 10), backup(96, 20), backup(72, 30), backup(48, 40), backup(24, 50)];

  it('keeps the backups inside the window plus the newest one before it', () => {
    const plan = planRetention(daily, { days: 2 }, NOW);
    // Window starts 48 h ago: b48 and b24 are inside; b72 covers the window's first moment.
    expect(ids(plan.keep)).toEqual(['b72', 'b48', 'b24']);
    expect(ids(plan.deleteBackups)).toEqual(['b120', 'b96']);
    expect(plan.walBefore).toBe(daily[2]!.startWal);
  });

  it('works in hours and sorts its input', () => {
    const plan = planRetention([...daily].reverse(), { hours: 50 }, NOW);
    expect(ids(plan.keep)).toEqual(['b72', 'b48', 'b24']);
  });

  it('keeps everything when the oldest backup is inside the window', () => {
    const plan = planRetention(daily, { days: 30 }, NOW);
    expect(ids(plan.keep)).toEqual(ids(daily));
    expect(plan.deleteBackups).toEqual([]);
    expect(plan.walBefore).toBe(daily[0]!.startWal);
  });

  it('never deletes the newest backup, even when all are older than the window', () => {
    const plan = planRetention(daily, { hours: 1 }, NOW);
    expect(ids(plan.keep)).toEqual(['b24']);
    expect(ids(plan.deleteBackups)).toEqual(['b120', 'b96', 'b72', 'b48']);
  });

  it('keeps all WAL when there is no backup', () => {
    expect(planRetention([], { days: 7 }, NOW)).toEqual({ keep: [], deleteBackups: [], walBefore: null, deleteIncomplete: [] });
  });
});

describe('planRetention with a count', () => {
  const three = [backup(3, 5), backup(2, 8), backup(1, 12)];

  it('keeps the newest N', () => {
    const plan = planRetention(three, { count: 2 }, NOW);
    expect(ids(plan.keep)).toEqual(['b2', 'b1']);
    expect(ids(plan.deleteBackups)).toEqual(['b3']);
    expect(plan.walBefore).toBe('000000010000000000000008');
  });

  it('keeps all when there are fewer than N', () => {
    expect(planRetention(three, { count: 10 }, NOW).deleteBackups).toEqual([]);
  });

  it('measures WAL from the kept backup with the earliest start, across timelines', () => {
    // After a failover: the newest backup is on timeline 2, yet the kept one on timeline 1 starts earlier.
    const plan = planRetention([backup(3, 5), backup(2, 8), backup(1, 12, 2)], { count: 2 }, NOW);
    expect(plan.walBefore).toBe('000000010000000000000008');
  });
});

describe('incomplete backups', () => {
  const folder = (id: string, h: number): IncompleteBackup => ({ id, keys: [`p/base/${id}/data.tar.gz`], lastModified: new Date(hoursAgo(h)), reason: 'no backup.json' });

  it('removes only those older than a day (a running backup is younger)', () => {
    const plan = planRetention([backup(1, 12)], { count: 1 }, NOW, [folder('old', 30), folder('running', 0.2)]);
    expect(plan.deleteIncomplete.map((f) => f.id)).toEqual(['old']);
  });
});

describe('walToDelete', () => {
  const at = new Date(0);
  const files = (...names: string[]): ArchivedWal[] => names.map((name) => ({ name, key: `p/wal/${name}.gz`, size: 1, lastModified: at }));
  const wal = files(
    '000000010000000000000006',
    '000000010000000000000007',
    '000000010000000000000007.00000028.backup',
    '000000010000000000000008',
    '000000010000000000000009',
    '00000002.history',
    '000000010000000100000000',
    '000000020000000000000007.partial',
    '000000020000000000000007',
    '000000020000000000000008',
  );

  it('deletes strictly before the position, on every timeline, keeping history files', () => {
    expect(walToDelete(wal, '000000010000000000000008').map((w) => w.name)).toEqual([
      '000000010000000000000006',
      '000000010000000000000007',
      '000000010000000000000007.00000028.backup',
      '000000020000000000000007.partial',
      '000000020000000000000007',
    ]);
  });

  it('compares the log id before the segment', () => {
    expect(walToDelete(wal, '0000000200000000000000FF').map((w) => w.name)).not.toContain('000000010000000100000000');
  });

  it('deletes nothing without a position', () => {
    expect(walToDelete(wal, null)).toEqual([]);
  });
});
