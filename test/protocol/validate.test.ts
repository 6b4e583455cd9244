/**
 * Hostile input is normal input: decodeClientFrame turns every bad frame into a coded error
 * (never a throw), with the code the protocol document promises, and echoes the request id
 * when the frame carried a valid one, so the client can fail the right pending request.
 */
import { describe, expect, it } from 'vitest';
import { codecFor, jsonCodec, msgpackCodec } from '../../protocol/codec.ts';
import { ErrorCode } from '../../protocol/codes.ts';
import { decodeClientFrame, requestIdOf, schemaError } from '../../protocol/validate.ts';
import type { Encoding } from '../../protocol/version.ts';

const ENCODINGS: Encoding[] = ['msgpack', 'json'];
const { BadFrame, InvalidFrame, UnknownFrameType, BadTopic } = ErrorCode;

/** Asserts the exact rejection: code, a message, and the echoed id (no `id` key at all when none is expected). */
function expectRejected(result: ReturnType<typeof decodeClientFrame>, code: number, id?: number): void {
  expect(result).toStrictEqual({ ok: false, code, message: expect.any(String), ...(id === undefined ? {} : { id }) });
  if (!result.ok) expect(result.message.length).toBeGreaterThan(0);
}

const bytes = (...b: number[]) => new Uint8Array(b);

describe('undecodable input -> 1000 BadFrame', () => {
  it.each<[string, Uint8Array | string]>([
    ['a text frame', JSON.stringify({ t: 'ping' })],
    ['an empty text frame', ''],
    ['empty bytes', bytes()],
    ['a truncated map', bytes(0x82, 0xa1, 0x74)],
    ['a truncated string', bytes(0x81, 0xa1, 0x74, 0xa4, 0x70)],
    ['a valid frame followed by trailing bytes', bytes(0x81, 0xa1, 0x74, 0xa4, 0x70, 0x69, 0x6e, 0x67, 0xc0)],
    ['a huge declared array length with no data', bytes(0xdd, 0xff, 0xff, 0xff, 0xff)],
    ['a huge declared string length with no data', bytes(0xdb, 0xff, 0xff, 0xff, 0xff)],
    ['JSON text sent as binary', new TextEncoder().encode('{"t":"ping"}')],
    ['nesting deep enough to exhaust the stack', new Uint8Array([...new Uint8Array(200_000).fill(0x91), 0xc0])],
  ])('msgpack: %s', (_name, input) => {
    expectRejected(decodeClientFrame('msgpack', input), BadFrame);
  });

  it.each<[string, Uint8Array | string]>([
    ['not JSON', 'hello'],
    ['an empty text frame', ''],
    ['truncated JSON', '{"t":"ping"'],
    ['JSON followed by garbage', '{"t":"ping"} x'],
    ['single-quoted keys', "{'t':'ping'}"],
    ['a trailing comma', '{"t":"ping",}'],
    ['invalid UTF-8 (0xff)', bytes(0x7b, 0x22, 0x74, 0x22, 0x3a, 0x22, 0xff, 0x22, 0x7d)],
    ['invalid UTF-8 (overlong encoding of "/")', bytes(0x7b, 0x22, 0x74, 0x22, 0x3a, 0x22, 0xc0, 0xaf, 0x22, 0x7d)],
    ['invalid UTF-8 (lone surrogate ED A0 80)', bytes(0x22, 0xed, 0xa0, 0x80, 0x22)],
    ['msgpack bytes', msgpackCodec.encode({ t: 'ping' }) as Uint8Array],
  ])('json: %s', (_name, input) => {
    expectRejected(decodeClientFrame('json', input), BadFrame);
  });
});

describe.each(ENCODINGS)('%s: schema violations', (encoding) => {
  const codec = codecFor(encoding);
  const decode = (raw: unknown) => decodeClientFrame(encoding, codec.encode(raw as object));

  describe('root that is not a map/object -> 1001 InvalidFrame', () => {
    it.each<[string, unknown]>([
      ['null', null],
      ['an array', [{ t: 'ping', id: 1 }]],
      ['an empty array', []],
      ['a number', 42],
      ['a string', 'ping'],
      ['a boolean', true],
    ])('%s', (_name, raw) => {
      expectRejected(decode(raw), InvalidFrame);
    });
  });

  describe('no known `t` -> 1002 UnknownFrameType', () => {
    it.each<[string, unknown]>([
      ['an empty object', {}],
      ['t missing', { topic: 'a' }],
      ['t not a string', { t: 1 }],
      ['t null', { t: null }],
      ['t of another case', { t: 'PING' }],
      ['t unknown', { t: 'subscribe', topic: 'a' }],
      ['t of a server frame (welcome)', { t: 'welcome', v: 1, session: 's', key: 'k', resumed: false, heartbeat: 1, node: 'n' }],
      ['t of a server frame (hb)', { t: 'hb' }],
      ['t of a server frame (msg)', { t: 'msg', topic: 'a', seq: 1, prev: 0, kind: 'event', data: 1, ts: 1 }],
    ])('%s', (_name, raw) => {
      expectRejected(decode(raw), UnknownFrameType);
    });

    it('echoes a valid request id on an unknown frame type', () => {
      expectRejected(decode({ t: 'subscribe', id: 12, topic: 'a' }), UnknownFrameType, 12);
    });
  });

  describe('missing fields', () => {
    it.each<[string, unknown, number, number | undefined]>([
      ['hello without v', { t: 'hello' }, InvalidFrame, undefined],
      ['sub without id', { t: 'sub', topic: 'a' }, InvalidFrame, undefined],
      ['sub without topic', { t: 'sub', id: 1 }, BadTopic, 1],
      ['unsub without topic', { t: 'unsub', id: 2 }, BadTopic, 2],
      ['unsub without id', { t: 'unsub', topic: 'a' }, InvalidFrame, undefined],
      ['pub without topic', { t: 'pub', id: 4, data: 1 }, BadTopic, 4],
      ['history without id', { t: 'history', topic: 'a' }, InvalidFrame, undefined],
      ['since without epoch', { t: 'sub', id: 5, topic: 'a', since: { seq: 1 } }, InvalidFrame, 5],
      ['since without seq', { t: 'sub', id: 6, topic: 'a', since: { epoch: 'e' } }, InvalidFrame, 6],
      ['hello session without key', { t: 'hello', v: 1, session: { id: 's' } }, InvalidFrame, undefined],
    ])('%s', (_name, raw, code, id) => {
      expectRejected(decode(raw), code, id);
    });
  });

  describe('wrong-typed fields -> 1001 InvalidFrame', () => {
    it.each<[string, unknown, number | undefined]>([
      ['hello v a string', { t: 'hello', v: '1' }, undefined],
      ['hello v fractional', { t: 'hello', v: 1.5 }, undefined],
      ['hello token a number', { t: 'hello', v: 1, token: 123 }, undefined],
      ['hello session a string', { t: 'hello', v: 1, session: 's_1:k_1' }, undefined],
      ['hello client null', { t: 'hello', v: 1, client: null }, undefined],
      ['pub kind unknown', { t: 'pub', id: 1, topic: 'a', kind: 'delete', data: 1 }, 1],
      ['pub kind null', { t: 'pub', id: 1, topic: 'a', kind: null, data: 1 }, 1],
      ['since a number', { t: 'sub', id: 2, topic: 'a', since: 5 }, 2],
      ['since.seq a string', { t: 'sub', id: 2, topic: 'a', since: { seq: '5', epoch: 'e' } }, 2],
      ['since.seq negative', { t: 'sub', id: 2, topic: 'a', since: { seq: -1, epoch: 'e' } }, 2],
      ['since.seq fractional', { t: 'sub', id: 2, topic: 'a', since: { seq: 1.5, epoch: 'e' } }, 2],
      ['since.epoch a number', { t: 'sub', id: 2, topic: 'a', since: { seq: 1, epoch: 1 } }, 2],
      ['history since negative', { t: 'history', id: 3, topic: 'a', since: -1 }, 3],
      ['history since a string', { t: 'history', id: 3, topic: 'a', since: '10' }, 3],
      ['history limit 0', { t: 'history', id: 3, topic: 'a', limit: 0 }, 3],
      ['history limit fractional', { t: 'history', id: 3, topic: 'a', limit: 2.5 }, 3],
      ['ping id a string', { t: 'ping', id: '1' }, undefined],
      ['ping id null', { t: 'ping', id: null }, undefined],
      ['unsub id a boolean', { t: 'unsub', id: true, topic: 'a' }, undefined],
    ])('%s', (_name, raw, id) => {
      expectRejected(decode(raw), InvalidFrame, id);
    });
  });

  describe('extra fields (schemas are strict) -> 1001 InvalidFrame', () => {
    it.each<[string, unknown, number | undefined]>([
      ['hello with id', { t: 'hello', v: 1, id: 1 }, 1],
      ['ping with an extra key', { t: 'ping', x: 1 }, undefined],
      ['ping with id and an extra key', { t: 'ping', id: 4, extra: true }, 4],
      ['sub with since and an extra key', { t: 'sub', id: 5, topic: 'a', since: { seq: 1, epoch: 'e' }, limit: 1 }, 5],
      ['pub with ts', { t: 'pub', id: 6, topic: 'a', data: 1, ts: 5 }, 6],
      ['unsub with since', { t: 'unsub', id: 7, topic: 'a', since: { seq: 1, epoch: 'e' } }, 7],
      ['history with messages (server shape)', { t: 'history', id: 8, topic: 'a', messages: [] }, 8],
      ['an extra key inside since', { t: 'sub', id: 9, topic: 'a', since: { seq: 1, epoch: 'e', x: 0 } }, 9],
      ['an extra key inside session', { t: 'hello', v: 1, session: { id: 's', key: 'k', node: 'gw-1' } }, undefined],
      ['a "__proto__" key', JSON.parse('{"t":"ping","__proto__":{"polluted":true}}'), undefined],
    ])('%s', (_name, raw, id) => {
      expectRejected(decode(raw), InvalidFrame, id);
      expect(({} as { polluted?: unknown }).polluted).toBeUndefined();
    });
  });

  describe('size limits in the schemas -> 1001 InvalidFrame', () => {
    it.each<[string, unknown, number | undefined]>([
      ['token longer than 8192', { t: 'hello', v: 1, token: 'x'.repeat(8193) }, undefined],
      ['session id longer than 64', { t: 'hello', v: 1, session: { id: 'i'.repeat(65), key: 'k' } }, undefined],
      ['session key longer than 128', { t: 'hello', v: 1, session: { id: 'i', key: 'k'.repeat(129) } }, undefined],
      ['client longer than 64', { t: 'hello', v: 1, client: 'c'.repeat(65) }, undefined],
      ['since.epoch longer than 64', { t: 'sub', id: 1, topic: 'a', since: { seq: 1, epoch: 'e'.repeat(65) } }, 1],
      ['history limit over 1000', { t: 'history', id: 2, topic: 'a', limit: 1001 }, 2],
    ])('%s', (_name, raw, id) => {
      expectRejected(decode(raw), InvalidFrame, id);
    });
  });

  describe('bad topics -> 2000 BadTopic, echoing the request id', () => {
    const BAD_TOPICS: [string, unknown][] = [
      ['empty', ''],
      ['201 characters', 'a'.repeat(201)],
      ['wildcard *', '*'],
      ['wildcard * as a token', 'chat.*'],
      ['wildcard > as a token', 'chat.>'],
      ['wildcard >', '>'],
      ['* inside a token', 'chat.ro*m'],
      ['a space', 'chat room'],
      ['a leading space', ' chat'],
      ['a tab', 'chat\tx'],
      ['a leading dot', '.chat'],
      ['a trailing dot', 'chat.'],
      ['a double dot', 'chat..room'],
      ['a slash', 'chat/room'],
      ['a non-ASCII letter', 'café'],
      ['a number', 42],
      ['null', null],
      ['an array', ['chat']],
      ['an object', { name: 'chat' }],
    ];
    for (const [type, extra] of [
      ['sub', {}],
      ['unsub', {}],
      ['pub', { kind: 'event', data: 1 }],
      ['history', {}],
    ] as const) {
      it.each(BAD_TOPICS)(`${type}: %s`, (_name, topic) => {
        expectRejected(decode({ t: type, id: 77, topic, ...extra }), BadTopic, 77);
      });
    }

    it('a fire-and-forget pub with a bad topic is rejected without an id', () => {
      expectRejected(decode({ t: 'pub', topic: 'a b', data: 1 }), BadTopic);
    });

    it('the message names the topic field', () => {
      const r = decode({ t: 'sub', id: 1, topic: 'chat.*' });
      expect(!r.ok && r.message).toContain('topic');
    });
  });

  describe('request ids out of range -> 1001 InvalidFrame, not echoed', () => {
    it.each<[string, unknown]>([
      ['-1', -1],
      ['2^31', 2 ** 31],
      ['2^32', 2 ** 32],
      ['1e15', 1e15],
      ['1.5', 1.5],
      ['a numeric string', '7'],
    ])('id %s', (_name, id) => {
      expectRejected(decode({ t: 'sub', id, topic: 'a' }), InvalidFrame);
      expectRejected(decode({ t: 'ping', id }), InvalidFrame);
      // An out-of-range id is never echoed, even when the frame also has a bad topic.
      const r = decode({ t: 'unsub', id, topic: 'a b' });
      expect(r.ok).toBe(false);
      expect(r).not.toHaveProperty('id');
    });

    it('echoes the largest valid id (2^31-1) on an invalid frame', () => {
      expectRejected(decode({ t: 'sub', id: 2 ** 31 - 1, topic: 'a', extra: 1 }), InvalidFrame, 2 ** 31 - 1);
      expectRejected(decode({ t: 'sub', id: 0, topic: '' }), BadTopic, 0);
    });
  });
});

describe('msgpack-only hostile values', () => {
  it('rejects a NaN request id without echoing it', () => {
    expectRejected(decodeClientFrame('msgpack', msgpackCodec.encode({ t: 'ping', id: NaN })), InvalidFrame);
  });

  it('rejects an Infinity history limit', () => {
    expectRejected(decodeClientFrame('msgpack', msgpackCodec.encode({ t: 'history', id: 1, topic: 'a', limit: Infinity })), InvalidFrame, 1);
  });

  it('rejects a "__proto__" map key (decoded as an unrecognised key) without polluting prototypes', () => {
    // {"t":"ping","__proto__":{"polluted":true}} written by hand: msgpackr would not encode it like this.
    const raw = bytes(
      0x82,
      0xa1,
      0x74,
      0xa4,
      ...new TextEncoder().encode('ping'),
      0xa9,
      ...new TextEncoder().encode('__proto__'),
      0x81,
      0xa8,
      ...new TextEncoder().encode('polluted'),
      0xc3,
    );
    expectRejected(decodeClientFrame('msgpack', raw), InvalidFrame);
    expect(({} as { polluted?: unknown }).polluted).toBeUndefined();
  });

  // msgpackr returns a BigInt for a uint64 beyond 2^53; the error message must not choke on it.
  it('answers 1002 (does not throw) when t is a 64-bit integer', () => {
    const raw = bytes(0x81, 0xa1, 0x74, 0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff);
    expectRejected(decodeClientFrame('msgpack', raw), UnknownFrameType);
  });

  // msgpackr decodes the never-used byte 0xc1 to an internal marker object instead of failing:
  // the codec refuses it wherever it occurs, as any other msgpack library would.
  it('rejects the never-used byte 0xc1 as undecodable', () => {
    expectRejected(decodeClientFrame('msgpack', bytes(0xc1)), BadFrame);
  });

  it('rejects 0xc1 nested in pub data (a map value, an array item) as undecodable', () => {
    const head = msgpackCodec.encode({ t: 'pub', id: 1, topic: 'a', kind: 'event' }) as Uint8Array;
    const pub = (...data: number[]) => new Uint8Array([0x85, ...head.subarray(1), 0xa4, 0x64, 0x61, 0x74, 0x61, ...data]);
    expectRejected(decodeClientFrame('msgpack', pub(0xc1)), BadFrame);
    expectRejected(decodeClientFrame('msgpack', pub(0x81, 0xa1, 0x78, 0x92, 0x01, 0xc1)), BadFrame);
    // The byte inside a string, a binary or a number is data, not the marker.
    expect(decodeClientFrame('msgpack', pub(0xc4, 0x01, 0xc1)).ok).toBe(true);
    expect(decodeClientFrame('msgpack', pub(0xcd, 0x00, 0xc1)).ok).toBe(true);
  });
});

// JSON.parse rounds integer literals beyond 2^53 silently; msgpack refuses them (a BigInt): JSON must too.
describe('json: integer literals outside ±(2^53−1) -> 1001 InvalidFrame', () => {
  it.each([
    ['2^53 + 1 in data', '{"t":"pub","id":5,"topic":"a","data":9007199254740993}', 5],
    ['2^53 in a nested array', '{"t":"pub","id":5,"topic":"a","data":{"x":[1,9007199254740992]}}', 5],
    ['−(2^53 + 1)', '{"t":"pub","id":5,"topic":"a","data":{"n":-9007199254740993}}', 5],
    ['a 30-digit integer', '{"t":"pub","id":5,"topic":"a","data":123456789012345678901234567890}', 5],
    ['in session state', '{"t":"session","id":7,"state":{"big":18446744073709551615}}', 7],
    ['in a fire-and-forget pub (no id to echo)', '{"t":"pub","topic":"a","data":9007199254740993}', undefined],
  ])('%s', (_name, text, id) => {
    const r = decodeClientFrame('json', text);
    expectRejected(r, InvalidFrame, id);
    expect(!r.ok && r.message).toMatch(/outside/);
    // Arriving as bytes (uWS hands text frames over as an ArrayBuffer) changes nothing.
    expectRejected(decodeClientFrame('json', new TextEncoder().encode(text)), InvalidFrame, id);
  });

  it.each([
    ['the largest safe integer', '{"t":"pub","topic":"a","data":[9007199254740991,-9007199254740991]}'],
    [
      'floats with a fraction or an exponent (rounded as JSON floats, like msgpack floats)',
      '{"t":"pub","topic":"a","data":[1e300,9007199254740993.5,1.5E+20,-2e-7]}',
    ],
    [
      'long digit runs inside strings, escaped quotes included',
      '{"t":"pub","topic":"a","data":{"id":"9007199254740993","q":"\\"12345678901234567890\\"","12345678901234567890":1}}',
    ],
  ])('accepts %s', (_name, text) => {
    expect(decodeClientFrame('json', text)).toMatchObject({ ok: true });
  });
});

// Each of these once crashed the gateway after hello (stack overflow in applyMergePatch and the
// encoders; a BigInt the JSON fan-out cannot encode): `data` is bounded at the door.
describe('pub data the gateway cannot carry is rejected', () => {
  const deep = (depth: number) => '{"a":'.repeat(depth) + '1' + '}'.repeat(depth);

  it('json: data nested 10,000 levels deep', () => {
    const frame = `{"t":"pub","id":1,"topic":"a","kind":"patch","data":${deep(10_000)}}`;
    expectRejected(decodeClientFrame('json', frame), InvalidFrame, 1);
  });

  /** A msgpack pub frame whose data is `{"a": {"a": ... 1}}`, `depth` maps deep, written by hand. */
  function deepMsgpackPub(depth: number): Uint8Array {
    const head = msgpackCodec.encode({ t: 'pub', id: 1, topic: 'a', kind: 'patch' }) as Uint8Array;
    const nested: number[] = [];
    for (let i = 0; i < depth; i++) nested.push(0x81, 0xa1, 0x61);
    return new Uint8Array([0x85, ...head.subarray(1), 0xa4, 0x64, 0x61, 0x74, 0x61, ...nested, 0x01]);
  }

  it('msgpack: data nested 3,000 levels deep (decodes, but msgpackr cannot re-encode it)', () => {
    expectRejected(decodeClientFrame('msgpack', deepMsgpackPub(3000)), InvalidFrame, 1);
  });

  it('still accepts data nested 32 levels deep', () => {
    expect(decodeClientFrame('json', `{"t":"pub","id":1,"topic":"a","kind":"patch","data":${deep(32)}}`).ok).toBe(true);
    expect(decodeClientFrame('msgpack', deepMsgpackPub(32)).ok).toBe(true);
  });

  it('accepts a pub without data as null data', () => {
    const r = decodeClientFrame('json', '{"t":"pub","topic":"a"}');
    expect(r.ok && r.frame.t === 'pub' && r.frame.data).toBe(null);
  });

  it('msgpack: a 64-bit integer beyond 2^53 in data', () => {
    const raw = bytes(
      0x84,
      0xa1,
      0x74,
      0xa3,
      0x70,
      0x75,
      0x62,
      0xa2,
      0x69,
      0x64,
      0x01,
      0xa5,
      0x74,
      0x6f,
      0x70,
      0x69,
      0x63,
      0xa1,
      0x61,
      0xa4,
      0x64,
      0x61,
      0x74,
      0x61,
      0xcf,
      0xff,
      0xff,
      0xff,
      0xff,
      0xff,
      0xff,
      0xff,
      0xff,
    );
    expectRejected(decodeClientFrame('msgpack', raw), InvalidFrame, 1);
  });
});

describe('never throws', () => {
  /** Deterministic xorshift32 so a failure reproduces. */
  function rng(seed: number) {
    let x = seed >>> 0 || 1;
    return () => {
      x ^= x << 13;
      x >>>= 0;
      x ^= x >>> 17;
      x ^= x << 5;
      x >>>= 0;
      return x;
    };
  }
  const VALID = [
    { t: 'hello', v: 1, token: 'tok', session: { id: 's', key: 'k' } },
    { t: 'sub', id: 1, topic: 'game.42', since: { seq: 17, epoch: 'e' } },
    { t: 'pub', id: 2, topic: 'a.b', kind: 'patch', data: { x: [1, 2, { y: null }] } },
    { t: 'history', id: 3, topic: 'a', since: 5, limit: 10 },
  ];
  const CODES = new Set<number>([BadFrame, InvalidFrame, UnknownFrameType, BadTopic]);

  it.each(ENCODINGS)('%s: answers random and mutated frames with a protocol error code or a frame', (encoding) => {
    const next = rng(encoding === 'json' ? 7 : 11);
    const codec = codecFor(encoding);
    for (let i = 0; i < 3000; i++) {
      let input: Uint8Array;
      if (i % 2 === 0) {
        input = new Uint8Array(next() % 40).map(() => next() & 0xff);
      } else {
        const enc = codec.encode(VALID[i % VALID.length]!);
        input = typeof enc === 'string' ? new TextEncoder().encode(enc) : new Uint8Array(enc);
        for (let k = 0; k < 1 + (next() % 3); k++) input[next() % input.length] = next() & 0xff;
      }
      const r = decodeClientFrame(encoding, input);
      if (!r.ok) expect(CODES.has(r.code), `code ${r.code}`).toBe(true);
    }
  });

  it('json decoding of deeply nested data does not throw', () => {
    const deep = '{"t":"pub","topic":"a","data":' + '['.repeat(100_000) + ']'.repeat(100_000) + '}';
    expect(() => decodeClientFrame('json', deep)).not.toThrow();
    expect(() => jsonCodec.decode(deep)).not.toThrow();
  });
});

describe('the shared rules (also used by the gateway transport and the HTTP API)', () => {
  it('requestIdOf: an integer id in [0, 2^31) of a map, else nothing', () => {
    expect(requestIdOf({ t: 'sub', id: 0 })).toBe(0);
    expect(requestIdOf({ id: 2 ** 31 - 1 })).toBe(2 ** 31 - 1);
    for (const raw of [{ id: 2 ** 31 }, { id: -1 }, { id: 1.5 }, { id: '1' }, {}, null, 7, 'x', [1]])
      expect(requestIdOf(raw), JSON.stringify(raw)).toBeUndefined();
  });

  it('schemaError: the first issue by its field; a bad topic is 2000 whatever the fallback code', () => {
    const issue = (path: PropertyKey[], message = 'bad') => ({ issues: [{ path, message }] });
    expect(schemaError(issue(['topic']), ErrorCode.BadRequest, 'body')).toEqual({ code: BadTopic, message: 'topic: bad' });
    expect(schemaError(issue(['data', 'x', 0]), ErrorCode.BadRequest, 'body')).toEqual({ code: ErrorCode.BadRequest, message: 'data.x.0: bad' });
    expect(schemaError(issue([]), InvalidFrame, 'sub')).toEqual({ code: InvalidFrame, message: 'sub: bad' });
    expect(schemaError({ issues: [] }, InvalidFrame, 'pub')).toEqual({ code: InvalidFrame, message: 'pub: does not match the schema' });
  });
});
