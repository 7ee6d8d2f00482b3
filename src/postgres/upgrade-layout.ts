// Where a major version upgrade (pg_upgrade) keeps its files on an instance's data volume, and
// the state file that says how far it got (pure). Shared by the upgrade Job (which runs
// pg_upgrade on the stopped primary's volume), the instance agent (which rolls back an upgrade
// that did not finish, on its next start with the old binaries, and finishes a done one) and the
// tests. With PGDATA=/var/lib/postgresql/data/pgdata:
//
//   /var/lib/postgresql/data/.pgpilot/upgrade/state.json      UpgradeState (absent: no upgrade under way)
//   /var/lib/postgresql/data/.pgpilot/upgrade/                pg_upgrade's working folder (its logs)
//   /var/lib/postgresql/data/.pgpilot/upgrade/update_extensions.sql   kept from pg_upgrade when it writes one
//   /var/lib/postgresql/data/pgdata.upgrade-new               the new cluster until the swap
//   /var/lib/postgresql/data/pgdata.old-<old major>           the old cluster after the swap
//   <WAL dir>.upgrade-new, <WAL dir>.old-<old major>          the same for a WAL volume (PGPILOT_WAL_DIR)
import { dirname, join } from 'node:path';

export type UpgradeMode = 'link' | 'copy';

/**
 * prepared: the new cluster is being created (initdb) or pg_upgrade runs; the old cluster is
 *   usable again once the new folders are removed and (link mode) global/pg_control.old is renamed back.
 * upgraded: pg_upgrade finished; the swap has not happened (still reversible as above).
 * swapped: PGDATA holds the new cluster, the old one sits at pgdata.old-<major>. Not reversible
 *   by pgpilot in link mode once the new cluster has started (the point of no return).
 */
export type UpgradeStage = 'prepared' | 'upgraded' | 'swapped';

export interface UpgradeState {
  fromMajor: number;
  toMajor: number;
  mode: UpgradeMode;
  stage: UpgradeStage;
  /** RFC 3339. */
  startedAt: string;
}

export interface UpgradeLayout {
  workDir: string;
  stateFile: string;
  updateExtensions: string;
  newPgdata: string;
  newWalDir: string | undefined;
  oldPgdataAside(fromMajor: number): string;
  oldWalAside(fromMajor: number): string | undefined;
}

/** The stateDir is <PGDATA's parent>/.pgpilot, as in src/instance/layout.ts. */
export function upgradeLayoutOf(pgdata: string, walDir: string | undefined): UpgradeLayout {
  const workDir = join(dirname(pgdata), '.pgpilot', 'upgrade');
  return {
    workDir,
    stateFile: join(workDir, 'state.json'),
    updateExtensions: join(workDir, 'update_extensions.sql'),
    newPgdata: `${pgdata}.upgrade-new`,
    newWalDir: walDir ? `${walDir}.upgrade-new` : undefined,
    oldPgdataAside: (m) => `${pgdata}.old-${m}`,
    oldWalAside: (m) => (walDir ? `${walDir}.old-${m}` : undefined),
  };
}

/**
 * The init container of an upgrade Job (the old image) copies its PostgreSQL into this folder (an
 * emptyDir) and writes the path of the copied bin/ into `<folder>/bindir`.
 */
export const OLD_INSTALL_MOUNT = '/var/lib/postgresql/old-install';
export const oldBindirFile = (installDir: string) => join(installDir, 'bindir');
