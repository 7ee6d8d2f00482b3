// `upgrade check`: what `pg_upgrade --check` would refuse, found while the cluster keeps running.
// pg_upgrade's checks read the catalogs only, so a copy of the schema is enough: the running
// primary's schema (pg_dumpall --schema-only of the OLD version: the newer one's dump can name
// options the old server lacks, e.g. CREATE DATABASE ... LOCALE_PROVIDER for 14) is restored into an old-version cluster in a scratch folder, and pg_upgrade --check runs from that
// one to an empty new-version cluster. The primary is only read from.
import { tlsFromEnv } from '../postgres/tls-client.js';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { readCredentials, tempPassfile, type Credentials } from '../postgres/files.js';
import { withClient } from '../postgres/sql.js';
import { runTool } from '../postgres/tool.js';
import type { Logger } from '../runtime/logger.js';
import type { CheckSettings } from './settings.js';
import { startTempServer, writeTrustHba } from './temp-server.js';
import { initCluster, JobFailure, majorOfBin, newBindir, oldBindir, runPgUpgrade, timed } from './tools.js';
import { errorText } from '../util/error-text.js';

export interface SourceFacts {
  major: number;
  dataChecksums: boolean;
  walSegmentBytes: number;
  blockSize: number;
  preparedTransactions: number;
}

async function readSource(s: CheckSettings, creds: Credentials): Promise<SourceFacts> {
  try {
    return await withClient({ ...s.source, credentials: creds, applicationName: 'pgpilot-upgrade-check', connectTimeoutMs: 10_000, tls: await tlsFromEnv() }, async (c) => {
      const r = await c.query<{ v: string; cs: string; seg: string; bs: string; px: string }>(
        `select current_setting('server_version_num') v, current_setting('data_checksums') cs,
                (select setting from pg_settings where name = 'wal_segment_size') seg,
                current_setting('block_size') bs, (select count(*) from pg_prepared_xacts) px`,
      );
      const row = r.rows[0]!;
      return { major: Math.floor(Number(row.v) / 10000), dataChecksums: row.cs === 'on', walSegmentBytes: Number(row.seg), blockSize: Number(row.bs), preparedTransactions: Number(row.px) };
    });
  } catch (err) {
    throw new JobFailure(`cannot read the running cluster at ${s.source.host}:${s.source.port} as ${creds.username}: ${errorText(err)}`);
  }
}

async function dumpSchema(bin: string, s: CheckSettings, creds: Credentials, file: string, log: Logger): Promise<void> {
  const pass = await tempPassfile(creds);
  try {
    await runTool(join(bin, 'pg_dumpall'), ['-h', s.source.host, '-p', String(s.source.port), '-U', creds.username, '--no-password', '--schema-only', '-f', file], {
      log,
      env: { PGPASSFILE: pass.path, PGCONNECT_TIMEOUT: '10', PGAPPNAME: 'pgpilot-upgrade-check' },
    });
  } catch (err) {
    throw new JobFailure(`pg_dumpall --schema-only of the running cluster failed: ${errorText(err)}`);
  } finally {
    await pass.remove();
  }
}

/** psql -f of the dump; "already exists" errors are expected (the bootstrap superuser, template databases). */
async function restoreSchema(bin: string, socketDir: string, port: number, user: string, file: string, log: Logger): Promise<number> {
  let unexpected = 0;
  await runTool(join(bin, 'psql'), ['-X', '-q', '-h', socketDir, '-p', String(port), '-U', user, '-d', 'postgres', '-v', 'ON_ERROR_STOP=0', '-f', file], {
    log,
    outputLevel: 'debug',
    onLine: (line) => {
      if (!/\b(ERROR|FATAL):/.test(line) || /already exists/.test(line)) return;
      unexpected++;
      log.warn({ tool: 'psql' }, `restoring the schema copy: ${line}`);
    },
  });
  return unexpected;
}

export async function runCheck(s: CheckSettings, log: Logger): Promise<void> {
  const [oldBin, newBin] = [await oldBindir(s.oldInstall), await newBindir()];
  const [oldMajor, newMajor] = [await majorOfBin(oldBin, log), await majorOfBin(newBin, log)];
  const creds = await readCredentials(s.secretsDir, 'superuser');
  const src = await readSource(s, creds);
  log.info({ ...src, oldMajor, newMajor }, 'running cluster read');
  if (src.major !== oldMajor) throw new JobFailure(`the running cluster is PostgreSQL ${src.major} but the old image's PostgreSQL is ${oldMajor}: the upgrade must start from the cluster's own version`);
  if (newMajor <= src.major) throw new JobFailure(`the new image's PostgreSQL is ${newMajor}, not newer than the cluster's ${src.major}: nothing to upgrade to`);
  if (src.preparedTransactions > 0) {
    throw new JobFailure(`the cluster has ${src.preparedTransactions} prepared transaction(s) (pg_prepared_xacts): pg_upgrade refuses a cluster with prepared transactions; COMMIT PREPARED or ROLLBACK PREPARED them first`);
  }

  const work = join(s.workDir, 'check');
  await rm(work, { recursive: true, force: true });
  await mkdir(work, { recursive: true, mode: 0o700 });
  try {
    const dump = join(work, 'schema.sql');
    await timed(log, 'pg_dumpall', () => dumpSchema(oldBin, s, creds, dump, log));
    const same = { superuser: creds.username, encoding: s.encoding, locale: s.locale, dataChecksums: src.dataChecksums, walSegmentBytes: src.walSegmentBytes };
    const oldData = join(work, 'old');
    const newData = join(work, 'new');
    await timed(log, 'initdb old', () => initCluster(oldBin, { ...same, pgdata: oldData, major: oldMajor }, log));
    const server = await startTempServer(oldBin, oldData, work, log);
    try {
      const unexpected = await timed(log, 'schema restore', () => restoreSchema(oldBin, server.socketDir, server.port, creds.username, dump, log));
      if (unexpected > 0) log.warn({ errors: unexpected }, 'the schema copy had errors besides "already exists" (above); pg_upgrade --check runs on what was restored');
    } finally {
      await server.stop();
    }
    await rm(dump, { force: true }); // role password hashes
    await timed(log, 'initdb new', () => initCluster(newBin, { ...same, pgdata: newData, major: newMajor }, log));
    const hbaFile = await writeTrustHba(work);
    await timed(log, 'pg_upgrade --check', () =>
      runPgUpgrade(newBin, { oldBin, newBin, oldData, newData, superuser: creds.username, socketDir: work, hbaFile, mode: 'copy', check: true }, work, log),
    );
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
