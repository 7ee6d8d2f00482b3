// The process kubelet's container log API (pure parts): which start of a container to serve,
// header lines left out, tailLines, the options it refuses, following across a restart.
import { describe, expect, it } from 'vitest';
import type { V1ContainerStatus } from '@kubernetes/client-node';
import { chooseInstance, followStep, headerLine, instanceRanges, lastLines, parseLogQuery } from '../../e2e/kubelet/container-logs.js';

const h = (n: number) => headerLine('web', n, ['node', '-e', 'x'], new Date('2026-01-01T00:00:00Z'));
const file = Buffer.from(`${h(0)}a1\na2\n${h(1)}b1\nb2\nb3\n`);
const text = (r: { start: number; end: number }) => file.toString('utf8', r.start, r.end);

describe('instanceRanges', () => {
  it('splits the file at each header; headers are never content', () => {
    expect(instanceRanges(file, 'web').map(text)).toEqual(['a1\na2\n', 'b1\nb2\nb3\n']);
  });
  it('only the container’s own headers count; output that looks like one stays output', () => {
    const side = headerLine('side', 0, ['x']); // once: each call stamps the time
    const other = Buffer.from(`${h(0)}---- not a header\n${side}x\n`);
    expect(instanceRanges(other, 'web').map((r) => other.toString('utf8', r.start, r.end))).toEqual([`---- not a header\n${side}x\n`]);
  });
  it('an empty start and a file without headers', () => {
    const f = Buffer.from(`${h(0)}${h(1)}`);
    expect(instanceRanges(f, 'web').map((r) => r.end - r.start)).toEqual([0, 0]);
    expect(instanceRanges(Buffer.from('x\n'), 'web')).toEqual([]);
  });
});

describe('lastLines', () => {
  const b = Buffer.from('1\n2\n3\n');
  it('counts lines, with or without a final newline', () => {
    expect(lastLines(b, 2).toString()).toBe('2\n3\n');
    expect(lastLines(Buffer.from('1\n2\n3'), 2).toString()).toBe('2\n3');
    expect(lastLines(b, 10).toString()).toBe('1\n2\n3\n');
    expect(lastLines(b, 0).toString()).toBe('');
  });
});

describe('parseLogQuery', () => {
  const q = (s: string) => parseLogQuery(new URLSearchParams(s));
  it('reads what the apiserver sends', () => {
    expect(q('follow=true&previous=true&tailLines=5&limitBytes=100')).toEqual({ follow: true, previous: true, tailLines: 5, limitBytes: 100 });
    expect(q('')).toEqual({ follow: false, previous: false });
    expect(q('timestamps=false')).toEqual({ follow: false, previous: false });
  });
  it('refuses what it cannot answer honestly', () => {
    expect(q('sinceSeconds=10')).toMatchObject({ error: expect.stringContaining('does not support sinceSeconds') });
    expect(q('sinceTime=2026-01-01T00:00:00Z&timestamps=true')).toMatchObject({ error: expect.stringContaining('sinceTime, timestamps') });
    expect(q('stream=Stderr')).toMatchObject({ error: expect.stringContaining('stream=Stderr') });
    expect(q('tailLines=-1')).toMatchObject({ error: 'invalid tailLines: -1' });
  });
});

describe('chooseInstance', () => {
  const terminated = { terminated: { exitCode: 137, containerID: 'process://1' } } as V1ContainerStatus['state'];
  const st = (s: Partial<V1ContainerStatus>): V1ContainerStatus => ({ name: 'web', image: 'i', imageID: 'i', ready: false, restartCount: 0, ...s });
  it('running: the last start; previous: the one before', () => {
    const s = st({ state: { running: {} }, lastState: terminated });
    expect(chooseInstance(s, true, false, 'p')).toEqual({ fromEnd: 1, live: true });
    expect(chooseInstance(s, true, true, 'p')).toEqual({ fromEnd: 2, live: false });
  });
  it('waiting to restart: both show the start that just ended', () => {
    const s = st({ state: { waiting: { reason: 'CrashLoopBackOff' } }, lastState: terminated });
    expect(chooseInstance(s, false, false, 'p')).toEqual({ fromEnd: 1, live: false });
    expect(chooseInstance(s, false, true, 'p')).toEqual({ fromEnd: 1, live: false });
  });
  it('the real kubelet’s messages', () => {
    expect(chooseInstance(st({ state: { running: {} } }), true, true, 'p')).toEqual({ error: 'previous terminated container "web" in pod "p" not found' });
    expect(chooseInstance(st({ state: { waiting: { reason: 'ErrImagePull' } } }), false, false, 'p')).toEqual({ error: `container "web" in pod "p" is waiting to start: image can't be pulled` });
    expect(chooseInstance(st({ state: { waiting: { reason: 'ContainerCreating' } } }), false, false, 'p')).toEqual({ error: 'container "web" in pod "p" is waiting to start: ContainerCreating' });
  });
});

describe('followStep', () => {
  it('passes output through and stops at the next start’s header', () => {
    expect(followStep(Buffer.from('x\ny\n'), true, 'web')).toMatchObject({ consumed: 4, ended: false });
    const s = followStep(Buffer.from(`x\n${h(1)}z\n`), true, 'web');
    expect(s.emit.toString()).toBe('x\n');
    expect(s.ended).toBe(true);
  });
  it('holds back a last line that may become a header, not other partial lines', () => {
    expect(followStep(Buffer.from('x\n---- 20'), true, 'web')).toMatchObject({ consumed: 2, ended: false });
    expect(followStep(Buffer.from('x\npartial'), true, 'web')).toMatchObject({ consumed: 9, ended: false });
    // Mid-line: the rest of that line is output whatever it looks like.
    expect(followStep(Buffer.from(`tail ${h(1)}`), false, 'web')).toMatchObject({ ended: false });
  });
});
