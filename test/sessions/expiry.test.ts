/**
 * Session expiry in the cluster registry (gateway/bus/nats/sessions.ts) on a real nats-server:
 * an attached session is kept by its gateway's liveness, with no record writes; the sessions of a
 * gateway that stopped without detaching them (a crash, to the registry) resume elsewhere until a
 * TTL after its last liveness write, and not after; an expired session's record and user-index key
 * are deleted; a bucket made by an earlier version (max age = the TTL) gets the long max age.
 */
import { connect, type KV, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSessionRegistry, recordMaxAgeMs } from '../../gateway/bus/nats/sessions.ts';
import type { SessionHolder, SessionStore } from '../../gateway/bus/sessions.ts';
import { createLogger } from '../../gateway/log.ts';
import { startNatsServer, type NatsServer } from '../support/nats-server.ts';

const TTL_MS = 2000;
let nats: NatsServer;
let nc: NatsConnection;
const holder = (): SessionHolder => ({ takeOver() {} });
const registry = (prefix: string, nodeId: string, ttlMs = TTL_MS) =>
  createSessionRegistry({ nats: { servers: [nats.url], prefix }, ttlMs, nodeId, log: createLogger('silent') });

beforeAll(async () => {
  nats = await startNatsServer();
  nc = await connect({ servers: nats.url });
}, 30_000);

afterAll(async () => {
  await nc?.close();
  await nats?.cleanup();
});

/** Polls (bounded) until `read()` satisfies `ok`; fails with the last value otherwise. */
async function until<T>(what: string, read: () => Promise<T>, ok: (v: T) => boolean, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await read();
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`${what}: never happened; last ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The last stored message's sequence under a KV subject pattern of a bucket (0: none). */
async function lastSeq(bucket: string, subject: string): Promise<number> {
  const jsm = await nc.jetstreamManager();
  try {
    return (await jsm.streams.getMessage(`KV_${bucket}`, { last_by_subj: `$KV.${bucket}.${subject}` })).seq;
  } catch {
    return 0;
  }
}

describe('session expiry (NATS engine)', () => {
  let a: SessionStore;
  let b: SessionStore;
  let kv: KV;
  const PREFIX = 'exp';

  beforeAll(async () => {
    a = await registry(PREFIX, 'exp-a');
    b = await registry(PREFIX, 'exp-b');
    kv = await nc.jetstream().views.kv(`${PREFIX}_sessions`);
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
  });

  it('keeps an attached session for many TTLs without rewriting its record', async () => {
    const { session } = await a.attach(undefined, holder(), null);
    const written = (await kv.get(session.id))!.revision;
    // Three TTLs pass: the record is not rewritten, yet still valid (its gateway writes its liveness).
    const start = Date.now();
    await until(
      'three TTLs',
      async () => Date.now() - start,
      (t) => t >= 3 * TTL_MS,
      10_000,
    );
    expect((await kv.get(session.id))!.revision).toBe(written);
    const info = await b.inspect(session.id);
    expect(info).toMatchObject({ id: session.id, local: false, owner: 'exp-a' });
    const moved = await b.attach({ id: session.id, key: session.key }, holder(), null);
    expect({ resumed: moved.resumed, id: moved.session.id }).toEqual({ resumed: true, id: session.id });
  }, 20_000);

  it('deletes an expired session record and its user-index key', async () => {
    const h = holder();
    const { session } = await a.attach(undefined, h, 'eve');
    expect(await lastSeq(`${PREFIX}_sessions`, `u.*.${session.id}`)).toBeGreaterThan(0);
    expect(await b.recipients({ user: 'eve' })).toEqual([session.id]);
    a.detach(session, h);
    const detachedAt = Date.now();
    // The gateway sweeps its sessions every second (server.ts); here the test does.
    await until(
      'record deleted',
      () => {
        a.sweep();
        return kv.get(session.id);
      },
      (e) => e === null,
    );
    expect(Date.now() - detachedAt).toBeGreaterThanOrEqual(TTL_MS - 100);
    expect(await lastSeq(`${PREFIX}_sessions`, `u.*.${session.id}`)).toBe(0);
    expect(await b.recipients({ user: 'eve' })).toEqual([]);
    const late = await b.attach({ id: session.id, key: session.key }, holder(), 'eve');
    expect(late.resumed).toBe(false);
  }, 20_000);
});

describe('the sessions of a gateway that stopped without detaching them', () => {
  it('resume elsewhere until a TTL after its last liveness write, and not after', async () => {
    const PREFIX = 'expcrash';
    const gone = await registry(PREFIX, 'crash-a');
    const survivor = await registry(PREFIX, 'crash-b');
    try {
      const early = (await gone.attach(undefined, holder(), null)).session;
      const late = (await gone.attach(undefined, holder(), null)).session;
      // Closing writes nothing for attached sessions: to the cluster it is a gateway that died.
      await gone.close();
      const stoppedAt = Date.now();
      const resumed = await survivor.attach({ id: early.id, key: early.key }, holder(), null);
      expect(resumed.resumed).toBe(true);
      // The other one is shown expiring a TTL after the last liveness write (every TTL/4).
      const info = await survivor.inspect(late.id);
      expect(info?.expiresAt).toBeGreaterThan(stoppedAt + TTL_MS - TTL_MS / 4 - 250);
      expect(info?.expiresAt).toBeLessThanOrEqual(stoppedAt + TTL_MS + 250);
      await until(
        'expired',
        () => survivor.inspect(late.id),
        (i) => i === undefined,
        3 * TTL_MS,
      );
      expect(Date.now()).toBeGreaterThanOrEqual(info!.expiresAt!);
      const after = await survivor.attach({ id: late.id, key: late.key }, holder(), null);
      expect(after.resumed).toBe(false);
    } finally {
      await survivor.close();
    }
  }, 30_000);
});

describe('a sessions bucket made by an earlier version', () => {
  it('gets the long max age, so attached records are not removed between refreshes', async () => {
    const PREFIX = 'expold';
    const ttlMs = 60_000;
    // Earlier versions made the bucket with the session TTL as its max age.
    await nc.jetstream().views.kv(`${PREFIX}_sessions`, { history: 1, ttl: ttlMs });
    const reg = await registry(PREFIX, 'old-a', ttlMs);
    try {
      const jsm = await nc.jetstreamManager();
      const info = await jsm.streams.info(`KV_${PREFIX}_sessions`);
      expect(info.config.max_age / 1e6).toBe(recordMaxAgeMs(ttlMs));
    } finally {
      await reg.close();
    }
  });
});
