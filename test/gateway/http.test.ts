import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../../protocol/index.ts';
import { useGateway } from '../support/gateway.ts';
import { connectHello, isMsg, isReply } from '../support/raw-client.ts';

const KEY = 'test-key-0123456789';
const KEY2 = 'other-backend-key-0123456789';
const gw = await useGateway({ api: { keys: [KEY, KEY2], maxBodyBytes: 1024 } });
const noKeys = await useGateway();

function publish(body: unknown, key: string | null = KEY, base = gw.httpUrl) {
  return fetch(`${base}/api/publish`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

describe('HTTP publish API', () => {
  it('publishes to WebSocket subscribers and answers the sequence', async () => {
    const { c } = await connectHello(gw.url, 'json');
    c.send({ t: 'sub', id: 1, topic: 'api.t' });
    const sub = await c.next(isReply(1));
    const res = await publish({ topic: 'api.t', kind: 'set', data: { hello: 'world' } });
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(body).toEqual({ seq: 1, epoch: (sub as { epoch: string }).epoch });
    expect(await c.next(isMsg('api.t'))).toMatchObject({ seq: 1, kind: 'set', data: { hello: 'world' } });
    c.close();
  });

  it.each([
    ['no key', { topic: 'a' }, null, 401, ErrorCode.Unauthorized],
    ['a wrong key', { topic: 'a' }, 'wrong-key-0123456789', 401, ErrorCode.Unauthorized],
    ['invalid JSON', '{oops', KEY, 400, ErrorCode.BadRequest],
    ['a bad topic', { topic: 'a b', data: 1 }, KEY, 400, ErrorCode.BadTopic],
    ['an unknown kind', { topic: 'a', kind: 'delete' }, KEY, 400, ErrorCode.BadRequest],
    ['an unknown field', { topic: 'a', extra: true }, KEY, 400, ErrorCode.BadRequest],
    ['a body over the limit', { topic: 'a', data: 'x'.repeat(2000) }, KEY, 413, ErrorCode.PayloadTooLarge],
  ])('rejects %s with a coded JSON error', async (_, body, key, status, code) => {
    const res = await publish(body, key);
    expect(res.status).toBe(status);
    expect(res.headers.get('content-type')).toBe('application/json');
    const json = (await res.json()) as { error: { code: number; message: string } };
    expect(json.error.code).toBe(code);
    expect(json.error.message.length).toBeGreaterThan(5);
  });

  it('stores a publish retried with the same Idempotency-Key once, answering the first result', async () => {
    const { c } = await connectHello(gw.url);
    c.send({ t: 'sub', id: 1, topic: 'idem.t' });
    await c.next(isReply(1));
    const send = (key: string, n: number) =>
      fetch(`${gw.httpUrl}/api/publish`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}`, 'idempotency-key': key },
        body: JSON.stringify({ topic: 'idem.t', data: n }),
      }).then((r) => r.json() as Promise<{ seq: number }>);
    const [a, b] = await Promise.all([send('order-42', 1), send('order-42', 1)]);
    const c2 = await send('order-43', 2);
    expect(a).toEqual(b);
    expect(c2.seq).toBe(a.seq + 1);
    const msgs = await c.collect(isMsg('idem.t'), 2);
    expect(msgs.map((m) => (m as { data: number }).data)).toEqual([1, 2]);
    const bad = await fetch(`${gw.httpUrl}/api/publish`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY}`, 'idempotency-key': 'has space' },
      body: '{"topic":"idem.t"}',
    });
    expect(bad.status).toBe(400);
    c.close();
  });

  it('refuses an Idempotency-Key reused for a different publish (422, 2007); a true retry still answers the first seq', async () => {
    const send = (body: unknown, idem: string, key = KEY) =>
      fetch(`${gw.httpUrl}/api/publish`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${key}`, 'idempotency-key': idem },
        body: JSON.stringify(body),
      });
    const first = await send({ topic: 'idem.reuse', kind: 'set', data: { a: 1, b: 2 } }, 'order-77');
    expect(first.status).toBe(200);
    const { seq } = (await first.json()) as { seq: number };
    for (const other of [
      { topic: 'idem.reuse', kind: 'set', data: { a: 1, b: 3 } }, // other data
      { topic: 'idem.reuse', kind: 'patch', data: { a: 1, b: 2 } }, // other kind
      { topic: 'idem.reuse2', kind: 'set', data: { a: 1, b: 2 } }, // other topic
    ]) {
      const res = await send(other, 'order-77');
      expect(res.status, JSON.stringify(other)).toBe(422);
      const body = (await res.json()) as { error: { code: number; message: string } };
      expect(body.error.code).toBe(ErrorCode.IdempotencyKeyReused);
      expect(body.error.message).toMatch(/Idempotency-Key/);
    }
    // Same publish (keys in another order): the first result.
    const retry = await send({ topic: 'idem.reuse', data: { b: 2, a: 1 }, kind: 'set' }, 'order-77');
    expect(retry.status).toBe(200);
    expect(((await retry.json()) as { seq: number }).seq).toBe(seq);
    // Another API key has Idempotency-Keys of its own: the same key is a new publish there.
    const theirs = await send({ topic: 'idem.reuse', kind: 'event', data: 'other backend' }, 'order-77', KEY2);
    expect(theirs.status).toBe(200);
    expect(((await theirs.json()) as { seq: number }).seq).toBe(seq + 1);
  });

  it.each([
    ['2^53 + 1', '{"topic":"big.t","data":9007199254740993}'],
    ['a nested 20-digit integer', '{"topic":"big.t","data":{"ids":[1,12345678901234567890]}}'],
    ['−2^53', '{"topic":"big.t","data":-9007199254740992}'],
  ])('refuses an integer JSON would round (%s) with 400 and 2004', async (_name, body) => {
    const res = await publish(body);
    expect(res.status).toBe(400);
    const json = (await res.json()) as { error: { code: number; message: string } };
    expect(json.error.code).toBe(ErrorCode.BadRequest);
    expect(json.error.message).toMatch(/outside/);
  });

  it('accepts the largest safe integers, floats, and long digit runs in strings', async () => {
    const res = await publish('{"topic":"big.ok","data":{"n":[9007199254740991,-9007199254740991,1e300,0.1],"s":"90071992547409930000"}}');
    expect(res.status).toBe(200);
  });

  it('answers 503 with a hint when no API key is configured', async () => {
    const res = await publish({ topic: 'a' }, KEY, noKeys.httpUrl);
    expect(res.status).toBe(503);
    expect(((await res.json()) as { error: { code: number } }).error.code).toBe(ErrorCode.Unavailable);
  });

  it('answers unknown routes with a JSON 404', async () => {
    const res = await fetch(`${gw.httpUrl}/api/nothing`, { method: 'POST' });
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: { code: number } }).error.code).toBe(ErrorCode.NotFound);
  });

  it('exposes Prometheus metrics that count bus messages and deliveries', async () => {
    const read = async () => {
      const text = await (await fetch(`${gw.httpUrl}/metrics`)).text();
      const value = (name: string) => Number(new RegExp(`^${name}\\{[^}]*\\} (\\d+)$`, 'm').exec(text)?.[1]);
      return { text, value };
    };
    const before = await read();
    expect(before.text).toMatch(/# TYPE symphonic_bus_messages_received_total counter/);
    const { c } = await connectHello(gw.url);
    c.send({ t: 'sub', id: 1, topic: 'm.t' });
    await c.next(isReply(1));
    const res = await publish({ topic: 'm.t', data: 1 });
    expect(res.status).toBe(200);
    await c.next(isMsg('m.t'));
    const after = await read();
    expect(after.value('symphonic_bus_messages_received_total') - before.value('symphonic_bus_messages_received_total')).toBe(1);
    expect(after.value('symphonic_messages_out_total') - before.value('symphonic_messages_out_total')).toBe(1);
    expect(after.value('symphonic_connections')).toBeGreaterThanOrEqual(1);
    expect(after.value('symphonic_topics_watched')).toBeGreaterThanOrEqual(1);
    c.close();
  });

  it('conditional publish: `expect` is honoured; a stale one is 409 / 2008 with the current seq', async () => {
    const ok = await publish({ topic: 'cas.http', kind: 'set', data: { v: 1 }, expect: 0 });
    expect(ok.status).toBe(200);
    const { seq } = (await ok.json()) as { seq: number };
    const stale = await publish({ topic: 'cas.http', kind: 'set', data: { v: 'x' }, expect: 0 });
    expect(stale.status).toBe(409);
    expect(await stale.json()).toMatchObject({ error: { code: 2008, seq } });
    expect((await publish({ topic: 'cas.http', kind: 'set', data: { v: 2 }, expect: seq })).status).toBe(200);
  });

  it('reports health with engine and connection count', async () => {
    const res = await fetch(`${gw.httpUrl}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: 'ok', engine: 'memory', node: gw.config.nodeId });
  });
});
