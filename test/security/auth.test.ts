/**
 * Authentication and permissions end to end, over real sockets: anonymous access and how to lock
 * it, JWT at hello (HS256, RS256), expiry (close 4005) and in-band refresh, subscription tokens,
 * personal topics, namespace subscribe/publish modes, per-user connection limits, the admin
 * disconnect API, and sessions bound to their user.
 */
import { describe, expect, it } from 'vitest';
import { CloseCode, ErrorCode, type ServerFrame } from '../../protocol/index.ts';
import { useGateway } from '../support/gateway.ts';
import { connectRaw, isMsg, isReply, type RawClient } from '../support/raw-client.ts';
import { hs256, inSeconds, keyPair, SECRET } from './support/tokens.ts';

const rs = await keyPair('RS256');
const ADMIN_KEY = 'admin-key-0123456789-abcdef';
const PUBLISH_KEY = 'publish-key-0123456789-abcd';

const gw = await useGateway({
  auth: { secret: SECRET, publicKeys: [rs.publicPem], clockToleranceSec: 0 },
  api: { keys: [PUBLISH_KEY, { key: ADMIN_KEY, scopes: ['admin'], name: 'ops' }] },
  limits: { maxConnectionsPerUser: 3 },
  namespaces: {
    members: { subscribe: 'authenticated', publish: 'authenticated' },
    private: { subscribe: 'token', publish: 'token' },
    feed: { publish: 'server' },
  },
});
const locked = await useGateway({ auth: { anonymous: false, secret: SECRET, clockToleranceSec: 0 } });
const noAuth = await useGateway();

type Welcome = Extract<ServerFrame, { t: 'welcome' }>;

/** Connects and says hello with `token`; resolves with the welcome, or the error and close. */
async function hello(url: string, token?: string, extra: object = {}): Promise<{ c: RawClient; welcome?: Welcome; error?: ServerFrame }> {
  const c = await connectRaw(url, 'json');
  c.send({ t: 'hello', v: 1, ...(token === undefined ? {} : { token }), ...extra });
  const f = await c.next((x) => x.t === 'welcome' || x.t === 'error');
  return f.t === 'welcome' ? { c, welcome: f } : { c, error: f };
}

async function authed(user: string, claims: object = {}, url = gw.url) {
  const r = await hello(url, await hs256({ sub: user, exp: inSeconds(3600), ...claims }));
  if (!r.welcome) throw new Error(`no welcome: ${JSON.stringify(r.error)}`);
  return r.c;
}

let nextId = 1000;
async function request(c: RawClient, frame: Record<string, unknown>): Promise<ServerFrame> {
  const id = nextId++;
  c.send({ ...frame, id });
  return c.next(isReply(id));
}

describe('connection authentication', () => {
  it('allows anonymous connections by default (npm start and the demo keep working)', async () => {
    const { c, welcome } = await hello(noAuth.url);
    expect(welcome).toMatchObject({ t: 'welcome', resumed: false });
    expect(welcome).not.toHaveProperty('user');
    expect(await request(c, { t: 'sub', topic: 'demo.chat' })).toMatchObject({ t: 'subscribed' });
    expect(await request(c, { t: 'pub', topic: 'demo.chat', data: 'hi' })).toMatchObject({ t: 'ack' });
    c.close();
  });

  it('refuses tokens on a gateway without keys (3000, close 4501) instead of trusting them', async () => {
    const { c, error } = await hello(noAuth.url, await hs256({ sub: 'u1' }));
    expect(error).toMatchObject({ code: ErrorCode.Unauthorized });
    expect((await c.closed).code).toBe(CloseCode.Unauthorized);
  });

  it('with auth.anonymous false, no token is 3000 + close 4501; a valid one is welcome', async () => {
    const a = await hello(locked.url);
    expect(a.error).toMatchObject({ code: ErrorCode.Unauthorized, message: expect.stringMatching(/requires a token/) });
    expect((await a.c.closed).code).toBe(CloseCode.Unauthorized);
    const exp = inSeconds(60);
    const b = await hello(locked.url, await hs256({ sub: 'u1', exp }));
    expect(b.welcome).toMatchObject({ user: 'u1', exp });
    b.c.close();
  });

  it.each([
    ['a bad signature', () => hs256({ sub: 'u1' }, { secret: 'x'.repeat(40) }), ErrorCode.Unauthorized, CloseCode.Unauthorized],
    ['garbage', async () => 'garbage', ErrorCode.Unauthorized, CloseCode.Unauthorized],
    ['an expired token', () => hs256({ sub: 'u1', exp: inSeconds(-30) }), ErrorCode.TokenExpired, CloseCode.TokenExpired],
  ])('rejects %s at hello with an error and a close code', async (_, make, code, close) => {
    const { c, error } = await hello(gw.url, await make());
    expect(error).toMatchObject({ t: 'error', code });
    expect((await c.closed).code).toBe(close);
  });

  it('accepts RS256 tokens from a configured PEM key', async () => {
    const { c, welcome } = await hello(gw.url, await rs.sign({ sub: 'rsa-user' }));
    expect(welcome).toMatchObject({ user: 'rsa-user' });
    c.close();
  });

  it('frames sent right after hello wait for the token check instead of failing', async () => {
    const c = await connectRaw(gw.url, 'json');
    c.send({ t: 'hello', v: 1, token: await hs256({ sub: 'eager' }) });
    c.send({ t: 'sub', id: 1, topic: 'members.eager' });
    expect(await c.next(isReply(1))).toMatchObject({ t: 'subscribed' });
    expect(c.frames[0]).toMatchObject({ t: 'welcome', user: 'eager' });
    c.close();
  });
});

describe('token expiry and in-band refresh', () => {
  it('closes a connection whose token expired with error 3002 and close 4005', async () => {
    const exp = inSeconds(2); // at least one second ahead (inSeconds floors)
    const { c, welcome } = await hello(gw.url, await hs256({ sub: 'short', exp }));
    expect(welcome?.exp).toBe(exp);
    const closed = await c.closed;
    expect(closed.code).toBe(CloseCode.TokenExpired);
    expect(c.frames.at(-1)).toMatchObject({ t: 'error', code: ErrorCode.TokenExpired });
  });

  it('a refreshed connection outlives the old expiry; an unrefreshed twin does not', async () => {
    const exp = inSeconds(3);
    // The refreshed one connects first: had its old timer survived, it would fire first.
    const refreshed = (await hello(gw.url, await hs256({ sub: 'twin', exp }))).c;
    const control = (await hello(gw.url, await hs256({ sub: 'twin', exp }))).c;
    const later = inSeconds(3600);
    const r = await request(refreshed, { t: 'refresh', token: await hs256({ sub: 'twin', exp: later }) });
    expect(r).toEqual({ t: 'refreshed', id: expect.any(Number), exp: later });
    expect((await control.closed).code).toBe(CloseCode.TokenExpired);
    expect(await request(refreshed, { t: 'ping' })).toMatchObject({ t: 'pong' });
    refreshed.close();
  });

  it('refuses a refresh for another user (3001), an invalid one (3000) and an expired one (3002), keeping the connection', async () => {
    const c = await authed('refresher');
    expect(await request(c, { t: 'refresh', token: await hs256({ sub: 'someone-else' }) })).toMatchObject({ t: 'error', code: ErrorCode.Forbidden });
    expect(await request(c, { t: 'refresh', token: 'nope' })).toMatchObject({ t: 'error', code: ErrorCode.Unauthorized });
    expect(await request(c, { t: 'refresh', token: await hs256({ sub: 'refresher', exp: inSeconds(-5) }) })).toMatchObject({
      t: 'error',
      code: ErrorCode.TokenExpired,
    });
    expect(await request(c, { t: 'ping' })).toMatchObject({ t: 'pong' });
    c.close();
  });

  it('an anonymous connection cannot take a token in band', async () => {
    const { c } = await hello(gw.url);
    expect(await request(c, { t: 'refresh', token: await hs256({ sub: 'u1' }) })).toMatchObject({ t: 'error', code: ErrorCode.Forbidden });
    c.close();
  });

  it('refresh replaces the grants: new pubs claims apply at once', async () => {
    const c = await authed('grower');
    expect(await request(c, { t: 'pub', topic: 'private.room', data: 1 })).toMatchObject({ t: 'error', code: ErrorCode.Forbidden });
    await request(c, { t: 'refresh', token: await hs256({ sub: 'grower', exp: inSeconds(600), pubs: ['private.room'] }) });
    expect(await request(c, { t: 'pub', topic: 'private.room', data: 2 })).toMatchObject({ t: 'ack' });
    c.close();
  });

  it('refresh before hello is refused like any frame (1004)', async () => {
    const c = await connectRaw(gw.url, 'json');
    c.send({ t: 'refresh', id: 1, token: await hs256({ sub: 'u1' }) });
    expect(await c.next(isReply(1))).toMatchObject({ code: ErrorCode.HandshakeRequired });
    c.close();
  });
});

describe('namespace permissions', () => {
  it('authenticated namespaces: anonymous 3000, authenticated allowed (subscribe and publish)', async () => {
    const { c: anon } = await hello(gw.url);
    expect(await request(anon, { t: 'sub', topic: 'members.lounge' })).toMatchObject({ t: 'error', code: ErrorCode.Unauthorized, topic: 'members.lounge' });
    expect(await request(anon, { t: 'pub', topic: 'members.lounge', data: 1 })).toMatchObject({ t: 'error', code: ErrorCode.Unauthorized });
    expect(await request(anon, { t: 'history', topic: 'members.lounge' })).toMatchObject({ t: 'error', code: ErrorCode.Unauthorized });
    const m = await authed('member');
    expect(await request(m, { t: 'sub', topic: 'members.lounge' })).toMatchObject({ t: 'subscribed' });
    expect(await request(m, { t: 'pub', topic: 'members.lounge', data: 'hello' })).toMatchObject({ t: 'ack' });
    expect(await m.next(isMsg('members.lounge'))).toMatchObject({ data: 'hello' });
    expect(anon.frames.some((f) => f.t === 'msg')).toBe(false);
    anon.close();
    m.close();
  });

  it('server-only namespaces: clients get 2003; the HTTP API publishes', async () => {
    const c = await authed('reader');
    expect(await request(c, { t: 'sub', topic: 'feed.prices' })).toMatchObject({ t: 'subscribed' });
    expect(await request(c, { t: 'pub', topic: 'feed.prices', data: 1 })).toMatchObject({ t: 'error', code: ErrorCode.PublishNotAllowed });
    const res = await fetch(`${gw.httpUrl}/api/publish`, {
      method: 'POST',
      headers: { authorization: `Bearer ${PUBLISH_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ topic: 'feed.prices', data: { eur: 1.1 } }),
    });
    expect(res.status).toBe(200);
    expect(await c.next(isMsg('feed.prices'))).toMatchObject({ data: { eur: 1.1 } });
    c.close();
  });

  it('token namespaces: subs claim or a subscription token for the topic; pubs claim to publish', async () => {
    const plain = await authed('p1');
    expect(await request(plain, { t: 'sub', topic: 'private.a' })).toMatchObject({ t: 'error', code: ErrorCode.Forbidden });
    const claimed = await authed('p2', { subs: ['private.*'], pubs: ['private.a'] });
    expect(await request(claimed, { t: 'sub', topic: 'private.a' })).toMatchObject({ t: 'subscribed' });
    expect(await request(claimed, { t: 'pub', topic: 'private.a', data: 1 })).toMatchObject({ t: 'ack' });
    expect(await request(claimed, { t: 'pub', topic: 'private.b', data: 1 })).toMatchObject({ t: 'error', code: ErrorCode.Forbidden });
    expect(await request(claimed, { t: 'sub', topic: 'private.a.deeper' })).toMatchObject({ t: 'error', code: ErrorCode.Forbidden });
    plain.close();
    claimed.close();
  });

  it('subscription tokens: allowed for the named topic and user; denied otherwise', async () => {
    const c = await authed('s1');
    const ok = await hs256({ sub: 's1', topic: 'private.vip', exp: inSeconds(60) });
    expect(await request(c, { t: 'sub', topic: 'private.vip', token: ok })).toMatchObject({ t: 'subscribed' });
    expect(await request(c, { t: 'history', topic: 'private.vip', token: ok })).toMatchObject({ t: 'history' });
    expect(await request(c, { t: 'history', topic: 'private.vip' })).toMatchObject({ t: 'error', code: ErrorCode.Forbidden });
    expect(await request(c, { t: 'sub', topic: 'private.other', token: ok })).toMatchObject({ t: 'error', code: ErrorCode.Forbidden });
    const otherUser = await hs256({ sub: 's2', topic: 'private.x' });
    expect(await request(c, { t: 'sub', topic: 'private.x', token: otherUser })).toMatchObject({ t: 'error', code: ErrorCode.Forbidden });
    const expired = await hs256({ topic: 'private.y', exp: inSeconds(-5) });
    expect(await request(c, { t: 'sub', topic: 'private.y', token: expired })).toMatchObject({ t: 'error', code: ErrorCode.TokenExpired });
    expect(await request(c, { t: 'sub', topic: 'private.z', token: 'forged' })).toMatchObject({ t: 'error', code: ErrorCode.Unauthorized });
    // A bearer subscription token (no sub) works for an anonymous connection too.
    const { c: anon } = await hello(gw.url);
    expect(await request(anon, { t: 'sub', topic: 'private.open', token: await hs256({ topic: 'private.open' }) })).toMatchObject({ t: 'subscribed' });
    anon.close();
    c.close();
  });

  it('a subscription denied while its token is checked leaves no subscription behind', async () => {
    const c = await authed('racer');
    const token = await hs256({ topic: 'private.race' });
    c.send({ t: 'sub', id: 1, topic: 'private.race', token });
    c.send({ t: 'unsub', id: 2, topic: 'private.race' });
    expect(await c.next(isReply(2))).toMatchObject({ t: 'unsubscribed' });
    expect(await c.next(isReply(1))).toMatchObject({ t: 'error', code: ErrorCode.NotSubscribed });
    expect(await request(c, { t: 'sub', topic: 'private.race', token })).toMatchObject({ t: 'subscribed' });
    c.close();
  });

  it('personal topics: only the user (or its channels) may subscribe', async () => {
    const u = await authed('alice', { channels: ['team-7'] });
    expect(await request(u, { t: 'sub', topic: 'user.alice.inbox' })).toMatchObject({ t: 'subscribed' });
    expect(await request(u, { t: 'sub', topic: 'user.team-7.news' })).toMatchObject({ t: 'subscribed' });
    expect(await request(u, { t: 'sub', topic: 'user.bob.inbox' })).toMatchObject({ t: 'error', code: ErrorCode.Forbidden });
    expect(await request(u, { t: 'history', topic: 'user.bob.inbox' })).toMatchObject({ t: 'error', code: ErrorCode.Forbidden });
    expect(await request(u, { t: 'pub', topic: 'user.alice.inbox', data: 1 })).toMatchObject({ t: 'error', code: ErrorCode.PublishNotAllowed });
    const { c: anon } = await hello(gw.url);
    expect(await request(anon, { t: 'sub', topic: 'user.alice.inbox' })).toMatchObject({ t: 'error', code: ErrorCode.Unauthorized });
    // The server reaches a user's personal topic through the HTTP API.
    await fetch(`${gw.httpUrl}/api/publish`, {
      method: 'POST',
      headers: { authorization: `Bearer ${PUBLISH_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ topic: 'user.alice.inbox', data: 'for alice' }),
    });
    expect(await u.next(isMsg('user.alice.inbox'))).toMatchObject({ data: 'for alice' });
    anon.close();
    u.close();
  });
});

describe('per-user limits, admin disconnect, sessions', () => {
  it('refuses a user past maxConnectionsPerUser with 4004 and close 4007; a slot frees on close', async () => {
    const conns = [await authed('busy'), await authed('busy'), await authed('busy')];
    const fourth = await hello(gw.url, await hs256({ sub: 'busy' }));
    expect(fourth.error).toMatchObject({ code: ErrorCode.TooManyConnections });
    expect((await fourth.c.closed).code).toBe(CloseCode.TooManyConnections);
    conns[0]!.close();
    await conns[0]!.closed;
    const again = await authed('busy');
    for (const c of [again, ...conns.slice(1)]) c.close();
  });

  it('the admin API disconnects every connection of a user (4504); publish keys may not', async () => {
    const a = await authed('banned');
    const b = await authed('banned');
    const other = await authed('innocent');
    const call = (key: string) =>
      fetch(`${gw.httpUrl}/api/disconnect`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ user: 'banned' }),
      });
    const denied = await call(PUBLISH_KEY);
    expect(denied.status).toBe(403);
    expect(await denied.json()).toMatchObject({ error: { code: ErrorCode.Forbidden } });
    const res = await call(ADMIN_KEY);
    expect(await res.json()).toEqual({ disconnected: 2 });
    expect((await a.closed).code).toBe(CloseCode.Kicked);
    expect((await b.closed).code).toBe(CloseCode.Kicked);
    expect(await request(other, { t: 'ping' })).toMatchObject({ t: 'pong' });
    // An admin-only key cannot publish.
    const pub = await fetch(`${gw.httpUrl}/api/publish`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ topic: 'a', data: 1 }),
    });
    expect(pub.status).toBe(403);
    other.close();
  });

  it('a session is resumed by the same user only', async () => {
    const first = await hello(gw.url, await hs256({ sub: 'owner' }));
    const session = { id: first.welcome!.session, key: first.welcome!.key };
    first.c.close();
    await first.c.closed;
    const thief = await hello(gw.url, await hs256({ sub: 'thief' }), { session });
    expect(thief.welcome).toMatchObject({ resumed: false, user: 'thief' });
    expect(thief.welcome!.session).not.toBe(session.id);
    thief.c.close();
    // The offer left the owner's session untouched: the owner still resumes it with its key.
    const back = await hello(gw.url, await hs256({ sub: 'owner' }), { session });
    expect(back.welcome).toMatchObject({ resumed: true, session: session.id, user: 'owner' });
    back.c.close();
  });

  it("offering a live session of another user does not disturb the owner's socket", async () => {
    const owner = await hello(gw.url, await hs256({ sub: 'owner2' }));
    const session = { id: owner.welcome!.session, key: owner.welcome!.key };
    const thief = await hello(gw.url, await hs256({ sub: 'thief2' }), { session });
    expect(thief.welcome).toMatchObject({ resumed: false });
    owner.c.send({ t: 'ping', id: 77 });
    expect(await owner.c.next((f) => f.t === 'pong')).toEqual({ t: 'pong', id: 77 });
    thief.c.close();
    owner.c.close();
  });
});
