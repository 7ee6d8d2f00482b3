// A small SPDY/3.1 frame codec, the server side of what the apiserver speaks to kubelets for
// exec (client-go's SPDY round tripper over moby/spdystream). Pure: bytes in, frames out.
//
// Header blocks are zlib streams with the SPDY/3 dictionary, one stream per direction per
// connection. Incoming blocks are inflated by re-inflating everything received so far (a
// connection carries a handful of small SYN_STREAMs, so this stays cheap and synchronous);
// outgoing blocks are written as stored (uncompressed) deflate blocks, each followed by an empty
// one (the sync-flush marker), which any inflater reads.
// Flow control: spdystream neither enforces nor sends WINDOW_UPDATEs, so none are sent here and
// received ones are ignored.
import { constants, inflateSync } from 'node:zlib';

export type Headers = Record<string, string[]>;

export type Frame =
  | { type: 'data'; streamId: number; fin: boolean; data: Buffer }
  | { type: 'syn_stream'; streamId: number; fin: boolean; headers: Headers }
  | { type: 'syn_reply'; streamId: number; fin: boolean; headers: Headers }
  | { type: 'rst_stream'; streamId: number; status: number }
  | { type: 'settings' }
  | { type: 'ping'; id: number }
  | { type: 'goaway'; lastGoodStreamId: number; status: number }
  | { type: 'headers'; streamId: number; fin: boolean; headers: Headers }
  | { type: 'window_update'; streamId: number; delta: number }
  | { type: 'unknown'; code: number };

const VERSION = 3;
const FLAG_FIN = 0x01;
const T = { SYN_STREAM: 1, SYN_REPLY: 2, RST_STREAM: 3, SETTINGS: 4, PING: 6, GOAWAY: 7, HEADERS: 8, WINDOW_UPDATE: 9 } as const;
export const RST = { PROTOCOL_ERROR: 1, INVALID_STREAM: 2, REFUSED_STREAM: 3, CANCEL: 5, INTERNAL_ERROR: 6 } as const;
/** Largest DATA payload this side sends (SPDY allows 2^24-1; spdystream reads any). */
export const MAX_DATA = 32 * 1024;
/** A connection whose header blocks together grow past this is refused (a protocol error). */
const MAX_HEADER_BYTES = 256 * 1024;

/** The SPDY/3 header compression dictionary (draft-mbelshe-httpbis-spdy-00 §2.6.10.1). */
export const SPDY3_DICTIONARY = Buffer.from(
  'AAAAB29wdGlvbnMAAAAEaGVhZAAAAARwb3N0AAAAA3B1dAAAAAZkZWxldGUAAAAFdHJhY2UAAAAGYWNjZXB0AAAADmFjY2Vw' +
    'dC1jaGFyc2V0AAAAD2FjY2VwdC1lbmNvZGluZwAAAA9hY2NlcHQtbGFuZ3VhZ2UAAAANYWNjZXB0LXJhbmdlcwAAAANhZ2UA' +
    'AAAFYWxsb3cAAAANYXV0aG9yaXphdGlvbgAAAA1jYWNoZS1jb250cm9sAAAACmNvbm5lY3Rpb24AAAAMY29udGVudC1iYXNl' +
    'AAAAEGNvbnRlbnQtZW5jb2RpbmcAAAAQY29udGVudC1sYW5ndWFnZQAAAA5jb250ZW50LWxlbmd0aAAAABBjb250ZW50LWxv' +
    'Y2F0aW9uAAAAC2NvbnRlbnQtbWQ1AAAADWNvbnRlbnQtcmFuZ2UAAAAMY29udGVudC10eXBlAAAABGRhdGUAAAAEZXRhZwAA' +
    'AAZleHBlY3QAAAAHZXhwaXJlcwAAAARmcm9tAAAABGhvc3QAAAAIaWYtbWF0Y2gAAAARaWYtbW9kaWZpZWQtc2luY2UAAAAN' +
    'aWYtbm9uZS1tYXRjaAAAAAhpZi1yYW5nZQAAABNpZi11bm1vZGlmaWVkLXNpbmNlAAAADWxhc3QtbW9kaWZpZWQAAAAIbG9j' +
    'YXRpb24AAAAMbWF4LWZvcndhcmRzAAAABnByYWdtYQAAABJwcm94eS1hdXRoZW50aWNhdGUAAAATcHJveHktYXV0aG9yaXph' +
    'dGlvbgAAAAVyYW5nZQAAAAdyZWZlcmVyAAAAC3JldHJ5LWFmdGVyAAAABnNlcnZlcgAAAAJ0ZQAAAAd0cmFpbGVyAAAAEXRy' +
    'YW5zZmVyLWVuY29kaW5nAAAAB3VwZ3JhZGUAAAAKdXNlci1hZ2VudAAAAAR2YXJ5AAAAA3ZpYQAAAAd3YXJuaW5nAAAAEHd3' +
    'dy1hdXRoZW50aWNhdGUAAAAGbWV0aG9kAAAAA2dldAAAAAZzdGF0dXMAAAAGMjAwIE9LAAAAB3ZlcnNpb24AAAAISFRUUC8x' +
    'LjEAAAADdXJsAAAABnB1YmxpYwAAAApzZXQtY29va2llAAAACmtlZXAtYWxpdmUAAAAGb3JpZ2luMTAwMTAxMjAxMjAyMjA1' +
    'MjA2MzAwMzAyMzAzMzA0MzA1MzA2MzA3NDAyNDA1NDA2NDA3NDA4NDA5NDEwNDExNDEyNDEzNDE0NDE1NDE2NDE3NTAyNTA0' +
    'NTA1MjAzIE5vbi1BdXRob3JpdGF0aXZlIEluZm9ybWF0aW9uMjA0IE5vIENvbnRlbnQzMDEgTW92ZWQgUGVybWFuZW50bHk0' +
    'MDAgQmFkIFJlcXVlc3Q0MDEgVW5hdXRob3JpemVkNDAzIEZvcmJpZGRlbjQwNCBOb3QgRm91bmQ1MDAgSW50ZXJuYWwgU2Vy' +
    'dmVyIEVycm9yNTAxIE5vdCBJbXBsZW1lbnRlZDUwMyBTZXJ2aWNlIFVuYXZhaWxhYmxlSmFuIEZlYiBNYXIgQXByIE1heSBK' +
    'dW4gSnVsIEF1ZyBTZXB0IE9jdCBOb3YgRGVjIDAwOjAwOjAwIE1vbiwgVHVlLCBXZWQsIFRodSwgRnJpLCBTYXQsIFN1biwg' +
    'R01UY2h1bmtlZCx0ZXh0L2h0bWwsaW1hZ2UvcG5nLGltYWdlL2pwZyxpbWFnZS9naWYsYXBwbGljYXRpb24veG1sLGFwcGxp' +
    'Y2F0aW9uL3hodG1sK3htbCx0ZXh0L3BsYWluLHRleHQvamF2YXNjcmlwdCxwdWJsaWNwcml2YXRlbWF4LWFnZT1nemlwLGRl' +
    'ZmxhdGUsc2RjaGNoYXJzZXQ9dXRmLThjaGFyc2V0PWlzby04ODU5LTEsdXRmLSwqLGVucT0wLg==',
  'base64',
);

export class SpdyProtocolError extends Error {}

// ---- header blocks -------------------------------------------------------------------------

/** SPDY/3 name/value block: count, then (name, value) with 32-bit lengths; values NUL-joined. */
export function encodeNameValues(headers: Headers): Buffer {
  const parts: Buffer[] = [u32(Object.keys(headers).length)];
  for (const [name, values] of Object.entries(headers)) {
    const n = Buffer.from(name.toLowerCase());
    const v = Buffer.from(values.join('\0'));
    parts.push(u32(n.length), n, u32(v.length), v);
  }
  return Buffer.concat(parts);
}

export function decodeNameValues(buf: Buffer): Headers {
  const out: Headers = {};
  let at = 0;
  const need = (n: number) => {
    if (at + n > buf.length) throw new SpdyProtocolError('truncated header block');
  };
  need(4);
  const count = buf.readUInt32BE(at);
  at += 4;
  for (let i = 0; i < count; i++) {
    need(4);
    const nl = buf.readUInt32BE(at);
    need(4 + nl + 4);
    const name = buf.toString('utf8', at + 4, at + 4 + nl).toLowerCase();
    at += 4 + nl;
    const vl = buf.readUInt32BE(at);
    need(4 + vl);
    const value = buf.toString('utf8', at + 4, at + 4 + vl);
    at += 4 + vl;
    (out[name] ??= []).push(...value.split('\0'));
  }
  return out;
}

function adler32(buf: Buffer): number {
  let a = 1;
  let b = 0;
  for (const byte of buf) {
    a = (a + byte) % 65521;
    b = (b + a) % 65521;
  }
  return ((b << 16) | a) >>> 0;
}

/** The outgoing zlib stream: a zlib header naming the dictionary, then stored blocks. */
export class HeaderCompressor {
  private started = false;
  compress(block: Buffer): Buffer {
    const parts: Buffer[] = [];
    if (!this.started) {
      this.started = true;
      const cmf = 0x78;
      let flg = 0x20; // FDICT
      flg += 31 - ((cmf * 256 + flg) % 31);
      parts.push(Buffer.from([cmf, flg]), u32(adler32(SPDY3_DICTIONARY)));
    }
    let at = 0;
    do {
      const piece = block.subarray(at, at + 0xffff);
      const head = Buffer.alloc(5);
      head[0] = 0x00; // BFINAL 0, BTYPE 00 (stored), padded to the byte
      head.writeUInt16LE(piece.length, 1);
      head.writeUInt16LE(~piece.length & 0xffff, 3);
      parts.push(head, piece);
      at += 0xffff;
    } while (at < block.length);
    // An empty stored block, as a sync flush ends with: Go's flate hands out a stored block's
    // bytes only once it has read the next block's header, which must be in this frame.
    parts.push(Buffer.from([0x00, 0x00, 0x00, 0xff, 0xff]));
    return Buffer.concat(parts);
  }
}

/** The incoming zlib stream (the peer sync-flushes after each block). */
export class HeaderDecompressor {
  private input = Buffer.alloc(0);
  private produced = 0;
  decompress(block: Buffer): Buffer {
    this.input = Buffer.concat([this.input, block]);
    if (this.input.length > MAX_HEADER_BYTES) throw new SpdyProtocolError('header blocks too large');
    let out: Buffer;
    try {
      out = inflateSync(this.input, { dictionary: SPDY3_DICTIONARY, finishFlush: constants.Z_SYNC_FLUSH });
    } catch (err) {
      throw new SpdyProtocolError(`header block: ${(err as Error).message}`);
    }
    const fresh = out.subarray(this.produced);
    this.produced = out.length;
    return fresh;
  }
}

// ---- frames --------------------------------------------------------------------------------

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}

function controlFrame(type: number, flags: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt16BE(0x8000 | VERSION, 0);
  head.writeUInt16BE(type, 2);
  head.writeUInt32BE(((flags & 0xff) << 24) | payload.length, 4);
  return Buffer.concat([head, payload]);
}

export function dataFrame(streamId: number, data: Buffer, fin = false): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(streamId & 0x7fffffff, 0);
  head.writeUInt32BE(((fin ? FLAG_FIN : 0) << 24) | data.length, 4);
  return Buffer.concat([head, data]);
}

export function synReplyFrame(compressor: HeaderCompressor, streamId: number, headers: Headers = {}, fin = false): Buffer {
  return controlFrame(T.SYN_REPLY, fin ? FLAG_FIN : 0, Buffer.concat([u32(streamId & 0x7fffffff), compressor.compress(encodeNameValues(headers))]));
}

/** A client's SYN_STREAM (tests, and anyone who wants to talk to the server in Node). */
export function synStreamFrame(compressor: HeaderCompressor, streamId: number, headers: Headers, fin = false): Buffer {
  const pri = Buffer.alloc(2);
  return controlFrame(T.SYN_STREAM, fin ? FLAG_FIN : 0, Buffer.concat([u32(streamId & 0x7fffffff), u32(0), pri, compressor.compress(encodeNameValues(headers))]));
}

export function rstStreamFrame(streamId: number, status: number): Buffer {
  return controlFrame(T.RST_STREAM, 0, Buffer.concat([u32(streamId & 0x7fffffff), u32(status)]));
}

export function pingFrame(id: number): Buffer {
  return controlFrame(T.PING, 0, u32(id));
}

export function goawayFrame(lastGoodStreamId: number, status = 0): Buffer {
  return controlFrame(T.GOAWAY, 0, Buffer.concat([u32(lastGoodStreamId & 0x7fffffff), u32(status)]));
}

/** Splits a byte stream into frames; keeps an incomplete frame for the next push. */
export class FrameParser {
  private pending: Buffer = Buffer.alloc(0);
  private readonly headers = new HeaderDecompressor();

  push(chunk: Buffer): Frame[] {
    this.pending = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    const frames: Frame[] = [];
    while (this.pending.length >= 8) {
      const length = this.pending.readUInt32BE(4) & 0xffffff;
      if (this.pending.length < 8 + length) break;
      const frame = this.pending.subarray(0, 8 + length);
      this.pending = this.pending.subarray(8 + length);
      frames.push(this.parse(frame));
    }
    return frames;
  }

  private parse(frame: Buffer): Frame {
    const flags = frame[4]!;
    const fin = (flags & FLAG_FIN) !== 0;
    const payload = frame.subarray(8);
    if ((frame[0]! & 0x80) === 0) return { type: 'data', streamId: frame.readUInt32BE(0) & 0x7fffffff, fin, data: Buffer.from(payload) };
    const version = frame.readUInt16BE(0) & 0x7fff;
    if (version !== VERSION) throw new SpdyProtocolError(`unsupported SPDY version ${version}`);
    const type = frame.readUInt16BE(2);
    const need = (n: number) => {
      if (payload.length < n) throw new SpdyProtocolError(`control frame ${type} too short`);
    };
    const id = () => payload.readUInt32BE(0) & 0x7fffffff;
    switch (type) {
      case T.SYN_STREAM:
        need(10);
        return { type: 'syn_stream', streamId: id(), fin, headers: decodeNameValues(this.headers.decompress(payload.subarray(10))) };
      case T.SYN_REPLY:
        need(4);
        return { type: 'syn_reply', streamId: id(), fin, headers: decodeNameValues(this.headers.decompress(payload.subarray(4))) };
      case T.HEADERS:
        need(4);
        return { type: 'headers', streamId: id(), fin, headers: decodeNameValues(this.headers.decompress(payload.subarray(4))) };
      case T.RST_STREAM:
        need(8);
        return { type: 'rst_stream', streamId: id(), status: payload.readUInt32BE(4) };
      case T.SETTINGS:
        return { type: 'settings' };
      case T.PING:
        need(4);
        return { type: 'ping', id: payload.readUInt32BE(0) };
      case T.GOAWAY:
        need(8);
        return { type: 'goaway', lastGoodStreamId: id(), status: payload.readUInt32BE(4) };
      case T.WINDOW_UPDATE:
        need(8);
        return { type: 'window_update', streamId: id(), delta: payload.readUInt32BE(4) & 0x7fffffff };
      default:
        return { type: 'unknown', code: type };
    }
  }
}
