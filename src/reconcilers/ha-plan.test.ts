import { describe, expect, it } from 'vitest';
import type { InstanceStatus } from '../instance/api-types.js';
import { compareLsn, parseLsn } from '../postgres/lsn.js';
import { chooseCandidate, type HaInput, type ObservedInstance, planHa } from './ha-plan.js';
import { instanceStatus } from '../../test/support/instance-status.js';

const IP = { 'db-1': '127.0.100.1', 'db-2': '127.0.100.2', 'db-3': '127.0.100.3' } as Record<string, string>;

/** A running replica streaming from db-1. */
function agent(over: Partial<InstanceStatus> = {}): InstanceStatus {
  return instanceStatus({
    phase: 'Running',
    role: 'replica',
    running: true,
    postgresVersion: '15.8',
    systemIdentifier: '7300000000000000001',
    timeline: 1,
    receiveLsn: '0/3000060',
    replayLsn: '0/3000060',
    following: '127.0.100.1:5432',
    streaming: true,
    ...over,
  });
}

const primaryAgent = (over: Partial<InstanceStatus> = {}) => agent({ role: 'primary', currentLsn: '0/3000060', receiveLsn: null, replayLsn: null, following: null, streaming: false, ...over });

function inst(name: string, a: InstanceStatus | undefined, roleLabel?: string): ObservedInstance {
  return { name, podIP: IP[name], agent: a ? { ...a, instance: name } : undefined, roleLabel };
}

function input(instances: ObservedInstance[], over: Partial<HaInput> = {}): HaInput {
  return { instances, primary: 'db-1', haEnabled: true, failoverDelayMs: 0, now: 10_000, ...over };
}

const requeueSoon = (plan: { requeueAfterMs?: number }) => expect(plan.requeueAfterMs).toBeLessThanOrEqual(1000);

const healthy = () => [inst('db-1', primaryAgent(), 'primary'), inst('db-2', agent(), 'replica'), inst('db-3', agent(), 'replica')];

describe('LSNs', () => {
  it('parses and compares WAL positions numerically', () => {
    expect(parseLsn('1/0')).toBe(2n ** 32n);
    expect(compareLsn('0/A0', '0/9F')).toBe(1);
    expect(compareLsn('1/0', '0/FFFFFFFF')).toBe(1);
    expect(compareLsn(null, '0/1')).toBe(-1);
    expect(() => parseLsn('nope')).toThrow('not an LSN: "nope"');
  });
});

describe('planHa', () => {
  it('initdb on the first instance while no instance has data', () => {
    const fresh = agent({ phase: 'AwaitingBootstrap', running: false, role: 'none', systemIdentifier: null });
    const plan = planHa(input([inst('db-1', fresh), inst('db-2', fresh), inst('db-3', undefined)]));
    expect(plan.actions).toEqual([{ kind: 'bootstrap', instance: 'db-1', request: { mode: 'initdb' } }]);
    expect(plan.conditions[0]).toMatchObject({ type: 'PrimaryAvailable', status: 'False', reason: 'Bootstrapping' });
  });

  it('clones waiting replicas from the healthy primary and labels every role', () => {
    const waiting = agent({ phase: 'AwaitingBootstrap', running: false, role: 'none', systemIdentifier: null, streaming: false, following: null });
    const plan = planHa(input([inst('db-1', primaryAgent()), inst('db-2', waiting), inst('db-3', agent())]));
    expect(plan.actions).toEqual([
      { kind: 'label', instance: 'db-1', role: 'primary' },
      { kind: 'label', instance: 'db-3', role: 'replica' },
      { kind: 'bootstrap', instance: 'db-2', request: { mode: 'clone', primary: { host: '127.0.100.1', port: 5432 } } },
    ]);
    expect(plan.conditions.find((c) => c.type === 'ReplicasStreaming')).toMatchObject({ status: 'False', message: expect.stringContaining('db-2 (AwaitingBootstrap)') });
  });

  it('looks again soon while a replica is not streaming (its recovery fires no event)', () => {
    const plan = planHa(input([inst('db-1', primaryAgent(), 'primary'), inst('db-2', undefined)]));
    expect(plan.requeueAfterMs).toBe(2000);
  });

  it('changes nothing in steady state', () => {
    const plan = planHa(input(healthy()));
    expect(plan.actions).toEqual([]);
    expect(plan.primary).toBe('db-1');
    expect(plan.requeueAfterMs).toBeUndefined();
    expect(plan.conditions.map((c) => [c.type, c.status])).toEqual([['PrimaryAvailable', 'True'], ['ReplicasStreaming', 'True']]);
  });

  it('repoints a replica that follows another host, and rejoins an old primary (the agent checkpoints the new primary itself)', () => {
    const plan = planHa(
      input([inst('db-1', agent({ role: 'primary', currentLsn: '0/5000000', following: null, streaming: false }), 'primary'), inst('db-2', primaryAgent(), undefined), inst('db-3', agent({ following: '127.0.100.1:5432' }), 'replica')], {
        primary: 'db-2',
      }),
    );
    expect(plan.actions).toEqual([
      { kind: 'label', instance: 'db-1', role: null },
      { kind: 'label', instance: 'db-2', role: 'primary' },
      { kind: 'follow', instance: 'db-1', host: '127.0.100.2' },
      { kind: 'follow', instance: 'db-3', host: '127.0.100.2' },
    ]);
  });

  describe('failover', () => {
    const dead = () => [inst('db-1', undefined, 'primary'), inst('db-2', agent({ receiveLsn: '0/3000100' }), 'replica'), inst('db-3', agent({ receiveLsn: '0/3000200' }), 'replica')];

    it('waits until the primary monitor confirms the failure, cutting routing meanwhile', () => {
      const plan = planHa(input(dead()));
      expect(plan.actions).toEqual([{ kind: 'label', instance: 'db-1', role: null }]);
      expect(plan.conditions[0]).toMatchObject({ reason: 'PrimaryUnhealthy' });
    });

    it('promotes the most advanced replica: the others leave the old primary, claim, cut routing, promote, label (a silent primary cannot be fenced)', () => {
      const plan = planHa(input(dead(), { primaryFailedSince: 9_000 }));
      expect(plan.primary).toBe('db-3');
      expect(plan.actions).toEqual([
        // First: no replica may acknowledge an old primary's commits once another holds the role.
        { kind: 'follow', instance: 'db-2', host: '127.0.100.3', waitMs: 1000 },
        { kind: 'claim', instance: 'db-3', from: 'db-1', reason: 'failover' },
        { kind: 'label', instance: 'db-1', role: null },
        { kind: 'promote', instance: 'db-3' },
        { kind: 'label', instance: 'db-3', role: 'primary' },
      ]);
      requeueSoon(plan);
    });

    it('fences an old primary whose agent still answers before promoting', () => {
      const failing = [inst('db-1', primaryAgent({ running: false, phase: 'Failed' }), 'primary'), ...dead().slice(1)];
      const plan = planHa(input(failing, { primaryFailedSince: 9_000 }));
      expect(plan.actions.map((a) => a.kind)).toEqual(['follow', 'claim', 'label', 'fence', 'promote', 'label']);
      expect(plan.actions[3]).toEqual({ kind: 'fence', instance: 'db-1', bestEffort: true });
    });

    it('honours failoverDelay', () => {
      const plan = planHa(input(dead(), { primaryFailedSince: 9_000, failoverDelayMs: 5_000 }));
      expect(plan.actions.some((a) => a.kind === 'promote')).toBe(false);
      expect(plan.conditions[0]).toMatchObject({ reason: 'FailoverDelay', message: expect.stringContaining('failing over in 4 s') });
    });

    it('does not fail over with high availability off', () => {
      const plan = planHa(input(dead(), { primaryFailedSince: 0, haEnabled: false }));
      expect(plan.actions.some((a) => a.kind === 'promote')).toBe(false);
      expect(plan.conditions[0]).toMatchObject({ reason: 'PrimaryUnavailable' });
    });

    it('with required synchronous durability, waits while too few replicas answer to be sure no commit is lost', () => {
      const oneAnswers = [inst('db-1', undefined), inst('db-2', agent()), inst('db-3', undefined)];
      const blocked = planHa(input(oneAnswers, { primaryFailedSince: 0, syncQuorum: 1 }));
      expect(blocked.actions.some((a) => a.kind === 'promote')).toBe(false);
      expect(blocked.conditions[0]).toMatchObject({ reason: 'FailoverWaitingForReplicas', message: expect.stringContaining('1 of 2 replicas answer but 2 are needed') });
      // Without the guarantee asked for, the one that answers is promoted.
      expect(planHa(input(oneAnswers, { primaryFailedSince: 0 })).primary).toBe('db-2');
      // With both answering, the most advanced one wins.
      expect(planHa(input(dead(), { primaryFailedSince: 0, syncQuorum: 1 })).primary).toBe('db-3');
    });

    it('says when nothing answers at all instead of failing over', () => {
      const plan = planHa(input([inst('db-1', undefined), inst('db-2', undefined)], { primaryFailedSince: 0 }));
      expect(plan.conditions[0]).toMatchObject({ reason: 'WaitingForInstances' });
      expect(plan.requeueAfterMs).toBeUndefined();
    });
  });

  describe('switchover', () => {
    it('to a streaming replica: claim, cut routing, clean stop, promote', () => {
      const plan = planHa(input(healthy(), { requestedPrimary: 'db-2' }));
      expect(plan.primary).toBe('db-2');
      expect(plan.actions.map((a) => a.kind)).toEqual(['claim', 'label', 'fence', 'promote', 'label']);
      expect(plan.actions[2]).toEqual({ kind: 'fence', instance: 'db-1', bestEffort: false });
    });

    it('waits for a target that does not stream yet, and refuses an unknown one', () => {
      const lagging = [inst('db-1', primaryAgent(), 'primary'), inst('db-2', agent({ streaming: false }), 'replica')];
      const waiting = planHa(input(lagging, { requestedPrimary: 'db-2' }));
      expect(waiting.actions.some((a) => a.kind === 'promote')).toBe(false);
      expect(waiting.conditions[0]!.message).toContain('switchover to db-2 waits until it streams');
      const unknown = planHa(input(healthy(), { requestedPrimary: 'db-9' }));
      expect(unknown.actions).toEqual([]);
      expect(unknown.conditions[0]!.message).toContain('spec.primary names db-9, which is not an instance of this cluster');
    });
  });

  it('chooses by received WAL, then replayed WAL, then lowest ordinal', () => {
    const c = (name: string, receiveLsn: string, replayLsn: string) => inst(name, agent({ receiveLsn, replayLsn }));
    expect(chooseCandidate([c('db-2', '0/10', '0/10'), c('db-3', '0/20', '0/5')])!.name).toBe('db-3');
    expect(chooseCandidate([c('db-2', '0/20', '0/10'), c('db-3', '0/20', '0/15')])!.name).toBe('db-3');
    expect(chooseCandidate([c('db-10', '0/20', '0/20'), c('db-2', '0/20', '0/20')])!.name).toBe('db-2');
  });
});

describe('synchronous durability', () => {
  it('required keeps the quorum whatever streams; preferred relaxes it while too few replicas stream', async () => {
    const { synchronousStandbyNames } = await import('../builders/postgres-config.js');
    const spec = (durability: 'required' | 'preferred') => ({ version: '16', storage: { size: '1Gi' }, instances: 3, highAvailability: { synchronousCommit: true, synchronousReplicas: 2, durability } });
    expect(synchronousStandbyNames(spec('required'), 0)).toBe('ANY 2 (*)');
    expect(synchronousStandbyNames(spec('preferred'), 1)).toBe('');
    expect(synchronousStandbyNames(spec('preferred'), 2)).toBe('ANY 2 (*)');
    expect(synchronousStandbyNames(spec('preferred'))).toBe('ANY 2 (*)');
  });
});

describe('a primary that is still starting', () => {
  it('is waited for, not failed over', () => {
    const plan = planHa(input([inst('db-1', agent({ role: 'none', running: false, phase: 'Starting' })), inst('db-2', agent())], { primaryFailedSince: 0 }));
    expect(plan.actions.some((a) => a.kind === 'promote')).toBe(false);
    expect(plan.conditions[0]).toMatchObject({ reason: 'PrimaryStarting', message: 'db-1 is Starting' });
  });
});

describe('partial states converge', () => {
  const op = (over: Partial<NonNullable<InstanceStatus['operation']>>): InstanceStatus['operation'] => ({
    kind: 'follow',
    target: '127.0.100.2:5432',
    state: 'running',
    step: 'pg_rewind',
    startedAt: new Date(9_000).toISOString(),
    finishedAt: null,
    error: null,
    ...over,
  });

  it('promotes a Lease holder that runs as a replica (a claim the operator did not finish)', () => {
    const plan = planHa(input([inst('db-1', undefined, undefined), inst('db-2', agent(), 'replica'), inst('db-3', agent(), 'replica')], { primary: 'db-2' }));
    expect(plan.actions).toEqual([
      { kind: 'label', instance: 'db-2', role: null },
      { kind: 'promote', instance: 'db-2' },
      { kind: 'label', instance: 'db-2', role: 'primary' },
    ]);
    expect(plan.conditions[0]).toMatchObject({ type: 'PrimaryAvailable', status: 'False', reason: 'Promoting' });
    expect(plan.primary).toBe('db-2');
  });

  it('promotes a former primary that restarted read-only while it still holds the Lease', () => {
    const readOnly = agent({ following: null, streaming: false, awaitingRole: true });
    const plan = planHa(input([inst('db-1', readOnly, undefined), inst('db-2', agent({ streaming: false }), 'replica'), inst('db-3', agent({ streaming: false }), 'replica')]));
    expect(plan.actions).toContainEqual({ kind: 'promote', instance: 'db-1' });
    expect(plan.actions.at(-1)).toEqual({ kind: 'label', instance: 'db-1', role: 'primary' });
    expect(plan.actions.some((a) => a.kind === 'claim' || a.kind === 'follow')).toBe(false);
  });

  it('never fails over to a former primary that restarted read-only and follows nothing', () => {
    const formerPrimary = agent({ following: null, streaming: false, awaitingRole: true, receiveLsn: '0/9000000' });
    const plan = planHa(input([inst('db-1', undefined), inst('db-2', agent({ receiveLsn: '0/3000000' }), 'replica'), inst('db-3', formerPrimary)], { primaryFailedSince: 9_000 }));
    expect(plan.actions[0]).toEqual({ kind: 'claim', instance: 'db-2', from: 'db-1', reason: 'failover' });
  });

  it('chooses again when another replica has more WAL than the holder (its promotion would drop commits)', () => {
    const plan = planHa(input([inst('db-1', undefined), inst('db-2', agent({ receiveLsn: '0/3000000' }), 'replica'), inst('db-3', agent({ receiveLsn: '0/3000100' }), 'replica')], { primary: 'db-2' }));
    expect(plan.actions).toEqual([
      { kind: 'claim', instance: 'db-3', from: 'db-2', reason: 'failover' },
      { kind: 'promote', instance: 'db-3' },
      { kind: 'label', instance: 'db-3', role: 'primary' },
    ]);
    expect(plan.primary).toBe('db-3');
  });

  it('never promotes the holder while another instance still takes writes: fences that one first', () => {
    const plan = planHa(input([inst('db-1', primaryAgent(), 'primary'), inst('db-2', agent(), 'replica'), inst('db-3', agent(), 'replica')], { primary: 'db-2' }));
    expect(plan.actions).toEqual([
      { kind: 'label', instance: 'db-1', role: null },
      { kind: 'fence', instance: 'db-1', bestEffort: true },
    ]);
    expect(plan.conditions[0]).toMatchObject({ reason: 'FencingOldPrimary' });
    requeueSoon(plan);
  });

  it('waits for an old primary that is still stopping cleanly (switchover) before promoting', () => {
    const stopping = agent({ role: 'primary', running: false, phase: 'Running', operation: op({ kind: 'fence', target: null, step: 'stopping postgres' }) });
    const plan = planHa(input([inst('db-1', stopping, undefined), inst('db-2', agent(), 'replica'), inst('db-3', agent(), 'replica')], { primary: 'db-2' }));
    expect(plan.actions).toEqual([]);
    expect(plan.conditions[0]).toMatchObject({ reason: 'Switchover' });
    requeueSoon(plan);
  });

  it('waits while the holder is being promoted', () => {
    const promoting = agent({ operation: op({ kind: 'promote', target: null, step: 'pg_promote' }) });
    const plan = planHa(input([inst('db-1', undefined), inst('db-2', promoting, 'replica'), inst('db-3', agent(), 'replica')], { primary: 'db-2' }));
    expect(plan.actions).toEqual([]);
    expect(plan.conditions[0]!.message).toContain('waiting for its promote (pg_promote)');
  });

  it('leaves an instance alone while its rejoin runs, and says what it is doing', () => {
    const rejoining = agent({ role: 'replica', running: false, fenced: true, phase: 'Rewinding', following: null, streaming: false, operation: op({}) });
    const plan = planHa(input([inst('db-1', rejoining), inst('db-2', primaryAgent(), 'primary'), inst('db-3', agent({ following: '127.0.100.2:5432' }), 'replica')], { primary: 'db-2' }));
    expect(plan.actions).toEqual([]);
    expect(plan.conditions[1]).toMatchObject({ type: 'ReplicasStreaming', status: 'False' });
    expect(plan.conditions[1]!.message).toContain('db-1 (follow: pg_rewind)');
  });

  it('tries a failed rejoin again, but not at once', () => {
    const failed = (at: number) => agent({ role: 'primary', running: false, streaming: false, fenced: true, phase: 'Fenced', operation: op({ state: 'failed', finishedAt: new Date(at).toISOString(), error: 'pg_rewind: boom' }) });
    const others = [inst('db-2', primaryAgent(), 'primary'), inst('db-3', agent({ following: '127.0.100.2:5432' }), 'replica')];
    const soon = planHa(input([inst('db-1', failed(9_000)), ...others], { primary: 'db-2' }));
    expect(soon.actions).toEqual([]);
    expect(soon.conditions[1]!.message).toContain('rejoin failed: pg_rewind: boom');
    const later = planHa(input([inst('db-1', failed(1_000)), ...others], { primary: 'db-2' }));
    expect(later.actions).toEqual([{ kind: 'follow', instance: 'db-1', host: '127.0.100.2' }]);
  });

  it('re-clones a replica that cannot catch up because the primary removed its WAL', () => {
    const gone = agent({ following: '127.0.100.1:5432', streaming: false, cannotCatchUp: 'requested WAL segment 000000010000000000000003 has already been removed' });
    const plan = planHa(input([inst('db-1', primaryAgent(), 'primary'), inst('db-2', gone, 'replica'), inst('db-3', agent(), 'replica')]));
    expect(plan.actions).toContainEqual({ kind: 'follow', instance: 'db-2', host: '127.0.100.1', reclone: true });
    expect(plan.conditions[1]!.message).toContain('db-2 (cannot catch up: requested WAL segment');
  });

  it('shows a streaming replica that lags beyond the threshold, with its lag', () => {
    const peers = (lag: string) => [
      { applicationName: 'db-2', clientAddr: null, state: 'streaming', syncState: 'quorum', sentLsn: null, writeLsn: null, flushLsn: lag, replayLsn: lag },
      { applicationName: 'db-3', clientAddr: null, state: 'streaming', syncState: 'quorum', sentLsn: null, writeLsn: null, flushLsn: '1/0', replayLsn: '1/0' },
    ];
    const lagging = planHa(input([inst('db-1', primaryAgent({ currentLsn: '1/0', replication: peers('0/0') }), 'primary'), inst('db-2', agent(), 'replica'), inst('db-3', agent(), 'replica')]));
    expect(lagging.conditions[1]).toMatchObject({ type: 'ReplicasStreaming', status: 'False', reason: 'ReplicaLagging' });
    expect(lagging.conditions[1]!.message).toContain('db-2 4096 MiB behind');
    const fine = planHa(input([inst('db-1', primaryAgent({ currentLsn: '1/0', replication: peers('0/FF000000') }), 'primary'), inst('db-2', agent(), 'replica'), inst('db-3', agent(), 'replica')]));
    expect(fine.conditions[1]).toMatchObject({ status: 'True', reason: 'AllStreaming' });
  });

  it('does not start a switchover to a replica that is busy with an operation', () => {
    const plan = planHa(input([inst('db-1', primaryAgent(), 'primary'), inst('db-2', agent({ operation: op({ target: '127.0.100.1:5432' }) }), 'replica'), inst('db-3', agent(), 'replica')], { requestedPrimary: 'db-2' }));
    expect(plan.actions.some((a) => a.kind === 'claim')).toBe(false);
  });
});

describe('planHa: the restore bootstrap', () => {
  const fresh = instanceStatus;
  const inst = (name: string, agent?: InstanceStatus): ObservedInstance => ({ name, podIP: `127.0.100.${name.slice(-1)}`, agent: agent ? { ...agent, instance: name } : undefined });
  const input = (instances: ObservedInstance[], over: Partial<HaInput> = {}): HaInput => ({ instances, primary: 'db-1', haEnabled: true, failoverDelayMs: 0, now: 10_000, ...over });

  it("bootstrapMode 'restore' sends {mode: 'restore'} to the first instance, reason Restoring", () => {
    const plan = planHa(input([inst('db-1', fresh()), inst('db-2', fresh())], { bootstrapMode: 'restore' }));
    expect(plan.actions).toEqual([{ kind: 'bootstrap', instance: 'db-1', request: { mode: 'restore' } }]);
    expect(plan.conditions).toEqual([expect.objectContaining({ type: 'PrimaryAvailable', status: 'False', reason: 'Restoring' })]);
    expect(plan.primary).toBe('db-1');
  });

  it("bootstrapMode 'initdb' (and none) still initdb's", () => {
    for (const bootstrapMode of ['initdb', undefined] as const) {
      const plan = planHa(input([inst('db-1', fresh())], { bootstrapMode }));
      expect(plan.actions).toEqual([{ kind: 'bootstrap', instance: 'db-1', request: { mode: 'initdb' } }]);
      expect(plan.conditions[0]).toMatchObject({ reason: 'Bootstrapping' });
    }
  });

  it('a first instance that Failed without data: PrimaryAvailable False BootstrapFailed with its lastError, no retry', () => {
    const err = 'recovery target 2020-01-01T00:00:00Z is before the oldest base backup';
    const plan = planHa(input([inst('db-1', fresh({ phase: 'Failed', lastError: err })), inst('db-2', fresh())], { bootstrapMode: 'restore' }));
    expect(plan.actions).toEqual([]);
    expect(plan.conditions).toEqual([expect.objectContaining({ type: 'PrimaryAvailable', status: 'False', reason: 'BootstrapFailed', message: expect.stringContaining(err) })]);
    expect(plan.conditions[0]!.message).toContain('db-1');
  });
});

describe('planHa with fenced instances (postgres.pgpilot.io/fenced-instances)', () => {
  const fencedAgent = (over: Partial<InstanceStatus> = {}) => agent({ phase: 'Fenced', fenced: true, running: false, streaming: false, following: null, receiveLsn: null, replayLsn: null, ...over });

  it('a fenced replica loses its label and is never rejoined, re-cloned or rewound', () => {
    const plan = planHa(input([inst('db-1', primaryAgent(), 'primary'), inst('db-2', fencedAgent(), 'replica'), inst('db-3', agent(), 'replica')], { fenced: ['db-2'] }));
    expect(plan.actions).toEqual([{ kind: 'label', instance: 'db-2', role: null }]);
    expect(plan.conditions.find((c) => c.type === 'ReplicasStreaming')?.message).toContain('db-2 (fenced)');
    // Still running in the pass that fenced it: no label either.
    expect(planHa(input([inst('db-1', primaryAgent(), 'primary'), inst('db-2', agent(), 'replica')], { fenced: ['db-2'] })).actions).toEqual([{ kind: 'label', instance: 'db-2', role: null }]);
  });

  it('a fenced primary is not failed over, whatever the delay, and the cluster says why it has no writable primary', () => {
    const plan = planHa(input([inst('db-1', fencedAgent({ role: 'primary' }), 'primary'), inst('db-2', agent(), 'replica')], { fenced: ['db-1'], primaryFailedSince: 0 }));
    expect(plan.actions).toEqual([{ kind: 'label', instance: 'db-1', role: null }]);
    expect(plan.primary).toBe('db-1');
    expect(plan.conditions[0]).toMatchObject({ type: 'PrimaryAvailable', status: 'False', reason: 'PrimaryFenced' });
    expect(plan.conditions[0]!.message).toContain('no failover happens while it is fenced');
    // Not answering at all (pod restarting while fenced): still no failover.
    expect(planHa(input([inst('db-1', undefined), inst('db-2', agent(), 'replica')], { fenced: ['db-1'], primaryFailedSince: 0 })).conditions[0]!.reason).toBe('PrimaryFenced');
  });

  it('a fenced replica is no failover candidate and no switchover target', () => {
    const down = planHa(input([inst('db-1', undefined), inst('db-2', fencedAgent({ receiveLsn: '0/9000000' })), inst('db-3', agent())], { fenced: ['db-2'], primaryFailedSince: 0 }));
    expect(down.primary).toBe('db-3');
    const onlyFenced = planHa(input([inst('db-1', undefined), inst('db-2', agent())], { fenced: ['db-2'], primaryFailedSince: 0 }));
    expect(onlyFenced.conditions[0]!.reason).toBe('NoFailoverCandidate');
    const switchover = planHa(input(healthy(), { fenced: ['db-2'], requestedPrimary: 'db-2' }));
    expect(switchover.primary).toBe('db-1');
    expect(switchover.actions.some((a) => a.kind === 'claim')).toBe(false);
    expect(switchover.conditions[0]!.message).toContain('switchover to db-2 waits until it is unfenced');
  });

  it('unfenced: a former primary back read-only holding the Lease is promoted (no other primary was made)', () => {
    const back = agent({ role: 'replica', following: null, streaming: false, awaitingRole: true });
    const plan = planHa(input([inst('db-1', back), inst('db-2', agent(), 'replica')]));
    expect(plan.primary).toBe('db-1');
    expect(plan.actions).toContainEqual({ kind: 'promote', instance: 'db-1' });
  });
});
