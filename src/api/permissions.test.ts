// The permissions table against the code: from each entrypoint, every Kubernetes API call the code
// can make (test/support/api-calls.ts reads them with the TypeScript compiler) must be granted by
// that identity's table, and every verb a table grants must be one the code uses (or, for the
// operator, one it must hold to grant it to backup Jobs). test/chart checks the chart against the
// same tables; the Role of backup Jobs is built from BACKUP_JOB_PERMISSIONS.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { scanApiCalls, type ApiCall } from '../../test/support/api-calls.js';
import { BACKUP_JOB_PERMISSIONS, LEADER_ELECTION_PERMISSIONS, OPERATOR_PERMISSIONS, grantsOf } from './permissions.js';

const ENTRYPOINTS = {
  operator: 'src/cli/operator.ts',
  backupJob: 'src/cli/backup.ts',
  instance: 'src/instance/agent.ts',
  upgradeJob: 'src/cli/upgrade.ts',
};
const ROOTS = Object.values(ENTRYPOINTS);
const scan = (entry: string) => scanApiCalls([entry], ROOTS);
const grantOf = (c: ApiCall) => `${c.group}/${c.resource}:${c.verb}`;

/** Calls not granted, with where they are. */
function ungranted(calls: ApiCall[], granted: Set<string>): string[] {
  return calls.filter((c) => !granted.has(grantOf(c))).map((c) => `${grantOf(c)} at ${c.at}`);
}

describe('the operator\'s permissions match its code', () => {
  const r = scan(ENTRYPOINTS.operator);
  const used = new Set(r.calls.map(grantOf));

  it('finds the operator\'s calls and nothing it cannot attribute', () => {
    expect(r.problems).toEqual([]);
    expect(r.files).toEqual(expect.arrayContaining(['src/controller/cluster-controller.ts', 'src/reconcilers/install.ts', 'src/runtime/leader.ts']));
    expect(used.size).toBeGreaterThan(40);
  });

  it('grants every call the code makes', () => {
    expect(ungranted(r.calls, new Set([...grantsOf(OPERATOR_PERMISSIONS), ...grantsOf(LEADER_ELECTION_PERMISSIONS)]))).toEqual([]);
  });

  it('grants the leader election\'s calls in the operator\'s own namespace', () => {
    const leader = r.calls.filter((c) => c.at.startsWith('src/runtime/leader.ts:'));
    expect(leader.length).toBeGreaterThan(0);
    expect(ungranted(leader, grantsOf(LEADER_ELECTION_PERMISSIONS))).toEqual([]);
    expect([...grantsOf(LEADER_ELECTION_PERMISSIONS)].filter((g) => !leader.some((c) => grantOf(c) === g))).toEqual([]);
  });

  it('grants no verb the code does not use, except what backup Jobs are granted (the operator must hold it)', () => {
    const needed = new Set([...used, ...grantsOf(BACKUP_JOB_PERMISSIONS)]);
    expect([...grantsOf(OPERATOR_PERMISSIONS)].filter((g) => !needed.has(g))).toEqual([]);
  });

  it('holds everything it grants backup Jobs', () => {
    const held = grantsOf(OPERATOR_PERMISSIONS);
    expect([...grantsOf(BACKUP_JOB_PERMISSIONS)].filter((g) => !held.has(g))).toEqual([]);
  });

  it('declares one row per resource, with a reason', () => {
    const keys = OPERATOR_PERMISSIONS.map((p) => `${p.group}/${p.resource}`);
    expect(new Set(keys).size).toBe(keys.length);
    for (const p of [...OPERATOR_PERMISSIONS, ...LEADER_ELECTION_PERMISSIONS, ...BACKUP_JOB_PERMISSIONS]) expect(p.why.length, p.resource).toBeGreaterThan(10);
  });
});

describe('backup Jobs\' permissions match their code', () => {
  const r = scan(ENTRYPOINTS.backupJob);

  it('grants exactly what `pgpilot backup` calls', () => {
    expect(r.problems).toEqual([]);
    expect(r.files).toContain('src/backup-job/backup-kube.ts');
    expect(ungranted(r.calls, grantsOf(BACKUP_JOB_PERMISSIONS))).toEqual([]);
    const used = new Set(r.calls.map(grantOf));
    expect([...grantsOf(BACKUP_JOB_PERMISSIONS)].filter((g) => !used.has(g))).toEqual([]);
  });
});

describe('pods that get no API token', () => {
  it.each([
    ['the instance agent (instance pods mount no ServiceAccount token)', ENTRYPOINTS.instance, 'src/instance/archiving.ts'],
    ['major-upgrade Jobs (automountServiceAccountToken: false)', ENTRYPOINTS.upgradeJob, 'src/upgrade-job/run.ts'],
  ])('%s make no Kubernetes API call', (_what, entry, sample) => {
    const r = scan(entry);
    expect(r.files).toContain(sample);
    expect(r.problems).toEqual([]);
    expect(r.calls.map((c) => `${grantOf(c)} at ${c.at}`)).toEqual([]);
  });
});

describe('docs/security.md', () => {
  /** The grants of the table under a heading: rows "| group | resources | verbs | why |". */
  function documented(heading: string): Set<string> {
    const text = readFileSync(new URL('../../docs/security.md', import.meta.url), 'utf8');
    const at = text.indexOf(heading);
    expect(at, heading).toBeGreaterThanOrEqual(0);
    const section = text.slice(at + heading.length).split('\n#')[0]!;
    const out = new Set<string>();
    for (const line of section.split('\n')) {
      const cells = line.split('|').map((c) => c.trim());
      if (cells.length < 5 || cells[1] === 'API group' || cells[1]!.startsWith('---')) continue;
      const group = cells[1] === '(core)' ? '' : cells[1]!;
      for (const resource of cells[2]!.split(', ')) for (const verb of cells[3]!.split(', ')) out.add(`${group}/${resource}:${verb}`);
    }
    return out;
  }

  it.each([
    ['### The operator, in every namespace it watches', OPERATOR_PERMISSIONS],
    ['### Backup Jobs and instance pods', BACKUP_JOB_PERMISSIONS],
  ] as const)('shows the table of "%s" as declared', (heading, permissions) => {
    expect(documented(heading)).toEqual(grantsOf(permissions));
  });
});
