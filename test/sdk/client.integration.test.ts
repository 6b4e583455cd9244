/**
 * The SDK against real gateways over real sockets (Node, `ws` injected), on both Bus engines: the
 * embedded `memory` bus, and `nats` (JetStream on a real single-node nats-server). The same tests
 * run on each: subscribe, publish with an ack, lossless resume after every socket is cut while a
 * backend keeps publishing, state snapshots equal to the state followed live, history overflow
 * surfaced as recovered=false. Backends publish over the HTTP API on the memory engine and
 * straight onto NATS (sdk/server's NATS transport) on the nats engine. Last, two gateways on one
 * NATS: a client whose gateway shuts down fails over to the other and misses nothing.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { WebSocket } from 'ws';
import type { RunningGateway } from '../../gateway/server.ts';
import { CloseCode, ErrorCode } from '../../protocol/codes.ts';
import { SymphonicClient, SymphonicError, type ClientOptions, type PublishAck, type Subscription } from '../../sdk/index.ts';
import { SymphonicPublisher } from '../../sdk/server/index.ts';
import { ENGINES, startStack, type Engine, type Stack } from './helpers/stack.ts';

const KEY = 'sdk-test-key-0123456789';
const HISTORY = 20;

const clients: SymphonicClient[] = [];
afterEach(() => {
  for (const c of clients.splice(0)) c.close();
  vi.restoreAllMocks();
});

function makeClient(url: string | string[], options: ClientOptions = {}): SymphonicClient {
  const c = new SymphonicClient(url, { WebSocket, reconnect: { min: 50, max: 500 }, ...options });
  clients.push(c);
  c.connect();
  return c;
}

/** Resolves when `pred` holds, checked on each event of `on`; rejects after `ms`. */
function until(on: (check: () => void) => () => void, pred: () => boolean, ms: number, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    if (pred()) return resolve();
    const timer = setTimeout(() => {
      off();
      reject(new Error(`timed out after ${ms} ms waiting for ${what}`));
    }, ms);
    const off = on(() => {
      if (!pred()) return;
      clearTimeout(timer);
      off();
      resolve();
    });
  });
}

type SubEvent = 'message' | 'subscribed' | 'status' | 'change';
/** Subscribes `f` to one or more events of a subscription; returns the remover. */
const onSub =
  (sub: Subscription<any, any>, ...events: SubEvent[]) =>
  (f: () => void) => {
    const offs = events.map((e) => sub.on(e, f));
    return () => offs.forEach((off) => off());
  };

/** A backend's publisher for a gateway: straight onto NATS on the nats engine, else the HTTP API. */
function backendFor(stack: Stack, gw: RunningGateway, prefix = 'main'): SymphonicPublisher {
  return stack.engine === 'nats'
    ? new SymphonicPublisher({ nats: { servers: stack.natsUrl!, prefix } })
    : new SymphonicPublisher({ url: gw.httpUrl, apiKey: KEY });
}

describe.each(ENGINES)('SDK <-> gateway (%s bus)', (engine: Engine) => {
  let stack: Stack;
  let gw: RunningGateway;
  let small: RunningGateway;
  let readOnly: RunningGateway;
  let publisher: SymphonicPublisher;
  let httpPublisher: SymphonicPublisher;
  let smallPublisher: SymphonicPublisher;
  const client = (options: ClientOptions = {}, url: string | string[] = gw.url) => makeClient(url, options);

  beforeAll(async () => {
    stack = await startStack(engine);
    gw = await stack.gateway({ api: { keys: [KEY] }, ws: { heartbeatMs: 1000 } });
    // A deployment that keeps only HISTORY messages per topic, for the overflow case.
    small = await stack.gateway({ api: { keys: [KEY] }, bus: { history: { size: HISTORY } } }, 'small');
    readOnly = await stack.gateway({ clientPublish: false });
    publisher = backendFor(stack, gw);
    httpPublisher = new SymphonicPublisher({ url: gw.httpUrl, apiKey: KEY });
    smallPublisher = backendFor(stack, small, 'small');
  });
  afterAll(async () => {
    await Promise.allSettled([publisher, smallPublisher, httpPublisher].map((p) => p?.close()));
    await stack?.close();
  });

  it('connects, subscribes, publishes with an ack, and sees its own message (msgpack)', async () => {
    const c = client();
    await c.ready(5000);
    expect(c.session?.id).toEqual(expect.any(String));
    const got: unknown[] = [];
    const sub = c.subscribe('it.basic', { onMessage: (m) => got.push(m.data) });
    await sub.ready(5000);
    const ack = await c.publish('it.basic', { hello: 'world', bin: new Uint8Array([1, 2, 3]) });
    expect(ack).toEqual({ seq: expect.any(Number), epoch: sub.position!.epoch });
    await until(onSub(sub, 'message'), () => got.length === 1, 5000, 'own message');
    expect(got[0]).toEqual({ hello: 'world', bin: new Uint8Array([1, 2, 3]) });
    expect(await c.ping()).toBeGreaterThanOrEqual(0);
  });

  it('json encoding: state snapshot on subscribe, then patches applied live', async () => {
    await publisher.set('it.state', { cells: { '0,0': '#f00' } });
    const c = client({ encoding: 'json' });
    const sub = c.subscribe<{ cells: Record<string, string> }>('it.state');
    await sub.ready(5000);
    expect(sub.state).toEqual({ cells: { '0,0': '#f00' } });
    await c.publish('it.state', { cells: { '0,0': null, '1,1': '#0f0' } }, { kind: 'patch' });
    await until(onSub(sub, 'change'), () => sub.state?.cells['1,1'] === '#0f0', 5000, 'patched state');
    expect(sub.state).toEqual({ cells: { '1,1': '#0f0' } });
  });

  it('publish errors carry the protocol code', async () => {
    const ro = client({}, readOnly.url);
    await ro.ready(5000);
    const err = await ro.publish('it.x', 1).catch((e) => e);
    expect(err).toBeInstanceOf(SymphonicError);
    expect(err).toMatchObject({ code: ErrorCode.PublishNotAllowed, topic: 'it.x' });

    const c = client();
    await c.ready(5000);
    await expect(c.publish('', 1)).rejects.toMatchObject({ code: ErrorCode.BadTopic });
    // An oversized frame is answered with 1003 carrying the request id: the publish rejects with it.
    const big = await c.publish('it.x', 'x'.repeat(70 * 1024), { timeout: 5000 }).catch((e) => e);
    expect(big).toBeInstanceOf(SymphonicError);
    expect(big).toMatchObject({ code: ErrorCode.FrameTooLarge });
  });

  it('server-side publisher (HTTP API, and the backend path of the engine): acks in the gateway epoch, coded errors', async () => {
    const c = client();
    const sub = c.subscribe('it.pub');
    await sub.ready(5000);
    for (const p of [publisher, httpPublisher]) {
      const ack = await p.event('it.pub', { n: 1 });
      expect(ack).toEqual({ seq: expect.any(Number), epoch: sub.position!.epoch });
      await until(onSub(sub, 'message'), () => sub.position!.seq === ack.seq, 5000, `message ${ack.seq}`);
    }
    const bad = new SymphonicPublisher({ url: gw.httpUrl, apiKey: 'wrong-key-000000000' });
    await expect(bad.event('it.pub', 1)).rejects.toMatchObject({ code: ErrorCode.Unauthorized });
    await expect(publisher.event('bad topic', 1)).rejects.toMatchObject({ code: ErrorCode.BadTopic });
    await expect(publisher.event('it.pub', { n: Number.NaN })).rejects.toMatchObject({ code: ErrorCode.InvalidPayload });
  });

  it('resume: every socket cut three times while a backend publishes 1..600: no loss, no duplicates, in order', async () => {
    const N = 600;
    const c = client();
    const seen: number[] = [];
    let resumes = 0;
    const sub = c.subscribe<unknown, number>('it.seq', {
      onMessage: (m) => m.kind === 'event' && seen.push(m.data),
      onSubscribed: (i) => {
        if (i.wasRecovering) {
          resumes++;
          expect(i.recovered).toBe(true);
        }
      },
    });
    await sub.ready(5000);
    const sessions = new Set<string>();
    c.on('connected', (i) => sessions.add(`${i.session}:${i.resumed}`));
    let drops = 0;
    for (let i = 1; i <= N; i++) {
      await publisher.event('it.seq', i);
      if (i % 150 === 0 && i < N) {
        // Each cut must find the client back (a cut while it is away would cut nothing).
        await until(onSub(sub, 'subscribed'), () => resumes === drops, 10_000, `resume ${drops}`);
        gw.dropAllSockets();
        drops++;
      }
    }
    await until(onSub(sub, 'message'), () => seen.length >= N, 15_000, `${N} messages (have ${seen.length})`);
    expect(seen).toEqual(Array.from({ length: N }, (_, i) => i + 1));
    await until(onSub(sub, 'subscribed'), () => resumes >= 3, 10_000, 'three resumes');
    expect(resumes).toBe(3);
    expect(sub.recovered).toBe(true);
    expect([...sessions].every((s) => s.endsWith(':true'))).toBe(true); // the session was resumed each time
  });

  it('resume with two subscribers and a state topic: both end with the same exact state', async () => {
    const N = 200;
    const a = client();
    const b = client({ encoding: 'json' });
    const subA = a.subscribe<Record<string, number>>('it.doc');
    const subB = b.subscribe<Record<string, number>>('it.doc');
    await Promise.all([subA.ready(5000), subB.ready(5000)]);
    for (let i = 1; i <= N; i++) {
      await publisher.patch('it.doc', { [`k${i % 50}`]: i, last: i });
      if (i === 70 || i === 140) gw.dropAllSockets();
    }
    const done = (s: Subscription<Record<string, number>>) =>
      until(onSub(s, 'change', 'status'), () => s.state?.last === N && s.status === 'subscribed', 10_000, 'final state');
    await Promise.all([done(subA), done(subB)]);
    const expected: Record<string, number> = { last: N };
    for (let i = 1; i <= N; i++) expected[`k${i % 50}`] = i;
    expect(subA.state).toEqual(expected);
    expect(subB.state).toEqual(expected);
    expect(subA.position).toEqual(subB.position);

    // A late subscriber gets the same document as a snapshot, at the same position.
    const late = client().subscribe<Record<string, number>>('it.doc');
    const info = await new Promise<{ recovered: boolean; wasRecovering: boolean }>((resolve) => late.once('subscribed', resolve));
    expect(info).toMatchObject({ wasRecovering: false, recovered: false });
    expect(late.state).toEqual(expected);
    expect(late.position).toEqual(subA.position);
  });

  it('history overflow while disconnected is reported as recovered=false with a fresh snapshot', async () => {
    const c = client({ reconnect: { min: 60_000, max: 60_000 } }, small.url);
    const publisher = smallPublisher;
    const events: number[] = [];
    const sub = c.subscribe<{ count: number }, number>('it.overflow', { onMessage: (m) => m.kind === 'patch' && events.push(m.seq) });
    await sub.ready(5000);
    const first = await publisher.patch('it.overflow', { count: 1 });
    await until(onSub(sub, 'change'), () => sub.state?.count === 1, 5000, 'first patch');

    // Make the automatic reconnect wait (Math.random -> 0.99 of a 60 s window), publish more than the
    // history keeps while the client is away, then reconnect by hand.
    vi.spyOn(Math, 'random').mockReturnValue(0.99);
    const away = until(
      (f) => c.on('state', f),
      () => c.state === 'connecting',
      5000,
      'drop noticed',
    );
    small.dropAllSockets();
    await away;
    for (let i = 2; i <= HISTORY + 15; i++) await publisher.patch('it.overflow', { count: i });
    const resubscribed = new Promise<{ recovered: boolean; wasRecovering: boolean }>((resolve) => sub.once('subscribed', resolve));
    c.reconnect();
    const info = await resubscribed;
    expect(info).toMatchObject({ wasRecovering: true, recovered: false });
    expect(sub.recovered).toBe(false);
    expect(sub.state).toEqual({ count: HISTORY + 15 });

    // History says the same: what follows the first message is no longer complete.
    const h = await c.history('it.overflow', { since: first.seq, limit: 100 });
    expect(h.complete).toBe(false);
    expect(h.messages.length).toBe(HISTORY);

    // And the subscription is live again.
    await publisher.patch('it.overflow', { count: 999 });
    await until(onSub(sub, 'change'), () => sub.state?.count === 999, 5000, 'live after the snapshot');
  });

  it('a second client publishing appears in the first; unsubscribe stops delivery', async () => {
    const a = client();
    const b = client();
    const got: unknown[] = [];
    const sub = a.subscribe('it.two', { onMessage: (m) => got.push(m.data) });
    await sub.ready(5000);
    await b.ready(5000);
    await b.publish('it.two', 'from b');
    await until(onSub(sub, 'message'), () => got.length === 1, 5000, 'message from b');
    sub.unsubscribe();
    await b.publish('it.two', 'after unsub');
    await a.ping(); // a round trip on a's socket: anything sent before the pong has arrived
    expect(got).toEqual(['from b']);
  });

  it('a ServerShutdown close puts the client back to connecting (not closed) with code 4000', async () => {
    const own = await stack.gateway();
    const c = client({ reconnect: { min: 50, max: 100, shutdownSpread: 100 } }, own.url);
    await c.ready(5000);
    const change = new Promise<{ code: number; newState: string }>((resolve) => c.once('state', resolve));
    await own.close();
    expect(await change).toMatchObject({ newState: 'connecting', code: CloseCode.ServerShutdown });
  });
});

describe('two gateways on one NATS', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack('nats');
  });
  afterAll(() => stack?.close());

  it('a client on A with [A, B] fails over to B when A shuts down while a backend publishes over NATS: exact sequence, recovered', async () => {
    // Enough history that nothing published during the failover can be dropped.
    const config = { ws: { heartbeatMs: 1000 }, bus: { history: { size: 10_000 } } };
    const a = await stack.gateway({ ...config, nodeId: 'gw-a' }, 'pair');
    const b = await stack.gateway({ ...config, nodeId: 'gw-b' }, 'pair');
    const backend = new SymphonicPublisher({ nats: { servers: stack.natsUrl!, prefix: 'pair' } });
    try {
      const c = makeClient([a.url, b.url], { reconnect: { min: 50, max: 500, shutdownSpread: 200 } });
      await c.ready(5000);
      expect(c.node).toBe('gw-a');
      const connections: { url: string; node: string; resumed: boolean }[] = [];
      c.on('connected', (i) => connections.push({ url: i.url, node: i.node, resumed: i.resumed }));

      const seen: { seq: number; n: number }[] = [];
      const infos: { wasRecovering: boolean; recovered: boolean; node: string | undefined }[] = [];
      const sub = c.subscribe<unknown, number>('pair.seq', {
        onMessage: (m) => m.kind === 'event' && seen.push({ seq: m.seq, n: m.data }),
        onSubscribed: (i) => infos.push({ wasRecovering: i.wasRecovering, recovered: i.recovered, node: c.node }),
      });
      await sub.ready(5000);
      const onB = until(onSub(sub, 'subscribed'), () => infos.some((i) => i.node === 'gw-b'), 15_000, 'the subscription on gateway B');

      // Publish 1, 2, 3, ... straight onto NATS; shut A down after 100, and keep publishing until the
      // client is subscribed on B and 100 more have been published (live on B).
      const acks: PublishAck[] = [];
      let closing: Promise<void> | undefined;
      let resumedOnB = false;
      void onB.then(
        () => (resumedOnB = true),
        () => {},
      );
      let extra = 0;
      for (let n = 1; ; n++) {
        acks.push(await backend.event('pair.seq', n));
        if (n === 100) closing = a.close();
        if (resumedOnB && ++extra >= 100) break;
        if (n > 50_000) throw new Error('the client never resumed on gateway B');
      }
      await onB;
      await closing;
      await until(onSub(sub, 'message'), () => seen.length >= acks.length, 10_000, `${acks.length} messages (have ${seen.length})`);

      expect(seen.map((m) => m.n)).toEqual(acks.map((_, i) => i + 1));
      expect(seen.map((m) => m.seq)).toEqual(acks.map((x) => x.seq));
      expect(c.url).toBe(b.url);
      expect(c.node).toBe('gw-b');
      expect(infos).toEqual([
        { wasRecovering: false, recovered: false, node: 'gw-a' },
        { wasRecovering: true, recovered: true, node: 'gw-b' },
      ]);
      expect(sub.recovered).toBe(true);
      expect(acks.every((x) => x.epoch === sub.position!.epoch)).toBe(true);
      // The gateways share their session registry (NATS KV): B continued A's session.
      expect(connections).toEqual([{ url: b.url, node: 'gw-b', resumed: true }]);
    } finally {
      await backend.close();
    }
  });
});
