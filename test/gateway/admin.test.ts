/**
 * The admin API on the embedded engine (gateway/admin/): every route behind the `admin` scope
 * (401/403/503 otherwise), the cluster as this one gateway with live counts and rates, session and
 * topic lookups, disconnecting a session or a user (close 4504), the charts' history, and the
 * /admin page served with the demo off.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CloseCode, ErrorCode } from '../../protocol/index.ts';
import { adminClient, connectWithToken, poll } from '../support/admin.ts';
import { useGateway } from '../support/gateway.ts';
import { connectHello, isMsg, isReply } from '../support/raw-client.ts';
import { hs256, SECRET } from '../security/support/tokens.ts';

const ADMIN = 'admin-test-key-0123456789';
const PUBLISHER = 'publish-only-key-0123456789';
const VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

const gw = await useGateway({
  nodeId: 'adm-1',
  demo: false,
  auth: { secret: SECRET },
  api: {
    keys: [
      { key: ADMIN, scopes: ['admin', 'publish'], name: 'ops' },
      { key: PUBLISHER, scopes: ['publish'] },
    ],
  },
  namespaces: { chat: { history: { size: 50, ageMs: 60_000 } } },
  cluster: { heartbeatMs: 200 },
});
const noKeys = await useGateway({ demo: false });
const admin = adminClient(gw.httpUrl, ADMIN);

const ROUTES: Array<[string, string, unknown?]> = [
  ['GET', '/api/admin/cluster'],
  ['GET', '/api/admin/history'],
  ['GET', '/api/admin/sessions/abc'],
  ['GET', '/api/admin/topics/chat.a'],
  ['POST', '/api/admin/disconnect', { user: 'nobody' }],
];

async function call(base: string, key: string | null, [method, path, body]: [string, string, unknown?]) {
  const c = adminClient(base, key);
  return method === 'GET' ? c.get(path) : c.post(path, body);
}

describe('admin API: keys', () => {
  it.each(ROUTES)('%s %s: 401 without a key or with a wrong one, 403 with a key lacking the admin scope, 503 with no keys configured', async (...route) => {
    for (const [key, status, code] of [
      [null, 401, ErrorCode.Unauthorized],
      ['wrong-key-0123456789', 401, ErrorCode.Unauthorized],
      [PUBLISHER, 403, ErrorCode.Forbidden],
    ] as const) {
      const r = await call(gw.httpUrl, key, route);
      expect(r.status, `${key}`).toBe(status);
      expect(r.body.error.code).toBe(code);
      expect(r.body.error.message).toMatch(key === PUBLISHER ? /admin/ : /API key/);
    }
    const off = await call(noKeys.httpUrl, ADMIN, route);
    expect(off.status).toBe(503);
    expect(off.body.error.code).toBe(ErrorCode.Unavailable);
  });
});

describe('admin API: cluster', () => {
  it('is this one gateway on the embedded bus, its connection count live', async () => {
    const r = await admin.get('/api/admin/cluster');
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ node: 'adm-1', engine: 'memory', heartbeatMs: 200, staleAfterMs: 600 });
    expect(r.body.gateways).toHaveLength(1);
    const before = r.body.gateways[0].connections;
    expect(r.body.gateways[0]).toMatchObject({
      node: 'adm-1',
      self: true,
      version: VERSION,
      draining: false,
      lastSeenAgoMs: 0,
      bus: { engine: 'memory', status: 'ready', keeper: null },
      rates: { inPerSec: expect.any(Number), outPerSec: expect.any(Number), busPerSec: expect.any(Number) },
    });
    expect(r.body.gateways[0].uptimeMs).toBeGreaterThanOrEqual(0);

    const clients = await Promise.all([1, 2, 3].map(() => connectHello(gw.url, 'json')));
    const during = await admin.get('/api/admin/cluster');
    expect(during.body.gateways[0]).toMatchObject({ connections: before + 3, sessions: expect.any(Number) });
    expect(during.body.gateways[0].sessions).toBeGreaterThanOrEqual(3);
    await Promise.all(clients.map(({ c }) => (c.close(), c.closed)));
    await poll('connections back down', async () => (await admin.get('/api/admin/cluster')).body.gateways[0].connections === before);
  });

  it('measures message rates over the sampling interval, and keeps their history for the charts', async () => {
    const subs = await Promise.all(
      [1, 2].map(async () => {
        const { c } = await connectHello(gw.url, 'json');
        c.send({ t: 'sub', id: 1, topic: 'rates.t' });
        await c.next(isReply(1));
        return c;
      }),
    );
    const t0 = Date.now();
    // Publishing until a sample shows deliveries: each message goes out twice (two subscribers).
    const seen = await poll('an out rate above zero', async () => {
      for (let i = 0; i < 20; i++) await admin.post('/api/publish', { topic: 'rates.t', data: i });
      const g = (await admin.get('/api/admin/cluster')).body.gateways[0];
      return g.rates.outPerSec > 0 && g.rates.busPerSec > 0 ? g.rates : undefined;
    });
    expect(seen.outPerSec).toBeGreaterThanOrEqual(seen.busPerSec);
    const h = await admin.get(`/api/admin/history?since=${t0}`);
    expect(h.status).toBe(200);
    expect(h.body.intervalMs).toBe(200);
    expect(h.body.samples.length).toBeGreaterThan(0);
    for (const s of h.body.samples) expect(s.t).toBeGreaterThan(t0);
    expect(h.body.samples.some((s: { gateways: { node: string; outPerSec: number }[] }) => s.gateways.some((g) => g.node === 'adm-1' && g.outPerSec > 0))).toBe(
      true,
    );
    const later = await admin.get(`/api/admin/history?since=${h.body.samples.at(-1).t}`);
    for (const s of later.body.samples) expect(s.t).toBeGreaterThan(h.body.samples.at(-1).t);
    expect((await admin.get('/api/admin/history?since=soon')).status).toBe(400);
    for (const c of subs) c.close();
  });
});

describe('admin API: sessions', () => {
  it('shows a session (user, topics, attached, gateway), then detached once its socket is gone; 404 when unknown', async () => {
    const { c, welcome } = await connectWithToken(gw.url, await hs256({ sub: 'alice' }));
    c.send({ t: 'sub', id: 1, topic: 'chat.room-1' });
    await c.next(isReply(1));
    const r = await admin.get(`/api/admin/sessions/${welcome.session}`);
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ id: welcome.session, user: 'alice', topics: ['chat.room-1'], attached: true, node: 'adm-1', nodeAnswered: true, expiresAt: null });
    expect(JSON.stringify(r.body)).not.toContain(welcome.key);
    c.close();
    await c.closed;
    const after = await poll('the session detached', async () => {
      const a = await admin.get(`/api/admin/sessions/${welcome.session}`);
      return a.body.attached === false ? a : undefined;
    });
    expect(after.body).toMatchObject({ attached: false, user: 'alice', topics: ['chat.room-1'] });
    expect(after.body.expiresAt).toBeGreaterThan(Date.now());

    const unknown = await admin.get('/api/admin/sessions/no-such-session');
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.code).toBe(ErrorCode.NotFound);
    expect((await admin.get('/api/admin/sessions/a%20b')).status).toBe(400);
  });
});

describe('admin API: disconnect', () => {
  it("closes one session with 4504 and leaves the user's other connections", async () => {
    const token = await hs256({ sub: 'bob' });
    const a = await connectWithToken(gw.url, token);
    const b = await connectWithToken(gw.url, token);
    const r = await admin.post('/api/admin/disconnect', { session: a.welcome.session, reason: 'go away' });
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ disconnected: 1, gateways: [{ node: 'adm-1', disconnected: 1 }], unanswered: [] });
    expect(await a.c.closed).toEqual({ code: CloseCode.Kicked, reason: 'go away' });
    // Still connected: it answers a ping.
    b.c.send({ t: 'ping', id: 7 });
    await b.c.next(isReply(7));
    b.c.close();
  });

  it('closes every connection of a user with 4504', async () => {
    const token = await hs256({ sub: 'carol' });
    const conns = await Promise.all([1, 2].map(() => connectWithToken(gw.url, token)));
    const r = await admin.post('/api/admin/disconnect', { user: 'carol' });
    expect(r.body).toEqual({ disconnected: 2, gateways: [{ node: 'adm-1', disconnected: 2 }], unanswered: [] });
    for (const { c } of conns) expect((await c.closed).code).toBe(CloseCode.Kicked);
  });

  it('answers 404 for an unknown session and 400 for a bad body', async () => {
    const r = await admin.post('/api/admin/disconnect', { session: 'no-such-session' });
    expect(r.status).toBe(404);
    expect(r.body.error.code).toBe(ErrorCode.NotFound);
    for (const body of [{}, { session: 'a', user: 'b' }, { user: '' }, { user: 'x', extra: 1 }, { session: 'a b' }]) {
      const bad = await admin.post('/api/admin/disconnect', body);
      expect(bad.status, JSON.stringify(body)).toBe(400);
      expect(bad.body.error.code).toBe(ErrorCode.BadRequest);
    }
  });
});

describe('admin API: topics', () => {
  it("shows subscribers, last sequence, epoch, state size and the namespace's history window", async () => {
    const clients = await Promise.all(
      [1, 2].map(async () => {
        const { c } = await connectHello(gw.url, 'json');
        c.send({ t: 'sub', id: 1, topic: 'chat.lobby' });
        return { c, sub: await c.next<Extract<import('../../protocol/index.ts').ServerFrame, { t: 'subscribed' }>>(isReply(1)) };
      }),
    );
    const state = { title: 'lobby', members: ['a', 'b'] };
    await admin.post('/api/publish', { topic: 'chat.lobby', kind: 'set', data: state });
    const last = await admin.post('/api/publish', { topic: 'chat.lobby', kind: 'patch', data: { title: 'Lobby' } });
    await clients[0]!.c.collect(isMsg('chat.lobby'), 2);
    const r = await admin.get('/api/admin/topics/chat.lobby');
    expect(r.status).toBe(200);
    expect(r.body).toEqual({
      topic: 'chat.lobby',
      namespace: 'chat',
      epoch: clients[0]!.sub.epoch,
      seq: last.body.seq,
      hasState: true,
      stateBytes: Buffer.byteLength(JSON.stringify({ ...state, title: 'Lobby' })),
      history: { size: 50, ageMs: 60_000 },
      subscribers: 2,
      gateways: [{ node: 'adm-1', subscribers: 2 }],
      unanswered: [],
    });
    for (const { c } of clients) c.close();

    const empty = await admin.get('/api/admin/topics/never.used');
    expect(empty.body).toMatchObject({ seq: 0, hasState: false, stateBytes: 0, namespace: null, subscribers: 0, history: { size: 1000 } });
    const bad = await admin.get('/api/admin/topics/no..dots');
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe(ErrorCode.BadTopic);
  });
});

describe('admin page', () => {
  it('is served at /admin with the demo off, self-contained, under a strict CSP', async () => {
    for (const path of ['/admin', '/admin/']) {
      const r = await fetch(`${gw.httpUrl}${path}`);
      expect(r.status).toBe(200);
      expect(r.headers.get('content-type')).toBe('text/html; charset=utf-8');
      const csp = r.headers.get('content-security-policy')!;
      expect(csp).toMatch(/default-src 'none'/);
      expect(csp).toMatch(/script-src 'sha256-[A-Za-z0-9+/=]+'/);
      expect(csp).toMatch(/frame-ancestors 'none'/);
      expect(r.headers.get('x-frame-options')).toBe('DENY');
      const html = await r.text();
      expect(html).toContain('/api/admin/cluster');
      // No external resources: no src/href to another origin.
      expect(html).not.toMatch(/(src|href)="(https?:)?\/\//);
    }
    // The demo stays off.
    expect((await fetch(`${gw.httpUrl}/`)).status).toBe(404);
  });
});
