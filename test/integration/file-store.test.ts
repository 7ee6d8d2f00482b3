// FileStore on a temp directory (the backup PersistentVolume in a pod).
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileStore } from '../../src/backup/file-store.js';
import { openStore } from '../../src/backup/open-store.js';
import { describeStoreContract } from './store-contract.js';

let root: string;
beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'pgpilot-filestore-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describeStoreContract('FileStore', () => openStore({ kind: 'volume', path: root }));

describe('FileStore', () => {
  it('keeps metadata in hidden sidecars and leaves no temp files behind', async () => {
    const store = new FileStore(root);
    await store.put('side/a/x.gz', Buffer.from('x'), { metadata: { sha256: 'ab' } });
    expect((await readdir(path.join(root, 'side/a'))).sort()).toEqual(['x.gz', 'x.gz.meta.json']);
    expect((await store.list('side/')).map((o) => o.key)).toEqual(['side/a/x.gz']);
    await store.delete(['side/a/x.gz']);
    // emptied directories go too
    expect(await readdir(root)).not.toContain('side');
  });

  it('refuses keys that leave the root or collide with sidecars', async () => {
    const store = new FileStore(root);
    for (const key of ['../escape', 'a//b', '/abs', 'a/x.meta.json', '']) await expect(store.put(key, Buffer.from('x')), key).rejects.toThrow(/invalid object key/);
  });

  it('aborts a streamed put without leaving a partial object', async () => {
    const store = new FileStore(root);
    const ac = new AbortController();
    async function* body() {
      yield Buffer.alloc(1024);
      ac.abort();
      yield Buffer.alloc(1024);
    }
    await expect(store.put('abort/x', (await import('node:stream')).Readable.from(body()), { signal: ac.signal })).rejects.toThrow(/aborted/);
    expect(await store.head('abort/x')).toBeNull();
    expect(await readdir(path.join(root, 'abort'))).toEqual(['x.meta.json']); // orphan sidecar: invisible, replaced by the next put
    expect(await store.list('abort/')).toEqual([]);
  });

  it('check() says when the volume is missing or not a directory', async () => {
    await expect(new FileStore(path.join(root, 'not-mounted')).check()).rejects.toThrow(`backup volume ${path.join(root, 'not-mounted')} is not mounted or does not exist (ENOENT)`);
    const file = path.join(root, 'plain-file');
    await writeFile(file, '');
    await expect(new FileStore(file).check()).rejects.toThrow(/is not a directory/);
  });
});
