// The start of backup_label and the end of backup_manifest, read from pg_basebackup's tar stream
// as it passes (nothing is stored): the backup's WAL positions. With -X none, `pg_basebackup -v`
// prints none; backup_label (start position and timeline) is the first entry, and the
// backup_manifest that pg_basebackup appends to the tar when it writes to stdout has the end
// position ("WAL-Ranges").
import { parseLsn } from '../postgres/lsn.js';

/** The start of backup_label and the end of backup_manifest, read from a tar stream as it passes. */
export class BackupTarReader {
  /** Content of backup_label, once seen. */
  label: string | undefined;
  private manifestParts: Buffer[] = [];
  private manifestBytes = 0;
  private manifestSeen = false;
  private header = Buffer.alloc(0);
  private dataLeft = 0;
  private padLeft = 0;
  private capture: 'label' | 'manifest' | null = null;
  private labelParts: Buffer[] = [];
  private ended = false;
  /** Set when the stream is not a tar this reader understands. */
  error: string | undefined;

  /** The last bytes of backup_manifest kept (its WAL-Ranges sit at the very end). */
  static readonly MANIFEST_TAIL = 256 * 1024;

  write(chunk: Buffer): void {
    let off = 0;
    while (off < chunk.length && !this.ended && this.error === undefined) {
      const avail = chunk.length - off;
      if (this.dataLeft > 0) {
        const n = Math.min(this.dataLeft, avail);
        this.collect(chunk.subarray(off, off + n));
        this.dataLeft -= n;
        off += n;
        if (this.dataLeft === 0) this.endEntry();
      } else if (this.padLeft > 0) {
        const n = Math.min(this.padLeft, avail);
        this.padLeft -= n;
        off += n;
      } else {
        const n = Math.min(512 - this.header.length, avail);
        this.header = Buffer.concat([this.header, chunk.subarray(off, off + n)]);
        off += n;
        if (this.header.length === 512) {
          this.parseHeader(this.header);
          this.header = Buffer.alloc(0);
        }
      }
    }
  }

  private parseHeader(h: Buffer): void {
    if (h.every((b) => b === 0)) {
      this.ended = true; // end-of-archive blocks
      return;
    }
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i]!;
    if (sum !== tarNumber(h.subarray(148, 156))) {
      this.error = 'a tar header has a bad checksum';
      return;
    }
    const str = (start: number, len: number) => {
      const s = h.subarray(start, start + len);
      const nul = s.indexOf(0);
      return s.toString('utf8', 0, nul === -1 ? len : nul);
    };
    const prefix = h.toString('latin1', 257, 262) === 'ustar' ? str(345, 155) : '';
    const name = (prefix ? `${prefix}/` : '') + str(0, 100);
    const size = tarNumber(h.subarray(124, 136));
    const type = String.fromCharCode(h[156]!);
    const entry = name.replace(/^\.\//, '');
    this.capture = type === '0' || type === '\0' ? (entry === 'backup_label' ? 'label' : entry === 'backup_manifest' ? 'manifest' : null) : null;
    if (this.capture === 'manifest') this.manifestSeen = true;
    this.dataLeft = size;
    this.padLeft = (512 - (size % 512)) % 512;
    if (size === 0) this.endEntry();
  }

  private collect(part: Buffer): void {
    if (this.capture === 'label') {
      if (this.labelParts.reduce((n, b) => n + b.length, 0) < 64 * 1024) this.labelParts.push(Buffer.from(part));
    } else if (this.capture === 'manifest') {
      this.manifestParts.push(Buffer.from(part));
      this.manifestBytes += part.length;
      if (this.manifestBytes > 2 * BackupTarReader.MANIFEST_TAIL) {
        const all = Buffer.concat(this.manifestParts);
        this.manifestParts = [all.subarray(all.length - BackupTarReader.MANIFEST_TAIL)];
        this.manifestBytes = BackupTarReader.MANIFEST_TAIL;
      }
    }
  }

  private endEntry(): void {
    if (this.capture === 'label') this.label = Buffer.concat(this.labelParts).toString('utf8');
    this.capture = null;
  }

  /** Start and end of the backup's WAL; throws with what is missing. */
  positions(): { startLsn: string; timeline: number; stopLsn: string; stopTimeline: number } {
    if (this.error) throw new Error(`cannot read the tar stream of pg_basebackup: ${this.error}`);
    if (this.label === undefined) throw new Error('the tar stream of pg_basebackup has no backup_label');
    const start = /^START WAL LOCATION: ([0-9A-F]+\/[0-9A-F]+)/m.exec(this.label);
    const tli = /^START TIMELINE: (\d+)/m.exec(this.label);
    if (!start || !tli) throw new Error(`backup_label has no start position or timeline: ${JSON.stringify(this.label)}`);
    if (!this.manifestSeen) throw new Error('the tar stream of pg_basebackup has no backup_manifest (a server older than PostgreSQL 13, or --no-manifest)');
    const tail = Buffer.concat(this.manifestParts).toString('utf8');
    const ranges = [...tail.matchAll(/\{\s*"Timeline"\s*:\s*(\d+)\s*,\s*"Start-LSN"\s*:\s*"([0-9A-F]+\/[0-9A-F]+)"\s*,\s*"End-LSN"\s*:\s*"([0-9A-F]+\/[0-9A-F]+)"\s*\}/g)];
    if (ranges.length === 0) throw new Error('backup_manifest has no WAL-Ranges');
    // On a replica promoted during the backup there are several ranges: the stop is the highest.
    let stop = ranges[0]!;
    for (const r of ranges) if (parseLsn(r[3]!) > parseLsn(stop[3]!)) stop = r;
    return { startLsn: start[1]!, timeline: Number(tli[1]), stopLsn: stop[3]!, stopTimeline: Number(stop[1]) };
  }
}

/** A tar number field: octal text, or base-256 when the high bit of the first byte is set. */
function tarNumber(field: Buffer): number {
  if (field[0]! & 0x80) {
    let v = field[0]! & 0x7f;
    for (let i = 1; i < field.length; i++) v = v * 256 + field[i]!;
    return v;
  }
  const text = field.toString('latin1').replace(/[\0 ]+$/g, '').replace(/^[\0 ]+/, '');
  return text === '' ? 0 : parseInt(text, 8);
}
