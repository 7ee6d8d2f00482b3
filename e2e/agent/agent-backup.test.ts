// WAL archiving and restore-from-backup in the instance agent, with real agents, PostgreSQL 15 and
// an S3 server (s3rver) on loopback. Cluster A archives to its location; a base backup is taken
// from it; instances of cluster B (other secrets) bootstrap with {mode: 'restore'} from A's
// archive: to its end (then archiving to B's own location only), to a time between two commits,
// to a time outside the recoverable window, and to a time the archive never reaches.
// Needs no apiserver (PGPILOT_E2E_KUBECONFIG=<any path> skips the e2e project's control plane:
//   PGPILOT_E2E_KUBECONFIG=/dev/null npx vitest run --project e2e e2e/agent/agent-backup.test.ts).
// Timings are printed, never asserted.
import { createHash } from 'node:crypto';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { chown, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gunzipSync, gzipSync } from 'node:zlib';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClusterSpec } from '../../src/api/cluster.js';
import { archiveKeys, walFileOfKey, type BackupManifest } from '../../src/backup/archive-layout.js';
import { takeBaseBackup } from '../../src/backup/base-backup.js';
import type { ObjectStore } from '../../src/backup/object-store.js';
import { openStore } from '../../src/backup/open-store.js';
import type { ArchiveLocation } from '../../src/backup/store-config.js';
import { REPLICATION_USER } from '../../src/builders/postgres-config.js';
import type { InstanceStatus, RestorePhase } from '../../src/instance/api-types.js';
import { createLogger } from '../../src/runtime/logger.js';
import { S3RVER_ACCESS_KEY, S3RVER_SECRET_KEY, startS3rver, type S3rver } from '../../test/support/s3rver.js';
import { requirePostgresBinaries } from '../../test/support/binaries.js';
import { AgentCluster, type AgentProcess, PG_BIN, pickIps, until, FailureFlag } from './agent-harness.js';

const execFileAsync = promisify(execFile);
// Missing PostgreSQL binaries fail the file with what to install; never a silent skip.
beforeAll(() => requirePostgresBinaries(PG_BIN));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const BUCKET = 'agent-backups';
const A_PATH = 'pgpilot/default/src';
const B_PATH = 'pgpilot/default/dst';
const log = createLogger('error', 'test');

const srcSpec = { version: '15', instances: 1, storage: { size: '1Gi' }, highAvailability: { enabled: false, synchronousCommit: false } } as ClusterSpec;
// Synchronous commit on, as in the product's example: a restored single primary has no standby
// yet, so the agent's own writes (roles) must not wait for one.
const dstSpec = { version: '15', instances: 3, storage: { size: '1Gi' }, highAvailability: { enabled: true, synchronousCommit: true } } as ClusterSpec;

const timings: Record<string, number> = {};
const numbers: Record<string, unknown> = {};

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
/** A process that exists and is not a zombie. */
const running = (pid: number) => {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
};
/** Files the agents (the postgres OS user when the tests run as root) must own. */
async function chownToPostgres(path: string): Promise<void> {
  if (process.getuid?.() !== 0) return;
  const [uid, gid] = await Promise.all(['-u', '-g'].map(async (f) => Number((await execFileAsync('id', [f, 'postgres'])).stdout.trim())));
  await chown(path, uid!, gid!);
}

describe('instance agent: WAL archiving and restore from a backup', () => {
  const src = new AgentCluster('src');
  const dst = new AgentCluster('dst');
  let s3: S3rver;
  let store: ObjectStore;
  let a: AgentProcess;
  let ips: string[];
  let manifest: BackupManifest;
  let between: string; // a time between the commits of rows 5 and 6
  let afterLast: string; // after the last commit, before the end of the archive
  let aListing: string[];
  const flag = new FailureFlag();

  const location = (path: string, prefix: string): string => {
    const store = { ...s3.storeConfig(BUCKET), accessKeyIdEnv: `${prefix}ACCESS_KEY_ID`, secretAccessKeyEnv: `${prefix}SECRET_ACCESS_KEY` };
    return JSON.stringify({ store, path } satisfies ArchiveLocation);
  };
  const credentials = (prefix: string) => ({ [`${prefix}ACCESS_KEY_ID`]: S3RVER_ACCESS_KEY, [`${prefix}SECRET_ACCESS_KEY`]: S3RVER_SECRET_KEY });
  const backupEnv = (path: string) => ({ PGPILOT_BACKUP_LOCATION: location(path, 'PGPILOT_BACKUP_S3_'), ...credentials('PGPILOT_BACKUP_S3_') });
  const restoreEnv = (target?: object) => ({
    PGPILOT_RESTORE_SOURCE: location(A_PATH, 'PGPILOT_RESTORE_S3_'),
    ...credentials('PGPILOT_RESTORE_S3_'),
    ...(target ? { PGPILOT_RESTORE_TARGET: JSON.stringify(target) } : {}),
  });
  const listing = async (prefix: string) => (await store.list(prefix)).map((o) => `${o.key} ${o.size} ${o.lastModified.toISOString()}`);

  const { track } = flag;

  const agentRunning = (x: AgentProcess) =>
    until(`${x.name} running`, async () => {
      const s = await x.status();
      if (s.phase === 'Failed') throw new Error(`${x.name} failed: ${s.lastError}`);
      return s.phase === 'Running' && s.running ? s : undefined;
    }, 120_000);

  /** POST bootstrap {mode: restore}; follows the restore phases until Running or Failed. */
  async function restore(x: AgentProcess): Promise<{ status: InstanceStatus; phases: RestorePhase[]; ms: number }> {
    await until(`${x.name} agent up`, async () => (await x.api('GET', '/healthz', undefined, null)).status === 200, 30_000);
    const t0 = performance.now();
    const r = await x.api('POST', '/v1/bootstrap', { mode: 'restore' });
    expect(r.status, JSON.stringify(r.body)).toBe(202);
    const phases: RestorePhase[] = [];
    const status = await until(`${x.name} restored or failed`, async () => {
      const s = await x.status();
      const p = s.restore?.phase;
      if (p && phases.at(-1) !== p) phases.push(p);
      return s.phase === 'Failed' || (s.phase === 'Running' && s.running) ? s : undefined;
    }, 180_000, 20);
    return { status, phases, ms: Math.round(performance.now() - t0) };
  }

  async function archived(path: string, file: string, timeoutMs = 60_000): Promise<void> {
    await until(`${file} in ${path}`, async () => (await store.head(archiveKeys.wal(path, file))) !== null, timeoutMs);
  }

  beforeAll(async () => {
    s3 = await startS3rver({ buckets: [BUCKET] });
    store = openStore(s3.storeConfig(BUCKET), s3.env);
    await src.setup(srcSpec);
    await dst.setup(dstSpec);
    ips = await pickIps(7);
    // No autovacuum on the source: its commits would make the archive's last commit time vary.
    a = await src.add('a', ips[0]!, { archiving: { timeoutSeconds: 60 }, conf: "autovacuum = 'off'", env: backupEnv(A_PATH) });
    await until('a agent up', async () => (await a.api('GET', '/healthz', undefined, null)).status === 200, 30_000);
  });

  afterAll(async () => {
    console.log(`[agent-backup] timings (ms): ${JSON.stringify(timings)}`);
    console.log(`[agent-backup] numbers: ${JSON.stringify(numbers)}`);
    const keep = flag.keep();
    if (keep) console.log(`[agent-backup] logs kept in ${src.root}/<instance>/agent.log and ${dst.root}/<instance>/agent.log`);
    await src.cleanup(keep);
    await dst.cleanup(keep);
    await s3?.stop();
  });

  it('archives WAL to its location byte for byte and reports it in status', track(async () => {
    expect((await a.api('POST', '/v1/bootstrap', { mode: 'initdb' })).status).toBe(202);
    await agentRunning(a);
    // pg_wal's size is cached for a few seconds: the first reading may be from initdb's start.
    const s0 = await until('pg_wal measured', async () => {
      const st = await a.status();
      return st.wal && st.wal.bytes > 0 ? st : undefined;
    }, 10_000);
    expect(s0.archiving).toMatchObject({ lastFailure: null });
    expect(s0.wal!.bytes).toBeGreaterThanOrEqual(16 * 2 ** 20);
    expect(s0.wal!.volumeUsedPercent).toBeGreaterThan(0);
    expect(s0.wal!.volumeUsedPercent).toBeLessThanOrEqual(100);
    expect(s0.restore).toBeNull();

    await execFileAsync(join(PG_BIN, 'pgbench'), ['-i', '-s', '2', '-q', '-h', a.ip, '-U', 'postgres', 'app'], { env: { ...process.env, PGPASSWORD: src.secrets.superuser } });
    await a.sql('CREATE TABLE marks (id int PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp())', [], 'app');
    await a.sql('INSERT INTO marks (id) SELECT generate_series(1, 3)', [], 'app');
    const [{ f }] = (await a.sql<{ f: string }>('SELECT pg_walfile_name(pg_switch_wal()) AS f')) as [{ f: string }];
    const raw = await readFile(join(a.pgdata, 'pg_wal', f)); // read before a checkpoint can recycle it
    await timed('archiveSegment', () => archived(A_PATH, f));
    const object = await store.getBuffer(archiveKeys.wal(A_PATH, f));
    expect(sha256(gunzipSync(object))).toBe(sha256(raw));
    const s = await until('status shows the archived segment', async () => {
      const st = await a.status();
      return st.archiving?.lastArchivedWal && st.archiving.lastArchivedWal >= f ? st : undefined;
    });
    expect(s.archiving).toMatchObject({ lastFailedWal: null, lastFailure: null, inFlight: 0 });
    expect(s.archiving!.archivedCount).toBeGreaterThanOrEqual(1);
    expect(s.archiving!.lastArchivedTime).toMatch(/^\d{4}-\d{2}-\d{2}T/);
    // The location belongs to A's database now.
    const identity = JSON.parse((await store.getBuffer(archiveKeys.identity(A_PATH))).toString()) as { systemIdentifier: string; cluster: string };
    expect(identity).toMatchObject({ systemIdentifier: s.systemIdentifier, cluster: 'src' });
  }));

  it('takes a base backup, then commits rows around a known time', track(async () => {
    manifest = await timed('baseBackup', () =>
      takeBaseBackup({
        store, path: A_PATH, pgBin: PG_BIN, host: a.ip, port: 5432,
        replication: { username: REPLICATION_USER, password: src.secrets.replication },
        sql: { username: 'postgres', password: src.secrets.superuser },
        cluster: 'src', namespace: 'default', backupName: 'src-manual', instance: 'a', log,
      }),
    );
    numbers.backup = { dataMiB: +(manifest.dataBytes / 2 ** 20).toFixed(1), storedMiB: +(manifest.storedBytes / 2 ** 20).toFixed(1) };
    await a.sql('INSERT INTO marks (id) VALUES (4), (5)', [], 'app');
    await sleep(1100);
    between = (await a.sql<{ t: Date }>('SELECT clock_timestamp() AS t'))[0]!.t.toISOString();
    await sleep(1100);
    await a.sql('INSERT INTO marks (id) VALUES (6)', [], 'app');
    await sleep(1100);
    afterLast = (await a.sql<{ t: Date }>('SELECT clock_timestamp() AS t'))[0]!.t.toISOString();
    await sleep(1100); // the store's times may be whole seconds: the archive's end stays after afterLast
    const [{ f }] = (await a.sql<{ f: string }>('SELECT pg_walfile_name(pg_switch_wal()) AS f')) as [{ f: string }];
    await archived(A_PATH, f);
    aListing = await listing(`${A_PATH}/`);
    expect(aListing.some((k) => k.includes('/backup.json '))).toBe(true);
  }));

  it('restores to the end of the archive: a primary with every row, this cluster\'s passwords, archiving only to its own location', track(async () => {
    const b1 = await dst.add('b1', ips[1]!, { walVolume: true, archiving: { timeoutSeconds: 60 }, env: { ...backupEnv(B_PATH), ...restoreEnv() } });
    const { status, phases, ms } = await restore(b1);
    timings.restoreToEnd = ms;
    expect(status.phase, status.lastError ?? '').toBe('Running');
    expect(phases).toEqual(['downloading', 'recovering', 'finishing', 'done']);
    expect(status).toMatchObject({ role: 'primary', running: true, timeline: 2, lastError: null });
    expect(status.restore).toMatchObject({ phase: 'done', backupId: manifest.id, bytes: manifest.storedBytes, error: null });
    expect(status.restore!.fetchedSegments).toBeGreaterThan(0);
    numbers.restoreToEnd = { ...status.restore, ms };
    numbers.restoreLog = b1.logLines.filter((l) => /restore: (base backup in place|recovery ended)/.test(l)).map((l) => {
      const j = JSON.parse(l) as Record<string, unknown>;
      return { msg: j.msg, seconds: j.seconds, walRequested: j.walRequested, fromPrefetch: j.fromPrefetch, avgFetchMs: j.avgFetchMs };
    });
    expect((await b1.api('GET', '/readyz', undefined, null)).status).toBe(200);

    // Every row, through TCP with B's superuser secret; A's password does not open B.
    expect((await b1.sql<{ id: number }>('SELECT id FROM marks ORDER BY id', [], 'app')).map((r) => r.id)).toEqual([1, 2, 3, 4, 5, 6]);
    expect((await b1.sql<{ n: number }>('SELECT count(*)::int AS n FROM pgbench_accounts', [], 'app'))[0]!.n).toBe(200_000);
    const foreign = new pg.Client({ host: b1.ip, port: 5432, user: 'postgres', password: src.secrets.superuser, database: 'postgres', connectionTimeoutMillis: 2000 });
    foreign.on('error', () => undefined);
    await expect(foreign.connect()).rejects.toThrow(/password authentication failed/);
    await foreign.end().catch(() => undefined);
    // The application owner and the replication role have B's passwords too.
    for (const [user, password] of [['app', dst.secrets.app], [REPLICATION_USER, dst.secrets.replication]] as const) {
      const c = new pg.Client({ host: b1.ip, port: 5432, user, password, database: 'app', connectionTimeoutMillis: 2000 });
      await c.connect();
      await c.end();
    }
    // Nothing of the restore is left: recovery settings, the temporary hba, the spool, the stage.
    const autoConf = await readFile(join(b1.pgdata, 'postgresql.auto.conf'), 'utf8');
    expect(autoConf).not.toMatch(/restore_command|recovery_target/);
    expect((await readdir(join(b1.dir, 'data', '.pgpilot'))).sort()).toEqual(['archived', 'replication.pgpass']);
    expect(status.wal!.bytes).toBeGreaterThan(0);

    // The new timeline goes to B's archive, never into A's.
    await b1.sql("SET synchronous_commit = local; INSERT INTO marks (id) VALUES (7)", [], 'app');
    const [{ f }] = (await b1.sql<{ f: string }>('SELECT pg_walfile_name(pg_switch_wal()) AS f')) as [{ f: string }];
    expect(f.startsWith('00000002')).toBe(true);
    await archived(B_PATH, f);
    await archived(B_PATH, '00000002.history');
    const bIdentity = JSON.parse((await store.getBuffer(archiveKeys.identity(B_PATH))).toString()) as { cluster: string };
    expect(bIdentity.cluster).toBe('dst');
    expect((await b1.status()).archiving).toMatchObject({ lastFailure: null });
    expect(await listing(`${A_PATH}/`)).toEqual(aListing);
    expect((await store.list(`${A_PATH}/`)).some((o) => walFileOfKey(o.key)?.startsWith('00000002'))).toBe(false);
    expect((await store.list(`${B_PATH}/wal/`)).every((o) => walFileOfKey(o.key)!.startsWith('00000002') || walFileOfKey(o.key)!.endsWith('.partial'))).toBe(true);
  }));

  it('restores to a time between two commits: exactly the earlier rows', track(async () => {
    const b2 = await dst.add('b2', ips[2]!, { env: restoreEnv({ time: between }) });
    const { status, ms } = await restore(b2);
    timings.restoreToTime = ms;
    expect(status.phase, status.lastError ?? '').toBe('Running');
    expect((await b2.sql<{ id: number }>('SELECT id FROM marks ORDER BY id', [], 'app')).map((r) => r.id)).toEqual([1, 2, 3, 4, 5]);
    // No backup location: archiving is off.
    expect(status.archiving).toBeNull();
    expect(await listing(`${A_PATH}/`)).toEqual(aListing);
  }));

  it('resumes interrupted restores: discards a partial one, finishes the role step of a promoted one', track(async () => {
    // Killed (agent and postgres) while replaying WAL: the next agent discards the data directory.
    const b6 = await dst.add('b6', ips[6]!, { env: restoreEnv() });
    await until('b6 agent up', async () => (await b6.api('GET', '/healthz', undefined, null)).status === 200, 30_000);
    expect((await b6.api('POST', '/v1/bootstrap', { mode: 'restore' })).status).toBe(202);
    await until('b6 recovering', async () => (await b6.status()).restore?.phase === 'recovering' && b6.postmasterPid() !== null, 30_000, 5);
    const pm = b6.postmasterPid();
    b6.killAll();
    await b6.exitCode;
    // The postmaster removes its pid file as it exits (then it may stay a zombie for a while).
    await until('b6 postgres gone', async () => !existsSync(join(b6.pgdata, 'postmaster.pid')) && (pm === null || !running(pm)), 10_000);
    expect(await readFile(join(b6.dir, 'data', '.pgpilot', 'bootstrap-pending'), 'utf8')).toBe('restore');
    b6.start();
    await until('b6 awaits bootstrap again', async () => (await b6.status()).phase === 'AwaitingBootstrap', 30_000);
    expect(await readdir(b6.pgdata)).toEqual([]);
    expect(existsSync(join(b6.dir, 'data', '.pgpilot', 'bootstrap-pending'))).toBe(false);
    const { status } = await restore(b6);
    expect(status.phase, status.lastError ?? '').toBe('Running');
    expect((await b6.sql<{ id: number }>('SELECT id FROM marks ORDER BY id', [], 'app')).map((r) => r.id)).toEqual([1, 2, 3, 4, 5, 6]);

    // Stopped after the promotion, before the role step (simulated: the passwords are wrong
    // again and the stage says restore-roles): the next agent sets them and starts normally.
    await b6.sql("SET synchronous_commit = local; ALTER ROLE postgres PASSWORD 'not-the-secret'; ALTER ROLE app PASSWORD 'not-the-secret'");
    b6.child!.kill('SIGTERM');
    expect(await b6.exitCode).toBe(0);
    await writeFile(join(b6.dir, 'data', '.pgpilot', 'bootstrap-pending'), 'restore-roles');
    await chownToPostgres(join(b6.dir, 'data', '.pgpilot', 'bootstrap-pending'));
    b6.start();
    const resumed = await agentRunning(b6);
    expect(resumed.restore).toMatchObject({ phase: 'done' });
    expect((await b6.sql<{ id: number }>('SELECT id FROM marks ORDER BY id', [], 'app')).map((r) => r.id)).toEqual([1, 2, 3, 4, 5, 6]);
    const app = new pg.Client({ host: b6.ip, port: 5432, user: 'app', password: dst.secrets.app, database: 'app', connectionTimeoutMillis: 2000 });
    await app.connect();
    await app.end();
    expect(b6.logLines.some((l) => l.includes('a restore was interrupted after recovery; finishing it'))).toBe(true);
  }));

  it('fails a target outside the recoverable window, stating the window, and leaves no data', track(async () => {
    const b3 = await dst.add('b3', ips[3]!, { env: restoreEnv({ time: '2001-01-01T00:00:00Z' }) });
    const { status } = await restore(b3);
    expect(status.phase).toBe('Failed');
    expect(status.lastError).toMatch(/window/);
    expect(status.lastError).toContain(`s3://${BUCKET}/${A_PATH}`);
    expect(status.restore).toMatchObject({ phase: 'failed', backupId: null });
    expect(status.restore!.error).toMatch(/outside the recoverable window/);
    expect(await readdir(b3.pgdata).catch(() => [])).toEqual([]);
    expect((await b3.api('GET', '/readyz', undefined, null)).status).toBe(503);
  }));

  it('fails a target the archive never reaches, saying where the archive ends', track(async () => {
    const b4 = await dst.add('b4', ips[4]!, { env: restoreEnv({ time: afterLast }) });
    const { status } = await restore(b4);
    expect(status.phase).toBe('Failed');
    expect(status.lastError).toMatch(/recovery ended before the target time .* was reached: the last transaction in the archive was committed at .*; the archive's WAL ends at .*; recoverable window/);
    expect(status.restore).toMatchObject({ phase: 'failed', backupId: manifest.id });
    expect(await readdir(b4.pgdata).catch(() => [])).toEqual([]);
    expect(b4.postmasterPid()).toBeNull();
    // Nothing left behind: a new bootstrap is accepted (and fails the same way).
    const again = await restore(b4);
    expect(again.status.phase).toBe('Failed');
    expect(again.status.lastError).toBe(status.lastError);
  }));

  it('fails on a corrupt base backup or WAL object, naming it, and leaves no data', track(async () => {
    const b5 = await dst.add('b5', ips[5]!, { env: restoreEnv() });
    const dataKey = archiveKeys.baseData(A_PATH, manifest.id);
    const dataObject = await store.getBuffer(dataKey);
    await store.put(dataKey, gzipSync(Buffer.from('not the backup')));
    try {
      const { status } = await restore(b5);
      expect(status.phase).toBe('Failed');
      expect(status.lastError).toContain(`backup object ${dataKey} in s3://${BUCKET} is corrupt: sha256`);
      expect(status.restore).toMatchObject({ phase: 'failed', backupId: manifest.id });
    } finally {
      await store.put(dataKey, dataObject);
    }
    expect(await readdir(b5.pgdata).catch(() => [])).toEqual([]);

    // A WAL segment recovery needs, altered after it was archived (its sha256 metadata kept).
    const walKey = archiveKeys.wal(A_PATH, manifest.stopWal);
    const head = (await store.head(walKey))!;
    const walObject = await store.getBuffer(walKey);
    const tampered = gunzipSync(walObject);
    tampered.writeUInt8(tampered.readUInt8(tampered.length - 1000) ^ 0xff, tampered.length - 1000);
    await store.put(walKey, gzipSync(tampered), { metadata: head.metadata });
    try {
      const { status } = await restore(b5);
      expect(status.phase).toBe('Failed');
      expect(status.lastError).toContain(`recovery stopped: WAL ${manifest.stopWal}: object s3://${BUCKET}/${walKey} is corrupt: sha256 expected ${head.metadata.sha256}, actual `);
      expect(status.restore).toMatchObject({ phase: 'failed', backupId: manifest.id });
    } finally {
      await store.put(walKey, walObject, { metadata: head.metadata });
    }
    expect(await readdir(b5.pgdata).catch(() => [])).toEqual([]);
    expect(b5.postmasterPid()).toBeNull();
  }));

  it('stops archivers and postgres cleanly on SIGTERM', track(async () => {
    for (const x of [...src.agents, ...dst.agents]) x.child!.kill('SIGTERM');
    const codes = await Promise.all([...src.agents, ...dst.agents].map((x) => x.exitCode));
    expect(codes.every((c) => c === 0)).toBe(true);
    const all = [...src.agents, ...dst.agents].flatMap((x) => x.logLines).join('\n');
    for (const secret of [...Object.values(src.secrets), ...Object.values(dst.secrets)]) expect(all.includes(secret)).toBe(false);
  }));

  async function timed<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const t0 = performance.now();
    try {
      return await fn();
    } finally {
      timings[name] = Math.round(performance.now() - t0);
    }
  }
});
