// ObjectStore on a directory (a PersistentVolume mounted for backups). Keys map to files under the
// root; user metadata sits in a sidecar "<file>.meta.json". Writes go to a temp file that is
// fsynced and renamed into place, then the directory is fsynced: a crash leaves the old object or
// the new one, never a torn file.
import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm, rmdir, stat } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import type { Readable } from 'node:stream';
import { errorText } from '../util/error-text.js';
import { parseJson } from '../util/json.js';
import { ObjectNotFound, type ObjectHead, type ObjectStore, type PutOptions, type StoredObject } from './object-store.js';

const META_SUFFIX = '.meta.json';
const TMP_MARK = '.pgpilot-tmp-';

const isHidden = (name: string) => name.endsWith(META_SUFFIX) || name.includes(TMP_MARK);

async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Writes a file atomically: temp + fsync + rename (the caller fsyncs the directory). */
async function writeDurable(path: string, body: Readable | Buffer, opts: PutOptions = {}): Promise<void> {
  const tmp = `${path}${TMP_MARK}${randomBytes(6).toString('hex')}`;
  const fh = await open(tmp, 'wx', 0o640);
  try {
    if (Buffer.isBuffer(body)) {
      await fh.writeFile(body);
      opts.onProgress?.(body.length);
    } else {
      let sent = 0;
      for await (const chunk of body) {
        if (opts.signal?.aborted) throw new Error(`put ${path} aborted`);
        const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string);
        await fh.write(buf);
        sent += buf.length;
        opts.onProgress?.(sent);
      }
    }
    if (opts.signal?.aborted) throw new Error(`put ${path} aborted`);
    await fh.sync();
    await fh.close();
    await rename(tmp, path);
  } catch (err) {
    await fh.close().catch(() => undefined);
    await rm(tmp, { force: true });
    throw err;
  }
}

export class FileStore implements ObjectStore {
  readonly location: string;

  constructor(readonly root: string) {
    this.location = `file://${root}`;
  }

  /** The file of a key; refuses keys that could leave the root or collide with sidecars. */
  private file(key: string): string {
    const parts = key.split('/');
    if (!key || key.startsWith('/') || parts.some((p) => p === '' || p === '.' || p === '..') || isHidden(key)) {
      throw new Error(`${this.location}: invalid object key ${JSON.stringify(key)}`);
    }
    return join(this.root, ...parts);
  }

  async put(key: string, body: Readable | Buffer, opts: PutOptions = {}): Promise<void> {
    const file = this.file(key);
    const dir = dirname(file);
    await mkdir(dir, { recursive: true });
    // Metadata first: a crash between the renames leaves an orphan sidecar (invisible), never an
    // object with another object's checksum.
    await writeDurable(file + META_SUFFIX, Buffer.from(JSON.stringify(opts.metadata ?? {})));
    await writeDurable(file, body, opts);
    await fsyncDir(dir);
  }

  async get(key: string): Promise<Readable> {
    const file = this.file(key);
    // Open before returning, so a missing object fails here and not inside the stream.
    const fh = await open(file, 'r').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') throw new ObjectNotFound(key, this.location);
      throw err;
    });
    return fh.createReadStream(); // closes the handle when done
  }

  async getBuffer(key: string): Promise<Buffer> {
    try {
      return await readFile(this.file(key));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new ObjectNotFound(key, this.location);
      throw err;
    }
  }

  async head(key: string): Promise<ObjectHead | null> {
    const file = this.file(key);
    let st;
    try {
      st = await stat(file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
    let metadata: Record<string, string> = {};
    try {
      metadata = parseJson<Record<string, string>>(await readFile(file + META_SUFFIX, 'utf8'), file + META_SUFFIX);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new Error(`${this.location}: unreadable metadata of ${key}: ${errorText(err)}`);
    }
    return { size: st.size, lastModified: st.mtime, metadata };
  }

  async list(prefix: string): Promise<StoredObject[]> {
    // Walk only the deepest directory the prefix names in full.
    const cut = prefix.lastIndexOf('/');
    const start = cut >= 0 ? join(this.root, ...prefix.slice(0, cut).split('/').filter(Boolean)) : this.root;
    const out: StoredObject[] = [];
    const walk = async (dir: string): Promise<void> => {
      let entries;
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
        throw err;
      }
      for (const e of entries) {
        const full = join(dir, e.name);
        if (e.isDirectory()) {
          await walk(full);
        } else if (e.isFile() && !isHidden(e.name)) {
          const key = relative(this.root, full).split(sep).join('/');
          if (!key.startsWith(prefix)) continue;
          const st = await stat(full).catch(() => null); // deleted meanwhile
          if (st) out.push({ key, size: st.size, lastModified: st.mtime });
        }
      }
    };
    await walk(start);
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  async delete(keys: string[]): Promise<void> {
    const dirs = new Set<string>();
    for (const key of keys) {
      const file = this.file(key);
      await rm(file, { force: true });
      await rm(file + META_SUFFIX, { force: true });
      dirs.add(dirname(file));
    }
    // Drop directories emptied by the delete (retention would otherwise leave a forest behind).
    for (const d of dirs) {
      for (let dir = d; dir !== this.root && dir.startsWith(this.root); dir = dirname(dir)) {
        try {
          await rmdir(dir);
        } catch {
          break; // not empty (or already gone)
        }
      }
    }
  }

  async check(): Promise<void> {
    let st;
    try {
      st = await stat(this.root);
    } catch (err) {
      throw new Error(`backup volume ${this.root} is not mounted or does not exist (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
    }
    if (!st.isDirectory()) throw new Error(`backup volume path ${this.root} is not a directory`);
    const probe = join(this.root, `.pgpilot-check${TMP_MARK}${randomBytes(4).toString('hex')}`);
    try {
      const fh = await open(probe, 'wx', 0o600);
      await fh.close();
      await rm(probe, { force: true });
    } catch (err) {
      throw new Error(`backup volume ${this.root} is not writable (${(err as NodeJS.ErrnoException).code ?? String(err)}): check the volume's permissions and fsGroup`);
    }
  }
}
