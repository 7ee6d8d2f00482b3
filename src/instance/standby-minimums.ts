// A replica whose configuration is lower than the max_connections & co. its data was written
// with (pg_control) refuses to start ("recovery aborted because of insufficient parameter
// settings") and could never replay the primary's change that lowers them. That happens when a
// replica restarts after the cluster's configuration was lowered but before it replayed the
// primary's restart with the new values — the rollout's own step on a lagging replica, or any
// crash in between. So every start of a replica takes the recorded value where it is higher
// (as Patroni does), and once pg_control has come down to the configuration, the agent restarts
// that replica once to apply it. Until then the instance reports `provisionalSettings`, and the
// rollout does not count it as settled.
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parseControlMinimums } from '../postgres/control-file.js';
import { configuredStandbyMinimums, standbyStartOverrides } from '../postgres/restart-settings.js';
import { errorText } from '../util/error-text.js';
import type { AgentState } from './agent-state.js';
import { startPostgres } from './startup.js';

const CONTROLDATA_TIMEOUT_MS = 5000;
const ENV = { ...process.env, LC_ALL: 'C', LANG: 'C' };

const configured = (a: AgentState) => configuredStandbyMinimums(readFileSync(join(a.settings.configDir, 'postgresql.conf'), 'utf8'));

/** Before every spawn (synchronous, after the start guard): the overrides a replica start needs. */
export function applyStandbyMinimums(a: AgentState): void {
  a.startOverrides = {};
  if (!existsSync(a.layout.standbySignal)) return;
  try {
    const control = parseControlMinimums(execFileSync(join(a.deps.pgBin, 'pg_controldata'), ['-D', a.layout.pgdata], { env: ENV, timeout: CONTROLDATA_TIMEOUT_MS, encoding: 'utf8' }));
    a.startOverrides = standbyStartOverrides(control, configured(a));
  } catch (err) {
    a.log.warn({ err: errorText(err) }, 'cannot compare pg_control with the configuration; starting with the configuration as it is');
    return;
  }
  if (Object.keys(a.startOverrides).length > 0) {
    a.log.warn({ settings: a.startOverrides }, "this replica's data was last written by a primary with higher settings than configured: starting with those until it has replayed the primary's change, then restarting with the configured ones");
  }
}

/**
 * From the configuration watch: a replica started with overrides restarts once pg_control allows
 * the configured values (one exclusive operation, so no role change runs meanwhile).
 */
export async function settleStandbyMinimums(a: AgentState): Promise<void> {
  if (Object.keys(a.startOverrides).length === 0 || !a.pg.ready || a.ops.current()?.state === 'running') return;
  const { stdout } = await promisify(execFile)(join(a.deps.pgBin, 'pg_controldata'), ['-D', a.layout.pgdata], { env: ENV, timeout: CONTROLDATA_TIMEOUT_MS, encoding: 'utf8' });
  if (Object.keys(standbyStartOverrides(parseControlMinimums(stdout), configured(a))).length > 0) return;
  a.log.info({ settings: a.startOverrides }, "the replica has replayed the primary's lower settings: restarting to apply the configured ones");
  await a.ops.exclusive(async () => {
    await a.pg.stopWithin(a.settings.stopTimeoutSeconds * 1000, 'fast');
    await startPostgres(a);
  });
}
