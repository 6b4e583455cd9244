/**
 * The registry's user index (gateway/bus/nats/sessions.ts): a detached session's user-index key
 * is rewritten with its last record write, so it ages out with the record, not up to TTL/4 before
 * (a send to the user would find nobody while the session can still resume).
 */
import { connect, type KV, type NatsConnection } from 'nats';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createSessionRegistry } from '../../gateway/bus/nats/sessions.ts';
import type { SessionStore } from '../../gateway/bus/sessions.ts';
import { createLogger } from '../../gateway/log.ts';
import { startNatsServer, type NatsServer } from '../support/nats-server.ts';

const PREFIX = 'uidx';
const TTL_MS = 60_000;
let nats: NatsServer;
let nc: NatsConnection;
let kv: KV;
let reg: SessionStore;

beforeAll(async () => {
  nats = await startNatsServer();
  reg = await createSessionRegistry({ nats: { servers: [nats.url], prefix: PREFIX }, ttlMs: TTL_MS, nodeId: 'uidx-a', log: createLogger('silent') });
  nc = await connect({ servers: nats.url });
  kv = await nc.jetstream().views.kv(`${PREFIX}_sessions`);
}, 30_000);

afterAll(async () => {
  await reg?.close();
  await nc?.close();
  await nats?.cleanup();
});

/** The revision of the one user-index key of `session` (0: none), found by its subject suffix. */
async function userKeyRevision(session: string): Promise<number> {
  const jsm = await nc.jetstreamManager();
  try {
    const sm = await jsm.streams.getMessage(`KV_${PREFIX}_sessions`, { last_by_subj: `$KV.${PREFIX}_sessions.u.*.${session}` });
    return sm.seq;
  } catch {
    return 0;
  }
}

const until = async <T>(read: () => Promise<T>, ok: (v: T) => boolean, ms = 10_000): Promise<T> => {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await read();
    if (ok(v) || Date.now() > deadline) return v;
    await new Promise((r) => setTimeout(r, 20));
  }
};

it("rewrites a user's index key with a detached session's last record write", async () => {
  const holder = { takeOver() {} };
  const { session } = await reg.attach(undefined, holder, 'ann');
  const attached = (await kv.get(session.id))!.revision;
  const indexed = await userKeyRevision(session.id);
  expect(indexed).toBeGreaterThan(0);
  expect(await reg.recipients({ user: 'ann' })).toEqual([session.id]);
  reg.detach(session, holder);
  const record = await until(
    async () => (await kv.get(session.id))!.revision,
    (r) => r > attached,
  );
  expect(record).toBeGreaterThan(attached);
  // Written with the detached session's last record write (in parallel), so it ages out with it.
  expect(
    await until(
      () => userKeyRevision(session.id),
      (r) => r > indexed,
    ),
  ).toBeGreaterThan(indexed);
  expect(await reg.recipients({ user: 'ann' })).toEqual([session.id]);
}, 30_000);
