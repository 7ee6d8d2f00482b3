// Passwords set by the agent (bootstrap, adopting a restored database) never reach the server log,
// even with every statement logged by the user's settings (log_statement = all,
// log_min_duration_statement = 0): PostgreSQL 15 on loopback. The control: the same ALTER ROLE
// outside the agent's session settings is logged, so the check can fail.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { adoptRestoredDatabase, createBootstrapObjects } from '../../src/postgres/sql.js';
import { PgServer, pgTempDir, removeDir, requirePgTools } from './wal-postgres.js';

describe('passwords and the server log', () => {
  let dir: string;
  let server: PgServer;
  const client = async () => {
    const c = new pg.Client({ host: '127.0.0.1', port: server.port, user: 'postgres', database: 'postgres', connectionTimeoutMillis: 3000 });
    await c.connect();
    return c;
  };

  beforeAll(async () => {
    requirePgTools();
    dir = await pgTempDir('pgpilot-secret-log-');
    server = await PgServer.init(dir, { log_statement: 'all', log_min_duration_statement: 0, log_min_error_statement: 'info' });
    await server.start();
  }, 60_000);

  afterAll(async () => {
    await server?.stop();
    if (dir) await removeDir(dir);
  });

  it('bootstrap and adoption log no password; an ordinary session would', async () => {
    const c = await client();
    try {
      const roles = { replication: { username: 'streaming_replica', password: 'repl-Secret-4711' }, owner: { username: 'app', password: 'app-Secret-4712' }, database: 'app' };
      await createBootstrapObjects(c, roles);
      await createBootstrapObjects(c, { ...roles, owner: { username: 'app', password: 'app-Secret-4713' } });
      await adoptRestoredDatabase(c, { ...roles, superuser: { username: 'postgres', password: 'super-Secret-4714' } });
    } finally {
      await c.end();
    }
    const control = await client();
    await control.query("ALTER ROLE app PASSWORD 'control-Secret-4715'");
    await control.end();
    await server.query('SELECT pg_sleep(0.2)');
    expect(server.log).toContain('control-Secret-4715');
    for (const secret of ['repl-Secret-4711', 'app-Secret-4712', 'app-Secret-4713', 'super-Secret-4714']) expect(server.log, secret).not.toContain(secret);
    expect(server.log).toMatch(/CREATE ROLE|ALTER ROLE app PASSWORD 'control/);
  });
});
