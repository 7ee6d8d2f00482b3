// `upgrade copy-install <dest>`, in the upgrade Jobs' init container (the OLD image): copies its
// PostgreSQL into an emptyDir the main container (the new image) mounts, for pg_upgrade's -b.
// Each folder keeps its absolute path under <dest> (<dest>/usr/lib/postgresql/16/bin, …) because
// PostgreSQL finds share/ and lib/ relative to its own binary: the copy then finds its own.
import { cp, lstat, readdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { exists, resolvePgBin } from '../postgres/files.js';
import { oldBindirFile } from '../postgres/upgrade-layout.js';
import type { Logger } from '../runtime/logger.js';

/**
 * The folders of the installation whose (real) bin folder is `bin`: its parent's bin/, lib/ and
 * share/ (the PyPI build's <prefix>/{bin,lib,share}); for Debian's /usr/lib/postgresql/<N> also
 * /usr/share/postgresql/<N>.
 */
export async function installFolders(bin: string): Promise<string[]> {
  const prefix = dirname(bin);
  const candidates = ['bin', 'lib', 'share'].map((d) => join(prefix, d));
  const debian = /^(.*)\/lib\/postgresql\/(\d+)$/.exec(prefix);
  if (debian) candidates.push(join(debian[1]!, 'share', 'postgresql', debian[2]!));
  const found: string[] = [];
  for (const c of candidates) if (await exists(c)) found.push(c);
  return found;
}

async function treeBytes(path: string): Promise<number> {
  const st = await lstat(path);
  if (!st.isDirectory()) return st.size;
  let total = 0;
  for (const e of await readdir(path)) total += await treeBytes(join(path, e));
  return total;
}

export interface CopiedInstall {
  /** The copy's bin folder (what <dest>/bindir says). */
  bindir: string;
  folders: string[];
  bytes: number;
}

export async function copyInstall(dest: string, log: Logger, path = process.env.PATH ?? ''): Promise<CopiedInstall> {
  const bin = await resolvePgBin(undefined, path);
  const folders = await installFolders(bin);
  for (const f of folders) {
    // Symlinks stay links (libraries' soname links), modes and times are kept.
    await cp(f, join(dest, f), { recursive: true, verbatimSymlinks: true, preserveTimestamps: true, force: true });
  }
  const bindir = join(dest, bin);
  await writeFile(oldBindirFile(dest), `${bindir}\n`);
  const bytes = await treeBytes(dest);
  log.info({ from: folders, bindir, mb: Math.round(bytes / 1048576) }, `copied PostgreSQL (${(bytes / 1048576).toFixed(1)} MB) into ${dest}`);
  return { bindir, folders, bytes };
}
