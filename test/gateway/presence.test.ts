/**
 * Presence on the embedded engine (docs/protocol.md section 15): a real gateway, raw protocol
 * clients. Every wait is on a frame (or a close), with a timeout; nothing sleeps to synchronise.
 */
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { PresenceFrame, ServerFrame } from '../../protocol/index.ts';
import { SymphonicClient, type PresenceChange } from '../../sdk/index.ts';
import { SymphonicPublisher } from '../../sdk/server/index.ts';
import { hs256, SECRET } from '../security/support/tokens.ts';
import { useGateway } from '../support/gateway.ts';
import { connectRaw, isReply, type RawClient } from '../support/raw-client.ts';

const INTERVAL = 50;
const GRACE = 600;
const KEY = 'presence-test-key';

const gw = await useGateway({
  presence: { intervalMs: INTERVAL, graceMs: GRACE, maxMembers: 3, maxInfoBytes: 64 },
  api: { keys: [KEY] },
  auth: { secrets: [SECRET] },
  namespaces: { room: { presence: 'members' }, stadium: { presence: 'count' }, plain: {} },
});

type P = PresenceFrame;
const isPresence = (topic: string) => (f: ServerFrame) => f.t === 'presence' && f.topic === topic && f.id === undefined;

/** Connects, says hello (with `info` if given), returns the client and its session. */
async function join(info?: unknown, session?: { id: string; key: string }) {
  const c = await connectRaw(gw.url, 'json');
  c.send({ t: 'hello', v: 1, ...(info === undefined ? {} : { info }), ...(session ? { session } : {}) });
  const w = await c.next<Extract<ServerFrame, { t: 'welcome' }>>((f) => f.t === 'welcome');
  return { c, session: { id: w.session, key: w.key } };
}

let nextId = 1;
async function sub(c: RawClient, topic: string): Promise<P> {
  const id = nextId++;
  const seen = c.frames.length;
  c.send({ t: 'sub', id, topic });
  await c.next(isReply(id));
  // The full list (or count) follows `subscribed` on the same socket.
  return c.next<P>((f) => c.frames.indexOf(f) >= seen && isPresence(topic)(f));
}

/** Applies the presence frames a client got for `topic` (set semantics), as a client would. */
function view(c: RawClient, topic: string): { sessions: Set<string>; count: number } {
  const sessions = new Set<string>();
  let count = 0;
  for (const f of c.frames) {
    if (!isPresence(topic)(f)) continue;
    const p = f as P;
    if (p.members) {
      sessions.clear();
      for (const m of p.members) sessions.add(m.session);
    }
    for (const m of p.join ?? []) sessions.add(m.session);
    for (const m of p.leave ?? []) sessions.delete(m.session);
    count = p.count;
  }
  return { sessions, count };
}

/** Waits until the client's view of `topic` satisfies `ok`. */
async function until(c: RawClient, topic: string, ok: (v: { sessions: Set<string>; count: number }) => boolean, timeoutMs = 5000) {
  await c.next((f) => isPresence(topic)(f) && ok(view(c, topic)), timeoutMs);
  return view(c, topic);
}

describe('presence (embedded engine)', () => {
  it('gives the full list after subscribed, then batched joins and leaves', async () => {
    const a = await join({ name: 'Ann' });
    const first = await sub(a.c, 'room.one');
    expect(first).toMatchObject({ count: 1, members: [{ session: a.session.id, info: { name: 'Ann' } }] });
    expect(a.c.frames.findIndex((f) => f.t === 'subscribed')).toBeLessThan(a.c.frames.indexOf(first));

    const b = await join();
    const c = await join();
    const full = await sub(b.c, 'room.one');
    expect(full.members?.map((m) => m.session).sort()).toEqual([a.session.id, b.session.id].sort());
    await sub(c.c, 'room.one');
    // b and c joined within a few intervals: a sees them, batched (at most one frame per interval).
    const v = await until(a.c, 'room.one', (x) => x.sessions.size === 3);
    expect(v.count).toBe(3);
    const pushes = a.c.frames.filter(isPresence('room.one')) as P[];
    expect(pushes.every((p) => !p.members || p === first)).toBe(true);

    // Unsubscribe: leaves at once (next batch), with its user field shape.
    b.c.send({ t: 'unsub', id: nextId++, topic: 'room.one' });
    const left = await a.c.next<P>((f) => isPresence('room.one')(f) && ((f as P).leave ?? []).some((m) => m.session === b.session.id));
    expect(left.count).toBe(2);
    for (const x of [a, b, c]) x.c.close();
  });

  it('batches: many joins in one interval reach a subscriber as few frames', async () => {
    const watcher = await join();
    await sub(watcher.c, 'room.batch');
    const before = watcher.c.frames.filter(isPresence('room.batch')).length;
    const others = await Promise.all([join(), join()]);
    await Promise.all(others.map((o) => sub(o.c, 'room.batch')));
    await until(watcher.c, 'room.batch', (v) => v.count === 3);
    const frames = watcher.c.frames.filter(isPresence('room.batch')).length - before;
    expect(frames).toBeLessThanOrEqual(2);
    for (const x of [watcher, ...others]) x.c.close();
  });

  it('shows a user with two sessions as two members with the same user', async () => {
    // Anonymous here: the user field is absent; two sockets = two sessions.
    const a1 = await join({ name: 'Ann' });
    const a2 = await join({ name: 'Ann' });
    await sub(a1.c, 'room.two');
    await sub(a2.c, 'room.two');
    const v = await until(a1.c, 'room.two', (x) => x.count === 2);
    expect([...v.sessions].sort()).toEqual([a1.session.id, a2.session.id].sort());
    a1.c.close();
    a2.c.close();
  });

  it('grace: a session that resumes within graceMs does not leave; one away longer leaves', async () => {
    const watcher = await join();
    await sub(watcher.c, 'room.grace');
    const m = await join();
    await sub(m.c, 'room.grace');
    await until(watcher.c, 'room.grace', (v) => v.count === 2);

    // A control member drops at the same moment and does not come back: its leave (after
    // graceMs) is the event that proves the resumed member's grace is over too.
    const control = await join();
    await sub(control.c, 'room.grace');
    await until(watcher.c, 'room.grace', (v) => v.count === 3);
    const mark = watcher.c.frames.length;

    // Drop the socket, resume the session with hello.restore: no leave, no join.
    m.c.ws.terminate();
    control.c.ws.terminate();
    const back = await connectRaw(gw.url, 'json');
    back.send({ t: 'hello', v: 1, session: m.session, restore: {} });
    const w = await back.next<Extract<ServerFrame, { t: 'welcome' }>>((f) => f.t === 'welcome');
    expect(w.resumed).toBe(true);
    await back.next<P>(isPresence('room.grace'));
    await watcher.c.next((f) => isPresence('room.grace')(f) && ((f as P).leave ?? []).some((x) => x.session === control.session.id), GRACE + 3000);
    const later = watcher.c.frames.slice(mark).filter(isPresence('room.grace')) as P[];
    const touched = later.flatMap((p) => [...(p.join ?? []), ...(p.leave ?? [])]).map((x) => x.session);
    expect(touched).not.toContain(m.session.id);
    expect(view(watcher.c, 'room.grace').sessions.has(m.session.id)).toBe(true);

    // Gone for good: leaves after graceMs.
    const gone = Date.now();
    back.ws.terminate();
    await watcher.c.next((f) => isPresence('room.grace')(f) && ((f as P).leave ?? []).some((x) => x.session === m.session.id), GRACE + 3000);
    expect(Date.now() - gone).toBeGreaterThanOrEqual(GRACE - 20);
    watcher.c.close();
  });

  it('count mode: subscribers get counts only', async () => {
    const a = await join();
    const first = await sub(a.c, 'stadium.final');
    expect(first).toEqual({ t: 'presence', topic: 'stadium.final', count: 1 });
    const b = await join();
    await sub(b.c, 'stadium.final');
    const f = await a.c.next<P>((x) => isPresence('stadium.final')(x) && (x as P).count === 2);
    expect(f.members ?? f.join ?? f.leave).toBeUndefined();
    a.c.close();
    b.c.close();
  });

  it('member limit: past maxMembers counts only, back under a full list', async () => {
    const watcher = await join();
    await sub(watcher.c, 'room.big');
    const others = await Promise.all([join(), join(), join()]);
    for (const o of others) await sub(o.c, 'room.big');
    // 4 members > maxMembers 3: a count-only frame.
    const over = await watcher.c.next<P>((f) => isPresence('room.big')(f) && (f as P).count === 4);
    expect(over.members ?? over.join).toBeUndefined();
    // A new subscriber past the limit gets the count only.
    const late = await join();
    expect(await sub(late.c, 'room.big')).toEqual({ t: 'presence', topic: 'room.big', count: 5 });
    late.c.send({ t: 'unsub', id: nextId++, topic: 'room.big' });
    others[0]!.c.send({ t: 'unsub', id: nextId++, topic: 'room.big' });
    const under = await watcher.c.next<P>((f) => isPresence('room.big')(f) && (f as P).members !== undefined && (f as P).count === 3);
    expect(under.members).toHaveLength(3);
    for (const x of [watcher, late, ...others]) x.c.close();
  });

  it('presence request: the list once, without subscribing; 2009 when off; 2000 bad topic', async () => {
    const m = await join({ n: 1 });
    await sub(m.c, 'room.req');
    const r = await join();
    r.c.send({ t: 'presence', id: 77, topic: 'room.req' });
    expect(await r.c.next(isReply(77))).toMatchObject({
      t: 'presence',
      id: 77,
      topic: 'room.req',
      count: 1,
      members: [{ session: m.session.id, info: { n: 1 } }],
    });
    r.c.send({ t: 'presence', id: 78, topic: 'stadium.x' });
    expect(await r.c.next(isReply(78))).toEqual({ t: 'presence', id: 78, topic: 'stadium.x', count: 0 });
    r.c.send({ t: 'presence', id: 79, topic: 'plain.x' });
    expect(await r.c.next(isReply(79))).toMatchObject({ t: 'error', code: 2009, id: 79 });
    r.c.send({ t: 'presence', id: 80, topic: 'bad..topic' });
    expect(await r.c.next(isReply(80))).toMatchObject({ t: 'error', code: 2000, id: 80 });
    // A subscribe to a namespace without presence gets no presence frames.
    await r.c.send({ t: 'sub', id: 81, topic: 'plain.y' });
    await r.c.next(isReply(81));
    const id = nextId++;
    r.c.send({ t: 'ping', id });
    await r.c.next(isReply(id));
    expect(r.c.frames.some(isPresence('plain.y'))).toBe(false);
    m.c.close();
    r.c.close();
  });

  it('GET /api/presence: members, count, errors', async () => {
    const m = await join({ n: 2 });
    await sub(m.c, 'room.http');
    const get = (q: string, key = KEY) => fetch(`${gw.httpUrl}/api/presence?${q}`, { headers: { authorization: `Bearer ${key}` } });
    const ok = await get('topic=room.http');
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual({ topic: 'room.http', count: 1, members: [{ session: m.session.id, info: { n: 2 } }] });
    expect(await (await get('topic=stadium.none')).json()).toEqual({ topic: 'stadium.none', count: 0 });
    const off = await get('topic=plain.z');
    expect(off.status).toBe(400);
    expect((await off.json()).error.code).toBe(2009);
    const bad = await get('topic=a..b');
    expect(bad.status).toBe(400);
    expect((await bad.json()).error.code).toBe(2000);
    expect((await get('topic=room.http', 'wrong')).status).toBe(401);
    m.c.close();
  });

  it('oversized info: error 4002, then close 4500', async () => {
    const c = await connectRaw(gw.url, 'json');
    c.send({ t: 'hello', v: 1, info: { blob: 'x'.repeat(100) } });
    expect(await c.next((f) => f.t === 'error')).toMatchObject({ code: 4002 });
    expect((await c.closed).code).toBe(4500);
  });
});

describe('presence in the SDK', () => {
  const clients: SymphonicClient[] = [];
  const client = (options: Record<string, unknown> = {}) => {
    const c = new SymphonicClient(gw.url, { WebSocket: WebSocket as never, reconnect: { min: 50, max: 500 }, ...options });
    clients.push(c);
    c.connect();
    return c;
  };

  it('sub.presence: members, users grouping sessions, join and leave events; client.presence; publisher.presence', async () => {
    // Two sessions of user u1 (its token's info claim wins over hello.info), one anonymous.
    const token = await hs256({ sub: 'u1', info: { name: 'Ann' } });
    const ann1 = client({ token, info: { name: 'ignored' } });
    const ann2 = client({ token });
    const anon = client({ info: { name: 'Bob' } });
    const s1 = ann1.subscribe('room.sdk');
    await s1.ready();
    const changes: PresenceChange[] = [];
    s1.presence.on('change', (c) => changes.push(c));
    const joined = new Promise<string[]>((resolve) => {
      const seen: string[] = [];
      s1.presence.on('join', (ms) => {
        seen.push(...ms.map((m) => m.session));
        if (seen.length >= 2) resolve(seen);
      });
    });
    await ann2.subscribe('room.sdk').ready();
    const s3 = anon.subscribe('room.sdk');
    await s3.ready();
    expect((await joined).sort()).toEqual([ann2.session!.id, anon.session!.id].sort());
    expect(s1.presence.count).toBe(3);
    const users = s1.presence.users().sort((a, b) => String(a.user).localeCompare(String(b.user)));
    expect(users.map((u) => [u.user, u.sessions.length])).toEqual([
      ['u1', 2],
      [undefined, 1],
    ]);
    expect(users[0]!.sessions[0]!.info).toEqual({ name: 'Ann' });
    expect(users[1]!.sessions[0]!.info).toEqual({ name: 'Bob' });

    const once = await anon.presence('room.sdk');
    expect(once.count).toBe(3);
    expect(once.members).toHaveLength(3);
    await expect(anon.presence('plain.q')).rejects.toMatchObject({ code: 2009 });

    const left = new Promise<string[]>((resolve) => s1.presence.once('leave', (ms) => resolve(ms.map((m) => m.session))));
    s3.unsubscribe();
    expect(await left).toEqual([anon.session!.id]);
    expect(s1.presence.has(anon.session!.id)).toBe(false);

    const pub = new SymphonicPublisher({ url: gw.httpUrl, apiKey: KEY });
    expect((await pub.presence('room.sdk')).count).toBe(2);
    await expect(pub.presence('plain.q')).rejects.toMatchObject({ code: 2009 });
    const natsOnly = new SymphonicPublisher({ nats: { servers: 'nats://127.0.0.1:1' } });
    await expect(natsOnly.presence('room.sdk')).rejects.toThrow(/give the publisher a url/);
    await natsOnly.close();
    expect(changes.length).toBeGreaterThan(0);
    for (const c of clients) c.close();
  });
});

describe('presence leaves nothing behind', () => {
  it('once every member is gone (grace and linger over), the gateway watches no presence topic', async () => {
    const topics = async () => {
      const text = await (await fetch(`${gw.httpUrl}/metrics`)).text();
      return Number(/^symphonic_presence_topics(?:\{[^}]*\})? (\d+)/m.exec(text)?.[1] ?? NaN);
    };
    const deadline = Date.now() + GRACE + 10_000;
    let n = await topics();
    while (n !== 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100)); // each /metrics read is the event polled
      n = await topics();
    }
    expect(n).toBe(0);
  }, 20_000);
});
