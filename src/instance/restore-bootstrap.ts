// Bootstrap by restore ({mode: 'restore'}): a new cluster from a base backup and archived WAL of
// another one (PGPILOT_RESTORE_SOURCE), optionally to a point in time (PGPILOT_RESTORE_TARGET).
//
//   stage 'restore' (bootstrap-pending):
//     1. list the source archive's backups and WAL, choose the base backup for the target
//        (a target outside the recoverable window fails here, stating the window)
//     2. download, verify and extract it into PGDATA (pg_wal on PGPILOT_WAL_DIR when set)
//     3. recovery settings in postgresql.auto.conf: restore_command = the spool handoff
//        (<stateDir>/restore-spool, served by a WalFetcher prefetching 8 segments), the target,
//        recovery_target_action = promote
//     4. postgres with hba_file = <stateDir>/restore-hba.conf ("local all all trust" only): the
//        restored database holds the SOURCE cluster's passwords, so the agent talks to it over
//        the pod-private unix socket; no host line, so no client reaches it over TCP meanwhile.
//        Recovery replays WAL until the target or the end of the archive, then promotes. A target
//        it never reaches, or WAL that cannot be restored, makes postgres exit FATAL: the bootstrap
//        fails saying why (the archive's end, or the corrupt object).
//   stage 'restore-roles' (written once promoted):
//     5. as superuser over the socket: this cluster's passwords for the superuser, the
//        replication role and the application owner (created when the source lacked them)
//     6. recovery settings removed, postgres stopped, the temporary hba dropped, started normally
//        as the primary (the readiness probe then logs in over TCP with this cluster's secret).
//
// A restart of the agent in stage 'restore' discards the partial data directory (the operator
// asks again); in 'restore-roles' it finishes steps 5-6. Any failure leaves an empty data
// directory and the reason in lastError and restore.error.
//
// WAL archiving goes to PGPILOT_BACKUP_LOCATION only, never to the source (env.ts refuses the
// same location). Nothing is archived during recovery (not a primary); after the promotion the
// new timeline's history file and WAL go to this cluster's own archive.
import { rm } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { RecoveryWindow } from '../backup/catalog.js';
import { listBackups, listWal, recoveryWindow } from '../backup/catalog.js';
import { restoreCommand } from '../postgres/handoff.js';
import { openStore } from '../backup/open-store.js';
import { chooseBaseBackup, recoverySettings, type RecoveryTarget } from '../backup/recovery-plan.js';
import { clearRecoveryConfig, restoreBaseBackup, writeRecoveryConfig } from '../backup/restore.js';
import { WalFetcher } from '../backup/wal-fetcher.js';
import type { Logger } from '../runtime/logger.js';
import type { RestoreStatus } from './api-types.js';
import { clearIncompleteDataDir } from './bootstrap.js';
import type { AgentSettings } from './env.js';
import { readCredentials, removeFile, writePrivateFile } from '../postgres/files.js';
import { RESTORE_HBA, restoreHbaFile, restoreSpoolDir, type Layout } from './layout.js';
import type { PostgresProcess } from './postgres-process.js';
import * as sql from '../postgres/sql.js';
import { POD_ENV } from '../api/pod-env.js';
import { errorText } from '../util/error-text.js';

const RESTORE_PREFETCH = 8;
/** The promoted server, started with the temporary hba, must accept the agent within this. */
const READY_TIMEOUT_MS = 10 * 60_000;

/** "time 2026-…", "LSN 0/3000060", …: the target as a person names it (pure). */
export function describeTarget(t: RecoveryTarget): string {
  if (t.time !== undefined) return `time ${t.time}`;
  if (t.lsn !== undefined) return `LSN ${t.lsn}`;
  if (t.xid !== undefined) return `transaction ${t.xid}`;
  if (t.name !== undefined) return `restore point ${JSON.stringify(t.name)}`;
  if (t.immediate) return 'immediate (the end of the base backup)';
  return 'the end of the archive';
}

export interface RecoveryFailureInput {
  target: RecoveryTarget;
  window: RecoveryWindow | null;
  /** "s3://bucket/path" */
  location: string;
  /** The fetcher's last failure (a failed/ answer: corrupt object, store errors). */
  fetcherError: string | null;
  /** The server's last log lines. */
  serverLines: string[];
  /** "exit code 1", "signal SIGKILL" */
  lastExit: string | null;
  /** PostgreSQL's "last completed transaction was at log time …", if it said so. */
  lastTransaction?: string | null;
}

/** The time in "LOG:  last completed transaction was at log time 2026-… +00" (pure). */
export function lastTransactionTime(line: string): string | null {
  return /last completed transaction was at log time (.+?)\s*$/.exec(line)?.[1] ?? null;
}

/** The segment in "LOG:  restored log file "000000010000000000000005" from archive" (pure). */
export function restoredSegment(line: string): string | null {
  return /restored log file "([0-9A-F]{24})" from archive/.exec(line)?.[1] ?? null;
}

/** Why recovery stopped, from what the fetcher and postgres said (pure). */
export function recoveryFailureMessage(i: RecoveryFailureInput): string {
  const fatal = i.serverLines.filter((l) => /\b(FATAL|PANIC):/.test(l)).map((l) => l.replace(/^.*?\b(FATAL|PANIC):\s+/, ''));
  const window = i.window ? `; recoverable window ${i.window.first} … ${i.window.last} (LSN ${i.window.firstLsn} … ${i.window.lastLsn}) of ${i.location}` : '';
  if (i.fetcherError) return `recovery stopped: ${i.fetcherError}`;
  if (fatal.some((l) => l.includes('recovery ended before configured recovery target was reached'))) {
    const last = i.lastTransaction ?? i.serverLines.map(lastTransactionTime).filter((t) => t !== null).at(-1);
    const commit = last ? `the last transaction in the archive was committed at ${last}; ` : '';
    const end = i.window ? `the archive's WAL ends at ${i.window.last} (LSN ${i.window.lastLsn})` : 'the archive has no more WAL';
    return `recovery ended before the target ${describeTarget(i.target)} was reached: ${commit}${end}${window}`;
  }
  if (fatal.some((l) => l.includes('WAL ends before end of online backup') || l.includes('WAL ends before consistent recovery point'))) {
    return `recovery ended before the base backup became consistent: the archive lacks WAL the backup needs (${fatal.at(-1)})${window}`;
  }
  const last = fatal.slice(-2).join(' | ');
  return `postgres exited during recovery (${i.lastExit ?? 'unknown'})${last ? `: ${last}` : ''}${window}`;
}

export interface RestoreHost {
  settings: AgentSettings;
  layout: Layout;
  pg: PostgresProcess;
  log: Logger;
  env: NodeJS.ProcessEnv;
  /** Aborted when the agent shuts down. */
  signal: AbortSignal;
  /**
   * Switches the postgres command line (hba_file) and the agent's own connections (unix socket,
   * trust) to the restore mode, or back.
   */
  useRestoreHba(on: boolean): void;
  /** Connection options of the agent's connections to its server (as useRestoreHba says). */
  local(): Promise<sql.ConnectOptions>;
  /** A failed login during the restore (the source may lack this cluster's superuser role). */
  noteLoginFailure(err: unknown): void;
  setPending(stage: 'restore' | 'restore-roles' | null): Promise<void>;
  /** Starts postgres normally and waits until it accepts connections. */
  startPostgres(): Promise<void>;
  /** Starts WAL archiving when configured (idempotent). */
  startArchiving(): Promise<void>;
}

export class RestoreBootstrap {
  private st: RestoreStatus = { phase: 'downloading', backupId: null, bytes: 0, fetchedSegments: 0, avgFetchMs: 0, error: null };
  private fetcher: WalFetcher | undefined;
  /** Segments PostgreSQL said it restored from the archive, and its last commit time. */
  private readonly restored = new Set<string>();
  private lastTransaction: string | null = null;

  constructor(private readonly h: RestoreHost) {}

  status(): RestoreStatus {
    if (this.fetcher) {
      const f = this.fetcher.stats();
      // From the server log (LOG level, PostgreSQL's default); the fetcher's request count
      // (which includes lookups of files that do not exist) only when the log says nothing.
      this.st.fetchedSegments = this.restored.size || f.requested;
      this.st.avgFetchMs = f.avgFetchMs;
    }
    return { ...this.st };
  }

  private readonly onServerLine = (line: string) => {
    const seg = restoredSegment(line);
    if (seg) this.restored.add(seg);
    const t = lastTransactionTime(line);
    if (t) this.lastTransaction = t;
  };

  private check(): void {
    if (this.h.signal.aborted) throw new Error('the restore was interrupted: the agent is shutting down');
  }

  /** Steps 1-6 (stage 'restore', then 'restore-roles'). */
  async run(): Promise<void> {
    const { settings: s, layout, log } = this.h;
    const r = s.restore;
    if (!r) throw new Error(`${POD_ENV.restoreSource} is not set: this pod has no archive to restore from`);
    try {
      await clearIncompleteDataDir(layout, log);
      await this.h.setPending('restore');
      const store = openStore(r.source.store, this.h.env);
      const location = `${store.location}/${r.source.path}`;

      // 1. what the archive holds
      const t0 = Date.now();
      const [{ backups, incomplete }, wal] = await Promise.all([listBackups(store, r.source.path), listWal(store, r.source.path)]);
      const window = recoveryWindow(backups, wal);
      const manifest = chooseBaseBackup({ backups, window, target: r.target, ...(r.backupId ? { backupId: r.backupId } : {}), location });
      this.st.backupId = manifest.id;
      log.info(
        { location, backupId: manifest.id, backupStopTime: manifest.stopTime, target: describeTarget(r.target), window, backups: backups.length, incomplete: incomplete.length, walFiles: wal.length, ms: Date.now() - t0 },
        'restore: base backup chosen',
      );
      this.check();

      // 2. the base backup
      this.st.phase = 'downloading';
      let lastLog = Date.now();
      const started = Date.now();
      const restored = await restoreBaseBackup({
        store,
        path: r.source.path,
        manifest,
        pgdata: layout.pgdata,
        ...(layout.walDir ? { walDir: layout.walDir } : {}),
        log,
        signal: this.h.signal,
        onProgress: (bytes) => {
          this.st.bytes = bytes;
          if (Date.now() - lastLog >= 5000) {
            lastLog = Date.now();
            const mib = bytes / 2 ** 20;
            log.info(
              { bytes, of: manifest.storedBytes, percent: Math.round((bytes / Math.max(1, manifest.storedBytes)) * 100), mibPerSecond: Math.round((mib / ((Date.now() - started) / 1000)) * 10) / 10 },
              'restore: downloading the base backup',
            );
          }
        },
      });
      log.info({ seconds: restored.seconds, dataBytes: restored.dataBytes, storedBytes: restored.storedBytes }, 'restore: base backup in place');
      this.check();

      // 3. recovery settings, the spool and its fetcher, the temporary hba
      const spool = restoreSpoolDir(layout);
      await writeRecoveryConfig(layout.pgdata, recoverySettings(r.target, restoreCommand(spool)));
      await writePrivateFile(restoreHbaFile(layout), RESTORE_HBA);
      this.fetcher = new WalFetcher({ spoolDir: spool, store, path: r.source.path, log, prefetch: RESTORE_PREFETCH });
      await this.fetcher.start();

      // 4. recovery
      this.st.phase = 'recovering';
      this.h.useRestoreHba(true);
      await this.h.startArchiving();
      const t1 = Date.now();
      log.info({ target: describeTarget(r.target) }, 'restore: starting postgres to replay archived WAL (unix socket only until finished)');
      this.h.pg.on('line', this.onServerLine);
      this.h.pg.start({ restartOnCrash: false });
      try {
        await this.waitPromoted(() =>
          recoveryFailureMessage({
            target: r.target,
            window,
            location,
            fetcherError: this.fetcher?.stats().lastError ?? null,
            serverLines: this.h.pg.recentServerLines(),
            lastExit: this.h.pg.lastExit,
            lastTransaction: this.lastTransaction,
          }),
        );
      } finally {
        this.h.pg.off('line', this.onServerLine);
      }
      const f = this.fetcher.stats();
      log.info(
        { seconds: (Date.now() - t1) / 1000, segmentsRestored: this.restored.size, walRequested: f.requested, fromPrefetch: f.servedFromPrefetch, downloaded: f.downloaded, avgFetchMs: f.avgFetchMs, lastTransaction: this.lastTransaction },
        'restore: recovery ended; promoted',
      );
      await this.h.setPending('restore-roles');
      this.status();
      await this.fetcher.stop();
      await rm(spool, { recursive: true, force: true });
    } catch (err) {
      await this.fail(err);
      throw err;
    }
    // 5-6: from here on the data directory is a whole database; a failure keeps it (and the
    // stage), and an agent restart finishes the step.
    await this.finish();
  }

  /** Steps 5-6; also the resumption of stage 'restore-roles' after an agent restart. */
  async finish(): Promise<void> {
    const { layout, log, pg } = this.h;
    try {
      this.st.phase = 'finishing';
      this.h.useRestoreHba(true);
      if (!pg.running) {
        await writePrivateFile(restoreHbaFile(layout), RESTORE_HBA);
        await this.h.startArchiving();
        pg.start();
        await pg.waitReady(READY_TIMEOUT_MS);
      }
      const [superuser, replication, app] = await Promise.all(
        (['superuser', 'replication', 'app'] as const).map((k) => readCredentials(this.h.settings.secretsDir, k)),
      );
      const owner = { username: this.h.settings.initdb.owner, password: app!.password };
      await sql.withClient(await this.h.local(), (c) =>
        sql.adoptRestoredDatabase(c, { superuser: superuser!, replication: replication!, owner, database: this.h.settings.initdb.database }),
      );
      log.info({ superuser: superuser!.username, replication: replication!.username, owner: owner.username, database: this.h.settings.initdb.database }, "restore: this cluster's passwords are set");
      await clearRecoveryConfig(layout.pgdata);
      await pg.stop('fast');
      await removeFile(restoreHbaFile(layout));
      this.h.useRestoreHba(false);
      await this.h.setPending(null);
      await this.h.startPostgres();
      this.st.phase = 'done';
    } catch (err) {
      this.st.phase = 'failed';
      this.st.error = `finishing the restore failed (the restored database is kept; a restart of the agent resumes this step): ${errorText(err)}`;
      await pg.stop('fast').catch(() => undefined);
      throw new Error(this.st.error, { cause: err });
    }
  }

  /** Until pg_is_in_recovery() is false; `why()` explains an exit of postgres. */
  private async waitPromoted(why: () => string): Promise<void> {
    const { pg, log } = this.h;
    let lastLog = Date.now();
    for (;;) {
      this.check();
      if (!pg.running) throw new Error(why());
      try {
        const row = await sql.withClient({ ...(await this.h.local()), connectTimeoutMs: 2000, queryTimeoutMs: 5000 }, async (c) =>
          (await c.query<{ r: boolean; lsn: string | null }>('SELECT pg_is_in_recovery() AS r, pg_last_wal_replay_lsn()::text AS lsn')).rows[0],
        );
        if (row && !row.r) return;
        if (Date.now() - lastLog >= 10_000) {
          lastLog = Date.now();
          const st = this.status();
          log.info({ replayLsn: row?.lsn ?? null, walRequested: st.fetchedSegments, avgFetchMs: st.avgFetchMs }, 'restore: replaying archived WAL');
        }
      } catch (err) {
        // not accepting connections before the backup is consistent; exits are checked above
        this.h.noteLoginFailure(err);
      }
      await sleep(200);
    }
  }

  /** Leaves nothing behind: postgres stopped, empty data directory, no pending stage. */
  private async fail(err: unknown): Promise<void> {
    this.st.phase = 'failed';
    this.st.error = errorText(err);
    const { layout, log, pg } = this.h;
    this.status();
    try {
      await pg.stop('immediate');
      await this.fetcher?.stop();
      await clearIncompleteDataDir(layout, log);
      await rm(restoreSpoolDir(layout), { recursive: true, force: true });
      await removeFile(restoreHbaFile(layout));
      this.h.useRestoreHba(false);
      await this.h.setPending(null);
    } catch (cleanup) {
      log.error({ err: cleanup instanceof Error ? cleanup.message : String(cleanup) }, 'restore: cleaning up after the failure failed');
    }
  }
}
