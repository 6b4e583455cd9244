import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../../protocol/index.ts';
import { useGateway } from '../support/gateway.ts';
import { connectHello, isMsg, isReply } from '../support/raw-client.ts';

const KEY = 'test-key-0123456789';
const gw = await useGateway({ api: { keys: [KEY], maxBodyBytes: 1024 } });
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
    const send = (key: string, n: number) => fetch(`${gw.httpUrl}/api/publish`, {
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
      method: 'POST', headers: { authorization: `Bearer ${KEY}`, 'idempotency-key': 'has space' }, body: '{"topic":"idem.t"}',
    });
    expect(bad.status).toBe(400);
    c.close();
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
    expect(after.value('symphonic_deliveries_total') - before.value('symphonic_deliveries_total')).toBe(1);
    expect(after.value('symphonic_connections')).toBeGreaterThanOrEqual(1);
    expect(after.value('symphonic_topics_watched')).toBeGreaterThanOrEqual(1);
    c.close();
  });

  it('reports health with engine and connection count', async () => {
    const res = await fetch(`${gw.httpUrl}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: 'ok', engine: 'memory', node: gw.config.nodeId });
  });
});
