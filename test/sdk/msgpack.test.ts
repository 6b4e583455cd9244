/** The SDK's small msgpack must be wire-compatible with the gateway's msgpackr, both ways. */
import { Packr, Unpackr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { decode, encode } from '../../sdk/msgpack.ts';

// The gateway's exact configuration (protocol/codec.ts).
const packr = new Packr({ useRecords: false, mapsAsObjects: true, variableMapSize: true });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });

const ints = [
  0,
  1,
  31,
  32,
  127,
  128,
  255,
  256,
  65535,
  65536,
  2 ** 31 - 1,
  2 ** 31,
  2 ** 32 - 1,
  2 ** 32,
  2 ** 53 - 1,
  -1,
  -31,
  -32,
  -33,
  -127,
  -128,
  -129,
  -32768,
  -32769,
  -(2 ** 31),
  -(2 ** 31) - 1,
  -(2 ** 53 - 1),
];
const floats = [0.5, -0.25, Math.PI, 1e-300, 1e300, Number.MIN_VALUE, Infinity, -Infinity];
const strings = [
  '',
  'a',
  'x'.repeat(31),
  'x'.repeat(32),
  'y'.repeat(255),
  'y'.repeat(256),
  'z'.repeat(65535),
  'z'.repeat(65536),
  'héllo wörld',
  '日本語のテキスト',
  '😀 emoji 🎉',
  '\u0000nul',
  'x'.repeat(30) + 'é',
];
const bins = [new Uint8Array(0), new Uint8Array([1, 2, 3]), new Uint8Array(255).fill(7), new Uint8Array(256).fill(8), new Uint8Array(70000).fill(9)];

const frames: unknown[] = [
  { t: 'hello', v: 1, token: 'abc.def', session: { id: 's', key: 'k' } },
  { t: 'subscribed', id: 3, topic: 'demo.board', epoch: 'e-1', seq: 42, state: { cells: { '1,2': '#ff0000' } }, wasRecovering: true, recovered: false },
  { t: 'msg', topic: 'a.b', seq: 2 ** 40, prev: 2 ** 40 - 1, kind: 'patch', data: { a: null, b: [1, 'two', { three: 3 }] }, ts: Date.now() },
  {
    t: 'history',
    id: 1,
    topic: 'x',
    epoch: 'e',
    seq: 3,
    messages: Array.from({ length: 20 }, (_, i) => ({ seq: i + 1, prev: i, kind: 'event', data: i, ts: 1 })),
    complete: true,
  },
  Array.from({ length: 17 }, (_, i) => i),
  Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, i])),
  Object.fromEntries(Array.from({ length: 70000 }, (_, i) => [`k${i}`, i])),
  new Array(70000).fill(null),
  [true, false, null, [], {}, [[[]]], { a: { b: { c: {} } } }],
];

describe('msgpack: SDK encoder -> msgpackr decoder', () => {
  for (const v of [...ints, ...floats, ...strings, true, false, null, ...frames]) {
    it(`${describeValue(v)}`, () => {
      expect(unpackr.unpack(encode(v))).toEqual(v);
    });
  }
  it('NaN', () => expect(unpackr.unpack(encode(NaN))).toBeNaN());
  it('binary', () => {
    for (const b of bins) expect(new Uint8Array(unpackr.unpack(encode(b)) as Uint8Array)).toEqual(b);
    expect(new Uint8Array(unpackr.unpack(encode(new Uint8Array([5, 6]).buffer)) as Uint8Array)).toEqual(new Uint8Array([5, 6]));
  });
  it('undefined object values are left out, like JSON', () => {
    expect(unpackr.unpack(encode({ a: 1, b: undefined }))).toEqual({ a: 1 });
  });
  it('Date becomes a msgpack timestamp', () => {
    for (const d of [new Date(0), new Date(1_700_000_000_000), new Date(1_700_000_000_123), new Date(-5000)]) {
      expect((unpackr.unpack(encode(d)) as Date).getTime()).toBe(d.getTime());
    }
  });
  it('bigint', () => {
    expect(unpackr.unpack(encode(2n ** 60n))).toEqual(2n ** 60n);
    expect(unpackr.unpack(encode(-(2n ** 60n)))).toEqual(-(2n ** 60n));
  });
  it('is byte-identical to msgpackr for the frames the SDK sends', () => {
    for (const v of [...ints.filter((n) => Math.abs(n) < 2 ** 32), ...strings.slice(0, 8), frames[0], frames[1], frames[4], frames[5]]) {
      expect(Buffer.from(encode(v)).equals(packr.pack(v))).toBe(true);
    }
  });
});

describe('msgpack: msgpackr encoder -> SDK decoder', () => {
  for (const v of [...ints, ...floats, ...strings, true, false, null, ...frames]) {
    it(`${describeValue(v)}`, () => {
      expect(decode(packr.pack(v))).toEqual(v);
    });
  }
  it('binary comes back as Uint8Array', () => {
    for (const b of bins) expect(decode(packr.pack(b))).toEqual(b);
  });
  it("msgpackr's undefined extension", () => {
    expect(decode(packr.pack({ a: undefined, b: 1 }))).toEqual({ a: undefined, b: 1 });
    expect(decode(packr.pack([undefined]))).toEqual([undefined]);
  });
  it('dates (timestamp extension, 32/64/96-bit)', () => {
    for (const d of [new Date(0), new Date(1_700_000_000_000), new Date(1_700_000_000_123), new Date(-5000), new Date(2 ** 34 * 1000 + 7)]) {
      expect((decode(packr.pack(d)) as Date).getTime()).toBe(d.getTime());
    }
  });
  it('float32 and 64-bit integers', () => {
    const f32 = new Packr({ useRecords: false, useFloat32: 1 });
    expect(decode(f32.pack(0.5))).toBe(0.5);
    expect(decode(packr.pack(2n ** 60n))).toBe(2n ** 60n);
    expect(decode(packr.pack(12n))).toBe(12);
    expect(decode(packr.pack(-12n))).toBe(-12);
  });
  it('rejects truncated input, trailing bytes and unknown types', () => {
    const bytes = packr.pack({ a: 'hello' });
    expect(() => decode(bytes.subarray(0, bytes.length - 1))).toThrow(/end of input/);
    expect(() => decode(new Uint8Array([...bytes, 0]))).toThrow(/trailing/);
    expect(() => decode(new Uint8Array([0xc1]))).toThrow(/unknown type/);
    expect(() => decode(new Uint8Array([0xdd, 0xff, 0xff, 0xff, 0xff]))).toThrow(/longer than the input/);
  });
  it('a __proto__ key stays a plain key', () => {
    const v = decode(packr.pack(JSON.parse('{"__proto__":{"polluted":true}}'))) as Record<string, unknown>;
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.keys(v)).toEqual(['__proto__']);
  });
});

describe('msgpack: random documents round-trip both ways', () => {
  let seed = 1234567;
  const rnd = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const pick = <T>(xs: T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  /** Any Unicode scalar value (lone surrogates are not valid UTF-8 and have no msgpack encoding). */
  const codePoint = (): number => {
    const c = Math.floor(rnd() * 0x2ffff);
    return c >= 0xd800 && c <= 0xdfff ? c - 0x800 : c;
  };
  function gen(depth: number): unknown {
    const r = rnd();
    if (depth > 4 || r < 0.5) {
      return pick<() => unknown>([
        () => pick(ints),
        () => pick(floats),
        () => Math.floor((rnd() - 0.5) * 2 ** 40),
        () => rnd() * 1000,
        () => pick(strings.slice(0, 6)) + String.fromCodePoint(codePoint()),
        () => null,
        () => rnd() < 0.5,
      ])();
    }
    if (r < 0.75) return Array.from({ length: Math.floor(rnd() * 8) }, () => gen(depth + 1));
    return Object.fromEntries(Array.from({ length: Math.floor(rnd() * 8) }, (_, i) => [`key${i}-${Math.floor(rnd() * 100)}`, gen(depth + 1)]));
  }
  it('500 documents', () => {
    for (let i = 0; i < 500; i++) {
      const v = gen(0);
      expect(unpackr.unpack(encode(v))).toEqual(v);
      expect(decode(packr.pack(v))).toEqual(v);
      expect(decode(encode(v))).toEqual(v);
    }
  });
});

function describeValue(v: unknown): string {
  const s = typeof v === 'string' ? `string(${v.length})` : (JSON.stringify(v) ?? String(v));
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}
