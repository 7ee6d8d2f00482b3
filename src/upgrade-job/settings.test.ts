import { describe, expect, it } from 'vitest';
import { parseHostPort, readCheckSettings, readRunSettings } from './settings.js';

const common = { PGPILOT_OLD_INSTALL: '/var/lib/postgresql/old-install', PGPILOT_SECRETS_DIR: '/etc/pgpilot/secrets' };

describe('upgrade Job settings', () => {
  it('reads the run settings with defaults', () => {
    expect(readRunSettings({ ...common, PGDATA: '/var/lib/postgresql/data/pgdata/' })).toEqual({
      oldInstall: '/var/lib/postgresql/old-install', secretsDir: '/etc/pgpilot/secrets', encoding: 'UTF8', locale: 'C.UTF-8', logLevel: 'info',
      pgdata: '/var/lib/postgresql/data/pgdata', walDir: undefined, mode: 'link',
    });
  });

  it('names the variable that is wrong', () => {
    expect(() => readRunSettings({ ...common })).toThrow('environment variable PGDATA is required');
    expect(() => readRunSettings({ ...common, PGDATA: '/d', PGPILOT_UPGRADE_MODE: 'clone' })).toThrow(/PGPILOT_UPGRADE_MODE must be link or copy/);
    expect(() => readRunSettings({ ...common, PGDATA: 'rel' })).toThrow(/PGDATA must be an absolute path/);
    expect(() => readRunSettings({ PGDATA: '/d' })).toThrow(/PGPILOT_OLD_INSTALL is required/);
    expect(() => readCheckSettings({ ...common, PGPILOT_UPGRADE_WORK_DIR: '/w', PGPILOT_UPGRADE_SOURCE: 'db' })).toThrow(/PGPILOT_UPGRADE_SOURCE must be host:port/);
    expect(() => readCheckSettings({ ...common, PGPILOT_UPGRADE_SOURCE: 'db:5432' })).toThrow(/PGPILOT_UPGRADE_WORK_DIR is required/);
    expect(() => readCheckSettings({ ...common, PGPILOT_UPGRADE_SOURCE: 'db:5432', PGPILOT_UPGRADE_WORK_DIR: '/w', PGPILOT_LOG_LEVEL: 'loud' })).toThrow(/PGPILOT_LOG_LEVEL/);
  });

  it('parses host:port', () => {
    expect(parseHostPort('pg-rw.ns.svc:5432')).toEqual({ host: 'pg-rw.ns.svc', port: 5432 });
    expect(parseHostPort('[fd00::1]:5433')).toEqual({ host: 'fd00::1', port: 5433 });
    expect(parseHostPort('db:0')).toBeUndefined();
    expect(parseHostPort('db')).toBeUndefined();
  });
});
