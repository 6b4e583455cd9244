/**
 * Wire frames: every frame type of both directions survives both encodings unchanged, client
 * frames pass the gateway's validation, and the bytes on the wire are what a third-party client
 * (any msgpack library, any JSON parser) reads.
 */
import { describe, expect, it } from 'vitest';
import { codecFor, jsonCodec, msgpackCodec, type Codec } from '../../protocol/codec.ts';
import { CLIENT_FRAME_TYPES, ServerFrame, type ClientFrameInput } from '../../protocol/frames.ts';
import { decodeClientFrame } from '../../protocol/validate.ts';
import type { Encoding } from '../../protocol/version.ts';

const ENCODINGS: Encoding[] = ['msgpack', 'json'];
const TS = 1_763_876_400_123;

/** Client frames written out in full (no field left to a schema default), so decoding returns them as they are. */
const CLIENT_FRAMES: Record<string, ClientFrameInput> = {
  'hello (new session)': { t: 'hello', v: 1 },
  'hello (resume, token, client)': {
    t: 'hello',
    v: 1,
    token: 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1MSJ9.sig',
    session: { id: 's_3KfQ9x', key: 'k_Zr81mQbW' },
    client: 'symphonic-js/0.1.0',
  },
  sub: { t: 'sub', id: 1, topic: 'game.42' },
  'sub (resume since)': { t: 'sub', id: 2, topic: 'game.42', since: { seq: 17, epoch: 'e-01HZX' } },
  unsub: { t: 'unsub', id: 3, topic: 'game.42' },
  'pub event with id': { t: 'pub', id: 4, topic: 'chat.room-1', kind: 'event', data: { text: 'héllo ✓', n: 1.5 } },
  'pub set': { t: 'pub', id: 5, topic: 'game.42', kind: 'set', data: { score: { a: 1, b: 0 }, players: ['a', 'b'] } },
  'pub patch': { t: 'pub', id: 6, topic: 'game.42', kind: 'patch', data: { score: { b: 1 }, winner: null } },
  'pub without id (fire and forget)': { t: 'pub', topic: 'chat.room-1', kind: 'event', data: 'hi' },
  'pub with null data': { t: 'pub', id: 0, topic: 'a', kind: 'set', data: null },
  history: { t: 'history', id: 7, topic: 'chat.room-1', since: 100, limit: 50 },
  'history (no since)': { t: 'history', id: 8, topic: 'chat.room-1', limit: 1000 },
  'ping with id': { t: 'ping', id: 2 ** 31 - 1 },
  'ping without id': { t: 'ping' },
  'sub with a subscription token': { t: 'sub', id: 10, topic: 'private.room-1', token: 'eyJhbGciOiJIUzI1NiJ9.eyJ0b3BpYyI6InByaXZhdGUucm9vbS0xIn0.sig' },
  'history with a subscription token': { t: 'history', id: 11, topic: 'private.room-1', limit: 10, token: 'eyJhbGciOiJIUzI1NiJ9.e30.sig' },
  refresh: { t: 'refresh', id: 12, token: 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1MSJ9.sig' },
  session: { t: 'session', id: 14, state: { cart: ['sku-1'], step: 2 } },
  'session (clear)': { t: 'session', id: 15, state: null },
  'hello (resume, with presence info and inbox position)': {
    t: 'hello',
    v: 1,
    session: { id: 's_3KfQ9x', key: 'k_Zr81mQbW' },
    info: { name: 'Ann', color: '#e33' },
    inbox: { seq: 4, epoch: 'e-01HZX' },
  },
  'presence request': { t: 'presence', id: 20, topic: 'room.lobby' },
  'send to a user': { t: 'send', id: 21, to: { user: 'u2' }, data: { text: 'hi' } },
  'send to a session, fire and forget': { t: 'send', to: { session: 's_3KfQ9x' }, data: null },
  rpc: { t: 'rpc', id: 23, method: 'orders.create', data: { sku: 'sku-1', qty: 2 }, timeout: 2000 },
  ice: { t: 'ice', id: 24 },
};

const SERVER_FRAMES: Record<string, ServerFrame> = {
  welcome: { t: 'welcome', v: 1, session: 's_3KfQ9x', key: 'k_Zr81mQbW', resumed: false, heartbeat: 25_000, node: 'gw-1' },
  'welcome (resumed)': { t: 'welcome', v: 1, session: 's_3KfQ9x', key: 'k_new', resumed: true, heartbeat: 25_000, node: 'gw-2' },
  'subscribed (fresh, with state)': {
    t: 'subscribed',
    id: 1,
    topic: 'game.42',
    epoch: 'e-01HZX',
    seq: 17,
    state: { score: { a: 1 } },
    wasRecovering: false,
    recovered: false,
  },
  'subscribed (fresh, topic without state)': {
    t: 'subscribed',
    id: 1,
    topic: 'chat.room-1',
    epoch: 'e-01HZX',
    seq: 0,
    wasRecovering: false,
    recovered: false,
  },
  'subscribed (recovered, replay)': {
    t: 'subscribed',
    id: 2,
    topic: 'game.42',
    epoch: 'e-01HZX',
    seq: 20,
    wasRecovering: true,
    recovered: true,
    replay: [
      { seq: 18, prev: 17, kind: 'patch', data: { score: { b: 1 } }, ts: TS },
      { seq: 20, prev: 18, kind: 'event', data: ['x', 1, true, null], ts: TS + 1 },
    ],
  },
  'subscribed (recovery failed: snapshot)': {
    t: 'subscribed',
    id: 2,
    topic: 'game.42',
    epoch: 'e-02AAA',
    seq: 3,
    state: { score: {} },
    wasRecovering: true,
    recovered: false,
  },
  'subscribed (compact connection: with an alias)': {
    t: 'subscribed',
    id: 3,
    topic: 'game.42',
    epoch: 'e-01HZX',
    seq: 17,
    wasRecovering: false,
    recovered: false,
    alias: 3,
  },
  unsubscribed: { t: 'unsubscribed', id: 3, topic: 'game.42' },
  'msg patch': { t: 'msg', topic: 'game.42', seq: 21, prev: 20, kind: 'patch', data: { score: { a: 2 } }, ts: TS },
  'msg set': { t: 'msg', topic: 'game.42', seq: 22, prev: 21, kind: 'set', data: { score: {} }, ts: TS },
  'msg event (first of topic)': { t: 'msg', topic: 'chat.room-1', seq: 1, prev: 0, kind: 'event', data: 'hi', ts: TS },
  ack: { t: 'ack', id: 4, topic: 'chat.room-1', seq: 2, epoch: 'e-01HZX' },
  'history result': {
    t: 'history',
    id: 7,
    topic: 'chat.room-1',
    epoch: 'e-01HZX',
    seq: 120,
    complete: true,
    messages: [{ seq: 101, prev: 100, kind: 'event', data: { text: 'a' }, ts: TS }],
  },
  'history result (incomplete, empty)': { t: 'history', id: 8, topic: 'chat.room-1', epoch: 'e-01HZX', seq: 0, complete: false, messages: [] },
  'pong with id': { t: 'pong', id: 9 },
  'pong without id': { t: 'pong' },
  hb: { t: 'hb' },
  'error answering a request': { t: 'error', id: 1, code: 2000, message: 'invalid sub frame: topic: ...', topic: 'bad topic' },
  'error (not a reply)': { t: 'error', code: 1000, message: 'not a valid msgpack frame' },
  'welcome (authenticated, resumed after a slow-consumer cut)': {
    t: 'welcome',
    v: 1,
    session: 's_3KfQ9x',
    key: 'k_2',
    resumed: true,
    heartbeat: 25_000,
    node: 'gw-1',
    user: 'u1',
    exp: 1_763_880_000,
    previousClose: { code: 4001, reason: 'slow consumer' },
  },
  refreshed: { t: 'refreshed', id: 12, exp: 1_763_880_000 },
  'refreshed (token without exp)': { t: 'refreshed', id: 13 },
  'session saved': { t: 'session', id: 14 },
  'welcome (resumed on another gateway, with topics and state)': {
    t: 'welcome',
    v: 1,
    session: 's_3KfQ9x',
    key: 'k_3',
    resumed: true,
    heartbeat: 25_000,
    node: 'gw-2',
    topics: ['chat.room-1', 'game.42'],
    state: { cart: ['sku-1'], step: 2 },
  },
  'welcome (resumed, inbox messages were dropped)': {
    t: 'welcome',
    v: 1,
    session: 's_3KfQ9x',
    key: 'k_4',
    resumed: true,
    heartbeat: 25_000,
    node: 'gw-2',
    inboxLost: true,
  },
  'presence (full list)': {
    t: 'presence',
    topic: 'room.lobby',
    count: 2,
    members: [{ session: 's_3KfQ9x', user: 'u1', info: { name: 'Ann' } }, { session: 's_8PwZ1c' }],
  },
  'presence (changes)': { t: 'presence', topic: 'room.lobby', count: 2, join: [{ session: 's_Q2mN7v', user: 'u1' }], leave: [{ session: 's_8PwZ1c' }] },
  'presence (count only, answering a request)': { t: 'presence', id: 20, topic: 'stadium.final', count: 48_211 },
  dm: { t: 'dm', seq: 4, epoch: 'e-01HZX', from: { session: 's_8PwZ1c', user: 'u2' }, data: { text: 'hi' }, ts: TS },
  'dm from a backend': { t: 'dm', seq: 5, epoch: 'e-01HZX', data: 'shipped', ts: TS },
  sent: { t: 'sent', id: 21, sessions: 2 },
  'rpc answer': { t: 'rpc', id: 23, data: { order: 'o-981', total: 19.8 } },
  'ice servers': {
    t: 'ice',
    id: 24,
    servers: [
      { urls: ['stun:127.0.0.1:3478'] },
      { urls: ['turn:127.0.0.1:3478?transport=udp'], username: '1763880000:u1', credential: 'kq8RZ0k6V0j2fPq3yTq0vVb0s7I=' },
    ],
    expires: 1_763_880_000,
  },
  'ice (nothing configured)': { t: 'ice', id: 25, servers: [] },
  'error from a service': { t: 'error', id: 23, code: 2012, message: 'out of stock', data: { sku: 'sku-1' } },
};

function roundTrip(codec: Codec, frame: object): unknown {
  return codec.decode(codec.encode(frame));
}

describe('fixtures cover every frame type', () => {
  it('client fixtures cover every client frame type, and only those', () => {
    const seen = new Set(Object.values(CLIENT_FRAMES).map((f) => f.t));
    expect([...seen].sort()).toEqual([...CLIENT_FRAME_TYPES].sort());
  });

  it('server fixtures cover every server frame type, and only those', () => {
    const types = ServerFrame.options.map((o) => o.shape.t.value);
    const seen = new Set(Object.values(SERVER_FRAMES).map((f) => f.t));
    expect([...seen].sort()).toEqual([...types].sort());
  });

  it('server fixtures match the server frame schemas (so the round-trips test real frames)', () => {
    for (const [name, frame] of Object.entries(SERVER_FRAMES)) {
      expect(ServerFrame.safeParse(frame).success, name).toBe(true);
    }
  });
});

describe.each(ENCODINGS)('%s encoding', (encoding) => {
  const codec = codecFor(encoding);

  it('codecFor picks the matching codec', () => {
    expect(codec.encoding).toBe(encoding);
    expect(codec.binary).toBe(encoding === 'msgpack');
  });

  describe('client frames', () => {
    it.each(Object.entries(CLIENT_FRAMES))('%s round-trips and validates unchanged', (_name, frame) => {
      const bytes = codec.encode(frame);
      expect(roundTrip(codec, frame)).toStrictEqual(frame);
      expect(decodeClientFrame(encoding, bytes)).toStrictEqual({ ok: true, frame });
    });
  });

  describe('server frames', () => {
    it.each(Object.entries(SERVER_FRAMES))('%s round-trips unchanged and still matches its schema', (_name, frame) => {
      const decoded = roundTrip(codec, frame);
      expect(decoded).toStrictEqual(frame);
      expect(ServerFrame.parse(decoded)).toStrictEqual(frame);
    });
  });

  it('fills the schema defaults: pub kind is "event", history limit is 100', () => {
    expect(decodeClientFrame(encoding, codec.encode({ t: 'pub', topic: 'a.b', data: 1 }))).toStrictEqual({
      ok: true,
      frame: { t: 'pub', topic: 'a.b', kind: 'event', data: 1 },
    });
    expect(decodeClientFrame(encoding, codec.encode({ t: 'history', id: 1, topic: 'a' }))).toStrictEqual({
      ok: true,
      frame: { t: 'history', id: 1, topic: 'a', limit: 100 },
    });
  });

  it('accepts request ids at both ends of the range (0 and 2^31-1)', () => {
    for (const id of [0, 2 ** 31 - 1]) {
      const r = decodeClientFrame(encoding, codec.encode({ t: 'sub', id, topic: 'a' }));
      expect(r).toStrictEqual({ ok: true, frame: { t: 'sub', id, topic: 'a' } });
    }
  });

  it('accepts fields at their maximum sizes', () => {
    const hello = {
      t: 'hello',
      v: 1,
      token: 'x'.repeat(8192),
      session: { id: 'i'.repeat(64), key: 'k'.repeat(128) },
      client: 'c'.repeat(64),
    };
    expect(decodeClientFrame(encoding, codec.encode(hello)).ok).toBe(true);
    const sub = { t: 'sub', id: 1, topic: 't'.repeat(200), since: { seq: 0, epoch: 'e'.repeat(64) } };
    expect(decodeClientFrame(encoding, codec.encode(sub)).ok).toBe(true);
    expect(decodeClientFrame(encoding, codec.encode({ t: 'history', id: 1, topic: 'a', since: 0, limit: 1 })).ok).toBe(true);
  });
});

describe('wire format', () => {
  it('msgpack frames are plain msgpack maps with string keys (no msgpackr records), readable by any msgpack library', () => {
    // {"t":"hb"}: fixmap(1), fixstr "t", fixstr "hb"
    expect(Buffer.from(msgpackCodec.encode({ t: 'hb' }) as Uint8Array).toString('hex')).toBe('81a174a26862');
    // {"t":"pong","id":9}
    expect(Buffer.from(msgpackCodec.encode({ t: 'pong', id: 9 }) as Uint8Array).toString('hex')).toBe('82a174a4706f6e67a26964' + '09');
  });

  it('msgpack encodes to bytes and json to a string (binary vs text WebSocket messages)', () => {
    expect(msgpackCodec.encode({ t: 'hb' })).toBeInstanceOf(Uint8Array);
    expect(jsonCodec.encode({ t: 'hb' })).toBe('{"t":"hb"}');
  });

  it('msgpack decodes from an ArrayBuffer (what uWebSockets.js hands the gateway)', () => {
    const bytes = msgpackCodec.encode({ t: 'ping', id: 3 }) as Uint8Array;
    const ab = new ArrayBuffer(bytes.byteLength);
    new Uint8Array(ab).set(bytes);
    expect(decodeClientFrame('msgpack', ab)).toStrictEqual({ ok: true, frame: { t: 'ping', id: 3 } });
  });

  it('json decodes UTF-8 bytes as well as strings', () => {
    const bytes = new TextEncoder().encode('{"t":"pub","topic":"a","kind":"event","data":"é✓"}');
    expect(decodeClientFrame('json', bytes)).toStrictEqual({ ok: true, frame: { t: 'pub', topic: 'a', kind: 'event', data: 'é✓' } });
  });

  it('msgpack carries binary data (msgpack only)', () => {
    const data = new Uint8Array([0, 1, 254, 255]);
    const decoded = msgpackCodec.decode(msgpackCodec.encode({ t: 'msg', data })) as { data: Uint8Array };
    expect(decoded.data).toBeInstanceOf(Uint8Array);
    expect([...decoded.data]).toEqual([0, 1, 254, 255]);
  });

  it('validated client frames are plain data that the json codec re-encodes unchanged', () => {
    for (const frame of Object.values(CLIENT_FRAMES)) {
      const r = decodeClientFrame('msgpack', msgpackCodec.encode(frame));
      expect(r.ok).toBe(true);
      if (r.ok) expect(JSON.parse(jsonCodec.encode(r.frame) as string)).toStrictEqual(frame);
    }
  });
});
