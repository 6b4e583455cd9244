/**
 * JetStream writes through a JsWriter (nats-kit/js-writer.ts) on a real nats-server: acks and
 * errors read as nats.js's would (the callers' retry rules match on them), message ids
 * deduplicate, conditional writes refuse a stale sequence, a delete removes one message, a
 * timeout is a `TIMEOUT` and its late answer is ignored, and nothing is left pending (no timer
 * holding the process) afterwards.
 */
import { connect, headers, StorageType, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isRetryable } from '../../nats-kit/errors.ts';
import { JsWriter } from '../../nats-kit/js-writer.ts';
import { startNatsServer, type NatsServer } from '../support/nats-server.ts';

let server: NatsServer;
let nc: NatsConnection;

beforeAll(async () => {
  server = await startNatsServer();
  nc = await connect({ servers: server.url });
  const jsm = await nc.jetstreamManager();
  await jsm.streams.add({ name: 'W', subjects: ['w.>'], storage: StorageType.Memory, duplicate_window: 60_000_000_000 });
  await nc.jetstream().views.kv('wkv', { history: 1 });
});
afterAll(async () => {
  await nc?.close();
  await server?.cleanup();
});

const data = (s: string) => new TextEncoder().encode(s);

describe('JsWriter', () => {
  it('acks a publish with the stream and sequence; the same message id is stored once', async () => {
    const w = new JsWriter(nc);
    const a = await w.publish('w.a', data('one'), { msgID: 'id-1' });
    expect(a).toEqual({ stream: 'W', seq: a.seq, duplicate: false, domain: '' });
    const again = await w.publish('w.a', data('one'), { msgID: 'id-1' });
    expect(again).toMatchObject({ stream: 'W', seq: a.seq, duplicate: true });
    const b = await w.publish('w.a', data('two'));
    expect(b.seq).toBe(a.seq + 1);
    // Headers of the caller's own travel with the message.
    const h = headers();
    h.set('X-Digest', 'abc');
    const c = await w.publish('w.h', data('three'), { headers: h, msgID: 'id-2' });
    const stored = await (await nc.jetstreamManager()).streams.getMessage('W', { seq: c.seq });
    expect(stored.header.get('X-Digest')).toBe('abc');
    expect(stored.header.get('Nats-Msg-Id')).toBe('id-2');
    expect(w.inFlight).toBe(0);
    w.close();
  });

  it('writes a KV key only at the expected revision, and refuses a stale one as nats.js does (api_error 10071)', async () => {
    const w = new JsWriter(nc);
    const kv = await nc.jetstream().views.kv('wkv');
    const created = await w.publish('$KV.wkv.k1', data('v1'), { expect: { lastSubjectSequence: 0 } });
    expect((await kv.get('k1'))?.revision).toBe(created.seq);
    const updated = await w.publish('$KV.wkv.k1', data('v2'), { expect: { lastSubjectSequence: created.seq } });
    expect((await kv.get('k1'))?.string()).toBe('v2');
    const stale = await w.publish('$KV.wkv.k1', data('v3'), { expect: { lastSubjectSequence: created.seq } }).catch((e) => e);
    expect(stale).toMatchObject({ code: '400', api_error: { err_code: 10071 } });
    expect(stale.message).toMatch(new RegExp(`wrong last sequence: ${updated.seq}`));
    expect(isRetryable(stale)).toBe(false);
    expect((await kv.get('k1'))?.string()).toBe('v2');
    // Creating a key that exists is refused the same way.
    await expect(w.publish('$KV.wkv.k1', data('v4'), { expect: { lastSubjectSequence: 0 } })).rejects.toMatchObject({ api_error: { err_code: 10071 } });
    w.close();
  });

  it('deletes one stored message by its sequence: false once it is gone or was replaced, an error for no stream', async () => {
    const w = new JsWriter(nc);
    const kv = await nc.jetstream().views.kv('wkv');
    const first = await w.publish('$KV.wkv.d1', data('v1'));
    const second = await w.publish('$KV.wkv.d1', data('v2'));
    // The bucket keeps one message per key: the first was replaced, the second is there.
    expect(await w.deleteMsg('KV_wkv', first.seq, 2000)).toBe(false);
    expect((await kv.get('d1'))?.string()).toBe('v2');
    expect(await w.deleteMsg('KV_wkv', second.seq, 2000)).toBe(true);
    expect(await kv.get('d1')).toBeNull();
    expect(await w.deleteMsg('KV_wkv', second.seq, 2000)).toBe(false);
    await expect(w.deleteMsg('KV_nope', 1, 2000)).rejects.toMatchObject({ api_error: { err_code: 10059 } });
    expect(w.inFlight).toBe(0);
    w.close();
  });

  it('no stream for the subject: a retryable 503 (no responders)', async () => {
    const w = new JsWriter(nc);
    const e = await w.publish('nostream.x', data('x'), { timeout: 5_000 }).catch((x) => x);
    expect(e).toMatchObject({ code: '503' });
    expect(isRetryable(e)).toBe(true);
    w.close();
  });

  it('times out with a retryable TIMEOUT when nothing acks, ignores the late answer, and keeps nothing pending', async () => {
    // A responder that answers each write only after the writer gave up on it.
    const late = await connect({ servers: server.url });
    let answered = 0;
    const slow = late.subscribe('slow.x', {
      callback: (_e, m) =>
        setTimeout(() => {
          m.respond(data(JSON.stringify({ stream: 'W', seq: 99 })));
          answered++;
        }, 300),
    });
    await late.flush();
    const w = new JsWriter(nc);
    try {
      const started = Date.now();
      const e = await w.publish('slow.x', data('x'), { timeout: 100 }).catch((x) => x);
      expect(e).toMatchObject({ code: 'TIMEOUT' });
      expect(e.message).toMatch(/slow\.x within 100 ms/);
      expect(isRetryable(e)).toBe(true);
      expect(Date.now() - started).toBeGreaterThanOrEqual(100);
      expect(w.inFlight).toBe(0);
      // The late answer arrives and changes nothing; the next write works.
      const deadline = Date.now() + 5_000;
      while (answered === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      await nc.flush();
      expect(answered).toBe(1);
      expect(w.inFlight).toBe(0);
      await expect(w.publish('w.after', data('y'))).resolves.toMatchObject({ stream: 'W' });
    } finally {
      slow.unsubscribe();
      await late.close();
      w.close();
    }
  });

  it('many writes in flight at once are each answered with their own ack', async () => {
    const w = new JsWriter(nc);
    const acks = await Promise.all(Array.from({ length: 500 }, (_, i) => w.publish(`w.many.${i}`, data(String(i)), { msgID: `many-${i}` })));
    expect(new Set(acks.map((a) => a.seq)).size).toBe(500);
    const jsm = await nc.jetstreamManager();
    for (const i of [0, 250, 499]) expect((await jsm.streams.getMessage('W', { seq: acks[i]!.seq })).subject).toBe(`w.many.${i}`);
    expect(w.inFlight).toBe(0);
    w.close();
  });

  it('rejects what is pending when its connection closes, and refuses writes after', async () => {
    const own = await connect({ servers: server.url });
    const late = await connect({ servers: server.url });
    const never = late.subscribe('never.x', { callback: () => {} });
    await late.flush();
    const w = new JsWriter(own);
    const pending = w.publish('never.x', data('x'), { timeout: 60_000 });
    await own.flush();
    await own.close();
    await expect(pending).rejects.toMatchObject({ code: 'CONNECTION_CLOSED' });
    await expect(w.publish('w.a', data('x'))).rejects.toMatchObject({ code: 'CONNECTION_CLOSED' });
    expect(w.inFlight).toBe(0);
    never.unsubscribe();
    await late.close();
  });

  it("answers come back under the connection's own inbox prefix (what a user's permissions allow)", async () => {
    const own = await connect({ servers: server.url, inboxPrefix: '_R.gw1' });
    const spy = await connect({ servers: server.url });
    const seen: string[] = [];
    spy.subscribe('_R.gw1.>', { callback: (_e, m) => seen.push(m.subject) });
    await spy.flush();
    const w = new JsWriter(own);
    try {
      await expect(w.publish('w.prefixed', data('x'))).resolves.toMatchObject({ stream: 'W' });
      await spy.flush();
      expect(seen).toHaveLength(1);
      expect(seen[0]).toMatch(/^_R\.gw1\.\w+\.\d+$/);
    } finally {
      w.close();
      await own.close();
      await spy.close();
    }
  });

  it('a write larger than max_payload, or with a line break in its message id, fails at once, leaving nothing pending', async () => {
    const w = new JsWriter(nc);
    const big = new Uint8Array((nc.info?.max_payload ?? 1024 * 1024) + 1);
    await expect(w.publish('w.big', big)).rejects.toMatchObject({ code: 'MAX_PAYLOAD_EXCEEDED' });
    await expect(w.publish('w.bad', data('x'), { msgID: 'a\r\nX-Injected: 1' })).rejects.toMatchObject({ code: 'BAD_HEADER' });
    expect(w.inFlight).toBe(0);
    w.close();
  });
});
