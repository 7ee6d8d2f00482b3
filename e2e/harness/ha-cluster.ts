// One PostgreSQLCluster on the process kubelet, with the moves HA tests and the failover benchmark
// make: wait until healthy, fail the primary under a write load, switch over — each measured.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CoordinationV1Api, CoreV1Api, CustomObjectsApi, PatchStrategy, Watch, setHeaderOptions, type V1Lease } from '@kubernetes/client-node';
import { parse, stringify } from 'yaml';
import type pg from 'pg';
import { API_GROUP, API_VERSION, CLUSTER_PLURAL, LABELS } from '../../src/api/constants.js';
import type { PostgreSQLCluster } from '../../src/api/cluster.js';
import { names } from '../../src/api/names.js';
import type { ProcessKubelet } from '../kubelet/index.js';
import { kubeConfig, waitFor } from './env.js';
import { kubectlOk } from './kubectl.js';
import { REPO_ROOT, type OperatorHandle } from './operator.js';
import { LedgerWriter, OldPrimaryProbe, appCredentials, missingIds, podClientConfig, query, serviceClientConfig, type Credentials, type ProbeCommit, type ProbeReport } from './postgres.js';
import { errorText } from '../../src/util/error-text.js';

export interface FailoverResult {
  oldPrimary: string;
  newPrimary: string;
  /** Fault in effect (process killed or frozen) → first write acknowledged afterwards (through the rw Service). */
  writeGapMs: number;
  acknowledged: number;
  lost: number[];
}

export class HaCluster {
  private creds?: Credentials;

  constructor(
    readonly kubelet: ProcessKubelet,
    readonly namespace: string,
    readonly name: string,
  ) {}

  /** The seed manifest in this namespace, with small storage and resources, then `patch`. */
  async create(patch: (c: PostgreSQLCluster) => void = () => {}): Promise<void> {
    const c = parse(readFileSync(join(REPO_ROOT, 'examples/cluster.yaml'), 'utf8')) as PostgreSQLCluster;
    c.metadata = { name: this.name, namespace: this.namespace };
    c.spec.storage = { size: '1Gi', storageClass: 'fast-ssd' };
    // Small enough for several instances on 2 cores; the seed's own resources are exercised elsewhere.
    c.spec.resources = { requests: { cpu: '100m', memory: '256Mi' }, limits: { cpu: '2', memory: '1Gi' } };
    patch(c);
    await kubectlOk(['apply', '-f', '-'], stringify(c));
  }

  async get(): Promise<PostgreSQLCluster> {
    const api = kubeConfig().makeApiClient(CustomObjectsApi);
    return (await api.getNamespacedCustomObject({ group: API_GROUP, version: API_VERSION, plural: CLUSTER_PLURAL, namespace: this.namespace, name: this.name })) as PostgreSQLCluster;
  }

  async patchSpec(spec: Record<string, unknown>): Promise<void> {
    const api = kubeConfig().makeApiClient(CustomObjectsApi);
    await api.patchNamespacedCustomObject(
      { group: API_GROUP, version: API_VERSION, plural: CLUSTER_PLURAL, namespace: this.namespace, name: this.name, body: { spec } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
  }

  /** Healthy: every instance ready, the primary accepting writes, every replica streaming. */
  async healthy(instances: number, timeoutMs = 180_000): Promise<PostgreSQLCluster> {
    const c = await waitFor(
      `${this.name} healthy with ${instances} instances`,
      async () => {
        const c = await this.get();
        return isHealthy(c, instances) ? c : undefined;
      },
      { timeoutMs, intervalMs: 250 },
    );
    this.creds ??= await appCredentials(this.namespace, this.name);
    return c;
  }

  rw(): pg.ClientConfig {
    return serviceClientConfig(this.kubelet, this.namespace, `${this.name}-rw`, this.creds!);
  }

  ro(): pg.ClientConfig {
    return serviceClientConfig(this.kubelet, this.namespace, `${this.name}-ro`, this.creds!);
  }

  private async underLoad<T>(table: string, act: (writer: LedgerWriter) => Promise<T>): Promise<{ result: T; acknowledged: number[]; lost: number[]; longestGapMs: number }> {
    const writer = new LedgerWriter(this.rw(), table);
    // Healthy in status can precede the Services' routing by a moment (a rejoin just finished).
    await waitFor(`table ${table} created through -rw`, () => writer.prepare().then(() => true, () => false), { timeoutMs: 60_000, intervalMs: 250 });
    writer.start();
    await waitFor('writes flowing', async () => writer.acknowledged.length >= 20);
    const result = await act(writer);
    await sleep(500);
    const report = await writer.stop();
    // Reading the ledger back may meet a connection the proxy drops while an old primary rejoins: retry it.
    const lost = await waitFor(`ledger ${table} read back through -rw`, () => missingIds(this.rw(), report.acknowledged, table).catch(() => undefined), { timeoutMs: 60_000, intervalMs: 250 });
    return { result, acknowledged: report.acknowledged, lost, longestGapMs: report.longestGapMs };
  }

  /** Fault the primary's pod under a write load; returns once a new primary acknowledged a write. */
  async failover(table: string, fault: (pod: string) => Promise<unknown>, recover: (pod: string) => Promise<unknown> = async () => {}): Promise<FailoverResult> {
    const oldPrimary = (await this.get()).status!.currentPrimary!;
    const run = await this.underLoad(table, async (writer) => {
      await fault(`${oldPrimary}-0`);
      // From the moment the fault is in effect: an INSERT the old primary acknowledged before it
      // died must not count as the first write after the failover.
      const faultAt = Date.now();
      const after = await waitFor('a new primary', async () => {
        const c = await this.get();
        return c.status?.currentPrimary && c.status.currentPrimary !== oldPrimary ? c : undefined;
      }, { timeoutMs: 60_000, intervalMs: 100 });
      const firstAck = await waitFor('a write acknowledged after the fault', async () => writer.firstAckAfter(faultAt + 1), { timeoutMs: 60_000, intervalMs: 20 });
      return { newPrimary: after.status!.currentPrimary!, writeGapMs: firstAck - faultAt };
    });
    await recover(`${oldPrimary}-0`);
    return { oldPrimary, ...run.result, acknowledged: run.acknowledged.length, lost: run.lost };
  }

  /** Switch over to `target` under a write load; the longest gap between acknowledged writes. */
  async switchover(table: string, target: string): Promise<{ gapMs: number; lost: number[] }> {
    const run = await this.underLoad(table, async () => {
      await this.patchSpec({ primary: target });
      await waitFor(`${target} is primary`, async () => (await this.get()).status?.currentPrimary === target, { timeoutMs: 60_000, intervalMs: 100 });
    });
    return { gapMs: run.longestGapMs, lost: run.lost };
  }

  /**
   * Change the spec under a write load and wait until `done` says the change is through; the
   * acknowledged writes lost and the longest gap between acknowledged writes.
   */
  async changeUnderLoad(table: string, spec: Record<string, unknown>, what: string, done: (c: PostgreSQLCluster) => boolean | Promise<boolean>, timeoutMs = 300_000): Promise<{ gapMs: number; lost: number[]; acknowledged: number }> {
    const run = await this.underLoad(table, async () => {
      await this.patchSpec(spec);
      await waitFor(what, async () => done(await this.get()), { timeoutMs, intervalMs: 500 });
    });
    return { gapMs: run.longestGapMs, lost: run.lost, acknowledged: run.acknowledged.length };
  }

  // ---- chaos: faults of the primary, one at a time, each checked end to end -----------------

  /**
   * create() with WAL archiving on: spec.backup.s3 names `bucket` on an S3 server (s3rver) at
   * `endpoint`, with a credentials Secret made here. The schedule is yearly: no base backup Job
   * competes with the faults, while archive_command runs on every primary.
   */
  async createArchived(s3: { endpoint: string; accessKeyId: string; secretAccessKey: string }, bucket: string, patch: (c: PostgreSQLCluster) => void = () => {}): Promise<void> {
    const secret = `${this.name}-s3`;
    await kubeConfig()
      .makeApiClient(CoreV1Api)
      .createNamespacedSecret({ namespace: this.namespace, body: { metadata: { name: secret }, stringData: { ACCESS_KEY_ID: s3.accessKeyId, ACCESS_SECRET_KEY: s3.secretAccessKey } } });
    await this.create((c) => {
      c.spec.instances = 3;
      c.spec.highAvailability = { ...c.spec.highAvailability, enabled: true, synchronousCommit: true, synchronousReplicas: 1 };
      c.spec.backup = {
        enabled: true,
        schedule: '0 0 1 1 *',
        retention: 7,
        s3: { endpoint: s3.endpoint, bucket, forcePathStyle: true, checksums: 'WHEN_REQUIRED', credentials: { secretName: secret } } as never,
      };
      patch(c);
    });
  }

  /** ContinuousArchiving True on the primary (archive_command in place, nothing failing). */
  async archiving(timeoutMs = 120_000): Promise<string> {
    const c = await waitFor('ContinuousArchiving True', async () => {
      const c = await this.get();
      return c.status?.conditions?.find((x) => x.type === 'ContinuousArchiving')?.status === 'True' ? c : undefined;
    }, { timeoutMs, intervalMs: 500 });
    return c.status!.conditions!.find((x) => x.type === 'ContinuousArchiving')!.message ?? '';
  }

  /** The pod of an instance (one StatefulSet per instance, replicas 1). */
  podOf(instance: string): string {
    return `${instance}-0`;
  }

  /** A direct connection to an instance's PostgreSQL (its pod address), as the application user. */
  podConfig(instance: string, timeoutMs = 2000): pg.ClientConfig {
    return podClientConfig(this.kubelet, this.namespace, this.podOf(instance), this.creds!, timeoutMs);
  }

  async roleLabel(instance: string): Promise<string | undefined> {
    const pod = await kubeConfig().makeApiClient(CoreV1Api).readNamespacedPod({ name: this.podOf(instance), namespace: this.namespace });
    return pod.metadata?.labels?.[LABELS.role];
  }

  async primaryLease(): Promise<V1Lease | undefined> {
    return kubeConfig()
      .makeApiClient(CoordinationV1Api)
      .readNamespacedLease({ name: names.primaryLease(this.name), namespace: this.namespace })
      .catch(() => undefined);
  }

  /** One line for failure messages: phase, primary (status and Lease), conditions, role labels. */
  async describeState(): Promise<string> {
    const parts: string[] = [];
    try {
      const c = await this.get();
      parts.push(`phase ${c.status?.phase}, currentPrimary ${c.status?.currentPrimary}, readyInstances ${c.status?.readyInstances}`);
      for (const t of ['PrimaryAvailable', 'ReplicasStreaming', 'Ready', 'Degraded']) {
        const x = c.status?.conditions?.find((y) => y.type === t);
        if (x) parts.push(`${t}=${x.status} (${x.reason}: ${x.message})`);
      }
      const lease = await this.primaryLease();
      parts.push(`Lease holder ${lease?.spec?.holderIdentity ?? 'none'}`);
      const labels = await Promise.all((c.status?.instanceNames ?? []).map(async (i) => `${i}=${(await this.roleLabel(i).catch(() => '?')) ?? 'none'}`));
      parts.push(`role labels ${labels.join(' ')}`);
    } catch (err) {
      parts.push(`(state unreadable: ${errorText(err)})`);
    }
    return parts.join('; ');
  }

  /**
   * Every acknowledged id read back from each instance directly (pod address, not a Service),
   * retried until each has them all or `timeoutMs` passed (replicas may still be replaying).
   * Returns the ids each instance lacks at the end (empty arrays: all present).
   */
  async missingOnEveryInstance(table: string, acknowledged: number[], timeoutMs = 60_000): Promise<Record<string, number[] | string>> {
    const instances = (await this.get()).status?.instanceNames ?? [];
    const deadline = Date.now() + timeoutMs;
    const result: Record<string, number[] | string> = {};
    await Promise.all(
      instances.map(async (instance) => {
        for (;;) {
          try {
            result[instance] = await missingIds(this.podConfig(instance, 5000), acknowledged, table);
          } catch (err) {
            result[instance] = `unreadable: ${errorText(err)}`;
          }
          const r = result[instance];
          if ((Array.isArray(r) && r.length === 0) || Date.now() >= deadline) return;
          await sleep(500);
        }
      }),
    );
    return result;
  }

  /**
   * One fault of the current primary, checked end to end (shared by the chaos e2e test and the
   * failover benchmark). From a healthy cluster: watch who is primary (the Lease and status),
   * start the old-primary probe, inject the fault, then — each step bounded by `timeoutMs` from
   * the fault — wait for another instance to become primary, for `writer` (through -rw) to have
   * a write acknowledged, recover (thaw, heal), and for the old primary to be a streaming replica
   * again in a Healthy cluster. Problems are collected, not thrown: the caller asserts on them.
   */
  async runFault(kind: FaultKind, o: RunFaultOptions): Promise<FaultRun> {
    const timeoutMs = o.timeoutMs ?? 120_000;
    const fault = FAULTS[kind];
    const before = await this.healthyBeforeFault(kind, o);
    const oldPrimary = before.status!.currentPrimary!;
    const pod = this.podOf(oldPrimary);
    const run: FaultRun = { index: o.index, kind, oldPrimary, faultAt: 0, problems: [], notes: [], stuck: false, oldPrimaryCommits: [], probeCommitsBefore: 0 };
    const watch = new PrimaryWatch(this, oldPrimary);
    await watch.start();
    if (watch.leaseHolder !== oldPrimary) run.notes.push(`before the fault the Lease named ${watch.leaseHolder ?? 'nobody'}, status ${oldPrimary}`);

    const probe = new OldPrimaryProbe(this.podConfig(oldPrimary, 1000), o.probeTable, { tag: o.index, syncCommit: fault.probeSyncCommit, timeoutMs: 1000, intervalMs: 100 });
    probe.start();
    let report: ProbeReport | undefined;
    try {
      await this.checkBeforeFault(run, probe, o.writer);
      const injected = await fault.inject({ cluster: this, instance: oldPrimary, pod, watch, operator: o.operator });
      run.faultAt = Date.now();
      const step: FaultStep = { o, fault, run, watch, timeoutMs, deadline: run.faultAt + timeoutMs };
      o.log?.(`fault #${o.index} ${kind} on ${oldPrimary} injected`);

      // 1. Another instance becomes primary (or the old one heals in place); 2. writes resume.
      await this.awaitAnotherPrimary(step);
      const oldAddress = this.kubelet.podAddress(this.namespace, pod);
      await this.awaitWritesResumed(step, oldAddress);

      // 3. Undo the fault (thaw, heal, the operator back).
      for (const n of await injected.recover()) run.notes.push(n);
      for (const p of injected.problems()) run.problems.push(p);

      // 4. The old primary rejoins as a streaming replica of the new one, the cluster Healthy.
      if (watch.anotherPrimaryAt !== undefined) await this.awaitRejoined(step);
      else await this.awaitHealthyAgain(step);
      run.newPrimary = watch.newPrimary ?? run.newPrimary;
      run.longestWriteGapMs = longestGap(o.writer.ackTimes, run.faultAt, Date.now());
      if (watch.anotherPrimaryAt !== undefined && oldAddress) checkRwOnOldPrimary(step, oldAddress);
    } finally {
      report = await probe.stop();
      watch.stop();
    }

    // 5. The old primary's commits after another instance became primary.
    checkOldPrimaryCommits(run, report, watch, fault);
    return run;
  }

  /** The cluster healthy with 3 instances before the fault, or an error that says how it is. */
  private async healthyBeforeFault(kind: FaultKind, o: RunFaultOptions): Promise<PostgreSQLCluster> {
    try {
      return await this.healthy(3, o.healthyTimeoutMs ?? 60_000);
    } catch {
      throw new Error(`fault #${o.index} ${kind}: the cluster was not healthy (3 instances) within ${(o.healthyTimeoutMs ?? 60_000) / 1000} s before the fault: ${await this.describeState()}`);
    }
  }

  /** Before the fault: the probe commits on the old primary and writes flow through -rw (else its counts prove nothing). */
  private async checkBeforeFault(run: FaultRun, probe: OldPrimaryProbe, writer: LedgerWriter): Promise<void> {
    const probeOk = await until(async () => probe.commits.length >= 2, Date.now() + 15_000, 100);
    if (!probeOk) run.problems.push(`the old-primary probe never committed on ${run.oldPrimary} before the fault (so its count proves nothing); errors ${JSON.stringify(probe.errorsSoFar())}`);
    const flowing = await until(async () => writer.firstAckAfter(Date.now() - 1000), Date.now() + 30_000, 50);
    if (!flowing) run.problems.push(`writes through -rw were not flowing before the fault (${await this.describeState()})`);
  }

  /**
   * 1. Another instance becomes primary. Without a failover (the old primary came back by
   * itself and serves -rw), stop waiting once that has been so for a while.
   */
  private async awaitAnotherPrimary({ o, fault, run, watch, deadline }: FaultStep): Promise<void> {
    const { faultAt, oldPrimary } = run;
    const bound = Math.min(deadline, faultAt + 60_000);
    let servedByOldSince: number | undefined;
    await until(async () => {
      if (watch.anotherPrimaryAt !== undefined) return true;
      // Writes flowing now (the last one sent after the fault, acknowledged within the last second), status Healthy.
      const flowingNow = (o.writer.sendTimes.at(-1) ?? 0) > faultAt && (o.writer.ackTimes.at(-1) ?? 0) > Date.now() - 1000;
      const healthyOld = flowingNow && (await this.get()).status?.phase === 'Healthy';
      servedByOldSince = healthyOld ? (servedByOldSince ?? Date.now()) : undefined;
      return servedByOldSince !== undefined && Date.now() - servedByOldSince > (fault.mayHealInPlace ? 2_000 : 15_000);
    }, bound, 100);
    if (watch.anotherPrimaryAt === undefined && fault.mayHealInPlace && servedByOldSince !== undefined && watch.leaseHolder === oldPrimary) {
      run.notes.push(`healed in place: ${oldPrimary} restarted read-only and, still the Lease holder, was promoted again; -rw writes flow through it`);
    } else if (watch.anotherPrimaryAt === undefined) {
      run.problems.push(
        servedByOldSince !== undefined
          ? `no failover: ${oldPrimary} came back as the primary by itself and -rw writes flowed through it again for 15 s, with no other instance named primary (${await this.describeState()})`
          : `no other instance became primary within ${Math.round((bound - faultAt) / 1000)} s of the fault (${await this.describeState()})`,
      );
    } else {
      run.newPrimary = watch.newPrimary;
      run.anotherPrimaryAt = watch.anotherPrimaryAt;
      run.notes.push(`another primary (${watch.newPrimary}) seen ${watch.anotherPrimaryAt - faultAt} ms after the fault, first through the ${watch.firstEvidence}`);
    }
  }

  /**
   * 2. Writes through -rw resume — on another server than the old primary once there is a new
   * primary (writes the old primary takes through -rw are counted in step 5).
   */
  private async awaitWritesResumed({ o, run, watch, timeoutMs, deadline }: FaultStep, oldAddress: string | undefined): Promise<void> {
    const elsewhere = (a: string) => watch.anotherPrimaryAt === undefined || a !== oldAddress;
    const firstAck = await until(async () => o.writer.firstAckSentAfter(run.faultAt, elsewhere), deadline, 20);
    if (firstAck === undefined) {
      run.problems.push(`writes through -rw did not resume${watch.anotherPrimaryAt !== undefined ? ` on another instance than ${run.oldPrimary}` : ''} within ${timeoutMs / 1000} s of the fault (${await this.describeState()})`);
    } else run.writeGapMs = firstAck - run.faultAt;
  }

  /** 4, after a failover: the old primary a streaming replica in a Healthy cluster. */
  private async awaitRejoined({ run, timeoutMs, deadline }: FaultStep): Promise<void> {
    let last = '';
    const rejoinedAt = await until(async () => {
      const r = await this.rejoined(run.oldPrimary);
      last = r === true ? '' : r;
      return r === true ? Date.now() : undefined;
    }, deadline, 200);
    if (rejoinedAt === undefined) {
      run.stuck = true;
      run.problems.push(`the old primary ${run.oldPrimary} was not a streaming replica in a Healthy cluster within ${timeoutMs / 1000} s of the fault: ${last} (${await this.describeState()})`);
    } else run.rejoinMs = rejoinedAt - run.faultAt;
  }

  /** 4, without a failover (healed in place, or a problem already noted): Healthy as healthy(3) means it. */
  private async awaitHealthyAgain({ run, timeoutMs, deadline }: FaultStep): Promise<void> {
    const healthyAt = await until(async () => (isHealthy(await this.get(), 3) ? Date.now() : undefined), deadline, 250);
    if (healthyAt === undefined) {
      run.stuck = true;
      run.problems.push(`the cluster was not Healthy again (3 ready, primary available, replicas streaming) within ${timeoutMs / 1000} s of the fault (${await this.describeState()})`);
    } else run.healthyAgainMs = healthyAt - run.faultAt;
  }

  /** true once `instance` is a streaming replica in a Healthy cluster with another primary; else why not. */
  private async rejoined(instance: string): Promise<true | string> {
    const c = await this.get().catch(() => undefined);
    if (!c) return 'the cluster could not be read';
    const cond = (t: string) => c.status?.conditions?.find((x) => x.type === t);
    if (c.status?.currentPrimary === instance) return `${instance} is status.currentPrimary`;
    if (!isHealthy(c, 3)) return `not healthy: phase ${c.status?.phase}, ready ${c.status?.readyInstances}, ReplicasStreaming ${cond('ReplicasStreaming')?.status} (${cond('ReplicasStreaming')?.message})`;
    const label = await this.roleLabel(instance).catch(() => '?');
    if (label !== 'replica') return `${instance} has role label ${label ?? 'none'}, not replica`;
    const r = await query<{ r: boolean }>(this.podConfig(instance), 'SELECT pg_is_in_recovery() AS r').catch((err: Error) => err);
    if (r instanceof Error) return `${instance} does not answer directly: ${r.message}`;
    if (!r[0]?.r) return `${instance} answers directly but is not in recovery`;
    return true;
  }
}

/** Healthy: the phase, `instances` ready, the primary available, every replica streaming. */
function isHealthy(c: PostgreSQLCluster, instances: number): boolean {
  const cond = (t: string) => c.status?.conditions?.find((x) => x.type === t)?.status;
  return c.status?.phase === 'Healthy' && c.status.readyInstances === instances && cond('PrimaryAvailable') === 'True' && cond('ReplicasStreaming') === 'True';
}

/** What each step after the fault works with; `run` collects the results, problems and notes. */
interface FaultStep {
  o: RunFaultOptions;
  fault: FaultSpec;
  run: FaultRun;
  watch: PrimaryWatch;
  /** Bound on each wait after the fault, and the deadline it sets (from the fault). */
  timeoutMs: number;
  deadline: number;
}

/** -rw must not route writes to the old primary once another instance is primary: those it acknowledged are a problem. */
function checkRwOnOldPrimary({ o, run, watch }: FaultStep, oldAddress: string): void {
  const t = watch.anotherPrimaryAt!;
  run.rwOldPrimaryAcks = o.writer.acksSentAfterBy(t, oldAddress).filter(([, sentAt]) => watch.holderAt(sentAt) !== run.oldPrimary).length;
  if (!run.rwOldPrimaryAcks) return;
  const acks = o.writer.acksSentAfterBy(t, oldAddress);
  run.problems.push(
    `-rw routed writes to the old primary ${run.oldPrimary} after ${watch.newPrimary} became primary, and it acknowledged ${run.rwOldPrimaryAcks} of them ` +
      `(ids ${acks[0]![0]}…${acks.at(-1)![0]}, sent ${acks[0]![1] - t}…${acks.at(-1)![1] - t} ms after it)`,
  );
}

/** 5. The probe's commits on the old primary: before the fault, and those sent after another instance became primary (a problem). */
function checkOldPrimaryCommits(run: FaultRun, report: ProbeReport, watch: PrimaryWatch, fault: FaultSpec): void {
  run.probeCommitsBefore = report.commits.filter((c) => c.ackAt <= run.faultAt).length;
  run.probeErrors = report.errors;
  const t = run.anotherPrimaryAt;
  if (t === undefined) return;
  run.oldPrimaryCommits = report.commits.filter((c) => c.sentAt > t && watch.holderAt(c.sentAt) !== run.oldPrimary);
  const ambiguous = report.commits.filter((c) => c.sentAt <= t && c.ackAt > t).length;
  if (ambiguous) run.notes.push(`${ambiguous} probe INSERT(s) sent before and acknowledged after the new primary appeared (not counted)`);
  if (!run.oldPrimaryCommits.length) return;
  const first = run.oldPrimaryCommits[0]!;
  const last = run.oldPrimaryCommits.at(-1)!;
  const local = run.oldPrimaryCommits.filter((c) => c.localOnly).length;
  run.problems.push(
    `the old primary ${run.oldPrimary} acknowledged ${run.oldPrimaryCommits.length} INSERT(s) sent after ${run.newPrimary ?? 'another instance'} became primary ` +
      `(synchronous_commit ${fault.probeSyncCommit === 'local' ? 'local' : 'as the server sets it'}; first sent ${first.sentAt - t} ms, last ${last.sentAt - t} ms after it` +
      `${local ? `; ${local} with the warning that the commit was only local` : ''}): writes accepted by a primary that is no longer the primary`,
  );
}

/** Longest interval between `from` and consecutive times of `times` (ascending) up to `to`; undefined without any. */
function longestGap(times: number[], from: number, to: number): number | undefined {
  let i = times.length;
  while (i > 0 && times[i - 1]! > from) i--;
  let prev = from;
  let longest: number | undefined;
  for (; i < times.length && times[i]! <= to; i++) {
    longest = Math.max(longest ?? 0, times[i]! - prev);
    prev = times[i]!;
  }
  return longest;
}

/** Polls `fn` until it returns something other than undefined/false, or `deadline` passes (then undefined). Errors count as "not yet". */
async function until<T>(fn: () => Promise<T | undefined | false>, deadline: number, intervalMs: number): Promise<T | undefined> {
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
    } catch {
      /* not yet */
    }
    if (Date.now() >= deadline) return undefined;
    await sleep(Math.min(intervalMs, Math.max(0, deadline - Date.now())));
  }
}

/**
 * Who is primary, as fast as the test can tell: a watch on the cluster's primary Lease (with a
 * poll every 200 ms as a fallback) and a poll of status.currentPrimary. `anotherPrimaryAt` is the
 * earliest moment either named an instance other than `oldPrimary`.
 */
export class PrimaryWatch {
  /** Every distinct Lease holder seen, with when it was first seen. */
  readonly leaseHistory: Array<{ at: number; holder: string | undefined; acquiredAt?: number }> = [];
  leaseHolder: string | undefined;
  anotherPrimaryAt?: number;
  newPrimary?: string;
  firstEvidence?: 'Lease watch' | 'Lease poll' | 'status poll';
  private watching?: () => void;
  private stopped = false;
  private abort?: AbortController;
  private timers: NodeJS.Timeout[] = [];
  private readonly listeners: Array<(holder: string, at: number) => void> = [];

  constructor(
    private readonly cluster: HaCluster,
    readonly oldPrimary: string,
  ) {}

  /** When the operator claimed the Lease for `holder` (its acquireTime), if seen. */
  claimedAt(holder: string): number | undefined {
    return this.leaseHistory.find((e) => e.holder === holder)?.acquiredAt;
  }

  /** Called once, the first time the Lease names another instance. */
  onLeaseChange(fn: (holder: string, at: number) => void): void {
    this.listeners.push(fn);
  }

  /** The Lease holder as last seen at or before `t` (undefined before the first observation). */
  holderAt(t: number): string | undefined {
    let h: string | undefined;
    for (const e of this.leaseHistory) if (e.at <= t) h = e.holder;
    return h;
  }

  async start(): Promise<void> {
    const lease = await this.cluster.primaryLease();
    this.seeLease(lease, 'Lease poll');
    this.seeStatus((await this.cluster.get()).status?.currentPrimary);
    // The watch first: its ADDED event says it is established (a fault injected before that could
    // be seen only by the poll, up to 200 ms late).
    const established = new Promise<void>((r) => (this.watching = r));
    void this.startWatch();
    await Promise.race([established, sleep(5000)]);
    const poll = (ms: number, fn: () => Promise<void>) => {
      let busy = false;
      this.timers.push(
        setInterval(() => {
          if (busy || this.stopped) return;
          busy = true;
          void fn().catch(() => undefined).finally(() => (busy = false));
        }, ms),
      );
    };
    poll(200, async () => this.seeLease(await this.cluster.primaryLease(), 'Lease poll'));
    poll(100, async () => this.seeStatus((await this.cluster.get()).status?.currentPrimary));
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    this.abort?.abort();
  }

  private async startWatch(): Promise<void> {
    if (this.stopped) return;
    const path = `/apis/coordination.k8s.io/v1/namespaces/${this.cluster.namespace}/leases`;
    try {
      this.abort = await new Watch(kubeConfig()).watch(
        path,
        { fieldSelector: `metadata.name=${names.primaryLease(this.cluster.name)}` },
        (type, obj: V1Lease) => {
          if (type === 'ADDED' || type === 'MODIFIED') this.seeLease(obj, 'Lease watch');
          this.watching?.();
        },
        () => {
          if (!this.stopped) setTimeout(() => void this.startWatch(), 200);
        },
      );
      if (this.stopped) this.abort.abort();
    } catch {
      if (!this.stopped) setTimeout(() => void this.startWatch(), 200);
    }
  }

  private seeLease(lease: V1Lease | undefined, via: 'Lease watch' | 'Lease poll'): void {
    const at = Date.now();
    const holder = lease?.spec?.holderIdentity ?? undefined;
    if (this.leaseHistory.length && this.leaseHistory.at(-1)!.holder === holder) return;
    // acquireTime: the operator's clock (this machine's) just before it wrote the claim. A watch
    // event carries raw JSON (a string), a read a Date.
    const acquire = lease?.spec?.acquireTime as Date | string | undefined;
    const acquiredAt = acquire ? new Date(acquire).getTime() : undefined;
    this.leaseHistory.push({ at, holder, ...(acquiredAt && !Number.isNaN(acquiredAt) ? { acquiredAt } : {}) });
    this.leaseHolder = holder;
    if (holder && holder !== this.oldPrimary) this.another(holder, at, via);
  }

  private seeStatus(primary: string | undefined): void {
    if (primary && primary !== this.oldPrimary) this.another(primary, Date.now(), 'status poll');
  }

  private another(instance: string, at: number, via: 'Lease watch' | 'Lease poll' | 'status poll'): void {
    if (this.anotherPrimaryAt === undefined) {
      this.anotherPrimaryAt = at;
      this.firstEvidence = via;
    }
    this.newPrimary = instance;
    if (via !== 'status poll' && this.listeners.length) {
      const fns = this.listeners.splice(0);
      for (const fn of fns) fn(instance, at);
    }
  }
}

export type FaultKind = 'postmaster-kill' | 'pod-kill' | 'freeze' | 'isolate' | 'operator-kill-after-claim';
export const FAULT_KINDS: FaultKind[] = ['postmaster-kill', 'pod-kill', 'freeze', 'isolate', 'operator-kill-after-claim'];

export interface FaultEnv {
  cluster: HaCluster;
  /** The primary at the fault, and its pod. */
  instance: string;
  pod: string;
  watch: PrimaryWatch;
  /** Needed by operator-kill-after-claim. */
  operator?: OperatorHandle;
}

export interface InjectedFault {
  /**
   * Undo the fault (thaw, heal, wait for the new operator), called once writes flow through a new
   * primary or the wait for that ended; returns notes for the per-fault report.
   */
  recover(): Promise<string[]>;
  /** What went wrong with the fault itself (e.g. the Lease never moved, so the operator was never killed). */
  problems(): string[];
}

export interface FaultSpec {
  kind: FaultKind;
  description: string;
  /**
   * The old-primary probe's synchronous_commit: `local` where only the agent can refuse writes
   * (the process is dead and comes back), the server default where a thawed process cannot be
   * stopped in time and synchronous replication is the protection.
   */
  probeSyncCommit: 'local' | 'default';
  /**
   * The old primary may heal in place instead of a failover: its agent restarts postgres read-only
   * and, still holding the primary Lease, is promoted again (a fast restart beats the failover).
   */
  mayHealInPlace?: boolean;
  inject(env: FaultEnv): Promise<InjectedFault>;
}

const noRecovery: InjectedFault = { recover: async () => [], problems: () => [] };

/** The faults as data: what each does to the primary's pod, and how it is undone. */
export const FAULTS: Record<FaultKind, FaultSpec> = {
  'postmaster-kill': {
    kind: 'postmaster-kill',
    description: 'SIGKILL of the postmaster only; the instance agent (PID 1 of the pod) lives on',
    probeSyncCommit: 'local',
    mayHealInPlace: true,
    async inject({ cluster, pod }) {
      const pids = await cluster.kubelet.killPostmaster(cluster.namespace, pod);
      if (pids.length === 0) throw new Error(`postmaster-kill: no postmaster runs in ${pod}`);
      return noRecovery;
    },
  },
  'pod-kill': {
    kind: 'pod-kill',
    description: 'SIGKILL of every process of the pod (the kubelet restarts the container)',
    probeSyncCommit: 'local',
    async inject({ cluster, pod }) {
      if (!(await cluster.kubelet.killContainer(cluster.namespace, pod))) throw new Error(`pod-kill: no container runs in ${pod}`);
      return noRecovery;
    },
  },
  freeze: {
    kind: 'freeze',
    description: 'SIGSTOP/cgroup freeze of the pod, thawed once the new primary serves writes',
    probeSyncCommit: 'default',
    async inject({ cluster, pod }) {
      await cluster.kubelet.freeze(cluster.namespace, pod);
      return {
        recover: async () => {
          await cluster.kubelet.thaw(cluster.namespace, pod);
          return [];
        },
        problems: () => [],
      };
    },
  },
  isolate: {
    kind: 'isolate',
    description: 'network partition of the pod (frozen, out of every Service, probes paused), healed once the new primary serves writes',
    probeSyncCommit: 'default',
    async inject({ cluster, pod }) {
      await cluster.kubelet.isolatePod(cluster.namespace, pod);
      return {
        recover: async () => {
          await cluster.kubelet.heal(cluster.namespace, pod);
          return [];
        },
        problems: () => [],
      };
    },
  },
  'operator-kill-after-claim': {
    kind: 'operator-kill-after-claim',
    description: 'SIGKILL of the primary pod, then SIGKILL of the operator the moment the primary Lease names another instance; a new operator starts',
    probeSyncCommit: 'local',
    async inject({ cluster, pod, watch, operator }) {
      if (!operator) throw new Error('operator-kill-after-claim needs the operator handle');
      let claimedAt: number | undefined;
      let newHolder: string | undefined;
      let killedAt: number | undefined;
      let readyAt: number | undefined;
      let failed: string | undefined;
      let restarted: Promise<void> | undefined;
      watch.onLeaseChange((holder, at) => {
        claimedAt = at;
        newHolder = holder;
        const killing = operator.kill(); // the signal is sent synchronously, here
        killedAt = Date.now();
        restarted = killing
          .then(() => operator.restart())
          .then(
            () => void (readyAt = Date.now()),
            (err: unknown) => void (failed = `the new operator did not start: ${errorText(err)}`),
          );
      });
      if (!(await cluster.kubelet.killContainer(cluster.namespace, pod))) throw new Error(`operator-kill-after-claim: no container runs in ${pod}`);
      const started = Date.now();
      return {
        recover: async () => {
          if (!restarted) {
            // The Lease never moved: the operator is still the one from before; nothing to restart.
            return [];
          }
          await restarted;
          const acquired = watch.claimedAt(newHolder!);
          return [
            `operator SIGKILLed ${killedAt! - claimedAt!} ms after the Lease was seen to name ${newHolder} (${claimedAt! - started} ms after the pod kill` +
              `${acquired ? `; ${killedAt! - acquired} ms after the operator's acquireTime` : ''}); the new operator was ready ${readyAt ? `${readyAt - killedAt!} ms` : 'never'} after the kill`,
          ];
        },
        problems: () => [...(restarted ? [] : ['the primary Lease never named another instance, so the operator was not killed after a claim']), ...(failed ? [failed] : [])],
      };
    },
  },
};

export interface RunFaultOptions {
  /** A LedgerWriter through -rw, started by the caller and running across the fault. */
  writer: LedgerWriter;
  /** The probe table (OldPrimaryProbe.prepare, through -rw, before the first fault). */
  probeTable: string;
  /** Numbers the fault in reports; also the probe's tag. */
  index: number;
  operator?: OperatorHandle;
  /** Bound on each wait after the fault (default 120 s). */
  timeoutMs?: number;
  /** Bound on the wait for a healthy cluster before the fault (default 60 s). */
  healthyTimeoutMs?: number;
  log?: (line: string) => void;
}

export interface FaultRun {
  index: number;
  kind: FaultKind;
  oldPrimary: string;
  newPrimary?: string;
  /** When the fault was in effect (ms since epoch). */
  faultAt: number;
  /** The earliest moment the Lease or status named another instance as primary. */
  anotherPrimaryAt?: number;
  /** Fault → first write acknowledged through -rw whose INSERT was sent after the fault. */
  writeGapMs?: number;
  /** Fault → the old primary a streaming replica (role label replica, in recovery) of a Healthy cluster. */
  rejoinMs?: number;
  /** Without a failover: fault → the cluster Healthy again (phase, 3 ready, primary available, replicas streaming). */
  healthyAgainMs?: number;
  /**
   * The longest stretch without an acknowledged write through -rw from the fault to the end of
   * the fault's checks (differs from writeGapMs when a dying primary still acknowledged writes
   * right after the fault, as orphaned backends of a killed postmaster can).
   */
  longestWriteGapMs?: number;
  /** Writes through -rw that the old primary acknowledged, sent after another instance became primary. */
  rwOldPrimaryAcks?: number;
  /** Probe INSERTs the old primary acknowledged that were sent after another instance became primary. */
  oldPrimaryCommits: ProbeCommit[];
  probeCommitsBefore: number;
  probeErrors?: Record<string, number>;
  problems: string[];
  notes: string[];
  /** The cluster did not heal within the bound: later faults would test a broken cluster. */
  stuck: boolean;
}

/** The per-fault line: kind, old → new primary, write gap, rejoin, old-primary commits. */
export function formatFaultRun(r: FaultRun): string {
  const ms = (v: number | undefined) => (v === undefined ? '—' : `${v} ms`);
  return `#${r.index} ${r.kind.padEnd(25)} ${r.oldPrimary} → ${r.newPrimary ?? '(none)'}  write gap ${ms(r.writeGapMs)}${r.longestWriteGapMs !== undefined && r.longestWriteGapMs > (r.writeGapMs ?? 0) ? ` (longest ${r.longestWriteGapMs} ms)` : ''}  ${r.rejoinMs === undefined && r.healthyAgainMs !== undefined ? `healthy again ${r.healthyAgainMs} ms` : `rejoin ${ms(r.rejoinMs)}`}  old-primary commits ${r.oldPrimaryCommits.length}${r.rwOldPrimaryAcks ? ` (+${r.rwOldPrimaryAcks} -rw writes)` : ''}${r.problems.length ? `  PROBLEMS ${r.problems.length}` : ''}`;
}

