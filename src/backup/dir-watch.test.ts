// The directory watch of the WAL archiver and fetcher (dir-watch.ts), on a real directory.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLogger } from '../runtime/logger.js';
import { DirWatch } from './dir-watch.js';

const log = createLogger('error', 'test');

async function until(check: () => boolean, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await sleep(10);
  }
}

describe('DirWatch', () => {
  let root: string;
  beforeEach(async () => (root = await mkdtemp(join(tmpdir(), 'pgpilot-dirwatch-'))));
  afterEach(() => rm(root, { recursive: true, force: true }));

  it('scans at start, on a change (before the next poll), and stops scanning when stopped', async () => {
    let scans = 0;
    const w = new DirWatch({ dir: root, pollMs: 60_000, scan: async () => void scans++, log, what: 'test' });
    await w.start();
    expect(scans).toBe(1);
    await writeFile(join(root, 'a.ready'), '');
    await until(() => scans >= 2);
    await w.stop();
    const after = scans;
    await writeFile(join(root, 'b.ready'), '');
    await sleep(100);
    expect(scans).toBe(after);
  });

  it('polls a directory that does not exist yet, and watches it once it does', async () => {
    const dir = join(root, 'archive_status');
    let scans = 0;
    const w = new DirWatch({ dir, pollMs: 50, scan: async () => void scans++, log, what: 'test' });
    await w.start();
    await until(() => scans >= 3); // polling alone
    await mkdir(dir);
    await sleep(120); // a poll has watched it by now
    const before = scans;
    await writeFile(join(dir, 'x'), '');
    await until(() => scans > before);
    await w.stop();
  });

  it('never overlaps passes: changes during one make one more after it', async () => {
    let active = 0;
    let most = 0;
    let scans = 0;
    let release!: () => void;
    const w = new DirWatch({
      dir: root,
      pollMs: 60_000,
      scan: async () => {
        scans++;
        active++;
        most = Math.max(most, active);
        if (scans === 2) await new Promise<void>((r) => (release = r));
        active--;
      },
      log,
      what: 'test',
    });
    await w.start();
    await writeFile(join(root, 'a'), '');
    await until(() => scans === 2);
    for (const f of ['b', 'c', 'd']) await writeFile(join(root, f), '');
    await sleep(100);
    expect(scans).toBe(2);
    release();
    await until(() => scans === 3);
    await sleep(100);
    expect(scans).toBe(3);
    expect(most).toBe(1);
    await w.stop();
  });
});
