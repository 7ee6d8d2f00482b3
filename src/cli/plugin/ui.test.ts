import { describe, expect, it } from 'vitest';
import { age, follow, Progress, table, truncate, visibleLength } from './ui.js';

describe('terminal output', () => {
  it('tables fit the width, the last column cut with …', () => {
    const lines = table([{ header: 'A', max: 10 }, { header: 'B' }], [['x'.repeat(30), 'y'.repeat(100)], ['short', 'z']], 40, '  ');
    expect(lines[0]).toBe('  A           B');
    expect(lines[1]).toBe(`  ${'x'.repeat(9)}…  ${'y'.repeat(25)}…`);
    for (const l of lines) expect(visibleLength(l)).toBeLessThanOrEqual(40);
    expect(truncate('a\nb', 10)).toBe('a b');
  });

  it('ages', () => {
    const now = Date.parse('2026-12-05T03:00:00Z');
    expect(age('2026-12-05T02:59:30Z', now)).toBe('30s');
    expect(age('2026-12-05T02:00:00Z', now)).toBe('60m');
    expect(age('2026-12-04T03:00:00Z', now)).toBe('24h');
    expect(age(undefined, now)).toBe('');
  });

  it('a progress line off a TTY is printed when it changes; follow ends on done, failed or timeout', async () => {
    const written: string[] = [];
    const p = new Progress({ write: (s: string) => written.push(s), isTTY: false });
    let n = 0;
    const v = await follow({ what: 'n to reach 3', timeoutMs: 5000, intervalMs: 1, poll: async () => ++n, judge: (x) => (x >= 3 ? { state: 'done', line: 'at 3', value: x } : { state: 'waiting', line: x === 1 ? 'low' : 'low' }), progress: p });
    expect(v).toBe(3);
    expect(written.map((w) => w.replace(/^\[\d+s\] /, ''))).toEqual(['low\n', 'at 3\n']);
    await expect(follow({ what: 'x', timeoutMs: 5000, intervalMs: 1, poll: async () => 1, judge: () => ({ state: 'failed', line: 'it broke' }), progress: p })).rejects.toMatchObject({ exitCode: 1, message: 'it broke' });
    await expect(follow({ what: 'never', timeoutMs: 20, intervalMs: 5, poll: async () => 1, judge: () => ({ state: 'waiting', line: 'still' }), progress: p })).rejects.toThrow('timed out after 0 s waiting for never; last: still');
  });
});
