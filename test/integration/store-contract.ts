// One contract for every ObjectStore (S3Store, FileStore): each store's test file calls it with a
// factory, so both are held to the same behaviour by the same assertions.
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ObjectNotFound, type ObjectStore } from '../../src/backup/object-store.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function drain(r: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of r) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** Splits a buffer into uneven chunks, as a pipe would deliver it. */
function streamOf(buf: Buffer): Readable {
  const parts: Buffer[] = [];
  for (let i = 0, n = 1; i < buf.length; i += n, n = (n * 7 + 4099) % 3_000_000) parts.push(buf.subarray(i, i + n));
  return Readable.from(parts);
}

export function describeStoreContract(name: string, open: () => ObjectStore): void {
  describe(`${name}: ObjectStore contract`, () => {
    it('puts buffers and streams, and gets back the same bytes (hash-compared)', async () => {
      const store = open();
      const small = randomBytes(300_000);
      // Larger than one 16 MiB multipart part: the multipart path on S3.
      const big = randomBytes(40 * 1024 * 1024 + 12_345);
      await store.put('c/put/small', small, { metadata: { sha256: sha(small) } });
      let progress = 0;
      await store.put('c/put/big', streamOf(big), { metadata: { sha256: sha(big) }, onProgress: (n) => (progress = n) });
      expect(progress).toBe(big.length);
      expect(sha(await store.getBuffer('c/put/small'))).toBe(sha(small));
      expect(sha(await drain(await store.get('c/put/big')))).toBe(sha(big));
      const head = await store.head('c/put/big');
      expect(head).toMatchObject({ size: big.length, metadata: { sha256: sha(big) } });
      expect(head!.lastModified).toBeInstanceOf(Date);
    });

    it('overwrites an object whole, metadata included', async () => {
      const store = open();
      await store.put('c/over/x', Buffer.from('first'), { metadata: { sha256: 'aa', extra: 'yes' } });
      await store.put('c/over/x', streamOf(Buffer.from('second version')), { metadata: { sha256: 'bb' } });
      expect((await store.getBuffer('c/over/x')).toString()).toBe('second version');
      expect((await store.head('c/over/x'))!.metadata).toEqual({ sha256: 'bb' });
    });

    it('reports absent objects: head null, get ObjectNotFound naming the key', async () => {
      const store = open();
      expect(await store.head('c/absent/x')).toBeNull();
      await expect(store.get('c/absent/x')).rejects.toBeInstanceOf(ObjectNotFound);
      await expect(store.getBuffer('c/absent/x')).rejects.toThrow(/c\/absent\/x/);
    });

    it('lists every object under a prefix, however deep, across pages, in key order', async () => {
      const store = open();
      const keys = Array.from({ length: 1100 }, (_, i) => `c/list/${String(i % 7)}/deep/${String(i).padStart(5, '0')}`);
      for (let i = 0; i < keys.length; i += 50) await Promise.all(keys.slice(i, i + 50).map((k) => store.put(k, Buffer.from(k))));
      await store.put('c/listing-neighbour', Buffer.from('x'));
      const listed = await store.list('c/list/');
      expect(listed.map((o) => o.key)).toEqual([...keys].sort());
      expect(listed.every((o) => o.size === o.key.length && o.lastModified instanceof Date)).toBe(true);
      // A prefix need not end at a "/".
      expect((await store.list('c/list/3/deep/0000')).map((o) => o.key)).toEqual(['c/list/3/deep/00003']);
      expect(await store.list('c/nothing-here/')).toEqual([]);
    });

    it('deletes in batches, absent keys included', async () => {
      const store = open();
      const keys = (await store.list('c/list/')).map((o) => o.key);
      expect(keys.length).toBe(1100);
      await store.delete([...keys, 'c/list/never-existed']);
      expect(await store.list('c/list/')).toEqual([]);
      expect(await store.head('c/listing-neighbour')).not.toBeNull();
      await store.delete([]);
    });

    it('passes check() when usable', async () => {
      await open().check();
    });
  });
}
