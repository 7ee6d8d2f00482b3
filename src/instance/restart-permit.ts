// A planned restart of the primary in place (the rollout's primary-first or `restart` update): by
// default every start of postgres on a former primary's data comes up read-only until the operator
// confirms the role (startup.ts), which a lowered max_connections & co. cannot survive (a hot
// standby refuses to start below the values its data directory was written with). So the
// operator, having first recorded in the cluster's status that it holds failover back until a
// deadline, asks the running primary for a permit: until a time shorter than that deadline, a
// start of postgres on this data directory is writable. Past it, the usual read-only start
// applies again — by then the operator may fail over, and an old primary must not come back
// writable. The permit is a file beside PGDATA (on the volume), so the new pod finds it.
import { readFileSync, rmSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import type { AgentState } from './agent-state.js';
import type { Layout } from './layout.js';
import { HttpError } from './requests.js';

/** Longer than any pod replacement should take; the operator asks for less. */
export const MAX_PERMIT_SECONDS = 600;

/** POST /v1/restart-permit: only a running, unfenced primary that holds its role gives one. */
export async function grantRestartPermit(a: AgentState, seconds: number, now = Date.now()): Promise<{ until: string }> {
  a.requireRunning('grant a restart permit');
  if (a.awaitingRole) throw new HttpError(409, 'cannot grant a restart permit: this instance runs read-only, waiting for the operator to confirm its role');
  if (!(await a.isPrimaryOnDisk())) throw new HttpError(409, 'cannot grant a restart permit: this instance is a replica (only a primary restarts writable)');
  const until = now + seconds * 1000;
  await writeFile(a.layout.restartPermit, String(until), { mode: 0o600 });
  a.log.info({ until: new Date(until).toISOString() }, 'restart permit: a start of postgres until then comes up writable (a planned restart of the primary)');
  return { until: new Date(until).toISOString() };
}

/**
 * Whether a start now may be writable (synchronous: the start guard runs inside the spawn). An
 * expired or unreadable permit is removed and counts as none.
 */
export function restartPermitted(layout: Pick<Layout, 'restartPermit'>, now = Date.now()): boolean {
  let until: number;
  try {
    until = Number(readFileSync(layout.restartPermit, 'utf8').trim());
  } catch {
    return false;
  }
  if (Number.isFinite(until) && now < until) return true;
  rmSync(layout.restartPermit, { force: true });
  return false;
}
