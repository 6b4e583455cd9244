/**
 * The cluster session registry on a real nats-server: two gateways share one NATS; a session
 * opened on one resumes on the other with its topics and app state, the old owner lets go, a
 * session belongs to its user, and a detached session expires after its TTL. A lost
 * compare-and-set (our own write landed but its reply was lost) does not make the owner drop a
 * session it still holds, and a record another gateway owns is never written over.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CloseCode, ErrorCode } from '../../protocol/index.ts';
import type { GatewayConfigInput } from '../../gateway/config.ts';
import { startGateway, type RunningGateway } from '../../gateway/server.ts';
import { createLogger } from '../../gateway/log.ts';
import { createSessionRegistry } from '../../gateway/bus/nats/sessions.ts';
import type { SessionHolder, SessionStore } from '../../gateway/bus/sessions.ts';
import { startNatsServer, type NatsServer } from '../support/nats-server.ts';
import { connectHello, isReply } from '../support/raw-client.ts';
import { connect, type KV, type NatsConnection } from 'nats';
import { createHash, randomBytes } from 'node:crypto';

let nats: NatsServer;
let a: RunningGateway;
let b: RunningGateway;
let nc: NatsConnection;
let kv: KV;
const TTL_MS = 3000;
const PREFIX = `sess${process.pid}`;

interface StoredRecord {
  owner: string;
  keyHash: string;
  topics: string[];
  state?: unknown;
}

/** A session's record and its revision, read straight from a KV bucket (null: none). */
async function stored(id: string, bucket = kv): Promise<{ revision: number; r: StoredRecord } | null> {
  const e = await bucket.get(id);
  return e && e.operation === 'PUT' ? { revision: e.revision, r: JSON.parse(new TextDecoder().decode(e.value)) } : null;
}

/** The registry's record of a session (null: none). */
async function record(id: string): Promise<StoredRecord | null> {
  return (await stored(id))?.r ?? null;
}

/** Polls (bounded) until `check` holds for the session's stored record. */
async function untilStored(id: string, check: (e: Awaited<ReturnType<typeof stored>>) => boolean, bucket = kv, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const e = await stored(id, bucket);
    if (check(e)) return e;
    if (Date.now() > deadline) throw new Error(`registry record of ${id} never matched; last: ${JSON.stringify(e)}`);
    await new Promise((res) => setTimeout(res, 50));
  }
}

/** Polls (bounded) until `check` holds for the session's record. */
async function until(id: string, check: (r: StoredRecord | null) => boolean, timeoutMs = 15_000) {
  return (await untilStored(id, (e) => check(e?.r ?? null), kv, timeoutMs))?.r ?? null;
}

const keyHash = (key: string) => createHash('sha256').update(key).digest('base64');
const encode = (r: object) => new TextEncoder().encode(JSON.stringify(r));

beforeAll(async () => {
  nats = await startNatsServer();
  const config = (node: string): GatewayConfigInput => ({
    host: '127.0.0.1',
    port: 0,
    nodeId: node,
    log: { level: 'warn' },
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

  it('keeps writing a session whose record write landed without its reply reaching the gateway', async () => {
    const { c, welcome } = await connectHello(a.url);
    const first = await untilStored(welcome.session, (e) => e !== null);
    // The write landed but the gateway never learnt its revision: the record moved past it.
    const landed = await kv.put(welcome.session, encode(first!.r));
    c.send({ t: 'session', id: 1, state: { n: 1 } });
    await c.next(isReply(1));
    const changed = await untilStored(welcome.session, (e) => (e?.r.state as { n?: number } | undefined)?.n === 1);
    expect(changed!.revision).toBeGreaterThan(landed);
    expect(changed!.r.owner).toBe('gw-a');
    // Still the owner's: its next change is written too, and the session resumes on the other gateway.
    c.send({ t: 'session', id: 2, state: { n: 2 } });
    await c.next(isReply(2));
    await untilStored(welcome.session, (e) => (e?.r.state as { n?: number } | undefined)?.n === 2 && e!.r.owner === 'gw-a');
    const moved = await connectHello(b.url, 'msgpack', { id: welcome.session, key: welcome.key });
    expect(moved.welcome.resumed).toBe(true);
    moved.c.close();
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

describe('session registry after a lost compare-and-set', () => {
  const NODE = 'reg-a';
  let reg: SessionStore;
  let rkv: KV;
  const holder = () => {
    const h = {
      takenOver: false,
      takeOver: () => {
        h.takenOver = true;
      },
    };
    return h satisfies SessionHolder;
  };

  beforeAll(async () => {
    // A registry of its own (own bucket), driven directly: no gateway writes behind the test's back.
    const prefix = `${PREFIX}r`;
    // The bucket's max age is one TTL here, so its refresh (every third of it) is seen within the test.
    reg = await createSessionRegistry({
      nats: { servers: [nats.url], prefix },
      ttlMs: TTL_MS,
      recordMaxAgeMs: TTL_MS,
      nodeId: NODE,
      log: createLogger('silent'),
    });
    rkv = await nc.jetstream().views.kv(`${prefix}_sessions`);
  });

  afterAll(async () => {
    await reg?.close();
  });

  /** A record write of the registry that landed on the server but whose reply it never got. */
  async function landUnacknowledged(id: string): Promise<number> {
    const mine = await stored(id, rkv);
    expect(mine?.r.owner).toBe(NODE);
    return rkv.put(id, encode(mine!.r));
  }

  it('adopts the revision of its own write that landed unacknowledged and keeps refreshing the record', async () => {
    const h = holder();
    const { session } = await reg.attach(undefined, h, null);
    const landed = await landUnacknowledged(session.id);
    session.state = { step: 2 };
    reg.changed(session);
    const changed = await untilStored(session.id, (e) => (e?.r.state as { step?: number } | undefined)?.step === 2, rkv);
    expect(changed!.revision).toBeGreaterThan(landed);
    expect(changed!.r.owner).toBe(NODE);
    // The refresh goes on: the record moves again with no change, so it never ages out.
    await untilStored(session.id, (e) => e !== null && e.revision > changed!.revision && e.r.owner === NODE, rkv);
    expect(h.takenOver).toBe(false);
    const again = await reg.attach({ id: session.id, key: session.key }, holder(), null);
    expect(again.resumed).toBe(true);
    expect(again.session).toBe(session);
  });

  it('keeps a session whose write landed unacknowledged when its key rotated since (resume on the same gateway)', async () => {
    const { session } = await reg.attach(undefined, holder(), null);
    await landUnacknowledged(session.id); // the stored record carries the key before the rotation
    const again = await reg.attach({ id: session.id, key: session.key }, holder(), null);
    expect(again.resumed).toBe(true);
    expect(again.session).toBe(session);
    const now = await stored(session.id, rkv);
    expect(now?.r).toMatchObject({ owner: NODE, keyHash: keyHash(session.key) });
  });

  it.each([
    ['another gateway', { owner: 'reg-b' }],
    ['this node id with a key it never wrote', { owner: NODE }],
  ])('never writes over a record held by %s', async (_, holderOf) => {
    const h = holder();
    const { session } = await reg.attach(undefined, h, null);
    const mine = await stored(session.id, rkv);
    // A claim whose takeover message never reached us: new owner, new key, its own topics.
    const theirs = { ...mine!.r, ...holderOf, keyHash: keyHash(randomBytes(18).toString('base64url')), topics: ['theirs'] };
    const claimed = await rkv.put(session.id, encode(theirs));
    session.topics.add('mine');
    reg.changed(session);
    // A resume on this gateway waits for that write's outcome: the session is not ours any more.
    const again = await reg.attach({ id: session.id, key: session.key }, holder(), null);
    expect(again.resumed).toBe(false);
    expect(again.session.id).not.toBe(session.id);
    reg.detach(session, h); // the old socket going does not write it back either
    // A refresh has run (the new session's record moved) and the claimed record is untouched.
    const fresh = await stored(again.session.id, rkv);
    await untilStored(again.session.id, (e) => e !== null && e.revision > fresh!.revision, rkv);
    expect(await stored(session.id, rkv)).toEqual({ revision: claimed, r: theirs });
  });
});

describe('session registry while its bucket does not answer', () => {
  it('a resume whose record read goes unanswered (a KV leader election) asks again and resumes the session', async () => {
    const prefix = `${PREFIX}e`;
    const owner = await createSessionRegistry({ nats: { servers: [nats.url], prefix }, ttlMs: TTL_MS, nodeId: 'elect-a', log: createLogger('silent') });
    // The second gateway's connection leaves its first reads of the sessions bucket unanswered, as
    // a bucket whose leader is being elected does (the request is never delivered; no reply comes).
    let dropped = 0;
    let droppedId = '\0';
    const flaky = (opts: Parameters<typeof connect>[0]) =>
      connect(opts).then(
        (conn) =>
          new Proxy(conn, {
            get(target, prop, receiver) {
              if (prop !== 'publish') return Reflect.get(target, prop, receiver);
              return (subject: string, ...rest: unknown[]) => {
                const read =
                  subject.startsWith(`$JS.API.STREAM.MSG.GET.KV_${prefix}_sessions`) && new TextDecoder().decode(rest[0] as Uint8Array).includes(droppedId);
                if (read && dropped < 2) {
                  dropped++;
                  return;
                }
                return (target.publish as (...a: unknown[]) => unknown).call(target, subject, ...rest);
              };
            },
          }),
      );
    const resumer = await createSessionRegistry({
      nats: { servers: [nats.url], prefix, connect: flaky },
      ttlMs: TTL_MS,
      nodeId: 'elect-b',
      log: createLogger('silent'),
    });
    try {
      const h = { takeOver() {} };
      const { session } = await owner.attach(undefined, h, null);
      droppedId = session.id; // its record's reads are the ones dropped
      owner.detach(session, h);
      const resumed = await resumer.attach({ id: session.id, key: session.key }, { takeOver() {} }, null);
      expect(dropped).toBe(2);
      expect({ resumed: resumed.resumed, id: resumed.session.id }).toEqual({ resumed: true, id: session.id });
    } finally {
      await resumer.close();
      await owner.close();
    }
  });

  it('a resume that races a last write of the old gateway (its compare-and-set loses) reads again and resumes the session', async () => {
    const prefix = `${PREFIX}r`;
    const opts = (nodeId: string) => ({ nats: { servers: [nats.url], prefix }, ttlMs: TTL_MS, nodeId, log: createLogger('silent') });
    const owner = await createSessionRegistry(opts('race-a'));
    const bucket = await nc.jetstream().views.kv(`${prefix}_sessions`);
    const h = { takeOver() {} };
    const { session } = await owner.attach(undefined, h, null);
    // The resumer's first read of the record is answered; its claim (the compare-and-set on the
    // revision it read) is held until the old gateway has written the record once more (a topic
    // added just before the socket dropped): the claim then names a revision that is no longer the last.
    let reads = 0;
    let held = false;
    const racing = (o: Parameters<typeof connect>[0]) =>
      connect(o).then(
        (conn) =>
          new Proxy(conn, {
            get(target, prop, receiver) {
              if (prop !== 'publish') return Reflect.get(target, prop, receiver);
              const publish = (subject: string, ...rest: unknown[]) => (target.publish as (...a: unknown[]) => unknown).call(target, subject, ...rest);
              return (subject: string, ...rest: unknown[]) => {
                if (subject.startsWith(`$JS.API.STREAM.MSG.GET.KV_${prefix}_sessions`)) reads++;
                if (subject !== `$KV.${prefix}_sessions.${session.id}` || held) return publish(subject, ...rest);
                held = true;
                session.topics.add('race.late');
                owner.changed(session);
                void untilStored(session.id, (e) => e?.r.topics.includes('race.late') === true, bucket).then(() => publish(subject, ...rest));
              };
            },
          }),
      );
    const resumer = await createSessionRegistry({ ...opts('race-b'), nats: { servers: [nats.url], prefix, connect: racing } });
    try {
      const resumed = await resumer.attach({ id: session.id, key: session.key }, { takeOver() {} }, null);
      expect(held).toBe(true);
      expect(reads).toBeGreaterThan(1);
      expect({ resumed: resumed.resumed, id: resumed.session.id }).toEqual({ resumed: true, id: session.id });
      // The retry read the record as the old gateway last wrote it.
      expect([...resumed.session.topics]).toContain('race.late');
    } finally {
      await resumer.close();
      await owner.close();
    }
  });
});

describe('session registry when a write fails', () => {
  it('writes a session again by itself after its write failed (the registry did not answer), long before the next refresh', async () => {
    const prefix = `${PREFIX}f`;
    // Drops every KV write of the registry's connection (no reply ever comes) while `down`.
    let down = true;
    let dropped = 0;
    const failing = async (opts: Parameters<typeof connect>[0]) => {
      const c = await connect(opts);
      const publish = c.publish.bind(c);
      c.publish = (subject, data, o) => {
        if (!down || !subject.startsWith(`$KV.${prefix}_sessions.`)) return publish(subject, data, o);
        dropped++;
      };
      return c;
    };
    // The refresh (refreshPeriodMs: half the bucket's max age, hours) is far away, so only the retry can write the record in time.
    const reg = await createSessionRegistry({
      nats: { servers: [nats.url], prefix, connect: failing },
      ttlMs: 60_000,
      opTimeoutMs: 300,
      nodeId: 'fail-a',
      log: createLogger('silent'),
    });
    try {
      const bucket = await nc.jetstream().views.kv(`${prefix}_sessions`);
      const { session, resumed } = await reg.attach(undefined, { takeOver() {} }, null);
      expect(resumed).toBe(false);
      expect(dropped).toBeGreaterThan(0);
      expect(await stored(session.id, bucket)).toBeNull();
      down = false; // nothing else happens to the session: no change, no refresh for hours
      const e = await untilStored(session.id, (x) => x !== null, bucket, 10_000);
      expect(e!.r).toMatchObject({ owner: 'fail-a', keyHash: keyHash(session.key) });
    } finally {
      await reg.close();
    }
  });
});

describe('session registry under bursts', () => {
  const SESSIONS = 300;

  it('writes at most 64 records at a time: a mass detach and the refresh of many attached sessions are paced', async () => {
    const prefix = `${PREFIX}burst`;
    // Counts the KV writes in flight on the registry's connection: publishes to $KV.<bucket>.<key>
    // with a reply subject, until their ack reaches the registry's reply subscription.
    let inFlight = 0;
    let max = 0;
    const counting = async (opts: Parameters<typeof connect>[0]) => {
      const c = await connect(opts);
      const publish = c.publish.bind(c);
      const subscribe = c.subscribe.bind(c);
      const waiting = new Set<string>();
      c.publish = (subject, data, o) => {
        // Record writes (not the registry's liveness key, `g.<process>`).
        if (subject.startsWith('$KV.') && !subject.includes('.g.') && o?.reply) {
          waiting.add(o.reply);
          max = Math.max(max, ++inFlight);
        }
        publish(subject, data, o);
      };
      c.subscribe = (subject, o) => {
        const callback = o?.callback;
        if (!callback) return subscribe(subject, o);
        return subscribe(subject, {
          ...o,
          callback: (e, m) => {
            if (waiting.delete(m.subject)) inFlight--;
            callback(e, m);
          },
        });
      };
      return c;
    };
    const reg = await createSessionRegistry({
      nats: { servers: [nats.url], prefix, connect: counting },
      ttlMs: TTL_MS,
      recordMaxAgeMs: TTL_MS, // refreshed every second: seen within the test
      nodeId: 'burst',
      log: createLogger('silent'),
    });
    try {
      const bucket = await nc.jetstream().views.kv(`${prefix}_sessions`);
      const holder: SessionHolder = { takeOver: () => {} };
      const sessions = await Promise.all(Array.from({ length: SESSIONS }, () => reg.attach(undefined, holder, null).then((r) => r.session)));
      const revisions = async () => Promise.all(sessions.map(async (s) => (await stored(s.id, bucket))?.revision ?? 0));
      /** Bounded wait until every record was written again after `since`. */
      const allRewritten = async (since: number[]) => {
        const deadline = Date.now() + 20_000;
        for (;;) {
          const now = await revisions();
          if (now.every((r, i) => r > since[i]!)) return;
          if (Date.now() > deadline) throw new Error(`${now.filter((r, i) => r <= since[i]!).length} records not rewritten`);
          await new Promise((res) => setTimeout(res, 100));
        }
      };

      // The refresh (every refreshPeriodMs) rewrites every attached session, in groups.
      max = 0;
      await allRewritten(await revisions());
      expect(max).toBeLessThanOrEqual(64);

      // A mass disconnect: every session's last write at once.
      const before = await revisions();
      max = 0;
      for (const s of sessions) reg.detach(s, holder);
      await allRewritten(before);
      expect(max).toBeGreaterThan(1); // written concurrently, only bounded
      expect(max).toBeLessThanOrEqual(64);
    } finally {
      await reg.close();
    }
  });
});
