import { describe, expect, it } from 'vitest';
import type { S3Target } from './cluster.js';
import { isDefaultStore, recoverySourceProblem } from './recovery-access.js';

const defaultStore: S3Target = { endpoint: 'https://minio.storage:9000', bucket: 'pg-backups', path: 'pgpilot', credentials: { secretName: 'pgpilot-backup-credentials' } };
const fromDefault = (path: string, secretName = 'db-backup-credentials') => ({ s3: { ...defaultStore, credentials: { secretName } }, path });

describe('recovery from the operator-wide default store', () => {
  it('allows an archive of the cluster\'s own namespace', () => {
    expect(recoverySourceProblem('team-b', fromDefault('pgpilot/team-b/old-db'), defaultStore)).toBeUndefined();
    expect(recoverySourceProblem('team-b', fromDefault('pgpilot/team-b/old-db/pg17'), defaultStore)).toBeUndefined();
  });

  it('refuses another namespace\'s archive, naming the field, the namespace and what is allowed', () => {
    const problem = recoverySourceProblem('team-b', fromDefault('pgpilot/team-a/prod-db'), defaultStore);
    expect(problem).toMatch(/^spec\.bootstrap\.recovery\.source\.path "pgpilot\/team-a\/prod-db" is not an archive of namespace team-b/);
    expect(problem).toContain('under "pgpilot/team-b/"');
    expect(problem).toContain('a store of your own');
  });

  it('refuses a namespace whose name only starts like the cluster\'s, the prefix itself, and paths outside the store\'s prefix', () => {
    for (const path of ['pgpilot/team-bx/db', 'pgpilot/team-b', 'pgpilot', 'other/team-b/db', 'team-b/db']) {
      expect(recoverySourceProblem('team-b', fromDefault(path), defaultStore), path).toBeDefined();
    }
  });

  it('is the default store whatever Secret the source names, and however the endpoint is spelled', () => {
    expect(recoverySourceProblem('team-b', fromDefault('pgpilot/team-a/db', 'my-own-secret'), defaultStore)).toBeDefined();
    const spelled = { ...fromDefault('pgpilot/team-a/db'), s3: { ...fromDefault('x').s3, endpoint: 'HTTPS://MINIO.storage:9000/' } };
    expect(isDefaultStore(spelled.s3, defaultStore)).toBe(true);
    expect(recoverySourceProblem('team-b', spelled, defaultStore)).toBeDefined();
  });

  it('uses the default path prefix when the default store names none', () => {
    const { path: _p, ...noPath } = defaultStore;
    expect(recoverySourceProblem('team-b', { s3: noPath, path: 'pgpilot/team-b/db' }, noPath)).toBeUndefined();
    expect(recoverySourceProblem('team-b', { s3: noPath, path: 'pgpilot/team-a/db' }, noPath)).toBeDefined();
  });
});

describe('recovery from a store the cluster brings', () => {
  it('allows any path in another bucket or on another endpoint', () => {
    expect(recoverySourceProblem('team-b', { s3: { ...defaultStore, bucket: 'team-b-backups' }, path: 'pgpilot/team-a/db' }, defaultStore)).toBeUndefined();
    expect(recoverySourceProblem('team-b', { s3: { ...defaultStore, endpoint: 'https://s3.team-b.example' }, path: 'pgpilot/team-a/db' }, defaultStore)).toBeUndefined();
    expect(recoverySourceProblem('team-b', { s3: { ...defaultStore, endpoint: undefined }, path: 'pgpilot/team-a/db' }, defaultStore)).toBeUndefined();
  });

  it('allows a volume source (a claim in the cluster\'s namespace)', () => {
    expect(recoverySourceProblem('team-b', { volume: { claimName: 'archive' }, path: 'pgpilot/team-a/db' }, defaultStore)).toBeUndefined();
  });

  it('allows anything when the operator has no default store', () => {
    expect(recoverySourceProblem('team-b', fromDefault('pgpilot/team-a/db'), undefined)).toBeUndefined();
  });
});
