// `kubectl pgpilot` end to end: the built plugin (dist/cli/plugin/main.js) run as a child process
// with the test apiserver's kubeconfig, against a real 2-instance cluster archiving to S3
// (s3rver): status (text and -o json, with each agent's timeline/LSN/lag), psql (through the
// real kubectl exec), logs (-f too), report, switchover, backup, restore into a new cluster that
// has the rows, version, restart, hibernate, fence/unfence (a replica, then the primary), reload,
// restart of one instance (a replica, then the primary), and the error cases —
// unknown cluster, no permission, apiserver unreachable — with their exit codes.
import { execFile, spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CoreV1Api, DiscoveryV1Api } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ANNOTATIONS, LABELS } from '../src/api/constants.js';
import { EXIT } from '../src/cli/plugin/exit.js';
import type { StatusReport } from '../src/cli/plugin/status.js';
import { kubectlPath } from '../test/support/binaries.js';
import { startS3rver, S3RVER_ACCESS_KEY, S3RVER_SECRET_KEY, type S3rver } from '../test/support/s3rver.js';
import { startProcessKubelet, type ProcessKubelet } from './kubelet/index.js';
import { createTestNamespace, kubeConfig, kubeconfigPath, waitFor } from './harness/env.js';
import { getBackup } from './harness/backups.js';
import { HaCluster } from './harness/ha-cluster.js';
import { kubectlOk } from './harness/kubectl.js';
import { REPO_ROOT, ensureBuilt, startOperator, type RunningOperator } from './harness/operator.js';
import { LedgerWriter, missingIds, podClientConfig, query, superuserCredentials } from './harness/postgres.js';
import { tearDown } from './harness/teardown.js';

const execFileAsync = promisify(execFile);
const PLUGIN = join(REPO_ROOT, 'dist/cli/plugin/main.js');
let kubectlBin = 'kubectl';
const BUCKET = 'plugin';
const NAME = 'plug-db';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

/** The plugin as a person runs it (kubectl execs kubectl-pgpilot with the arguments after "pgpilot"). */
function plugin(args: string[], kubeconfig = kubeconfigPath(), input?: string): Promise<Run> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    // psql runs the real kubectl (exec): KUBECTL names it, as a user without kubectl on PATH would.
    const env = { ...process.env, NO_COLOR: '1', KUBECTL: kubectlBin };
    // Global flags before a `--`: what follows it is psql's.
    const dashes = args.indexOf('--');
    const argv = dashes < 0 ? [...args, '--kubeconfig', kubeconfig] : [...args.slice(0, dashes), '--kubeconfig', kubeconfig, ...args.slice(dashes)];
    const child = spawn(process.execPath, [PLUGIN, ...argv], { stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'], env });
    if (input !== undefined) child.stdin!.end(input);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const r = { code: code ?? -1, stdout, stderr, ms: Date.now() - started };
      console.log(`[plugin] kubectl pgpilot ${args.join(' ')} → exit ${r.code} in ${r.ms} ms\n${stdout}${stderr}`);
      resolve(r);
    });
  });
}

/** A kubeconfig for the same apiserver with another bearer token (or another server). */
async function kubeconfigWith(dir: string, file: string, o: { token: string; server?: string }): Promise<string> {
  const server = o.server ?? kubeConfig().getCurrentCluster()!.server;
  const path = join(dir, file);
  await writeFile(
    path,
    [
      'apiVersion: v1',
      'kind: Config',
      `clusters: [{name: e2e, cluster: {server: "${server}", insecure-skip-tls-verify: true}}]`,
      `users: [{name: u, user: {token: "${o.token}"}}]`,
      'contexts: [{name: c, context: {cluster: e2e, user: u}}]',
      'current-context: c',
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
  return path;
}

describe('kubectl pgpilot', () => {
  let ns: string;
  let kubelet: ProcessKubelet;
  let operator: RunningOperator;
  let s3: S3rver;
  let db: HaCluster;
  let dir: string;
  const core = () => kubeConfig().makeApiClient(CoreV1Api);

  beforeAll(async () => {
    ensureBuilt();
    kubectlBin = await kubectlPath();
    dir = await mkdtemp(join(tmpdir(), 'pgpilot-plugin-'));
    s3 = await startS3rver({ buckets: [BUCKET] });
    ns = await createTestNamespace('plugin');
    kubelet = await startProcessKubelet({ kubeconfigPath: kubeconfigPath(), repoRoot: REPO_ROOT });
    operator = await startOperator({ watchNamespaces: [ns] });
    console.log(`[plugin] kubelet log ${kubelet.logPath}; operator log ${operator.logPath}`);
    await core().createNamespacedSecret({ namespace: ns, body: { metadata: { name: 's3-credentials' }, stringData: { ACCESS_KEY_ID: S3RVER_ACCESS_KEY, ACCESS_SECRET_KEY: S3RVER_SECRET_KEY } } });
    db = new HaCluster(kubelet, ns, NAME);
    await db.create((c) => {
      c.spec.instances = 2;
      c.spec.highAvailability = { enabled: true, synchronousCommit: false };
      c.spec.backup = {
        enabled: true,
        schedule: '0 0 1 1 *',
        retention: 7,
        s3: { endpoint: s3.endpoint, bucket: BUCKET, forcePathStyle: true, checksums: 'WHEN_REQUIRED', credentials: { secretName: 's3-credentials' } } as never,
      };
    });
    await db.healthy(2, 240_000);
  }, 600_000);

  afterAll(() => tearDown({ operator, kubelet, namespace: ns, s3 }));

  it('status: a summary in 80 columns, and the same content as JSON', async () => {
    const text = await plugin(['status', NAME, '-n', ns]);
    expect(text.code, text.stderr).toBe(EXIT.ok);
    for (const line of text.stdout.split('\n')) expect([...line].length, line).toBeLessThanOrEqual(80);
    const c = await db.get();
    expect(text.stdout).toContain(`${ns}/${NAME}  Healthy`);
    expect(text.stdout).toMatch(new RegExp(`Primary +${c.status!.currentPrimary}`));
    expect(text.stdout).toMatch(new RegExp(`${c.status!.currentPrimary} +primary +yes +Running`));
    expect(text.stdout).toContain(`Archiving  s3://${BUCKET}/pgpilot/${ns}/${NAME}`);
    expect(text.stdout).toMatch(/Ready +True/);

    const json = await plugin(['status', NAME, '-n', ns, '-o', 'json']);
    expect(json.code, json.stderr).toBe(EXIT.ok);
    const r = JSON.parse(json.stdout) as StatusReport;
    expect(r).toMatchObject({ name: NAME, namespace: ns, phase: 'Healthy', primary: { current: c.status!.currentPrimary }, instances: { asked: 2, ready: 2 } });
    expect(r.instanceTable.map((i) => [i.name, i.role, i.ready])).toEqual(c.status!.instanceNames!.map((n) => [n, n === c.status!.currentPrimary ? 'primary' : 'replica', true]));
    expect(r.conditions.find((x) => x.type === 'Ready')?.status).toBe('True');
  });

  it('status asks each agent (in its pod) for timeline, LSN and lag', async () => {
    const c = await db.get();
    const r = JSON.parse((await plugin(['status', NAME, '-n', ns, '-o', 'json'])).stdout) as StatusReport;
    expect(r.notes ?? []).toEqual([]);
    for (const i of r.instanceTable) {
      expect(i.timeline, i.name).toBeGreaterThanOrEqual(1);
      expect(i.lsn, i.name).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
      expect(i.version, i.name).toBe(c.status!.version);
      if (i.name !== c.status!.currentPrimary) expect(i, i.name).toMatchObject({ streaming: true, lagBytes: expect.any(Number) as number });
    }
    const text = await plugin(['status', NAME, '-n', ns]);
    expect(text.stdout).toMatch(/INSTANCE +ROLE +READY +STATUS +RESTARTS +AGE +TL +LSN +LAG/);
    for (const line of text.stdout.split('\n')) expect([...line].length, line).toBeLessThanOrEqual(80);
    expect((await plugin(['status', NAME, '-n', ns, '--no-agents'])).stdout).toMatch(/AGE +NODE/);
  });

  it('psql: queries on the primary and on a replica, a script from stdin, psql\'s exit code', async () => {
    const primary = await plugin(['psql', NAME, '-n', ns, '--', '-XAt', '-c', 'select pg_is_in_recovery(), current_user, current_database()']);
    expect(primary.code, primary.stderr).toBe(EXIT.ok);
    expect(primary.stdout.trim()).toBe('f|postgres|app');
    const replica = await plugin(['psql', NAME, '-n', ns, '--replica', '--', '-XAt', '-c', 'select pg_is_in_recovery()']);
    expect(replica.stdout.trim()).toBe('t');
    const script = await plugin(['psql', NAME, '-n', ns, '-d', 'postgres', '--', '-XAt', '-v', 'ON_ERROR_STOP=1'], kubeconfigPath(), 'create table plugin_psql(x int);\ninsert into plugin_psql select generate_series(1, 42);\nselect count(*) from plugin_psql;\n');
    expect(script.code, script.stderr).toBe(EXIT.ok);
    expect(script.stdout).toContain('42');
    const failing = await plugin(['psql', NAME, '-n', ns, '--', '-XAt', '-v', 'ON_ERROR_STOP=1', '-c', 'select 1/0']);
    expect(failing.code).not.toBe(EXIT.ok);
    expect(failing.stderr).toContain('division by zero');
    expect((await plugin(['psql', NAME, '-n', ns, '--instance', `${NAME}-9`])).code).toBe(EXIT.usage);
  });

  it('logs: the instances\' JSON lines pretty-printed and merged; one instance; --level; --raw; -f until ^C', async () => {
    const c = await db.get();
    const all = await plugin(['logs', NAME, '-n', ns, '--tail', '200']);
    expect(all.code, all.stderr).toBe(EXIT.ok);
    for (const n of c.status!.instanceNames!) expect(all.stdout).toMatch(new RegExp(`^\\S+Z (INFO|WARN|ERROR|DEBUG) +${n}/\\w+ `, 'm'));
    const one = await plugin(['logs', NAME, c.status!.currentPrimary!, '-n', ns, '--tail', '50', '--level', 'info']);
    expect(one.stdout.split('\n').filter(Boolean).every((l) => l.includes(` ${c.status!.currentPrimary}/`) || !/^\S+Z /.test(l))).toBe(true);
    const raw = await plugin(['logs', NAME, c.status!.currentPrimary!, '-n', ns, '--tail', '5', '--raw']);
    expect(raw.stdout.trim().split('\n').length).toBeLessThanOrEqual(5);
    expect(() => raw.stdout.trim().split('\n').forEach((l) => JSON.parse(l))).not.toThrow();
    expect((await plugin(['logs', NAME, '-n', ns, '--level', 'loud'])).code).toBe(EXIT.usage);

    // -f: a reload makes PostgreSQL log a line after the stream began; ^C ends it.
    const child = spawn(process.execPath, [PLUGIN, 'logs', NAME, c.status!.currentPrimary!, '-n', ns, '-f', '--tail', '0', '--kubeconfig', kubeconfigPath()], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
    let seen = '';
    child.stdout.on('data', (d: Buffer) => (seen += d.toString()));
    const closed = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    await new Promise((r) => setTimeout(r, 2000));
    await plugin(['psql', NAME, '-n', ns, '--', '-XAt', '-c', 'select pg_reload_conf()']);
    for (let i = 0; i < 60 && !/reloading configuration files/.test(seen); i++) await new Promise((r) => setTimeout(r, 500));
    expect(seen).toMatch(/reloading configuration files/);
    child.kill('SIGINT');
    expect(await closed).toBe(EXIT.interrupted);
  });

  it('report: one archive with the cluster, its objects (no Secret value anywhere), events, logs and agent statuses', async () => {
    const c = await db.get();
    const file = join(dir, 'report.tar.gz');
    const r = await plugin(['report', NAME, '-n', ns, '-o', file]);
    expect(r.code, r.stderr).toBe(EXIT.ok);
    const out = join(dir, 'report');
    await mkdir(out, { recursive: true });
    await execFileAsync('tar', ['-xzf', file, '-C', out]);
    const top = join(out, 'report');
    const read = (f: string) => readFile(join(top, f), 'utf8');
    expect(await read('cluster.yaml')).toContain(`name: ${NAME}`);
    const manifest = JSON.parse(await read('MANIFEST.json')) as { files: string[]; problems: string[] };
    for (const f of ['objects/statefulsets.yaml', 'objects/pods.yaml', 'objects/secrets.yaml', 'objects/configmaps.yaml', 'events.yaml', 'backups.yaml']) expect(manifest.files).toContain(f);
    for (const n of c.status!.instanceNames!) {
      expect(manifest.files).toContain(`logs/${n}-0/postgres.log`);
      expect(JSON.parse(await read(`agents/${n}.json`))).toMatchObject({ instance: n, running: true });
    }
    expect(await read('objects/secrets.yaml')).toContain('[redacted: ');
    // No credential of the cluster appears in any file of the archive.
    const secrets = (await core().listNamespacedSecret({ namespace: ns, labelSelector: `${LABELS.cluster}=${NAME}` })).items;
    // The credentials themselves (host names and user names in these Secrets are no secret, and logs name them).
    const values = secrets.flatMap((x) => Object.entries(x.data ?? {}).filter(([k]) => /password|token|uri/.test(k)).map(([, v]) => Buffer.from(v, 'base64').toString()));
    expect(values.length).toBeGreaterThan(2);
    for (const f of manifest.files) {
      const text = await read(f);
      for (const v of values) expect(text.includes(v), `${f} holds a secret value`).toBe(false);
    }
  });

  it('unknown cluster, no permission, apiserver unreachable: their exit codes and messages', async () => {
    const missing = await plugin(['status', 'no-such-db', '-n', ns]);
    expect(missing.code).toBe(EXIT.notFound);
    expect(missing.stderr).toContain(`error: postgresqlclusters "no-such-db" in namespace ${ns} not found`);
    expect((await plugin(['switchover', 'no-such-db', '-n', ns])).code).toBe(EXIT.notFound);
    expect((await plugin(['restore', 'copy', '--from', 'no-such-thing', '-n', ns])).stderr).toContain(`no PostgreSQLBackup or PostgreSQLCluster named no-such-thing in namespace ${ns}`);

    // A ServiceAccount with no role at all.
    await core().createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: 'nobody' } } });
    const token = (await core().createNamespacedServiceAccountToken({ name: 'nobody', namespace: ns, body: { spec: { audiences: [], expirationSeconds: 3600 } } })).status!.token!;
    const forbidden = await plugin(['status', NAME, '-n', ns], await kubeconfigWith(dir, 'nobody.kubeconfig', { token }));
    expect(forbidden.code).toBe(EXIT.forbidden);
    expect(forbidden.stderr).toContain(`forbidden: you may not get postgresqlclusters "${NAME}" in namespace ${ns}`);

    const down = await plugin(['status', NAME, '-n', ns], await kubeconfigWith(dir, 'down.kubeconfig', { token, server: 'https://127.0.0.1:39999' }));
    expect(down.code).toBe(EXIT.unreachable);
    expect(down.stderr).toContain('cannot reach the apiserver at https://127.0.0.1:39999');

    const usage = await plugin(['restore', 'copy', '--from', 'x', '--to-lsn', 'nope', '-n', ns]);
    expect(usage.code).toBe(EXIT.usage);
  });

  it('version: the plugin and the operator (the chart Deployment is scaled to 0 here)', async () => {
    const v = await plugin(['version']);
    expect(v.code).toBe(EXIT.ok);
    expect(v.stdout).toContain('plugin:   0.1.0');
    expect(v.stdout).toMatch(/operator: operator not running \(Deployment \S+, image \S+, 0 replicas asked/);
  });

  it('the real kubectl finds kubectl-pgpilot on PATH and passes the arguments on', async () => {
    const bin = join(dir, 'bin');
    await mkdir(bin, { recursive: true });
    await writeFile(join(bin, 'kubectl-pgpilot'), `#!/bin/sh\nexec "${process.execPath}" "${PLUGIN}" "$@"\n`, { mode: 0o755 });
    const r = await execFileAsync(await kubectlPath(), ['pgpilot', 'status', NAME, '-n', ns, '-o', 'json', '--kubeconfig', kubeconfigPath()], { env: { ...process.env, PATH: `${bin}:${process.env.PATH}` } });
    expect((JSON.parse(r.stdout) as StatusReport).name).toBe(NAME);
  });

  it('switchover without --to picks the ready replica and follows until it is the primary', async () => {
    const before = (await db.get()).status!;
    const replica = before.instanceNames!.find((n) => n !== before.currentPrimary)!;
    const r = await plugin(['switchover', NAME, '-n', ns, '--timeout', '120']);
    expect(r.code, r.stderr).toBe(EXIT.ok);
    expect(r.stdout).toContain(`from ${before.currentPrimary} to ${replica}: the most caught-up ready replica (timeline `);
    expect(r.stdout).toContain(`${replica} is the primary of ${NAME}`);
    expect((await db.get()).status!.currentPrimary).toBe(replica);
    const again = await plugin(['switchover', NAME, '-n', ns, '--to', replica]);
    expect(again).toMatchObject({ code: EXIT.ok, stdout: expect.stringContaining('already the primary') as string });
    expect((await plugin(['switchover', NAME, '-n', ns, '--to', `${NAME}-9`])).code).toBe(EXIT.usage);
  });

  it('backup follows the PostgreSQLBackup to completed; restore --from it creates a Ready cluster with the rows', async () => {
    await db.healthy(2, 120_000);
    await query(db.rw(), 'CREATE TABLE kept (id int PRIMARY KEY); INSERT INTO kept SELECT generate_series(1, 500)');
    const b = await plugin(['backup', NAME, '-n', ns, '--name', 'plug-b1', '--timeout', '180']);
    expect(b.code, b.stderr).toBe(EXIT.ok);
    expect(b.stdout).toContain(`created PostgreSQLBackup ${ns}/plug-b1 of ${NAME}`);
    expect(b.stdout).toMatch(/backup plug-b1 completed: .* MiB of data/);
    expect((await getBackup(ns, 'plug-b1')).status?.phase).toBe('completed');

    const r = await plugin(['restore', '--from', 'plug-b1', 'plug-copy', '-n', ns, '--timeout', '240']);
    expect(r.code, r.stderr).toBe(EXIT.ok);
    expect(r.stdout).toContain(`restoring PostgreSQLBackup plug-b1 of ${NAME} into ${ns}/plug-copy (version 14.5, 1 instance, all archived WAL)`);
    expect(r.stdout).toContain('plug-copy is Ready');
    const copy = new HaCluster(kubelet, ns, 'plug-copy');
    const c = await copy.healthy(1, 60_000);
    expect(c.spec.bootstrap?.recovery?.backup?.name).toBe('plug-b1');
    expect((await query<{ n: string }>(copy.rw(), 'SELECT count(*)::text AS n FROM kept'))[0]!.n).toBe('500');

    // A point in time, not followed: the target reaches the new cluster's spec as the CRD wants it.
    const pitr = await plugin(['restore', '--from', NAME, 'plug-pitr', '-n', ns, '--to-time', new Date().toISOString().replace(/\.\d+Z$/, '+00:00'), '--no-wait']);
    expect(pitr.code, pitr.stderr).toBe(EXIT.ok);
    const pitrSpec = (await new HaCluster(kubelet, ns, 'plug-pitr').get()).spec;
    expect(pitrSpec.bootstrap?.recovery).toMatchObject({ backup: { name: 'plug-b1' }, target: { time: expect.stringMatching(/Z$/) as string } });
    await kubectlOk(['delete', 'pgc', 'plug-pitr', '-n', ns, '--wait=false']);

    const exists = await plugin(['restore', '--from', NAME, 'plug-copy', '-n', ns, '--no-wait']);
    expect(exists.code).toBe(EXIT.failed);
    expect(exists.stdout).toContain(`the newest completed backup of ${NAME}, plug-b1`);
    expect(exists.stderr).toContain('already exists');
  });

  it('restart rolls every instance through the operator; hibernate on stops every instance, off brings the cluster back', async () => {
    const instancePods = async () => (await kubeConfig().makeApiClient(CoreV1Api).listNamespacedPod({ namespace: ns, labelSelector: `${LABELS.cluster}=${NAME},${LABELS.component}=instance` })).items;
    const uidsBefore = (await instancePods()).map((p) => p.metadata!.uid);
    const restart = await plugin(['restart', NAME, '-n', ns, '--timeout', '180']);
    expect(restart.code, restart.stderr).toBe(EXIT.ok);
    expect(restart.stdout).toContain('every instance restarted');
    // Every pod replaced, each carrying the restart asked for (the primary pinned by the switchover above takes its role back).
    const after = await instancePods();
    expect(after).toHaveLength(2);
    for (const p of after) {
      expect(uidsBefore).not.toContain(p.metadata!.uid);
      expect(p.metadata!.annotations![ANNOTATIONS.restartedAt]).toMatch(/^\d{4}-\d{2}-\d{2}T/);
    }

    const on = await plugin(['hibernate', NAME, 'on', '-n', ns, '--timeout', '120']);
    expect(on.code, on.stderr).toBe(EXIT.ok);
    expect((await db.get()).status?.phase).toBe('Hibernated');
    const off = await plugin(['hibernate', NAME, 'off', '-n', ns, '--timeout', '180']);
    expect(off.code, off.stderr).toBe(EXIT.ok);
    await db.healthy(2, 120_000);
  });

  describe('fence, unfence, reload and restart of one instance, through the operator', () => {
    const pods = async () => (await core().listNamespacedPod({ namespace: ns, labelSelector: `${LABELS.cluster}=${NAME},${LABELS.component}=instance` })).items;
    const uids = async () => Object.fromEntries((await pods()).map((p) => [p.metadata!.labels![LABELS.instance]!, p.metadata!.uid!]));
    /** Addresses the -ro Service routes to (ready endpoints of its EndpointSlices). */
    const roAddresses = async () =>
      (await kubeConfig().makeApiClient(DiscoveryV1Api).listNamespacedEndpointSlice({ namespace: ns, labelSelector: `kubernetes.io/service-name=${NAME}-ro` })).items.flatMap((s) =>
        (s.endpoints ?? []).filter((e) => e.conditions?.ready !== false).flatMap((e) => e.addresses),
      );
    const superuser = async (instance: string) => {
      return podClientConfig(kubelet, ns, `${instance}-0`, await superuserCredentials(ns, NAME, 'postgres'));
    };
    const rows = async () => (await query<{ n: string }>(db.rw(), 'SELECT count(*)::text AS n FROM fenced_rows'))[0]!.n;
    let primary: string;
    let replica: string;

    beforeAll(async () => {
      const c = await db.healthy(2, 120_000);
      primary = c.status!.currentPrimary!;
      replica = c.status!.instanceNames!.find((n) => n !== primary)!;
      await query(db.rw(), 'CREATE TABLE fenced_rows (id int PRIMARY KEY)');
    });

    it('fence a replica: not Ready, out of -ro, writes go on; unfence: it streams again with them', async () => {
      const replicaIP = (await pods()).find((p) => p.metadata!.labels![LABELS.instance] === replica)!.status!.podIP!;
      const fence = await plugin(['fence', NAME, replica, '-n', ns, '--timeout', '90']);
      expect(fence.code, fence.stderr).toBe(EXIT.ok);
      expect(fence.stdout).toContain(`${replica} is fenced`);
      const c = await db.get();
      expect(c.status!.fencedInstances).toEqual([replica]);
      expect(c.status!.conditions!.find((x) => x.type === 'Fenced')).toMatchObject({ status: 'True', reason: 'InstancesFenced' });
      expect(c.metadata.annotations![ANNOTATIONS.fencedInstances]).toBe(JSON.stringify([replica]));
      // The pod runs on, not Ready, with no role, routed by no Service.
      const pod = (await pods()).find((p) => p.metadata!.labels![LABELS.instance] === replica)!;
      expect(pod.status!.phase).toBe('Running');
      expect(pod.metadata!.labels![LABELS.role]).toBeUndefined();
      await waitFor(`${replica} out of ${NAME}-ro`, async () => !(await roAddresses()).includes(replicaIP), { timeoutMs: 30_000 });
      // Not failed over to, not rejoined: the primary takes writes on its own.
      await query(db.rw(), 'INSERT INTO fenced_rows SELECT generate_series(1, 100)');
      expect((await db.get()).status!.currentPrimary).toBe(primary);

      const unfence = await plugin(['unfence', NAME, replica, '-n', ns, '--timeout', '180']);
      expect(unfence.code, unfence.stderr).toBe(EXIT.ok);
      expect(unfence.stdout).toContain(`${replica} is unfenced and streams from the primary`);
      const after = await db.healthy(2, 60_000);
      expect(after.status!.fencedInstances).toBeUndefined();
      expect(after.metadata.annotations?.[ANNOTATIONS.fencedInstances]).toBeUndefined();
      expect(after.status!.streamingReplicas).toBe(1);
      await waitFor(`the rows written while ${replica} was fenced reach it`, async () => (await query<{ n: string }>(db.podConfig(replica), 'SELECT count(*)::text AS n FROM fenced_rows'))[0]!.n === '100');
    });

    it('fence the primary: no failover while fenced; unfence: the same primary, writable, rows intact', async () => {
      const fence = await plugin(['fence', NAME, primary, '-n', ns, '--timeout', '90']);
      expect(fence.code, fence.stderr).toBe(EXIT.ok);
      expect(fence.stdout).toContain('no failover happens');
      // The operator runs its passes meanwhile (failoverDelay is 0): nothing takes the primary role.
      const until = Date.now() + 15_000;
      while (Date.now() < until) {
        const c = await db.get();
        expect(c.status!.currentPrimary).toBe(primary);
        expect((await db.primaryLease())?.spec?.holderIdentity).toBe(primary);
        await new Promise((r) => setTimeout(r, 1000));
      }
      const held = await db.get();
      expect(held.status!.conditions!.find((x) => x.type === 'PrimaryAvailable')).toMatchObject({ status: 'False', reason: 'PrimaryFenced' });
      expect(await db.roleLabel(primary)).toBeUndefined();
      expect(await db.roleLabel(replica)).toBe('replica');

      const unfence = await plugin(['unfence', NAME, primary, '-n', ns, '--timeout', '180']);
      expect(unfence.code, unfence.stderr).toBe(EXIT.ok);
      const after = await db.healthy(2, 60_000);
      expect(after.status!.currentPrimary).toBe(primary);
      expect(await rows()).toBe('100');
      await query(db.rw(), 'INSERT INTO fenced_rows VALUES (101)');
      expect(await rows()).toBe('101');
    });

    it('an invalid fencing annotation fences nothing and says why', async () => {
      await kubectlOk(['annotate', 'pgc', NAME, '-n', ns, `${ANNOTATIONS.fencedInstances}=${NAME}-9`]);
      const c = await waitFor('Fenced InvalidFencingAnnotation', async () => {
        const got = await db.get();
        return got.status?.conditions?.find((x) => x.type === 'Fenced')?.reason === 'InvalidFencingAnnotation' ? got : undefined;
      });
      expect(c.status!.conditions!.find((x) => x.type === 'Fenced')!.message).toContain('it must be a JSON array of instance names of this cluster');
      expect(c.status!.fencedInstances).toBeUndefined();
      const fence = await plugin(['fence', NAME, replica, '-n', ns, '--no-wait']);
      expect(fence.code).toBe(EXIT.failed);
      expect(fence.stderr).toContain('fix or remove it first');
      await kubectlOk(['annotate', 'pgc', NAME, '-n', ns, `${ANNOTATIONS.fencedInstances}-`]);
      const unknown = await plugin(['fence', NAME, `${NAME}-9`, '-n', ns]);
      expect(unknown.code).toBe(EXIT.usage);
      expect(unknown.stderr).toContain(`${NAME}-9 is not an instance of ${NAME} (instances: `);
      expect((await plugin(['fence', 'no-such-db', replica, '-n', ns])).code).toBe(EXIT.notFound);
      expect((await plugin(['reload', 'no-such-db', '-n', ns])).code).toBe(EXIT.notFound);
    });

    it('reload: every running instance re-reads its configuration (a setting only in postgresql.auto.conf takes effect)', async () => {
      const su = await superuser(primary);
      const setting = async () => (await query<{ setting: string }>(su, "SELECT setting FROM pg_settings WHERE name = 'log_min_duration_statement'"))[0]!.setting;
      await query(su, "ALTER SYSTEM SET log_min_duration_statement = '4321'");
      try {
        expect(await setting()).not.toBe('4321');
        const r = await plugin(['reload', NAME, '-n', ns]);
        expect(r.code, r.stderr).toBe(EXIT.ok);
        const last = (await db.get()).status!.lastReload!;
        expect(last.completedAt).toBeTruthy();
        expect([...last.instances].sort()).toEqual([primary, replica].sort());
        expect(r.stdout).toContain(`reloaded the configuration of ${last.instances.join(', ')}`);
        expect(await setting()).toBe('4321');
      } finally {
        await query(su, 'ALTER SYSTEM RESET log_min_duration_statement');
        await query(su, 'SELECT pg_reload_conf()');
      }
    });

    it('restart of the replica replaces only its pod; of the primary, a switchover first and no acknowledged write lost', async () => {
      const before = await uids();
      const r = await plugin(['restart', NAME, replica, '-n', ns, '--timeout', '180']);
      expect(r.code, r.stderr).toBe(EXIT.ok);
      const after = await uids();
      expect(after[replica]).not.toBe(before[replica]);
      expect(after[primary]).toBe(before[primary]);
      expect((await db.get()).status!.currentPrimary).toBe(primary);

      const writer = new LedgerWriter(db.rw(), 'restart_ledger');
      await writer.prepare();
      writer.start();
      await waitFor('writes flowing', async () => writer.acknowledged.length >= 20);
      const events = async () => (await core().listNamespacedEvent({ namespace: ns, fieldSelector: `involvedObject.name=${NAME}` })).items.map((e) => e.reason);
      const failoversBefore = (await events()).filter((x) => x === 'FailoverCompleted').length;
      const switchoversBefore = (await events()).filter((x) => x === 'SwitchoverCompleted').length;
      const p = await plugin(['restart', NAME, primary, '-n', ns, '--timeout', '240']);
      expect(p.code, p.stderr).toBe(EXIT.ok);
      expect(p.stdout).toContain('it is the primary, so a ready replica takes over first');
      const report = await writer.stop();
      const done = await uids();
      expect(done[primary]).not.toBe(after[primary]);
      expect(done[replica]).toBe(after[replica]);
      // A switchover moved the role before the old primary restarted (spec.primary then takes it back): no failover.
      const all = await events();
      expect(all.filter((x) => x === 'SwitchoverCompleted').length).toBeGreaterThan(switchoversBefore);
      expect(all.filter((x) => x === 'FailoverCompleted').length).toBe(failoversBefore);
      expect(await waitFor('the ledger read back', () => missingIds(db.rw(), report.acknowledged, 'restart_ledger').catch(() => undefined))).toEqual([]);
      const c = await db.healthy(2, 60_000);
      expect(c.metadata.annotations![ANNOTATIONS.restartInstances]).toContain(replica);
    });
  });
});
