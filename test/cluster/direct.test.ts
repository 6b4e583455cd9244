/**
 * Direct messages across a cluster (docs/protocol.md section 16): 3 NATS nodes (streams and
 * buckets at replicas 3) and 3 gateway processes. To a session on another gateway, to a user with
 * sessions on two gateways, to a session resuming onto another gateway (nothing lost, once, in
 * order, before new ones), to nobody; and a message reaches only the gateway holding the session:
 * the others hold no subscription for it and receive no copy (NATS /connz and each gateway's
 * `symphonic_bus_inbox_deliveries_total`).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, type ServerFrame } from '../../protocol/index.ts';
import { connectWithToken, poll } from '../support/admin.ts';
import { startGatewayProcess, type GatewayProcess } from '../support/gateway-process.ts';
import type { NatsCluster } from '../support/nats-server.ts';
import { connectRaw, isReply, type RawClient } from '../support/raw-client.ts';
import { hs256, SECRET } from '../security/support/tokens.ts';
import { startMonitoredCluster, subscriptionsOf } from './support/nats-monitor.ts';

type Dm = Extract<ServerFrame, { t: 'dm' }>;
type Welcome = Extract<ServerFrame, { t: 'welcome' }>;
const PREFIX = 'dmx';
const KEY = 'direct-cluster-key-0123456789';
const isDm = (f: ServerFrame): f is Dm => f.t === 'dm';

let cluster: NatsCluster;
const gateways: GatewayProcess[] = [];
const clients: RawClient[] = [];

beforeAll(async () => {
  cluster = await startMonitoredCluster(3);
  gateways.push(
    ...(await Promise.all(
      ['dm-1', 'dm-2', 'dm-3'].map((name) =>
        startGatewayProcess({
          name,
          config: {
            bus: { engine: 'nats', nats: { servers: [...cluster.urls], prefix: PREFIX, replicas: 3 } },
            auth: { secret: SECRET },
            api: { keys: [KEY] },
            direct: { inboxSize: 6 },
            limits: { connRatePerSec: 0, userRatePerSec: 0 },
          },
          readyTimeoutMs: 90_000,
        }),
      ),
    )),
  );
}, 150_000);

afterAll(async () => {
  for (const c of clients) c.close();
  await Promise.all(gateways.map((g) => g.stop(5_000)));
  await cluster?.cleanup();
}, 60_000);

async function user(sub: string, g: GatewayProcess) {
  const r = await connectWithToken(g.url, await hs256({ sub }));
  clients.push(r.c);
  return r;
}

async function sendOk(c: RawClient, id: number, to: object, data: unknown): Promise<number> {
  c.send({ t: 'send', id, to, data });
  const r = await c.next(isReply(id), 20_000);
  expect(r).toMatchObject({ t: 'sent', id });
  return (r as Extract<ServerFrame, { t: 'sent' }>).sessions;
}

const deliveries = async (g: GatewayProcess) => (await g.metrics()).symphonic_bus_inbox_deliveries_total ?? 0;

describe('direct messages across gateways', () => {
  it('reaches a session on another gateway, and only that gateway sees it', async () => {
    const [g1, g2] = gateways as [GatewayProcess, GatewayProcess, GatewayProcess];
    const a = await user('ann', g1);
    const b = await user('bob', g2);
    const before = await Promise.all(gateways.map(deliveries));
    expect(await sendOk(a.c, 1, { session: b.welcome.session }, { hi: 'bob' })).toBe(1);
    expect(await b.c.next<Dm>(isDm, 20_000)).toMatchObject({ data: { hi: 'bob' }, from: { session: a.welcome.session, user: 'ann' } });
    const after = await Promise.all(gateways.map(deliveries));
    expect(after.map((n, i) => n - before[i]!)).toEqual([0, 1, 0]);
    // One subscription for the session, on its gateway's inbox connection; none elsewhere.
    const subject = `${PREFIX}.dm.${b.welcome.session}`;
    const held = await Promise.all(gateways.map(async (g) => (await subscriptionsOf(cluster, `${g.name}-inbox`)).filter((s) => s.subject === subject)));
    expect(held.map((s) => s.length)).toEqual([0, 1, 0]);
    expect(held[1]![0]!.msgs).toBe(1);
  }, 60_000);

  it('reaches a user with sessions on two gateways, each once', async () => {
    const [g1, g2, g3] = gateways as [GatewayProcess, GatewayProcess, GatewayProcess];
    const a = await user('ann', g1);
    const c2 = await user('carl', g2);
    const c3 = await user('carl', g3);
    expect(await sendOk(a.c, 1, { user: 'carl' }, 'one')).toBe(2);
    expect(await sendOk(a.c, 2, { user: 'carl' }, 'two')).toBe(2);
    for (const c of [c2.c, c3.c]) expect(((await c.collect(isDm, 2, 20_000)) as Dm[]).map((m) => m.data)).toEqual(['one', 'two']);
    expect(c2.c.frames.filter(isDm)).toHaveLength(2);
    // The backend path: POST /api/send on the third gateway.
    const r = await fetch(`${g3.httpUrl}/api/send`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ to: { user: 'carl' }, data: 'three' }),
    });
    expect(await r.json()).toEqual({ sessions: 2 });
    for (const c of [c2.c, c3.c]) expect(((await c.collect(isDm, 3, 20_000)) as Dm[])[2]).toMatchObject({ data: 'three' });
    expect((c3.c.frames.filter(isDm)[2] as Dm).from).toBeUndefined();
  }, 60_000);

  it('keeps messages for a session resuming onto another gateway: all after welcome, once, in order, before new ones', async () => {
    const [g1, g2, g3] = gateways as [GatewayProcess, GatewayProcess, GatewayProcess];
    const a = await user('ann', g1);
    const d = await user('dora', g2);
    expect(await sendOk(a.c, 1, { session: d.welcome.session }, 1)).toBe(1);
    const first = await d.c.next<Dm>(isDm, 20_000);
    d.c.ws.terminate();
    await d.c.closed;
    for (let i = 2; i <= 6; i++) await sendOk(a.c, i, { session: d.welcome.session }, i);

    const c = await connectRaw(g3.url, 'json');
    clients.push(c);
    c.send({
      t: 'hello',
      v: 1,
      token: await hs256({ sub: 'dora' }),
      session: { id: d.welcome.session, key: d.welcome.key },
      inbox: { seq: first.seq, epoch: first.epoch },
    });
    const w = await c.next<Welcome>((f) => f.t === 'welcome', 20_000);
    expect(w).toMatchObject({ resumed: true, node: 'dm-3' });
    expect(w.inboxLost).toBeUndefined();
    await sendOk(a.c, 7, { session: d.welcome.session }, 7);
    const got = (await c.collect(isDm, 6, 20_000)) as Dm[];
    expect(got.map((m) => m.data)).toEqual([2, 3, 4, 5, 6, 7]);
    expect(c.frames.findIndex(isDm)).toBe(c.frames.indexOf(w) + 1);
    const seqs = got.map((m) => m.seq);
    expect([...seqs].sort((x, y) => x - y)).toEqual(seqs);
    expect(seqs[0]).toBeGreaterThan(first.seq);
    // Delivered now by dm-3 only: dm-2 let its subscription go with the socket.
    const subject = `${PREFIX}.dm.${d.welcome.session}`;
    // The old gateway's unsubscribe reaches NATS on its own schedule: wait for it (bounded).
    const counts = () =>
      Promise.all(gateways.map(async (g) => (await subscriptionsOf(cluster, `${g.name}-inbox`)).filter((s) => s.subject === subject).length));
    const held = await poll('only dm-3 subscribed to the session', async () => {
      const n = await counts();
      return n.join() === '0,0,1' ? n : undefined;
    });
    expect(held).toEqual([0, 0, 1]);
  }, 90_000);

  it('says inboxLost when more than direct.inboxSize waited, and sends the retained ones', async () => {
    const [g1, g2, g3] = gateways as [GatewayProcess, GatewayProcess, GatewayProcess];
    const a = await user('ann', g1);
    const e = await user('eve', g3);
    await sendOk(a.c, 1, { session: e.welcome.session }, 1);
    const first = await e.c.next<Dm>(isDm, 20_000);
    e.c.ws.terminate();
    await e.c.closed;
    for (let i = 2; i <= 10; i++) await sendOk(a.c, i, { session: e.welcome.session }, i);
    const c = await connectRaw(g2.url, 'json');
    clients.push(c);
    c.send({
      t: 'hello',
      v: 1,
      token: await hs256({ sub: 'eve' }),
      session: { id: e.welcome.session, key: e.welcome.key },
      inbox: { seq: first.seq, epoch: first.epoch },
    });
    const w = await c.next<Welcome>((f) => f.t === 'welcome', 20_000);
    expect(w).toMatchObject({ resumed: true, inboxLost: true });
    expect(((await c.collect(isDm, 6, 20_000)) as Dm[]).map((m) => m.data)).toEqual([5, 6, 7, 8, 9, 10]);
  }, 90_000);

  it('answers 2010 for a session or user nobody holds, and 1001 for a malformed id', async () => {
    const a = await user('ann', gateways[0]!);
    a.c.send({ t: 'send', id: 1, to: { session: 'AAAAAAAAAAAAAAAA' }, data: 1 });
    expect(await a.c.next(isReply(1), 20_000)).toMatchObject({ t: 'error', code: ErrorCode.NoRecipient });
    a.c.send({ t: 'send', id: 2, to: { user: 'nobody-here' }, data: 1 });
    expect(await a.c.next(isReply(2), 20_000)).toMatchObject({ t: 'error', code: ErrorCode.NoRecipient });
    a.c.send({ t: 'send', id: 3, to: { session: 'no.dots.allowed' }, data: 1 });
    expect(await a.c.next(isReply(3), 20_000)).toMatchObject({ t: 'error', code: ErrorCode.InvalidFrame });
  }, 60_000);
});
