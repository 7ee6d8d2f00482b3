// Replica configuration (standby.signal, primary_conninfo) and pg_rewind.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../runtime/logger.js';
import { pgpassLine, primaryConninfo, renderConninfo, setAutoConfParameter } from '../postgres/conninfo.js';
import { exists, tempPassfile, touch, writePrivateFile, type Credentials } from '../postgres/files.js';
import type { Layout } from './layout.js';
import type { Endpoint } from '../postgres/sql.js';
import { runTool, ToolError } from '../postgres/tool.js';
import { libpqTlsParams, type LibpqTls } from '../postgres/tls-client.js';

/** `tls`: verify-full and the replication client certificate (AgentState.replicationTls). */
export function conninfoFor(layout: Layout, primary: Endpoint, replicationUser: string, instance: string, tls?: LibpqTls): string {
  return primaryConninfo({
    host: primary.host,
    port: primary.port,
    user: replicationUser,
    passfile: layout.replicationPassfile,
    applicationName: instance,
    ...(tls ? { tls: libpqTlsParams(tls, primary.host) } : {}),
  });
}

/** The walreceiver reads the password from here (libpq ignores a passfile readable by others). */
export async function writeReplicationPassfile(layout: Layout, creds: Credentials): Promise<void> {
  await writePrivateFile(layout.replicationPassfile, pgpassLine('*', '*', '*', creds.username, creds.password));
}

/**
 * Makes the stopped data directory a replica of `primary`: standby.signal, and primary_conninfo in
 * postgresql.auto.conf (a clone or rewind copied the source's, which names the source's own
 * primary if it ever had one).
 */
export async function configureStandby(layout: Layout, conninfo: string): Promise<void> {
  const current = (await exists(layout.autoConf)) ? await readFile(layout.autoConf, 'utf8') : '';
  await writeFile(layout.autoConf, setAutoConfParameter(current, 'primary_conninfo', conninfo), { mode: 0o600 });
  await touch(layout.standbySignal);
}

export class RewindImpossible extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RewindImpossible';
  }
}

/**
 * pg_rewind of the stopped data directory against `source` (the new primary, which must have
 * checkpointed since its promotion, or pg_rewind wrongly finds nothing to do). Connects as the
 * superuser with the password in a temporary PGPASSFILE.
 */
export async function rewind(bin: string, layout: Layout, source: Endpoint, superuser: Credentials, log: Logger, tls?: LibpqTls): Promise<{ rewound: boolean }> {
  const pass = await tempPassfile(superuser);
  try {
    // The superuser logs in by password (over verify-full TLS when given), not the replication certificate.
    const server = tls ? libpqTlsParams({ caFile: tls.caFile, serverName: tls.serverName }, source.host) : {};
    const sourceServer = renderConninfo({ host: source.host, port: source.port, ...server, user: superuser.username, dbname: 'postgres', connect_timeout: 10 });
    const r = await runTool(join(bin, 'pg_rewind'), [`--target-pgdata=${layout.pgdata}`, `--source-server=${sourceServer}`, '--progress'], {
      log,
      env: { PGPASSFILE: pass.path, PGAPPNAME: 'pgpilot-rewind' },
    });
    return { rewound: !r.output.some((l) => /no rewind required/i.test(l)) };
  } catch (err) {
    if (err instanceof ToolError) throw new RewindImpossible(err.message);
    throw err;
  } finally {
    await pass.remove();
  }
}
