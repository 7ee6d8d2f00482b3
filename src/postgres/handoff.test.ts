// The generated archive_command/restore_command run under a real /bin/sh, as PostgreSQL runs them
// (system() → /bin/sh -c, with %f and %p substituted).
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { archiveCommand, restoreCommand, SPOOL_DIRS } from './handoff.js';

interface Run {
  code: number | null;
  stderr: string;
  ms: number;
}

/** Runs a command the way PostgreSQL does: placeholders replaced, then /bin/sh -c. */
function runAsPostgres(command: string, vars: { f: string; p?: string }, cwd: string): { done: Promise<Run> } {
  const line = command.replaceAll('%f', vars.f).replaceAll('%p', vars.p ?? '');
  const started = Date.now();
  const child = spawn('/bin/sh', ['-c', line], { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return { done: new Promise((resolve) => child.on('exit', (code) => resolve({ code, stderr, ms: Date.now() - started }))) };
}

const SEG = '000000010000000000000003';

async function waitFor(file: string, ms = 5000): Promise<void> {
  const until = Date.now() + ms;
  while (!existsSync(file)) {
    if (Date.now() > until) throw new Error(`${file} did not appear`);
    await sleep(10);
  }
}

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'pgpilot-handoff-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('archiveCommand', () => {
  it('exits 0 once the marker appears, and consumes it', async () => {
    const markers = path.join(dir, 'markers');
    await mkdir(markers);
    const run = runAsPostgres(archiveCommand(markers, 10), { f: SEG }, dir);
    await sleep(150);
    await writeFile(path.join(markers, SEG), '');
    const r = await run.done;
    expect(r.code).toBe(0);
    expect(existsSync(path.join(markers, SEG))).toBe(false);
  });

  it('returns at once when the agent has uploaded ahead', async () => {
    const markers = path.join(dir, 'markers');
    await mkdir(markers);
    await writeFile(path.join(markers, SEG), '');
    const r = await runAsPostgres(archiveCommand(markers), { f: SEG }, dir).done;
    expect(r.code).toBe(0);
    expect(r.ms).toBeLessThan(1000); // not a timing assertion of the product: just "did not wait for the timeout"
  });

  it('exits 1 after the timeout and leaves other markers alone', async () => {
    const markers = path.join(dir, 'markers');
    await mkdir(markers);
    await writeFile(path.join(markers, '000000010000000000000004'), '');
    const r = await runAsPostgres(archiveCommand(markers, 0.3), { f: SEG }, dir).done;
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(SEG);
    expect(existsSync(path.join(markers, '000000010000000000000004'))).toBe(true);
  });

  it('refuses directories that would need quoting', () => {
    expect(() => archiveCommand("/tmp/it's")).toThrow(/absolute path/);
    expect(() => archiveCommand('relative/dir')).toThrow(/absolute path/);
    expect(archiveCommand('/var/lib/pgpilot/archive-ready', 60)).toMatch(/^\/bin\/sh -c '.*' pgpilot-archive %f$/);
  });
});

describe('restoreCommand', () => {
  let spool: string;
  let pgdata: string;
  beforeEach(async () => {
    spool = path.join(dir, 'spool');
    pgdata = path.join(dir, 'pgdata');
    for (const d of SPOOL_DIRS) await mkdir(path.join(spool, d), { recursive: true });
    await mkdir(path.join(pgdata, 'pg_wal'), { recursive: true });
  });
  const restore = (timeout = 10) => runAsPostgres(restoreCommand(spool, timeout), { f: SEG, p: 'pg_wal/RECOVERYXLOG' }, pgdata);

  it('asks through want/ and moves got/ to %p (exit 0)', async () => {
    const run = restore();
    await waitFor(path.join(spool, 'want', SEG));
    await writeFile(path.join(spool, 'got', SEG), 'segment bytes');
    const r = await run.done;
    expect(r.code).toBe(0);
    expect(await readFile(path.join(pgdata, 'pg_wal', 'RECOVERYXLOG'), 'utf8')).toBe('segment bytes');
    expect(existsSync(path.join(spool, 'got', SEG))).toBe(false);
  });

  it('exits 1 when the file is missing from the archive, and removes the answer', async () => {
    const run = restore();
    await waitFor(path.join(spool, 'want', SEG));
    await writeFile(path.join(spool, 'missing', SEG), '');
    const r = await run.done;
    expect(r.code).toBe(1);
    expect(existsSync(path.join(spool, 'missing', SEG))).toBe(false);
    expect(existsSync(path.join(pgdata, 'pg_wal', 'RECOVERYXLOG'))).toBe(false);
  });

  it('exits 127 (fatal for PostgreSQL) when the fetch failed, printing the reason', async () => {
    const run = restore();
    await waitFor(path.join(spool, 'want', SEG));
    await writeFile(path.join(spool, 'failed', SEG), 'object a/wal/x.gz is corrupt: sha256 expected 00, got ff');
    const r = await run.done;
    expect(r.code).toBe(127);
    expect(r.stderr).toContain('a/wal/x.gz is corrupt');
  });

  it('exits 127 when nobody answers, and withdraws the request', async () => {
    const r = await restore(0.3).done;
    expect(r.code).toBe(127);
    expect(r.stderr).toContain('no answer');
    expect(existsSync(path.join(spool, 'want', SEG))).toBe(false);
  });

  it('ignores a stale "missing" answer of an earlier request', async () => {
    await writeFile(path.join(spool, 'missing', SEG), '');
    const run = restore();
    await waitFor(path.join(spool, 'want', SEG));
    await sleep(100);
    await writeFile(path.join(spool, 'got', SEG), 'now archived');
    expect((await run.done).code).toBe(0);
  });
});
