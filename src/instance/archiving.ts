// WAL archiving inside the agent (PGPILOT_BACKUP_LOCATION), and the size of pg_wal for status.
//
// The WalArchiver (src/backup/wal-archiver.ts) runs from the first start of postgres on this data
// directory until the agent stops, whatever the role: a replica simply has no .ready files, and a
// promoted one starts producing them at once. postgresql.conf (the operator's ConfigMap) has
// archive_mode=on and archive_command = archiveCommand(archiveMarkerDir(layout)).
import { readdir, stat, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import { openStore } from '../backup/open-store.js';
import { WalArchiver, type ArchiverStatus, type ArchiveOwner } from '../backup/wal-archiver.js';
import type { Logger } from '../runtime/logger.js';
import type { ArchivingStatus, WalUsage } from './api-types.js';
import type { BackupSettings } from './env.js';
import { archiveMarkerDir, type Layout } from './layout.js';

/** The status fields the API reports (pure). */
export function archivingStatus(s: ArchiverStatus): ArchivingStatus {
  return {
    lastArchivedWal: s.lastArchivedWal,
    lastArchivedTime: s.lastArchivedTime,
    lastFailedWal: s.lastFailedWal,
    lastFailureTime: s.lastFailureTime,
    lastFailure: s.lastFailure,
    backlogSegments: s.backlogSegments,
    inFlight: s.inFlight,
    archivedCount: s.archivedCount,
  };
}

export interface ArchivingOptions {
  backup: BackupSettings;
  layout: Layout;
  /** The running server's system identifier, this cluster and namespace (read at the first upload). */
  identity: () => Promise<ArchiveOwner>;
  log: Logger;
  env?: NodeJS.ProcessEnv;
}

export class Archiving {
  private readonly archiver: WalArchiver;
  private started: Promise<void> | undefined;

  constructor(o: ArchivingOptions) {
    let owner: ArchiveOwner | undefined;
    this.archiver = new WalArchiver({
      pgdata: o.layout.pgdata,
      ...(o.layout.walDir ? { walDir: o.layout.walDir } : {}),
      markerDir: archiveMarkerDir(o.layout),
      store: openStore(o.backup.location.store, o.env ?? process.env),
      path: o.backup.location.path,
      level: o.backup.compressionLevel,
      identity: async () => (owner ??= await o.identity()),
      log: o.log,
    });
  }

  /** Idempotent; after a failure, the next call tries again. */
  start(): Promise<void> {
    this.started ??= this.archiver.start().catch((err: unknown) => {
      this.started = undefined;
      throw err;
    });
    return this.started;
  }

  status(): ArchivingStatus {
    return archivingStatus(this.archiver.status());
  }

  /** Waits for the uploads in flight, at most `timeoutMs`. */
  async stop(timeoutMs: number): Promise<void> {
    if (!this.started) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.archiver.stop(), new Promise((r) => (timer = setTimeout(r, Math.max(0, timeoutMs))))]);
    clearTimeout(timer);
  }
}

/** Used share of a file system as df computes it: used / (used + available to users), 0-100, one decimal (pure). */
export function usedPercent(fs: { blocks: number; bfree: number; bavail: number }): number | null {
  const used = fs.blocks - fs.bfree;
  const total = used + fs.bavail;
  if (!(total > 0)) return null;
  return Math.round((used / total) * 1000) / 10;
}

/** The size of pg_wal (readdir + stat) and how full its volume is, cached for `ttlMs`. */
export class WalUsageProbe {
  private cached: { at: number; value: Promise<WalUsage | null> } | undefined;

  constructor(
    private readonly walPath: string,
    private readonly ttlMs = 5000,
  ) {}

  get(): Promise<WalUsage | null> {
    const now = Date.now();
    if (this.cached && now - this.cached.at < this.ttlMs) return this.cached.value;
    const value = this.measure();
    this.cached = { at: now, value };
    return value;
  }

  /** The next get() measures again (the data directory was just created or replaced). */
  invalidate(): void {
    this.cached = undefined;
  }

  private async measure(): Promise<WalUsage | null> {
    let entries;
    try {
      entries = await readdir(this.walPath, { withFileTypes: true });
    } catch {
      return null; // no data directory (yet)
    }
    let bytes = 0;
    await Promise.all(
      entries
        .filter((e) => e.isFile())
        .map(async (e) => {
          try {
            bytes += (await stat(join(this.walPath, e.name))).size;
          } catch {
            /* recycled or removed meanwhile */
          }
        }),
    );
    let volumeUsedPercent: number | null = null;
    try {
      volumeUsedPercent = usedPercent(await statfs(this.walPath));
    } catch {
      /* unknown */
    }
    return { bytes, volumeUsedPercent };
  }
}
