// A base backup streamed from PostgreSQL straight into the object store, never staged on local
// disk:
//
//   pg_basebackup -D - -Ft -X none → sha256 + bytes of the tar → gzip → sha256 + bytes → store.put
//
// The gzip is ParallelGzip: 4 MiB pieces compressed on the thread pool, a few at a time, written
// out in order as concatenated gzip members (one valid gzip file; restore's gunzip reads them all).
//
// WAL is not in the tar (-X none): it comes from the WAL archive, so the backup is usable once the
// segment holding its stop position is archived. The manifest (backup.json) is written last and
// only then: a folder without one is an incomplete backup that restore and retention ignore.
//
// With -X none, `pg_basebackup -v` prints no WAL positions; they are read from the tar as it
// passes: backup_label (start position and timeline, first entry) and the backup_manifest that
// pg_basebackup appends to the tar when it writes to stdout ("WAL-Ranges": the end position).
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createInterface } from 'node:readline';
import { PassThrough, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';
import type { Logger } from '../runtime/logger.js';
import type { Credentials } from '../postgres/files.js';
import { formatLsn, parseLsn } from '../postgres/lsn.js';
import { withClient } from '../postgres/sql.js';
import { ToolError } from '../postgres/tool.js';
import { archiveKeys, SHA256_METADATA, type ArchiveIdentity, type BackupManifest } from './archive-layout.js';
import type { ObjectStore } from './object-store.js';
import { ParallelGzip } from './parallel-gzip.js';
import { walNameForLsn } from '../postgres/wal-names.js';

/** Backup id of a start time: UTC, e.g. 20261125T020000Z (also the folder name). */
export function backupIdAt(date: Date): string {
  return date.toISOString().replace(/\.\d+Z$/, 'Z').replace(/[-:]/g, '');
}

export interface BaseBackupOptions {
  store: ObjectStore;
  /** The cluster's path in the store (ArchiveLocation.path). */
  path: string;
  /** Directory of pg_basebackup. */
  pgBin: string;
  host: string;
  port: number;
  /** Role pg_basebackup connects as (REPLICATION); its password travels in PGPASSWORD. */
  replication: Credentials;
  /** Role for the SQL queries (system id, version, recovery state, pg_switch_wal): the superuser. */
  sql: Credentials;
  /** Recorded in the manifest. */
  cluster: string;
  namespace: string;
  backupName: string;
  instance: string;
  /** gzip level 0-9; 1 by default (pg_basebackup output compresses well even at 1, and fast). */
  level?: number;
  /**
   * Backups from a replica: forces a WAL switch on the primary, so that the segment holding the
   * stop position is completed and archived (a replica does not archive, and cannot switch).
   */
  switchWal?: () => Promise<void>;
  /**
   * How long to wait for the stop segment to reach the archive (and how long PostgreSQL may wait
   * for archive_command at the end of pg_basebackup): 10 minutes by default.
   */
  walTimeoutMs?: number;
  /** Polling interval of that wait: 1 s by default. */
  pollMs?: number;
  /** Bytes of the tar read from PostgreSQL so far (≈ the database size at the end). */
  onProgress?: (bytes: number) => void;
  signal?: AbortSignal;
  log?: Logger;
}

/** The start of backup_label and the end of backup_manifest, read from a tar stream as it passes. */
export class BackupTarReader {
  /** Content of backup_label, once seen. */
  label: string | undefined;
  private manifestParts: Buffer[] = [];
  private manifestBytes = 0;
  private manifestSeen = false;
  private header = Buffer.alloc(0);
  private dataLeft = 0;
  private padLeft = 0;
  private capture: 'label' | 'manifest' | null = null;
  private labelParts: Buffer[] = [];
  private ended = false;
  /** Set when the stream is not a tar this reader understands. */
  error: string | undefined;

  /** The last bytes of backup_manifest kept (its WAL-Ranges sit at the very end). */
  static readonly MANIFEST_TAIL = 256 * 1024;

  write(chunk: Buffer): void {
    let off = 0;
    while (off < chunk.length && !this.ended && this.error === undefined) {
      const avail = chunk.length - off;
      if (this.dataLeft > 0) {
        const n = Math.min(this.dataLeft, avail);
        this.collect(chunk.subarray(off, off + n));
        this.dataLeft -= n;
        off += n;
        if (this.dataLeft === 0) this.endEntry();
      } else if (this.padLeft > 0) {
        const n = Math.min(this.padLeft, avail);
        this.padLeft -= n;
        off += n;
      } else {
        const n = Math.min(512 - this.header.length, avail);
        this.header = Buffer.concat([this.header, chunk.subarray(off, off + n)]);
        off += n;
        if (this.header.length === 512) {
          this.parseHeader(this.header);
          this.header = Buffer.alloc(0);
        }
      }
    }
  }

  private parseHeader(h: Buffer): void {
    if (h.every((b) => b === 0)) {
      this.ended = true; // end-of-archive blocks
      return;
    }
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i]!;
    if (sum !== tarNumber(h.subarray(148, 156))) {
      this.error = 'a tar header has a bad checksum';
      return;
    }
    const str = (start: number, len: number) => {
      const s = h.subarray(start, start + len);
      const nul = s.indexOf(0);
      return s.toString('utf8', 0, nul === -1 ? len : nul);
    };
    const prefix = h.toString('latin1', 257, 262) === 'ustar' ? str(345, 155) : '';
    const name = (prefix ? `${prefix}/` : '') + str(0, 100);
    const size = tarNumber(h.subarray(124, 136));
    const type = String.fromCharCode(h[156]!);
    const entry = name.replace(/^\.\//, '');
    this.capture = type === '0' || type === '\0' ? (entry === 'backup_label' ? 'label' : entry === 'backup_manifest' ? 'manifest' : null) : null;
    if (this.capture === 'manifest') this.manifestSeen = true;
    this.dataLeft = size;
    this.padLeft = (512 - (size % 512)) % 512;
    if (size === 0) this.endEntry();
  }

  private collect(part: Buffer): void {
    if (this.capture === 'label') {
      if (this.labelParts.reduce((n, b) => n + b.length, 0) < 64 * 1024) this.labelParts.push(Buffer.from(part));
    } else if (this.capture === 'manifest') {
      this.manifestParts.push(Buffer.from(part));
      this.manifestBytes += part.length;
      if (this.manifestBytes > 2 * BackupTarReader.MANIFEST_TAIL) {
        const all = Buffer.concat(this.manifestParts);
        this.manifestParts = [all.subarray(all.length - BackupTarReader.MANIFEST_TAIL)];
        this.manifestBytes = BackupTarReader.MANIFEST_TAIL;
      }
    }
  }

  private endEntry(): void {
    if (this.capture === 'label') this.label = Buffer.concat(this.labelParts).toString('utf8');
    this.capture = null;
  }

  /** Start and end of the backup's WAL; throws with what is missing. */
  positions(): { startLsn: string; timeline: number; stopLsn: string; stopTimeline: number } {
    if (this.error) throw new Error(`cannot read the tar stream of pg_basebackup: ${this.error}`);
    if (this.label === undefined) throw new Error('the tar stream of pg_basebackup has no backup_label');
    const start = /^START WAL LOCATION: ([0-9A-F]+\/[0-9A-F]+)/m.exec(this.label);
    const tli = /^START TIMELINE: (\d+)/m.exec(this.label);
    if (!start || !tli) throw new Error(`backup_label has no start position or timeline: ${JSON.stringify(this.label)}`);
    if (!this.manifestSeen) throw new Error('the tar stream of pg_basebackup has no backup_manifest (a server older than PostgreSQL 13, or --no-manifest)');
    const tail = Buffer.concat(this.manifestParts).toString('utf8');
    const ranges = [...tail.matchAll(/\{\s*"Timeline"\s*:\s*(\d+)\s*,\s*"Start-LSN"\s*:\s*"([0-9A-F]+\/[0-9A-F]+)"\s*,\s*"End-LSN"\s*:\s*"([0-9A-F]+\/[0-9A-F]+)"\s*\}/g)];
    if (ranges.length === 0) throw new Error('backup_manifest has no WAL-Ranges');
    // On a replica promoted during the backup there are several ranges: the stop is the highest.
    let stop = ranges[0]!;
    for (const r of ranges) if (parseLsn(r[3]!) > parseLsn(stop[3]!)) stop = r;
    return { startLsn: start[1]!, timeline: Number(tli[1]), stopLsn: stop[3]!, stopTimeline: Number(stop[1]) };
  }
}

/** A tar number field: octal text, or base-256 when the high bit of the first byte is set. */
function tarNumber(field: Buffer): number {
  if (field[0]! & 0x80) {
    let v = field[0]! & 0x7f;
    for (let i = 1; i < field.length; i++) v = v * 256 + field[i]!;
    return v;
  }
  const text = field.toString('latin1').replace(/[\0 ]+$/g, '').replace(/^[\0 ]+/, '');
  return text === '' ? 0 : parseInt(text, 8);
}

/**
 * A pass-through stream that hashes (sha256) and counts what goes through it; `beforeEnd` can
 * hold back the end of the stream (and fail it).
 */
export class HashTap extends Transform {
  readonly hash = createHash('sha256');
  bytes = 0;
  constructor(
    private readonly onChunk: (chunk: Buffer) => void = () => undefined,
    private readonly beforeEnd: () => Promise<void> = async () => undefined,
  ) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    this.onChunk(chunk);
    cb(null, chunk);
  }
  override _flush(cb: TransformCallback): void {
    this.beforeEnd().then(() => cb(), cb);
  }
}

interface ServerInfo {
  systemIdentifier: string;
  postgresVersion: string;
  inRecovery: boolean;
  segmentSize: number;
  now: Date;
}

async function serverInfo(o: BaseBackupOptions): Promise<ServerInfo> {
  return withClient({ host: o.host, port: o.port, credentials: o.sql, connectTimeoutMs: 10_000 }, async (c) => {
    const r = await c.query<{ sysid: string; version: string; recovery: boolean; segsize: string; now: Date }>(
      `SELECT (SELECT system_identifier::text FROM pg_control_system()) AS sysid, current_setting('server_version') AS version,
              pg_is_in_recovery() AS recovery, current_setting('wal_segment_size', true) AS segsize, clock_timestamp() AS now`,
    );
    const row = r.rows[0]!;
    const seg = /^(\d+)\s*(MB|GB|kB)?$/.exec(row.segsize ?? '16MB');
    const unit = { kB: 1024, MB: 1024 ** 2, GB: 1024 ** 3 }[seg?.[2] ?? 'MB'] ?? 1;
    return {
      systemIdentifier: row.sysid,
      // "15.10 (Debian 15.10-0+deb12u1)" → "15.10"
      postgresVersion: /^\d+(\.\d+)?/.exec(row.version)?.[0] ?? row.version,
      inRecovery: row.recovery,
      segmentSize: seg ? Number(seg[1]) * unit : 16 * 1024 ** 2,
      now: row.now,
    };
  });
}

async function serverNow(o: BaseBackupOptions): Promise<Date> {
  return withClient({ host: o.host, port: o.port, credentials: o.sql, connectTimeoutMs: 10_000 }, async (c) => (await c.query<{ now: Date }>('SELECT clock_timestamp() AS now')).rows[0]!.now);
}

/** Refuses to put a backup of one database into the archive of another. */
async function checkIdentity(o: BaseBackupOptions, systemIdentifier: string): Promise<void> {
  const key = archiveKeys.identity(o.path);
  if (!(await o.store.head(key))) return; // the WAL archiver writes it with the first segment
  const id = JSON.parse((await o.store.getBuffer(key)).toString('utf8')) as Partial<ArchiveIdentity>;
  if (id.systemIdentifier !== undefined && id.systemIdentifier !== systemIdentifier) {
    throw new Error(
      `${o.store.location}/${o.path} holds the archive of another database (system identifier ${id.systemIdentifier}, ` +
        `cluster ${id.namespace}/${id.cluster}); this server is ${systemIdentifier}: refusing to mix them`,
    );
  }
}

/** Streams pg_basebackup into the store as <path>/base/<id>/data.tar.gz; returns what the manifest needs. */
async function streamBackup(o: BaseBackupOptions, id: string, segmentSize: number) {
  const log = o.log;
  const key = archiveKeys.baseData(o.path, id);
  const walTimeoutMs = o.walTimeoutMs ?? 10 * 60_000;
  const ac = new AbortController();
  const onOuterAbort = () => fail(new Error('cancelled'));
  o.signal?.addEventListener('abort', onOuterAbort, { once: true });

  const args = ['-h', o.host, '-p', String(o.port), '-U', o.replication.username, '-D', '-', '-Ft', '-X', 'none', '-c', 'fast', '-v', '--no-password', '-l', `pgpilot ${id}`];
  const bin = join(o.pgBin, 'pg_basebackup');
  log?.info({ key, args }, 'base backup started');
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PGPASSWORD: o.replication.password } });

  const stderr: string[] = [];
  let archiveTimer: NodeJS.Timeout | undefined;
  createInterface({ input: child.stderr!, crlfDelay: Infinity }).on('line', (line) => {
    const text = line.trim();
    if (!text) return;
    stderr.push(text);
    if (stderr.length > 50) stderr.shift();
    log?.debug({ tool: 'pg_basebackup' }, text);
    // The server waits for archive_command to take the backup's last segment, without a limit.
    if (/waiting for required WAL segments to be archived/.test(text) && !archiveTimer) {
      archiveTimer = setTimeout(
        () => fail(new Error(`PostgreSQL has waited more than ${Math.round(walTimeoutMs / 1000)} s for archive_command to archive the backup's last WAL segment: is WAL archiving working?`)),
        walTimeoutMs,
      );
    }
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: Error }>((resolve) => {
    child.once('error', (error) => resolve({ code: null, signal: null, error }));
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });

  let firstError: Error | undefined;
  function fail(err: Error): void {
    firstError ??= err;
    ac.abort(err);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  }

  const tar = new BackupTarReader();
  const raw = new HashTap(
    (chunk) => {
      tar.write(chunk);
      o.onProgress?.(raw.bytes);
    },
    // Nothing reaches the store's last part before pg_basebackup has succeeded: a failed backup
    // never leaves a complete-looking data object behind.
    async () => {
      const r = await exited;
      if (r.error) throw new Error(`cannot run ${bin}: ${r.error.message}`);
      if (r.code !== 0) throw new ToolError('pg_basebackup', r.code, r.signal, stderr);
      tar.positions();
    },
  );
  const stored = new HashTap();
  const body = new PassThrough();
  const uploading = o.store.put(key, body, { signal: ac.signal }).catch((err: Error) => {
    fail(err);
    throw err;
  });
  const streaming = pipeline(child.stdout!, raw, new ParallelGzip({ level: o.level ?? 1 }), stored, body, { signal: ac.signal }).catch((err: Error) => {
    fail(err);
    throw err;
  });
  try {
    await Promise.all([streaming, uploading]);
  } catch {
    await Promise.allSettled([streaming, uploading, exited]);
    const cause = firstError!;
    const tail = stderr.slice(-5).join(' | ');
    const withTail = cause instanceof ToolError || !tail ? cause.message : `${cause.message} (pg_basebackup: ${tail})`;
    throw new Error(`base backup ${id} failed: ${withTail}`, { cause });
  } finally {
    clearTimeout(archiveTimer);
    o.signal?.removeEventListener('abort', onOuterAbort);
  }
  const pos = tar.positions();
  const stopBefore = formatLsn(parseLsn(pos.stopLsn) - 1n); // the stop position is an end: its last byte
  return {
    ...pos,
    startWal: walNameForLsn(pos.startLsn, pos.timeline, segmentSize),
    stopWal: walNameForLsn(stopBefore, pos.stopTimeline, segmentSize),
    dataBytes: raw.bytes,
    storedBytes: stored.bytes,
    dataSha256: raw.hash.digest('hex'),
    storedSha256: stored.hash.digest('hex'),
  };
}

/** Waits until `stopWal` is archived, switching WAL once (on the primary, or through switchWal). */
async function waitForStopSegment(o: BaseBackupOptions, id: string, stopWal: string, fromReplica: boolean): Promise<void> {
  const key = archiveKeys.wal(o.path, stopWal);
  const timeoutMs = o.walTimeoutMs ?? 10 * 60_000;
  const deadline = Date.now() + timeoutMs;
  let switched = false;
  for (;;) {
    if (await o.store.head(key)) return;
    if (!switched) {
      switched = true;
      if (!fromReplica) {
        await withClient({ host: o.host, port: o.port, credentials: o.sql, connectTimeoutMs: 10_000 }, (c) => c.query('SELECT pg_switch_wal()'));
      } else if (o.switchWal) {
        await o.switchWal();
      } else {
        o.log?.warn({ stopWal }, 'backup from a replica without a switchWal callback: waiting for the primary to complete the segment by itself');
      }
    }
    if (Date.now() >= deadline) {
      throw new Error(
        `base backup ${id}: WAL segment ${stopWal}, which the backup needs to be consistent, is not in the archive ` +
          `(${o.store.location}/${key}) after ${Math.round(timeoutMs / 1000)} s: is WAL archiving working?`,
      );
    }
    await sleep(o.pollMs ?? 1000, undefined, o.signal ? { signal: o.signal } : {});
  }
}

/**
 * Takes a base backup of the server at host:port into <path>/base/<id>/, waits until the WAL it
 * needs is archived, and writes its manifest last. On failure nothing complete-looking remains:
 * pg_basebackup is killed, the upload aborted, no manifest written (and a data object that was
 * already stored is removed).
 */
export async function takeBaseBackup(o: BaseBackupOptions): Promise<BackupManifest> {
  const level = o.level ?? 1;
  if (!Number.isInteger(level) || level < 0 || level > 9) throw new Error(`invalid gzip level ${level}: 0-9`);
  o.signal?.throwIfAborted();
  const info = await serverInfo(o);
  await checkIdentity(o, info.systemIdentifier);
  const id = backupIdAt(info.now);
  const existing = await o.store.list(`${archiveKeys.basePrefix(o.path)}${id}/`);
  if (existing.length > 0) throw new Error(`base backup ${id} already exists in ${o.store.location}/${o.path}: start the next one a second later`);
  const started = Date.now();

  const result = await streamBackup(o, id, info.segmentSize);
  try {
    const stopTime = await serverNow(o);
    await waitForStopSegment(o, id, result.stopWal, info.inRecovery);
    const manifest: BackupManifest = {
      id,
      cluster: o.cluster,
      namespace: o.namespace,
      backupName: o.backupName,
      systemIdentifier: info.systemIdentifier,
      postgresVersion: info.postgresVersion,
      instance: o.instance,
      fromReplica: info.inRecovery,
      timeline: result.timeline,
      startLsn: result.startLsn,
      stopLsn: result.stopLsn,
      startWal: result.startWal,
      stopWal: result.stopWal,
      startTime: info.now.toISOString(),
      stopTime: stopTime.toISOString(),
      compression: { algorithm: 'gzip', level },
      dataBytes: result.dataBytes,
      storedBytes: result.storedBytes,
      dataSha256: result.dataSha256,
      storedSha256: result.storedSha256,
    };
    const text = Buffer.from(JSON.stringify(manifest, null, 2) + '\n');
    await o.store.put(archiveKeys.baseManifest(o.path, id), text, { metadata: { [SHA256_METADATA]: createHash('sha256').update(text).digest('hex') } });
    o.log?.info({ id, seconds: (Date.now() - started) / 1000, dataBytes: result.dataBytes, storedBytes: result.storedBytes, stopWal: result.stopWal }, 'base backup completed');
    return manifest;
  } catch (err) {
    await o.store.delete([archiveKeys.baseData(o.path, id)]).catch(() => undefined);
    throw err;
  }
}
