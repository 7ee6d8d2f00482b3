// A new data directory: initdb (first instance) or a clone of the primary (pg_basebackup).
import { readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../runtime/logger.js';
import type { InitdbSettings } from './env.js';
import { isEmptyDir, tempPassfile, tempPrivateFile, type Credentials } from '../postgres/files.js';
import type { Layout } from './layout.js';
import type { Endpoint } from '../postgres/sql.js';
import { runTool } from '../postgres/tool.js';
import { renderConninfo } from '../postgres/conninfo.js';
import { libpqTlsParams, type LibpqTls } from '../postgres/tls-client.js';

/** Arguments of initdb (pure); the password file path is the only secret-bearing input. */
export function initdbArgs(layout: Pick<Layout, 'pgdata' | 'walDir'>, init: InitdbSettings, superuser: string, pwfile: string): string[] {
  return [
    '-D',
    layout.pgdata,
    '-U',
    superuser,
    `--pwfile=${pwfile}`,
    '--auth-local=peer',
    '--auth-host=scram-sha-256',
    `--encoding=${init.encoding}`,
    `--locale=${init.locale}`,
    ...(init.dataChecksums ? ['--data-checksums'] : []),
    ...(layout.walDir ? [`--waldir=${layout.walDir}`] : []),
  ];
}

/**
 * Arguments of pg_basebackup (pure). Not -R: it would write the password it found through the
 * passfile into postgresql.auto.conf; the agent writes standby.signal and a primary_conninfo
 * that names a passfile instead. With `tls`, the connection is a conninfo (-d): verify-full
 * against the certificate's name with the primary's address as hostaddr, and the replication
 * user's client certificate.
 */
export function basebackupArgs(layout: Pick<Layout, 'pgdata' | 'walDir'>, primary: Endpoint, user: string, tls?: LibpqTls): string[] {
  const where = tls
    ? ['-d', renderConninfo({ ...libpqTlsParams(tls, primary.host), port: primary.port })]
    : ['-h', primary.host, '-p', String(primary.port)];
  return [
    '-D',
    layout.pgdata,
    ...where,
    '-U',
    user,
    '-w',
    '-X',
    'stream',
    '-c',
    'fast',
    '-P',
    ...(layout.walDir ? [`--waldir=${layout.walDir}`] : []),
  ];
}

/** Removes whatever a failed earlier attempt left (there is no PG_VERSION: it holds no database). */
export async function clearIncompleteDataDir(layout: Pick<Layout, 'pgdata' | 'walDir'>, log: Logger): Promise<void> {
  for (const dir of [layout.pgdata, layout.walDir]) {
    if (!dir || (await isEmptyDir(dir))) continue;
    log.warn({ dir }, 'removing the contents of an incomplete data directory');
    for (const entry of await readdir(dir)) await rm(join(dir, entry), { recursive: true, force: true });
  }
}

export async function runInitdb(bin: string, layout: Layout, init: InitdbSettings, superuser: Credentials, log: Logger): Promise<void> {
  const pw = await tempPrivateFile('pwfile', `${superuser.password}\n`);
  try {
    await runTool(join(bin, 'initdb'), initdbArgs(layout, init, superuser.username, pw.path), { log });
  } finally {
    await pw.remove();
  }
}

export async function runClone(bin: string, layout: Layout, primary: Endpoint, replication: Credentials, log: Logger, tls?: LibpqTls): Promise<void> {
  const pass = await tempPassfile(replication);
  try {
    await runTool(join(bin, 'pg_basebackup'), basebackupArgs(layout, primary, replication.username, tls), { log, env: { PGPASSFILE: pass.path, PGAPPNAME: 'pgpilot-clone' } });
  } finally {
    await pass.remove();
  }
}

export interface MovedAside {
  /** Puts the old directories back (the re-clone failed: keep what we had). */
  restore(): Promise<void>;
  /** Deletes them (the re-clone succeeded). */
  remove(): Promise<void>;
}

/** Renames PGDATA (and the WAL directory) aside so that a clone can start from empty. */
export async function moveAside(layout: Pick<Layout, 'pgdata' | 'walDir'>, log: Logger): Promise<MovedAside> {
  const suffix = `.old-${Date.now()}`;
  const moved: Array<[string, string]> = [];
  for (const dir of [layout.pgdata, layout.walDir]) {
    if (!dir || (await isEmptyDir(dir))) continue;
    await rename(dir, dir + suffix);
    moved.push([dir, dir + suffix]);
  }
  log.info({ moved: moved.map((m) => m[1]) }, 'moved the old data directory aside');
  return {
    restore: async () => {
      for (const [dir, aside] of moved) {
        await rm(dir, { recursive: true, force: true });
        await rename(aside, dir);
      }
    },
    remove: async () => {
      for (const [, aside] of moved) await rm(aside, { recursive: true, force: true });
    },
  };
}
