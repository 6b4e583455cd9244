/**
 * Fuzzing the WebSocket ingress, bounded and reproducible (seed below, or FUZZ_SEED=n): workers
 * send tens of thousands of random, mutated and hostile frames in both encodings: random bytes,
 * byte-flipped and truncated frames, wrong field types, unknown frame kinds, non-JSON msgpack
 * values (64-bit ints, timestamps, NaN), deep nesting, `__proto__` keys, oversized frames,
 * invalid UTF-8, text/binary mix-ups, odd WebSocket opcodes and fragments, forged tokens, and
 * floods past the rate limit. Meanwhile a legitimate client holds a private topic fed by the
 * HTTP API. Afterwards: the gateway process is alive and serves a well-behaved client, no
 * fuzzing socket ever received a message of a topic it was not subscribed to (nor of the private
 * one), every frame the server sent was a valid server frame, and the gateway's memory is back
 * within a bound.
 */
import { Packr } from 'msgpackr';
import { afterAll, expect, it } from 'vitest';
import { ServerFrame } from '../../protocol/frames.ts';
import { SUBPROTOCOL_JSON, SUBPROTOCOL_MSGPACK, codecFor, type Encoding } from '../../protocol/index.ts';
import { connectRaw, isMsg, isReply } from '../support/raw-client.ts';
import { spawnGateway } from './support/child-gateway.ts';
import { openNetWs, type NetWs } from './support/net-ws.ts';
import { rng, type Rng } from './support/prng.ts';
import { hs256, SECRET } from './support/tokens.ts';

const SEED = Number(process.env.FUZZ_SEED ?? 0x5eed_2026);
const TOTAL_FRAMES = 40_000;
const WORKERS = 12;
const MAX_FRAME = 4096;
const KEY = 'fuzz-api-key-0123456789';
const SENTINEL = 2 ** 31 - 1;

const gw = await spawnGateway({
  ws: { maxFrameBytes: MAX_FRAME, maxErrors: 100, maxSubscriptions: 16 },
  auth: { secret: SECRET },
  api: { keys: [KEY] },
  bus: { history: { size: 20 } },
  namespaces: { secret: { subscribe: 'token', publish: 'server' } },
});
afterAll(() => gw.close());

// Raw msgpack: able to write what the protocol forbids (BigInt, Date, NaN, undefined).
const packr = new Packr({ useRecords: false, mapsAsObjects: true, variableMapSize: true });
const encode = (enc: Encoding, v: unknown): Uint8Array =>
  enc === 'json' ? Buffer.from(JSON.stringify(v, (_, x) => (typeof x === 'bigint' ? x.toString() : x)) ?? 'null') : packr.pack(v);

const WEIRD_KEYS = ['__proto__', 'constructor', 'prototype', 't', 'id', 'topic', 'data', '', 'é', '\u0000'];
const FRAME_TYPES = ['hello', 'sub', 'unsub', 'pub', 'history', 'ping', 'refresh'];

function randomString(r: Rng): string {
  switch (r.int(5)) {
    case 0:
      return '';
    case 1:
      return 'x'.repeat(r.int(300));
    case 2:
      return String.fromCodePoint(...Array.from({ length: 1 + r.int(12) }, () => r.pick([0x41, 0xe9, 0x2713, 0x1f600, 0xfffd, 0x200b, 0x0]) + r.int(3)));
    case 3:
      return r.pick(['*', '>', 'a.>', 'a..b', ' ', '.', 'a b', 'secret.room', '$hb', 'j:a', 'm:a']);
    default:
      return r.next().toString(36).slice(2);
  }
}

function randomValue(r: Rng, enc: Encoding, depth = 0): unknown {
  const k = r.int(depth > 3 ? 6 : 10);
  switch (k) {
    case 0:
      return null;
    case 1:
      return r.chance(0.5);
    case 2:
      return r.pick([0, -1, 1.5, 2 ** 31, 2 ** 31 - 1, -(2 ** 31), 2 ** 53, Number.MAX_VALUE, 1e-300, r.int(1000)]);
    case 3:
      return randomString(r);
    case 4:
      if (enc === 'msgpack')
        return r.pick([
          BigInt('18446744073709551615'),
          BigInt(-(2 ** 60)),
          new Date(r.int(2e12)),
          Number.NaN,
          Number.POSITIVE_INFINITY,
          undefined,
          new Uint8Array(r.int(64)),
        ]);
      return r.int(10);
    case 5: {
      let v: unknown = r.int(9);
      for (let i = 0, n = r.pick([2, 31, 33, 100, 500]); i < n; i++) v = r.chance(0.5) ? [v] : { a: v };
      return v;
    }
    case 6:
    case 7:
      return Array.from({ length: r.int(6) }, () => randomValue(r, enc, depth + 1));
    default: {
      const o: Record<string, unknown> = {};
      for (let i = 0, n = r.int(6); i < n; i++)
        Object.defineProperty(o, r.chance(0.3) ? r.pick(WEIRD_KEYS) : randomString(r).slice(0, 20), {
          value: randomValue(r, enc, depth + 1),
          enumerable: true,
          writable: true,
          configurable: true,
        });
      return o;
    }
  }
}

interface Worker {
  readonly ns: string;
  readonly r: Rng;
  sent: number;
}

function topic(w: Worker): unknown {
  const r = w.r;
  const x = r.next();
  if (x < 0.75) return `${w.ns}.t${r.int(6)}`;
  if (x < 0.8) return r.pick(['secret.room', 'secret.room.x']);
  if (x < 0.85) return `${w.ns}.${'y'.repeat(150 + r.int(100))}`;
  return r.chance(0.5) ? randomString(r) : randomValue(r, 'json');
}

/** A frame as an object: mostly well formed, then maybe mutated. */
function frameObject(w: Worker, enc: Encoding): Record<string, unknown> {
  const r = w.r;
  const t = r.chance(0.05) ? randomString(r) : r.pick(FRAME_TYPES);
  const f: Record<string, unknown> = { t };
  const id = r.chance(0.9) ? r.int(1000) : r.pick([-1, 1.5, 2 ** 31, '7', null]);
  switch (t) {
    case 'hello':
      Object.assign(f, { v: r.chance(0.98) ? 1 : r.int(3), ...(r.chance(0.3) ? { token: r.chance(0.5) ? 'x.y.z' : randomString(r) } : {}) });
      break;
    case 'sub':
      Object.assign(f, {
        id,
        topic: topic(w),
        ...(r.chance(0.2) ? { since: { seq: r.int(100), epoch: randomString(r).slice(0, 70) } } : {}),
        ...(r.chance(0.1) ? { token: 'eyJhbGciOiJIUzI1NiJ9.eyJ0b3BpYyI6InNlY3JldC5yb29tIn0.forged' } : {}),
      });
      break;
    case 'unsub':
      Object.assign(f, { id, topic: topic(w) });
      break;
    case 'pub':
      Object.assign(f, {
        ...(r.chance(0.7) ? { id } : {}),
        topic: topic(w),
        kind: r.chance(0.9) ? r.pick(['event', 'set', 'patch']) : randomString(r),
        data: r.chance(0.5) ? { n: r.int(1000) } : randomValue(r, enc),
      });
      break;
    case 'history':
      Object.assign(f, { id, topic: topic(w), ...(r.chance(0.5) ? { since: r.int(30) } : {}), limit: r.chance(0.9) ? 1 + r.int(50) : r.pick([0, 1001, -5]) });
      break;
    case 'ping':
      if (r.chance(0.7)) f.id = id;
      break;
    case 'refresh':
      Object.assign(f, { id, token: r.chance(0.5) ? 'a.b.c' : randomString(r) });
      break;
  }
  if (r.chance(0.2)) {
    const keys = Object.keys(f);
    switch (r.int(4)) {
      case 0:
        delete f[r.pick(keys)];
        break;
      case 1:
        f[r.pick(keys)] = randomValue(r, enc);
        break;
      case 2:
        f[r.pick(WEIRD_KEYS.filter((k) => k !== '__proto__'))] = randomValue(r, enc);
        break;
      default:
        f.t = r.pick([...FRAME_TYPES, 'msg', 'welcome', 'error', 'TRUNCATE', '']);
    }
  }
  return f;
}

interface Action {
  opcode: number;
  payload: Uint8Array;
  fin?: boolean;
}

/**
 * One thing to send: a data frame of the connection's kind, or something nastier. Text frames
 * stay valid UTF-8 except in the rare explicit case: uWS ends a connection on invalid UTF-8
 * before the gateway sees it, and every such end would cut the fuzzing of that connection short.
 */
function action(w: Worker, enc: Encoding): Action {
  const r = w.r;
  const text = enc === 'json';
  const dataOp = text ? 1 : 2;
  const junk = (n: number) => (text ? Uint8Array.from(r.bytes(n), (b) => 0x20 + (b % 95)) : r.bytes(n));
  const x = r.next();
  if (x < 0.55) return { opcode: dataOp, payload: encode(enc, frameObject(w, enc)) };
  if (x < 0.75) {
    // byte-level mutation of a valid-looking frame
    const bytes = Buffer.from(encode(enc, frameObject(w, enc)));
    const kind = r.int(3);
    if (kind === 0) for (let i = 0, n = 1 + r.int(2); i < n; i++) bytes[r.int(bytes.length)] = junk(1)[0]!;
    if (kind === 1)
      return { opcode: dataOp, payload: text ? Buffer.from(bytes.toString('utf8').slice(0, r.int(bytes.length))) : bytes.subarray(0, r.int(bytes.length)) };
    if (kind === 2) return { opcode: dataOp, payload: Buffer.concat([bytes, junk(1 + r.int(20))]) };
    return { opcode: dataOp, payload: bytes };
  }
  if (x < 0.85) return { opcode: dataOp, payload: junk(r.int(200)) };
  if (x < 0.9) {
    // the other kind of message: binary on a JSON connection, JSON text on a msgpack one
    return text
      ? { opcode: 2, payload: encode(r.chance(0.5) ? 'json' : 'msgpack', frameObject(w, enc)) }
      : { opcode: 1, payload: encode('json', frameObject(w, enc)) };
  }
  if (x < 0.93) return { opcode: dataOp, payload: encode(enc, { t: 'pub', topic: `${w.ns}.big`, data: 'z'.repeat(MAX_FRAME + r.int(MAX_FRAME - 100)) }) }; // 1003
  if (x < 0.95) return { opcode: 9, payload: r.bytes(r.int(125)) }; // client ping
  // Rare, because each ends the connection: uWS closes on these before the gateway sees a frame.
  if (x < 0.952) return { opcode: 1, payload: Uint8Array.from([0x7b, 0xff, 0xfe, 0xc0, 0x80, 0x7d]) }; // invalid UTF-8 text
  if (x < 0.954) return { opcode: dataOp, payload: encode(enc, frameObject(w, enc)), fin: false }; // a fragment never finished properly
  if (x < 0.955) return { opcode: r.pick([3, 4, 5, 6, 7, 11, 12, 13, 14, 15]), payload: r.bytes(r.int(20)) }; // reserved opcodes
  if (x < 0.956) return { opcode: dataOp, payload: junk(2 * MAX_FRAME + 10 + r.int(1000)) }; // far over the limit: cut unread
  return { opcode: dataOp, payload: encode(enc, { t: 'ping', id: r.int(100) }) };
}

interface Report {
  frames: number;
  connections: number;
  msgs: number;
  leaks: string[];
  invalid: string[];
  closes: Record<string, number>;
}

async function runWorker(w: Worker, quota: number, report: Report): Promise<void> {
  const r = w.r;
  while (w.sent < quota) {
    const enc: Encoding = r.chance(0.5) ? 'json' : 'msgpack';
    if (r.chance(0.01)) {
      const refused = await openNetWs(gw.port, { protocol: 'symphonic.v9.xml' });
      expect(refused.ok).toBe(false);
      continue;
    }
    const ws = (await openNetWs(gw.port, { protocol: enc === 'json' ? SUBPROTOCOL_JSON : SUBPROTOCOL_MSGPACK })) as NetWs;
    report.connections++;
    const codec = codecFor(enc);
    const subscribed = new Set<string>();
    const msgTopics: string[] = [];
    let sentinel: (() => void) | null = null;
    ws.onMessage = (payload, binary) => {
      let f: unknown;
      try {
        f = codec.decode(binary ? payload : payload.toString('utf8'));
      } catch (e) {
        report.invalid.push(`undecodable server frame: ${(e as Error).message}`);
        return;
      }
      const parsed = ServerFrame.safeParse(f);
      if (!parsed.success) report.invalid.push(JSON.stringify(f).slice(0, 200));
      const frame = f as { t: string; topic?: string; id?: number };
      if (frame.t === 'subscribed') subscribed.add(frame.topic!);
      if (frame.t === 'msg') {
        report.msgs++;
        msgTopics.push(frame.topic!);
      }
      if (frame.id === SENTINEL) sentinel?.();
    };
    if (r.chance(0.9)) {
      ws.send(encode(enc, { t: 'hello', v: 1 }));
      // Own topics to receive on, so the leak check has traffic to judge.
      for (let k = 0; k < 3; k++) ws.send(encode(enc, { t: 'sub', id: 900 + k, topic: `${w.ns}.t${r.int(6)}` }));
    }
    const burst = r.chance(0.03);
    const n = burst ? 300 : 20 + r.int(200);
    for (let i = 0; i < n && w.sent < quota; i++, w.sent++) {
      const a = burst ? { opcode: enc === 'json' ? 1 : 2, payload: encode(enc, { t: 'ping', id: i }) } : action(w, enc);
      ws.sendFrame(a.opcode, a.payload, a.fin ?? true);
    }
    // Wait until the gateway has handled everything sent (its answer to a last ping) or closed us.
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, 10_000);
      const done = () => {
        clearTimeout(t);
        resolve();
      };
      sentinel = done;
      void ws.closed.then(done);
      ws.send(encode(enc, { t: 'ping', id: SENTINEL }));
    });
    ws.destroy();
    const end = await ws.closed;
    const key = String(end.code);
    report.closes[key] = (report.closes[key] ?? 0) + 1;
    const isSecret = (t: string) => t === 'secret' || t.startsWith('secret.');
    for (const t of msgTopics) {
      if (!subscribed.has(t) || isSecret(t)) report.leaks.push(`${w.ns} got a message of ${t}`);
    }
    for (const t of subscribed) if (isSecret(t)) report.leaks.push(`${w.ns} was subscribed to ${t}`);
  }
  report.frames += w.sent;
}

it(`survives ${TOTAL_FRAMES} hostile frames (seed ${SEED}) without crashing, leaking or growing`, async () => {
  // A legitimate client with a private topic the fuzzers must never see.
  const victim = await connectRaw(gw.url, 'json');
  victim.send({ t: 'hello', v: 1, token: await hs256({ sub: 'victim' }) });
  await victim.next((f) => f.t === 'welcome');
  victim.send({ t: 'sub', id: 1, topic: 'secret.room', token: await hs256({ sub: 'victim', topic: 'secret.room' }) });
  expect(await victim.next(isReply(1))).toMatchObject({ t: 'subscribed' });
  let secretSent = 0;
  const publishSecret = () =>
    fetch(`${gw.httpUrl}/api/publish`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ topic: 'secret.room', data: { n: ++secretSent, secret: 'do not leak' } }),
    });
  await publishSecret();
  await victim.next(isMsg('secret.room'));
  const before = await gw.memory();

  const report: Report = { frames: 0, connections: 0, msgs: 0, leaks: [], invalid: [], closes: {} };
  let fuzzing = true;
  const feeder = (async () => {
    while (fuzzing) await publishSecret();
  })();
  // A little HTTP API fuzz alongside: random bodies and keys.
  const hr = rng(SEED ^ 0xbeef);
  const httpFuzz = (async () => {
    for (let i = 0; i < 300; i++) {
      const body = hr.chance(0.5) ? JSON.stringify(randomValue(hr, 'json')) : Buffer.from(hr.bytes(hr.int(300))).toString('latin1');
      const res = await fetch(`${gw.httpUrl}${hr.pick(['/api/publish', '/api/disconnect', '/api/nope'])}`, {
        method: 'POST',
        headers: { authorization: hr.chance(0.7) ? `Bearer ${KEY}` : `Bearer ${randomString(hr)}`.replace(/[^\x20-\x7e]/g, '') },
        body,
      });
      expect(res.status, body).toBeGreaterThanOrEqual(200);
      expect(res.status).toBeLessThan(500);
      await res.arrayBuffer();
    }
  })();
  const workers: Worker[] = Array.from({ length: WORKERS }, (_, k) => ({ ns: `w${String.fromCharCode(97 + k).repeat(3)}`, r: rng(SEED + k * 7919), sent: 0 }));
  await Promise.all([...workers.map((w) => runWorker(w, Math.ceil(TOTAL_FRAMES / WORKERS), report)), httpFuzz]);
  fuzzing = false;
  await feeder;

  expect(gw.alive(), gw.output()).toBe(true);
  expect(report.frames).toBeGreaterThanOrEqual(TOTAL_FRAMES);
  expect(report.leaks).toEqual([]);
  expect(report.invalid).toEqual([]);
  expect(report.msgs).toBeGreaterThan(0);

  // The private topic's subscriber got every message, in order; nobody else did.
  const secrets = await victim.collect(isMsg('secret.room'), secretSent, 20_000);
  secrets.forEach((m, i) => expect(m).toMatchObject({ data: { n: i + 1 } }));

  // A well-behaved client is served as usual.
  const c = await connectRaw(gw.url, 'msgpack');
  c.send({ t: 'hello', v: 1 });
  await c.next((f) => f.t === 'welcome');
  c.send({ t: 'sub', id: 1, topic: 'after.fuzz' });
  expect(await c.next(isReply(1))).toMatchObject({ t: 'subscribed', seq: 0 });
  c.send({ t: 'pub', id: 2, topic: 'after.fuzz', kind: 'set', data: { ok: true } });
  expect(await c.next(isReply(2))).toMatchObject({ t: 'ack', seq: 1 });
  expect(await c.next(isMsg('after.fuzz'))).toMatchObject({ seq: 1, prev: 0, data: { ok: true } });
  c.send({ t: 'history', id: 3, topic: 'after.fuzz' });
  expect(await c.next(isReply(3))).toMatchObject({ t: 'history', complete: true, messages: [{ seq: 1 }] });
  c.close();
  victim.close();

  // Memory: back within a bound once the fuzzing sockets are gone.
  await expect.poll(async () => (await gw.stats()).connections, { timeout: 20_000 }).toBe(0);
  const after = await gw.memory();
  expect(after.gc).toBe(true);
  expect(after.heapUsed - before.heapUsed, 'heap growth').toBeLessThan(48 * 1024 * 1024);
  expect(after.rss - before.rss, 'rss growth').toBeLessThan(160 * 1024 * 1024);
  console.log(
    `fuzz seed ${SEED}: ${report.frames} frames over ${report.connections} connections, ${report.msgs} msgs, closes ${JSON.stringify(report.closes)}; heap ${mb(before.heapUsed)} -> ${mb(after.heapUsed)} MB, rss ${mb(before.rss)} -> ${mb(after.rss)} MB`,
  );
}, 60_000);

const mb = (n: number) => (n / 1024 / 1024).toFixed(0);
