/**
 * The admin API of a NATS deployment: two gateway processes on one nats-server see each other in
 * GET /api/admin/cluster (heartbeats on `<prefix>.gateways.hb`, one keeper between them), look up
 * a session and a topic held by the other, disconnect a session and a user across gateways, and
 * a SIGKILLed gateway drops out of the other's view within 3 heartbeats (the stated bound).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { CloseCode } from '../../protocol/index.ts';
import { adminClient, connectWithToken, poll } from '../support/admin.ts';
import { startGatewayProcess, type GatewayProcess } from '../support/gateway-process.ts';
import { startNatsServer, type NatsServer } from '../support/nats-server.ts';
import { connectHello, isReply } from '../support/raw-client.ts';
import { hs256, SECRET } from '../security/support/tokens.ts';

const ADMIN = 'cluster-admin-key-0123456789';
const HEARTBEAT_MS = 2000; // the default, so the bound checked is the documented one
const STALE_AFTER_MS = 3 * HEARTBEAT_MS;
const VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

let nats: NatsServer;
let a: GatewayProcess;
let b: GatewayProcess;
let c: GatewayProcess | undefined;
let config: (name: string) => Record<string, unknown>;

interface Gw {
  node: string;
  self: boolean;
  connections: number;
  version: string;
  bus: { engine: string; status: string; keeper: boolean | null };
  lastSeenAgoMs: number;
}

beforeAll(async () => {
  nats = await startNatsServer();
  config = (name: string) => ({
    nodeId: name,
    bus: { engine: 'nats', nats: { servers: [nats.url], prefix: `adm${process.pid}` } },
    auth: { secret: SECRET },
    api: { keys: [{ key: ADMIN, scopes: ['admin'] }] },
  });
  [a, b] = await Promise.all([startGatewayProcess({ name: 'gw-a', config: config('gw-a') }), startGatewayProcess({ name: 'gw-b', config: config('gw-b') })]);
}, 90_000);

afterAll(async () => {
  await Promise.allSettled([a?.kill(), b?.kill(), c?.kill()]);
  await nats?.cleanup();
});

const nodesOf = async (gw: GatewayProcess): Promise<Gw[]> => (await adminClient(gw.httpUrl, ADMIN).get('/api/admin/cluster')).body.gateways;

describe('admin API on NATS, two gateway processes', () => {
  it('each gateway sees both in /api/admin/cluster, one of them the keeper', async () => {
    for (const [gw, other] of [
      [a, b],
      [b, a],
    ] as const) {
      const gws = await poll(
        `${gw.name} sees ${other.name}`,
        async () => {
          const g = await nodesOf(gw);
          return g.length === 2 && g.every((x) => x.bus.keeper !== null) ? g : undefined;
        },
        15_000,
        100,
      );
      expect(gws.map((g) => [g.node, g.self])).toEqual([
        [gw.name, true],
        [other.name, false],
      ]);
      for (const g of gws) expect(g).toMatchObject({ version: VERSION, bus: { engine: 'nats', status: 'ready' } });
      expect(gws[1]!.lastSeenAgoMs).toBeLessThanOrEqual(STALE_AFTER_MS);
    }
    const r = await adminClient(a.httpUrl, ADMIN).get('/api/admin/cluster');
    expect(r.body).toMatchObject({ engine: 'nats', heartbeatMs: HEARTBEAT_MS, staleAfterMs: STALE_AFTER_MS });
    // Exactly one keeper (by lease); both gateways agree on which.
    const keepers = await poll(
      'one keeper',
      async () => {
        const k = (await nodesOf(a)).filter((g) => g.bus.keeper).map((g) => g.node);
        return k.length === 1 ? k : undefined;
      },
      15_000,
      100,
    );
    await poll(
      'the same keeper seen from gw-b',
      async () => JSON.stringify((await nodesOf(b)).filter((g) => g.bus.keeper).map((g) => g.node)) === JSON.stringify(keepers),
      15_000,
      100,
    );
  });

  it("a gateway's connections show on the other within a heartbeat", async () => {
    const clients = await Promise.all([1, 2, 3].map(() => connectHello(b.url, 'json')));
    await poll('gw-a sees 3 connections on gw-b', async () => (await nodesOf(a)).find((g) => g.node === 'gw-b')?.connections === 3, 3 * HEARTBEAT_MS, 100);
    for (const { c } of clients) c.close();
    await poll('gw-a sees them gone', async () => (await nodesOf(a)).find((g) => g.node === 'gw-b')?.connections === 0, 3 * HEARTBEAT_MS, 100);
  });

  it('looks up a session and a topic held by the other gateway, and disconnects that session from it', async () => {
    const { c, welcome } = await connectWithToken(b.url, await hs256({ sub: 'dora' }));
    c.send({ t: 'sub', id: 1, topic: 'adm.room' });
    await c.next(isReply(1));
    const onA = adminClient(a.httpUrl, ADMIN);
    // The session record is written to the registry (KV) as the welcome goes out.
    const s = await poll('the session in the registry', async () => {
      const r = await onA.get(`/api/admin/sessions/${welcome.session}`);
      return r.status === 200 && r.body.topics.length === 1 ? r : undefined;
    });
    expect(s.body).toEqual({ id: welcome.session, user: 'dora', topics: ['adm.room'], attached: true, node: 'gw-b', nodeAnswered: true, expiresAt: null });

    const t = await onA.get('/api/admin/topics/adm.room');
    expect(t.status).toBe(200);
    expect(t.body).toMatchObject({
      topic: 'adm.room',
      subscribers: 1,
      gateways: [
        { node: 'gw-a', subscribers: 0 },
        { node: 'gw-b', subscribers: 1 },
      ],
      unanswered: [],
    });

    const d = await onA.post('/api/admin/disconnect', { session: welcome.session });
    expect(d.body).toEqual({ disconnected: 1, gateways: [{ node: 'gw-b', disconnected: 1 }], unanswered: [] });
    expect((await c.closed).code).toBe(CloseCode.Kicked);
    const after = await poll('the session detached', async () => {
      const r = await onA.get(`/api/admin/sessions/${welcome.session}`);
      return r.body.attached === false ? r : undefined;
    });
    expect(after.body).toMatchObject({ node: 'gw-b', attached: false });
  });

  it('disconnects a user on every gateway', async () => {
    const token = await hs256({ sub: 'erin' });
    const conns = await Promise.all([a, b, b].map((gw) => connectWithToken(gw.url, token)));
    const r = await adminClient(a.httpUrl, ADMIN).post('/api/admin/disconnect', { user: 'erin' });
    expect(r.status).toBe(200);
    expect(r.body).toEqual({
      disconnected: 3,
      gateways: [
        { node: 'gw-a', disconnected: 1 },
        { node: 'gw-b', disconnected: 2 },
      ],
      unanswered: [],
    });
    for (const { c } of conns) expect((await c.closed).code).toBe(CloseCode.Kicked);
  });

  it(`a SIGKILLed gateway drops out of the other's view within 3 heartbeats (${STALE_AFTER_MS} ms)`, async () => {
    expect((await nodesOf(a)).map((g) => g.node)).toContain('gw-b');
    await b.kill();
    const killedAt = Date.now();
    await poll("gw-b gone from gw-a's view", async () => !(await nodesOf(a)).some((g) => g.node === 'gw-b'), STALE_AFTER_MS + 2000, 50);
    const gone = Date.now() - killedAt;
    // Dropped CLUSTER_MISSED_BEATS intervals after its last beat, which came at most one interval before the kill.
    expect(gone).toBeLessThanOrEqual(STALE_AFTER_MS + 500);
    expect(gone).toBeGreaterThanOrEqual(STALE_AFTER_MS - HEARTBEAT_MS - 500);
    // Requests to every gateway no longer wait for it.
    const t = await adminClient(a.httpUrl, ADMIN).get('/api/admin/topics/adm.room');
    expect(t.body).toMatchObject({ gateways: [{ node: 'gw-a' }], unanswered: [] });
  }, 30_000);

  it('a gateway that joins shows up at once, and one that stops (SIGTERM) is gone at once, not after 3 heartbeats', async () => {
    c = await startGatewayProcess({ name: 'gw-c', config: config('gw-c') });
    // Hearing a newcomer makes every gateway beat at once: no waiting for the next interval.
    await poll('gw-c on gw-a', async () => (await nodesOf(a)).some((g) => g.node === 'gw-c'), HEARTBEAT_MS, 50);
    await poll('gw-a on gw-c', async () => (await nodesOf(c!)).some((g) => g.node === 'gw-a'), HEARTBEAT_MS, 50);
    await c.stop();
    const stoppedAt = Date.now();
    // It says goodbye on the way out (the drain has no clients to move, so it exits at once).
    await poll("gw-c gone from gw-a's view", async () => !(await nodesOf(a)).some((g) => g.node === 'gw-c'), HEARTBEAT_MS, 50);
    expect(Date.now() - stoppedAt).toBeLessThan(HEARTBEAT_MS);
  }, 60_000);
});
