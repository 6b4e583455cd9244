import { describe, expect, it } from 'vitest';
import { FrameParser, OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_TEXT, encodeFrame } from '../../loadtest/lib/ws-frames.ts';

/** A server-to-client (unmasked) frame, optionally masked to check tolerance. */
function serverFrame(opcode: number, payload: Buffer, fin = true, maskKey?: Buffer): Buffer {
  const len = payload.length;
  const ext = len < 126 ? Buffer.alloc(0) : len < 65536 ? Buffer.alloc(2) : Buffer.alloc(8);
  if (len >= 126 && len < 65536) ext.writeUInt16BE(len);
  if (len >= 65536) ext.writeBigUInt64BE(BigInt(len));
  const b1 = (maskKey ? 0x80 : 0) | (len < 126 ? len : len < 65536 ? 126 : 127);
  const body = maskKey ? Buffer.from(payload.map((v, i) => v ^ maskKey[i & 3]!)) : payload;
  return Buffer.concat([Buffer.from([(fin ? 0x80 : 0) | opcode, b1]), ext, maskKey ?? Buffer.alloc(0), body]);
}

function filled(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

/** Feeds `bytes` to a parser in pieces of `step` bytes; returns what it saw. */
function feed(bytes: Buffer, step: number, decode: boolean, minCountBytes = 0) {
  const messages: { payload: Buffer; binary: boolean }[] = [];
  const pings: Buffer[] = [];
  const closes: { code: number; reason: string }[] = [];
  const p = new FrameParser(
    {
      onMessage: (payload, binary) => messages.push({ payload, binary }),
      onPing: (b) => pings.push(b),
      onClose: (code, reason) => closes.push({ code, reason }),
    },
    { decode, minCountBytes },
  );
  for (let i = 0; i < bytes.length; i += step) p.push(bytes, i, Math.min(bytes.length, i + step));
  return { p, messages, pings, closes };
}

const sizes = [0, 1, 100, 125, 126, 127, 65535, 65536, 70000];
const stream = Buffer.concat([
  ...sizes.map((n, i) => serverFrame(i % 2 ? OP_TEXT : OP_BINARY, filled(n, i))),
  serverFrame(OP_PING, Buffer.from('hi')),
  // A fragmented message: 3 + 4 + 5 bytes.
  serverFrame(OP_BINARY, filled(3, 7), false),
  serverFrame(OP_PING, Buffer.alloc(0)), // control frames may come between fragments
  serverFrame(OP_CONT, filled(4, 8), false),
  serverFrame(OP_CONT, filled(5, 9), true),
  serverFrame(OP_TEXT, Buffer.from('masked'), true, Buffer.from([1, 2, 3, 4])),
  serverFrame(OP_CLOSE, Buffer.concat([Buffer.from([0x0f, 0xa1]), Buffer.from('bye')])),
]);
const totalBytes = sizes.reduce((a, b) => a + b, 0) + 12 + 6;

describe('FrameParser', () => {
  for (const step of [1, 2, 3, 7, 100, 4096, stream.length]) {
    it(`counts and decodes every frame when fed ${step} byte(s) at a time`, () => {
      const count = feed(stream, step, false);
      expect(count.p.count).toBe(sizes.length + 2);
      expect(count.p.bytes).toBe(totalBytes);
      expect(count.messages).toHaveLength(0); // count-only never decodes
      expect(count.pings.map((b) => b.toString())).toEqual(['hi', '']);
      expect(count.closes).toEqual([{ code: 4001, reason: 'bye' }]);

      const dec = feed(stream, step, true);
      expect(dec.p.count).toBe(sizes.length + 2);
      expect(dec.messages).toHaveLength(sizes.length + 2);
      sizes.forEach((n, i) => {
        expect(dec.messages[i]!.payload.equals(filled(n, i))).toBe(true);
        expect(dec.messages[i]!.binary).toBe(i % 2 === 0);
      });
      expect(dec.messages[sizes.length]!.payload.equals(Buffer.concat([filled(3, 7), filled(4, 8), filled(5, 9)]))).toBe(true);
      expect(dec.messages[sizes.length + 1]!.payload.toString()).toBe('masked');
    });
  }

  it('leaves messages shorter than minCountBytes out of the count', () => {
    const { p } = feed(stream, 5, false, 126);
    expect(p.count).toBe(5); // 126, 127, 65535, 65536, 70000
  });

  it('can switch from decode to count-only between messages', () => {
    const bytes = Buffer.concat([serverFrame(OP_TEXT, Buffer.from('welcome')), serverFrame(OP_BINARY, filled(50, 1)), serverFrame(OP_BINARY, filled(50, 2))]);
    const seen: string[] = [];
    const p: FrameParser = new FrameParser(
      {
        onMessage: (b) => {
          seen.push(b.toString());
          p.decode = false;
        },
      },
      { decode: true },
    );
    for (let i = 0; i < bytes.length; i++) p.push(bytes, i, i + 1);
    expect(seen).toEqual(['welcome']);
    expect(p.count).toBe(3);
  });

  it('decodes only every n-th message with sampleEvery, and counts all', () => {
    const frames = Buffer.concat(Array.from({ length: 10 }, (_, i) => serverFrame(OP_BINARY, filled(30, i))));
    const seen: Buffer[] = [];
    const p = new FrameParser({ onMessage: (b) => seen.push(b) }, { decode: true });
    p.sampleEvery = 3;
    for (let i = 0; i < frames.length; i += 7) p.push(frames, i, Math.min(frames.length, i + 7));
    expect(p.count).toBe(10);
    expect(seen.map((b) => b.equals(filled(30, 2)) || b.equals(filled(30, 5)) || b.equals(filled(30, 8)))).toEqual([true, true, true]);
  });

  it('rejects reserved bits and oversized control frames', () => {
    expect(() => feed(Buffer.from([0xc2, 0x00]), 1, false)).toThrow(/reserved bits/);
    expect(() => feed(serverFrame(OP_PING, Buffer.alloc(126)), 1, false)).toThrow(/control/);
  });
});

describe('encodeFrame', () => {
  it('masks the payload so that unmasking restores it, for all length forms', () => {
    for (const n of [0, 5, 125, 126, 65535, 65536]) {
      const payload = filled(n, n);
      const f = encodeFrame(OP_BINARY, payload);
      expect(f[0]).toBe(0x80 | OP_BINARY);
      expect(f[1]! & 0x80).toBe(0x80);
      const hl = n < 126 ? 2 : n < 65536 ? 4 : 10;
      const key = f.subarray(hl, hl + 4);
      const body = Buffer.from(f.subarray(hl + 4).map((v, i) => v ^ key[i & 3]!));
      expect(body.equals(payload)).toBe(true);
    }
  });
});
