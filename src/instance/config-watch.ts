// The mounted configuration (the cluster's ConfigMap: postgresql.conf, pg_hba.conf). The kubelet
// updates it in place (an atomic symlink swap) and postgres reads it straight from there
// (layout.ts postgresArgs): a change needs only pg_reload_conf(), which this watch (a poll of a
// hash of both files) and POST /v1/reload do. Its poll also restarts a replica that started with
// settings above the configuration once it may (standby-minimums.ts). The server certificate
// Secret's files (TLS_SERVER_DIR) count too: a renewal is one pg_reload_conf() away, which makes
// PostgreSQL read the certificate, key and CA files again (new connections get the new ones).
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as sql from '../postgres/sql.js';
import type { AgentState } from './agent-state.js';
import { errorText } from '../util/error-text.js';
import { settleStandbyMinimums } from './standby-minimums.js';
import { TLS_FILES, TLS_SERVER_DIR } from '../api/tls.js';
import { parseConninfo } from '../postgres/conninfo.js';
import { readCredentials } from '../postgres/files.js';
import { conninfoFor } from './replication.js';

const CONFIG_POLL_MS = 2000;
const FILES = ['postgresql.conf', 'pg_hba.conf'];
const TLS_PATHS = [TLS_FILES.cert, TLS_FILES.key, TLS_FILES.ca].map((f) => join(TLS_SERVER_DIR, f));

/**
 * sha256 of the configuration files in `configDir` and of the certificate files in `tlsPaths`
 * (absent ones count as empty: a pod made before TLS has none); undefined while a configuration
 * file cannot be read.
 */
export async function hashConfig(configDir: string, tlsPaths: readonly string[] = TLS_PATHS): Promise<string | undefined> {
  try {
    const h = createHash('sha256');
    for (const f of FILES) h.update(await readFile(join(configDir, f))).update('\0');
    for (const p of tlsPaths) h.update(await readFile(p).catch(() => Buffer.alloc(0))).update('\0');
    return h.digest('hex');
  } catch {
    return undefined;
  }
}

export class ConfigWatch {
  /** The hash of what postgres last loaded (or was started with). */
  private loaded: string | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly a: AgentState) {}

  start(): void {
    const onError = (err: unknown) => this.a.log.warn({ err: errorText(err) }, 'configuration reload failed');
    void this.tick().catch(onError);
    this.timer = setInterval(() => void this.tick().catch(onError), CONFIG_POLL_MS);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /**
   * POST /v1/reload: everything the agent and postgres read their configuration from, now,
   * whatever the hash says — postgresql.conf, pg_hba.conf and postgresql.auto.conf through
   * pg_reload_conf() (postgres reads the mounted ConfigMap itself), the custom queries'
   * ConfigMaps at their next use. The mounted Secrets (credentials, the API token) are read at
   * every use already.
   */
  async reload(): Promise<void> {
    this.a.requireRunning('reload');
    this.a.customQueries?.invalidate();
    await this.reloadConf();
    this.loaded = await hashConfig(this.a.settings.configDir);
    this.a.log.info('configuration reloaded');
  }

  private async tick(): Promise<void> {
    const h = await hashConfig(this.a.settings.configDir);
    if (h === undefined) return;
    if (this.loaded === undefined) {
      this.loaded = h;
      return;
    }
    if (h !== this.loaded && this.a.pg.ready) {
      this.loaded = h;
      this.a.log.info('the mounted configuration or server certificate changed; reloading');
      await this.reloadConf();
      // Not while an operation (follow, a clone) rewrites primary_conninfo itself.
      if (!this.a.ops.busy) await this.a.ops.exclusive(() => this.realignReplication());
    }
    // A replica started above its configuration restarts once pg_control allows it.
    await settleStandbyMinimums(this.a);
  }

  /**
   * A replica's primary_conninfo follows whether replication logs in by certificate (pg_hba.conf's
   * cert line, AgentState.replicationTls): when spec.tls.required changes, a walreceiver with the
   * other kind of connection would be refused at its next reconnect. Rewritten (the walreceiver
   * reconnects at once), for the same primary.
   */
  private async realignReplication(): Promise<void> {
    const tls = this.a.replicationTls();
    await sql.withClient(await this.a.local(), async (c) => {
      if (!(await sql.isInRecovery(c))) return;
      const current = (await c.query<{ v: string }>("SELECT current_setting('primary_conninfo') AS v")).rows[0]?.v ?? '';
      if (!current) return;
      const p = parseConninfo(current);
      if ((p.sslmode === 'verify-full') === !!tls) return;
      const host = p.hostaddr || p.host;
      if (!host) return;
      const replication = await readCredentials(this.a.settings.secretsDir, 'replication');
      await sql.setPrimaryConninfo(c, conninfoFor(this.a.layout, { host, port: Number(p.port || 5432) }, replication.username, this.a.settings.instance, tls));
      this.a.log.info({ primary: host, certificate: !!tls }, tls ? 'replication now logs in with the client certificate (TLS required)' : 'replication now logs in by password (TLS not required)');
    });
  }

  private async reloadConf(): Promise<void> {
    await sql.withClient(await this.a.local(), (c) => c.query('SELECT pg_reload_conf()'));
  }
}
