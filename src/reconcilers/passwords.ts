// passwords: a changed superuser or app Secret (generated or the user's own) changes the role's
// password in PostgreSQL, with no failed login and no restart (passwords-plan.ts decides when;
// src/instance/passwords.ts does it). The superuser's change: every running replica's agent holds
// its logins, the primary's agent sets the new password (a SCRAM verifier, in a session that logs
// nothing), then each replica switches once it has replayed the change. Every agent first checks
// that its mounted Secret shows the new password (by digest): the kubelet updates Secret volumes
// up to a minute after the API object, and until then the change waits (409, retried soon).
// Each call is short and bounded; the pass never waits for a mount.
import type { V1Secret } from '@kubernetes/client-node';
import { secretNames } from '../builders/secrets.js';
import { AgentError, type AgentClient, type AgentEndpoint } from '../instance/agent-client.js';
import type { PasswordRole } from '../instance/api-types.js';
import { passwordDigest } from '../postgres/scram.js';
import { ignoreNotFound } from '../runtime/api-status.js';
import { rfc3339 } from '../runtime/time.js';
import { errorText } from '../util/error-text.js';
import { passwordsCondition, planRotation, stepFailureReason, type RoleSecret } from './passwords-plan.js';
import { agentEndpoint } from './observe.js';
import type { ReconcileContext, Reconciler, ReconcilerResult } from './types.js';
import type { AppliedPassword } from '../api/cluster.js';

/** A change that waits (a mount that lags, an agent that does not answer) is tried again this soon. */
const RETRY_MS = 5000;
/**
 * The operator watches only the Secrets it made: a user's own Secret (spec.superuserSecret,
 * spec.bootstrap.initdb.secret) is looked at again this often (a read, no write).
 */
const USER_SECRET_CHECK_MS = 60_000;
/** A replica's hold ends by itself after this long, should this pass not release it. */
const HOLD_MS = 8000;

class StepFailed extends Error {
  constructor(
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

async function secretOf(ctx: ReconcileContext, name: string, withData: boolean): Promise<V1Secret | undefined> {
  const ns = ctx.cluster.metadata.namespace!;
  // The cache holds the generated Secrets (without data); a user's own is read from the API.
  const cached = withData ? undefined : ctx.cache.get<V1Secret>('Secret', ns, name);
  return cached ?? (await ignoreNotFound(ctx.clients.core.readNamespacedSecret({ name, namespace: ns })));
}

export function createPasswordsReconciler(deps: { agent: AgentClient }): Reconciler {
  const step = async (ctx: ReconcileContext, instance: string, what: string, call: (ep: AgentEndpoint) => Promise<unknown>) => {
    const ep = agentEndpoint(ctx.observed, instance);
    if (!ep) throw new StepFailed('AgentUnreachable', `${instance} has no running pod for the ${what}.`);
    try {
      return await call(ep);
    } catch (err) {
      throw new StepFailed(err instanceof AgentError ? stepFailureReason(err.status) : 'PasswordChangeFailed', `${what} on ${instance}: ${errorText(err)}.`);
    }
  };

  /** One role's change; answers whether PostgreSQL's password changed (false: it was in place). */
  const rotate = async (ctx: ReconcileContext, role: PasswordRole, digest: string, primary: string, replicas: string[]): Promise<boolean> => {
    if (role === 'app') {
      const r = (await step(ctx, primary, 'app password change', (ep) => deps.agent.password(ep, { role, step: 'apply', digest }))) as { changed?: boolean };
      return !!r.changed;
    }
    const held: string[] = [];
    let lsn: string | undefined;
    try {
      await Promise.all(
        replicas.map(async (r) => {
          await step(ctx, r, 'hold of superuser logins', (ep) => deps.agent.password(ep, { role, step: 'hold', digest, holdMs: HOLD_MS }));
          held.push(r);
        }),
      );
      const r = (await step(ctx, primary, 'superuser password change', (ep) => deps.agent.password(ep, { role, step: 'apply', digest }))) as { changed?: boolean; lsn?: string };
      lsn = r.lsn;
      return !!r.changed;
    } finally {
      // Released whatever happened (a failed change releases with no position: nothing to wait for).
      const released = await Promise.allSettled(held.map((r) => step(ctx, r, 'release of superuser logins', (ep) => deps.agent.password(ep, { role, step: 'release', digest, ...(lsn ? { lsn } : {}) }))));
      released.forEach((s, i) => s.status === 'rejected' && ctx.log.warn({ instance: held[i], err: errorText(s.reason) }, 'release of superuser logins failed; the hold ends by itself'));
    }
  };

  /** One pending role: its Secret's password set in PostgreSQL, recorded, and an Event when it changed. */
  const applyRole = async (ctx: ReconcileContext, p: RoleSecret, primary: string, replicas: string[]): Promise<AppliedPassword> => {
    const secret = await secretOf(ctx, p.secret, true);
    const password = secret?.data?.password ? Buffer.from(secret.data.password, 'base64').toString('utf8') : undefined;
    if (!secret || !password) throw new StepFailed('SecretInvalid', `Secret ${p.secret} has no "password" key: the ${p.role} password stays as it is.`);
    const changed = await rotate(ctx, p.role, passwordDigest(password), primary, replicas);
    const version = secret.metadata!.resourceVersion!;
    if (changed) {
      ctx.log.info({ role: p.role, secret: p.secret, resourceVersion: version }, 'password rotated');
      await ctx.event('Normal', 'PasswordRotated', `The ${p.role} password of PostgreSQL is now the one in Secret ${p.secret} (resourceVersion ${version}); the agents log in with it.`);
    }
    return { secret: p.secret, resourceVersion: version, appliedAt: rfc3339(new Date()) };
  };

  return {
    name: 'passwords',
    statusFields: ['passwords'],
    async reconcile(ctx: ReconcileContext): Promise<ReconcilerResult> {
      const names = secretNames(ctx.cluster);
      const secrets: RoleSecret[] = await Promise.all(
        (['superuser', 'app'] as const).map(async (role) => ({ role, secret: names[role], resourceVersion: (await secretOf(ctx, names[role], false))?.metadata?.resourceVersion })),
      );
      const plan = planRotation({
        secrets,
        recorded: ctx.status.passwords,
        primary: ctx.observed.primary,
        instances: ctx.observed.instances.map((i) => ({ name: i.name, reachable: !!i.agent, running: !!i.agent?.running, role: i.agent?.role })),
      });
      const applied = { ...ctx.status.passwords };
      const failures: Array<{ role: PasswordRole; reason: string; message: string }> = [];
      if (plan.kind === 'rotate') {
        // One role at a time: the app role's change logs in as the superuser.
        for (const p of plan.pending) {
          try {
            applied[p.role] = await applyRole(ctx, p, plan.primary, plan.replicas);
          } catch (err) {
            if (!(err instanceof StepFailed)) throw err;
            failures.push({ role: p.role, reason: err.reason, message: `The ${p.role} password change waits: ${err.message}` });
          }
        }
        if (failures.length > 0) ctx.log.info({ failures }, 'password change waits; trying again soon');
      }
      const userSecrets = !!ctx.cluster.spec.superuserSecret || !!ctx.cluster.spec.bootstrap?.initdb?.secret;
      const requeueAfterMs = plan.kind === 'wait' || failures.length > 0 ? RETRY_MS : userSecrets ? USER_SECRET_CHECK_MS : undefined;
      return {
        status: { passwords: Object.keys(applied).length > 0 ? applied : undefined },
        conditions: [passwordsCondition(plan, failures)],
        ...(requeueAfterMs ? { requeueAfterMs } : {}),
      };
    },
  };
}
