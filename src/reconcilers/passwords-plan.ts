// When to rotate which role's password (pure; passwords.ts does the calls). A role's password is
// applied when status.passwords records the Secret (name and resourceVersion) it stands at now;
// any other version — a new password, or one never recorded, as on a fresh cluster — is applied
// again (the agent changes nothing when PostgreSQL has that password already). The superuser's
// change needs every running replica's agent (each holds its logins across the change); the app
// role's needs only the primary.
import type { AppliedPassword, ClusterStatus } from '../api/cluster.js';
import type { PasswordRole } from '../instance/api-types.js';
import type { ConditionInput } from './conditions.js';

export interface RoleSecret {
  role: PasswordRole;
  secret: string;
  /** undefined: the Secret does not exist (install reports that). */
  resourceVersion?: string;
}

export interface RotationInstance {
  name: string;
  /** Its agent answered in this pass's observation. */
  reachable: boolean;
  /** Its postgres runs (a replica whose postgres is down logs in with nothing). */
  running: boolean;
  role?: string;
}

export interface RotationInput {
  secrets: RoleSecret[];
  recorded: ClusterStatus['passwords'];
  /** The primary the pass works from. */
  primary?: string;
  instances: RotationInstance[];
}

export type RotationPlan =
  | { kind: 'done' }
  | { kind: 'wait'; reason: string; message: string; pending: RoleSecret[] }
  | { kind: 'rotate'; pending: RoleSecret[]; primary: string; replicas: string[] };

export function pendingRoles(secrets: RoleSecret[], recorded: ClusterStatus['passwords']): RoleSecret[] {
  return secrets.filter((s) => {
    if (s.resourceVersion === undefined) return false;
    const r: AppliedPassword | undefined = recorded?.[s.role];
    return r?.secret !== s.secret || r.resourceVersion !== s.resourceVersion;
  });
}

export function planRotation(input: RotationInput): RotationPlan {
  const pending = pendingRoles(input.secrets, input.recorded);
  if (pending.length === 0) return { kind: 'done' };
  const primary = input.instances.find((i) => i.name === input.primary);
  if (!primary || !primary.reachable || !primary.running || primary.role !== 'primary') {
    const why = !primary ? 'there is no primary yet' : !primary.reachable ? `the agent of the primary ${primary.name} does not answer` : `the primary ${primary.name} is not running as a primary`;
    return { kind: 'wait', reason: 'WaitingForPrimary', message: `Password change of ${roleList(pending)} waits: ${why}.`, pending };
  }
  const replicas = input.instances.filter((i) => i.name !== primary.name && i.running);
  if (pending.some((p) => p.role === 'superuser')) {
    const silent = replicas.filter((i) => !i.reachable).map((i) => i.name);
    if (silent.length > 0) {
      return { kind: 'wait', reason: 'AgentUnreachable', message: `The superuser password change waits for the agents of ${silent.join(', ')}, which do not answer: each must hold its logins across the change.`, pending };
    }
  }
  return { kind: 'rotate', pending, primary: primary.name, replicas: replicas.map((i) => i.name) };
}

function roleList(pending: RoleSecret[]): string {
  return pending.map((p) => `${p.role} (Secret ${p.secret})`).join(' and ');
}

/** The PasswordsApplied condition after a pass: done, waiting (why), or failed steps. */
export function passwordsCondition(plan: RotationPlan, failures: Array<{ role: PasswordRole; reason: string; message: string }>): ConditionInput {
  const type = 'PasswordsApplied' as const;
  if (plan.kind === 'wait') return { type, status: 'False', reason: plan.reason, message: plan.message };
  const first = failures[0];
  if (first) return { type, status: 'False', reason: first.reason, message: failures.map((f) => f.message).join(' ') };
  return { type, status: 'True', reason: 'PasswordsApplied', message: "PostgreSQL has the password of each role's Secret (superuser, app)." };
}

/** Why an agent refused a step, as a condition reason: a mounted file that lags is expected, the rest is not. */
export function stepFailureReason(status: number | 'unreachable'): string {
  if (status === 409) return 'WaitingForMountedSecret';
  if (status === 503) return 'WaitingForPrimary';
  if (status === 'unreachable') return 'AgentUnreachable';
  return 'PasswordChangeFailed';
}
