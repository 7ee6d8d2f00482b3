import type { CoreV1Event, V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import type { PostgreSQLCluster } from '../../api/cluster.js';
import { LABELS } from '../../api/constants.js';
import type { InstancePosition } from './agent-status.js';
import { buildStatusReport, bytes, conditionState, formatStatus, parseOutput, renderStatus, type StatusReport } from './status.js';
import { colorsFor, visibleLength } from './ui.js';

const NOW = Date.parse('2026-12-05T03:00:00Z');
const plain = colorsFor({ isTTY: false });

function cluster(over: Partial<NonNullable<PostgreSQLCluster['status']>> = {}): PostgreSQLCluster {
  return {
    apiVersion: 'postgres.pgpilot.io/v1',
    kind: 'PostgreSQLCluster',
    metadata: { name: 'prod-db', namespace: 'production', creationTimestamp: new Date('2026-12-05T02:00:00Z'), generation: 3 },
    spec: { version: '16.13', instances: 3, storage: { size: '1Gi' }, backup: { enabled: true } },
    status: {
      phase: 'Healthy',
      version: '16.13',
      instances: 3,
      readyInstances: 3,
      streamingReplicas: 2,
      instanceNames: ['prod-db-1', 'prod-db-2', 'prod-db-3'],
      currentPrimary: 'prod-db-1',
      targetPrimary: 'prod-db-1',
      archivePath: 's3://backups/pgpilot/production/prod-db',
      archiving: { lastArchivedWal: '000000010000000000000007', lastArchivedTime: '2026-12-05T02:59:00Z' },
      firstRecoverabilityPoint: '2026-12-05T02:10:00Z',
      lastRecoverabilityPoint: '2026-12-05T02:59:00Z',
      lastBackup: 'prod-db-20261205t021000',
      lastSuccessfulBackup: '2026-12-05T02:10:30Z',
      conditions: [
        { type: 'Ready', status: 'True', reason: 'AllInstancesReady', message: 'every instance is ready', lastTransitionTime: '2026-12-05T02:05:00Z' },
        { type: 'Degraded', status: 'False', reason: 'Converged', message: 'nothing is wrong', lastTransitionTime: '2026-12-05T02:05:00Z' },
        {
          type: 'ContinuousArchiving',
          status: 'True',
          reason: 'Archiving',
          message: 'WAL is archived to s3://backups/pgpilot/production/prod-db; the newest archived segment is 000000010000000000000007, archived a minute ago, and nothing waits',
          lastTransitionTime: '2026-12-05T02:05:00Z',
        },
      ],
      ...over,
    },
  };
}

function pod(instance: string, role: string, ready = true, status: Partial<NonNullable<V1Pod['status']>> = {}): V1Pod {
  return {
    metadata: { name: `${instance}-0`, labels: { [LABELS.instance]: instance, [LABELS.role]: role } },
    spec: { containers: [{ name: 'postgres' }], nodeName: 'node-a' },
    status: {
      phase: 'Running',
      startTime: new Date('2026-12-05T02:01:00Z'),
      conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }],
      containerStatuses: [{ name: 'postgres', ready, restartCount: 1, image: 'x', imageID: 'x', state: { running: {} } }],
      ...status,
    },
  };
}

const pods = [pod('prod-db-1', 'primary'), pod('prod-db-2', 'replica'), pod('prod-db-3', 'replica', false)];

function event(i: number, reason: string, message: string): CoreV1Event {
  return { involvedObject: {}, metadata: {}, reason, message, type: i % 3 ? 'Normal' : 'Warning', lastTimestamp: new Date(NOW - (20 - i) * 60_000), count: i % 4 === 0 ? 3 : 1 };
}

const events = Array.from({ length: 14 }, (_, i) => event(i, `Reason${i}`, `something happened number ${i} `.repeat(i % 2 ? 1 : 8)));

describe('status report', () => {
  it('carries the cluster, instances, archiving, conditions and the last 10 events, oldest first', () => {
    const r = buildStatusReport(cluster(), pods, events);
    expect(r).toMatchObject({ name: 'prod-db', namespace: 'production', phase: 'Healthy', version: { running: '16.13', asked: '16.13' }, primary: { current: 'prod-db-1' } });
    expect(r.instanceTable.map((i) => [i.name, i.role, i.ready, i.status, i.restarts])).toEqual([
      ['prod-db-1', 'primary', true, 'Running', 1],
      ['prod-db-2', 'replica', true, 'Running', 1],
      ['prod-db-3', 'replica', false, 'Running', 1],
    ]);
    expect(r.events).toHaveLength(10);
    expect(r.events[0]!.reason).toBe('Reason4');
    expect(r.events.at(-1)!.reason).toBe('Reason13');
    expect(r.archiving).toMatchObject({ enabled: true, archivePath: 's3://backups/pgpilot/production/prod-db', lastBackup: 'prod-db-20261205t021000' });
    expect(r.instanceTable[0]!.startedAt).toBe('2026-12-05T02:01:00.000Z');
  });

  it('names an instance whose pod is missing, and a waiting container by its reason', () => {
    const r = buildStatusReport(cluster(), [pod('prod-db-1', 'primary'), pod('prod-db-3', 'replica', false, { containerStatuses: [{ name: 'postgres', ready: false, restartCount: 7, image: 'x', imageID: 'x', state: { waiting: { reason: 'CrashLoopBackOff' } } }] })], []);
    expect(r.instanceTable.map((i) => `${i.name} ${i.status} ${i.restarts}`)).toEqual(['prod-db-1 Running 1', 'prod-db-2 NoPod 0', 'prod-db-3 CrashLoopBackOff 7']);
  });

  it('formats into lines of at most 80 columns, long messages cut with …', () => {
    const text = formatStatus(buildStatusReport(cluster(), pods, events), plain, NOW);
    const lines = text.trimEnd().split('\n');
    for (const l of lines) expect(visibleLength(l), l).toBeLessThanOrEqual(80);
    expect(text).toContain('production/prod-db  Healthy');
    expect(text).toMatch(/INSTANCE\s+ROLE\s+READY\s+STATUS\s+RESTARTS\s+AGE\s+NODE/);
    expect(text).toMatch(/prod-db-3\s+replica\s+no\s+Running/);
    expect(text).toContain('s3://backups/pgpilot/production/prod-db');
    expect(text).toContain('recoverable from 2026-12-05 02:10:00Z (50m ago)');
    expect(text).toMatch(/ContinuousArchiving\s+True\s+Archiving\s+WAL is archived .*…/);
    expect(text).toContain('Events (last 10)');
    expect(text).toContain('(x3)');
    expect(text).not.toContain('\x1b[');
  });

  it('still fits 80 columns with long names, a switchover, a rollout and a failed major upgrade', () => {
    const long = 'a-very-long-cluster-name-that-goes-on-and-on-and-on';
    const c = cluster({
      currentPrimary: `${long}-1`,
      targetPrimary: `${long}-2`,
      instanceNames: [`${long}-1`, `${long}-2`],
      rollout: { updated: 1, total: 2, updating: `${long}-2` },
      version: '16.13',
      majorUpgrade: { phase: 'Failed', from: '16.13', to: '17.11', fromImage: 'a', toImage: 'b', mode: 'link', reason: 'UpgradeCheckFailed', message: 'pg_upgrade --check refused: '.repeat(10), startedAt: '2026-12-05T02:30:00Z' },
      archiving: { lastFailure: 'connection refused '.repeat(10), lastFailedWal: '000000010000000000000008', lastFailureTime: '2026-12-05T02:58:00Z', backlogSegments: 4 },
    });
    c.metadata.name = long;
    c.spec.version = '17.11';
    const r = buildStatusReport(c, [pod(`${long}-1`, 'primary'), pod(`${long}-2`, 'replica')], events);
    const text = formatStatus(r, plain, NOW);
    for (const l of text.trimEnd().split('\n')) expect(visibleLength(l), l).toBeLessThanOrEqual(80);
    expect(text).toContain('16.13 running, 17.11 asked');
    expect(text).toMatch(new RegExp(`Primary +${long}-1 → a-very`));
    expect(text).toContain('Upgrade    Failed 16.13 → 17.11 (UpgradeCheckFailed)');
    expect(text).toContain('Rollout    1/2 updated');
    expect(text).toContain('backlog');
  });

  it('with the agents\' positions: timeline, LSN and lag columns in 80 columns; a fenced replica or one not streaming says so', () => {
    const at = new Map<string, InstancePosition>([
      ['prod-db-1', { timeline: 3, lsn: '1A/2B3C4D5E' }],
      ['prod-db-2', { timeline: 3, lsn: '1A/2B000000', lagBytes: 3_951_966, streaming: true }],
      ['prod-db-3', { timeline: 2, lsn: '19/FF000000', lagBytes: 3_000_000_000, streaming: false, fenced: true }],
    ]);
    const r = buildStatusReport(cluster(), pods, events, at);
    expect(r.instanceTable[1]).toMatchObject({ timeline: 3, lagBytes: 3_951_966, streaming: true });
    const text = formatStatus(r, plain, NOW);
    for (const l of text.trimEnd().split('\n')) expect(visibleLength(l), l).toBeLessThanOrEqual(80);
    expect(text).toMatch(/INSTANCE\s+ROLE\s+READY\s+STATUS\s+RESTARTS\s+AGE\s+TL\s+LSN\s+LAG/);
    expect(text).toMatch(/prod-db-1\s+primary\s+yes\s+Running\s+1\s+\S+\s+3\s+1A\/2B3C4D5E\n/);
    expect(text).toMatch(/prod-db-2 .* 3\s+1A\/2B000000\s+3\.8 MB/);
    expect(text).toMatch(/prod-db-3\s+replica\s+no\s+Fenced .* 2\s+19\/FF000000\s+2\.8 GB\n/);
    at.set('prod-db-3', { ...at.get('prod-db-3'), fenced: false });
    at.set('prod-db-1', { ...at.get('prod-db-1'), version: '16.13' });
    at.set('prod-db-2', { ...at.get('prod-db-2'), version: '16.14' });
    expect(formatStatus(buildStatusReport(cluster(), pods, events, at), plain, NOW)).toMatch(/prod-db-2\s+replica\s+yes\s+Running 16\.14 /);
    expect(formatStatus(buildStatusReport(cluster(), pods, events, at), plain, NOW)).toMatch(/prod-db-3\s+replica\s+no\s+NotStreaming /);
  });

  it('sizes like pg_size_pretty', () => {
    expect([0, 1023, 1024, 10 * 1024 * 1024, 5 * 1024 ** 3].map(bytes)).toEqual(['0 B', '1023 B', '1.0 kB', '10 MB', '5.0 GB']);
  });

  it('a condition in its bad state gets its whole message under it; times to come say "in"', () => {
    const c = cluster({ nextScheduledBackup: '2026-12-06T03:00:00Z', firstRecoverabilityPoint: undefined, lastRecoverabilityPoint: undefined });
    c.status!.conditions!.push({ type: 'ReplicasStreaming', status: 'False', reason: 'ReplicaLagging', message: `prod-db-3 is not streaming: ${'it could not connect to the primary because of a reason '.repeat(3)}`, lastTransitionTime: 'x' });
    const text = formatStatus(buildStatusReport(c, pods, []), plain, NOW);
    for (const l of text.trimEnd().split('\n')) expect(visibleLength(l), l).toBeLessThanOrEqual(80);
    expect(text).toMatch(/ReplicasStreaming +False +ReplicaLagging +prod-db-3 is not .*…\n {6}prod-db-3 is not streaming: it could not connect to the primary because of\n {6}a reason it could/);
    expect(text).not.toMatch(/Ready +True .*\n {6}/);
    expect(conditionState('Progressing', 'False')).toBe('good');
    expect(conditionState('Progressing', 'True')).toBe('active');
    expect(conditionState('Degraded', 'True')).toBe('bad');
    expect(conditionState('Ready', 'False')).toBe('bad');
    expect(conditionState('Ready', 'Unknown')).toBe('unknown');
    expect(text).toContain('next backup      2026-12-06 03:00:00Z (in 24h)');
    expect(text).toContain('recoverable from not yet (no completed base backup)');
    expect(text).not.toContain('recoverable to');
  });

  it('colours only for a TTY, never with NO_COLOR; coloured lines still fit', () => {
    const r = buildStatusReport(cluster(), pods, events);
    expect(formatStatus(r, colorsFor({ isTTY: true }, {}), NOW)).toContain('\x1b[32mHealthy\x1b[0m');
    expect(formatStatus(r, colorsFor({ isTTY: true }, { NO_COLOR: '1' }), NOW)).not.toContain('\x1b[');
    for (const l of formatStatus(r, colorsFor({ isTTY: true }, {}), NOW).split('\n')) expect(visibleLength(l)).toBeLessThanOrEqual(80);
  });

  it('a new cluster without status says what is not known yet', () => {
    const c = cluster();
    delete c.status;
    const text = formatStatus(buildStatusReport(c, [], []), plain, NOW);
    expect(text).toContain('Unknown');
    expect(text).toContain('16.13 asked (running: not reported yet)');
    expect(text).toContain('(none yet)');
    const noted = formatStatus({ ...buildStatusReport(c, [], []), notes: ['instance pods not shown: forbidden: you may not list pods in namespace production (...)'] }, plain, NOW);
    expect(noted).toContain('note: instance pods not shown: forbidden');
  });

  it('-o json and yaml print the same content; other formats are a usage error', () => {
    const r = buildStatusReport(cluster(), pods, events);
    expect(JSON.parse(renderStatus(r, 'json', plain)) as StatusReport).toEqual(JSON.parse(JSON.stringify(r)));
    expect(renderStatus(r, 'yaml', plain)).toContain('currentPrimary' in r ? '' : 'phase: Healthy');
    expect(parseOutput(undefined)).toBe('text');
    expect(() => parseOutput('xml')).toThrow(/json or yaml/);
  });
});
