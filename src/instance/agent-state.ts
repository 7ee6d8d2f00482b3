// What the instance agent knows, shared by its parts (startup.ts, role-changes.ts, follow.ts,
// self-isolation.ts, config-watch.ts, instance-agent.ts): its settings and data directory layout,
// the postgres process it supervises, the phase (phase.ts), the operation queue (operations.ts),
// the fence, a restore in progress, and how the agent logs in to its own server.
import { join } from 'node:path';
import { existsSync, readFileSync } from 'node:fs';
import type { Logger } from '../runtime/logger.js';
import { readSystemIdentifier } from '../postgres/control-file.js';
import { exists, readCredentials, removeFile, touch } from '../postgres/files.js';
import { Passwords } from './passwords.js';
import * as sql from '../postgres/sql.js';
import { Archiving, WalUsageProbe } from './archiving.js';
import { CustomQueryFiles } from './custom-queries.js';
import type { AgentSettings } from './env.js';
import { errorText } from '../util/error-text.js';
import { layoutOf, postgresArgs, restoreHbaFile, type Layout } from './layout.js';
import { TLS_FILES, TLS_SERVER_DIR } from '../api/tls.js';
import { libpqTlsFromEnv, tlsFromEnv, type LibpqTls, type TlsVerify } from '../postgres/tls-client.js';

/** A pg_hba.conf line admitting replication by client certificate (postgres-config.ts renderPgHba with TLS required). */
const CERT_REPLICATION = /^hostssl\s+replication\s+\S+\s+\S+\s+cert\s*$/m;
import { Operations } from './operations.js';
import { PhaseState } from './phase.js';
import { PostgresProcess } from './postgres-process.js';
import { HttpError } from './requests.js';
import type { RestoreBootstrap } from './restore-bootstrap.js';

export interface AgentDeps {
  settings: AgentSettings;
  pgBin: string;
  socketDir: string;
  log: Logger;
  serverLog: Logger;
  /** Where S3 credentials named by the archive locations are read (default process.env). */
  env?: NodeJS.ProcessEnv;
}

/** The walreceiver's error when the primary no longer has WAL this replica needs. */
const WAL_REMOVED = /requested WAL segment \S+ has already been removed/;

/** libpq's invalid_authorization_specification: e.g. role "x" does not exist. */
const missingRole = (err: unknown) => (err as { code?: string }).code === '28000' && /does not exist/.test(errorText(err));

export class AgentState {
  readonly settings: AgentSettings;
  readonly log: Logger;
  readonly layout: Layout;
  readonly pg: PostgresProcess;
  readonly phase: PhaseState;
  readonly ops: Operations;
  /** WAL archiving (PGPILOT_BACKUP_LOCATION), started with postgres. */
  readonly archiving: Archiving | undefined;
  readonly walUsage: WalUsageProbe;
  /** The exporter's own query files (PGPILOT_CUSTOM_QUERIES), when it has some and serves /metrics. */
  readonly customQueries: CustomQueryFiles | undefined;
  /** Aborted at shutdown: a restore in progress gives up. */
  readonly aborter = new AbortController();
  fenced = false;
  lastError: string | null = null;
  /** Set by shutdown: no operation and no start of postgres begins after it. */
  stopping = false;
  /** The restore bootstrap of this agent's life (status), if any. */
  restore: RestoreBootstrap | undefined;
  /** During a restore: the temporary hba (unix socket, trust) and the role the agent logs in as. */
  restoreHba = false;
  restoreLogin: string | undefined;
  /** The next spawn may be a writable primary (set by a bootstrap's own start, consumed by it). */
  writableOnce = false;
  /** Settings this start of postgres takes above the configuration (standby-minimums.ts). */
  startOverrides: Record<string, string> = {};
  /** Started read-only on a former primary's data: waiting for promote or follow. */
  awaitingRole = false;
  /** PGDATA holds another major's data than the binaries run (major-version.ts). */
  staleData: { kind: 'older' | 'newer'; data: number; binaries: number } | undefined;
  /** Why this replica cannot catch up by streaming (see InstanceStatus.cannotCatchUp). */
  cannotCatchUp: string | null = null;
  /** The superuser password this server accepts now, and the steps of a rotation (passwords.ts). */
  readonly passwords: Passwords;

  /** `beforeSpawn`: the start guard (startup.ts), run before every spawn of postgres. */
  constructor(
    readonly deps: AgentDeps,
    beforeSpawn: (state: AgentState) => void,
  ) {
    this.settings = deps.settings;
    this.log = deps.log;
    this.layout = layoutOf(this.settings);
    this.phase = new PhaseState(deps.log);
    this.passwords = new Passwords({ secretsDir: this.settings.secretsDir, server: async () => ({ host: this.settings.podIp, port: this.settings.pgPort, tls: await this.tls() }), log: deps.log });
    this.ops = new Operations(() => this.refuseIfStopping());
    this.walUsage = new WalUsageProbe(this.layout.walPath);
    this.customQueries = this.settings.metricsEnabled && this.settings.customQueries.length > 0 ? new CustomQueryFiles(this.settings.customQueries, deps.log) : undefined;
    this.pg = new PostgresProcess({
      binary: join(deps.pgBin, 'postgres'),
      args: () =>
        postgresArgs(this.settings, deps.socketDir, {
          ...(this.restoreHba ? { hbaFile: restoreHbaFile(this.layout) } : {}),
          overrides: this.startOverrides,
          noServerCertificate: !existsSync(join(TLS_SERVER_DIR, TLS_FILES.cert)),
        }),
      log: deps.log,
      serverLog: deps.serverLog,
      probe: () => this.probe(),
      beforeSpawn: () => beforeSpawn(this),
    });
    this.pg.on('line', (line) => {
      if (WAL_REMOVED.test(line)) this.cannotCatchUp = line.replace(/^.*?(FATAL|ERROR): +/, '');
    });
    if (this.settings.backup) {
      this.archiving = new Archiving({
        backup: this.settings.backup,
        layout: this.layout,
        log: deps.log,
        env: deps.env ?? process.env,
        identity: async () => ({
          systemIdentifier: await readSystemIdentifier(this.layout.pgdata),
          cluster: this.settings.cluster,
          namespace: this.settings.namespace,
        }),
      });
    }
    this.pg.on('exit', (_c, _s, expected) => {
      if (!expected) this.phase.setPhase('Starting', 'postgres exited unexpectedly', ['Running']);
    });
    this.pg.on('ready', () => {
      this.phase.setPhase('Running', 'postgres accepts connections', ['Starting']);
    });
  }

  /** How the agent connects to its own server: as the superuser over TCP, or during a restore over the socket. */
  async local(): Promise<sql.ConnectOptions> {
    if (this.restoreHba) {
      // The restored database does not know this cluster's passwords yet: trust on the socket.
      const superuser = await readCredentials(this.settings.secretsDir, 'superuser');
      return { host: this.deps.socketDir, port: this.settings.pgPort, credentials: { username: this.restoreLogin ?? superuser.username, password: '' } };
    }
    return { host: this.settings.podIp, port: this.settings.pgPort, credentials: await this.passwords.superuser(), tls: await this.tls() };
  }

  /**
   * libpq TLS for what connects to another instance (clone, primary_conninfo, pg_rewind):
   * verify-full and the replication client certificate once the cluster's pg_hba.conf admits
   * replication by certificate only (TLS required). Before that — a cluster that ran before TLS,
   * whose instances may not all serve TLS yet during the operator upgrade's rollout, or one with
   * tls.required false — as before: libpq negotiates TLS where offered, the password logs in.
   */
  replicationTls(): LibpqTls | undefined {
    const t = libpqTlsFromEnv(this.deps.env ?? process.env);
    if (!t) return undefined;
    let hba = '';
    try {
      hba = readFileSync(join(this.settings.configDir, 'pg_hba.conf'), 'utf8');
    } catch {
      return undefined;
    }
    return CERT_REPLICATION.test(hba) ? t : undefined;
  }

  /** TLS of the agent's TCP connections, to its own server and to the primary's (undefined: a pod made before TLS). */
  tls(): Promise<TlsVerify | undefined> {
    return tlsFromEnv(this.deps.env ?? process.env);
  }

  /** One readiness probe. During a restore, a source without our superuser's role: log in as postgres. */
  private async probe(): Promise<boolean> {
    const o = await this.local();
    try {
      await sql.withClient({ ...o, connectTimeoutMs: 1000, queryTimeoutMs: 2000 }, (c) => c.query('SELECT 1'));
      return true;
    } catch (err) {
      this.noteLoginFailure(err);
      return false;
    }
  }

  noteLoginFailure(err: unknown): void {
    if (this.restoreHba && missingRole(err) && this.restoreLogin === undefined) {
      this.log.warn({ err: errorText(err) }, 'restore: the source has no role of this name; using its postgres role until the roles are set');
      this.restoreLogin = 'postgres';
    }
  }

  /** Switches the postgres command line and the agent's logins to the restore's temporary hba, or back. */
  useRestoreHba(on: boolean): void {
    this.restoreHba = on;
    if (!on) this.restoreLogin = undefined;
  }

  async hasData(): Promise<boolean> {
    return exists(this.layout.pgVersionFile);
  }

  /** A database whose data directory is a primary's (no standby.signal). */
  async isPrimaryOnDisk(): Promise<boolean> {
    return (await this.hasData()) && !(await exists(this.layout.standbySignal));
  }

  async startArchiving(): Promise<void> {
    try {
      await this.archiving?.start();
    } catch (err) {
      this.log.error({ err: errorText(err) }, 'cannot start WAL archiving');
    }
  }

  /** Records a failure for status (lastError) and the log. */
  fail(what: string, err: unknown): void {
    this.lastError = `${what}: ${errorText(err)}`;
    this.log.error({ err: errorText(err) }, `${what} failed`);
  }

  /** Nothing new begins once the agent is shutting down. */
  refuseIfStopping(): void {
    if (this.stopping) throw new HttpError(409, 'the agent is shutting down');
  }

  requireRunning(what: string): void {
    if (this.fenced) throw new HttpError(409, `cannot ${what}: the instance is fenced`);
    if (!this.pg.ready) throw new HttpError(409, `cannot ${what}: postgres is not running (phase ${this.phase.current})`);
  }

  /** Fenced: postgres must not run (the marker keeps it so across an agent restart). */
  async raiseFence(): Promise<void> {
    this.fenced = true;
    await touch(this.layout.fencedMarker);
  }

  async liftFence(msg: string): Promise<void> {
    if (!this.fenced) return;
    this.log.info(msg);
    await removeFile(this.layout.fencedMarker);
    this.fenced = false;
  }
}
