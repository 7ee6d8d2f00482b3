// Major version upgrades with pg_upgrade on real PostgreSQL builds (16.13 → 17.11, 14.23 → 18.6).
// A 3-instance cluster with synchronous commit and WAL archiving to S3, holding pgbench data:
// a pg_upgrade --check failure (a regproc column) stops nothing and says which column; once fixed,
// the upgrade runs under a write load with a ledger — every acknowledged write and every table's
// checksum survive, every instance runs 17 and streams, the new version archives to its own path
// and takes a base backup, a point-in-time recovery after the upgrade works, and the backup taken
// before it still restores a 16 cluster. A single-instance 14 cluster: the upgrade Job killed in
// the middle of pg_upgrade brings 14 back with its rows; after an edit of the spec, 14 → 18 in one step.
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { CoreV1Api } from '@kubernetes/client-node';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PostgreSQLCluster } from '../src/api/cluster.js';
import { LABELS } from '../src/api/constants.js';
import { cacheRoot } from '../test/support/binaries.js';
import { startS3rver, S3RVER_ACCESS_KEY, S3RVER_SECRET_KEY, type S3rver } from '../test/support/s3rver.js';
import { startProcessKubelet, type ProcessKubelet } from './kubelet/index.js';
import { createTestNamespace, kubeConfig, kubeconfigPath, waitFor } from './harness/env.js';
import { backupFinished, backupNow, superuserConfig } from './harness/backups.js';
import { HaCluster } from './harness/ha-cluster.js';
import { kubectlOk } from './harness/kubectl.js';
import { REPO_ROOT, ensureBuilt, startOperator, type RunningOperator } from './harness/operator.js';
import { query } from './harness/postgres.js';
import { tearDown } from './harness/teardown.js';

const execFileAsync = promisify(execFile);
const BUCKET = 'upgrades';
const NAME = 'upg-db';
const SINGLE = 'upg-one';
const PGBENCH = join(cacheRoot(), 'postgresql/16.15.0/bin/pgbench');

/** count and md5 of every row of every table in public (the ledger aside: it grows under the load). */
async function checksums(config: pg.ClientConfig): Promise<Record<string, string>> {
  const tables = await query<{ t: string }>(config, "SELECT relname AS t FROM pg_class WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace AND relname NOT LIKE 'ledger%' ORDER BY 1");
  const out: Record<string, string> = {};
  for (const { t } of tables) {
    const [r] = await query<{ n: string; h: string }>(config, `SELECT count(*)::text AS n, md5(coalesce(string_agg(x::text, ',' ORDER BY x::text), '')) AS h FROM ${t} x`);
    out[t] = `${r!.n} ${r!.h}`;
  }
  return out;
}

describe('major version upgrades', () => {
  let ns: string;
  let kubelet: ProcessKubelet;
  let operator: RunningOperator;
  let s3: S3rver;
  let db: HaCluster;
  const core = () => kubeConfig().makeApiClient(CoreV1Api);
  const s3Spec = () => ({ endpoint: s3.endpoint, bucket: BUCKET, forcePathStyle: true, checksums: 'WHEN_REQUIRED', credentials: { secretName: 's3-credentials' } });
  const podUids = async (cluster: string) => (await kubectlOk(['get', 'pods', '-n', ns, '-l', `${LABELS.cluster}=${cluster},${LABELS.component}=instance`, '-o', 'jsonpath={range .items[*]}{.metadata.uid}{" "}{end}'])).trim().split(' ').sort();
  const versions = async (c: HaCluster) => Promise.all((await c.get()).status!.instanceNames!.map(async (i) => (await query<{ v: string }>(c.podConfig(i, 5000), "SELECT current_setting('server_version') AS v"))[0]!.v));
  const upgrading = (c: PostgreSQLCluster) => c.status?.conditions?.find((x) => x.type === 'Upgrading');

  const completed = async (name: string) => {
    const b = await backupFinished(ns, name);
    expect(b.status?.phase, JSON.stringify(b.status)).toBe('completed');
    return b;
  };

  /** The host directory behind a claim (the process kubelet's hostPath PersistentVolumes). */
  async function dataVolumeDir(claim: string): Promise<string> {
    const pvc = await core().readNamespacedPersistentVolumeClaim({ name: claim, namespace: ns });
    const pv = await core().readPersistentVolume({ name: pvc.spec!.volumeName! });
    return pv.spec!.hostPath!.path;
  }

  async function restored(name: string, version: string, recovery: Record<string, unknown>): Promise<HaCluster> {
    const c = new HaCluster(kubelet, ns, name);
    await c.create((spec) => {
      spec.spec.version = version;
      spec.spec.instances = 1;
      spec.spec.highAvailability = { enabled: true, synchronousCommit: false };
      spec.spec.backup = { enabled: false };
      spec.spec.bootstrap = { recovery: recovery as never };
    });
    await c.healthy(1, 300_000);
    return c;
  }

  beforeAll(async () => {
    ensureBuilt();
    if (!existsSync(PGBENCH)) throw new Error(`${PGBENCH} missing: run scripts/ensure-postgres.sh 16.15.0`);
    s3 = await startS3rver({ buckets: [BUCKET] });
    ns = await createTestNamespace('upgrade');
    kubelet = await startProcessKubelet({ kubeconfigPath: kubeconfigPath(), repoRoot: REPO_ROOT });
    operator = await startOperator({ watchNamespaces: [ns] });
    console.log(`[upgrade] kubelet log ${kubelet.logPath}; operator log ${operator.logPath}; s3rver ${s3.endpoint}`);
    await core().createNamespacedSecret({ namespace: ns, body: { metadata: { name: 's3-credentials' }, stringData: { ACCESS_KEY_ID: S3RVER_ACCESS_KEY, ACCESS_SECRET_KEY: S3RVER_SECRET_KEY } } });
    db = new HaCluster(kubelet, ns, NAME);
    await db.create((c) => {
      c.spec.version = '16.13';
      c.spec.instances = 3;
      c.spec.highAvailability = { enabled: true, synchronousCommit: true, synchronousReplicas: 1, durability: 'preferred' };
      c.spec.backup = { enabled: true, schedule: '0 0 1 1 *', retention: 7, s3: s3Spec() as never };
    });
  }, 600_000);

  afterAll(() => tearDown({ operator, kubelet, namespace: ns, s3 }));

  it('a pg_upgrade --check failure stops nothing and names the column; after a fix, 16 → 17 keeps every row and every replica', async () => {
    await db.healthy(3, 300_000);
    const rw = db.rw();
    await execFileAsync(PGBENCH, ['-i', '-s', '2', '-q'], { env: { ...process.env, PGHOST: rw.host, PGPORT: String(rw.port), PGUSER: rw.user, PGPASSWORD: String(rw.password), PGDATABASE: rw.database } });
    await query(rw, "CREATE TABLE kinds (id int PRIMARY KEY, j jsonb, n numeric, t timestamptz, a text[]); INSERT INTO kinds SELECT g, jsonb_build_object('g', g), g / 7.0, '2026-01-01'::timestamptz + g * interval '1 minute', ARRAY[g::text, md5(g::text)] FROM generate_series(1, 2000) g");
    await backupNow(ns, 'before-upgrade', NAME);
    await completed('before-upgrade');
    const before = await checksums(rw);
    expect(Object.keys(before).sort()).toEqual(['kinds', 'pgbench_accounts', 'pgbench_branches', 'pgbench_history', 'pgbench_tellers']);

    // pg_upgrade refuses reg* columns (their OIDs do not survive): found before anything stops.
    await query(rw, "CREATE TABLE reg_check (id int, f regproc); INSERT INTO reg_check VALUES (1, 'now'::regproc)");
    const pods = await podUids(NAME);
    await db.patchSpec({ version: '17.11' });
    const refused = await waitFor('Upgrading UpgradeCheckFailed', async () => {
      const c = await db.get();
      return upgrading(c)?.reason === 'UpgradeCheckFailed' ? c : undefined;
    }, { timeoutMs: 180_000, intervalMs: 500 });
    console.log(`[upgrade] check failure: ${upgrading(refused)!.message}`);
    expect(upgrading(refused)!.message).toContain('reg_check');
    expect(refused.status!.majorUpgrade).toMatchObject({ phase: 'Failed', from: '16.13', to: '17.11' });
    expect(await versions(db)).toEqual(['16.13', '16.13', '16.13']);
    expect(await podUids(NAME)).toEqual(pods);

    // Fixed, and asked again (an edit of the spec retries): the upgrade under a write load.
    await query(rw, 'DROP TABLE reg_check');
    await db.patchSpec({ version: '16.13' });
    const run = await db.changeUnderLoad('ledger_major', { version: '17.11' }, 'the upgrade to 17.11 done', async (c) => {
      const mu = c.status?.majorUpgrade;
      if (mu?.phase === 'Failed' && mu.to === '17.11' && mu.generation === c.metadata.generation) throw new Error(`the upgrade failed: ${mu.message}`);
      return mu?.phase === 'Succeeded' && mu.to === '17.11' && c.status?.phase === 'Healthy';
    }, 420_000);
    const after = await db.get();
    const mu = after.status!.majorUpgrade!;
    console.log(`[upgrade] 16.13 → 17.11: ${run.acknowledged} writes acknowledged, longest gap ${run.gapMs} ms, ${run.lost.length} lost; ${mu.message}`);
    expect(run.lost).toEqual([]);
    expect(await versions(db)).toEqual(['17.11', '17.11', '17.11']);
    expect(after.status!.version).toBe('17.11');
    expect(after.status!.streamingReplicas).toBe(2);
    expect(await checksums(db.rw())).toEqual(before);
    // The new version archives to its own place and has a base backup of its own.
    expect(after.status!.archiveSuffix).toBe('pg17');
    expect(after.status!.archivePath).toBe(`s3://${BUCKET}/pgpilot/${ns}/${NAME}/pg17`);
    expect(mu.previousArchive).toBe(`s3://${BUCKET}/pgpilot/${ns}/${NAME}`);
    expect((await completed(mu.backup!)).status!.destination!.path).toBe(`pgpilot/${ns}/${NAME}/pg17`);
    const report = await waitFor('post-upgrade work ended', async () => (await db.get()).status?.majorUpgrade?.postUpgrade?.match(/^(done|failed).*/)?.[0], { timeoutMs: 120_000, intervalMs: 1000 });
    expect(report).toMatch(/^done/);
    const events = await kubectlOk(['get', 'events', '-n', ns, '--field-selector', `involvedObject.name=${NAME}`, '-o', 'jsonpath={range .items[*]}{.reason}{" "}{end}']);
    for (const reason of ['UpgradeStarted', 'UpgradeCheckFailed', 'UpgradeStopping', 'UpgradeRunning', 'UpgradeStarting', 'UpgradePrimaryRunning', 'UpgradeSucceeded']) expect(events).toContain(reason);
  });

  it('a point-in-time recovery after the upgrade gives a 17 cluster; the backup from before it still restores 16', async () => {
    const su = await superuserConfig(kubelet, ns, NAME);
    await query(db.rw(), 'CREATE TABLE marks (id int PRIMARY KEY); INSERT INTO marks SELECT generate_series(1, 10)');
    await sleep(1100);
    const target = (await query<{ t: string }>(su, `SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS t`))[0]!.t;
    await sleep(1100);
    await query(db.rw(), 'INSERT INTO marks SELECT generate_series(11, 20)');
    await query(su, 'SELECT pg_switch_wal()');
    const pitr = await restored('upg-pitr', '17.11', { backup: { name: (await db.get()).status!.majorUpgrade!.backup }, target: { time: target } });
    expect(await versions(pitr)).toEqual(['17.11']);
    expect((await query<{ n: string }>(pitr.rw(), 'SELECT count(*)::text AS n FROM marks'))[0]!.n).toBe('10');

    const old = await restored('upg-old', '16.13', { backup: { name: 'before-upgrade' } });
    expect(await versions(old)).toEqual(['16.13']);
    const restoredSums = await checksums(old.rw());
    expect(restoredSums.pgbench_accounts).toBe((await checksums(db.rw())).pgbench_accounts);
  });

  it('the upgrade Job killed in pg_upgrade brings 14 back with every row; after an edit, 14 → 18 in one step', async () => {
    const one = new HaCluster(kubelet, ns, SINGLE);
    await one.create((c) => {
      c.spec.version = '14.23';
      c.spec.instances = 1;
      c.spec.highAvailability = { enabled: true, synchronousCommit: false };
      c.spec.backup = { enabled: false };
    });
    await one.healthy(1, 300_000);
    await query(one.rw(), "CREATE TABLE kept (id int PRIMARY KEY, v text); INSERT INTO kept SELECT g, md5(g::text) FROM generate_series(1, 50000) g");
    const before = await checksums(one.rw());

    await one.patchSpec({ version: '18.6' });
    // Kill the Job's pod once pg_upgrade itself runs (its log says so): after the stop, before any new start.
    const killed = await waitFor('pg_upgrade running in the upgrade Job', async () => {
      const pod = (await kubectlOk(['get', 'pods', '-n', ns, '-l', `job-name=${SINGLE}-upgrade`, '-o', 'jsonpath={.items[0].metadata.name}']).catch(() => '')).trim();
      const log = pod ? kubelet.containerLogPath(ns, pod, 'upgrade') : undefined;
      if (!pod || !log || !existsSync(log) || !readFileSync(log, 'utf8').includes('running pg_upgrade')) return undefined;
      return (await kubelet.killContainer(ns, pod, 'upgrade')) ? pod : undefined;
    }, { timeoutMs: 240_000, intervalMs: 50 });
    const failed = await waitFor('Upgrading UpgradeFailed, 14 running again', async () => {
      const c = await one.get();
      return upgrading(c)?.reason === 'UpgradeFailed' && c.status?.phase === 'Healthy' ? c : undefined;
    }, { timeoutMs: 180_000, intervalMs: 500 });
    console.log(`[upgrade] killed ${killed}: ${upgrading(failed)!.message}`);
    expect(await versions(one)).toEqual(['14.23']);
    expect(await checksums(one.rw())).toEqual(before);
    await query(one.rw(), 'INSERT INTO kept VALUES (0, $1)', ['written after the failed upgrade']);

    // Tried again in copy mode: the 14 data directory stays whole beside the upgraded one.
    await one.patchSpec({ version: '14.23' });
    await one.patchSpec({ version: '18.6', majorUpgrade: { mode: 'copy' } });
    const done = await waitFor('the upgrade to 18.6 done', async () => {
      const c = await one.get();
      return c.status?.majorUpgrade?.phase === 'Succeeded' && c.status.majorUpgrade.to === '18.6' && c.status.phase === 'Healthy' ? c : undefined;
    }, { timeoutMs: 300_000, intervalMs: 500 });
    console.log(`[upgrade] 14.23 → 18.6: ${done.status!.majorUpgrade!.message}`);
    expect(await versions(one)).toEqual(['18.6']);
    const after = await checksums(one.rw());
    expect(after.kept).not.toBe(before.kept);
    expect((await query<{ n: string }>(one.rw(), 'SELECT count(*)::text AS n FROM kept'))[0]!.n).toBe('50001');
    const report = await waitFor('post-upgrade work ended', async () => (await one.get()).status?.majorUpgrade?.postUpgrade?.match(/^(done|failed).*/)?.[0], { timeoutMs: 120_000, intervalMs: 1000 });
    expect(report).toMatch(/^done/);
    const volume = await dataVolumeDir(`pgdata-${SINGLE}-1-0`);
    expect(existsSync(join(volume, 'pgdata.old-14', 'PG_VERSION'))).toBe(true);
    expect(readFileSync(join(volume, 'pgdata', 'PG_VERSION'), 'utf8').trim()).toBe('18');
  });
});
