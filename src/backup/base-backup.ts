// A base backup streamed from PostgreSQL straight into the object store, never staged on local
// disk:
//
//   pg_basebackup -D - -Ft -X none → sha256 + bytes of the tar → gzip → sha256 + bytes → store.put
//
// The pieces: pg_basebackup's run (pg-basebackup-stream.ts), the WAL positions read from the tar
// as it passes (backup-tar-reader.ts), hashing while streaming (hash-tap.ts), and the gzip,
// ParallelGzip: 4 MiB pieces compressed on the thread pool, a few at a time, written out in order
// as concatenated gzip members (one valid gzip file; restore's gunzip reads them all).
//
// WAL is not in the tar (-X none): it comes from the WAL archive, so the backup is usable once the
// segment holding its stop position is archived. The manifest (backup.json) is written last and
// only then: a folder without one is an incomplete backup that restore and retention ignore.
import type { LibpqTls, TlsVerify } from '../postgres/tls-client.js';
import { createHash } from 'node:crypto';
import { PassThrough } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../runtime/logger.js';
import type { Credentials } from '../postgres/files.js';
import { formatLsn, parseLsn } from '../postgres/lsn.js';
import { withClient } from '../postgres/sql.js';
import { ToolError } from '../postgres/tool.js';
import { archiveKeys, SHA256_METADATA, type ArchiveIdentity, type BackupManifest } from './archive-layout.js';
import { BackupTarReader } from './backup-tar-reader.js';
import { HashTap } from './hash-tap.js';
import type { ObjectStore } from './object-store.js';
import { ParallelGzip } from './parallel-gzip.js';
import { streamPgBasebackup } from './pg-basebackup-stream.js';
import { walNameForLsn } from '../postgres/wal-names.js';
import { readArchiveIdentity } from './archive-identity.js';


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
  /** TLS of those queries. */
  tls?: TlsVerify;
  /** pg_basebackup's TLS: verify-full and the replication client certificate. */
  libpqTls?: LibpqTls;
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

interface ServerInfo {
  systemIdentifier: string;
  postgresVersion: string;
  inRecovery: boolean;
  segmentSize: number;
  now: Date;
}

async function serverInfo(o: BaseBackupOptions): Promise<ServerInfo> {
  return withClient({ host: o.host, port: o.port, credentials: o.sql, connectTimeoutMs: 10_000, tls: o.tls }, async (c) => {
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
  return withClient({ host: o.host, port: o.port, credentials: o.sql, connectTimeoutMs: 10_000, tls: o.tls }, async (c) => (await c.query<{ now: Date }>('SELECT clock_timestamp() AS now')).rows[0]!.now);
}

/** Refuses to put a backup of one database into the archive of another. */
async function checkIdentity(o: BaseBackupOptions, systemIdentifier: string): Promise<void> {
  const id: Partial<ArchiveIdentity> | undefined = await readArchiveIdentity(o.store, o.path);
  if (!id) return; // the WAL archiver writes it with the first segment
  if (id.systemIdentifier !== undefined && id.systemIdentifier !== systemIdentifier) {
    throw new Error(
      `${o.store.location}/${o.path} holds the archive of another database (system identifier ${id.systemIdentifier}, ` +
        `cluster ${id.namespace}/${id.cluster}); this server is ${systemIdentifier}: refusing to mix them`,
    );
  }
}

/** Streams pg_basebackup into the store as <path>/base/<id>/data.tar.gz; returns what the manifest needs. */
async function streamBackup(o: BaseBackupOptions, id: string, segmentSize: number) {
  const key = archiveKeys.baseData(o.path, id);
  const walTimeoutMs = o.walTimeoutMs ?? 10 * 60_000;
  const ac = new AbortController();
  const onOuterAbort = () => fail(new Error('cancelled'));
  o.signal?.addEventListener('abort', onOuterAbort, { once: true });

  let archiveTimer: NodeJS.Timeout | undefined;
  const run = streamPgBasebackup({
    ...(o.libpqTls ? { tls: o.libpqTls } : {}),
    pgBin: o.pgBin,
    host: o.host,
    port: o.port,
    replication: o.replication,
    label: `pgpilot ${id}`,
    ...(o.log ? { log: o.log } : {}),
    onLine: (text) => {
      // The server waits for archive_command to take the backup's last segment, without a limit.
      if (/waiting for required WAL segments to be archived/.test(text) && !archiveTimer) {
        archiveTimer = setTimeout(
          () => fail(new Error(`PostgreSQL has waited more than ${Math.round(walTimeoutMs / 1000)} s for archive_command to archive the backup's last WAL segment: is WAL archiving working?`)),
          walTimeoutMs,
        );
      }
    },
  });
  o.log?.info({ key, args: run.args }, 'base backup started');

  let firstError: Error | undefined;
  function fail(err: Error): void {
    firstError ??= err;
    ac.abort(err);
    run.kill();
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
      await run.done;
      tar.positions();
    },
  );
  const stored = new HashTap();
  const body = new PassThrough();
  const uploading = o.store.put(key, body, { signal: ac.signal }).catch((err: Error) => {
    fail(err);
    throw err;
  });
  const streaming = pipeline(run.stdout, raw, new ParallelGzip({ level: o.level ?? 1 }), stored, body, { signal: ac.signal }).catch((err: Error) => {
    fail(err);
    throw err;
  });
  try {
    await Promise.all([streaming, uploading]);
  } catch {
    await Promise.allSettled([streaming, uploading, run.done]);
    const cause = firstError!;
    const tail = run.lastLines(5).join(' | ');
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
        await withClient({ host: o.host, port: o.port, credentials: o.sql, connectTimeoutMs: 10_000, tls: o.tls }, (c) => c.query('SELECT pg_switch_wal()'));
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
