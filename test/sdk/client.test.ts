/** SymphonicClient against an in-memory fake server: the test plays the gateway frame by frame. */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import { CloseCode, ErrorCode } from '../../protocol/codes.ts';
import { ConnectionClosedError, SymphonicClient, SymphonicError, TimeoutError, ValidationError, type ClientOptions, type StateChange } from '../../sdk/index.ts';
import { FakeServer, msg, type FakeSocket } from './helpers/fake-socket.ts';
import { withoutGlobalWebSocket } from './helpers/no-websocket.ts';

let server: FakeServer;
let client: SymphonicClient | undefined;

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
  server = new FakeServer();
});
afterEach(() => {
  client?.close();
  client = undefined;
  vi.useRealTimers();
  vi.restoreAllMocks();
});

function make(options: ClientOptions = {}): SymphonicClient {
  client = new SymphonicClient('ws://fake/ws', { WebSocket: server.WebSocket, networkEvents: false, ...options });
  return client;
}

function connected(options: ClientOptions = {}): { c: SymphonicClient; s: FakeSocket } {
  const c = make(options);
  c.connect();
  const s = server.accept();
  expect(c.state).toBe('connected');
  return { c, s };
}

/** Answers the newest `sub` frame on socket `s`. */
function answerSub(s: FakeSocket, reply: Record<string, unknown>) {
  const sub = s.lastOf('sub');
  s.deliver({ t: 'subscribed', id: sub.id, topic: sub.topic, epoch: 'e1', wasRecovering: 'since' in sub, recovered: false, seq: 0, ...reply });
  return sub;
}

describe('connection', () => {
  it('handshakes: offers the msgpack subprotocol, sends hello, goes connected on welcome', () => {
    const c = make({ token: 'tok', name: 'test-app' });
    const changes: StateChange<string>[] = [];
    c.on('state', (e) => changes.push(e));
    c.connect();
    const s = server.last;
    expect(s.protocols).toEqual(['symphonic.v1.msgpack']);
    expect(c.state).toBe('connecting');
    s.open();
    expect(s.sent).toEqual([{ t: 'hello', v: 1, token: 'tok', client: 'test-app' }]);
    s.deliver({ t: 'welcome', v: 1, session: 'S', key: 'K', resumed: false, heartbeat: 5000, node: 'n1' });
    expect(c.state).toBe('connected');
    expect(c.session).toEqual({ id: 'S', key: 'K' });
    expect(c.node).toBe('n1');
    expect(changes.map((e) => `${e.oldState}->${e.newState}`)).toEqual(['disconnected->connecting', 'connecting->connected']);
  });

  it('json encoding offers the json subprotocol and sends text', () => {
    const c = make({ encoding: 'json' });
    c.connect();
    expect(server.last.protocols).toEqual(['symphonic.v1.json']);
    server.accept();
    expect(c.state).toBe('connected');
  });

  it('reconnects with backoff after a drop and presents the session', async () => {
    const { c, s } = connected({ reconnect: { min: 100, max: 1000 } });
    const changes: string[] = [];
    c.on('state', (e) => changes.push(`${e.newState}:${e.code}`));
    s.serverClose(1006, 'abnormal');
    expect(c.state).toBe('connecting');
    expect(server.sockets.length).toBe(1);
    await vi.advanceTimersByTimeAsync(100); // first window is [0, 100)
    expect(server.sockets.length).toBe(2);
    server.last.open();
    expect(server.last.sent[0]).toEqual({ t: 'hello', v: 1, session: { id: 'sess-1', key: 'key-1' } });
    server.last.deliver({ t: 'welcome', v: 1, session: 'sess-1', key: 'key-2', resumed: true, heartbeat: 1000, node: 'n' });
    expect(changes).toEqual(['connecting:1006', 'connected:0']);
    expect(c.session?.key).toBe('key-2');
  });

  it('the backoff window grows while attempts keep failing, and resets after a welcome', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0.999);
    const { s } = connected({ reconnect: { min: 100, max: 100_000 } });
    s.serverClose(1006);
    const opened: number[] = [];
    for (let attempt = 0; attempt < 4; attempt++) {
      const before = server.sockets.length;
      const start = Date.now();
      await vi.waitUntil(async () => {
        await vi.advanceTimersByTimeAsync(10);
        return server.sockets.length > before;
      }, { timeout: 10_000, interval: 0 });
      opened.push(Date.now() - start);
      server.last.serverClose(1006); // fails before the handshake
    }
    // windows 100, 200, 400, 800 (random 0.999 -> just under each)
    expect(opened.map((t) => Math.round(t / 100))).toEqual([1, 2, 4, 8]);
    await vi.advanceTimersByTimeAsync(1600);
    server.accept();
    server.last.serverClose(1006);
    const before = server.sockets.length;
    await vi.advanceTimersByTimeAsync(100);
    expect(server.sockets.length).toBe(before + 1);
  });

  it('a terminal close code stops reconnecting', async () => {
    const { c, s } = connected();
    const p = c.ready();
    s.serverClose(CloseCode.Unauthorized, 'bad token');
    expect(c.state).toBe('closed');
    await vi.advanceTimersByTimeAsync(60_000);
    expect(server.sockets.length).toBe(1);
    await expect(p).resolves.toBeUndefined(); // it was already connected when asked
    await expect(c.ready()).rejects.toBeInstanceOf(ConnectionClosedError);
  });

  it('after ServerShutdown the reconnect is spread over shutdownSpread', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0.5);
    const { s } = connected({ reconnect: { min: 100, max: 1000, shutdownSpread: 8000 } });
    s.serverClose(CloseCode.ServerShutdown, 'draining');
    await vi.advanceTimersByTimeAsync(3999);
    expect(server.sockets.length).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(server.sockets.length).toBe(2);
  });

  it('maxAttempts: gives up and closes', async () => {
    const { c, s } = connected({ reconnect: { min: 10, max: 10, maxAttempts: 2 } });
    s.serverClose(1006);
    for (let i = 0; i < 2; i++) {
      await vi.advanceTimersByTimeAsync(10);
      server.last.serverClose(1006);
    }
    expect(c.state).toBe('closed');
    expect(server.sockets.length).toBe(3);
  });

  it('dead connection: no frame for 2x heartbeat drops the socket and reconnects', async () => {
    const { c, s } = connected({ reconnect: { min: 10, max: 10 } });
    // heartbeat 1000: frames keep it alive
    for (let i = 0; i < 5; i++) {
      await vi.advanceTimersByTimeAsync(900);
      s.deliver({ t: 'hb' });
    }
    expect(c.state).toBe('connected');
    const reasons: StateChange<string>[] = [];
    c.on('state', (e) => reasons.push(e));
    await vi.advanceTimersByTimeAsync(2000);
    expect(s.closedByClient).toBeDefined();
    expect(reasons[0]).toMatchObject({ oldState: 'connected', newState: 'connecting', code: CloseCode.IdleTimeout });
    await vi.advanceTimersByTimeAsync(10);
    expect(server.sockets.length).toBe(2);
  });

  it('handshake timeout: no welcome drops and retries', async () => {
    const c = make({ handshakeTimeout: 500, reconnect: { min: 10, max: 10 } });
    c.connect();
    server.last.open();
    await vi.advanceTimersByTimeAsync(500);
    expect(server.sockets[0]!.closedByClient).toBeDefined();
    expect(c.state).toBe('connecting');
    await vi.advanceTimersByTimeAsync(10);
    expect(server.sockets.length).toBe(2);
  });

  it('close() closes the socket, stops reconnecting and rejects pending requests', async () => {
    const { c, s } = connected();
    const p = c.publish('a.b', 1);
    c.close();
    await expect(p).rejects.toBeInstanceOf(ConnectionClosedError);
    expect(s.closedByClient?.code).toBe(1000);
    expect(c.state).toBe('closed');
    await expect(c.publish('a.b', 1)).rejects.toBeInstanceOf(ConnectionClosedError);
  });

  it('reconnect() drops the socket and reconnects at once', () => {
    const { c, s } = connected();
    c.reconnect();
    expect(s.closedByClient).toBeDefined();
    expect(server.sockets.length).toBe(2);
    server.accept();
    expect(c.state).toBe('connected');
  });

  it('without any WebSocket the client says how to inject ws', () => {
    const c = new SymphonicClient('ws://x', { networkEvents: false });
    client = c;
    const errors: SymphonicError[] = [];
    c.on('error', (e) => errors.push(e));
    withoutGlobalWebSocket(() => c.connect());
    expect(errors[0]?.message).toMatch(/"ws"/);
    expect(c.state).toBe('closed');
  });
});

describe('several gateway URLs', () => {
  const URLS = ['ws://a/ws', 'ws://b/ws', 'ws://c/ws'];

  it('starts on the first URL, and after each failure tries the next one, wrapping around', async () => {
    const cl = (client = new SymphonicClient(URLS, { WebSocket: server.WebSocket, networkEvents: false, reconnect: { min: 10, max: 10 } }));
    expect(cl.urls).toEqual(URLS);
    cl.connect();
    expect(server.last.url).toBe('ws://a/ws');
    server.last.serverClose(1006); // refused before opening
    expect(cl.url).toBe('ws://b/ws');
    await vi.advanceTimersByTimeAsync(10);
    expect(server.last.url).toBe('ws://b/ws');
    server.last.open(); // opens, but never welcomes
    server.last.serverClose(1006);
    await vi.advanceTimersByTimeAsync(10);
    expect(server.last.url).toBe('ws://c/ws');
    server.last.serverClose(1006);
    await vi.advanceTimersByTimeAsync(10);
    expect(server.sockets.map((s) => s.url)).toEqual([...URLS, 'ws://a/ws']);
    const infos: { url: string }[] = [];
    cl.on('connected', (i) => infos.push(i));
    server.accept();
    expect(cl.state).toBe('connected');
    expect(infos).toEqual([expect.objectContaining({ url: 'ws://a/ws', node: 'node-a' })]);
  });

  it('a gateway going away (4000, a silent link, a handshake timeout) moves the client to the next one, where it resumes', async () => {
    const cl = (client = new SymphonicClient(URLS, { WebSocket: server.WebSocket, networkEvents: false, handshakeTimeout: 500, reconnect: { min: 10, max: 10, shutdownSpread: 10 } }));
    cl.connect();
    const a = server.accept();
    const sub = cl.subscribe('t.x');
    answerSub(a, { seq: 5, epoch: 'e1', state: { n: 5 } });
    expect(sub.position).toEqual({ seq: 5, epoch: 'e1' });

    a.serverClose(CloseCode.ServerShutdown, 'draining'); // gateway A shuts down
    await vi.advanceTimersByTimeAsync(10);
    const b = server.last;
    expect(b.url).toBe('ws://b/ws');
    b.open();
    // The hello offers the positions for a server-side restore...
    expect(b.sent[0]).toEqual({ t: 'hello', v: 1, session: { id: 'sess-1', key: 'key-1' }, restore: { since: { 't.x': { seq: 5, epoch: 'e1' } } } });
    // ...which a new session (not resumed) does not do: the client subscribes itself.
    b.deliver({ t: 'welcome', v: 1, session: 'sess-2', key: 'k2', resumed: false, heartbeat: 1000, node: 'node-b' });
    expect(cl.url).toBe('ws://b/ws');
    expect(cl.node).toBe('node-b');
    // The subscription resumes from its position on the new gateway.
    expect(b.lastOf('sub')).toMatchObject({ topic: 't.x', since: { seq: 5, epoch: 'e1' } });
    answerSub(b, { seq: 6, recovered: true, replay: [{ seq: 6, prev: 5, kind: 'patch', data: { n: 6 }, ts: 1 }] });
    expect(sub.state).toEqual({ n: 6 });
    expect(sub.recovered).toBe(true);

    await vi.advanceTimersByTimeAsync(2000); // B goes silent: no frame for 2x heartbeat
    expect(b.closedByClient?.code).toBe(CloseCode.IdleTimeout);
    await vi.advanceTimersByTimeAsync(10);
    expect(server.last.url).toBe('ws://c/ws');
    server.last.open(); // C accepts the socket but never says welcome
    await vi.advanceTimersByTimeAsync(500);
    await vi.advanceTimersByTimeAsync(10);
    expect(server.last.url).toBe('ws://a/ws');
  });

  it('stays on a working gateway: reconnect() and going offline are not failures of the URL', async () => {
    const target = new EventTarget();
    (globalThis as { window?: unknown }).window = target;
    try {
      const cl = (client = new SymphonicClient(URLS.slice(0, 2), { WebSocket: server.WebSocket, networkEvents: true }));
      cl.connect();
      server.accept();
      cl.reconnect();
      expect(server.last.url).toBe('ws://a/ws');
      server.accept();
      target.dispatchEvent(new Event('offline'));
      target.dispatchEvent(new Event('online'));
      expect(server.last.url).toBe('ws://a/ws');
      server.accept();
      expect(cl.state).toBe('connected');
      expect(server.sockets.map((s) => s.url)).toEqual(['ws://a/ws', 'ws://a/ws', 'ws://a/ws']);
    } finally {
      delete (globalThis as { window?: unknown }).window;
    }
  });

  it('refuses an empty URL list', () => {
    expect(() => new SymphonicClient([], {})).toThrow(TypeError);
    expect(new SymphonicClient('ws://x/ws', { networkEvents: false }).urls).toEqual(['ws://x/ws']);
  });
});

describe('auth', () => {
  it('getToken is called on connect and again after TokenExpired; the token is reused otherwise', async () => {
    let n = 0;
    const reasons: string[] = [];
    const c = make({ getToken: async ({ reason }) => (reasons.push(reason), `t${++n}`), reconnect: { min: 10, max: 10 } });
    c.connect();
    await vi.advanceTimersByTimeAsync(0);
    server.accept();
    expect(server.last.sent[0]).toMatchObject({ token: 't1' });
    server.last.serverClose(1006);
    await vi.advanceTimersByTimeAsync(10);
    server.accept();
    expect(server.last.sent[0]).toMatchObject({ token: 't1' });
    server.last.serverClose(CloseCode.TokenExpired, 'expired');
    await vi.advanceTimersByTimeAsync(10);
    server.accept();
    expect(server.last.sent[0]).toMatchObject({ token: 't2' });
    expect(reasons).toEqual(['connect', 'expired']);
    // Refresh is in band: the new token goes to the gateway in a `refresh` frame.
    const refreshed = c.refreshToken();
    await vi.advanceTimersByTimeAsync(0);
    const req = server.last.lastOf('refresh');
    expect(req).toMatchObject({ token: 't3' });
    server.last.deliver({ t: 'refreshed', id: req.id });
    await refreshed;
    expect(reasons).toEqual(['connect', 'expired', 'refresh']);
    c.reconnect();
    await vi.advanceTimersByTimeAsync(0);
    server.last.open();
    expect(server.last.sent[0]).toMatchObject({ token: 't3' });
  });

  it('a failing getToken is reported and retried with backoff', async () => {
    let fail = true;
    const c = make({ getToken: async () => { if (fail) throw new Error('auth server down'); return 'ok'; }, reconnect: { min: 10, max: 10 } });
    const errors: SymphonicError[] = [];
    c.on('error', (e) => errors.push(e));
    c.connect();
    await vi.advanceTimersByTimeAsync(0);
    expect(errors[0]?.message).toMatch(/auth server down/);
    expect(server.sockets.length).toBe(0);
    fail = false;
    await vi.advanceTimersByTimeAsync(10);
    server.accept();
    expect(server.last.sent[0]).toMatchObject({ token: 'ok' });
  });
});

describe('requests', () => {
  it('publish resolves with the ack', async () => {
    const { c, s } = connected();
    const p = c.publish('demo.board', { cells: { '1,1': '#fff' } }, { kind: 'patch' });
    const pub = s.lastOf('pub');
    expect(pub).toMatchObject({ topic: 'demo.board', kind: 'patch', data: { cells: { '1,1': '#fff' } } });
    s.deliver({ t: 'ack', id: pub.id, topic: 'demo.board', seq: 7, epoch: 'e1' });
    await expect(p).resolves.toEqual({ seq: 7, epoch: 'e1' });
  });

  it('publish rejects with a SymphonicError carrying the server code', async () => {
    const { c, s } = connected();
    const p = c.publish('secret.x', 1);
    s.deliver({ t: 'error', id: s.lastOf('pub').id, code: ErrorCode.PublishNotAllowed, message: 'no', topic: 'secret.x' });
    const err = await p.catch((e) => e);
    expect(err).toBeInstanceOf(SymphonicError);
    expect(err).toMatchObject({ code: ErrorCode.PublishNotAllowed, topic: 'secret.x', name: 'SymphonicError' });
  });

  it('publish times out with TimeoutError', async () => {
    const { c } = connected({ timeout: 1000 });
    const p = c.publish('a.b', 1);
    const caught = p.catch((e) => e);
    await vi.advanceTimersByTimeAsync(1000);
    expect(await caught).toBeInstanceOf(TimeoutError);
  });

  it('a bad topic is refused locally', async () => {
    const { c, s } = connected();
    await expect(c.publish('bad topic', 1)).rejects.toMatchObject({ code: ErrorCode.BadTopic });
    expect(() => c.subscribe('a..b')).toThrow(SymphonicError);
    expect(s.framesOf('pub')).toEqual([]);
  });

  it('publish while connecting is queued and sent after welcome; a drop rejects in-flight ones', async () => {
    const c = make({ reconnect: { min: 10, max: 10 } });
    c.connect();
    const p1 = c.publish('a.b', 1);
    server.accept();
    const s = server.last;
    expect(s.framesOf('pub')).toHaveLength(1);
    s.serverClose(1006);
    const err = await p1.catch((e) => e);
    expect(err).toBeInstanceOf(ConnectionClosedError);
    expect(err.closeCode).toBe(1006);
  });

  it('publish before connect() is refused', async () => {
    const c = make();
    await expect(c.publish('a.b', 1)).rejects.toBeInstanceOf(ConnectionClosedError);
  });

  it('history', async () => {
    const { c, s } = connected();
    const p = c.history('chat.x', { since: 3, limit: 2 });
    const h = s.lastOf('history');
    expect(h).toMatchObject({ topic: 'chat.x', since: 3, limit: 2 });
    s.deliver({ t: 'history', id: h.id, topic: 'chat.x', epoch: 'e', seq: 9, complete: true, messages: [{ seq: 4, prev: 3, kind: 'event', data: 'a', ts: 1 }] });
    await expect(p).resolves.toEqual({ topic: 'chat.x', epoch: 'e', seq: 9, complete: true, messages: [{ topic: 'chat.x', seq: 4, prev: 3, kind: 'event', data: 'a', ts: 1 }] });
  });

  it('server errors without an id are emitted as client errors', () => {
    const { c, s } = connected();
    const errors: SymphonicError[] = [];
    c.on('error', (e) => errors.push(e));
    s.deliver({ t: 'error', code: ErrorCode.RateLimited, message: 'slow down' });
    expect(errors[0]).toMatchObject({ code: ErrorCode.RateLimited, retryable: true });
  });

  it('an undecodable frame is reported, not thrown', () => {
    const { c, s } = connected();
    const errors: SymphonicError[] = [];
    c.on('error', (e) => errors.push(e));
    s.onmessage?.({ data: new Uint8Array([0xc1]).buffer });
    expect(errors[0]?.code).toBe(ErrorCode.BadFrame);
    expect(c.state).toBe('connected');
  });
});

describe('subscriptions', () => {
  it('subscribe -> subscribed: snapshot state, position, live patches, events for each', async () => {
    const { c, s } = connected();
    const statuses: string[] = [];
    const changes: unknown[] = [];
    const sub = c.subscribe('demo.board', { onStatus: (e) => statuses.push(e.newState), onChange: (ch) => changes.push(ch.state) });
    expect(sub.status).toBe('subscribing');
    expect(s.lastOf('sub')).toEqual({ t: 'sub', id: expect.any(Number), topic: 'demo.board' });
    const ready = sub.ready();
    answerSub(s, { seq: 3, state: { cells: { '0,0': '#f00' } } });
    await ready;
    expect(sub.status).toBe('subscribed');
    expect(sub.position).toEqual({ seq: 3, epoch: 'e1' });
    s.deliver(msg('demo.board', 4, 3, 'patch', { cells: { '1,1': '#0f0', '0,0': null } }));
    expect(sub.state).toEqual({ cells: { '1,1': '#0f0' } });
    expect(changes).toEqual([{ cells: { '0,0': '#f00' } }, { cells: { '1,1': '#0f0' } }]);
    expect(statuses).toEqual(['subscribing', 'subscribed']);
    expect(sub.recovered).toBe(false);
    expect(sub.wasRecovering).toBe(false);
  });

  it('subscribing while connecting sends the sub after welcome', () => {
    const c = make();
    c.connect();
    const sub = c.subscribe('a.b');
    server.accept();
    expect(server.last.lastOf('sub').topic).toBe('a.b');
    answerSub(server.last, { seq: 0 });
    expect(sub.status).toBe('subscribed');
  });

  it('msgs that arrive before subscribed are buffered, deduplicated against the snapshot, then applied', () => {
    const { c, s } = connected();
    const seen: number[] = [];
    const sub = c.subscribe('t.x', { onMessage: (m) => seen.push(m.seq) });
    s.deliver(msg('t.x', 5, 4, 'patch', { a: 5 }));
    s.deliver(msg('t.x', 6, 5, 'patch', { b: 6 }));
    expect(seen).toEqual([]);
    answerSub(s, { seq: 5, state: { a: 5 } });
    expect(seen).toEqual([6]);
    expect(sub.state).toEqual({ a: 5, b: 6 });
    s.deliver(msg('t.x', 6, 5, 'patch', { b: 6 })); // duplicate
    expect(seen).toEqual([6]);
  });

  it('a live gap resyncs: unsub, then sub from the last position; the replay fills the gap exactly once', () => {
    const { c, s } = connected();
    const seen: number[] = [];
    const sub = c.subscribe('t.x', { onMessage: (m) => seen.push(m.seq) });
    answerSub(s, { seq: 1, state: {} });
    s.deliver(msg('t.x', 2, 1, 'event', 'a'));
    s.deliver(msg('t.x', 4, 3, 'event', 'c')); // 3 is missing
    expect(sub.status).toBe('resubscribing');
    const unsub = s.lastOf('unsub');
    expect(unsub.topic).toBe('t.x');
    s.deliver(msg('t.x', 5, 4, 'event', 'd')); // buffered while resyncing
    s.deliver({ t: 'unsubscribed', id: unsub.id, topic: 't.x' });
    const resub = s.lastOf('sub');
    expect(resub.since).toEqual({ seq: 2, epoch: 'e1' });
    s.deliver(msg('t.x', 6, 5, 'event', 'e'));
    s.deliver({ t: 'subscribed', id: resub.id, topic: 't.x', epoch: 'e1', seq: 5, wasRecovering: true, recovered: true,
      replay: [msg('t.x', 3, 2, 'event', 'b'), msg('t.x', 4, 3, 'event', 'c'), msg('t.x', 5, 4, 'event', 'd')] });
    expect(seen).toEqual([2, 3, 4, 5, 6]);
    expect(sub.status).toBe('subscribed');
    expect(sub.recovered).toBe(true);
  });

  it('after a reconnect each subscription resumes from its position; recovered=false is surfaced', async () => {
    const { c, s } = connected({ reconnect: { min: 10, max: 10 } });
    const infos: unknown[] = [];
    const sub = c.subscribe('t.x', { onSubscribed: (i) => infos.push(i) });
    answerSub(s, { seq: 10, state: { n: 10 } });
    s.serverClose(1006);
    expect(sub.status).toBe('resubscribing');
    await vi.advanceTimersByTimeAsync(10);
    const s2 = server.accept();
    const resub = s2.lastOf('sub');
    expect(resub.since).toEqual({ seq: 10, epoch: 'e1' });
    s2.deliver({ t: 'subscribed', id: resub.id, topic: 't.x', epoch: 'e1', seq: 500, state: { n: 500 }, wasRecovering: true, recovered: false });
    expect(sub.status).toBe('subscribed');
    expect(sub.wasRecovering).toBe(true);
    expect(sub.recovered).toBe(false);
    expect(sub.state).toEqual({ n: 500 });
    expect(infos[1]).toEqual({ wasRecovering: true, recovered: false, position: { seq: 500, epoch: 'e1' }, state: { n: 500 } });
  });

  it('a late reply to a subscribe from the old socket is ignored', async () => {
    const { c, s } = connected({ reconnect: { min: 10, max: 10 } });
    const sub = c.subscribe('t.x');
    const old = s.lastOf('sub');
    s.serverClose(1006);
    s.deliver({ t: 'subscribed', id: old.id, topic: 't.x', epoch: 'e1', seq: 99, wasRecovering: false, recovered: false });
    expect(sub.status).toBe('subscribing');
    await vi.advanceTimersByTimeAsync(10);
    const s2 = server.accept();
    answerSub(s2, { seq: 3 });
    expect(sub.position).toEqual({ seq: 3, epoch: 'e1' });
  });

  it('AlreadySubscribed on resume (session kept the subscription): unsub then sub', () => {
    const { c, s } = connected();
    const sub = c.subscribe('t.x');
    s.deliver({ t: 'error', id: s.lastOf('sub').id, code: ErrorCode.AlreadySubscribed, message: 'already' });
    const unsub = s.lastOf('unsub');
    s.deliver({ t: 'unsubscribed', id: unsub.id, topic: 't.x' });
    answerSub(s, { seq: 2 });
    expect(sub.status).toBe('subscribed');
  });

  it('a refused subscription ends unsubscribed and ready() rejects with the code', async () => {
    const { c, s } = connected();
    const sub = c.subscribe('private.x');
    const ready = sub.ready();
    s.deliver({ t: 'error', id: s.lastOf('sub').id, code: ErrorCode.Forbidden, message: 'nope', topic: 'private.x' });
    await expect(ready).rejects.toMatchObject({ code: ErrorCode.Forbidden });
    expect(sub.status).toBe('unsubscribed');
    expect(c.getSubscription('private.x')).toBeUndefined();
  });

  it('a retryable refusal (5xxx) is retried with backoff', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0.5);
    const { c, s } = connected({ reconnect: { min: 100, max: 100 } });
    const sub = c.subscribe('t.x');
    s.deliver({ t: 'error', id: s.lastOf('sub').id, code: ErrorCode.Unavailable, message: 'bus down' });
    expect(s.framesOf('sub')).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(50);
    expect(s.framesOf('sub')).toHaveLength(2);
    answerSub(s, { seq: 1 });
    expect(sub.status).toBe('subscribed');
  });

  it('ready() times out', async () => {
    const { c } = connected();
    const sub = c.subscribe('t.x');
    const p = sub.ready(500).catch((e) => e);
    await vi.advanceTimersByTimeAsync(500);
    expect(await p).toBeInstanceOf(TimeoutError);
  });

  it('unsubscribe sends unsub, ignores later msgs; subscribe() again resumes from the position', () => {
    const { c, s } = connected();
    const seen: number[] = [];
    const sub = c.subscribe('t.x', { onMessage: (m) => seen.push(m.seq) });
    answerSub(s, { seq: 1 });
    sub.unsubscribe();
    expect(s.lastOf('unsub').topic).toBe('t.x');
    expect(sub.status).toBe('unsubscribed');
    s.deliver(msg('t.x', 2, 1, 'event', 'x'));
    expect(seen).toEqual([]);
    expect(c.getSubscription('t.x')).toBeUndefined();
    sub.subscribe();
    expect(s.lastOf('sub').since).toEqual({ seq: 1, epoch: 'e1' });
  });

  it('a second subscribe to the same topic is an error', () => {
    const { c } = connected();
    c.subscribe('t.x');
    expect(() => c.subscribe('t.x')).toThrow(/already subscribed/);
  });

  it('since + initialState: the first subscribe resumes a persisted position', () => {
    const { c, s } = connected();
    const sub = c.subscribe('t.x', { since: { seq: 5, epoch: 'e1' }, initialState: { n: 5 } });
    const f = s.lastOf('sub');
    expect(f.since).toEqual({ seq: 5, epoch: 'e1' });
    s.deliver({ t: 'subscribed', id: f.id, topic: 't.x', epoch: 'e1', seq: 6, wasRecovering: true, recovered: true, replay: [msg('t.x', 6, 5, 'patch', { n: 6 })] });
    expect(sub.state).toEqual({ n: 6 });
    expect(sub.recovered).toBe(true);
  });
});

describe('server-side restore on resume (hello.restore)', () => {
  /** A client subscribed to `topics` (positions at seq 5), then dropped and reconnected: the new socket, opened. */
  async function droppedAndBack(topics: string[], options: ClientOptions = {}) {
    const { c, s } = connected({ reconnect: { min: 10, max: 10 }, ...options });
    const subs = topics.map((t) => {
      const sub = c.subscribe(t);
      answerSub(s, { seq: 5, state: { n: 5 } });
      return sub;
    });
    s.serverClose(1006, 'link lost');
    await vi.advanceTimersByTimeAsync(10);
    const b = server.last;
    b.open();
    return { c, subs, b };
  }
  const resumedWelcome = (topics: string[]) => ({ t: 'welcome', v: 1, session: 'sess-1', key: 'key-2', resumed: true, heartbeat: 1000, node: 'n', topics });

  it('sends its positions in hello; the server restores: no sub frames, the replay applies exactly once', async () => {
    const { subs: [sub], b } = await droppedAndBack(['t.x']);
    expect(b.sent[0]).toEqual({ t: 'hello', v: 1, session: { id: 'sess-1', key: 'key-1' }, restore: { since: { 't.x': { seq: 5, epoch: 'e1' } } } });
    b.deliver(resumedWelcome(['t.x']));
    expect(b.framesOf('sub')).toEqual([]);
    expect(sub!.status).toBe('resubscribing');
    b.deliver(msg('t.x', 6, 5, 'patch', { n: 6 })); // live, before the restore's reply: buffered
    b.deliver({ t: 'subscribed', topic: 't.x', epoch: 'e1', seq: 6, wasRecovering: true, recovered: true, replay: [{ seq: 6, prev: 5, kind: 'patch', data: { n: 6 }, ts: 1 }] });
    expect(sub!.status).toBe('subscribed');
    expect(sub!).toMatchObject({ recovered: true, wasRecovering: true, state: { n: 6 }, position: { seq: 6, epoch: 'e1' } });
  });

  it('subscribes itself to what the session did not have, and lets go of what it no longer wants', async () => {
    const { c, subs: [kept, added], b } = await droppedAndBack(['t.kept', 't.added']);
    const dropped = c.getSubscription('t.kept');
    expect(dropped).toBe(kept);
    b.deliver(resumedWelcome(['t.kept', 't.gone'])); // t.added never reached the old session's record
    expect(b.framesOf('sub').map((f) => f.topic)).toEqual(['t.added']);
    b.deliver({ t: 'subscribed', topic: 't.gone', epoch: 'e1', seq: 9, wasRecovering: false, recovered: false });
    expect(b.lastOf('unsub')).toMatchObject({ topic: 't.gone' });
    b.deliver({ t: 'subscribed', topic: 't.kept', epoch: 'e1', seq: 5, wasRecovering: true, recovered: true, replay: [] });
    answerSub(b, { seq: 5, wasRecovering: true, recovered: true, replay: [] });
    expect([kept!.status, added!.status]).toEqual(['subscribed', 'subscribed']);
  });

  it('a restored topic the server refuses ends that subscription with the server\'s error', async () => {
    const { c, subs: [sub], b } = await droppedAndBack(['t.x']);
    const clientErrors: unknown[] = [];
    const subErrors: SymphonicError[] = [];
    c.on('error', (e) => clientErrors.push(e));
    sub!.on('error', (e) => subErrors.push(e));
    b.deliver(resumedWelcome(['t.x']));
    b.deliver({ t: 'error', code: ErrorCode.Forbidden, message: 'not allowed', topic: 't.x' });
    expect(subErrors.map((e) => e.code)).toEqual([ErrorCode.Forbidden]);
    expect(clientErrors).toEqual([]);
    expect(sub!.status).toBe('unsubscribed');
  });

  it('no reply to a restore within the request timeout: it resubscribes (unsub, then sub from its position)', async () => {
    const { subs: [sub], b } = await droppedAndBack(['t.x'], { timeout: 1000 });
    b.deliver(resumedWelcome(['t.x']));
    await vi.advanceTimersByTimeAsync(1000);
    const unsub = b.lastOf('unsub');
    expect(unsub).toMatchObject({ topic: 't.x' });
    b.deliver({ t: 'unsubscribed', id: unsub.id, topic: 't.x' });
    expect(b.lastOf('sub')).toMatchObject({ topic: 't.x', since: { seq: 5, epoch: 'e1' } });
    answerSub(b, { seq: 5, wasRecovering: true, recovered: true, replay: [] });
    expect(sub!.status).toBe('subscribed');
  });

  it('too many positions for one hello: no restore, each subscription resubscribes itself', async () => {
    const topics = Array.from({ length: 200 }, (_, i) => `t.${String(i).padStart(3, '0')}.${'x'.repeat(100)}`);
    const { b } = await droppedAndBack(topics);
    expect(b.sent[0]).toEqual({ t: 'hello', v: 1, session: { id: 'sess-1', key: 'key-1' } });
    b.deliver(resumedWelcome(topics));
    expect(b.framesOf('sub')).toHaveLength(200);
  });

  it('restore: false resubscribes with sub frames as before', async () => {
    const { b } = await droppedAndBack(['t.x'], { restore: false });
    expect(b.sent[0]).toEqual({ t: 'hello', v: 1, session: { id: 'sess-1', key: 'key-1' } });
    b.deliver(resumedWelcome(['t.x']));
    expect(b.lastOf('sub')).toMatchObject({ topic: 't.x', since: { seq: 5, epoch: 'e1' } });
  });
});

describe('typed topics', () => {
  const Board = z.object({ cells: z.record(z.string(), z.string().regex(/^#[0-9a-f]{3,6}$/)) });
  const Chat = z.object({ from: z.string(), text: z.string().max(200) });

  it('state is validated and typed by the schema; an invalid state is reported and the last valid one kept', () => {
    const { c, s } = connected();
    const errors: SymphonicError[] = [];
    const sub = c.subscribe('demo.board', { schema: Board, onError: (e) => errors.push(e) });
    answerSub(s, { seq: 1, state: { cells: { '0,0': '#fff' } } });
    const cells: Record<string, string> | undefined = sub.state?.cells; // typed from the schema
    expect(cells).toEqual({ '0,0': '#fff' });
    s.deliver(msg('demo.board', 2, 1, 'patch', { cells: { '0,1': 'not a colour' } }));
    expect(errors[0]).toBeInstanceOf(ValidationError);
    expect(errors[0]?.topic).toBe('demo.board');
    expect(sub.state).toEqual({ cells: { '0,0': '#fff' } });
    expect(sub.position?.seq).toBe(2); // the position still follows the server
    s.deliver(msg('demo.board', 3, 2, 'patch', { cells: { '0,1': '#000' } }));
    expect(sub.state).toEqual({ cells: { '0,0': '#fff', '0,1': '#000' } });
  });

  it('event payloads are validated; invalid ones are not delivered', () => {
    const { c, s } = connected();
    const texts: string[] = [];
    const errors: SymphonicError[] = [];
    c.subscribe('demo.chat', {
      events: Chat,
      onMessage: (m) => {
        if (m.kind === 'event') texts.push(m.data.text); // m.data is typed { from, text }
      },
      onError: (e) => errors.push(e),
    });
    answerSub(s, { seq: 0 });
    s.deliver(msg('demo.chat', 1, 0, 'event', { from: 'a', text: 'hi' }));
    s.deliver(msg('demo.chat', 2, 1, 'event', { from: 'b' }));
    s.deliver(msg('demo.chat', 3, 2, 'event', { from: 'c', text: 'yo' }));
    expect(texts).toEqual(['hi', 'yo']);
    expect(errors).toHaveLength(1);
  });

  it('plain functions and safeParse-only schemas work too', () => {
    const { c, s } = connected();
    const asNumber = (x: unknown): number => {
      if (typeof x !== 'number') throw new Error('not a number');
      return x;
    };
    const sub = c.subscribe('t.n', { schema: asNumber });
    const sub2 = c.subscribe('t.m', { schema: { safeParse: (x: unknown) => (typeof x === 'string' ? { success: true as const, data: x } : { success: false as const, error: 'no' }) } });
    const subs = s.framesOf('sub');
    s.deliver({ t: 'subscribed', id: subs[0]!.id, topic: 't.n', epoch: 'e', seq: 1, state: 42, wasRecovering: false, recovered: false });
    s.deliver({ t: 'subscribed', id: subs[1]!.id, topic: 't.m', epoch: 'e', seq: 1, state: 'str', wasRecovering: false, recovered: false });
    const n: number | undefined = sub.state;
    const m: string | undefined = sub2.state;
    expect([n, m]).toEqual([42, 'str']);
  });
});

describe('browser network awareness', () => {
  it('offline drops to disconnected without retrying; online reconnects at once', async () => {
    const target = new EventTarget();
    (globalThis as { window?: unknown }).window = target;
    try {
      const c = make({ networkEvents: true, reconnect: { min: 10, max: 10 } });
      c.connect();
      server.accept();
      const sub = c.subscribe('t.x');
      answerSub(server.last, { seq: 1 });
      target.dispatchEvent(new Event('offline'));
      expect(c.state).toBe('disconnected');
      expect(sub.status).toBe('resubscribing');
      const p = c.publish('t.x', 1); // queued until the network is back
      await vi.advanceTimersByTimeAsync(5000);
      expect(server.sockets.length).toBe(1);
      target.dispatchEvent(new Event('online'));
      expect(c.state).toBe('connecting');
      expect(server.sockets.length).toBe(2);
      server.accept();
      const pub = server.last.lastOf('pub');
      server.last.deliver({ t: 'ack', id: pub.id, topic: 't.x', seq: 2, epoch: 'e1' });
      await expect(p).resolves.toEqual({ seq: 2, epoch: 'e1' });
      expect(server.last.lastOf('sub').since).toEqual({ seq: 1, epoch: 'e1' });
      c.close();
      target.dispatchEvent(new Event('online'));
      expect(c.state).toBe('closed');
    } finally {
      delete (globalThis as { window?: unknown }).window;
    }
  });
});

describe('encoding failures', () => {
  it('a payload the codec cannot encode rejects at once (msgpack: a function; json: a bigint)', async () => {
    const { c } = connected();
    await expect(c.publish('a.b', { f: () => 1 })).rejects.toMatchObject({ code: ErrorCode.InvalidFrame });
    client = undefined;
    c.close();
    const j = connected({ encoding: 'json' });
    await expect(j.c.publish('a.b', { n: 1n })).rejects.toMatchObject({ code: ErrorCode.InvalidFrame });
    expect(j.c.state).toBe('connected');
  });
});
