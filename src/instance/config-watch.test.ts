// The hash that tells the configuration watch (config-watch.ts) the mounted files changed.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { hashConfig } from './config-watch.js';

describe('hashConfig', () => {
  let dir: string;
  beforeEach(async () => (dir = await mkdtemp(join(tmpdir(), 'pgpilot-config-'))));
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('is undefined until both files are there, then changes with either', async () => {
    expect(await hashConfig(dir)).toBeUndefined();
    await writeFile(join(dir, 'postgresql.conf'), 'work_mem = 4MB\n');
    expect(await hashConfig(dir)).toBeUndefined();
    await writeFile(join(dir, 'pg_hba.conf'), 'local all all peer\n');
    const first = await hashConfig(dir);
    expect(first).toMatch(/^[0-9a-f]{64}$/);
    expect(await hashConfig(dir)).toBe(first);
    await writeFile(join(dir, 'pg_hba.conf'), 'local all all trust\n');
    const second = await hashConfig(dir);
    expect(second).not.toBe(first);
    await writeFile(join(dir, 'postgresql.conf'), 'work_mem = 8MB\n');
    expect(await hashConfig(dir)).not.toBe(second);
  });

  it('tells apart content moved from one file to the other', async () => {
    await writeFile(join(dir, 'postgresql.conf'), 'a');
    await writeFile(join(dir, 'pg_hba.conf'), 'b');
    const before = await hashConfig(dir);
    await writeFile(join(dir, 'postgresql.conf'), 'ab');
    await writeFile(join(dir, 'pg_hba.conf'), '');
    expect(await hashConfig(dir)).not.toBe(before);
  });
});

describe('hashConfig with the server certificate files', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pgpilot-config-'));
    await writeFile(join(dir, 'postgresql.conf'), 'ssl = on\n');
    await writeFile(join(dir, 'pg_hba.conf'), 'local all all peer\n');
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('changes when a renewal rewrites the certificate or key, and takes missing files as empty', async () => {
    const tls = [join(dir, 'tls.crt'), join(dir, 'tls.key')];
    const none = await hashConfig(dir, tls);
    expect(none).toMatch(/^[0-9a-f]{64}$/);
    await writeFile(tls[0]!, 'cert 1');
    await writeFile(tls[1]!, 'key 1');
    const first = await hashConfig(dir, tls);
    expect(first).not.toBe(none);
    await writeFile(tls[1]!, 'key 2');
    expect(await hashConfig(dir, tls)).not.toBe(first);
  });
});
