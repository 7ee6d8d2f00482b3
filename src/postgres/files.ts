// Small file-system helpers of the agent: credentials from the mounted Secrets, 0600 passfiles,
// marker files, and where postgres binaries live.
import { constants } from 'node:fs';
import { access, chmod, mkdir, mkdtemp, readdir, readFile, realpath, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { pgpassLine } from './conninfo.js';

export interface Credentials {
  username: string;
  password: string;
}

export type CredentialKind = 'superuser' | 'replication' | 'app';

async function readSecretFile(secretsDir: string, kind: string, key: string): Promise<string> {
  const file = join(secretsDir, kind, key);
  try {
    // Secret volumes may end values with a newline when created by hand; passwords never do.
    return (await readFile(file, 'utf8')).replace(/\r?\n$/, '');
  } catch (err) {
    throw new Error(`cannot read the ${kind} secret key ${key} at ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
}

/** Read at each use, so a rotated Secret applies without restarting the pod. */
export async function readCredentials(secretsDir: string, kind: CredentialKind): Promise<Credentials> {
  const [username, password] = await Promise.all([readSecretFile(secretsDir, kind, 'username'), readSecretFile(secretsDir, kind, 'password')]);
  if (!username) throw new Error(`the ${kind} secret has an empty username`);
  if (!password) throw new Error(`the ${kind} secret has an empty password`);
  return { username, password };
}

export async function readAgentToken(secretsDir: string): Promise<string> {
  const token = await readSecretFile(secretsDir, 'agent', 'token');
  if (token.length < 16) throw new Error('the agent token is shorter than 16 characters');
  return token;
}

/** Writes `content` so that only the owner can read it (libpq ignores group-readable passfiles). */
export async function writePrivateFile(path: string, content: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, content, { mode: 0o600 });
  await chmod(tmp, 0o600);
  await rename(tmp, path);
}

export interface TempFile {
  path: string;
  remove(): Promise<void>;
}

/** A 0600 file in a fresh 0700 temp dir, for one tool run (initdb --pwfile, PGPASSFILE). */
export async function tempPrivateFile(name: string, content: string): Promise<TempFile> {
  const dir = await mkdtemp(join(tmpdir(), 'pgpilot-'));
  await chmod(dir, 0o700);
  const path = join(dir, name);
  await writePrivateFile(path, content);
  return { path, remove: () => rm(dir, { recursive: true, force: true }) };
}

export function tempPassfile(creds: Credentials): Promise<TempFile> {
  return tempPrivateFile('pgpass', pgpassLine('*', '*', '*', creds.username, creds.password));
}

export async function exists(path: string): Promise<boolean> {
  try {
    await access(path, constants.F_OK);
    return true;
  } catch {
    return false;
  }
}

export async function isWritableDir(path: string): Promise<boolean> {
  try {
    if (!(await stat(path)).isDirectory()) return false;
    await access(path, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

export async function touch(path: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, '');
}

export async function removeFile(path: string): Promise<void> {
  await rm(path, { force: true });
}

/** True when the directory does not exist or has nothing in it. */
export async function isEmptyDir(path: string): Promise<boolean> {
  try {
    return (await readdir(path)).length === 0;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return true;
    throw err;
  }
}

const PG_TOOLS = ['postgres', 'initdb', 'pg_basebackup', 'pg_rewind'];

async function hasTools(dir: string): Promise<boolean> {
  for (const t of PG_TOOLS) {
    try {
      await access(join(dir, t), constants.X_OK);
    } catch {
      return false;
    }
  }
  return true;
}

/**
 * The directory of the PostgreSQL binaries: PGPILOT_PG_BIN, else a `postgres` on PATH (symlinks
 * resolved: Debian links only some tools into /usr/local/bin or /usr/bin) whose directory also has
 * initdb, pg_basebackup and pg_rewind, else the newest /usr/lib/postgresql/<major>/bin.
 */
export async function resolvePgBin(explicit: string | undefined, path = process.env.PATH ?? ''): Promise<string> {
  if (explicit) {
    if (!(await hasTools(explicit))) throw new Error(`PGPILOT_PG_BIN=${explicit} lacks one of ${PG_TOOLS.join(', ')}`);
    return explicit;
  }
  for (const dir of path.split(delimiter).filter(Boolean)) {
    const candidate = join(dir, 'postgres');
    if (!(await exists(candidate))) continue;
    const real = dirname(await realpath(candidate));
    if (await hasTools(real)) return real;
  }
  let majors: number[] = [];
  try {
    majors = (await readdir('/usr/lib/postgresql')).map(Number).filter((n) => Number.isInteger(n)).sort((a, b) => b - a);
  } catch {
    /* none installed there */
  }
  for (const m of majors) {
    const dir = `/usr/lib/postgresql/${m}/bin`;
    if (await hasTools(dir)) return dir;
  }
  throw new Error(`no PostgreSQL binaries found (${PG_TOOLS.join(', ')}): set PGPILOT_PG_BIN`);
}
