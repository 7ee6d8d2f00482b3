// upgrade: a major version upgrade with pg_upgrade, driven by major-upgrade-plan.ts from what the
// pass observed. Runs first in the pass: install applies what each instance runs meanwhile
// (upgradeDirective), rollout holds, ha is held from the stop until the new primary runs. Every
// step starts something (a Job, an agent call) and looks again in a later pass.
import type { V1ContainerStateTerminated, V1Job, V1JobCondition, V1Pod } from '@kubernetes/client-node';
import type { MajorUpgradeStatus } from '../api/cluster-status.js';
import { ANNOTATIONS, API_GROUP_VERSION, BACKUP_KIND } from '../api/constants.js';
import { ownedMeta } from '../builders/meta.js';
import { instanceImage } from '../builders/statefulset.js';
import { upgradeJob, upgradeJobName, type UpgradeJobKind } from '../builders/upgrade-job.js';
import type { AgentClient } from '../instance/agent-client.js';
import { callAgent, stopCall, stopPlanInstances } from './stop-calls.js';
import { passBackupTarget } from './pass-target.js';
import { createIfMissing } from '../runtime/apply.js';
import { majorOf, planMajorUpgrade, upgradeActive, type JobState, type MajorUpgradeInput, type UpgradeAction } from './major-upgrade-plan.js';
import type { ReconcileContext, Reconciler, ReconcilerResult } from './types.js';


const msgOf = (line: string): { msg: string; error: boolean } | undefined => {
  try {
    const entry = JSON.parse(line) as { msg?: unknown; level?: unknown };
    return typeof entry.msg === 'string' ? { msg: entry.msg, error: entry.level === 'error' || entry.level === 50 } : undefined;
  } catch {
    return undefined;
  }
};

/**
 * Why a Job's container failed, from its termination message (its last log lines): the `msg` of
 * the error it logged last; a container killed before it could say anything (exit 137: OOM, a
 * node lost) is reported with what it was doing, its last line.
 */
export function reasonFromLog(text: string | undefined, exit: { exitCode?: number; reason?: string } = {}): string | undefined {
  const lines = (text ?? '').split('\n').map((l) => l.trim()).filter(Boolean);
  const parsed = lines.map((l) => msgOf(l));
  const error = parsed.filter((p) => p?.error).pop();
  if (error) return error.msg;
  if (lines.length === 0) return undefined;
  const last = parsed[parsed.length - 1]?.msg ?? lines[lines.length - 1]!;
  return `the container ended with exit code ${exit.exitCode ?? '?'}${exit.reason ? ` (${exit.reason})` : ''} without saying why; its last line: ${last.replace(/\s+/g, ' ')}`;
}

/**
 * Where a Job of the upgrade stands (pure): a Job of an earlier upgrade is stale. The pod ends a
 * second or so before the Job controller says so, and writes are refused meanwhile: its containers
 * decide (backoffLimit 0: one pod, no retry), and say why it failed (its last log line).
 */
/** The Job's pod: whether its main container exited 0, and the first container that failed. */
function podOutcome(pods: V1Pod[], container: string): { exitedOk: boolean; failed?: V1ContainerStateTerminated } {
  const main = pods.length === 1 ? pods[0]!.status?.containerStatuses?.find((s) => s.name === container)?.state?.terminated : undefined;
  const statuses = pods.flatMap((p) => [...(p.status?.containerStatuses ?? []), ...(p.status?.initContainerStatuses ?? [])]);
  const failed = statuses.map((s) => s.state?.terminated).find((t) => t && t.exitCode !== 0);
  return { exitedOk: main?.exitCode === 0, ...(failed ? { failed } : {}) };
}

export function jobStateOf(job: V1Job | undefined, pods: V1Pod[], container: string, startedAt: string | undefined): JobState {
  if (!job) return { state: 'absent' };
  if (!startedAt || job.metadata?.annotations?.[ANNOTATIONS.upgradeStartedAt] !== startedAt) return { state: 'stale' };
  const pod = podOutcome(pods, container);
  if ((job.status?.succeeded ?? 0) > 0 || pod.exitedOk) return { state: 'succeeded' };
  const failed = job.status?.conditions?.find((c) => c.type === 'Failed' && c.status === 'True');
  if (!failed && !pod.failed) return { state: 'running' };
  const fromPod = pod.failed && reasonFromLog(pod.failed.message, { exitCode: pod.failed.exitCode, reason: pod.failed.reason });
  return { state: 'failed', message: fromPod ?? jobFailure(failed) };
}

const jobFailure = (c: V1JobCondition | undefined) => `${c?.reason ?? 'Failed'}: ${c?.message ?? 'no message'}`;

function jobState(ctx: ReconcileContext, kind: UpgradeJobKind, upgrade: MajorUpgradeStatus | undefined): JobState {
  const ns = ctx.cluster.metadata.namespace!;
  const name = upgradeJobName(ctx.cluster.metadata.name!, kind);
  const pods = ctx.cache.listForCluster<V1Pod>('Pod', ns, ctx.cluster.metadata.name!).filter((p) => p.metadata?.labels?.['job-name'] === name);
  return jobStateOf(ctx.cache.get<V1Job>('Job', ns, name), pods, kind, upgrade && upgradeActive(upgrade) ? upgrade.startedAt : undefined);
}


async function carryOut(ctx: ReconcileContext, agent: AgentClient, upgrade: MajorUpgradeStatus | undefined, action: UpgradeAction, stopped: { at?: Date }): Promise<void> {
  const { cluster } = ctx;
  const ns = cluster.metadata.namespace!;
  const name = cluster.metadata.name!;
  switch (action.kind) {
    case 'deleteJob':
      // Background propagation: the Job's pods go with it.
      await ctx.remove({ apiVersion: 'batch/v1', kind: 'Job', metadata: { name: upgradeJobName(name, action.job), namespace: ns } });
      return;
    case 'createJob':
      if ((await createIfMissing(ctx.clients.objects, upgradeJob(cluster, upgrade!, action.job))) === 'created') ctx.wrote(`Job/${upgradeJobName(name, action.job)}`);
      return;
    case 'createBackup': {
      const backup = { apiVersion: API_GROUP_VERSION, kind: BACKUP_KIND, metadata: ownedMeta(cluster, action.name, 'backup'), spec: { cluster: { name } } };
      if ((await createIfMissing(ctx.clients.objects, backup)) === 'created') ctx.wrote(`${BACKUP_KIND}/${action.name}`);
      return;
    }
    case 'postUpgrade':
      await callAgent(ctx, action.instance, 'post-upgrade', (ep) => agent.postUpgrade(ep, { fromMajor: majorOf(upgrade?.from)!, removeOld: upgrade?.mode !== 'copy' }));
      return;
    default:
      // Writes are refused from the fence on: the time the status records as the stop.
      if (action.kind === 'fence') stopped.at = new Date();
      await stopCall(ctx, agent, action.kind, action.instance);
  }
}

/** The plan's input from the pass's observation and the informer caches. */
function upgradeInput(ctx: ReconcileContext): MajorUpgradeInput {
  const { cluster, observed } = ctx;
  const previous = ctx.status.majorUpgrade;
  const primary = observed.instances.find((i) => i.name === observed.primary);
  const target = passBackupTarget(ctx);
  return {
    cluster: cluster.metadata.name!,
    specVersion: cluster.spec.version,
    generation: cluster.metadata.generation,
    running: ctx.status.version,
    toImage: instanceImage(cluster, ctx.config),
    liveImage: primary?.statefulSet?.spec?.template?.spec?.containers?.[0]?.image,
    mode: ctx.spec.majorUpgrade.mode,
    previous,
    primary: observed.primary,
    instances: stopPlanInstances(ctx),
    checkJob: jobState(ctx, 'check', previous),
    upgradeJob: jobState(ctx, 'upgrade', previous),
    archiveUrl: target?.url,
    backupPhase: previous?.backup ? ctx.cache.getBackup(cluster.metadata.namespace!, previous.backup)?.status?.phase : undefined,
    postUpgrade: observed.instances.find((i) => i.name === previous?.primary)?.agent?.postUpgrade ?? undefined,
    fenced: ctx.status.fencedInstances ?? [],
    now: new Date(),
  };
}

export function createMajorUpgradeReconciler(deps: { agent: AgentClient }): Reconciler {
  return {
    name: 'upgrade',
    statusFields: ['majorUpgrade', 'archiveSuffix'],
    async reconcile(ctx: ReconcileContext): Promise<ReconcilerResult> {
      const previous = ctx.status.majorUpgrade;
      const plan = planMajorUpgrade(upgradeInput(ctx));
      const stopped: { at?: Date } = {};
      for (const action of plan.actions) await carryOut(ctx, deps.agent, plan.status, action, stopped);
      if (stopped.at && plan.status?.phase === 'Stopping') plan.status.stoppedAt = stopped.at.toISOString();
      if (plan.event) await ctx.event(plan.event.type, plan.event.reason, plan.event.message);
      if (plan.status?.phase !== previous?.phase || plan.actions.length > 0) ctx.log.info({ phase: plan.status?.phase, actions: plan.actions.map((a) => a.kind) }, plan.condition.message);
      const archiveSuffix = plan.archiveSuffix ?? ctx.status.archiveSuffix;
      return {
        conditions: [plan.condition],
        status: { majorUpgrade: plan.status, archiveSuffix },
        ...(plan.requeueAfterMs ? { requeueAfterMs: plan.requeueAfterMs } : {}),
      };
    },
  };
}
