// POST /v1/post-upgrade: what an upgraded primary does once it accepts writes again, in the
// background (minutes on a large database; no operation of the queue waits for it):
//   1. the extension updates pg_upgrade asked for (update_extensions.sql, kept by the Job);
//   2. vacuumdb --all --analyze-in-stages: pg_upgrade carries no planner statistics over (before
//      PostgreSQL 18), and the first stage gives the planner usable ones within seconds;
//   3. in link mode, the old data directory goes (pgdata.old-<major> shares files with the new one
//      and can never run again); copy mode keeps it whole, as the user chose.
// Its progress is one sentence in the agent's status (postUpgrade), which the operator copies
// into status.majorUpgrade.postUpgrade.
import { existsSync } from 'node:fs';
import { rename } from 'node:fs/promises';
import { join } from 'node:path';
import { tempPassfile } from '../postgres/files.js';
import { removeOldCluster } from '../postgres/pg-upgrade.js';
import { runTool } from '../postgres/tool.js';
import { upgradeLayoutOf } from '../postgres/upgrade-layout.js';
import { errorText } from '../util/error-text.js';
import type { AgentState } from './agent-state.js';
import type { PostUpgradeRequest } from './api-types.js';
import { HttpError } from './requests.js';

export class PostUpgrade {
  report: string | null = null;
  private running = false;
  private done = false;

  constructor(private readonly a: AgentState) {}

  /** Starts the work unless it runs or ran already (the operator asks again after an agent restart: idempotent). */
  async start(req: PostUpgradeRequest): Promise<void> {
    if (this.running || this.done) return;
    if (!(await this.a.isPrimaryOnDisk()) || !this.a.pg.ready) throw new HttpError(409, 'post-upgrade work runs on a running primary only');
    this.running = true;
    const t0 = Date.now();
    void this.run(req)
      .then((did) => {
        this.done = true;
        this.report = `done in ${((Date.now() - t0) / 1000).toFixed(1)} s: ${did.join('; ')}`;
        this.a.log.info({ ms: Date.now() - t0 }, `post-upgrade work ${this.report}`);
      })
      .catch((err: unknown) => {
        this.report = `failed after ${((Date.now() - t0) / 1000).toFixed(1)} s: ${errorText(err)}`;
        this.a.log.error({ err: errorText(err) }, 'post-upgrade work failed');
      })
      .finally(() => (this.running = false));
  }

  private async run({ fromMajor, removeOld }: PostUpgradeRequest): Promise<string[]> {
    const { a } = this;
    const did: string[] = [];
    const conn = await a.local();
    const pass = await tempPassfile(conn.credentials);
    const tool = (name: string, args: string[]) =>
      runTool(join(a.deps.pgBin, name), ['-h', conn.host, '-p', String(conn.port), '-U', conn.credentials.username, ...args], { log: a.log, env: { PGPASSFILE: pass.path, PGAPPNAME: 'pgpilot-post-upgrade' } });
    try {
      const sqlFile = upgradeLayoutOf(a.layout.pgdata, a.layout.walDir).updateExtensions;
      if (existsSync(sqlFile)) {
        this.report = 'running: applying the extension updates pg_upgrade asked for (update_extensions.sql)';
        await tool('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', 'postgres', '-f', sqlFile]);
        await rename(sqlFile, `${sqlFile}.applied`);
        did.push('extension updates applied');
      }
      this.report = 'running: rebuilding planner statistics (vacuumdb --all --analyze-in-stages)';
      await tool('vacuumdb', ['--all', '--analyze-in-stages']);
      did.push('planner statistics rebuilt');
    } finally {
      await pass.remove();
    }
    if (removeOld) {
      this.report = `running: removing the data directory of PostgreSQL ${fromMajor}`;
      await removeOldCluster(a.layout.pgdata, a.layout.walDir, fromMajor);
      did.push(`the data directory of PostgreSQL ${fromMajor} removed`);
    } else {
      did.push(`the data directory of PostgreSQL ${fromMajor} kept at ${upgradeLayoutOf(a.layout.pgdata, a.layout.walDir).oldPgdataAside(fromMajor)} (copy mode: remove it when you no longer need it)`);
    }
    return did;
  }
}
