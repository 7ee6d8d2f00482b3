// The process kubelet's exec (remotecommand over SPDY): options, protocol choice, the exit
// report kubectl turns into its exit code, resize events, the process chain.
import { describe, expect, it } from 'vitest';
import { execArgv, execEnv, exitReport, expectedStreams, negotiateProtocol, parseExecQuery, parseResize, type ExecOptions } from '../../e2e/kubelet/exec.js';

describe('exec options and protocol', () => {
  it('reads the apiserver’s query', () => {
    expect(parseExecQuery(new URLSearchParams('command=sh&command=-c&command=exit+3&input=1&output=1&error=1'))).toEqual({ command: ['sh', '-c', 'exit 3'], stdin: true, stdout: true, stderr: true, tty: false });
    expect(parseExecQuery(new URLSearchParams('command=ls'))).toEqual({ error: 'you must specify at least 1 of stdin, stdout, stderr' });
  });
  it('takes the client’s first protocol it speaks (the apiserver offers v5 first: v4)', () => {
    expect(negotiateProtocol(['v5.channel.k8s.io', 'v4.channel.k8s.io', 'v3.channel.k8s.io'])).toBe('v4.channel.k8s.io');
    expect(negotiateProtocol(['v2.channel.k8s.io, v1.channel.k8s.io'])).toBe('v2.channel.k8s.io');
    expect(negotiateProtocol(['channel.k8s.io'])).toBeUndefined();
  });
  it('expects no stderr with a tty, a resize stream from v3 on', () => {
    const o = { command: ['sh'], stdin: true, stdout: true, stderr: true, tty: true };
    expect(expectedStreams(o, 'v4.channel.k8s.io')).toEqual(['error', 'stdin', 'stdout', 'resize']);
    expect(expectedStreams({ ...o, tty: false }, 'v2.channel.k8s.io')).toEqual(['error', 'stdin', 'stdout', 'stderr']);
  });
});

describe('exitReport', () => {
  it('v4: a metav1.Status with the ExitCode cause', () => {
    expect(JSON.parse(exitReport('v4.channel.k8s.io', { code: 0 }).toString())).toEqual({ metadata: {}, status: 'Success' });
    expect(JSON.parse(exitReport('v4.channel.k8s.io', { code: 3 }).toString())).toMatchObject({
      status: 'Failure',
      reason: 'NonZeroExitCode',
      details: { causes: [{ reason: 'ExitCode', message: '3' }] },
    });
  });
  it('v2/v3: the message only, nothing on success', () => {
    expect(exitReport('v3.channel.k8s.io', { code: 0 }).length).toBe(0);
    expect(exitReport('v3.channel.k8s.io', { code: 2 }).toString()).toContain('non-zero exit code');
  });
});

describe('parseResize', () => {
  it('reads one JSON object after another and keeps a partial one', () => {
    expect(parseResize('{"Width":80,"Height":24}\n{"Width":100,')).toEqual({ sizes: [{ width: 80, height: 24 }], rest: '{"Width":100,' });
    expect(parseResize('{"Width":1,"Height":2}{"Width":3,"Height":4}').sizes).toHaveLength(2);
  });
});

describe('execArgv', () => {
  const target = { pid: 42, cgroupDir: '/sys/fs/cgroup/k/pod/web-0', env: { PATH: '/bin' }, user: { uid: 26, gid: 26, groups: [26] }, noNewPrivs: true, workingDir: '/opt/x' };
  const opts: ExecOptions = { command: ['psql', '-c', 'select 1'], stdin: true, stdout: true, stderr: true, tty: false };
  it('joins the cgroup, enters the namespaces and cwd, takes the user, runs the command', () => {
    const argv = execArgv(target, opts);
    expect(argv.slice(3, 11)).toEqual(['sh', target.cgroupDir, '/usr/bin/nsenter', '--target=42', '--mount', '--uts', '--wdns=/opt/x', '--']);
    expect(argv.slice(11)).toEqual(['/usr/bin/setpriv', '--reuid=26', '--regid=26', '--groups=26', '--no-new-privs', '--', 'psql', '-c', 'select 1']);
  });
  it('a tty puts the pty helper before the command and sets TERM', () => {
    const argv = execArgv({ ...target, user: undefined, noNewPrivs: false }, { ...opts, tty: true });
    expect(argv.slice(11, 13)).toEqual(['/usr/bin/python3', '-c']);
    expect(argv.slice(14)).toEqual(['1', 'psql', '-c', 'select 1']);
    expect(execEnv(target, { ...opts, tty: true })).toEqual({ TERM: 'xterm', PATH: '/bin' });
  });
});
