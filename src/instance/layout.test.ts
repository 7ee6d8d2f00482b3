// Where the agent keeps things and the postgres command line (layout.ts), with the paths that
// archiving and restores hand to PostgreSQL (handoff.ts).
import { describe, expect, it } from 'vitest';
import { archiveCommand, restoreCommand } from '../postgres/handoff.js';
import { archiveMarkerDir, layoutOf, postgresArgs, RESTORE_HBA, restoreHbaFile, restoreSpoolDir } from './layout.js';

/** What loadSettings makes of the builder's environment (env.test.ts). */
const s = { instance: 'prod-db-1', podIp: '10.0.0.7', pgPort: 5432, configDir: '/etc/pgpilot/config', pgdata: '/var/lib/postgresql/data/pgdata', walDir: undefined };
const layout = layoutOf(s);

describe('the postgres command line and the agent files', () => {
  it('puts per-instance settings on the postgres command line', () => {
    const args = postgresArgs(s, '/var/run/postgresql');
    expect(args.slice(0, 2)).toEqual(['-D', '/var/lib/postgresql/data/pgdata']);
    const settings = Object.fromEntries(args.filter((_, i) => args[i - 1] === '-c').map((a) => a.split(/=(.*)/s).slice(0, 2) as [string, string]));
    expect(settings).toEqual({
      config_file: '/etc/pgpilot/config/postgresql.conf',
      hba_file: '/etc/pgpilot/config/pg_hba.conf',
      ident_file: '/var/lib/postgresql/data/pgdata/pg_ident.conf',
      listen_addresses: '10.0.0.7',
      port: '5432',
      unix_socket_directories: '/var/run/postgresql',
      cluster_name: 'prod-db-1',
    });
    expect(args.join(' ')).not.toContain('primary_conninfo');
  });

  it('keeps agent files next to PGDATA, never inside (clones would copy them)', () => {
    for (const f of [layout.stateDir, layout.replicationPassfile, layout.fencedMarker, layout.bootstrapPending]) expect(f.startsWith(`${s.pgdata}/`)).toBe(false);
    expect(layout.standbySignal).toBe(`${s.pgdata}/standby.signal`);
  });
});

describe('paths and command lines of archiving and restore', () => {
  it('puts the archive markers where the operator\'s archive_command waits for them', () => {
    expect(archiveMarkerDir(layout)).toBe('/var/lib/postgresql/data/.pgpilot/archived');
    expect(archiveCommand(archiveMarkerDir(layout))).toContain('m=/var/lib/postgresql/data/.pgpilot/archived/$1');
  });

  it('keeps the restore spool and the temporary hba next to PGDATA, usable by restore_command', () => {
    expect(restoreSpoolDir(layout)).toBe('/var/lib/postgresql/data/.pgpilot/restore-spool');
    expect(() => restoreCommand(restoreSpoolDir(layout))).not.toThrow();
    expect(restoreHbaFile(layout)).toBe('/var/lib/postgresql/data/.pgpilot/restore-hba.conf');
    // Unix socket only: no host line lets a client in over TCP during the restore.
    expect(RESTORE_HBA.split('\n').filter((l) => l && !l.startsWith('#'))).toEqual(['local all all trust']);
    expect(layout.walPath).toBe('/var/lib/postgresql/data/pgdata/pg_wal');
    expect(layoutOf({ pgdata: '/d/pgdata', walDir: '/w/pg_wal' }).walPath).toBe('/w/pg_wal');
  });

  it('overrides only the hba file during a restore', () => {
    const normal = postgresArgs(s, '/var/run/postgresql');
    const restoring = postgresArgs(s, '/var/run/postgresql', { hbaFile: restoreHbaFile(layout) });
    expect(restoring).toEqual(normal.map((a) => (a.startsWith('hba_file=') ? `hba_file=${restoreHbaFile(layout)}` : a)));
    expect(restoring).toContain('listen_addresses=10.0.0.7');
  });
});

describe('TLS on the postgres command line', () => {
  it('turns ssl off only for a pod without the server certificate (made before TLS)', () => {
    expect(postgresArgs(s, '/var/run/postgresql').join(' ')).not.toContain('ssl=');
    const args = postgresArgs(s, '/var/run/postgresql', { noServerCertificate: true });
    expect(args.slice(args.indexOf('ssl=off') - 1, args.indexOf('ssl=off') + 1)).toEqual(['-c', 'ssl=off']);
  });
});
