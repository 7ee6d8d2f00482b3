// Password rotation without a failed login (src/instance/passwords.ts), on PostgreSQL 15 over
// loopback: a primary and a streaming replica, each with its "agent" (a Passwords book reading its
// own mounted-Secret directory) logging in as the superuser every few milliseconds. The Secret
// files change first (as the kubelet does), then the hold/apply/release steps run as the operator
// runs them. Every login works throughout, the old password is refused afterwards, the new one
// works, and neither the password nor a failed authentication reaches either server's log (every
// statement and connection is logged). The control: logging in with the new password before the
// change fails, so the check that none failed can fail.
import { mkdir, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Passwords } from '../../src/instance/passwords.js';
import { passwordDigest, passwordMatches } from '../../src/postgres/scram.js';
import * as sql from '../../src/postgres/sql.js';
import type { Credentials } from '../../src/postgres/files.js';
import { createLogger } from '../../src/runtime/logger.js';
import { TestPostgres } from './pg-fixture.js';
import { ensureDir, giveToPostgres, pgTempDir, removeDir, requirePgTools, runPgTool } from './wal-postgres.js';

const LOGGED = { log_statement: 'all', log_min_duration_statement: 0, log_connections: 'on', hot_standby: 'on', wal_level: 'replica' };

/** A Secret's files as the kubelet updates them: each replaced at once (a rename), never seen half-written. */
async function mount(dir: string, kind: string, c: Credentials): Promise<void> {
  await mkdir(path.join(dir, kind), { recursive: true });
  for (const [name, value] of [['username', c.username], ['password', c.password]] as const) {
    const file = path.join(dir, kind, name);
    await writeFile(`${file}.new`, value);
    await rename(`${file}.new`, file);
  }
}

describe('password rotation', () => {
  let dir: string;
  let primary: TestPostgres;
  let replica: TestPostgres;
  const log = createLogger('error', 'test');

  beforeAll(async () => {
    requirePgTools();
    dir = await pgTempDir('pgpilot-passwords-');
    primary = await TestPostgres.create(path.join(dir, 'primary'), LOGGED);
    await primary.query("CREATE ROLE app LOGIN PASSWORD 'app-old-Secret-1'");
    const rdir = path.join(dir, 'replica');
    await ensureDir(rdir);
    await giveToPostgres(rdir);
    const conninfo = `host=${primary.host} port=${primary.port} user=${primary.replication.username} password=${primary.replication.password}`;
    await runPgTool('pg_basebackup', ['-d', conninfo, '-D', path.join(rdir, 'pgdata'), '-R', '-X', 'stream', '-c', 'fast']);
    replica = await TestPostgres.open(path.join(rdir, 'pgdata'), primary, LOGGED);
    await replica.start();
  }, 120_000);

  afterAll(async () => {
    await replica?.stop();
    await primary?.stop();
    if (dir) await removeDir(dir);
  });

  it('agrees with the verifiers the server computes', async () => {
    const stored = await sql.withClient(primary.connectOptions(), (c) => sql.storedPassword(c, 'app'));
    expect(stored).toMatch(/^SCRAM-SHA-256\$/);
    expect(passwordMatches(stored, 'app-old-Secret-1', 'app')).toBe(true);
    expect(passwordMatches(stored, 'app-old-Secret-2', 'app')).toBe(false);
  });

  it('rotates the superuser and app passwords with no failed login', async () => {
    const oldSu = primary.superuser;
    const newSu = { username: 'postgres', password: 'su-New-Secret-7731' };
    const newApp = { username: 'app', password: 'app-New-Secret-7732' };
    const agents = await Promise.all(
      [primary, replica].map(async (server, i) => {
        const secretsDir = path.join(dir, `secrets-${i}`);
        await mount(secretsDir, 'superuser', oldSu);
        await mount(secretsDir, 'app', { username: 'app', password: 'app-old-Secret-1' });
        return { server, secretsDir, book: new Passwords({ secretsDir, server: async () => ({ host: server.host, port: server.port }), log }) };
      }),
    );
    const [p, r] = agents as [(typeof agents)[0], (typeof agents)[0]];

    // Every few milliseconds, each agent logs in to its own server, as the agent does.
    const failures: string[] = [];
    let logins = 0;
    let stop = false;
    const hammer = async (a: typeof p) => {
      while (!stop) {
        try {
          await sql.withClient({ host: a.server.host, port: a.server.port, credentials: await a.book.superuser(), connectTimeoutMs: 3000 }, (c) => c.query('SELECT 1'));
          logins++;
        } catch (err) {
          failures.push(String(err));
        }
        await sleep(3);
      }
    };
    const loops = [hammer(p), hammer(r), hammer(p), hammer(r)];
    await sleep(200);

    // The kubelet rewrites the files, one pod after the other; the server still has the old password.
    await mount(p.secretsDir, 'superuser', newSu);
    await sleep(200);
    await mount(r.secretsDir, 'superuser', newSu);
    await sleep(200);
    expect(failures).toEqual([]);

    const digest = passwordDigest(newSu.password);
    // A file that does not show the new password yet is refused (409): the operator tries again later.
    await expect(r.book.handle({ role: 'superuser', step: 'hold', digest: passwordDigest('another') })).rejects.toMatchObject({ status: 409 });
    expect(await r.book.handle({ role: 'superuser', step: 'hold', digest, holdMs: 5000 })).toEqual({ held: true });
    const applied = await p.book.handle({ role: 'superuser', step: 'apply', digest });
    expect(applied).toMatchObject({ changed: true, lsn: expect.stringMatching(/^[0-9A-F]+\/[0-9A-F]+$/) });
    expect(await r.book.handle({ role: 'superuser', step: 'release', digest, lsn: applied.lsn! })).toEqual({ adopted: true });
    // Repeated: nothing changes.
    expect(await p.book.handle({ role: 'superuser', step: 'apply', digest })).toEqual({ changed: false });

    // The app role: its file first, then the primary's change.
    await mount(p.secretsDir, 'app', newApp);
    expect(await p.book.handle({ role: 'app', step: 'apply', digest: passwordDigest(newApp.password) })).toMatchObject({ changed: true });
    await sleep(300);
    stop = true;
    await Promise.all(loops);

    expect(failures).toEqual([]);
    expect(logins).toBeGreaterThan(50);
    const login = (server: TestPostgres, c: Credentials) => sql.withClient({ host: server.host, port: server.port, credentials: c, connectTimeoutMs: 3000 }, (cl) => cl.query('SELECT 1'));
    for (const server of [primary, replica]) {
      await expect(login(server, oldSu)).rejects.toThrow(/password authentication failed/);
      await login(server, newSu);
      await expect(login(server, { username: 'app', password: 'app-old-Secret-1' })).rejects.toThrow(/password authentication failed/);
      await login(server, newApp);
    }
    // Only the four refusals just above failed.
    const refusals = (primary.log + replica.log).match(/password authentication failed/g) ?? [];
    expect(refusals).toHaveLength(4);
    for (const secret of [newSu.password, newApp.password]) expect(primary.log + replica.log, 'a password in a server log').not.toContain(secret);
    // The control: an ordinary session's password statement is logged (CREATE ROLE app above).
    expect(primary.log).toContain('app-old-Secret-1');
  }, 120_000);
});
