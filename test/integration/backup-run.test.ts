// `pgpilot backup`'s run (runBackup) against a real PostgreSQL 15 primary and streaming replica and
// a real S3 server (s3rver). Only the Kubernetes API is a fake (FakeKube: PostgreSQLBackups,
// merge patches of their status, the cluster, pods and events in memory); pods get made-up IPs that
// endpointOf maps to the local servers' ports.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { V1Pod, V1PodSpec } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PostgreSQLBackup } from '../../src/api/backup.js';
import type { PostgreSQLCluster } from '../../src/api/cluster.js';
import { ANNOTATIONS, LABELS } from '../../src/api/constants.js';
import { archiveKeys } from '../../src/backup/archive-layout.js';
import { takeBaseBackup } from '../../src/backup/base-backup.js';
import { runBackup, type BackupKube, type BackupRunDeps, type BackupRunSettings, type BackupStatusPatch } from '../../src/backup-job/backup-run.js';
import { listBackups, parseManifest } from '../../src/backup/catalog.js';
import { openStore } from '../../src/backup/open-store.js';
import type { ArchiveLocation } from '../../src/backup/store-config.js';
import type { Credentials } from '../../src/postgres/files.js';
import type { EventTarget, EventType } from '../../src/runtime/events.js';
import { createLogger, type LogLevel } from '../../src/runtime/logger.js';
import { startBackupRig, TestPostgres, type BackupRig } from './pg-fixture.js';
import { ensureDir, PG_BIN } from './wal-postgres.js';
import { jsonClone } from '../support/cluster-fixtures.js';

const log = createLogger((process.env.PGPILOT_TEST_LOG_LEVEL as LogLevel | undefined) ?? 'error', 'test');
const NS = 'test';
const CLUSTER = 'br-source';
const PATH = `pgpilot/${NS}/${CLUSTER}`;
const BUCKET = 'backup-run';
const PRIMARY_IP = '10.0.0.1';
const REPLICA_IP = '10.0.0.2';

/** RFC 7386 JSON merge patch. */
function mergePatch(target: unknown, patch: unknown): unknown {
  if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) return patch;
  const out: Record<string, unknown> = typeof target === 'object' && target !== null && !Array.isArray(target) ? { ...(target as Record<string, unknown>) } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

interface RecordedEvent {
  kind: string;
  name: string;
  type: EventType;
  reason: string;
  message: string;
}

/** The Kubernetes API of one namespace, in memory. */
class FakeKube implements BackupKube {
  readonly backups = new Map<string, PostgreSQLBackup>();
  readonly events: RecordedEvent[] = [];
  readonly patches: { name: string; status: BackupStatusPatch }[] = [];
  cluster: PostgreSQLCluster | null = null;
  pods: V1Pod[] = [];
  jobPodSpec: V1PodSpec | undefined;
  failListBackups = false;
  private uid = 0;

  async getCluster(name: string) {
    return this.cluster?.metadata.name === name ? jsonClone(this.cluster) : null;
  }
  async listInstancePods(cluster: string) {
    return jsonClone(this.pods.filter((p) => p.metadata?.labels?.[LABELS.cluster] === cluster));
  }
  async listJobPods(job: string) {
    return this.jobPodSpec ? [{ metadata: { name: `${job}-abcde`, labels: { 'job-name': job } }, spec: jsonClone(this.jobPodSpec) }] : [];
  }
  async getBackup(name: string) {
    const b = this.backups.get(name);
    return b ? jsonClone(b) : null;
  }
  async createBackup(body: PostgreSQLBackup) {
    if (this.backups.has(body.metadata.name!)) return null;
    const b = jsonClone({ ...body, metadata: { ...body.metadata, uid: `uid-${++this.uid}`, creationTimestamp: new Date() } });
    this.backups.set(body.metadata.name!, b);
    return jsonClone(b);
  }
  async patchBackupStatus(name: string, status: BackupStatusPatch) {
    const b = this.backups.get(name);
    if (!b) throw new Error(`postgresqlbackups.postgres.pgpilot.io "${name}" not found (HTTP 404)`);
    this.patches.push({ name, status: jsonClone(status) });
    b.status = mergePatch(b.status ?? {}, status) as PostgreSQLBackup['status'];
  }
  async listBackups() {
    if (this.failListBackups) throw new Error('postgresqlbackups.postgres.pgpilot.io is forbidden (HTTP 403)');
    return jsonClone([...this.backups.values()]);
  }
  async deleteBackup(name: string, uid: string | undefined) {
    if (this.backups.get(name)?.metadata.uid === uid) this.backups.delete(name);
  }
  async recordEvent(target: EventTarget, type: EventType, reason: string, message: string) {
    this.events.push({ kind: target.kind, name: target.metadata.name!, type, reason, message });
  }

  /** An on-demand PostgreSQLBackup, as a person creates it. */
  addBackup(name: string, cluster = CLUSTER, spec: Partial<PostgreSQLBackup['spec']> = {}): void {
    this.backups.set(name, { apiVersion: 'postgres.pgpilot.io/v1', kind: 'PostgreSQLBackup', metadata: { name, namespace: NS, uid: `uid-${++this.uid}` }, spec: { cluster: { name: cluster }, ...spec } });
  }
  eventsOf(name: string) {
    return this.events.filter((e) => e.name === name);
  }
}

function instancePodObject(instance: string, ip: string, role: 'primary' | 'replica', ready = true): V1Pod {
  return {
    metadata: { name: `${instance}-0`, namespace: NS, labels: { [LABELS.cluster]: CLUSTER, [LABELS.component]: 'instance', [LABELS.instance]: instance, [LABELS.role]: role } },
    status: { phase: 'Running', podIP: ip, conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }] },
  };
}

async function writeSecrets(dir: string, secrets: Record<'superuser' | 'replication', Credentials>): Promise<void> {
  for (const [kind, c] of Object.entries(secrets)) {
    await mkdir(path.join(dir, kind), { recursive: true });
    await writeFile(path.join(dir, kind, 'username'), c.username);
    await writeFile(path.join(dir, kind, 'password'), `${c.password}\n`);
  }
}

describe('pgpilot backup: runBackup with PostgreSQL 15, a replica and S3', () => {
  let rig: BackupRig;
  let replica: TestPostgres;
  let kube: FakeKube;
  let location: ArchiveLocation;
  let secretsDir: string;
  const ports = new Map<string, number>();

  const settings = (extra: Partial<BackupRunSettings> = {}): BackupRunSettings => ({
    namespace: NS,
    cluster: CLUSTER,
    backupName: undefined,
    job: undefined,
    secretsDir,
    level: 1,
    retention: { days: 7 },
    location,
    pgBin: PG_BIN,
    ...extra,
  });
  const run = (extra: Partial<BackupRunSettings> = {}, deps: Partial<BackupRunDeps> = {}) =>
    runBackup({
      kube,
      store: rig.store,
      settings: settings(extra),
      log,
      endpointOf: (ip) => ({ host: '127.0.0.1', port: ports.get(ip)! }),
      progressIntervalMs: 100,
      baseBackupOptions: { walTimeoutMs: 60_000, pollMs: 100 },
      ...deps,
    });

  beforeAll(async () => {
    rig = await startBackupRig(BUCKET, PATH, log);
    const source = rig.source.server;
    const replicaDir = path.join(rig.dir, 'replica');
    await ensureDir(replicaDir);
    await source.tool('pg_basebackup', ['-D', path.join(replicaDir, 'pgdata'), '-R', '-X', 'stream', '-c', 'fast']);
    replica = await TestPostgres.open(path.join(replicaDir, 'pgdata'), source, { hot_standby: 'on' });
    await replica.start();
    // WAL in the primary's current segment, replayed by the replica: the replica's backup then ends
    // in a segment only a WAL switch on the primary completes.
    await source.query('create table marks (id int)');
    const [{ lsn }] = (await source.query<{ lsn: string }>('select pg_current_wal_lsn()::text as lsn')) as [{ lsn: string }];
    for (let i = 0; ; i++) {
      const [{ ok }] = (await replica.query<{ ok: boolean }>('select pg_last_wal_replay_lsn() >= $1::pg_lsn as ok', [lsn])) as [{ ok: boolean }];
      if (ok) break;
      if (i > 300) throw new Error('the replica did not replay the primary\'s WAL within 30 s');
      await sleep(100);
    }
    ports.set(PRIMARY_IP, source.port);
    ports.set(REPLICA_IP, replica.port);
    secretsDir = path.join(rig.dir, 'secrets');
    await writeSecrets(secretsDir, { superuser: source.superuser, replication: source.replication });
    location = { store: rig.s3.storeConfig(BUCKET), path: PATH };

    kube = new FakeKube();
    kube.cluster = {
      apiVersion: 'postgres.pgpilot.io/v1',
      kind: 'PostgreSQLCluster',
      metadata: { name: CLUSTER, namespace: NS, uid: 'cluster-uid' },
      spec: {
        instances: 2,
        storage: { size: '1Gi' },
        backup: { enabled: true, s3: { endpoint: rig.s3.endpoint, bucket: BUCKET, forcePathStyle: true, credentials: { secretName: 'br-s3' } } },
      },
      status: { currentPrimary: `${CLUSTER}-1` },
    } as PostgreSQLCluster;
    kube.pods = [instancePodObject(`${CLUSTER}-1`, PRIMARY_IP, 'primary'), instancePodObject(`${CLUSTER}-2`, REPLICA_IP, 'replica')];
  });

  afterAll(async () => {
    await replica?.stop('immediate');
    await rig?.stop();
  });

  let scheduledId: string;

  it('a scheduled run creates its PostgreSQLBackup, backs up the replica (WAL switch on the primary) and records it completed', async () => {
    const job = `${CLUSTER}-backup-29012345`;
    kube.jobPodSpec = {
      containers: [{ name: 'backup', env: [
        { name: location.store.kind === 's3' && 'accessKeyIdEnv' in location.store ? location.store.accessKeyIdEnv : '', valueFrom: { secretKeyRef: { name: 'br-s3', key: 'ACCESS_KEY_ID' } } },
        { name: location.store.kind === 's3' && 'secretAccessKeyEnv' in location.store ? location.store.secretAccessKeyEnv : '', valueFrom: { secretKeyRef: { name: 'br-s3', key: 'ACCESS_SECRET_KEY' } } },
      ] }],
    };
    let switched = 0;
    const result = await run({ job }, {
      takeBaseBackup: (o) => {
        expect(o.switchWal).toBeTypeOf('function');
        return takeBaseBackup({ ...o, switchWal: async () => {
          switched++;
          await o.switchWal!();
        } });
      },
    });
    expect(result).toMatchObject({ outcome: 'completed', exitCode: 0, backupName: job });
    expect(switched).toBe(1);
    const b = kube.backups.get(job)!;
    expect(b.metadata.labels).toMatchObject({ [LABELS.cluster]: CLUSTER, [LABELS.scheduled]: 'true', [LABELS.managedBy]: 'pgpilot', [LABELS.component]: 'backup' });
    expect(b.metadata.annotations).toEqual({ [ANNOTATIONS.backupJob]: job });
    expect(b.metadata.ownerReferences).toBeUndefined();
    expect(b.spec).toEqual({ cluster: { name: CLUSTER } });

    // status is the manifest in the store.
    const st = b.status!;
    const key = archiveKeys.baseManifest(PATH, st.backupId!);
    const m = parseManifest((await rig.store.getBuffer(key)).toString('utf8'), key);
    scheduledId = m.id;
    expect(result.backupId).toBe(m.id);
    expect(m).toMatchObject({ cluster: CLUSTER, namespace: NS, backupName: job, instance: `${CLUSTER}-2`, fromReplica: true });
    expect(st).toEqual({
      phase: 'completed',
      startedAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      attempts: 1,
      job,
      destination: {
        s3: { endpoint: rig.s3.endpoint, bucket: BUCKET, region: 'us-east-1', forcePathStyle: true, checksums: 'WHEN_REQUIRED', credentials: { secretName: 'br-s3', accessKeyIdKey: 'ACCESS_KEY_ID', secretAccessKeyKey: 'ACCESS_SECRET_KEY' } },
        path: PATH,
      },
      backupId: m.id,
      instance: `${CLUSTER}-2`,
      fromReplica: true,
      stoppedAt: m.stopTime,
      durationSeconds: expect.any(Number),
      timeline: m.timeline,
      startLsn: m.startLsn,
      stopLsn: m.stopLsn,
      startWal: m.startWal,
      stopWal: m.stopWal,
      dataBytes: m.dataBytes,
      storedBytes: m.storedBytes,
      dataSha256: m.dataSha256,
      progressBytes: m.dataBytes,
    });
    expect(st.durationSeconds).toBeGreaterThan(0);
    expect(await rig.store.head(archiveKeys.wal(PATH, m.stopWal))).not.toBeNull();

    // running first, progress while streaming, completed last.
    const mine = kube.patches.filter((p) => p.name === job).map((p) => p.status);
    expect(mine[0]).toMatchObject({ phase: 'running', attempts: 1, instance: `${CLUSTER}-2`, fromReplica: true, progressBytes: 0, error: null });
    expect(mine.at(-1)!.phase).toBe('completed');
    const progress = mine.filter((p) => p.phase === undefined).map((p) => p.progressBytes!);
    expect(progress.length).toBeGreaterThan(0);
    expect(progress.every((n) => n > 0 && n <= m.dataBytes)).toBe(true);

    const events = kube.events.filter((e) => e.reason === 'BackupCompleted');
    expect(events.map((e) => `${e.kind}/${e.name}`).sort()).toEqual([`PostgreSQLBackup/${job}`, `PostgreSQLCluster/${CLUSTER}`]);
    expect(events[0]!.message).toMatch(new RegExp(`^Base backup ${m.id} of ${CLUSTER}-2: \\d+\\.\\d MiB in \\d+(\\.\\d)? s$`));
  });

  it('a retried pod of the same Job finds the backup completed and does nothing', async () => {
    const job = `${CLUSTER}-backup-29012345`;
    const patches = kube.patches.length;
    const before = (await listBackups(rig.store, PATH)).backups.length;
    expect(await run({ job })).toMatchObject({ outcome: 'already-completed', exitCode: 0, backupId: scheduledId });
    expect(kube.patches.length).toBe(patches);
    expect((await listBackups(rig.store, PATH)).backups.length).toBe(before);
  });

  it('--backup naming an absent PostgreSQLBackup or one of another cluster is a usage error (exit 2)', async () => {
    expect(await run({ backupName: 'nope' })).toMatchObject({ outcome: 'invalid', exitCode: 2, error: `PostgreSQLBackup ${NS}/nope does not exist (--backup nope)` });
    kube.addBackup('foreign', 'other-db');
    expect(await run({ backupName: 'foreign' })).toMatchObject({ outcome: 'invalid', exitCode: 2, error: expect.stringContaining('is a backup of cluster other-db, not of br-source') });
    expect(kube.backups.get('foreign')!.status).toBeUndefined();
  });

  it('wrong replication credentials: failed, naming the instance and the Secret, Warning events; each attempt counts', async () => {
    await sleep(1100); // backup ids are per second
    kube.addBackup('bad-creds');
    const badSecrets = path.join(rig.dir, 'bad-secrets');
    await writeSecrets(badSecrets, { superuser: rig.source.server.superuser, replication: { username: rig.source.server.replication.username, password: 'wrong' } });
    const first = await run({ backupName: 'bad-creds', secretsDir: badSecrets });
    expect(first).toMatchObject({ outcome: 'failed', exitCode: 1 });
    const st = kube.backups.get('bad-creds')!.status!;
    expect(st.phase).toBe('failed');
    expect(st.error).toMatch(new RegExp(`^base backup of instance ${CLUSTER}-2 \\(replica, 127\\.0\\.0\\.1:\\d+\\) failed: .*password authentication failed for user "replicator"`));
    expect(st.error).toContain("check the cluster's replication Secret");
    expect(st).toMatchObject({ attempts: 1, instance: `${CLUSTER}-2` });
    expect(st.backupId).toBeUndefined();
    expect(kube.eventsOf('bad-creds')).toEqual([{ kind: 'PostgreSQLBackup', name: 'bad-creds', type: 'Warning', reason: 'BackupFailed', message: expect.stringContaining('Base backup bad-creds failed: base backup of instance') }]);
    expect(kube.events.some((e) => e.kind === 'PostgreSQLCluster' && e.reason === 'BackupFailed')).toBe(true);
    // The Job's retry: running again, then failed again, attempts 2.
    await run({ backupName: 'bad-creds', secretsDir: badSecrets });
    expect(kube.backups.get('bad-creds')!.status).toMatchObject({ phase: 'failed', attempts: 2 });
  });

  it('a missing bucket fails before pg_basebackup starts, with the store\'s sentence', async () => {
    kube.addBackup('no-bucket');
    const missing: ArchiveLocation = { store: rig.s3.storeConfig('no-such-bucket'), path: PATH };
    const r = await run({ backupName: 'no-bucket', location: missing }, { store: openStore(missing.store, rig.s3.env) });
    expect(r.exitCode).toBe(1);
    expect(kube.backups.get('no-bucket')!.status!.error).toBe(
      `backup store s3://no-such-bucket/${PATH} is not usable: bucket no-such-bucket does not exist at ${rig.s3.endpoint} (NoSuchBucket)`,
    );
    expect(kube.backups.get('no-bucket')!.status!.destination!.s3!.bucket).toBe('no-such-bucket');
  });

  it('an unreachable store names its endpoint', async () => {
    kube.addBackup('no-endpoint');
    const cfg = { ...rig.s3.storeConfig(BUCKET), endpoint: 'http://127.0.0.1:9' };
    const r = await run({ backupName: 'no-endpoint', location: { store: cfg, path: PATH } }, { store: openStore(cfg, rig.s3.env) });
    expect(r.exitCode).toBe(1);
    expect(kube.backups.get('no-endpoint')!.status!.error).toMatch(/is not usable: cannot reach the object store at http:\/\/127\.0\.0\.1:9 \(ECONNREFUSED\)/);
  });

  it('no ready instance: failed with the instances and their state', async () => {
    kube.addBackup('nobody-ready');
    const saved = kube.pods;
    kube.pods = [instancePodObject(`${CLUSTER}-1`, PRIMARY_IP, 'primary', false), instancePodObject(`${CLUSTER}-2`, REPLICA_IP, 'replica', false)];
    try {
      expect((await run({ backupName: 'nobody-ready' })).exitCode).toBe(1);
    } finally {
      kube.pods = saved;
    }
    expect(kube.backups.get('nobody-ready')!.status).toMatchObject({
      phase: 'failed',
      attempts: 1,
      error: `no instance to take the backup from: target prefer-standby needs a ready replica or the primary ${CLUSTER}-1, ready; instances: ${CLUSTER}-1 (primary, Running, not ready); ${CLUSTER}-2 (replica, Running, not ready)`,
    });
  });

  it('a stop request (SIGTERM) cancels pg_basebackup and the upload and records "interrupted"', async () => {
    await sleep(1100); // backup ids are per second
    kube.addBackup('stopped');
    const before = (await rig.store.list(archiveKeys.basePrefix(PATH))).map((o) => o.key);
    const ac = new AbortController();
    const r = await run({ backupName: 'stopped' }, { signal: ac.signal, progressIntervalMs: 0, kube: withProgressHook(kube, (bytes) => bytes > 4 * 2 ** 20 && ac.abort()) });
    expect(r.exitCode).toBe(1);
    const st = kube.backups.get('stopped')!.status!;
    expect(st.phase).toBe('failed');
    expect(st.error).toMatch(/^interrupted: the backup pod was asked to stop .*failed: .*cancelled/);
    expect(st.progressBytes).toBeGreaterThan(4 * 2 ** 20);
    expect((await rig.store.list(archiveKeys.basePrefix(PATH))).map((o) => o.key)).toEqual(before);
  });

  it('an on-demand backup of the primary, then retention "1 backup" removes the older backups, their WAL and their PostgreSQLBackups', async () => {
    await sleep(1100); // backup ids are per second
    kube.addBackup('manual-1', CLUSTER, { target: 'primary' });
    const r = await run({ backupName: 'manual-1', retention: { count: 1 } });
    expect(r).toMatchObject({ outcome: 'completed', exitCode: 0 });
    const st = kube.backups.get('manual-1')!.status!;
    expect(st).toMatchObject({ phase: 'completed', instance: `${CLUSTER}-1`, fromReplica: false });
    // The scheduled backup went, with its resource; manual-1 is the only one left.
    expect((await listBackups(rig.store, PATH)).backups.map((b) => b.id)).toEqual([st.backupId]);
    expect(await rig.store.head(archiveKeys.baseManifest(PATH, scheduledId))).toBeNull();
    expect(kube.backups.has(`${CLUSTER}-backup-29012345`)).toBe(false);
    expect(r.retention).toMatchObject({ policy: '1 backup', resources: [`${CLUSTER}-backup-29012345`] });
    expect(r.retention!.removed.backups).toBe(1);
    // Failed backups have no backupId: they stay.
    expect(kube.backups.has('bad-creds')).toBe(true);
    // (The first backup's run already removed the WAL from before it, under 7d.)
    const expired = kube.events.filter((e) => e.reason === 'BackupsExpired' && e.message.startsWith('Retention 1 backup'));
    expect(expired).toEqual([{ kind: 'PostgreSQLCluster', name: CLUSTER, type: 'Normal', reason: 'BackupsExpired', message: expect.stringMatching(/^Retention 1 backup: removed 1 base backup, \d+ incomplete backup folders?, \d+ WAL files? and 1 PostgreSQLBackup$/) }]);
    // WAL before manual-1's start is gone.
    const wal = (await rig.store.list(archiveKeys.walPrefix(PATH))).map((o) => o.key.split('/').pop()!.replace(/\.gz$/, '')).filter((n) => /^[0-9A-F]{24}$/.test(n));
    expect(wal.every((n) => n.slice(8) >= st.startWal!.slice(8))).toBe(true);
  });

  it('a retention failure is reported but does not fail the backup', async () => {
    await sleep(1100);
    kube.addBackup('manual-2');
    kube.failListBackups = true;
    try {
      const r = await run({ backupName: 'manual-2', retention: { count: 1 } });
      expect(r).toMatchObject({ outcome: 'completed', exitCode: 0 });
      expect(r.retention!.error).toContain('forbidden');
    } finally {
      kube.failListBackups = false;
    }
    expect(kube.backups.get('manual-2')!.status!.phase).toBe('completed');
    // Nothing was deleted: no resource outlives its base backup.
    expect((await listBackups(rig.store, PATH)).backups.map((b) => b.id)).toEqual([kube.backups.get('manual-1')!.status!.backupId, kube.backups.get('manual-2')!.status!.backupId]);
    expect(kube.backups.has('manual-1')).toBe(true);
    expect(kube.events.find((e) => e.reason === 'BackupRetentionFailed')).toMatchObject({ kind: 'PostgreSQLCluster', type: 'Warning', message: expect.stringContaining('(the backup completed)') });
  });
});

/** The same fake, calling `hook` with every progressBytes written. */
function withProgressHook(kube: FakeKube, hook: (bytes: number) => void): BackupKube {
  return new Proxy(kube, {
    get(target, prop, receiver) {
      if (prop === 'patchBackupStatus') {
        return async (name: string, status: BackupStatusPatch) => {
          await target.patchBackupStatus(name, status);
          if (status.phase === undefined && status.progressBytes) hook(status.progressBytes);
        };
      }
      const v = Reflect.get(target, prop, receiver) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}
