/**
 * Slow consumers, for real: 1,000 clients on raw TCP sockets subscribe to one topic; 100 of them
 * stop reading (their kernel buffers fill, then the gateway's per-socket buffer) while a
 * publisher floods the topic. The 900 readers must receive every message in order; the gateway
 * must cut the 100 off (uWS drops the message past maxBackpressure and closes the socket), keep
 * its memory bounded, and the cut clients must resume their session and recover every message
 * they missed, with no gap in the sequence chain.
 *
 * The publisher is paced by the slowest *reading* client (at most WINDOW messages ahead), so a
 * reader can never be mistaken for a slow consumer; the non-readers fall behind without bound.
 */
import { Packr, Unpackr } from 'msgpackr';
import { afterAll, expect, it } from 'vitest';
import { CloseCode } from '../../protocol/index.ts';
import { spawnGateway } from './support/child-gateway.ts';
import { openNetWs, type NetWs } from './support/net-ws.ts';

const CLIENTS = 1000;
const SLOW = 100;
const PAYLOAD = 8 * 1024;
const WINDOW = 32; // messages the publisher may run ahead of the slowest reader
const MAX_MESSAGES = 4000;
const BACKPRESSURE = 256 * 1024;
const TOPIC = 'flood.main';

const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });
const packr = new Packr({ useRecords: false, mapsAsObjects: true, variableMapSize: true });

type Frame = { t: string; [k: string]: unknown };

interface Client {
  readonly index: number;
  readonly slow: boolean;
  ws: NetWs;
  session: { id: string; key: string };
  epoch: string;
  /** Sequence of the last message applied, and how many came out of order (must stay 0). */
  last: number;
  breaks: number;
  frames: Frame[];
  waiters: Set<() => void>;
}

const gw = await spawnGateway({
  ws: { maxBackpressureBytes: BACKPRESSURE, heartbeatMs: 60_000 },
  limits: { connRatePerSec: 0, userRatePerSec: 0 },
  bus: { history: { size: MAX_MESSAGES + 100 } },
});
afterAll(() => gw.close());

function attach(c: Client, ws: NetWs, onMsg: (c: Client, f: Frame) => void): void {
  c.ws = ws;
  ws.onMessage = (payload) => {
    const f = unpackr.unpack(payload) as Frame;
    if (f.t === 'msg') onMsg(c, f);
    else if (f.t !== 'hb') {
      c.frames.push(f);
      for (const w of [...c.waiters]) w();
    }
  };
}

function next(c: Client, pred: (f: Frame) => boolean, what: string, timeoutMs = 20_000): Promise<Frame> {
  return new Promise((resolve, reject) => {
    const check = () => {
      const i = c.frames.findIndex(pred);
      if (i < 0) return;
      const [f] = c.frames.splice(i, 1);
      done();
      resolve(f!);
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`client ${c.index}: timed out waiting for ${what}; frames ${JSON.stringify(c.frames.slice(-3))}`));
    }, timeoutMs);
    const done = () => {
      clearTimeout(timer);
      c.waiters.delete(check);
    };
    c.waiters.add(check);
    check();
  });
}

const send = (ws: NetWs, frame: object) => ws.send(packr.pack(frame));

/** In-order check per client: every msg must follow the last one applied (prev === last). */
function apply(c: Client, f: Frame): void {
  const seq = f.seq as number;
  if (seq <= c.last) return; // a duplicate from the subscribe/replay overlap
  if (f.prev !== c.last) c.breaks++;
  c.last = seq;
}

async function inBatches<T>(items: T[], size: number, fn: (x: T) => Promise<void>): Promise<void> {
  for (let i = 0; i < items.length; i += size) await Promise.all(items.slice(i, i + size).map(fn));
}

it('cuts 10% non-reading clients off while the other 90% receive everything in order; the cut ones resume with no loss', async () => {
  // Connect everyone: hello, subscribe, remember the session and position.
  const clients: Client[] = [];
  let frontier = 0; // highest message index every reader has received
  const received: number[] = []; // received[i] = readers that have message i
  const onLive = (c: Client, f: Frame) => {
    apply(c, f);
    if (c.slow) return;
    const i = (f.data as { i: number }).i;
    received[i] = (received[i] ?? 0) + 1;
    while (received[frontier + 1] === CLIENTS - SLOW) frontier++;
    wake();
  };
  let wake = () => {};
  await inBatches([...Array(CLIENTS).keys()], 50, async (index) => {
    const ws = (await openNetWs(gw.port)) as NetWs;
    const c: Client = { index, slow: index % 10 === 0, ws, session: { id: '', key: '' }, epoch: '', last: 0, breaks: 0, frames: [], waiters: new Set() };
    attach(c, ws, onLive);
    send(ws, { t: 'hello', v: 1 });
    const welcome = await next(c, (f) => f.t === 'welcome', 'welcome');
    c.session = { id: welcome.session as string, key: welcome.key as string };
    send(ws, { t: 'sub', id: 1, topic: TOPIC });
    const sub = await next(c, (f) => f.t === 'subscribed', 'subscribed');
    c.epoch = sub.epoch as string;
    c.last = sub.seq as number;
    if (c.slow) ws.pause(); // stops reading: TCP buffers fill, then the gateway's
    clients[index] = c;
  });
  const readers = clients.filter((c) => !c.slow);
  const slow = clients.filter((c) => c.slow);
  const baseline = await gw.memory();

  // Flood, paced by the slowest reader, until the gateway has cut every non-reader.
  const pubWs = (await openNetWs(gw.port)) as NetWs;
  const pub: Client = { index: -1, slow: false, ws: pubWs, session: { id: '', key: '' }, epoch: '', last: 0, breaks: 0, frames: [], waiters: new Set() };
  attach(pub, pubWs, () => {});
  send(pubWs, { t: 'hello', v: 1 });
  await next(pub, (f) => f.t === 'welcome', 'publisher welcome');
  const pad = new Uint8Array(PAYLOAD);
  let sent = 0;
  let cut = false;
  let peakRss = baseline.rss;
  let nextCheck = 0;
  let checks = 0;
  while (!cut) {
    if (sent >= MAX_MESSAGES) throw new Error(`non-readers still connected after ${sent} messages: ${JSON.stringify(await gw.stats())}`);
    while (sent < frontier + WINDOW && sent < MAX_MESSAGES) send(pubWs, { t: 'pub', topic: TOPIC, data: { i: ++sent, pad } });
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`readers stalled at ${frontier} of ${sent}`)), 20_000);
      wake = () => {
        if (sent < frontier + WINDOW) {
          clearTimeout(t);
          wake = () => {};
          resolve();
        }
      };
      wake();
    });
    if (sent >= nextCheck) {
      nextCheck = sent + 32;
      const stats = await gw.stats();
      cut = stats.connections <= CLIENTS - SLOW + 1;
      if (++checks % 8 === 0) peakRss = Math.max(peakRss, (await gw.memory()).rss);
    }
  }
  const total = sent;
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`readers stalled at ${frontier} of ${total}`)), 20_000);
    wake = () => frontier === total && (clearTimeout(t), resolve());
    wake();
  });
  const afterFlood = await gw.memory();
  peakRss = Math.max(peakRss, afterFlood.rss);

  // Every reader got every message, in order; the gateway's memory stayed bounded.
  const lastSeq = readers[0]!.last;
  for (const c of readers) {
    expect(c.breaks, `reader ${c.index}`).toBe(0);
    expect(c.last, `reader ${c.index}`).toBe(lastSeq);
  }
  expect(peakRss - baseline.rss, 'gateway rss growth during the flood').toBeLessThan(192 * 1024 * 1024);

  // The non-readers: reading again, each finds a gap-free prefix, then the end of the connection.
  for (const c of slow) c.ws.resume();
  await inBatches(slow, 25, async (c) => {
    const end = await c.ws.closed;
    expect(end.code, 'no close frame fits in a full buffer').toBeNull();
    expect(c.breaks, `slow ${c.index} prefix`).toBe(0);
    expect(c.last, `slow ${c.index} was cut before the end`).toBeLessThan(lastSeq);
  });

  // They resume their sessions and recover exactly what they missed.
  await inBatches(slow, 20, async (c) => {
    const ws = (await openNetWs(gw.port)) as NetWs;
    attach(c, ws, onLive);
    send(ws, { t: 'hello', v: 1, session: c.session });
    const welcome = await next(c, (f) => f.t === 'welcome', 'resumed welcome');
    expect(welcome).toMatchObject({ resumed: true, previousClose: { code: CloseCode.SlowConsumer } });
    const from = c.last;
    send(ws, { t: 'sub', id: 2, topic: TOPIC, since: { seq: from, epoch: c.epoch } });
    const sub = await next(c, (f) => f.t === 'subscribed', 'resubscribed');
    expect(sub).toMatchObject({ wasRecovering: true, recovered: true, seq: lastSeq });
    const replay = sub.replay as Frame[];
    expect(replay.length).toBe(lastSeq - from);
    for (const m of replay) apply(c, m);
    expect(c.breaks, `slow ${c.index} after replay`).toBe(0);
    expect(c.last).toBe(lastSeq);
  });

  // And the stream goes on for everyone, still in order.
  const finalI = total + 1;
  const everyone = received[finalI] ?? 0;
  send(pubWs, { t: 'pub', topic: TOPIC, data: { i: finalI, pad: new Uint8Array(1) } });
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('final message not delivered to every reader')), 20_000);
    wake = () => (received[finalI] ?? 0) - everyone === CLIENTS - SLOW && (clearTimeout(t), resolve());
    wake();
  });
  await expect.poll(() => slow.every((c) => c.last === lastSeq + 1), { timeout: 20_000 }).toBe(true);
  for (const c of clients) expect(c.breaks, `client ${c.index}`).toBe(0);

  for (const c of [...clients, pub]) c.ws.destroy();
  await expect.poll(async () => (await gw.stats()).connections, { timeout: 20_000 }).toBe(0);
  const after = await gw.memory();
  expect(after.heapUsed - baseline.heapUsed, 'gateway heap after the run').toBeLessThan(96 * 1024 * 1024);
  expect(gw.alive()).toBe(true);
  console.log(
    `slow-consumer: ${total} messages of ${PAYLOAD} B; gateway rss ${mb(baseline.rss)} -> peak ${mb(peakRss)} -> ${mb(after.rss)} MB; heap ${mb(baseline.heapUsed)} -> ${mb(after.heapUsed)} MB`,
  );
}, 60_000);

const mb = (n: number) => (n / 1024 / 1024).toFixed(0);
