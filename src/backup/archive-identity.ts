// archive.json: which database system an archive belongs to (written by the WAL archiver with the
// first segment; checked before anything is added, so two databases never mix in one place).
import { parseJson } from '../util/json.js';
import { archiveKeys, type ArchiveIdentity } from './archive-layout.js';
import type { ObjectStore } from './object-store.js';

/** The archive's identity, or undefined while nothing has claimed the location. */
export async function readArchiveIdentity(store: ObjectStore, path: string): Promise<ArchiveIdentity | undefined> {
  const key = archiveKeys.identity(path);
  if ((await store.head(key)) === null) return undefined;
  return parseJson<ArchiveIdentity>((await store.getBuffer(key)).toString('utf8'), `${store.location}/${key}`);
}
