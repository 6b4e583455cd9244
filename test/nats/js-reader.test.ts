/**
 * JetStream point reads through a JsReader (nats-kit/js-reader.ts) on a real nats-server: by
 * sequence, a subject's last, a subject's next (wildcards too) read the message nats.js's
 * getMessage would; a missing message is undefined, not an error; a missing stream is JetStream's
 * error; KV delete markers carry their KV-Operation header; nothing stays pending.
 */
import { connect, headers, StorageType, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { headerValue, JsReader } from '../../nats-kit/js-reader.ts';
import { startNatsServer, type NatsServer } from '../support/nats-server.ts';

let server: NatsServer;
let nc: NatsConnection;
const seqs: number[] = [];

beforeAll(async () => {
  server = await startNatsServer();
  nc = await connect({ servers: server.url });
  const jsm = await nc.jetstreamManager();
  await jsm.streams.add({ name: 'R', subjects: ['r.>'], storage: StorageType.Memory });
  const js = nc.jetstream();
  const h = headers();
  h.set('X-Kind', 'first');
  seqs.push((await js.publish('r.a.1', new TextEncoder().encode('one'), { headers: h })).seq);
  seqs.push((await js.publish('r.b.1', new TextEncoder().encode('two'))).seq);
  seqs.push((await js.publish('r.a.2', new TextEncoder().encode('three'))).seq);
  seqs.push((await js.publish('r.a.1', new Uint8Array(0))).seq);
}, 30_000);
afterAll(async () => {
  await nc?.close();
  await server?.cleanup();
});

const text = (b: Uint8Array | undefined) => (b ? new TextDecoder().decode(b) : undefined);

describe('JsReader', () => {
  it('reads by sequence, by subject (last, and next at or after a sequence, wildcards too), with data, headers and time', async () => {
    const r = new JsReader(nc);
    const jsm = await nc.jetstreamManager();
    try {
      const first = await r.get('R', { seq: seqs[0]! }, 2_000);
      const theirs = await jsm.streams.getMessage('R', { seq: seqs[0]! });
      expect(first).toMatchObject({ subject: 'r.a.1', seq: seqs[0] });
      expect(text(first!.data)).toBe('one');
      expect(headerValue(first!.headers, 'x-kind')).toBe('first');
      expect(Date.parse(first!.time)).toBe(theirs.time.getTime());

      expect((await r.get('R', { last_by_subj: 'r.a.1' }, 2_000))?.seq).toBe(seqs[3]);
      const last = await r.get('R', { last_by_subj: 'r.a.1' }, 2_000);
      expect(last!.data).toHaveLength(0);
      expect(last!.headers).toBeUndefined();
      expect((await r.get('R', { seq: seqs[0]! + 1, next_by_subj: 'r.a.1' }, 2_000))?.seq).toBe(seqs[3]);
      expect((await r.get('R', { seq: seqs[0]! + 1, next_by_subj: 'r.a.*' }, 2_000))?.subject).toBe('r.a.2');
    } finally {
      r.close();
    }
  });

  it('no such message is undefined; no such stream is JetStream error 10059', async () => {
    const r = new JsReader(nc);
    try {
      expect(await r.get('R', { last_by_subj: 'r.none' }, 2_000)).toBeUndefined();
      expect(await r.get('R', { seq: seqs[3]! + 1, next_by_subj: 'r.a.1' }, 2_000)).toBeUndefined();
      expect(await r.get('R', { seq: 10_000 }, 2_000)).toBeUndefined();
      await expect(r.get('NOPE', { seq: 1 }, 2_000)).rejects.toMatchObject({ code: '404', api_error: { err_code: 10059 } });
    } finally {
      r.close();
    }
  });

  it('a KV delete reads as a marker with KV-Operation, the put before it as a plain value', async () => {
    const kv = await nc.jetstream().views.kv('rkv', { history: 1 });
    const r = new JsReader(nc);
    try {
      await kv.put('k', new TextEncoder().encode('v'));
      const put = await r.get('KV_rkv', { last_by_subj: '$KV.rkv.k' }, 2_000);
      expect(text(put!.data)).toBe('v');
      expect(headerValue(put!.headers, 'KV-Operation')).toBeUndefined();
      await kv.delete('k');
      const del = await r.get('KV_rkv', { last_by_subj: '$KV.rkv.k' }, 2_000);
      expect(headerValue(del!.headers, 'KV-Operation')).toBe('DEL');
      expect(del!.seq).toBe(put!.seq + 1);
    } finally {
      r.close();
    }
  });

  it('many reads at once each get their own answer; a closed reader refuses', async () => {
    const r = new JsReader(nc);
    const got = await Promise.all(Array.from({ length: 300 }, (_, i) => r.get('R', { seq: seqs[i % 4]! }, 5_000)));
    expect(got.map((m) => m?.seq)).toEqual(Array.from({ length: 300 }, (_, i) => seqs[i % 4]));
    r.close();
    await expect(r.get('R', { seq: 1 }, 1_000)).rejects.toMatchObject({ code: 'CONNECTION_CLOSED' });
  });
});
