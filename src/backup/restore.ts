// Restores a base backup into an empty data directory, and writes or clears the recovery settings
// that make PostgreSQL replay archived WAL on top of it.
//
// The object is streamed: store → sha256 of the stored bytes → gunzip → sha256 of the tar →
// `tar -x`. Both hashes are compared with the manifest after the last byte; a mismatch (or a
// stream that does not even gunzip) removes everything extracted and fails naming the object.
import { spawn } from 'node:child_process';
import { chmod, chown, lchown, mkdir, readdir, readFile, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import type { Logger } from '../runtime/logger.js';
import { setAutoConfParameter } from '../postgres/conninfo.js';
import { errorText } from '../util/error-text.js';
import { removeFile } from '../postgres/files.js';
import { archiveKeys, type BackupManifest } from './archive-layout.js';
import { HashTap } from './hash-tap.js';
import type { ObjectStore } from './object-store.js';

export interface RestoreOptions {
  store: ObjectStore;
  path: string;
  manifest: BackupManifest;
  /** Data directory: created when absent, must be empty. */
  pgdata: string;
  /** Separate WAL directory (initdb --waldir style): pg_wal becomes a symlink to it. Must be empty. */
  walDir?: string;
  log?: Logger;
  /** Bytes downloaded so far (of manifest.storedBytes). */
  onProgress?: (bytes: number) => void;
  signal?: AbortSignal;
}

export interface RestoreResult {
  dataBytes: number;
  storedBytes: number;
  seconds: number;
}

/** Files of the source server that must not survive into a new cluster. */
const SERVER_FILES = ['postmaster.pid', 'postmaster.opts', 'standby.signal', 'recovery.signal'];

const AUTO_CONF = 'postgresql.auto.conf';

/** Recovery settings (writeRecoveryConfig sets them, clearRecoveryConfig removes them). */
function isRecoverySetting(name: string): boolean {
  // recovery_prefetch and recovery_init_sync_method tune any startup; they are the user's.
  return /^(restore_command|archive_cleanup_command|recovery_end_command|recovery_min_apply_delay|recovery_target\w*)$/.test(name);
}

/** Settings of the source's own replication or recovery, dropped from a restored data directory. */
function isSourceSetting(name: string): boolean {
  return isRecoverySetting(name) || name === 'primary_conninfo' || name === 'primary_slot_name';
}

/** postgresql.auto.conf without the lines that set a parameter `drop` matches. */
function dropSettings(content: string, drop: (name: string) => boolean): string {
  const lines = content.split('\n').filter((l) => {
    const m = /^\s*([A-Za-z_][A-Za-z0-9_.]*)\s*(=|\s)/.exec(l);
    return !(m && drop(m[1]!.toLowerCase()));
  });
  return lines.join('\n');
}

async function readIfExists(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return '';
    throw err;
  }
}

/** When running as root, gives what we create to the data directory's owner (postgres runs as it). */
async function ownLike(file: string, pgdata: string, link = false): Promise<void> {
  if (process.getuid?.() !== 0) return;
  const st = await stat(pgdata);
  await (link ? lchown : chown)(file, st.uid, st.gid);
}

async function writeAutoConf(pgdata: string, content: string): Promise<void> {
  const file = join(pgdata, AUTO_CONF);
  const tmp = `${file}.tmp-${process.pid}`;
  await writeFile(tmp, content, { mode: 0o600 });
  await ownLike(tmp, pgdata);
  await rename(tmp, file);
}

async function emptyDir(dir: string, keep: string[] = []): Promise<void> {
  let entries: string[];
  try {
    entries = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  await Promise.all(entries.filter((e) => !keep.includes(e)).map((e) => rm(join(dir, e), { recursive: true, force: true })));
}

async function ensureEmptyDir(dir: string, what: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const entries = await readdir(dir);
  if (entries.length > 0) throw new Error(`${what} ${dir} is not empty (${entries.slice(0, 5).join(', ')}${entries.length > 5 ? ', …' : ''}): a restore needs an empty directory`);
}

/** Streams the backup object into `tar -x`; returns both hashes (raw: null when it did not gunzip). */
async function extract(o: RestoreOptions, key: string) {
  const tar = spawn('tar', ['-x', '-f', '-', '-C', o.pgdata], { stdio: ['pipe', 'ignore', 'pipe'] });
  let tarErr = '';
  tar.stderr!.on('data', (d: Buffer) => (tarErr = (tarErr + d.toString()).slice(-2000)));
  const tarExit = new Promise<{ code: number | null; error?: Error }>((resolve) => {
    tar.once('error', (error) => resolve({ code: null, error }));
    tar.once('exit', (code) => resolve({ code }));
  });

  const stored = new HashTap(() => o.onProgress?.(stored.bytes));
  const gunzip = createGunzip({ chunkSize: 256 * 1024 }); // fewer, larger steps on the thread pool and writes to tar
  const raw = new HashTap();
  // Extraction is a branch: when it fails (not gzip, not a tar), the download still runs to its
  // end so that the stored object's hash can be reported.
  let extractError: Error | undefined;
  const extracting = pipeline(gunzip, raw, tar.stdin!).catch((err: Error) => {
    extractError ??= err;
  });
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      if (extractError || gunzip.destroyed || gunzip.write(chunk)) return cb();
      const done = () => {
        gunzip.off('drain', done);
        gunzip.off('close', done);
        cb();
      };
      gunzip.once('drain', done);
      gunzip.once('close', done);
    },
    final(cb) {
      if (!extractError && !gunzip.destroyed) gunzip.end();
      cb();
    },
  });
  try {
    await pipeline(await o.store.get(key), stored, sink, o.signal ? { signal: o.signal } : {});
  } catch (err) {
    gunzip.destroy();
    tar.kill('SIGKILL');
    await Promise.allSettled([extracting, tarExit]);
    throw new Error(`cannot download base backup object ${key} from ${o.store.location}: ${errorText(err)}`, { cause: err });
  }
  await extracting;
  const exit = await tarExit;
  const tarFailure = exit.error ? `cannot run tar: ${exit.error.message}` : exit.code !== 0 ? `tar exited with code ${exit.code}: ${tarErr.trim()}` : undefined;
  return {
    storedSha256: stored.hash.digest('hex'),
    storedBytes: stored.bytes,
    // The tar's hash only means something when the whole object went through gunzip.
    dataSha256: extractError ? null : raw.hash.digest('hex'),
    dataBytes: raw.bytes,
    gunzipError: String((extractError as NodeJS.ErrnoException | undefined)?.code ?? '').startsWith('Z_') ? extractError!.message : undefined,
    extractError,
    tarFailure,
  };
}

/**
 * Downloads and extracts a base backup into `pgdata` (empty), verifying both sha256 of the
 * manifest, then removes what must not carry over from the source server: its pid file and
 * signal files, any WAL, and its replication/recovery settings in postgresql.auto.conf. With
 * walDir, pg_wal becomes a symlink to it. Recovery settings come next (writeRecoveryConfig).
 */
export async function restoreBaseBackup(o: RestoreOptions): Promise<RestoreResult> {
  const m = o.manifest;
  const key = archiveKeys.baseData(o.path, m.id);
  if (m.compression.algorithm !== 'gzip') throw new Error(`base backup ${m.id}: compression ${String(m.compression.algorithm)} is not supported`);
  const started = Date.now();
  await ensureEmptyDir(o.pgdata, 'data directory');
  if (o.walDir) await ensureEmptyDir(o.walDir, 'WAL directory');
  await chmod(o.pgdata, 0o700);
  o.log?.info({ key, pgdata: o.pgdata, storedBytes: m.storedBytes }, 'restoring base backup');
  try {
    const r = await extract(o, key);
    if (r.storedSha256 !== m.storedSha256 || (r.dataSha256 !== null && r.dataSha256 !== m.dataSha256) || r.gunzipError) {
      const data = r.dataSha256 === null ? `not computable (${r.gunzipError ?? r.extractError?.message})` : r.dataSha256;
      throw new Error(
        `backup object ${key} in ${o.store.location} is corrupt: sha256 ${r.storedSha256} (${r.storedBytes} bytes) expected ${m.storedSha256} (${m.storedBytes} bytes); ` +
          `sha256 of the tar ${data} expected ${m.dataSha256}`,
      );
    }
    if (r.tarFailure || r.extractError) throw new Error(`extracting ${key} into ${o.pgdata} failed: ${r.tarFailure ?? r.extractError!.message}`);

    for (const f of SERVER_FILES) await removeFile(join(o.pgdata, f));
    const pgWal = join(o.pgdata, 'pg_wal');
    if (o.walDir) {
      await rm(pgWal, { recursive: true, force: true });
      await mkdir(join(o.walDir, 'archive_status'), { recursive: true, mode: 0o700 });
      await chmod(o.walDir, 0o700);
      await ownLike(o.walDir, o.pgdata);
      await ownLike(join(o.walDir, 'archive_status'), o.pgdata);
      await symlink(o.walDir, pgWal);
      await ownLike(pgWal, o.pgdata, true);
    } else {
      await emptyDir(pgWal, ['archive_status']);
      await emptyDir(join(pgWal, 'archive_status'));
    }
    const conf = await readIfExists(join(o.pgdata, AUTO_CONF));
    const cleaned = dropSettings(conf, isSourceSetting);
    if (cleaned !== conf) await writeAutoConf(o.pgdata, cleaned);
    const seconds = (Date.now() - started) / 1000;
    o.log?.info({ key, seconds, dataBytes: r.dataBytes }, 'base backup restored');
    return { dataBytes: r.dataBytes, storedBytes: r.storedBytes, seconds };
  } catch (err) {
    await emptyDir(o.pgdata);
    if (o.walDir) await emptyDir(o.walDir);
    throw err;
  }
}

/**
 * Writes recovery settings (recoverySettings()) into postgresql.auto.conf, replacing every earlier
 * recovery setting, and creates recovery.signal. postgres must not be running.
 */
export async function writeRecoveryConfig(pgdata: string, settings: Record<string, string>): Promise<void> {
  let content = dropSettings(await readIfExists(join(pgdata, AUTO_CONF)), isRecoverySetting);
  for (const [name, value] of Object.entries(settings)) {
    if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`invalid setting name ${JSON.stringify(name)}`);
    content = setAutoConfParameter(content, name, value);
  }
  await writeAutoConf(pgdata, content);
  const signal = join(pgdata, 'recovery.signal');
  await writeFile(signal, '', { mode: 0o600 });
  await ownLike(signal, pgdata);
}

/** Removes the recovery settings and recovery.signal (after promotion; PostgreSQL removes the signal itself). */
export async function clearRecoveryConfig(pgdata: string): Promise<void> {
  const file = join(pgdata, AUTO_CONF);
  const conf = await readIfExists(file);
  const cleaned = dropSettings(conf, isRecoverySetting);
  if (cleaned !== conf) await writeAutoConf(pgdata, cleaned);
  await removeFile(join(pgdata, 'recovery.signal'));
}
