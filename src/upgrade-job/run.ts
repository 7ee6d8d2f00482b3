// `upgrade run`: pg_upgrade of the stopped primary's data volume, in place, resumable. The state
// file (upgrade-layout.ts) says how far an earlier run got: `swapped` is done; `prepared` or
// `upgraded` is rolled back and started over. Any failure before the swap rolls back too, so the
// volume always holds a cluster the old image can start.
import { availableParallelism } from 'node:os';
import { cp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { exists, readCredentials } from '../postgres/files.js';
import { majorOfPgVersionFile, readUpgradeState, rollbackUnfinishedUpgrade, swapClusters, writeUpgradeState } from '../postgres/pg-upgrade.js';
import { runTool } from '../postgres/tool.js';
import { upgradeLayoutOf, type UpgradeLayout, type UpgradeState } from '../postgres/upgrade-layout.js';
import type { Logger } from '../runtime/logger.js';
import type { RunSettings } from './settings.js';
import { startTempServer, writeTrustHba } from './temp-server.js';
import { controlData, initCluster, JobFailure, majorOfBin, newBindir, oldBindir, runPgUpgrade, timed } from './tools.js';

const SIGNAL_FILES = ['standby.signal', 'recovery.signal'];

async function removeSignalFiles(pgdata: string, log: Logger): Promise<void> {
  for (const f of SIGNAL_FILES) {
    if (!(await exists(join(pgdata, f)))) continue;
    await rm(join(pgdata, f), { force: true });
    log.info({ file: f }, `removed ${f}: the primary's volume is upgraded as a primary`);
  }
}

/**
 * pg_upgrade wants a cleanly shut down primary. After a crash ("in production") or from a volume
 * last used by a standby ("shut down in recovery"), the old server runs once without signal files
 * (crash recovery, as a primary) and stops with a fast shutdown.
 */
async function ensureCleanShutdown(oldBin: string, pgdata: string, layout: UpgradeLayout, log: Logger): Promise<void> {
  const state = (await controlData(oldBin, pgdata, log)).state;
  if (state === 'shut down') return;
  log.warn({ state }, `the old cluster is "${state}", not cleanly shut down: starting and stopping it once`);
  await removeSignalFiles(pgdata, log);
  const server = await startTempServer(oldBin, pgdata, layout.workDir, log);
  await server.stop();
  const after = (await controlData(oldBin, pgdata, log)).state;
  if (after !== 'shut down') throw new JobFailure(`the old cluster is still "${after}" after a start and a fast shutdown; pg_upgrade needs a cleanly shut down cluster`);
}

/** Stops a server pg_upgrade started and left behind (it was killed, or failed between steps). */
async function stopLeftoverServer(bin: string, pgdata: string, log: Logger): Promise<void> {
  if (!(await exists(join(pgdata, 'postmaster.pid')))) return;
  await runTool(join(bin, 'pg_ctl'), ['stop', '-D', pgdata, '-m', 'fast', '-w', '-t', '60'], { log }).catch((err: unknown) => log.warn({ err: String(err), pgdata }, 'could not stop a server left running'));
}

/** pg_upgrade_output.d lives in the new cluster (15+), which the rollback deletes: keep it in the work dir. */
async function keepPgUpgradeLogs(layout: UpgradeLayout, log: Logger): Promise<void> {
  const logs = join(layout.newPgdata, 'pg_upgrade_output.d');
  if (!(await exists(logs))) return;
  const dest = join(layout.workDir, `failed-${new Date().toISOString().replace(/[:.]/g, '-')}`);
  await cp(logs, dest, { recursive: true }).catch(() => undefined);
  log.info({ dest }, 'pg_upgrade logs kept');
}

/** PGDATA/postgresql.conf may be absent (the instance runs with the operator's config_file): postgres needs one to start. */
async function ensureConfFile(pgdata: string): Promise<void> {
  const conf = join(pgdata, 'postgresql.conf');
  if (!(await exists(conf))) await writeFile(conf, '# written by pgpilot upgrade run: the instance uses the operator\'s configuration\n', { mode: 0o600 });
}

export type RunOutcome = 'upgraded' | 'already-swapped';

export async function runUpgrade(s: RunSettings, log: Logger): Promise<RunOutcome> {
  const layout = upgradeLayoutOf(s.pgdata, s.walDir);
  const previous = await readUpgradeState(s.pgdata, s.walDir);
  if (previous?.stage === 'swapped') {
    log.info({ fromMajor: previous.fromMajor, toMajor: previous.toMajor }, 'the upgrade is done already (state swapped): nothing to do');
    return 'already-swapped';
  }
  if (previous) await rollbackUnfinishedUpgrade(s.pgdata, s.walDir, log);

  const [oldBin, newBin] = [await oldBindir(s.oldInstall), await newBindir()];
  const fromMajor = majorOfPgVersionFile(await readFile(join(s.pgdata, 'PG_VERSION'), 'utf8'));
  const [oldBinMajor, toMajor] = [await majorOfBin(oldBin, log), await majorOfBin(newBin, log)];
  if (oldBinMajor !== fromMajor) throw new JobFailure(`PGDATA holds a PostgreSQL ${fromMajor} cluster but the old image's PostgreSQL is ${oldBinMajor}`);
  if (toMajor <= fromMajor) throw new JobFailure(`the new image's PostgreSQL is ${toMajor}, not newer than the cluster's ${fromMajor}: nothing to upgrade to`);
  const superuser = (await readCredentials(s.secretsDir, 'superuser')).username;

  await mkdir(layout.workDir, { recursive: true, mode: 0o700 });
  await ensureConfFile(s.pgdata);
  await ensureCleanShutdown(oldBin, s.pgdata, layout, log);
  await removeSignalFiles(s.pgdata, log);
  const control = await controlData(oldBin, s.pgdata, log);

  const state: UpgradeState = { fromMajor, toMajor, mode: s.mode, stage: 'prepared', startedAt: new Date().toISOString() };
  log.info({ ...state, dataChecksums: control.dataChecksums, walSegmentBytes: control.walSegmentBytes }, `upgrading PostgreSQL ${fromMajor} → ${toMajor} (${s.mode})`);
  await writeUpgradeState(layout, state);
  try {
    for (const leftover of [layout.newPgdata, layout.newWalDir, layout.updateExtensions, join(layout.workDir, 'delete_old_cluster.sh')]) {
      if (leftover) await rm(leftover, { recursive: true, force: true });
    }
    await timed(log, 'initdb', () =>
      initCluster(newBin, {
        pgdata: layout.newPgdata, walDir: layout.newWalDir, superuser, encoding: s.encoding, locale: s.locale,
        dataChecksums: control.dataChecksums, walSegmentBytes: control.walSegmentBytes, major: toMajor,
      }, log),
    );
    const hbaFile = await writeTrustHba(layout.workDir);
    await timed(log, 'pg_upgrade', () =>
      runPgUpgrade(newBin, {
        oldBin, newBin, oldData: s.pgdata, newData: layout.newPgdata, superuser, socketDir: layout.workDir, hbaFile, mode: s.mode, jobs: availableParallelism(),
      }, layout.workDir, log),
    );
    await writeUpgradeState(layout, { ...state, stage: 'upgraded' });
    // pg_upgrade wrote it into its cwd, the work dir: where the layout keeps it.
    if (await exists(layout.updateExtensions)) log.warn({ file: layout.updateExtensions }, 'pg_upgrade wrote update_extensions.sql: run it on the upgraded cluster to update the extensions');
    await rm(join(layout.workDir, 'delete_old_cluster.sh'), { force: true }); // removeOldCluster does that
    await timed(log, 'swap', () => swapClusters(s.pgdata, s.walDir, { ...state, stage: 'upgraded' }));
  } catch (err) {
    await stopLeftoverServer(oldBin, s.pgdata, log);
    await stopLeftoverServer(newBin, layout.newPgdata, log);
    await keepPgUpgradeLogs(layout, log);
    await rollbackUnfinishedUpgrade(s.pgdata, s.walDir, log);
    throw err;
  }
  log.info({ fromMajor, toMajor, oldCluster: layout.oldPgdataAside(fromMajor) }, `upgraded PostgreSQL ${fromMajor} → ${toMajor}; the old cluster is kept at ${layout.oldPgdataAside(fromMajor)}`);
  return 'upgraded';
}
