// The agent's part of a major version upgrade (the operator's is src/reconcilers/major-upgrade.ts,
// the Job's src/upgrade-job/). At every start the agent looks at what the upgrade left on its volume:
//   - an upgrade that did not finish (the Job failed or was killed before the swap): put the old
//     data directory back (rollbackUnfinishedUpgrade), so these binaries — the old version's,
//     as the operator starts the old image again — run it as before;
//   - a swapped upgrade not yet started: this is the upgraded primary, and its first start is
//     writable (the operator stopped every other instance and holds failover meanwhile); the
//     fence that stopped it for the upgrade is lifted;
//   - data of an older major than these binaries (a replica whose primary was upgraded): it cannot
//     run here, so the instance waits for a clone of the new primary (bootstrap: clone), which
//     replaces it. Never initdb or a restore over it.
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { removeFile } from '../postgres/files.js';
import { majorOfPgVersionFile, majorOfVersionOutput, readUpgradeState, rollbackUnfinishedUpgrade } from '../postgres/pg-upgrade.js';
import { upgradeLayoutOf, type UpgradeState } from '../postgres/upgrade-layout.js';
import type { Layout } from './layout.js';
import type { Logger } from '../runtime/logger.js';

const execFileAsync = promisify(execFile);

/** Major version of PG_VERSION in a data directory; undefined without one. */
export async function dataMajor(pgdata: string): Promise<number | undefined> {
  const content = await readFile(join(pgdata, 'PG_VERSION'), 'utf8').catch(() => undefined);
  return content === undefined ? undefined : majorOfPgVersionFile(content);
}

const binMajors = new Map<string, number>();

/** Major version of the binaries in `pgBin` (`postgres --version`: "postgres (PostgreSQL) 17.11"). */
export async function binariesMajor(pgBin: string): Promise<number> {
  const known = binMajors.get(pgBin);
  if (known !== undefined) return known;
  const { stdout } = await execFileAsync(join(pgBin, 'postgres'), ['--version'], { timeout: 10_000 });
  const major = majorOfVersionOutput(stdout);
  binMajors.set(pgBin, major);
  return major;
}

export type DataVersion = { kind: 'same' } | { kind: 'older' | 'newer'; data: number; binaries: number };

/** How the data directory's major compares with the binaries' (same when there is no data). */
export async function compareDataVersion(layout: Pick<Layout, 'pgdata'>, pgBin: string): Promise<DataVersion> {
  const data = await dataMajor(layout.pgdata);
  if (data === undefined) return { kind: 'same' };
  const binaries = await binariesMajor(pgBin);
  if (data === binaries) return { kind: 'same' };
  return { kind: data < binaries ? 'older' : 'newer', data, binaries };
}

/**
 * Before anything else at start: an unfinished upgrade is rolled back; a swapped one's fence
 * (the operator fenced the primary to stop it for pg_upgrade) is lifted. Returns the swapped
 * upgrade, when there is one to start.
 */
export async function settleUpgrade(layout: Pick<Layout, 'pgdata' | 'walDir' | 'fencedMarker'>, log: Logger): Promise<UpgradeState | undefined> {
  const rolled = await rollbackUnfinishedUpgrade(layout.pgdata, layout.walDir, log);
  if (rolled.rolledBack) log.warn({ detail: rolled.detail }, 'a major version upgrade did not finish: the old data directory is back in place');
  const state = await readUpgradeState(layout.pgdata, layout.walDir);
  if (state?.stage !== 'swapped') return undefined;
  await removeFile(layout.fencedMarker);
  log.info({ from: state.fromMajor, to: state.toMajor }, 'this data directory was upgraded by pg_upgrade and has not run yet: its first start is writable');
  return state;
}

/** For the start guard (synchronous): the upgraded primary's first start, until it has run once. */
export function upgradedFirstStart(layout: Pick<Layout, 'pgdata' | 'walDir'>): boolean {
  const file = upgradeLayoutOf(layout.pgdata, layout.walDir).stateFile;
  if (!existsSync(file)) return false;
  try {
    return (JSON.parse(readFileSync(file, 'utf8')) as UpgradeState).stage === 'swapped';
  } catch {
    return false;
  }
}

/** The upgraded primary ran: later starts are ordinary ones (read-only until the operator confirms the role). */
export async function upgradeStarted(layout: Pick<Layout, 'pgdata' | 'walDir'>): Promise<void> {
  await removeFile(upgradeLayoutOf(layout.pgdata, layout.walDir).stateFile);
}
