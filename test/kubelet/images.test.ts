// Which PostgreSQL stands in for a `postgresql:<version>` image in the process kubelet (pure).
import { describe, expect, it } from 'vitest';
import { choosePostgres } from '../../e2e/kubelet/images.js';

const builds = new Map([
  ['14.23.0', '/c/14.23.0'],
  ['16.13.0', '/c/16.13.0'],
  ['16.15.0', '/c/16.15.0'],
]);
const debian = (major: string) => (major === '15' ? '/usr/lib/postgresql/15/bin' : undefined);

describe('choosePostgres', () => {
  it('takes the build of exactly that major.minor', () => {
    expect(choosePostgres('16.13', builds, debian)).toEqual({ dir: '/c/16.13.0', kind: 'build', version: '16.13' });
    expect(choosePostgres('16.15', builds, debian)).toEqual({ dir: '/c/16.15.0', kind: 'build', version: '16.15' });
  });

  it('else the nearest minor of the same major, the newer on a tie; a bare major gets the newest', () => {
    expect(choosePostgres('14.5', builds, debian)?.version).toBe('14.23');
    expect(choosePostgres('16.14', builds, debian)?.version).toBe('16.15');
    expect(choosePostgres('16.1', builds, debian)?.version).toBe('16.13');
    expect(choosePostgres('16', builds, debian)?.version).toBe('16.15');
  });

  it("else Debian's binaries of the major, else nothing (never another major)", () => {
    expect(choosePostgres('15.4', builds, debian)).toEqual({ dir: '/usr/lib/postgresql/15/bin', kind: 'debian', version: '15' });
    expect(choosePostgres('17.2', builds, debian)).toBeUndefined();
    expect(choosePostgres('latest', builds, debian)).toBeUndefined();
  });
});
