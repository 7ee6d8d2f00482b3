// npm run sandbox: a local pgpilot playground on loopback. A real Kubernetes control plane, the
// process kubelet (pods run as local processes, Services through a loopback proxy), the operator
// installed from the Helm chart (its Deployment's pod runs with in-cluster config), and
// examples/cluster.yaml applied. The chart's default backup store is a local S3 server (s3rver on
// loopback, data under .cache/sandbox/s3, emptied at each start), so the example's backups and
// WAL archiving work as they would against a real bucket. Shows progress until the cluster is
// Ready, prints a psql connection string, and tears everything down on Ctrl-C.
//
//   npm run sandbox                 foreground; Ctrl-C stops everything
//   npm run sandbox -- --detach     keep running in the background (log: .cache/sandbox/sandbox.log)
//   npm run sandbox -- stop         stop a detached sandbox
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import type { PostgreSQLCluster } from '../src/api/cluster.js';
import { errorText } from '../src/util/error-text.js';
import { startControlPlane } from '../e2e/harness/control-plane.js';
import { E2E_KUBECONFIG_ENV, ensureRestrictedNamespace, waitFor } from '../e2e/harness/env.js';
import { kubectl, kubectlOk } from '../e2e/harness/kubectl.js';
import { REPO_ROOT, installChart } from '../e2e/harness/operator.js';
import { appCredentials } from '../e2e/harness/postgres.js';
import { startMetricsServer } from '../e2e/harness/metrics-server.js';
import { startProcessKubelet } from '../e2e/kubelet/index.js';
import { kubectlPath } from '../test/support/binaries.js';
import { startS3rver, S3RVER_ACCESS_KEY, S3RVER_SECRET_KEY } from '../test/support/s3rver.js';

const BACKUP_BUCKET = 'pgpilot-backups';
const BACKUP_SECRET = 'pgpilot-backup-credentials';

const DIR = join(REPO_ROOT, '.cache', 'sandbox');
const PID_FILE = join(DIR, 'sandbox.pid');
const say = (msg: string) => console.log(`[sandbox] ${msg}`);

function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function stopDetached(): Promise<void> {
  const pid = existsSync(PID_FILE) ? Number(readFileSync(PID_FILE, 'utf8')) : NaN;
  if (!pid || !running(pid)) {
    say('no sandbox is running');
    return;
  }
  process.kill(pid, 'SIGTERM');
  await waitFor('the sandbox to stop', async () => !running(pid), { timeoutMs: 120_000, intervalMs: 250 });
  say(`stopped (pid ${pid})`);
}

function detach(): void {
  mkdirSync(DIR, { recursive: true });
  const log = openSync(join(DIR, 'sandbox.log'), 'w');
  const child = spawn(process.execPath, [...process.execArgv, process.argv[1]!], { detached: true, stdio: ['ignore', log, log], env: process.env });
  child.unref();
  say(`running in the background (pid ${child.pid}); follow it with: tail -f ${join(DIR, 'sandbox.log')}`);
  say('stop it with: npm run sandbox -- stop');
}

async function main(): Promise<void> {
  mkdirSync(DIR, { recursive: true });
  if (existsSync(PID_FILE) && running(Number(readFileSync(PID_FILE, 'utf8')))) throw new Error('a sandbox is already running: npm run sandbox -- stop');
  writeFileSync(PID_FILE, String(process.pid));

  const cp = await startControlPlane({});
  process.env[E2E_KUBECONFIG_ENV] = cp.kubeconfigPath;
  say(`control plane up at ${cp.server} in ${(cp.startupMs / 1000).toFixed(1)} s`);
  const kubelet = await startProcessKubelet({ kubeconfigPath: cp.kubeconfigPath, repoRoot: REPO_ROOT, dataDir: join(DIR, 'kubelet') });
  say(`process kubelet running node ${kubelet.nodeName}`);
  // metrics.k8s.io for `kubectl top` and HPAs (spec.autoscaling, `kubectl autoscale pgc`).
  // Not fatal: the cluster and the operator work without it (only `kubectl top` and HPAs do not).
  const metrics = await startMetricsServer({ kubeconfigPath: cp.kubeconfigPath, logsDir: DIR }).catch((err: unknown) => {
    say(`metrics-server did not start (kubectl top and HPAs will not work): ${errorText(err)}`);
    return undefined;
  });
  if (metrics) say(`metrics-server on 127.0.0.1:${metrics.port} (APIService v1beta1.metrics.k8s.io): kubectl top pods works`);

  // Every sandbox is a new control plane and so a new database: an archive left by an earlier
  // sandbox belongs to another database system, and the archiver rightly refuses to write into it.
  const s3Dir = join(DIR, 's3');
  rmSync(s3Dir, { recursive: true, force: true });
  mkdirSync(s3Dir, { recursive: true });
  const s3 = await startS3rver({ buckets: [BACKUP_BUCKET], directory: s3Dir });
  say(`S3 server (default backup store) at ${s3.endpoint}, bucket ${BACKUP_BUCKET}`);

  let stopping = false;
  const shutdown = async () => {
    if (stopping) return;
    stopping = true;
    say('stopping');
    await metrics?.stop();
    await kubelet.stop();
    await s3.stop();
    await cp.stop();
    rmSync(PID_FILE, { force: true });
    process.exit(0);
  };
  process.on('SIGINT', () => void shutdown());
  process.on('SIGTERM', () => void shutdown());

  say('installing the operator from charts/pgpilot (helm)');
  await kubectl(['create', 'namespace', 'pgpilot-system']);
  await kubectlOk(['create', 'secret', 'generic', BACKUP_SECRET, '-n', 'pgpilot-system', `--from-literal=ACCESS_KEY_ID=${S3RVER_ACCESS_KEY}`, `--from-literal=ACCESS_SECRET_KEY=${S3RVER_SECRET_KEY}`]);
  const store = { endpoint: s3.endpoint, bucket: BACKUP_BUCKET, forcePathStyle: true, checksums: 'WHEN_REQUIRED', credentials: { secretName: BACKUP_SECRET } };
  // The default store is opt-in per namespace: the example's namespace may use it.
  const exampleNs = (parse(readFileSync(join(REPO_ROOT, 'examples/cluster.yaml'), 'utf8')) as PostgreSQLCluster).metadata.namespace!;
  await installChart(['--set-json', `backup.defaultStore=${JSON.stringify(store)}`, '--set-json', `backup.defaultStoreNamespaces=${JSON.stringify([exampleNs])}`]);
  await waitFor('the operator pod Ready', async () => {
    const r = await kubectl(['get', 'pods', '-n', 'pgpilot-system', '-o', 'jsonpath={.items[*].status.conditions[?(@.type=="Ready")].status}']);
    return r.stdout.includes('True');
  }, { timeoutMs: 120_000, intervalMs: 500 });
  say('operator running in its pod');

  const example = parse(readFileSync(join(REPO_ROOT, 'examples/cluster.yaml'), 'utf8')) as PostgreSQLCluster;
  const ns = example.metadata.namespace!;
  const name = example.metadata.name!;
  // As in the e2e tests: the restricted Pod Security profile is enforced where the cluster runs.
  await ensureRestrictedNamespace(ns);
  await kubectlOk(['apply', '-f', '-'], stringify(example));
  say(`applied examples/cluster.yaml (${ns}/${name})`);

  let last = '';
  await waitFor(`${ns}/${name} Ready`, async () => {
    const r = await kubectl(['get', 'pgc', name, '-n', ns, '--no-headers']);
    // Without the AGE column, which changes every second.
    const line = r.stdout.trim().split(/\s+/).slice(0, -1).join(' ');
    if (line && line !== last) say(`pgc: ${line}`);
    last = line;
    const ready = await kubectl(['get', 'pgc', name, '-n', ns, '-o', 'jsonpath={.status.conditions[?(@.type=="Ready")].status}']);
    return ready.stdout.trim() === 'True';
  }, { timeoutMs: 600_000, intervalMs: 1000 });

  const creds = await appCredentials(ns, name);
  const rw = kubelet.serviceAddress(ns, `${name}-rw`, 'postgresql')!;
  const kubeconfig = join(DIR, 'kubeconfig');
  writeFileSync(kubeconfig, readFileSync(cp.kubeconfigPath));
  // verify-full as a client in the cluster would: the server certificate names the -rw Service;
  // hostaddr dials the service proxy's address while libpq checks the certificate against the name.
  const caFile = join(DIR, 'ca.crt');
  const ssl = creds.ssl as { ca: string; servername: string } | undefined;
  if (ssl) writeFileSync(caFile, ssl.ca);
  const tls = ssl ? `?hostaddr=${rw.host}&sslmode=verify-full&sslrootcert=${encodeURIComponent(caFile)}` : '';
  say('ready. Connect with:');
  console.log(`  psql "postgresql://${creds.user}:${encodeURIComponent(creds.password)}@${ssl ? ssl.servername : rw.host}:${rw.port}/${creds.database}${tls}"`);
  say(`kubectl: ${await kubectlPath()} --kubeconfig ${kubeconfig} get pgc -A`);
  say(`Service addresses: ${kubelet.servicesFile}`);
  say('Ctrl-C (or npm run sandbox -- stop) tears everything down');
}

const arg = process.argv[2];
if (arg === 'stop') await stopDetached();
else if (arg === '--detach') detach();
else if (arg && arg !== '--foreground') {
  console.error(`unknown argument "${arg}": use --detach, or stop`);
  process.exit(2);
} else {
  await main().catch((err: unknown) => {
    console.error(`[sandbox] failed: ${errorText(err)}`);
    process.exit(1);
  });
}
