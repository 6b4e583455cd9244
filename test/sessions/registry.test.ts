/**
 * The cluster session registry on a real nats-server: two gateways share one NATS; a session
 * opened on one resumes on the other with its topics and app state, the old owner lets go, a
 * session belongs to its user, and a detached session expires after its TTL.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CloseCode, ErrorCode } from '../../protocol/index.ts';
import type { GatewayConfigInput } from '../../gateway/config.ts';
import { startGateway, type RunningGateway } from '../../gateway/server.ts';
import { startNatsServer, type NatsServer } from '../support/nats-server.ts';
import { connectHello, isReply } from '../support/raw-client.ts';
import { connect, type KV, type NatsConnection } from 'nats';

let nats: NatsServer;
let a: RunningGateway;
let b: RunningGateway;
let nc: NatsConnection;
let kv: KV;
const TTL_MS = 3000;
const PREFIX = `sess${process.pid}`;

/** The registry's record of a session, read straight from the KV bucket (null: none). */
async function record(id: string): Promise<{ owner: string; topics: string[]; state?: unknown } | null> {
  const e = await kv.get(id);
  return e && e.operation === 'PUT' ? JSON.parse(new TextDecoder().decode(e.value)) : null;
}

/** Polls (bounded) until `check` holds for the session's record. */
async function until(id: string, check: (r: Awaited<ReturnType<typeof record>>) => boolean, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await record(id);
    if (check(r)) return r;
    if (Date.now() > deadline) throw new Error(`registry record of ${id} never matched; last: ${JSON.stringify(r)}`);
    await new Promise((res) => setTimeout(res, 50));
  }
}

beforeAll(async () => {
  nats = await startNatsServer();
  const config = (node: string): GatewayConfigInput => ({
    host: '127.0.0.1', port: 0, nodeId: node, log: { level: 'warn' },
    bus: { engine: 'nats', nats: { servers: [nats.url], prefix: PREFIX } },
    session: { ttlMs: TTL_MS },
  });
  a = await startGateway(config('gw-a'));
  b = await startGateway(config('gw-b'));
  nc = await connect({ servers: nats.url });
  kv = await nc.jetstream().views.kv(`${PREFIX}_sessions`);
});

afterAll(async () => {
  await nc?.close();
  await a?.close();
  await b?.close();
  await nats?.cleanup();
});

describe('session registry (NATS KV)', () => {
  it('resumes a session on another gateway with its topics and app state', async () => {
    const first = await connectHello(a.url);
    first.c.send({ t: 'sub', id: 1, topic: 'reg.one' });
    first.c.send({ t: 'sub', id: 2, topic: 'reg.two' });
    await first.c.next(isReply(2));
    first.c.send({ t: 'session', id: 3, state: { cart: ['x'], step: 2 } });
    expect(await first.c.next(isReply(3))).toEqual({ t: 'session', id: 3 });
    first.c.send({ t: 'unsub', id: 4, topic: 'reg.two' });
    await first.c.next(isReply(4));
    first.c.ws.terminate();
    await first.c.closed;

    // The socket's gateway persists the session when the socket goes; wait for that write.
    await until(first.welcome.session, (r) => r?.topics.length === 1);
    const resumed = await connectHello(b.url, 'msgpack', { id: first.welcome.session, key: first.welcome.key });
    expect(resumed.welcome).toMatchObject({ resumed: true, session: first.welcome.session, node: 'gw-b' });
    expect(resumed.welcome.topics).toEqual(['reg.one']);
    expect(resumed.welcome.state).toEqual({ cart: ['x'], step: 2 });
    expect((await record(first.welcome.session))?.owner).toBe('gw-b');
    resumed.c.close();
  });

  it('takes a live session over from its gateway (4004 there)', async () => {
    const owner = await connectHello(a.url);
    const thief = await connectHello(b.url, 'msgpack', { id: owner.welcome.session, key: owner.welcome.key });
    expect(thief.welcome.resumed).toBe(true);
    expect((await owner.c.closed).code).toBe(CloseCode.SessionTakenOver);
    // the old key was rotated away
    const stale = await connectHello(a.url, 'msgpack', { id: owner.welcome.session, key: owner.welcome.key });
    expect(stale.welcome.resumed).toBe(false);
    thief.c.close();
    stale.c.close();
  });

  it('does not resume with a wrong key', async () => {
    const s = await connectHello(a.url);
    s.c.close();
    await s.c.closed;
    const other = await connectHello(b.url, 'msgpack', { id: s.welcome.session, key: 'x'.repeat(24) });
    expect(other.welcome.resumed).toBe(false);
    other.c.close();
  });

  it('refuses app state over the size limit', async () => {
    const { c } = await connectHello(a.url);
    c.send({ t: 'session', id: 9, state: { blob: 'x'.repeat(5000) } });
    expect(await c.next(isReply(9))).toMatchObject({ t: 'error', code: ErrorCode.PayloadTooLarge });
    c.close();
  });

  it('keeps an attached session past its TTL and expires it TTL after its socket went', async () => {
    const s = await connectHello(a.url);
    await until(s.welcome.session, (r) => r !== null);
    // Attached for 1.5 TTLs: the owner's refreshes keep the record.
    const start = Date.now();
    while (Date.now() - start < 1.5 * TTL_MS) {
      expect(await record(s.welcome.session)).not.toBeNull();
      await new Promise((res) => setTimeout(res, 250));
    }
    s.c.close();
    await s.c.closed;
    const detachedAt = Date.now();
    await until(s.welcome.session, (r) => r === null, 4 * TTL_MS);
    expect(Date.now() - detachedAt).toBeGreaterThanOrEqual(TTL_MS - 500);
    const late = await connectHello(b.url, 'msgpack', { id: s.welcome.session, key: s.welcome.key });
    expect(late.welcome.resumed).toBe(false);
    late.c.close();
  }, 60_000);
});
