// The restart permit's file (restart-permit.ts): valid until its time, then removed and ignored.
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { restartPermitted } from './restart-permit.js';

describe('restart permit', () => {
  const layout = () => ({ restartPermit: join(mkdtempSync(join(tmpdir(), 'permit-')), 'restart-permit') });

  it('is none without a file', () => {
    expect(restartPermitted(layout())).toBe(false);
  });

  it('permits a start before its time and keeps the file (a crash restart within the window is writable too)', () => {
    const l = layout();
    writeFileSync(l.restartPermit, String(10_000));
    expect(restartPermitted(l, 9_999)).toBe(true);
    expect(existsSync(l.restartPermit)).toBe(true);
  });

  it('expires at its time and is removed then; an unreadable one counts as none', () => {
    const l = layout();
    writeFileSync(l.restartPermit, String(10_000));
    expect(restartPermitted(l, 10_000)).toBe(false);
    expect(existsSync(l.restartPermit)).toBe(false);
    writeFileSync(l.restartPermit, 'soon');
    expect(restartPermitted(l, 0)).toBe(false);
    expect(existsSync(l.restartPermit)).toBe(false);
  });
});
