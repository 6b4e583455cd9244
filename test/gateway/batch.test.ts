/**
 * `POST /api/publish/batch`: many publishes in one request, handed to the bus in order, each
 * with its own outcome; one bad entry never takes the others down.
 */
import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../../protocol/index.ts';
import { useGateway } from '../support/gateway.ts';
import { connectHello, isMsg, isReply } from '../support/raw-client.ts';

const KEY = 'batch-key-0123456789';
const gw = await useGateway({ api: { keys: [KEY] }, namespaces: { small: { maxPayloadBytes: 16 } } });

function batch(body: unknown, headers: Record<string, string> = {}) {
  return fetch(`${gw.httpUrl}/api/publish/batch`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}`, ...headers },
    body: JSON.stringify(body),
  });
}

describe('HTTP batch publish', () => {
  it('publishes every entry in order and answers each one', async () => {
    const { c } = await connectHello(gw.url, 'json');
    c.send({ t: 'sub', id: 1, topic: 'bt.a' });
    c.send({ t: 'sub', id: 2, topic: 'bt.b' });
    await c.next(isReply(1));
    await c.next(isReply(2));
    const messages = Array.from({ length: 300 }, (_, i) => ({ topic: i % 3 === 0 ? 'bt.b' : 'bt.a', data: i }));
    const res = await batch({ messages });
    expect(res.status).toBe(200);
    const { results } = (await res.json()) as { results: Array<{ seq: number }> };
    expect(results).toHaveLength(300);
    const got = await c.collect((f) => f.t === 'msg', 300);
    expect(got.map((m) => (m as { data: number }).data)).toEqual(messages.map((m) => m.data));
    // Each entry's seq is its place in its topic.
    expect(results.filter((_, i) => messages[i]!.topic === 'bt.a').map((r) => r.seq)).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
    c.close();
  });

  it('answers a failing entry with its own coded error and publishes the others', async () => {
    const res = await batch({
      messages: [
        { topic: 'bt.c', data: 'first' },
        { topic: 'small.x', data: 'far more than sixteen bytes' },
        { topic: 'bt.c', data: 'conditional', expect: 7 },
        { topic: 'bt.c', data: 'last' },
      ],
    });
    expect(res.status).toBe(200);
    const { results } = (await res.json()) as { results: unknown[] };
    expect(results[0]).toMatchObject({ seq: 1 });
    expect(results[1]).toMatchObject({ error: { code: ErrorCode.PayloadTooLarge } });
    expect(results[2]).toMatchObject({ error: { code: ErrorCode.SequenceConflict, seq: 1 } });
    expect(results[3]).toMatchObject({ seq: 2 });
  });

  it('stores an entry once when it is sent again with its idempotencyKey', async () => {
    const entry = { topic: 'bt.d', data: { n: 1 }, idempotencyKey: 'order-77' };
    const a = (await (await batch({ messages: [entry] })).json()) as { results: Array<{ seq: number }> };
    const b = (await (await batch({ messages: [entry, { topic: 'bt.d', data: 2 }] })).json()) as { results: Array<{ seq: number }> };
    expect(b.results[0]).toEqual(a.results[0]);
    expect(b.results[1]!.seq).toBe(a.results[0]!.seq + 1);
  });

  it.each([
    ['an empty list', 'bt.r1', () => ({ messages: [] as unknown[] }), {}],
    ['over 1000 entries', 'bt.r2', (t: string) => ({ messages: Array.from({ length: 1001 }, () => ({ topic: t })) }), {}],
    ['a bad topic in one entry', 'bt.r3', (t: string) => ({ messages: [{ topic: t }, { topic: 'bad topic' }] }), {}],
    ['an Idempotency-Key header', 'bt.r4', (t: string) => ({ messages: [{ topic: t }] }), { 'idempotency-key': 'k1' }],
    ['a malformed idempotencyKey', 'bt.r5', (t: string) => ({ messages: [{ topic: t, idempotencyKey: 'has space' }] }), {}],
  ])('refuses the whole batch for %s (400, nothing published)', async (_, topic, body, headers) => {
    const res = await batch(body(topic), headers);
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { code: number } }).error.code).toBe(ErrorCode.BadRequest);
    // Nothing of it reached the topic: the next publish there is its first.
    const probe = (await (await batch({ messages: [{ topic, data: 'probe' }] })).json()) as { results: Array<{ seq: number }> };
    expect(probe.results[0]!.seq).toBe(1);
  });
});

describe('server publisher publishBatch', () => {
  it('over HTTP: one request per 1000 entries, in order, one result per entry', async () => {
    const { SymphonicPublisher, SymphonicError } = await import('../../sdk/server/index.ts');
    const publisher = new SymphonicPublisher({ url: gw.httpUrl, apiKey: KEY });
    const entries = Array.from({ length: 1500 }, (_, i) => ({ topic: 'bt.sdk', data: i }));
    const results = await publisher.publishBatch([...entries, { topic: 'small.y', data: 'far more than sixteen bytes' }]);
    expect(results).toHaveLength(1501);
    expect(results.slice(0, 1500).map((r) => (r as { seq: number }).seq)).toEqual(Array.from({ length: 1500 }, (_, i) => i + 1));
    expect(results[1500]).toBeInstanceOf(SymphonicError);
    expect(results[1500]).toMatchObject({ code: ErrorCode.PayloadTooLarge, topic: 'small.y' });
    await expect(publisher.publishBatch([{ topic: 'bad topic', data: 1 }])).rejects.toMatchObject({ code: ErrorCode.BadTopic });
  });

  it('over another transport: entry by entry, each failure in its place', async () => {
    const { SymphonicPublisher, SymphonicError } = await import('../../sdk/server/index.ts');
    let n = 0;
    const transport = {
      publish: async (r: { topic: string }) => {
        if (r.topic === 'bt.fail') throw new SymphonicError(ErrorCode.Unavailable, 'down', r.topic);
        return { seq: ++n, epoch: 'e' };
      },
    };
    const results = await new SymphonicPublisher({ transport }).publishBatch([
      { topic: 'bt.ok', data: 1 },
      { topic: 'bt.fail', data: 2 },
      { topic: 'bt.ok', data: 3 },
    ]);
    expect(results[0]).toEqual({ seq: 1, epoch: 'e' });
    expect(results[1]).toMatchObject({ code: ErrorCode.Unavailable });
    expect(results[2]).toEqual({ seq: 2, epoch: 'e' });
    await expect(new SymphonicPublisher({ transport }).publishBatch([{ topic: 'bt.ok', data: 1, idempotencyKey: 'k' }])).rejects.toMatchObject({
      code: ErrorCode.BadRequest,
    });
  });
});
