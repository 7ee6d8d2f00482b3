// What pgpilot knows about pg_upgrade: its arguments and initdb's for the new cluster, the output
// of pg_controldata and pg_upgrade (pure), and the file operations of an upgrade on a data volume
// (state file, swap, rollback, removal of the old cluster) that the upgrade Job and the instance
// agent share. Paths come from upgrade-layout.ts.
import { constants } from 'node:fs';
import { mkdir, open, readFile, readlink, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Logger } from '../runtime/logger.js';
import { exists } from './files.js';
import { upgradeLayoutOf, type UpgradeLayout, type UpgradeMode, type UpgradeState } from './upgrade-layout.js';

// ---------------------------------------------------------------- versions and pg_controldata

/** The major of `postgres --version` ("postgres (PostgreSQL) 16.15", "… 18beta1", "… 9.6.24" → 9). */
export function majorOfVersionOutput(output: string): number {
  const m = /\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?/.exec(output);
  if (!m) throw new Error(`cannot read a PostgreSQL version in ${JSON.stringify(output.trim())}`);
  const major = Number(m[1]);
  return major < 10 && m[2] !== undefined ? Number(`${major}.${m[2]}`) : major;
}

/** The major in PGDATA/PG_VERSION ("16\n"). */
export function majorOfPgVersionFile(content: string): number {
  const text = content.trim();
  if (!/^\d+(\.\d+)?$/.test(text)) throw new Error(`PG_VERSION holds ${JSON.stringify(text)}, not a PostgreSQL major`);
  return Number(text);
}

export interface ControlData {
  /** "shut down", "shut down in recovery", "in production", "in crash recovery", "in archive recovery", … */
  state: string;
  dataChecksums: boolean;
  walSegmentBytes: number;
  blockSize: number;
}

/** pg_controldata's output (LC_ALL=C). */
export function parseControlData(output: string): ControlData {
  const fields = new Map<string, string>();
  for (const line of output.split('\n')) {
    const i = line.indexOf(':');
    if (i > 0) fields.set(line.slice(0, i).trim(), line.slice(i + 1).trim());
  }
  const get = (label: string): string => {
    const v = fields.get(label);
    if (v === undefined) throw new Error(`pg_controldata printed no "${label}"`);
    return v;
  };
  return {
    state: get('Database cluster state'),
    // "0" when off, the checksum version (1) when on.
    dataChecksums: get('Data page checksum version') !== '0',
    walSegmentBytes: Number(get('Bytes per WAL segment')),
    blockSize: Number(get('Database block size')),
  };
}

// ---------------------------------------------------------------- arguments

/** Settings the new cluster must share with the old one for pg_upgrade to accept them. */
export interface NewClusterSettings {
  pgdata: string;
  walDir?: string;
  superuser: string;
  encoding: string;
  locale: string;
  dataChecksums: boolean;
  walSegmentBytes: number;
  /** The major of the initdb that runs: 18 enables data checksums unless told not to. */
  major: number;
}

/**
 * initdb of a cluster to upgrade into (pure). No password and no trust in its pg_hba.conf: the
 * superuser's password comes over with pg_authid, pg_upgrade connects through the trust file given
 * with hba_file (hbaOption), and the instance runs with the operator's own pg_hba.conf. --no-sync:
 * pg_upgrade syncs the whole new data directory when it ends.
 */
export function upgradeInitdbArgs(s: NewClusterSettings): string[] {
  return [
    '-D',
    s.pgdata,
    '-U',
    s.superuser,
    '--auth-local=peer',
    '--auth-host=reject',
    `--encoding=${s.encoding}`,
    `--locale=${s.locale}`,
    ...(s.dataChecksums ? ['--data-checksums'] : s.major >= 18 ? ['--no-data-checksums'] : []),
    `--wal-segsize=${s.walSegmentBytes / (1024 * 1024)}`,
    ...(s.walDir ? [`--waldir=${s.walDir}`] : []),
    '--no-sync',
  ];
}

/** The pg_hba.conf servers started for an upgrade use: the superuser over the private socket only. */
export const TRUST_LOCAL_HBA = 'local all all trust\n';

/**
 * `-c hba_file=<file>` for the postgres command line. pg_upgrade hands -o/-O to pg_ctl, which runs
 * postgres through a shell: a path with shell characters would be split, so it is refused.
 */
export function hbaOption(hbaFile: string): string {
  if (!/^[A-Za-z0-9/._+-]+$/.test(hbaFile)) throw new Error(`the path ${JSON.stringify(hbaFile)} has characters pg_upgrade's server options cannot carry`);
  return `-c hba_file=${hbaFile}`;
}

export interface PgUpgradeArgs {
  oldBin: string;
  newBin: string;
  oldData: string;
  newData: string;
  superuser: string;
  /** Where pg_upgrade's servers put their sockets (listen_addresses is '' then). */
  socketDir: string;
  hbaFile: string;
  mode: UpgradeMode;
  /** --check: only the checks, nothing written. */
  check?: boolean;
  /** -j: databases (and tablespaces) upgraded in parallel. */
  jobs?: number;
}

export function pgUpgradeArgs(a: PgUpgradeArgs): string[] {
  const hba = hbaOption(a.hbaFile);
  return [
    ...(a.check ? ['--check'] : []),
    a.mode === 'link' ? '--link' : '--copy',
    '-b',
    a.oldBin,
    '-B',
    a.newBin,
    '-d',
    a.oldData,
    '-D',
    a.newData,
    '-U',
    a.superuser,
    '-o',
    hba,
    '-O',
    hba,
    `--socketdir=${a.socketDir}`,
    ...(a.jobs && a.jobs > 1 ? ['-j', String(a.jobs)] : []),
  ];
}

// ---------------------------------------------------------------- pg_upgrade's failure

export interface PgUpgradeFailure {
  /** The step pg_upgrade failed on, as it printed it ("Checking for reg* data types in user tables"). */
  step: string | undefined;
  /** pg_upgrade's explanation (the lines between the step and "Failure, exiting"). */
  explanation: string[];
  /** The file it points to for details (a list of problem columns, a log). */
  file: string | undefined;
}

const STEP_END = /(?:^|\s+)(fatal|\*failure\*)$/;
/** 17+: "Checking data type usage    failed check: Checking for reg* data types in user tables". */
const FAILED_CHECK = /\s+failed check:\s+(.+)$/;

/**
 * Reads pg_upgrade's output (lines as runTool keeps them: trimmed, no empty ones). A failed check
 * prints "<step> ... fatal" (17+: "<group> ... failed check: <step>") then a paragraph naming a
 * file of problems; a failed step prints "<step>" then "*failure*" (on a line of its own, or after
 * it) and "Consult the last few lines of "<log>" …"; other errors are a few lines before
 * "Failure, exiting".
 */
export function parsePgUpgradeFailure(lines: string[]): PgUpgradeFailure {
  let end = lines.findLastIndex((l) => l === 'Failure, exiting');
  if (end < 0) end = lines.length;
  let stepAt = -1;
  let step: string | undefined;
  for (let i = end - 1; i >= 0 && stepAt < 0; i--) {
    const l = lines[i]!;
    const check = FAILED_CHECK.exec(l);
    if (check) step = check[1]!.trim();
    else if (STEP_END.test(l)) step = l.replace(STEP_END, '').trim() || (i > 0 ? lines[i - 1] : undefined);
    else continue;
    stepAt = i;
  }
  const from = stepAt >= 0 ? stepAt + 1 : Math.max(0, end - 6);
  const explanation = lines.slice(from, end).filter((l) => !/^-{5,}|^Performing Consistency Checks/.test(l));
  return { step, explanation, file: fileNamed(explanation) };
}

/** The absolute path of a .txt or .log file in pg_upgrade's lines (quoted or not). */
function fileNamed(lines: string[]): string | undefined {
  for (const l of lines) {
    const m = /"(\/[^"]+)"/.exec(l) ?? /(\/\S+\.(?:txt|log))\b/.exec(l);
    if (m) return m[1];
  }
  return undefined;
}

/**
 * One paragraph for a person: the failed step, pg_upgrade's words and lines of the file it names
 * (`fileLines`: the first ones of a list of problems, the last ones of a log).
 */
export function pgUpgradeFailureMessage(what: string, f: PgUpgradeFailure, fileLines: string[] | undefined): string {
  const parts = [`${what} failed${f.step ? ` at "${f.step}"` : ''}:`, f.explanation.join(' ')];
  if (f.file && fileLines && fileLines.length > 0) parts.push(`— ${fileLines.join(' | ')}`);
  return parts.filter(Boolean).join(' ');
}

/** The first (a list of problems) or last (a log) `max` non-empty lines of a file. */
export async function fileExcerpt(path: string, from: 'head' | 'tail', max = 10): Promise<string[] | undefined> {
  try {
    const lines = (await readFile(path, 'utf8')).split('\n').map((l) => l.trim()).filter(Boolean);
    return from === 'head' ? lines.slice(0, max) : lines.slice(-max);
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------- state file

/** fsync of a file or folder (a folder: the names of the renames in it). */
async function fsyncPath(path: string): Promise<void> {
  const fh = await open(path, constants.O_RDONLY);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export async function readUpgradeState(pgdata: string, walDir: string | undefined): Promise<UpgradeState | undefined> {
  const file = upgradeLayoutOf(pgdata, walDir).stateFile;
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const s = JSON.parse(text) as Partial<UpgradeState>;
  if (!['prepared', 'upgraded', 'swapped'].includes(s.stage as string) || typeof s.fromMajor !== 'number' || typeof s.toMajor !== 'number') {
    throw new Error(`${file} is not an upgrade state: ${text.slice(0, 200)}`);
  }
  return s as UpgradeState;
}

/** Durable: written to a temporary file, fsynced, renamed over the state file, folder fsynced. */
export async function writeUpgradeState(layout: UpgradeLayout, state: UpgradeState): Promise<void> {
  await mkdir(layout.workDir, { recursive: true, mode: 0o700 });
  const tmp = `${layout.stateFile}.tmp`;
  await writeFile(tmp, `${JSON.stringify(state)}\n`, { mode: 0o600 });
  await fsyncPath(tmp);
  await rename(tmp, layout.stateFile);
  await fsyncPath(layout.workDir);
}

async function removeStateFile(layout: UpgradeLayout): Promise<void> {
  await rm(layout.stateFile, { force: true });
  await fsyncPath(layout.workDir).catch(() => undefined);
}

// ---------------------------------------------------------------- swap and rollback
//
// The swap, in this order, each step a rename(2) (atomic) followed by an fsync of the folders:
//   1. PGDATA            → pgdata.old-<N>
//   2. pgdata.upgrade-new → PGDATA
//   3. WAL dir            → <WAL dir>.old-<N>       (with a WAL dir)
//   4. <WAL dir>.upgrade-new → WAL dir
//   5. PGDATA/pg_wal → WAL dir, pgdata.old-<N>/pg_wal → <WAL dir>.old-<N> (symlinks, by rename)
//   6. state `swapped`
// Killed between two steps, the state file still says `upgraded`, and rollback reads where each
// cluster is from which names exist: an old-<N> folder means steps 1/3 happened, and then PGDATA
// (WAL dir), if present, is the new cluster's. Rolling back undoes the renames in reverse.

async function renameDurably(from: string, to: string): Promise<void> {
  await rename(from, to);
  await fsyncPath(dirname(to));
  if (dirname(from) !== dirname(to)) await fsyncPath(dirname(from));
}

/** Points the symlink `link` at `target` (atomically: a new link renamed over the old one). */
async function repointSymlink(link: string, target: string): Promise<void> {
  const current = await readlink(link).catch(() => undefined);
  if (current === target) return;
  const tmp = `${link}.pgpilot-tmp`;
  await rm(tmp, { force: true });
  await symlink(target, tmp);
  await rename(tmp, link);
  await fsyncPath(dirname(link));
}

/** Steps 1-6 above; `state` is the `upgraded` state, rewritten as `swapped`. */
export async function swapClusters(pgdata: string, walDir: string | undefined, state: UpgradeState): Promise<void> {
  const layout = upgradeLayoutOf(pgdata, walDir);
  const oldData = layout.oldPgdataAside(state.fromMajor);
  await renameDurably(pgdata, oldData);
  await renameDurably(layout.newPgdata, pgdata);
  if (walDir) {
    const oldWal = layout.oldWalAside(state.fromMajor)!;
    await renameDurably(walDir, oldWal);
    await renameDurably(layout.newWalDir!, walDir);
    await repointSymlink(join(pgdata, 'pg_wal'), walDir);
    await repointSymlink(join(oldData, 'pg_wal'), oldWal);
  }
  await writeUpgradeState(layout, { ...state, stage: 'swapped' });
}

/** Puts `aside` back at `live` when the swap moved it, dropping what took its place. */
async function restoreAside(live: string, aside: string, log: Logger): Promise<boolean> {
  if (!(await exists(aside))) return false;
  if (await exists(live)) {
    log.info({ path: live }, 'removing the new cluster from the live path');
    await rm(live, { recursive: true, force: true });
  }
  await renameDurably(aside, live);
  return true;
}

/**
 * Puts the old cluster back after an upgrade that did not reach `swapped` (stage prepared or
 * upgraded, or a swap cut short): the new folders go, the renamed ones come back, link mode's
 * global/pg_control.old is renamed back and the state file is removed. Nothing to do (a cheap
 * stat) without a state file; a `swapped` upgrade is never touched. Safe to run again when
 * killed half-way.
 */
export async function rollbackUnfinishedUpgrade(pgdata: string, walDir: string | undefined, log: Logger): Promise<{ rolledBack: boolean; detail?: string }> {
  const state = await readUpgradeState(pgdata, walDir);
  if (!state || state.stage === 'swapped') return { rolledBack: false };
  const layout = upgradeLayoutOf(pgdata, walDir);
  const done: string[] = [];
  if (await restoreAside(pgdata, layout.oldPgdataAside(state.fromMajor), log)) done.push('PGDATA moved back');
  if (await exists(layout.newPgdata)) {
    await rm(layout.newPgdata, { recursive: true, force: true });
    done.push('new data directory removed');
  }
  if (walDir) {
    if (await restoreAside(walDir, layout.oldWalAside(state.fromMajor)!, log)) done.push('WAL directory moved back');
    if (await exists(layout.newWalDir!)) {
      await rm(layout.newWalDir!, { recursive: true, force: true });
      done.push('new WAL directory removed');
    }
    await repointSymlink(join(pgdata, 'pg_wal'), walDir);
  }
  // pg_upgrade --link renames it as its last step, so that the old cluster cannot start.
  const control = join(pgdata, 'global', 'pg_control');
  if (!(await exists(control)) && (await exists(`${control}.old`))) {
    await renameDurably(`${control}.old`, control);
    done.push('global/pg_control.old renamed back');
  }
  await removeStateFile(layout);
  const detail = `rolled back the unfinished upgrade ${state.fromMajor} → ${state.toMajor} (stage ${state.stage})${done.length ? `: ${done.join(', ')}` : ''}`;
  log.info({ fromMajor: state.fromMajor, toMajor: state.toMajor, stage: state.stage }, detail);
  return { rolledBack: true, detail };
}

/**
 * Deletes the old cluster kept aside by a finished upgrade (pgdata.old-<major> and the WAL aside)
 * and its `swapped` state file, so that a later upgrade starts clean. update_extensions.sql stays.
 */
export async function removeOldCluster(pgdata: string, walDir: string | undefined, fromMajor: number): Promise<void> {
  const layout = upgradeLayoutOf(pgdata, walDir);
  await rm(layout.oldPgdataAside(fromMajor), { recursive: true, force: true });
  const oldWal = layout.oldWalAside(fromMajor);
  if (oldWal) await rm(oldWal, { recursive: true, force: true });
  const state = await readUpgradeState(pgdata, walDir).catch(() => undefined);
  if (state?.stage === 'swapped') await removeStateFile(layout);
}
