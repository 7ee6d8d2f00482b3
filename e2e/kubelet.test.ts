// The process kubelet against the real control plane: pods as local processes through the real
// scheduler and controller-manager, probes, ConfigMap refresh, restarts, deletion, the PV
// provisioner with StatefulSet claims, and the service proxy. Timings are printed, not asserted.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { readFile, statfs, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { get as httpGet } from 'node:http';
import { get as httpsGet } from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { AppsV1Api, CoreV1Api, StorageV1Api, type V1Container, type V1Pod } from '@kubernetes/client-node';
import { ignoreNotFound } from '../src/runtime/api-status.js';
import { errorText } from '../src/util/error-text.js';
import { parseJson } from '../src/util/json.js';
import { createTestNamespace, deleteTestNamespace, kubeConfig, kubeconfigPath, waitFor } from './harness/env.js';
import { kubectl } from './harness/kubectl.js';
import { DEFAULT_CHART_ARGS, ensureBuilt, OPERATOR_NAMESPACE, RELEASE, REPO_ROOT, installChart } from './harness/operator.js';
import { kubectlPath } from '../test/support/binaries.js';
import { startProcessKubelet, type ProcessKubelet } from './kubelet/index.js';

// A tiny HTTP server for `e2e.local/node` (the kubelet's test-only image): it answers with what
// the pod sees — its IP from the fieldRef env, its user, its ConfigMap file, its claim's marker.
const SERVER = `
const http = require('http'), fs = require('fs'), os = require('os');
const read = (p) => { try { return fs.readFileSync(p, 'utf8'); } catch { return null; } };
// Only a pod whose claim is mounted at /data writes there: without a mount, /data is the host's.
if (process.env.DATA_MOUNTED === '1' && !fs.existsSync('/data/marker')) fs.writeFileSync('/data/marker', process.env.POD_UID);
http.createServer((req, res) => {
  if (req.url === '/ready') return res.end('ok');
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({
    ip: process.env.POD_IP, pod: process.env.POD_NAME, uid: process.getuid(), user: os.userInfo().username,
    greeting: read('/config/greeting'), marker: process.env.DATA_MOUNTED === '1' ? read('/data/marker') : null,
    namespace: read('/var/run/secrets/kubernetes.io/serviceaccount/namespace'),
    hasToken: fs.existsSync('/var/run/secrets/kubernetes.io/serviceaccount/token'),
    hostname: os.hostname(),
    dataBytes: process.env.DATA_MOUNTED === '1' ? (({ blocks, bsize }) => blocks * bsize)(fs.statfsSync('/data')) : null,
  }));
}).listen(8081, process.env.POD_IP);
process.on('SIGTERM', () => process.exit(0));
`;

function serverContainer(extraMounts: V1Container['volumeMounts'] = []): V1Container {
  return {
    name: 'web',
    image: 'e2e.local/node:24',
    args: ['-e', SERVER],
    env: [
      { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
      { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
      { name: 'POD_UID', valueFrom: { fieldRef: { fieldPath: 'metadata.uid' } } },
      { name: 'DATA_MOUNTED', value: extraMounts.some((m) => m.mountPath === '/data') ? '1' : '0' },
    ],
    ports: [{ name: 'http', containerPort: 8081 }],
    readinessProbe: { httpGet: { path: '/ready', port: 'http' }, periodSeconds: 1, failureThreshold: 1 },
    livenessProbe: { httpGet: { path: '/ready', port: 'http' }, periodSeconds: 2, failureThreshold: 3 },
    volumeMounts: extraMounts,
  };
}

// The logs/exec pod: known output at each start (its pid tells starts apart), a marker in its
// emptyDir, and one more line whenever /data/go appears (exec creates it).
const TALKER = `
const fs = require('fs');
for (let i = 1; i <= 5; i++) console.log('line ' + i);
console.log('pid ' + process.pid);
fs.writeFileSync('/data/marker', 'marker-' + process.env.POD_NAME);
setInterval(() => { if (fs.existsSync('/data/go')) { fs.unlinkSync('/data/go'); console.log('triggered'); } }, 100);
process.on('SIGTERM', () => process.exit(0));
`;

/** A command running in the background: its output so far and its exit. */
function background(cmd: string, args: string[]): { output: () => string; exit: Promise<number> } {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exit = new Promise<number>((resolve) => {
    child.on('error', () => resolve(-1));
    child.on('close', (code) => resolve(code ?? -1));
  });
  return { output: () => out, exit };
}

interface Answer {
  ip: string;
  pod: string;
  uid: number;
  user: string;
  greeting: string | null;
  marker: string | null;
  namespace: string | null;
  hasToken: boolean;
  hostname: string;
  /** Size of the file system at /data, as the pod sees it (statfs). */
  dataBytes: number | null;
}

/** One request on a fresh connection (the proxy balances connections, not requests). */
function ask(host: string, port = 8081): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpGet({ host, port, path: '/', agent: false, timeout: 2000 }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d));
      res.on('end', () => {
        try {
          resolve(parseJson<Answer>(body, `GET http://${host}:${port}/`));
        } catch (err) {
          reject(err);
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

const isReady = (p: V1Pod) => p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('process kubelet', () => {
  let ns: string;
  let kubelet: ProcessKubelet;
  const core = () => kubeConfig().makeApiClient(CoreV1Api);
  const apps = () => kubeConfig().makeApiClient(AppsV1Api);
  const timings: Record<string, number> = {};
  const everPids = new Set<number>();
  const readyPod = async (name: string, timeoutMs = 30_000) => {
    let last: V1Pod | undefined;
    try {
      return await waitFor(`pod ${name} Ready`, async () => {
        const p = (last = await core().readNamespacedPod({ namespace: ns, name }));
        for (const pid of kubelet.podPids(ns, name)) everPids.add(pid);
        return isReady(p) ? p : undefined;
      }, { timeoutMs, intervalMs: 100 });
    } catch (err) {
      // Say why: the pod's last status and the kubelet's last lines (its log goes with its stop).
      const log = await readFile(kubelet.logPath, 'utf8').catch(() => '');
      throw new Error(`${errorText(err)}\npod status: ${JSON.stringify(last?.status)}\nkubelet log:\n${log.split('\n').slice(-40).join('\n')}`);
    }
  };

  beforeAll(async () => {
    const t0 = Date.now();
    kubelet = await startProcessKubelet({ kubeconfigPath: kubeconfigPath(), repoRoot: REPO_ROOT });
    timings.kubeletStartMs = Date.now() - t0;
    // The kubelet's own tests run root and unconfined pods on purpose: no Pod Security here.
    ns = await createTestNamespace('kubelet', { restricted: false });
  });

  afterAll(async () => {
    console.log(`[kubelet e2e] timings ${JSON.stringify(timings)}; kubelet log ${kubelet?.logPath}`);
    await kubelet?.stop();
    if (ns) await deleteTestNamespace(ns);
    // The chart as the other files install it (no operator pod, no webhook nobody answers).
    await installChart(DEFAULT_CHART_ARGS);
  });

  it('runs a pod as the pod user with its IP, token and a live ConfigMap volume; kills and deletes it', async () => {
    await core().createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'greeting' }, data: { greeting: 'hello' } } });
    const t0 = Date.now();
    await core().createNamespacedPod({
      namespace: ns,
      body: {
        metadata: { name: 'web' },
        spec: {
          nodeName: kubelet.nodeName,
          terminationGracePeriodSeconds: 5,
          securityContext: { runAsUser: 26, runAsGroup: 26, fsGroup: 26 },
          containers: [serverContainer([{ name: 'config', mountPath: '/config', readOnly: true }])],
          volumes: [{ name: 'config', configMap: { name: 'greeting' } }],
        },
      },
    });
    const pod = await readyPod('web');
    timings.podReadyMs = Date.now() - t0;
    const ip = kubelet.podAddress(ns, 'web')!;
    expect(pod.status?.podIP).toBe(ip);
    expect(ip.startsWith(`${kubelet.podCidrBase}.`)).toBe(true);
    const a = await ask(ip);
    expect(a).toMatchObject({ ip, pod: 'web', uid: 26, user: 'postgres', greeting: 'hello', namespace: ns, hasToken: true, hostname: 'web' });
    // The bind mounts are the container's own: the host has no such file.
    expect(existsSync('/config/greeting')).toBe(false);

    const t1 = Date.now();
    await core().patchNamespacedConfigMap({ namespace: ns, name: 'greeting', body: [{ op: 'replace', path: '/data/greeting', value: 'bonjour' }] });
    await waitFor('the new greeting', async () => (await ask(ip)).greeting === 'bonjour', { timeoutMs: 5000, intervalMs: 100 });
    timings.configMapRefreshMs = Date.now() - t1;

    const [pid] = kubelet.podPids(ns, 'web');
    expect(pid).toBeGreaterThan(0);
    expect(await kubelet.killContainer(ns, 'web')).toBe(true);
    const t2 = Date.now();
    await waitFor('restartCount 1 and Ready again', async () => {
      const p = await core().readNamespacedPod({ namespace: ns, name: 'web' });
      const s = p.status?.containerStatuses?.[0];
      return s?.restartCount === 1 && s.state?.running && isReady(p) ? p : undefined;
    }, { timeoutMs: 15_000, intervalMs: 100 });
    timings.restartAfterKillMs = Date.now() - t2;
    const p = await core().readNamespacedPod({ namespace: ns, name: 'web' });
    expect(p.status?.containerStatuses?.[0]?.lastState?.terminated?.exitCode).toBe(137);
    expect(alive(pid!)).toBe(false);
    const [pid2] = kubelet.podPids(ns, 'web');
    expect(pid2).not.toBe(pid);
    everPids.add(pid2!);

    const t3 = Date.now();
    await core().deleteNamespacedPod({ namespace: ns, name: 'web' });
    await waitFor('pod object gone', async () => (await ignoreNotFound(core().readNamespacedPod({ namespace: ns, name: 'web' }))) === undefined, { timeoutMs: 15_000, intervalMs: 100 });
    timings.deleteMs = Date.now() - t3;
    expect(alive(pid2!)).toBe(false);
  });

  it('reports an image it cannot run as ErrImagePull', async () => {
    await core().createNamespacedPod({ namespace: ns, body: { metadata: { name: 'nginx' }, spec: { nodeName: kubelet.nodeName, containers: [{ name: 'nginx', image: 'nginx:1.27' }] } } });
    const waiting = await waitFor('ErrImagePull', async () => {
      const p = await core().readNamespacedPod({ namespace: ns, name: 'nginx' });
      const w = p.status?.containerStatuses?.[0]?.state?.waiting;
      return w?.reason === 'ErrImagePull' || w?.reason === 'ImagePullBackOff' ? w : undefined;
    }, { timeoutMs: 10_000, intervalMs: 100 });
    expect(waiting.message).toContain('nginx:1.27');
    await core().deleteNamespacedPod({ namespace: ns, name: 'nginx' });
  });

  it('runs a Deployment through the scheduler and routes a Service to it through the proxy', async () => {
    const labels = { app: 'echo' };
    const t0 = Date.now();
    await apps().createNamespacedDeployment({
      namespace: ns,
      body: {
        metadata: { name: 'echo' },
        spec: {
          replicas: 2,
          selector: { matchLabels: labels },
          template: { metadata: { labels }, spec: { terminationGracePeriodSeconds: 5, containers: [serverContainer()] } },
        },
      },
    });
    await core().createNamespacedService({ namespace: ns, body: { metadata: { name: 'echo' }, spec: { selector: labels, ports: [{ name: 'web', port: 80, targetPort: 'http' }] } } });
    const pods = await waitFor('two ready echo pods', async () => {
      const list = await core().listNamespacedPod({ namespace: ns, labelSelector: 'app=echo' });
      return list.items.filter(isReady).length === 2 ? list.items : undefined;
    }, { timeoutMs: 30_000, intervalMs: 100 });
    timings.deploymentReadyMs = Date.now() - t0;
    for (const p of pods) for (const pid of kubelet.podPids(ns, p.metadata!.name!)) everPids.add(pid);
    const svc = await waitFor('service address', async () => kubelet.serviceAddress(ns, 'echo'), { timeoutMs: 5000 });
    expect(svc.host.startsWith(`${kubelet.serviceCidrBase}.`)).toBe(true);
    expect(svc.port).toBe(80);
    const seen = await waitFor('both endpoints answer through the proxy', async () => {
      const names = new Set<string>();
      for (let i = 0; i < 6; i++) names.add((await ask(svc.host, svc.port)).pod);
      return names.size === 2 ? names : undefined;
    }, { timeoutMs: 10_000, intervalMs: 200 });
    expect([...seen].sort()).toEqual(pods.map((p) => p.metadata!.name!).sort());

    // Isolating one pod takes it out of the Service within a second.
    const victim = pods[0]!.metadata!.name!;
    const t1 = Date.now();
    await kubelet.isolatePod(ns, victim);
    await waitFor('only the other pod answers', async () => {
      for (let i = 0; i < 4; i++) if ((await ask(svc.host, svc.port)).pod === victim) return false;
      return true;
    }, { timeoutMs: 5000, intervalMs: 50 });
    timings.proxySwitchMs = Date.now() - t1;
    await kubelet.heal(ns, victim);
    await waitFor('the healed pod answers again', async () => {
      for (let i = 0; i < 4; i++) if ((await ask(svc.host, svc.port)).pod === victim) return true;
      return false;
    }, { timeoutMs: 5000, intervalMs: 100 });
  });

  it('binds StatefulSet claims to provisioned volumes that outlive the pod', async () => {
    const labels = { app: 'db' };
    await core().createNamespacedService({ namespace: ns, body: { metadata: { name: 'db' }, spec: { clusterIP: 'None', selector: labels, ports: [{ port: 8081 }] } } });
    const t0 = Date.now();
    await apps().createNamespacedStatefulSet({
      namespace: ns,
      body: {
        metadata: { name: 'db' },
        spec: {
          serviceName: 'db',
          replicas: 1,
          selector: { matchLabels: labels },
          template: {
            metadata: { labels },
            spec: {
              terminationGracePeriodSeconds: 5,
              securityContext: { runAsUser: 26, runAsGroup: 26, fsGroup: 26 },
              containers: [serverContainer([{ name: 'data', mountPath: '/data' }])],
            },
          },
          volumeClaimTemplates: [
            { metadata: { name: 'data' }, spec: { accessModes: ['ReadWriteOnce'], storageClassName: 'fast-ssd', resources: { requests: { storage: '1Gi' } } } },
          ],
        },
      },
    });
    const pvc = await waitFor('claim data-db-0 bound', async () => {
      const c = await core().readNamespacedPersistentVolumeClaim({ namespace: ns, name: 'data-db-0' });
      return c.status?.phase === 'Bound' ? c : undefined;
    }, { timeoutMs: 30_000, intervalMs: 100 });
    timings.pvcBindMs = Date.now() - t0;
    const pv = await core().readPersistentVolume({ name: pvc.spec!.volumeName! });
    expect(pv.spec?.storageClassName).toBe('fast-ssd');
    const first = await readyPod('db-0');
    timings.statefulPodReadyMs = Date.now() - t0;
    const a = await ask(kubelet.podAddress(ns, 'db-0')!);
    expect(a.marker).toBe(first.metadata!.uid);
    expect(a.dataBytes, 'the claim is a file system of its size').toBe(2 ** 30);

    const t1 = Date.now();
    await core().deleteNamespacedPod({ namespace: ns, name: 'db-0' });
    const second = await waitFor('db-0 recreated and Ready', async () => {
      const p = await core().readNamespacedPod({ namespace: ns, name: 'db-0' });
      return p.metadata!.uid !== first.metadata!.uid && isReady(p) ? p : undefined;
    }, { timeoutMs: 30_000, intervalMs: 100 });
    timings.statefulRecreateMs = Date.now() - t1;
    for (const pid of kubelet.podPids(ns, 'db-0')) everPids.add(pid);
    const b = await ask(kubelet.podAddress(ns, 'db-0')!);
    expect(b.pod).toBe('db-0');
    expect(b.marker).toBe(first.metadata!.uid); // written by the first pod, read by the second
    expect(second.metadata!.uid).not.toBe(first.metadata!.uid);
  });

  it('expands a bound claim whose StorageClass allows it: its file system is full at its size and grows online', async () => {
    const sc = `kubelet-e2e-${ns}`;
    const storage = kubeConfig().makeApiClient(StorageV1Api);
    await storage.createStorageClass({ body: { metadata: { name: sc }, provisioner: 'pgpilot.io/process-kubelet', allowVolumeExpansion: true } });
    try {
      await core().createNamespacedPersistentVolumeClaim({
        namespace: ns,
        body: { metadata: { name: 'grow' }, spec: { accessModes: ['ReadWriteOnce'], storageClassName: sc, resources: { requests: { storage: '8Mi' } } } },
      });
      const bound = await waitFor('claim grow bound', async () => {
        const c = await core().readNamespacedPersistentVolumeClaim({ namespace: ns, name: 'grow' });
        return c.status?.phase === 'Bound' ? c : undefined;
      }, { timeoutMs: 15_000, intervalMs: 100 });
      const dir = (await core().readPersistentVolume({ name: bound.spec!.volumeName! })).spec!.hostPath!.path;
      const size = async () => (({ blocks, bsize }) => blocks * bsize)(await statfs(dir));
      expect(await size()).toBe(8 * 2 ** 20);
      // Past its size, a write fails as on a full disk.
      await writeFile(join(dir, 'a'), Buffer.alloc(6 * 2 ** 20, 1));
      const full = await writeFile(join(dir, 'b'), Buffer.alloc(4 * 2 ** 20, 1)).then(() => undefined, (err: NodeJS.ErrnoException) => err.code);
      expect(full).toBe('ENOSPC');
      const t0 = Date.now();
      await core().patchNamespacedPersistentVolumeClaim({ namespace: ns, name: 'grow', body: [{ op: 'replace', path: '/spec/resources/requests/storage', value: '16Mi' }] });
      const pvc = await waitFor('claim grow at 16Mi', async () => {
        const c = await core().readNamespacedPersistentVolumeClaim({ namespace: ns, name: 'grow' });
        return c.status?.capacity?.storage === '16Mi' ? c : undefined;
      }, { timeoutMs: 15_000, intervalMs: 100 });
      timings.expandMs = Date.now() - t0;
      expect((await core().readPersistentVolume({ name: pvc.spec!.volumeName! })).spec?.capacity?.storage).toBe('16Mi');
      // Grown in place: the data is still there and the room is.
      expect(await size()).toBe(16 * 2 ** 20);
      expect((await readFile(join(dir, 'a'))).length).toBe(6 * 2 ** 20);
      await writeFile(join(dir, 'b'), Buffer.alloc(4 * 2 ** 20, 1));
    } finally {
      await storage.deleteStorageClass({ name: sc }).catch(() => undefined);
    }
  });

  it('runs a PostgreSQL image as postgres (26) on a claim, with a real build of that major standing in', async () => {
    await core().createNamespacedPersistentVolumeClaim({
      namespace: ns,
      body: { metadata: { name: 'pg-data' }, spec: { accessModes: ['ReadWriteOnce'], storageClassName: 'fast-ssd', resources: { requests: { storage: '1Gi' } } } },
    });
    const t0 = Date.now();
    await core().createNamespacedPod({
      namespace: ns,
      body: {
        metadata: { name: 'pg' },
        spec: {
          terminationGracePeriodSeconds: 10,
          securityContext: { runAsNonRoot: true, runAsUser: 26, runAsGroup: 26, fsGroup: 26 },
          containers: [
            {
              name: 'postgres',
              image: 'ghcr.io/pgpilot/postgresql:14.5',
              command: ['sh', '-c', 'initdb -D "$PGDATA" -U postgres --auth=trust >/dev/null && exec postgres -D "$PGDATA" -c listen_addresses="$POD_IP" -c unix_socket_directories=/var/run/postgresql'],
              env: [
                { name: 'PGDATA', value: '/var/lib/postgresql/data/pgdata' },
                { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
              ],
              ports: [{ name: 'postgresql', containerPort: 5432 }],
              // exec runs inside the container's mount namespace, where the socket dir is.
              readinessProbe: { exec: { command: ['pg_isready', '-q', '-h', '/var/run/postgresql'] }, periodSeconds: 1 },
              securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true },
              volumeMounts: [
                { name: 'data', mountPath: '/var/lib/postgresql/data' },
                { name: 'run', mountPath: '/var/run/postgresql' },
                { name: 'shm', mountPath: '/dev/shm' },
              ],
            },
          ],
          volumes: [
            { name: 'data', persistentVolumeClaim: { claimName: 'pg-data' } },
            { name: 'run', emptyDir: {} },
            { name: 'shm', emptyDir: { medium: 'Memory' } },
          ],
        },
      },
    });
    await readyPod('pg', 60_000);
    timings.postgresReadyMs = Date.now() - t0;
    const client = new pg.Client({ host: kubelet.podAddress(ns, 'pg'), port: 5432, user: 'postgres', database: 'postgres', connectionTimeoutMillis: 5000 });
    await client.connect();
    try {
      const r = await client.query<{ user: string; v: string }>('select current_user as user, current_setting($1) as v', ['server_version_num']);
      expect(r.rows[0]).toMatchObject({ user: 'postgres' });
      // postgresql:14.5 runs the nearest 14 installed (scripts/ensure-postgres.sh): a real 14.
      expect(Math.floor(Number(r.rows[0]!.v) / 10000)).toBe(14);
    } finally {
      await client.end();
    }
    const events = await core().listNamespacedEvent({ namespace: ns, fieldSelector: 'involvedObject.name=pg' });
    expect(events.items.map((e) => e.reason)).toContain('ImageVersionSubstituted');
    // What kubectl pgpilot does: psql inside the instance pod, a query as an argument or a script on stdin.
    const psql = ['-n', ns, 'exec', '-i', 'pg', '-c', 'postgres', '--', 'psql', '-h', '/var/run/postgresql', '-U', 'postgres', '-tA'];
    expect(await kubectl([...psql, '-c', 'select 1'])).toMatchObject({ code: 0, stdout: '1\n' });
    expect(await kubectl(psql, 'select 40 + 2;\nselect current_user;\n')).toMatchObject({ code: 0, stdout: '42\npostgres\n' });
  });

  it('runs the operator pod of the Helm chart with its in-cluster config; its probes pass', async () => {
    ensureBuilt();
    // The chart as users install it: the operator binds its pod IP, so its port does not collide
    // with the proxy's listener for the metrics Service on this shared host network.
    const t0 = Date.now();
    await installChart();
    const pod = await waitFor('the operator pod Ready', async () => {
      const list = await core().listNamespacedPod({ namespace: OPERATOR_NAMESPACE, labelSelector: 'app.kubernetes.io/name=pgpilot' });
      return list.items.find((p) => p.spec?.nodeName === kubelet.nodeName && isReady(p));
    }, { timeoutMs: 60_000, intervalMs: 200 });
    timings.operatorPodReadyMs = Date.now() - t0;
    const name = pod.metadata!.name!;
    for (const pid of kubelet.podPids(OPERATOR_NAMESPACE, name)) everPids.add(pid);
    const status = pod.status!.containerStatuses![0]!;
    expect(status.restartCount).toBe(0);
    const res = await fetch(`http://${kubelet.podAddress(OPERATOR_NAMESPACE, name)}:8080/metrics`);
    expect(res.status).toBe(200);
    const svc = kubelet.serviceAddress(OPERATOR_NAMESPACE, `${RELEASE}-metrics`, 'http');
    expect(svc, 'the metrics Service is proxied').toBeDefined();
    expect((await fetch(`http://${svc!.host}:${svc!.port}/metrics`)).status).toBe(200);
  });

  it('the operator pod serves the conversion webhook through the chart\'s Service (ExternalName to the pod, as the harness reaches pods)', async () => {
    const list = await core().listNamespacedPod({ namespace: OPERATOR_NAMESPACE, labelSelector: 'app.kubernetes.io/name=pgpilot' });
    const pod = list.items.find((p) => p.spec?.nodeName === kubelet.nodeName && isReady(p))!;
    const service = `${RELEASE}-webhook`;
    // The operator pointed the CRD at the chart's Service, with its CA.
    await waitFor('the CRD names the webhook Service, with a CA bundle', async () => {
      const crd = parseJson<{ spec: { conversion?: { webhook?: { clientConfig?: { service?: Record<string, unknown>; caBundle?: string } } } } }>(
        (await kubectl(['get', 'crd', 'postgresqlclusters.postgres.pgpilot.io', '-o', 'json'])).stdout,
        'the CRD',
      );
      const cc = crd.spec.conversion?.webhook?.clientConfig;
      return cc?.caBundle && JSON.stringify(cc.service) === JSON.stringify({ name: service, namespace: OPERATOR_NAMESPACE, path: '/convert', port: 9443 });
    }, { timeoutMs: 30_000, intervalMs: 200 });
    // ClusterIPs carry no traffic here: the same Service, as ExternalName to the pod's IP (the
    // apiserver dials <externalName>:<port> and checks the certificate for <service>.<ns>.svc).
    await core().deleteNamespacedService({ namespace: OPERATOR_NAMESPACE, name: service });
    await core().createNamespacedService({ namespace: OPERATOR_NAMESPACE, body: { metadata: { name: service }, spec: { type: 'ExternalName', externalName: pod.status!.podIP!, ports: [{ name: 'webhook', port: 9443 }] } } });
    const convNs = await createTestNamespace('kubelet-conv', { waitForServiceAccount: false });
    try {
      // Hibernated: the operator (watching every namespace) runs no pod for it.
      const manifest = { apiVersion: 'postgres.pgpilot.io/v1', kind: 'PostgreSQLCluster', metadata: { name: 'conv', namespace: convNs }, spec: { version: '16', instances: 2, storage: { size: '1Gi', pvcRetentionPolicy: { whenDeleted: 'Retain' } }, hibernation: true, backup: { enabled: false } } };
      const created = await kubectl(['create', '-f', '-'], JSON.stringify(manifest));
      expect(created.code, created.stderr).toBe(0);
      const beta = await kubectl(['get', 'postgresqlclusters.v1beta1.postgres.pgpilot.io', 'conv', '-n', convNs, '-o', 'json']);
      expect(beta.code, beta.stderr).toBe(0);
      const obj = parseJson<{ apiVersion: string; spec: Record<string, unknown>; metadata: { annotations?: Record<string, string> } }>(beta.stdout, 'the cluster as v1beta1');
      expect(obj.apiVersion).toBe('postgres.pgpilot.io/v1beta1');
      expect(obj.spec).toMatchObject({ replicas: 2, storage: '1Gi' });
      expect(JSON.parse(obj.metadata.annotations!['postgres.pgpilot.io/conversion-data']!)).toEqual({ storage: { pvcRetentionPolicy: { whenDeleted: 'Retain', whenScaled: 'Delete' } } });
    } finally {
      await deleteTestNamespace(convNs);
    }
  });

  describe('the kubelet API through the apiserver', () => {
    const k = (...args: string[]) => kubectl(['-n', ns, ...args]);
    const talkerPid = async () => {
      const out = await waitFor('the talker’s pid line', async () => {
        const r = await k('logs', 'talker', '-c', 'talk');
        return /pid \d+\n/.test(r.stdout) ? r.stdout : undefined;
      }, { timeoutMs: 15_000, intervalMs: 200 });
      return /pid (\d+)/.exec(out)![1]!;
    };

    it('serves HTTPS with a certificate from the cluster’s signer, only to clients with the apiserver’s client CA', async () => {
      const node = await core().readNode({ name: kubelet.nodeName });
      const port = node.status?.daemonEndpoints?.kubeletEndpoint?.Port ?? 0;
      expect(port).toBeGreaterThan(0);
      expect(node.status?.addresses).toContainEqual({ type: 'InternalIP', address: '127.0.0.1' });
      // Without a client certificate the TLS handshake fails (no response at all).
      const anonymous = await new Promise<string>((resolve) => {
        const req = httpsGet({ host: '127.0.0.1', port, path: '/healthz', rejectUnauthorized: false, timeout: 5000 }, (res) => resolve(`HTTP ${res.statusCode}`));
        req.on('error', (err) => resolve(`error: ${err.message}`));
        req.on('timeout', () => req.destroy(new Error('timeout')));
      });
      expect(anonymous).toMatch(/^error: /);
      expect(await readFile(kubelet.logPath, 'utf8')).not.toContain('self-signed');
    });

    it('kubectl logs: the container’s output without header lines, -c, --tail; unsupported options refused', async () => {
      await core().createNamespacedPod({
        namespace: ns,
        body: {
          metadata: { name: 'talker' },
          spec: {
            nodeName: kubelet.nodeName,
            terminationGracePeriodSeconds: 5,
            securityContext: { runAsUser: 26, runAsGroup: 26, fsGroup: 26 },
            containers: [
              { name: 'talk', image: 'e2e.local/node:24', args: ['-e', TALKER], workingDir: '/data', env: [{ name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } }], volumeMounts: [{ name: 'data', mountPath: '/data' }] },
              { name: 'side', image: 'e2e.local/node:24', args: ['-e', "console.log('side says hi'); setInterval(() => {}, 1e9); process.on('SIGTERM', () => process.exit(0));"] },
            ],
            volumes: [{ name: 'data', emptyDir: {} }],
          },
        },
      });
      await readyPod('talker');
      const pid = await talkerPid();
      expect((await k('logs', 'talker', '-c', 'talk')).stdout).toBe(`line 1\nline 2\nline 3\nline 4\nline 5\npid ${pid}\n`);
      expect((await k('logs', 'talker', '-c', 'talk', '--tail=2')).stdout).toBe(`line 5\npid ${pid}\n`);
      expect((await k('logs', 'talker', '-c', 'talk', '--limit-bytes=9')).stdout).toBe('line 1\nli');
      expect((await k('logs', 'talker', '-c', 'side')).stdout).toBe('side says hi\n');
      const prev = await k('logs', 'talker', '-c', 'talk', '--previous');
      expect(prev.code).not.toBe(0);
      expect(prev.stderr).toContain('previous terminated container "talk" in pod "talker" not found');
      const since = await k('logs', 'talker', '-c', 'talk', '--since=1h');
      expect(since.code).not.toBe(0);
      expect(since.stderr).toContain('the process kubelet does not support sinceSeconds');
    });

    it('kubectl exec runs in the container (user, hostname, volume, env, cwd), with its exit code and stdin', async () => {
      const r = await k('exec', 'talker', '-c', 'talk', '--', 'sh', '-c', 'id -u; hostname; cat /data/marker; echo; pwd; printenv POD_NAME; printenv TERM || echo no-term');
      expect(r).toMatchObject({ code: 0, stdout: '26\ntalker\nmarker-talker\n/data\ntalker\nno-term\n' });
      // The host does not see the container's volume (its /data, a mount point, may exist).
      expect(existsSync('/data/marker') ? readFileSync('/data/marker', 'utf8') : '').not.toBe('marker-talker');
      const failed = await k('exec', 'talker', '-c', 'talk', '--', 'sh', '-c', 'echo out; echo err >&2; exit 3');
      expect(failed).toMatchObject({ code: 3, stdout: 'out\n' });
      expect(failed.stderr).toContain('err\n');
      // stdin: its end is the command's end of input (psql reading a script from a pipe ends).
      expect(await k('exec', '-i', 'talker', '-c', 'talk', '--', 'cat')).toMatchObject({ code: 0, stdout: '' });
      expect(await kubectl(['-n', ns, 'exec', '-i', 'talker', '-c', 'talk', '--', 'cat'], 'hello\n')).toMatchObject({ code: 0, stdout: 'hello\n' });
      const big = 'x'.repeat(1023) + '\n';
      expect(await kubectl(['-n', ns, 'exec', '-i', 'talker', '-c', 'talk', '--', 'wc', '-c'], big.repeat(300))).toMatchObject({ code: 0, stdout: `${300 * 1024}\n` });
    });

    it('kubectl exec -t gives the command a terminal', async () => {
      const bin = await kubectlPath();
      const line = [bin, '--kubeconfig', kubeconfigPath(), '-n', ns, 'exec', '-it', 'talker', '-c', 'talk', '--', 'sh', '-c', "'tty; echo TERM=$TERM; exit 4'"].join(' ');
      const run = background('script', ['-qec', line, '/dev/null']);
      expect(await run.exit).toBe(4);
      expect(run.output()).toMatch(/\/dev\/pts\/\d+\r?\n/);
      expect(run.output()).toContain('TERM=xterm');
    });

    it('an exec’d command is in the container’s cgroup; --previous shows the start before a kill', async () => {
      const before = await talkerPid();
      const bin = await kubectlPath();
      const sleeper = background(bin, ['--kubeconfig', kubeconfigPath(), '-n', ns, 'exec', 'talker', '-c', 'talk', '--', 'sh', '-c', 'echo started; exec sleep 600']);
      await waitFor('the exec’d sleep started', async () => sleeper.output().includes('started'), { timeoutMs: 15_000, intervalMs: 100 });
      expect(await kubelet.killContainer(ns, 'talker', 'talk')).toBe(true);
      expect(await sleeper.exit).toBe(137); // SIGKILLed with the container
      await waitFor('talk restarted', async () => {
        const p = await core().readNamespacedPod({ namespace: ns, name: 'talker' });
        const s = p.status?.containerStatuses?.find((c) => c.name === 'talk');
        return s?.restartCount === 1 && s.state?.running;
      }, { timeoutMs: 15_000, intervalMs: 100 });
      const after = await talkerPid();
      expect(after).not.toBe(before);
      const prev = await k('logs', 'talker', '-c', 'talk', '--previous');
      expect(prev).toMatchObject({ code: 0, stdout: `line 1\nline 2\nline 3\nline 4\nline 5\npid ${before}\n` });
      expect((await k('logs', 'talker', '-c', 'talk')).stdout).toBe(`line 1\nline 2\nline 3\nline 4\nline 5\npid ${after}\n`);
    });

    it('kubectl logs -f sees later lines and ends when the pod is deleted', async () => {
      const bin = await kubectlPath();
      const follow = background(bin, ['--kubeconfig', kubeconfigPath(), '-n', ns, 'logs', '-f', 'talker', '-c', 'talk']);
      await waitFor('the current output', async () => follow.output().includes('pid '), { timeoutMs: 15_000, intervalMs: 100 });
      expect(follow.output()).not.toContain('triggered');
      expect((await k('exec', 'talker', '-c', 'talk', '--', 'touch', '/data/go')).code).toBe(0);
      await waitFor('a line written after -f started', async () => follow.output().includes('triggered\n'), { timeoutMs: 15_000, intervalMs: 100 });
      await core().deleteNamespacedPod({ namespace: ns, name: 'talker' });
      expect(await follow.exit).toBe(0);
      expect(follow.output()).not.toContain('---- ');
    });
  });

  it('stop() leaves no process behind', async () => {
    for (const pid of kubelet.allPids()) everPids.add(pid);
    expect(everPids.size).toBeGreaterThan(0);
    // The namespace goes while the kubelet runs, so its pods end gracefully (not orphaned on a
    // Node that no longer exists) and the released volumes are deleted.
    const t0 = Date.now();
    await deleteTestNamespace(ns, { wait: true, timeoutMs: 60_000 });
    timings.namespaceDeleteMs = Date.now() - t0;
    await kubelet.stop();
    expect([...everPids].filter(alive)).toEqual([]);
    // Every volume's file system is unmounted (claims of the namespace and any left bound).
    expect((await readFile('/proc/mounts', 'utf8')).split('\n').filter((l) => l.includes(` ${kubelet.dataDir}/`))).toEqual([]);
  });
});
