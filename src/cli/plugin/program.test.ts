import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiException } from '@kubernetes/client-node';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { KubeTimeoutError } from '../../runtime/kube.js';
import { apiError } from './errors.js';
import { EXIT } from './exit.js';
import { Kube, namespaceOf, parseSeconds } from './kube.js';
import { main } from './program.js';
import { describeOperator, imageTag } from './version.js';

describe('arguments', () => {
  afterEach(() => vi.restoreAllMocks());
  const run = async (...args: string[]) => {
    const err = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    const out = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    const code = await main(['node', 'kubectl-pgpilot', ...args]);
    return { code, stderr: err.mock.calls.map((c) => String(c[0])).join(''), stdout: out.mock.calls.map((c) => String(c[0])).join('') };
  };

  it('usage errors exit 2 with what is wrong, before any API call', async () => {
    expect(await run('status')).toMatchObject({ code: EXIT.usage, stderr: expect.stringContaining("missing required argument 'cluster'") as string });
    expect((await run('frobnicate')).code).toBe(EXIT.usage);
    expect(await run('status', 'db', '-o', 'xml')).toMatchObject({ code: EXIT.usage, stderr: expect.stringContaining('Allowed choices are json, yaml') as string });
    expect(await run('switchover', 'db', '--timeout', '-1')).toMatchObject({ code: EXIT.usage, stderr: expect.stringContaining('--timeout must be a positive number of seconds') as string });
    expect(await run('restore', 'copy')).toMatchObject({ code: EXIT.usage, stderr: expect.stringContaining("required option '--from") as string });
    expect(await run('restore', 'copy', '--from', 'b1', '--to-lsn', 'x')).toMatchObject({ code: EXIT.usage, stderr: expect.stringContaining('--to-lsn must be a WAL location') as string });
    expect(await run('backup', 'db', '--name', 'Nope')).toMatchObject({ code: EXIT.usage, stderr: expect.stringContaining('--name must be') as string });
    expect(await run('hibernate', 'db', 'maybe')).toMatchObject({ code: EXIT.usage, stderr: expect.stringContaining('"on" or "off"') as string });
    expect(await run('fence', 'db')).toMatchObject({ code: EXIT.usage, stderr: expect.stringContaining("missing required argument 'instance'") as string });
    expect(await run('unfence', 'db', 'db-2', '--timeout', '0')).toMatchObject({ code: EXIT.usage, stderr: expect.stringContaining('--timeout must be a positive number of seconds') as string });
    expect(await run('reload', 'db', 'extra')).toMatchObject({ code: EXIT.usage, stderr: expect.stringContaining('too many arguments') as string });
    expect(await run('status', 'db', '--kubeconfig', '/nonexistent/kubeconfig')).toMatchObject({ code: EXIT.usage, stderr: expect.stringContaining('cannot load the kubeconfig /nonexistent/kubeconfig') as string });
  });

  it('help exits 0', async () => {
    expect(await run('--help')).toMatchObject({ code: EXIT.ok, stdout: expect.stringContaining('switchover') as string });
    expect(await run('restore', '--help')).toMatchObject({ code: EXIT.ok, stdout: expect.stringContaining('--to-time <time>') as string });
    const help = (await run('--help')).stdout;
    for (const cmd of ['fence', 'unfence', 'reload', 'restart [options] <cluster> [instance]']) expect(help).toContain(cmd);
  });

  it('seconds and namespace', () => {
    expect(parseSeconds('--timeout', undefined, 5)).toBe(5);
    expect(parseSeconds('--timeout', '2.5', 5)).toBe(2.5);
    expect(() => parseSeconds('--timeout', 'abc', 5)).toThrow('option --timeout must be a positive number of seconds (got "abc")');
    const kc = (ns?: string) => ({ getCurrentContext: () => 'c', getContextObject: () => ({ name: 'c', cluster: 'x', user: 'u', namespace: ns }) });
    expect(namespaceOf(kc('prod'), undefined)).toBe('prod');
    expect(namespaceOf(kc('prod'), 'other')).toBe('other');
    expect(namespaceOf(kc(undefined), undefined)).toBe('default');
  });
});

describe('kubeconfig', () => {
  it('--context picks the server and the namespace; -n wins over the context', () => {
    const path = join(mkdtempSync(join(tmpdir(), 'plugin-kc-')), 'config');
    writeFileSync(
      path,
      [
        'apiVersion: v1',
        'kind: Config',
        'clusters: [{name: a, cluster: {server: "https://a.example:6443"}}, {name: b, cluster: {server: "https://b.example:6443"}}]',
        'users: [{name: u, user: {token: "t"}}]',
        'contexts: [{name: ca, context: {cluster: a, user: u}}, {name: cb, context: {cluster: b, user: u, namespace: staging}}]',
        'current-context: ca',
        '',
      ].join('\n'),
    );
    expect(Kube.connect({ kubeconfig: path })).toMatchObject({ server: 'https://a.example:6443', namespace: 'default' });
    expect(Kube.connect({ kubeconfig: path, context: 'cb' })).toMatchObject({ server: 'https://b.example:6443', namespace: 'staging' });
    expect(Kube.connect({ kubeconfig: path, context: 'cb', namespace: 'prod' }).namespace).toBe('prod');
    expect(() => Kube.connect({ kubeconfig: path, context: 'cc' })).toThrow('context "cc" is not in the kubeconfig (contexts: ca, cb)');
    expect(() => Kube.connect({ kubeconfig: path, requestTimeout: '0' })).toThrow('--request-timeout must be a positive number of seconds');
  });
});

describe('API errors', () => {
  const call = { verb: 'patch', resource: 'postgresqlclusters', name: 'db', namespace: 'prod' };
  const status = (code: number, message: string) => new ApiException(code, 'failed', JSON.stringify({ kind: 'Status', message }), {});

  it('map to exit codes with the verb and resource', () => {
    expect(apiError(status(404, 'not found'), call, 'https://k')).toMatchObject({ exitCode: EXIT.notFound, message: 'postgresqlclusters "db" in namespace prod not found' });
    const forbidden = apiError(status(403, 'user "bob" cannot patch resource "postgresqlclusters"'), call, 'https://k');
    expect(forbidden).toMatchObject({ exitCode: EXIT.forbidden });
    expect(forbidden.message).toMatch(/^forbidden: you may not patch postgresqlclusters "db" in namespace prod \(user "bob"/);
    expect(apiError(status(401, 'Unauthorized'), call, 'https://k')).toMatchObject({ exitCode: EXIT.forbidden, message: expect.stringContaining('not authenticated') as string });
    expect(apiError(status(422, 'spec.instances: Invalid value'), call, 'https://k')).toMatchObject({ exitCode: EXIT.usage, message: expect.stringContaining('spec.instances: Invalid value') as string });
    expect(apiError(status(409, 'already exists'), call, 'https://k')).toMatchObject({ exitCode: EXIT.failed });
    expect(apiError(new KubeTimeoutError('GET', '/x', 10_000), call, 'https://k')).toMatchObject({ exitCode: EXIT.unreachable, message: expect.stringContaining('did not answer within 10 s') as string });
    const refused = new TypeError('fetch failed', { cause: Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }) });
    expect(apiError(refused, call, 'https://k')).toMatchObject({ exitCode: EXIT.unreachable, message: expect.stringContaining('cannot reach the apiserver at https://k (ECONNREFUSED)') as string });
    expect(apiError(new Error('boom'), call, 'https://k')).toMatchObject({ exitCode: EXIT.failed });
    expect(apiError(status(404, 'the server could not find the requested resource'), { verb: 'list', resource: 'postgresqlbackups', namespace: 'prod' }, 'https://k').message).toContain('is pgpilot installed');
  });
});

describe('version', () => {
  it('reads the image tag of the operator pods, or says it is not running', () => {
    expect(imageTag('ghcr.io/pgpilot/pgpilot:0.2.0')).toBe('0.2.0');
    expect(imageTag('localhost:5000/pgpilot')).toBe('latest');
    expect(imageTag('pgpilot@sha256:abc')).toBe('sha256:abc');
    const pod = { metadata: { name: 'pgpilot-abc', namespace: 'pgpilot-system' }, spec: { containers: [{ name: 'operator', image: 'ghcr.io/pgpilot/pgpilot:0.2.0' }] }, status: { phase: 'Running' } };
    expect(describeOperator([pod], [])).toBe('0.2.0 (ghcr.io/pgpilot/pgpilot:0.2.0; pgpilot-system/pgpilot-abc)');
    const dep = { metadata: { name: 'pgpilot', namespace: 'pgpilot-system' }, spec: { replicas: 0, selector: {}, template: { spec: { containers: [{ name: 'operator', image: 'ghcr.io/pgpilot/pgpilot:0.2.0' }] } } }, status: {} };
    expect(describeOperator([], [dep])).toBe('operator not running (Deployment pgpilot-system/pgpilot, image ghcr.io/pgpilot/pgpilot:0.2.0, 0 replicas asked, 0 ready)');
    expect(describeOperator([], [])).toMatch(/^operator not running/);
  });
});
