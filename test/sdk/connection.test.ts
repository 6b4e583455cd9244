/**
 * The socket lifecycle (sdk/connection.ts) through the client: handshake, reconnect and backoff,
 * heartbeat watchdog, close codes, several gateway URLs, the browser's online/offline.
 */
import { describe, expect, it, vi } from 'vitest';
import { CloseCode } from '../../protocol/codes.ts';
import { ConnectionClosedError, SymphonicClient, type SymphonicError, type StateChange } from '../../sdk/index.ts';
import { answerSub, connected, make, server, track, useFakeServer } from './helpers/client-harness.ts';
import { withoutGlobalWebSocket } from './helpers/no-websocket.ts';

useFakeServer();

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
    expect(s.sent).toEqual([{ t: 'hello', v: 1, compact: true, token: 'tok', client: 'test-app' }]);
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
    expect(server.last.sent[0]).toEqual({ t: 'hello', v: 1, compact: true, session: { id: 'sess-1', key: 'key-1' } });
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
      await vi.waitUntil(
        async () => {
          await vi.advanceTimersByTimeAsync(10);
          return server.sockets.length > before;
        },
        { timeout: 10_000, interval: 0 },
      );
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

  it('a dropped socket is down for whatever runs while it is torn down: a publish from a listener waits for the next welcome', async () => {
    const { c, s } = connected({ reconnect: { min: 10, max: 10 } });
    const sub = c.subscribe('t.x');
    answerSub(s, { seq: 1 });
    let p: Promise<unknown> | undefined;
    sub.on('status', ({ newState }) => {
      if (newState === 'resubscribing') p = c.publish('t.x', 1);
    });
    s.serverClose(1006);
    expect(c.state).toBe('connecting');
    await vi.advanceTimersByTimeAsync(10);
    const s2 = server.accept();
    const pub = s2.lastOf('pub');
    s2.deliver({ t: 'ack', id: pub.id, topic: 't.x', seq: 2, epoch: 'e1' });
    await expect(p).resolves.toEqual({ seq: 2, epoch: 'e1' });
  });

  it('without any WebSocket the client says how to inject ws', () => {
    const c = track(new SymphonicClient('ws://x', { networkEvents: false }));
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
    const cl = track(new SymphonicClient(URLS, { WebSocket: server.WebSocket, networkEvents: false, reconnect: { min: 10, max: 10 } }));
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
    const cl = track(
      new SymphonicClient(URLS, {
        WebSocket: server.WebSocket,
        networkEvents: false,
        handshakeTimeout: 500,
        reconnect: { min: 10, max: 10, shutdownSpread: 10 },
      }),
    );
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
    expect(b.sent[0]).toEqual({
      t: 'hello',
      v: 1,
      compact: true,
      session: { id: 'sess-1', key: 'key-1' },
      restore: { since: { 't.x': { seq: 5, epoch: 'e1' } } },
    });
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
      const cl = track(new SymphonicClient(URLS.slice(0, 2), { WebSocket: server.WebSocket, networkEvents: true }));
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
