// WAL positions read from pg_basebackup's tar as it passes (backup-tar-reader.ts).
import { describe, expect, it } from 'vitest';
import { BackupTarReader } from './backup-tar-reader.js';

/** One ustar entry: a 512-byte header and the content padded to 512. */
function entry(name: string, content: string | Buffer, type = '0'): Buffer {
  const body = Buffer.isBuffer(content) ? content : Buffer.from(content);
  const h = Buffer.alloc(512);
  h.write(name, 0, 'utf8');
  h.write('0000644\0', 100, 'latin1');
  h.write(`${body.length.toString(8).padStart(11, '0')}\0`, 124, 'latin1');
  h.write(type, 156, 'latin1');
  h.write('ustar\0', 257, 'latin1');
  h.write('00', 263, 'latin1');
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return Buffer.concat([h, body, Buffer.alloc((512 - (body.length % 512)) % 512)]);
}

const LABEL = 'START WAL LOCATION: 0/5000028 (file 000000010000000000000005)\nCHECKPOINT LOCATION: 0/5000060\nSTART TIMELINE: 1\n';
const manifest = (ranges: string) => `{ "PostgreSQL-Backup-Manifest-Version": 1,\n"Files": [],\n"WAL-Ranges": [\n${ranges}\n],\n"Manifest-Checksum": "x"}\n`;
const END = Buffer.alloc(1024);

/** Feeds `tar` in pieces of `size` bytes, as a pipe would. */
function read(tar: Buffer, size: number): BackupTarReader {
  const r = new BackupTarReader();
  for (let off = 0; off < tar.length; off += size) r.write(tar.subarray(off, off + size));
  return r;
}

describe('BackupTarReader', () => {
  const tar = Buffer.concat([
    entry('backup_label', LABEL),
    entry('base/1/', '', '5'),
    entry('base/1/1259', Buffer.alloc(9000, 7)),
    entry('backup_manifest', manifest('{ "Timeline": 1, "Start-LSN": "0/5000028", "End-LSN": "0/5000100" }')),
    END,
  ]);

  it.each([1, 7, 512, 100_000])('reads the start from backup_label and the stop from backup_manifest (pieces of %i bytes)', (size) => {
    const r = read(tar, size);
    expect(r.label).toBe(LABEL);
    expect(r.positions()).toEqual({ startLsn: '0/5000028', timeline: 1, stopLsn: '0/5000100', stopTimeline: 1 });
  });

  it('takes the highest range as the stop (a replica promoted during the backup)', () => {
    const two = Buffer.concat([
      entry('./backup_label', LABEL),
      entry('backup_manifest', manifest('{ "Timeline": 2, "Start-LSN": "0/6000000", "End-LSN": "0/6000200" },\n{ "Timeline": 1, "Start-LSN": "0/5000028", "End-LSN": "0/6000000" }')),
      END,
    ]);
    expect(read(two, 300).positions()).toMatchObject({ stopLsn: '0/6000200', stopTimeline: 2 });
  });

  it('keeps only the tail of a large manifest, where WAL-Ranges are', () => {
    const files = `"Files": [${Array.from({ length: 20_000 }, (_, i) => `{ "Path": "base/1/${i}", "Size": 8192 }`).join(',\n')}],\n`;
    const big = manifest('{ "Timeline": 1, "Start-LSN": "0/5000028", "End-LSN": "0/7000000" }').replace('"Files": [],\n', files);
    expect(big.length).toBeGreaterThan(2 * BackupTarReader.MANIFEST_TAIL);
    expect(read(Buffer.concat([entry('backup_label', LABEL), entry('backup_manifest', big), END]), 65536).positions().stopLsn).toBe('0/7000000');
  });

  it('says what is missing or wrong', () => {
    expect(() => read(Buffer.concat([entry('base/1/1259', 'x'), END]), 512).positions()).toThrow('has no backup_label');
    expect(() => read(Buffer.concat([entry('backup_label', LABEL), END]), 512).positions()).toThrow('has no backup_manifest');
    expect(() => read(Buffer.concat([entry('backup_label', 'nothing here'), END]), 512).positions()).toThrow('backup_label has no start position');
    expect(() => read(Buffer.concat([entry('backup_label', LABEL), entry('backup_manifest', manifest('')), END]), 512).positions()).toThrow('backup_manifest has no WAL-Ranges');
    const corrupt = entry('backup_label', LABEL);
    corrupt.write('c', 0, 'latin1'); // backup_label → cackup_label, the checksum unchanged
    expect(() => read(corrupt, 512).positions()).toThrow('a tar header has a bad checksum');
  });
});
