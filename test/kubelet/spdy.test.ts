// The process kubelet's SPDY/3.1 codec: header blocks as Go's spdystream writes them (zlib with
// the SPDY dictionary, sync-flushed, one stream per connection), frames split anywhere.
import { constants, createDeflate, inflateSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { dataFrame, decodeNameValues, encodeNameValues, FrameParser, HeaderCompressor, SPDY3_DICTIONARY, synReplyFrame, synStreamFrame } from '../../e2e/kubelet/spdy.js';

/** A stateful compressor like Go's (zlib.NewWriterLevelDict + Flush per block). */
function goLikeCompressor() {
  const z = createDeflate({ dictionary: SPDY3_DICTIONARY, level: 9 });
  return (block: Buffer) =>
    new Promise<Buffer>((resolve) => {
      const out: Buffer[] = [];
      const onData = (d: Buffer) => out.push(d);
      z.on('data', onData);
      z.write(block);
      z.flush(constants.Z_SYNC_FLUSH, () => {
        z.off('data', onData);
        resolve(Buffer.concat(out));
      });
    });
}

function controlFrame(type: number, payload: Buffer, flags = 0): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt16BE(0x8003, 0);
  head.writeUInt16BE(type, 2);
  head.writeUInt32BE((flags << 24) | payload.length, 4);
  return Buffer.concat([head, payload]);
}

describe('SPDY/3 codec', () => {
  it('the dictionary is the spec’s', () => {
    expect(SPDY3_DICTIONARY.length).toBe(1423);
    expect(SPDY3_DICTIONARY.subarray(0, 11).toString('latin1')).toBe('\0\0\0\x07options');
  });

  it('name/value blocks round-trip, names lower-cased, values NUL-joined', () => {
    expect(decodeNameValues(encodeNameValues({ StreamType: ['stdin'], a: ['1', '2'] }))).toEqual({ streamtype: ['stdin'], a: ['1', '2'] });
  });

  it('reads SYN_STREAMs compressed by one zlib stream across frames, split at any byte', async () => {
    const compress = goLikeCompressor();
    const syn = async (id: number, type: string, fin = false) => {
      const block = await compress(encodeNameValues({ streamType: [type] }));
      const head = Buffer.alloc(10);
      head.writeUInt32BE(id, 0);
      return controlFrame(1, Buffer.concat([head, block]), fin ? 1 : 0);
    };
    const wire = Buffer.concat([await syn(1, 'error'), await syn(3, 'stdin'), dataFrame(3, Buffer.from('hello'), true), await syn(5, 'stdout', true)]);
    const parser = new FrameParser();
    const frames = [];
    for (let i = 0; i < wire.length; i += 7) frames.push(...parser.push(wire.subarray(i, i + 7)));
    expect(frames).toEqual([
      { type: 'syn_stream', streamId: 1, fin: false, headers: { streamtype: ['error'] } },
      { type: 'syn_stream', streamId: 3, fin: false, headers: { streamtype: ['stdin'] } },
      { type: 'data', streamId: 3, fin: true, data: Buffer.from('hello') },
      { type: 'syn_stream', streamId: 5, fin: true, headers: { streamtype: ['stdout'] } },
    ]);
  });

  it('writes header blocks any zlib reader with the dictionary inflates, block after block', () => {
    const c = new HeaderCompressor();
    const a = synReplyFrame(c, 1, {});
    const b = synReplyFrame(c, 3, { x: ['y'] });
    const stream = Buffer.concat([a.subarray(12), b.subarray(12)]);
    const out = inflateSync(stream, { dictionary: SPDY3_DICTIONARY, finishFlush: constants.Z_SYNC_FLUSH });
    expect(decodeNameValues(out.subarray(0, 4))).toEqual({});
    expect(decodeNameValues(out.subarray(4))).toEqual({ x: ['y'] });
    // and our own parser reads our own frames
    const p = new FrameParser();
    const c2 = new HeaderCompressor();
    expect(p.push(Buffer.concat([synStreamFrame(c2, 1, { streamtype: ['error'] }), synStreamFrame(c2, 3, { streamtype: ['stdout'] }, true)]))).toEqual([
      { type: 'syn_stream', streamId: 1, fin: false, headers: { streamtype: ['error'] } },
      { type: 'syn_stream', streamId: 3, fin: true, headers: { streamtype: ['stdout'] } },
    ]);
  });

  it('pings, goaways and window updates', () => {
    const ping = Buffer.alloc(4);
    ping.writeUInt32BE(7);
    const wu = Buffer.alloc(8);
    wu.writeUInt32BE(3, 0);
    wu.writeUInt32BE(1000, 4);
    expect(new FrameParser().push(Buffer.concat([controlFrame(6, ping), controlFrame(9, wu), controlFrame(4, Buffer.alloc(4))]))).toEqual([
      { type: 'ping', id: 7 },
      { type: 'window_update', streamId: 3, delta: 1000 },
      { type: 'settings' },
    ]);
  });
});
