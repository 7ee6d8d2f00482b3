// The file systems behind provisioned volumes: a size-limited tmpfs per PersistentVolume, mounted
// at the PV's directory in the kubelet's (the host's) mount namespace. Why tmpfs and not a loop
// device with ext4: a remount with a larger size= grows it online in one syscall (no resize2fs,
// no device to attach), it needs no free /dev/loopN (a handful exist, shared by every test run on
// the machine), and it only uses memory for the bytes written — the test sizes are tens of MiB
// (a 1Gi claim that holds 50 MiB costs 50 MiB). Its data lives until the PV is deleted or the
// kubelet stops (then it is unmounted and gone).
import { execFile } from 'node:child_process';
import { readFile, statfs } from 'node:fs/promises';
import { promisify } from 'node:util';
import { parseQuantity } from '../../src/api/quantity.js';

const run = promisify(execFile);

/** A claim's size in bytes, whole pages (tmpfs rounds up to pages anyway). */
export function volumeBytes(quantity: string | number): number {
  return Math.ceil(parseQuantity(quantity) / 4096) * 4096;
}

/** /proc/mounts encodes space, tab, newline and backslash in octal. */
const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));

/** Mount points strictly below `dir`, deepest first. */
export async function mountedUnder(dir: string): Promise<string[]> {
  const text = await readFile('/proc/mounts', 'utf8').catch(() => '');
  const prefix = `${dir.replace(/\/+$/, '')}/`;
  return text
    .split('\n')
    .map((l) => unescape(l.split(' ')[1] ?? ''))
    .filter((m) => m.startsWith(prefix))
    .sort((a, b) => b.length - a.length);
}

async function isMountPoint(path: string): Promise<boolean> {
  const text = await readFile('/proc/mounts', 'utf8').catch(() => '');
  return text.split('\n').some((l) => unescape(l.split(' ')[1] ?? '') === path);
}

/** A tmpfs of `bytes` at `path` (an existing directory), unless one is mounted there already. */
export async function mountVolume(path: string, bytes: number): Promise<void> {
  if (await isMountPoint(path)) return;
  await run('mount', ['-t', 'tmpfs', '-o', `size=${bytes},mode=0755`, 'pgpilot-pv', path]);
}

/** Grows the tmpfs at `path` to `bytes` (online); false when it is not ours or is that big already. */
export async function resizeVolume(path: string, bytes: number): Promise<boolean> {
  if (!(await isMountPoint(path))) return false;
  const fs = await statfs(path);
  if (fs.blocks * fs.bsize >= bytes) return false;
  await run('mount', ['-o', `remount,size=${bytes}`, path]);
  return true;
}

/** Unmounts `path` if it is a mount point (lazily when busy: pods' own bind mounts keep it alive). */
export async function unmountVolume(path: string): Promise<void> {
  if (!(await isMountPoint(path))) return;
  await run('umount', [path]).catch(() => run('umount', ['-l', path]));
}
