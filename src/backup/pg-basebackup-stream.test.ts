// pg_basebackup's run for a base backup (pg-basebackup-stream.ts), against a stand-in script: the
// command line, the password only in the environment, stdout as the tar, failures and kills.
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { text } from 'node:stream/consumers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ToolError } from '../postgres/tool.js';
import { streamPgBasebackup } from './pg-basebackup-stream.js';

// Prints its arguments on stderr and the password as "the tar"; the label says how to end.
const SCRIPT = `#!/bin/sh
echo "pg_basebackup: args: $*" >&2
case "$*" in
  *fail*) echo "pg_basebackup: error: connection refused" >&2; exit 3 ;;
  *hang*) exec sleep 30 ;;
esac
printf 'tar of %s' "$PGPASSWORD"
`;

describe('streamPgBasebackup', () => {
  let pgBin: string;
  beforeAll(async () => {
    pgBin = await mkdtemp(join(tmpdir(), 'pgpilot-basebackup-'));
    await writeFile(join(pgBin, 'pg_basebackup'), SCRIPT);
    await chmod(join(pgBin, 'pg_basebackup'), 0o755);
  });
  afterAll(() => rm(pgBin, { recursive: true, force: true }));

  const start = (label: string, onLine?: (l: string) => void) =>
    streamPgBasebackup({ pgBin, host: '10.0.0.7', port: 5432, replication: { username: 'streaming_replica', password: 's3cret' }, label, ...(onLine ? { onLine } : {}) });

  it('writes the tar to stdout, WAL left to the archive, the password only in PGPASSWORD', async () => {
    const lines: string[] = [];
    const run = start('pgpilot 20261125T020000Z', (l) => lines.push(l));
    expect(run.args).toEqual(['-h', '10.0.0.7', '-p', '5432', '-U', 'streaming_replica', '-D', '-', '-Ft', '-X', 'none', '-c', 'fast', '-v', '--no-password', '-l', 'pgpilot 20261125T020000Z']);
    expect(run.args.join(' ')).not.toContain('s3cret');
    expect(await text(run.stdout)).toBe('tar of s3cret');
    await run.done;
    expect(lines).toEqual([`pg_basebackup: args: ${run.args.join(' ')}`]);
  });

  it('fails with a ToolError that carries its last lines', async () => {
    const run = start('fail');
    await text(run.stdout);
    const err = await run.done.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ToolError);
    expect((err as ToolError).exitCode).toBe(3);
    expect((err as ToolError).message).toContain('connection refused');
    expect(run.lastLines(1)).toEqual(['pg_basebackup: error: connection refused']);
  });

  it('stops when killed', async () => {
    const run = start('hang');
    run.kill();
    const err = await run.done.catch((e: unknown) => e);
    expect((err as ToolError).signal).toBe('SIGTERM');
    run.kill(); // ended: nothing to do
  });

  it('says when it cannot run', async () => {
    const run = streamPgBasebackup({ pgBin: join(pgBin, 'missing'), host: 'h', port: 1, replication: { username: 'u', password: 'p' }, label: 'x' });
    await expect(run.done).rejects.toThrow(/^cannot run .*missing\/pg_basebackup: .*ENOENT/);
  });
});
