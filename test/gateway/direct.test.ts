/**
 * Direct messages on the embedded engine (docs/protocol.md section 16), real gateway and raw
 * clients: to a session, to a user's sessions, to a session between sockets (resume with and
 * without `hello.inbox`), inbox overflow, nobody, malformed ids, size, who may send, HTTP.
 * The cluster cases (other gateways, resume elsewhere) are test/cluster/direct.test.ts.
 */
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { SymphonicClient, type DirectMessage } from '../../sdk/index.ts';
import { SymphonicPeers } from '../../sdk/peer/index.ts';
import { SymphonicPublisher } from '../../sdk/server/publisher.ts';
import { ErrorCode, type ServerFrame } from '../../protocol/index.ts';
import { connectWithToken } from '../support/admin.ts';
import { useGateway } from '../support/gateway.ts';
import { connectHello, connectRaw, isReply, type RawClient } from '../support/raw-client.ts';
import { hs256, SECRET } from '../security/support/tokens.ts';

type Dm = Extract<ServerFrame, { t: 'dm' }>;
type Welcome = Extract<ServerFrame, { t: 'welcome' }>;
const KEY = 'direct-test-key-0123456789';
const gw = await useGateway({
  auth: { secret: SECRET, anonymous: true },
  api: { keys: [KEY] },
  direct: { inboxSize: 5, maxBytes: 200 },
  peer: { reach: 'anyone' },
});
const open = await useGateway({ direct: { clients: 'anyone' } });
const closed = await useGateway({ auth: { secret: SECRET }, direct: { clients: 'none' } });
const brief = await useGateway({ direct: { clients: 'anyone' }, session: { ttlMs: 300 } });

const isDm = (f: ServerFrame): f is Dm => f.t === 'dm';
const user = async (sub: string, url = gw.url) => connectWithToken(url, await hs256({ sub }));

async function sendOk(c: RawClient, id: number, to: object, data: unknown): Promise<number> {
  c.send({ t: 'send', id, to, data });
  const r = await c.next(isReply(id));
  expect(r).toMatchObject({ t: 'sent', id });
  return (r as Extract<ServerFrame, { t: 'sent' }>).sessions;
}

function apiSend(body: unknown, key = KEY) {
  return fetch(`${gw.httpUrl}/api/send`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

/** Resumes `welcome`'s session with a new socket (json, like connectWithToken). */
async function resume(w: Welcome, sub: string, inbox?: { seq: number; epoch: string }) {
  const c = await connectRaw(gw.url, 'json');
  c.send({ t: 'hello', v: 1, token: await hs256({ sub }), session: { id: w.session, key: w.key }, ...(inbox ? { inbox } : {}) });
  const welcome = await c.next<Welcome>((f) => f.t === 'welcome');
  return { c, welcome };
}

describe('direct messages (embedded engine)', () => {
  it('reaches one session, with the sender in `from`', async () => {
    const a = await user('ann');
    const b = await user('bob');
    expect(await sendOk(a.c, 1, { session: b.welcome.session }, { hi: 1 })).toBe(1);
    const m = await b.c.next<Dm>(isDm);
    expect(m).toMatchObject({ t: 'dm', seq: 1, data: { hi: 1 }, from: { session: a.welcome.session, user: 'ann' } });
    expect(typeof m.epoch).toBe('string');
    expect(a.c.frames.some(isDm)).toBe(false);
    a.c.close();
    b.c.close();
  });

  it('reaches every session of a user, each once', async () => {
    const a = await user('ann');
    const c1 = await user('carl');
    const c2 = await user('carl');
    expect(await sendOk(a.c, 1, { user: 'carl' }, 'x')).toBe(2);
    for (const c of [c1.c, c2.c]) expect(await c.next<Dm>(isDm)).toMatchObject({ seq: 1, data: 'x' });
    expect(await sendOk(a.c, 2, { user: 'carl' }, 'y')).toBe(2);
    for (const c of [c1.c, c2.c]) expect((await c.collect(isDm, 2)).map((f) => (f as Dm).data)).toEqual(['x', 'y']);
    for (const c of [a.c, c1.c, c2.c]) c.close();
  });

  it('keeps messages for a session between sockets and sends them after welcome, once, in order, before new ones', async () => {
    const a = await user('ann');
    const d = await user('dora');
    expect(await sendOk(a.c, 1, { session: d.welcome.session }, 1)).toBe(1);
    const first = await d.c.next<Dm>(isDm);
    d.c.ws.terminate();
    await d.c.closed;
    for (let i = 2; i <= 4; i++) await sendOk(a.c, i, { session: d.welcome.session }, i);

    const again = await resume(d.welcome, 'dora', { seq: first.seq, epoch: first.epoch });
    expect(again.welcome.resumed).toBe(true);
    expect(again.welcome.inboxLost).toBeUndefined();
    await sendOk(a.c, 5, { session: d.welcome.session }, 5);
    const got = (await again.c.collect(isDm, 4)) as Dm[];
    expect(got.map((m) => m.data)).toEqual([2, 3, 4, 5]);
    expect(again.c.frames.findIndex(isDm)).toBe(again.c.frames.findIndex((f) => f.t === 'welcome') + 1);
    expect(new Set(got.map((m) => m.seq)).size).toBe(4);

    // Without hello.inbox: every retained message again.
    again.c.ws.terminate();
    await again.c.closed;
    const bare = await resume(again.welcome, 'dora');
    expect(((await bare.c.collect(isDm, 5)) as Dm[]).map((m) => m.data)).toEqual([1, 2, 3, 4, 5]);
    expect(bare.welcome.inboxLost).toBeUndefined();
    a.c.close();
    bare.c.close();
  });

  it('says inboxLost when more than direct.inboxSize waited', async () => {
    const a = await user('ann');
    const e = await user('eve');
    await sendOk(a.c, 1, { session: e.welcome.session }, 1);
    const first = await e.c.next<Dm>(isDm);
    e.c.ws.terminate();
    await e.c.closed;
    for (let i = 2; i <= 8; i++) await sendOk(a.c, i, { session: e.welcome.session }, i);
    const again = await resume(e.welcome, 'eve', { seq: first.seq, epoch: first.epoch });
    expect(again.welcome.inboxLost).toBe(true);
    expect(((await again.c.collect(isDm, 5)) as Dm[]).map((m) => m.data)).toEqual([4, 5, 6, 7, 8]);
    a.c.close();
    again.c.close();
  });

  it('answers 2010 for nobody, 1001 for a malformed id, 4002 for too much data', async () => {
    const a = await user('ann');
    a.c.send({ t: 'send', id: 1, to: { session: 'no-such-session' }, data: 1 });
    expect(await a.c.next(isReply(1))).toMatchObject({ t: 'error', code: ErrorCode.NoRecipient });
    a.c.send({ t: 'send', id: 2, to: { user: 'nobody-at-all' }, data: 1 });
    expect(await a.c.next(isReply(2))).toMatchObject({ t: 'error', code: ErrorCode.NoRecipient });
    a.c.send({ t: 'send', id: 3, to: { session: 'bad id!' }, data: 1 });
    expect(await a.c.next(isReply(3))).toMatchObject({ t: 'error', code: ErrorCode.InvalidFrame });
    a.c.send({ t: 'send', id: 4, to: { session: 'x', user: 'y' }, data: 1 });
    expect(await a.c.next(isReply(4))).toMatchObject({ t: 'error', code: ErrorCode.InvalidFrame });
    a.c.send({ t: 'send', id: 5, to: { session: a.welcome.session }, data: 'z'.repeat(300) });
    expect(await a.c.next(isReply(5))).toMatchObject({ t: 'error', code: ErrorCode.PayloadTooLarge });
    // and the connection still works
    expect(await sendOk(a.c, 6, { session: a.welcome.session }, 'self')).toBe(1);
    a.c.close();
  });

  it('peer signals ($peer data) follow the peer rules: a discoverable session only (3001), never a user (2004)', async () => {
    const x = await connectHello(open.url, 'json');
    const y = await connectHello(open.url, 'json');
    x.c.send({ t: 'send', id: 1, to: { session: y.welcome.session }, data: { $peer: { ch: 'c1', op: 'open' } } });
    expect(await x.c.next(isReply(1))).toMatchObject({ t: 'error', code: ErrorCode.Forbidden });
    x.c.send({ t: 'send', id: 2, to: { user: 'anyone' }, data: { $peer: { ch: 'c1', op: 'open' } } });
    expect(await x.c.next(isReply(2))).toMatchObject({ t: 'error', code: ErrorCode.BadRequest });
    // An ordinary direct message between the same two is fine.
    expect(await sendOk(x.c, 3, { session: y.welcome.session }, { text: 'hi' })).toBe(1);
    expect(await y.c.next<Dm>(isDm)).toMatchObject({ data: { text: 'hi' } });
    expect(y.c.frames.filter(isDm)).toHaveLength(1); // the refused signals never arrived
    x.c.close();
    y.c.close();
  });

  it('a session past its TTL is nobody: 2010', async () => {
    const x = await connectHello(brief.url, 'json');
    const y = await connectHello(brief.url, 'json');
    expect(await sendOk(x.c, 1, { session: y.welcome.session }, 'before')).toBe(1);
    y.c.ws.terminate();
    await y.c.closed;
    // Kept while it may still resume, then gone: wait for the refusal, bounded.
    const deadline = Date.now() + 5000;
    for (let id = 2; ; id++) {
      x.c.send({ t: 'send', id, to: { session: y.welcome.session }, data: id });
      const r = await x.c.next(isReply(id));
      if (r.t === 'error') {
        expect(r).toMatchObject({ code: ErrorCode.NoRecipient });
        break;
      }
      expect(Date.now()).toBeLessThan(deadline);
      await new Promise((resolve) => setTimeout(resolve, 50)); // pacing the polls, not synchronisation
    }
    x.c.close();
  });

  it('follows direct.clients: anonymous refused by default (3000), "none" refuses everyone (3001), "anyone" lets anonymous send', async () => {
    const anon = await connectHello(gw.url, 'json');
    anon.c.send({ t: 'send', id: 1, to: { session: anon.welcome.session }, data: 1 });
    expect(await anon.c.next(isReply(1))).toMatchObject({ t: 'error', code: ErrorCode.Unauthorized });
    const n = await user('ann', closed.url);
    n.c.send({ t: 'send', id: 1, to: { session: n.welcome.session }, data: 1 });
    expect(await n.c.next(isReply(1))).toMatchObject({ t: 'error', code: ErrorCode.Forbidden });
    const x = await connectHello(open.url, 'json');
    const y = await connectHello(open.url, 'json');
    expect(await sendOk(x.c, 1, { session: y.welcome.session }, 'hey')).toBe(1);
    const m = await y.c.next<Dm>(isDm);
    expect(m.from).toEqual({ session: x.welcome.session });
    for (const c of [anon.c, n.c, x.c, y.c]) c.close();
  });

  it('POST /api/send delivers without `from`, 404/2010 for nobody, 400 for a bad body, 413 for too much', async () => {
    const f = await user('fay');
    const r = await apiSend({ to: { user: 'fay' }, data: { n: 1 } });
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ sessions: 1 });
    const m = await f.c.next<Dm>(isDm);
    expect(m).toMatchObject({ data: { n: 1 } });
    expect(m.from).toBeUndefined();
    const none = await apiSend({ to: { session: 'gone' } });
    expect(none.status).toBe(404);
    expect(await none.json()).toMatchObject({ error: { code: ErrorCode.NoRecipient } });
    const bad = await apiSend({ to: { session: 'a b' } });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ error: { code: ErrorCode.BadRequest } });
    const both = await apiSend({ to: { session: 'a', user: 'b' } });
    expect(both.status).toBe(400);
    const big = await apiSend({ to: { user: 'fay' }, data: 'z'.repeat(300) });
    expect(big.status).toBe(413);
    const unauth = await apiSend({ to: { user: 'fay' } }, 'wrong-key-0123456789');
    expect(unauth.status).toBe(401);
    f.c.close();
  });
});

/** Resolves with the next `n` messages of `event`, or rejects after `ms`. */
function take(c: SymphonicClient, event: 'direct' | 'signal', n: number, ms = 5000): Promise<DirectMessage[]> {
  const got: DirectMessage[] = [];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`${got.length} of ${n} ${event} messages within ${ms} ms`));
    }, ms);
    const off = c.on(event, (m) => {
      got.push(m);
      if (got.length < n) return;
      clearTimeout(timer);
      off();
      resolve(got);
    });
  });
}

describe('direct messages with the SDK', () => {
  const clients: SymphonicClient[] = [];
  const client = async (sub: string) => {
    const c = new SymphonicClient(gw.url, { WebSocket: WebSocket as never, token: await hs256({ sub }) });
    clients.push(c);
    c.connect();
    await c.ready();
    return c;
  };

  it('send() resolves with the sessions; `direct` carries data and from; `$peer` data goes to `signal` only', async () => {
    const a = await client('gus');
    const b = await client('hal');
    const direct = take(b, 'direct', 1);
    const signal = take(b, 'signal', 1);
    expect(await a.send({ session: b.session!.id }, { $peer: 1, op: 'open' })).toBe(1);
    expect(await a.send({ user: 'hal' }, 'plain')).toBe(1);
    expect((await signal)[0]).toMatchObject({ data: { $peer: 1 }, from: { session: a.session!.id, user: 'gus' } });
    expect((await direct)[0]).toMatchObject({ data: 'plain', seq: 2 });
    await expect(a.send({ user: 'nobody-here' }, 1)).rejects.toMatchObject({ code: ErrorCode.NoRecipient });
    await expect(a.send({ session: 'not valid!' }, 1)).rejects.toMatchObject({ code: ErrorCode.InvalidFrame });
    for (const c of clients.splice(0)) c.close();
  });

  it('resumes with hello.inbox: what was sent while away comes once, in order, nothing again', async () => {
    const a = await client('ivy');
    const b = await client('jon');
    const seen: unknown[] = [];
    b.on('direct', (m) => seen.push(m.data));
    const first = take(b, 'direct', 2);
    await a.send({ session: b.session!.id }, 1);
    await a.send({ session: b.session!.id }, 2);
    await first;
    const down = new Promise<void>((resolve) => {
      const off = b.on('state', ({ newState }) => newState !== 'connected' && (off(), resolve()));
    });
    b.close();
    await down;
    for (let i = 3; i <= 5; i++) await a.send({ session: b.session!.id }, i);
    const rest = take(b, 'direct', 3);
    b.connect();
    await rest;
    const last = take(b, 'direct', 1);
    await a.send({ session: b.session!.id }, 6);
    await last;
    expect(seen).toEqual([1, 2, 3, 4, 5, 6]);
    for (const c of clients.splice(0)) c.close();
  });

  it('publisher.send() over HTTP; a NATS-only publisher says to give it a url', async () => {
    const k = await client('kim');
    const got = take(k, 'direct', 1);
    const p = new SymphonicPublisher({ url: gw.httpUrl, apiKey: KEY });
    expect(await p.send({ user: 'kim' }, { from: 'backend' })).toBe(1);
    const m = (await got)[0]!;
    expect(m.data).toEqual({ from: 'backend' });
    expect(m.from).toBeUndefined();
    await expect(p.send({ session: 'AAAAAAAAAAAAAAAA' }, 1)).rejects.toMatchObject({ code: ErrorCode.NoRecipient });
    const natsOnly = new SymphonicPublisher({ nats: { servers: ['nats://127.0.0.1:1'] } });
    await expect(natsOnly.send({ user: 'kim' }, 1)).rejects.toThrow(/url/);
    await natsOnly.close();
    for (const c of clients.splice(0)) c.close();
  });

  it('carries a peer channel (relayed: no WebRTC in Node) over signals, both ways, in order', async () => {
    const a = await client('pam');
    const b = await client('quin');
    const pa = new SymphonicPeers(a, { iceServers: [] });
    const pb = new SymphonicPeers(b, { iceServers: [] });
    const got: unknown[] = [];
    const accepted = new Promise<void>((resolve) =>
      pb.on('request', (r) => {
        const ch = r.accept<number>();
        ch.on('message', (m) => {
          got.push(m);
          ch.send(m * 10);
        });
        resolve();
      }),
    );
    const ch = pa.open<number>(b.session!.id);
    const back: number[] = [];
    const echoed = new Promise<void>((resolve) =>
      ch.on('message', (m) => {
        back.push(m);
        if (back.length === 3) resolve();
      }),
    );
    await accepted;
    for (const n of [1, 2, 3]) ch.send(n);
    await echoed;
    expect(got).toEqual([1, 2, 3]);
    expect(back).toEqual([10, 20, 30]);
    expect(ch.state).toBe('relayed');
    for (const c of clients.splice(0)) c.close();
  });
});
