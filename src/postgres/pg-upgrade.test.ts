import { mkdir, mkdtemp, readFile, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../runtime/logger.js';
import {
  hbaOption,
  majorOfPgVersionFile,
  majorOfVersionOutput,
  parseControlData,
  parsePgUpgradeFailure,
  pgUpgradeArgs,
  pgUpgradeFailureMessage,
  readUpgradeState,
  removeOldCluster,
  rollbackUnfinishedUpgrade,
  swapClusters,
  upgradeInitdbArgs,
  writeUpgradeState,
} from './pg-upgrade.js';
import { upgradeLayoutOf, type UpgradeState } from './upgrade-layout.js';

const log = createLogger('error', 'test');

describe('versions and pg_controldata', () => {
  it('reads majors', () => {
    expect(majorOfVersionOutput('postgres (PostgreSQL) 16.15\n')).toBe(16);
    expect(majorOfVersionOutput('postgres (PostgreSQL) 18beta1')).toBe(18);
    expect(majorOfVersionOutput('postgres (PostgreSQL) 17.11 (Debian 17.11-1.pgdg120+1)')).toBe(17);
    expect(() => majorOfVersionOutput('bash: postgres: not found')).toThrow(/cannot read a PostgreSQL version/);
    expect(majorOfPgVersionFile('14\n')).toBe(14);
    expect(() => majorOfPgVersionFile('garbage')).toThrow(/PG_VERSION/);
  });

  it('parses pg_controldata', () => {
    const out = [
      'pg_control version number:            1300',
      'Database cluster state:               shut down in recovery',
      'Database block size:                  8192',
      'Bytes per WAL segment:                33554432',
      'Data page checksum version:           0',
    ].join('\n');
    expect(parseControlData(out)).toEqual({ state: 'shut down in recovery', dataChecksums: false, walSegmentBytes: 33554432, blockSize: 8192 });
    expect(parseControlData(out.replace('version:           0', 'version:           1')).dataChecksums).toBe(true);
    expect(() => parseControlData('nothing')).toThrow(/Database cluster state/);
  });
});

describe('arguments', () => {
  const base = { pgdata: '/d/new', superuser: 'postgres', encoding: 'UTF8', locale: 'C.UTF-8', walSegmentBytes: 64 * 1024 * 1024 };
  it('initdb: the old cluster\'s checksums and WAL segment size; 18 needs --no-data-checksums', () => {
    expect(upgradeInitdbArgs({ ...base, dataChecksums: true, major: 17, walDir: '/w/pg_wal.upgrade-new' })).toEqual([
      '-D', '/d/new', '-U', 'postgres', '--auth-local=peer', '--auth-host=reject', '--encoding=UTF8', '--locale=C.UTF-8',
      '--data-checksums', '--wal-segsize=64', '--waldir=/w/pg_wal.upgrade-new', '--no-sync',
    ]);
    expect(upgradeInitdbArgs({ ...base, dataChecksums: false, major: 18 })).toContain('--no-data-checksums');
    const v17 = upgradeInitdbArgs({ ...base, dataChecksums: false, major: 17 });
    expect(v17.filter((a) => a.includes('checksums'))).toEqual([]);
  });

  it('pg_upgrade', () => {
    const a = { oldBin: '/o/bin', newBin: '/n/bin', oldData: '/d/pgdata', newData: '/d/pgdata.upgrade-new', superuser: 'postgres', socketDir: '/d/.pgpilot/upgrade', hbaFile: '/d/.pgpilot/upgrade/hba.conf' };
    expect(pgUpgradeArgs({ ...a, mode: 'link', jobs: 4 })).toEqual([
      '--link', '-b', '/o/bin', '-B', '/n/bin', '-d', '/d/pgdata', '-D', '/d/pgdata.upgrade-new', '-U', 'postgres',
      '-o', '-c hba_file=/d/.pgpilot/upgrade/hba.conf', '-O', '-c hba_file=/d/.pgpilot/upgrade/hba.conf', '--socketdir=/d/.pgpilot/upgrade', '-j', '4',
    ]);
    const check = pgUpgradeArgs({ ...a, mode: 'copy', check: true, jobs: 1 });
    expect(check.slice(0, 2)).toEqual(['--check', '--copy']);
    expect(check).not.toContain('-j');
    expect(() => hbaOption('/a b/hba.conf')).toThrow(/characters/);
  });
});

describe("pg_upgrade's failure", () => {
  // PostgreSQL 17's pg_upgrade --check, as captured by test/integration/pg-upgrade.test.ts (runTool's trimmed lines).
  const v17 = [
    'Performing Consistency Checks',
    '-----------------------------',
    'Checking cluster versions                                     ok',
    'Checking data type usage                                      failed check: Checking for reg* data types in user tables',
    'Data type checks failed:',
    'Your installation contains one of the reg* data types in user tables.',
    'These data types reference system OIDs that are not preserved by',
    'pg_upgrade, so this cluster cannot currently be upgraded.  You can',
    'drop the problem columns and restart the upgrade.',
    'A list of the problem columns is in the file:',
    '/w/new/pg_upgrade_output.d/20261205T021647.268/tables_using_reg.txt',
    'Failure, exiting',
  ];

  it('names the check and the file of problems (17+)', () => {
    const f = parsePgUpgradeFailure(v17);
    expect(f.step).toBe('Checking for reg* data types in user tables');
    expect(f.file).toBe('/w/new/pg_upgrade_output.d/20261205T021647.268/tables_using_reg.txt');
    expect(pgUpgradeFailureMessage('pg_upgrade --check', f, ['In database: postgres', 'public.bad.f'])).toBe(
      'pg_upgrade --check failed at "Checking for reg* data types in user tables": Data type checks failed: Your installation contains one of the reg* data types in user tables. ' +
        'These data types reference system OIDs that are not preserved by pg_upgrade, so this cluster cannot currently be upgraded.  You can drop the problem columns and restart the upgrade. ' +
        'A list of the problem columns is in the file: /w/new/pg_upgrade_output.d/20261205T021647.268/tables_using_reg.txt — In database: postgres | public.bad.f',
    );
  });

  it('reads the "fatal" of 16 and before', () => {
    const f = parsePgUpgradeFailure(['Checking for prepared transactions                            ok', 'Checking for reg* data types in user tables                   fatal', 'Your installation contains one of the reg* data types in user tables.', 'A list of the problem columns is in the file:', '/w/pg_upgrade_output.d/x/tables_using_reg.txt', 'Failure, exiting']);
    expect(f.step).toBe('Checking for reg* data types in user tables');
    expect(f.file).toBe('/w/pg_upgrade_output.d/x/tables_using_reg.txt');
  });

  it('reads a failed step and the log it names', () => {
    const f = parsePgUpgradeFailure([
      'Restoring database schemas in the new cluster',
      '*failure*',
      'Consult the last few lines of "/d/new/pg_upgrade_output.d/x/log/pg_upgrade_dump_5.log" for',
      'the probable cause of the failure.',
      'Failure, exiting',
    ]);
    expect(f.step).toBe('Restoring database schemas in the new cluster');
    expect(f.file).toBe('/d/new/pg_upgrade_output.d/x/log/pg_upgrade_dump_5.log');
    expect(pgUpgradeFailureMessage('pg_upgrade', f, ['pg_restore: error: could not execute query: ERROR:  type "abstime" does not exist'])).toMatch(/^pg_upgrade failed at "Restoring database schemas in the new cluster": Consult .* — pg_restore: error/);
  });

  it('keeps the last lines of an error without a step', () => {
    const f = parsePgUpgradeFailure(['Checking cluster versions                                     ok', 'connection to server on socket "/s/.s.PGSQL.50432" failed: FATAL:  role "x" does not exist', 'could not connect to source postmaster started with the command:', 'Failure, exiting']);
    expect(f.step).toBeUndefined();
    expect(f.explanation.join(' ')).toMatch(/role "x" does not exist/);
  });
});

describe('swap and rollback on a volume', () => {
  let dir: string;
  afterEach(() => rm(dir, { recursive: true, force: true }));

  /** A fake volume: PGDATA (PG_VERSION 16) with its WAL dir, the new cluster beside it, state `upgraded`. */
  async function volume(withWal: boolean): Promise<{ pgdata: string; walDir: string | undefined; state: UpgradeState }> {
    dir = await mkdtemp(join(tmpdir(), 'pgpilot-pgupg-'));
    const pgdata = join(dir, 'data', 'pgdata');
    const walDir = withWal ? join(dir, 'wal', 'pg_wal') : undefined;
    const layout = upgradeLayoutOf(pgdata, walDir);
    for (const [d, v] of [[pgdata, '16'], [layout.newPgdata, '17']] as const) {
      await mkdir(join(d, 'global'), { recursive: true });
      await writeFile(join(d, 'PG_VERSION'), `${v}\n`);
      await writeFile(join(d, 'global', 'pg_control'), v);
    }
    if (walDir) {
      await mkdir(walDir, { recursive: true });
      await mkdir(layout.newWalDir!, { recursive: true });
      await writeFile(join(walDir, 'seg'), '16');
      await writeFile(join(layout.newWalDir!, 'seg'), '17');
      await symlink(walDir, join(pgdata, 'pg_wal'));
      await symlink(layout.newWalDir!, join(layout.newPgdata, 'pg_wal'));
    }
    const state: UpgradeState = { fromMajor: 16, toMajor: 17, mode: 'link', stage: 'upgraded', startedAt: '2026-01-01T00:00:00Z' };
    await writeUpgradeState(layout, state);
    return { pgdata, walDir, state };
  }

  async function expectOldBack(pgdata: string, walDir: string | undefined): Promise<void> {
    const layout = upgradeLayoutOf(pgdata, walDir);
    expect(await readFile(join(pgdata, 'PG_VERSION'), 'utf8')).toBe('16\n');
    expect(await readFile(join(pgdata, 'global', 'pg_control'), 'utf8')).toBe('16');
    for (const p of [layout.newPgdata, layout.oldPgdataAside(16), layout.stateFile, layout.newWalDir, layout.oldWalAside(16)]) if (p) expect(existsSync(p), p).toBe(false);
    if (walDir) {
      expect(await readlink(join(pgdata, 'pg_wal'))).toBe(walDir);
      expect(await readFile(join(walDir, 'seg'), 'utf8')).toBe('16');
    }
  }

  it('does nothing without a state file', async () => {
    const { pgdata } = await volume(false);
    await rm(upgradeLayoutOf(pgdata, undefined).stateFile);
    expect(await rollbackUnfinishedUpgrade(pgdata, undefined, log)).toEqual({ rolledBack: false });
  });

  it('rolls back `upgraded` with link mode\'s pg_control.old', async () => {
    const { pgdata } = await volume(false);
    const { rename } = await import('node:fs/promises');
    await rename(join(pgdata, 'global', 'pg_control'), join(pgdata, 'global', 'pg_control.old'));
    const r = await rollbackUnfinishedUpgrade(pgdata, undefined, log);
    expect(r.rolledBack).toBe(true);
    expect(r.detail).toMatch(/pg_control.old renamed back/);
    await expectOldBack(pgdata, undefined);
  });

  // A swap killed after each of its renames: 1 PGDATA aside, 2 new in place, 3 WAL aside, 4 new WAL in place.
  for (const steps of [1, 2, 3, 4]) {
    it(`rolls back a swap cut after step ${steps} (WAL dir)`, async () => {
      const { pgdata, walDir } = await volume(true);
      const layout = upgradeLayoutOf(pgdata, walDir);
      const { rename } = await import('node:fs/promises');
      const renames: Array<[string, string]> = [[pgdata, layout.oldPgdataAside(16)], [layout.newPgdata, pgdata], [walDir!, layout.oldWalAside(16)!], [layout.newWalDir!, walDir!]];
      for (const [from, to] of renames.slice(0, steps)) await rename(from, to);
      expect((await rollbackUnfinishedUpgrade(pgdata, walDir, log)).rolledBack).toBe(true);
      await expectOldBack(pgdata, walDir);
    });
  }

  it('swaps, then leaves a swapped upgrade alone; removeOldCluster clears it', async () => {
    const { pgdata, walDir, state } = await volume(true);
    const layout = upgradeLayoutOf(pgdata, walDir);
    await swapClusters(pgdata, walDir, state);
    expect(await readFile(join(pgdata, 'PG_VERSION'), 'utf8')).toBe('17\n');
    expect(await readlink(join(pgdata, 'pg_wal'))).toBe(walDir);
    expect(await readFile(join(walDir!, 'seg'), 'utf8')).toBe('17');
    expect(await readlink(join(layout.oldPgdataAside(16), 'pg_wal'))).toBe(layout.oldWalAside(16));
    expect((await readUpgradeState(pgdata, walDir))?.stage).toBe('swapped');
    expect(await rollbackUnfinishedUpgrade(pgdata, walDir, log)).toEqual({ rolledBack: false });
    await removeOldCluster(pgdata, walDir, 16);
    expect(existsSync(layout.oldPgdataAside(16)) || existsSync(layout.oldWalAside(16)!)).toBe(false);
    expect(await readUpgradeState(pgdata, walDir)).toBeUndefined();
    expect(await readFile(join(pgdata, 'PG_VERSION'), 'utf8')).toBe('17\n');
  });
});
