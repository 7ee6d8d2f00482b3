// Role passwords without a failed login. The agent logs in to its own server as the superuser;
// when the superuser Secret changes, the mounted file and the server's pg_authid change at
// different moments (the kubelet rewrites the file up to a minute after the API object changes,
// and the ALTER ROLE reaches a replica by WAL replay). So the agent keeps the password its server
// accepts ("active") apart from the mounted one, and switches only when the server has the new
// one:
//  - while they differ, every login first asks the server's stored verifier (pg_authid, over a
//    connection opened earlier with the active password) which of the two it accepts;
//  - the operator makes the change race-free: it asks every replica to hold its logins ("hold":
//    it checks its mounted file shows the new password, by digest), then the primary to set it
//    ("apply": ALTER ROLE with a SCRAM verifier computed here, its own logins held meanwhile), then
//    each replica to wait for the replay of that commit and switch ("release"). A hold ends by
//    itself after a few seconds, so an operator that goes away holds nothing back.
// The application role needs no hold: no agent logs in with it.
import type { TlsVerify } from '../postgres/tls-client.js';
import type pg from 'pg';
import { passwordDigest, passwordMatches, scramVerifier, verifierComputable } from '../postgres/scram.js';
import { readCredentials, type Credentials } from '../postgres/files.js';
import { compareLsn } from '../postgres/lsn.js';
import * as sql from '../postgres/sql.js';
import type { Endpoint } from '../postgres/sql.js';
import type { Logger } from '../runtime/logger.js';
import { errorText } from '../util/error-text.js';
import type { PasswordRequest, PasswordResult } from './api-types.js';
import { HttpError } from './requests.js';

/** A hold the operator does not release ends by itself after this long. */
export const MAX_HOLD_MS = 10_000;
/** How long a release waits for the replica to replay the primary's ALTER ROLE. */
const REPLAY_WAIT_MS = 3000;

export interface PasswordDeps {
  secretsDir: string;
  /** Where the agent's own server listens (the pod IP and port). */
  /** The server's address, with the TLS its connections use (AgentState.tls). */
  server: () => Promise<Endpoint & { tls?: TlsVerify }>;
  log: Logger;
  sleep?: (ms: number) => Promise<void>;
}

interface Hold {
  released: Promise<void>;
  release: () => void;
  timer: NodeJS.Timeout;
}

export class Passwords {
  private active?: Credentials;
  private control?: pg.Client;
  private hold?: Hold;
  /** The last verifier check: [stored verifier, password] → match (PBKDF2 is not free). */
  private checked?: { stored: string | null; password: string; match: boolean };

  constructor(private readonly d: PasswordDeps) {}

  /** The superuser credentials for a login to this instance's server now. */
  async superuser(): Promise<Credentials> {
    while (this.hold) await this.hold.released;
    const mounted = await readCredentials(this.d.secretsDir, 'superuser');
    if (!this.active || this.active.username !== mounted.username || this.active.password === mounted.password) return this.adopt(mounted);
    // The mounted password changed and the server may not have it yet: ask the server.
    return (await this.serverAccepts(mounted)) ? this.adopt(mounted) : this.active;
  }

  /** One step of a rotation (see the top of this file). */
  async handle(req: PasswordRequest): Promise<PasswordResult> {
    if (req.role === 'app') {
      if (req.step !== 'apply') throw new HttpError(400, 'the app role needs only the apply step');
      return this.applyApp(req.digest);
    }
    if (req.step === 'hold') return this.holdLogins(req.digest, req.holdMs ?? MAX_HOLD_MS);
    if (req.step === 'apply') return this.applySuperuser(req.digest);
    return this.releaseLogins(req.lsn);
  }

  private adopt(c: Credentials): Credentials {
    if (this.active && this.active.password !== c.password) this.d.log.info({ user: c.username }, 'the server accepts the mounted superuser password: logging in with it from now on');
    this.active = c;
    this.closeControl();
    return c;
  }

  /** The mounted file for `kind`, which must show the password the operator read from the Secret. */
  private async mountedMatching(kind: 'superuser' | 'app', digest: string): Promise<Credentials> {
    const c = await readCredentials(this.d.secretsDir, kind);
    if (passwordDigest(c.password) !== digest) throw new HttpError(409, `the mounted ${kind} Secret does not show the new password yet (the kubelet updates Secret volumes with a delay)`);
    return c;
  }

  private async openControl(): Promise<pg.Client> {
    if (!this.control) {
      const creds = this.active ?? (await readCredentials(this.d.secretsDir, 'superuser'));
      const c = await sql.connect({ ...(await this.d.server()), credentials: creds, connectTimeoutMs: 2000, queryTimeoutMs: 5000, applicationName: 'pgpilot-passwords' });
      c.on('end', () => {
        if (this.control === c) this.control = undefined;
      });
      this.control = c;
    }
    return this.control;
  }

  private closeControl(): void {
    const c = this.control;
    this.control = undefined;
    void c?.end().catch(() => undefined);
  }

  /** Whether the server's stored verifier accepts `c` (false when it cannot be asked). */
  private async serverAccepts(c: Credentials): Promise<boolean> {
    try {
      const stored = await sql.storedPassword(await this.openControl(), c.username);
      if (this.checked?.stored !== stored || this.checked.password !== c.password) this.checked = { stored, password: c.password, match: passwordMatches(stored, c.password, c.username) };
      return this.checked.match;
    } catch (err) {
      this.closeControl();
      if ((err as { code?: string }).code === '28P01') {
        // The server changed while nothing watched (postgres was down, or the agent restarted mid-rotation).
        this.d.log.warn({ err: errorText(err) }, 'the server refuses the superuser password it accepted last: using the mounted one');
        return true;
      }
      this.d.log.warn({ err: errorText(err) }, 'cannot read the stored superuser password; logging in with the one the server accepted last');
      return false;
    }
  }

  private startHold(ms: number): void {
    this.endHold();
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    const timer = setTimeout(() => this.endHold(), Math.min(ms, MAX_HOLD_MS));
    timer.unref();
    this.hold = { released, release, timer };
  }

  private endHold(): void {
    const h = this.hold;
    this.hold = undefined;
    if (h) {
      clearTimeout(h.timer);
      h.release();
    }
  }

  private async holdLogins(digest: string, ms: number): Promise<PasswordResult> {
    const mounted = await this.mountedMatching('superuser', digest);
    if (this.active && this.active.password !== mounted.password) {
      // The connection that will watch for the change is opened before it can happen.
      await this.openControl().catch((err: unknown) => {
        throw new HttpError(503, `cannot connect to this instance's server: ${errorText(err)}`);
      });
    }
    this.startHold(ms);
    return { held: true };
  }

  private async releaseLogins(lsn: string | undefined): Promise<PasswordResult> {
    try {
      if (lsn && this.control) {
        const sleep = this.d.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
        const deadline = Date.now() + REPLAY_WAIT_MS;
        while (Date.now() < deadline) {
          const replayed = await sql.replayLsn(this.control);
          if (replayed === null || compareLsn(replayed, lsn) >= 0) break;
          await sleep(20);
        }
      }
      const mounted = await readCredentials(this.d.secretsDir, 'superuser');
      const adopted = this.active?.password === mounted.password || (await this.serverAccepts(mounted));
      if (adopted) this.adopt(mounted);
      return { adopted };
    } finally {
      this.endHold();
    }
  }

  private async applySuperuser(digest: string): Promise<PasswordResult> {
    const mounted = await this.mountedMatching('superuser', digest);
    // No login of this agent may start between the change and the switch.
    while (this.hold) await this.hold.released;
    this.startHold(MAX_HOLD_MS);
    try {
      const login = this.active ?? mounted;
      const r = await sql.withClient({ ...(await this.d.server()), credentials: login, connectTimeoutMs: 2000, queryTimeoutMs: 5000, applicationName: 'pgpilot-passwords' }, (c) => this.setIfDifferent(c, mounted));
      this.adopt(mounted);
      return r;
    } finally {
      this.endHold();
    }
  }

  private async applyApp(digest: string): Promise<PasswordResult> {
    const mounted = await this.mountedMatching('app', digest);
    const login = await this.superuser();
    return sql.withClient({ ...(await this.d.server()), credentials: login, connectTimeoutMs: 2000, queryTimeoutMs: 5000, applicationName: 'pgpilot-passwords' }, (c) => this.setIfDifferent(c, mounted));
  }

  /** ALTER ROLE unless the stored password already is this one (a repeated call changes nothing). */
  private async setIfDifferent(c: pg.Client, role: Credentials): Promise<PasswordResult> {
    if (await sql.isInRecovery(c)) throw new HttpError(503, 'this instance is not the primary (a switchover or failover since the last observation?)');
    if (passwordMatches(await sql.storedPassword(c, role.username), role.password, role.username)) return { changed: false };
    const secret = verifierComputable(role.password) ? scramVerifier(role.password) : role.password;
    const lsn = await sql.setRolePassword(c, role.username, secret);
    this.d.log.info({ user: role.username, verifier: secret !== role.password }, 'role password changed');
    return { changed: true, lsn };
  }
}
