/**
 * Limits and ingress rules end to end: message rate per connection and per user (error 4000,
 * close 4006), connections per IP (HTTP 429 at upgrade, optionally from a proxy header),
 * allowed Origins (HTTP 403), topic length, payload size and schema per namespace (client and
 * HTTP API), subscriptions per connection, repeated denials (close 4503), the idle timeout, and
 * no secret in the logs.
 */
import { describe, expect, it } from 'vitest';
import { CloseCode, ErrorCode, SUBPROTOCOL_JSON, msgpackCodec, type ServerFrame } from '../../protocol/index.ts';
import { useGateway } from '../support/gateway.ts';
import { connectHello, connectRaw, isReply, type RawClient } from '../support/raw-client.ts';
import { openNetWs, type NetWs, type UpgradeRefused } from './support/net-ws.ts';
import { hs256, SECRET } from './support/tokens.ts';

let nextId = 1;
async function request(c: RawClient, frame: Record<string, unknown>): Promise<ServerFrame> {
  const id = nextId++;
  c.send({ ...frame, id });
  return c.next(isReply(id));
}

describe('message rate limits', () => {
  it('per connection: past the burst, error 4000 (with the request id); flooding on closes with 4006', async () => {
    const gw = await useGateway({ limits: { connRatePerSec: 0.01, connBurst: 6, maxRateViolations: 3, userRatePerSec: 0 } });
    const { c } = await connectHello(gw.url); // hello took one token
    for (let i = 1; i <= 5; i++) c.send({ t: 'ping', id: i });
    await c.collect((f) => f.t === 'pong', 5);
    c.send({ t: 'ping', id: 6 });
    expect(await c.next(isReply(6))).toMatchObject({ t: 'error', code: ErrorCode.RateLimited });
    const { c: other } = await connectHello(gw.url);
    for (let i = 0; i < 10; i++) c.send({ t: 'pub', topic: 'flood', data: i });
    expect((await c.closed).code).toBe(CloseCode.RateLimited);
    expect(c.frames.filter((f) => f.t === 'error' && f.code === ErrorCode.RateLimited)).toHaveLength(3);
    expect(await request(other, { t: 'ping' })).toMatchObject({ t: 'pong' });
    other.close();
  });

  it("per user: the user's connections share one budget", async () => {
    const gw = await useGateway({ auth: { secret: SECRET }, limits: { connRatePerSec: 0, userRatePerSec: 0.01, userBurst: 4 } });
    const token = await hs256({ sub: 'chatty' });
    const open = async () => {
      const c = await connectRaw(gw.url, 'json');
      c.send({ t: 'hello', v: 1, token });
      await c.next((f) => f.t === 'welcome');
      return c;
    };
    const a = await open();
    const b = await open();
    expect(await request(a, { t: 'ping' })).toMatchObject({ t: 'pong' });
    expect(await request(b, { t: 'ping' })).toMatchObject({ t: 'pong' });
    expect(await request(a, { t: 'ping' })).toMatchObject({ t: 'pong' });
    expect(await request(b, { t: 'ping' })).toMatchObject({ t: 'pong' });
    expect(await request(a, { t: 'ping' })).toMatchObject({ t: 'error', code: ErrorCode.RateLimited });
    expect(await request(b, { t: 'ping' })).toMatchObject({ t: 'error', code: ErrorCode.RateLimited });
    const { c: anon } = await connectHello(gw.url);
    expect(await request(anon, { t: 'ping' })).toMatchObject({ t: 'pong' });
    for (const c of [a, b, anon]) c.close();
  });
});

describe('upgrade checks', () => {
  it('connections per IP: past the limit the upgrade gets HTTP 429 with code 4004; closing frees a slot', async () => {
    const gw = await useGateway({ limits: { maxConnectionsPerIp: 2 } });
    const a = (await openNetWs(gw.port)) as NetWs;
    const b = (await openNetWs(gw.port)) as NetWs;
    const refused = (await openNetWs(gw.port)) as UpgradeRefused;
    expect(refused).toMatchObject({ ok: false, status: 429 });
    expect(refused.headers['content-type']).toBe('application/json');
    expect(JSON.parse(refused.body)).toMatchObject({ error: { code: ErrorCode.TooManyConnections } });
    a.destroy();
    await a.closed;
    await expect.poll(() => gw.connections()).toBe(1);
    const c = (await openNetWs(gw.port)) as NetWs;
    expect(c.ok).toBe(true);
    b.destroy();
    c.destroy();
  });

  it('with clientIpHeader, the address comes from the proxy header (last entry)', async () => {
    const gw = await useGateway({ limits: { maxConnectionsPerIp: 1, clientIpHeader: 'X-Forwarded-For' } });
    const a = await openNetWs(gw.port, { headers: { 'X-Forwarded-For': '203.0.113.9, 198.51.100.1' } });
    const b = await openNetWs(gw.port, { headers: { 'X-Forwarded-For': '198.51.100.2' } });
    const c = await openNetWs(gw.port, { headers: { 'X-Forwarded-For': '10.0.0.1, 198.51.100.1' } });
    expect([a.ok, b.ok, c.ok]).toEqual([true, true, false]);
    for (const x of [a, b]) if (x.ok) x.destroy();
  });

  it('allowed Origins: others get HTTP 403 with code 3001; no Origin (not a browser) is allowed', async () => {
    const gw = await useGateway({ ws: { allowedOrigins: ['https://app.example.com', 'https://*.example.org'] } });
    const evil = (await openNetWs(gw.port, { origin: 'https://evil.example', protocol: SUBPROTOCOL_JSON })) as UpgradeRefused;
    expect(evil).toMatchObject({ ok: false, status: 403 });
    expect(JSON.parse(evil.body)).toMatchObject({ error: { code: ErrorCode.Forbidden, message: expect.stringMatching(/origin/) } });
    for (const origin of ['https://app.example.com', 'https://eu.example.org', undefined]) {
      const ok = await openNetWs(gw.port, { ...(origin ? { origin } : {}), protocol: SUBPROTOCOL_JSON });
      expect(ok.ok, origin).toBe(true);
      if (ok.ok) ok.destroy();
    }
    const strict = await useGateway({ ws: { allowedOrigins: ['https://app.example.com'], requireOrigin: true } });
    expect(await openNetWs(strict.port)).toMatchObject({ ok: false, status: 403 });
  });

  it('a wildcard Origin entry is matched by host labels, not as a string suffix', async () => {
    const gw = await useGateway({ ws: { allowedOrigins: ['https://*.example.org'] } });
    for (const origin of [
      'https://evil.com#.example.org',
      'https://evil.com?.example.org',
      'https://evil.com\\.example.org',
      'https://evil.com .example.org',
      'https://evil.com@a.example.org',
      'https://example.org',
      'null',
    ]) {
      expect(await openNetWs(gw.port, { origin, protocol: SUBPROTOCOL_JSON }), origin).toMatchObject({ ok: false, status: 403 });
    }
    const ok = await openNetWs(gw.port, { origin: 'HTTPS://Eu.Example.ORG:443', protocol: SUBPROTOCOL_JSON });
    expect(ok.ok).toBe(true);
    if (ok.ok) ok.destroy();
  });
});

const KEY = 'limits-key-0123456789';
const gw = await useGateway({
  api: { keys: [KEY] },
  ws: { maxSubscriptions: 3, maxErrors: 5 },
  limits: { maxTopicLength: 20 },
  namespaces: {
    short: { maxTopicLength: 10 },
    small: { maxPayloadBytes: 100 },
    chat: {
      schema: {
        type: 'object',
        required: ['text'],
        additionalProperties: false,
        properties: { text: { type: 'string', maxLength: 20 }, to: { type: 'string' } },
      },
    },
    locked: { subscribe: 'token' },
  },
});

function httpPublish(body: unknown) {
  return fetch(`${gw.httpUrl}/api/publish`, {
    method: 'POST',
    headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

describe('topics, payloads and subscriptions', () => {
  it('max topic length (config, and lower per namespace): error 2000, HTTP 400', async () => {
    const { c } = await connectHello(gw.url, 'json');
    expect(await request(c, { t: 'sub', topic: 'a'.repeat(20) })).toMatchObject({ t: 'subscribed' });
    expect(await request(c, { t: 'sub', topic: 'a'.repeat(21) })).toMatchObject({ t: 'error', code: ErrorCode.BadTopic });
    expect(await request(c, { t: 'pub', topic: 'short.abcd', data: 1 })).toMatchObject({ t: 'ack' });
    expect(await request(c, { t: 'pub', topic: 'short.abcde', data: 1 })).toMatchObject({ t: 'error', code: ErrorCode.BadTopic });
    const res = await httpPublish({ topic: 'b'.repeat(21), data: 1 });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: { code: ErrorCode.BadTopic } });
    c.close();
  });

  it('max payload per namespace: error 4002 (client), HTTP 413 (API)', async () => {
    const { c } = await connectHello(gw.url);
    expect(await request(c, { t: 'pub', topic: 'small.x', data: 'x'.repeat(90) })).toMatchObject({ t: 'ack' });
    expect(await request(c, { t: 'pub', topic: 'small.x', data: 'x'.repeat(200) })).toMatchObject({
      t: 'error',
      code: ErrorCode.PayloadTooLarge,
      topic: 'small.x',
    });
    expect(await request(c, { t: 'pub', topic: 'other', data: 'x'.repeat(200) })).toMatchObject({ t: 'ack' });
    const res = await httpPublish({ topic: 'small.x', data: 'y'.repeat(200) });
    expect(res.status).toBe(413);
    expect(await res.json()).toMatchObject({ error: { code: ErrorCode.PayloadTooLarge } });
    expect((await httpPublish({ topic: 'small.x', data: 'y'.repeat(50) })).status).toBe(200);
    c.close();
  });

  it('namespace schema: error 2006 (client), HTTP 422 (API); valid data passes', async () => {
    const { c } = await connectHello(gw.url, 'json');
    expect(await request(c, { t: 'pub', topic: 'chat.room', data: { text: 'hi' } })).toMatchObject({ t: 'ack' });
    const bad = await request(c, { t: 'pub', topic: 'chat.room', data: { text: 5 } });
    expect(bad).toMatchObject({ t: 'error', code: ErrorCode.InvalidPayload, message: expect.stringMatching(/data\.text: must be string/) });
    expect(await request(c, { t: 'pub', topic: 'chat.room', data: { text: 'hi', admin: true } })).toMatchObject({ code: ErrorCode.InvalidPayload });
    const res = await httpPublish({ topic: 'chat.room', data: { text: 'x'.repeat(30) } });
    expect(res.status).toBe(422);
    expect(await res.json()).toMatchObject({ error: { code: ErrorCode.InvalidPayload } });
    expect((await httpPublish({ topic: 'chat.room', data: { text: 'ok', to: 'bob' } })).status).toBe(200);
    c.close();
  });

  it('data the protocol does not carry (64-bit ints, timestamps, deep nesting) is refused at the door', async () => {
    const { c } = await connectHello(gw.url);
    const big = Buffer.from([
      0x84,
      0xa1,
      0x74,
      0xa3,
      ...Buffer.from('pub'),
      0xa2,
      0x69,
      0x64,
      0x01,
      0xa5,
      ...Buffer.from('topic'),
      0xa1,
      0x78,
      0xa4,
      ...Buffer.from('data'),
      0xcf,
      0xff,
      0xff,
      0xff,
      0xff,
      0xff,
      0xff,
      0xff,
      0xff,
    ]);
    c.sendRaw(big);
    expect(await c.next(isReply(1))).toMatchObject({ t: 'error', code: ErrorCode.InvalidFrame });
    let deep: unknown = 1;
    for (let i = 0; i < 100; i++) deep = [deep];
    c.sendRaw(Buffer.from(msgpackCodec.encode({ t: 'pub', id: 2, topic: 'x', data: deep })));
    expect(await c.next(isReply(2))).toMatchObject({ t: 'error', code: ErrorCode.InvalidFrame });
    expect(await request(c, { t: 'ping' })).toMatchObject({ t: 'pong' });
    c.close();
  });

  it('max subscriptions per connection: error 4001', async () => {
    const { c } = await connectHello(gw.url);
    for (const t of ['s.1', 's.2', 's.3']) expect(await request(c, { t: 'sub', topic: t })).toMatchObject({ t: 'subscribed' });
    expect(await request(c, { t: 'sub', topic: 's.4' })).toMatchObject({ t: 'error', code: ErrorCode.TooManySubscriptions });
    await request(c, { t: 'unsub', topic: 's.1' });
    expect(await request(c, { t: 'sub', topic: 's.4' })).toMatchObject({ t: 'subscribed' });
    c.close();
  });

  it('repeated denied requests close the connection with 4503, like invalid frames', async () => {
    const { c } = await connectHello(gw.url);
    for (let i = 0; i < 6; i++) c.send({ t: 'sub', id: 100 + i, topic: `locked.t${i}` });
    expect((await c.closed).code).toBe(CloseCode.TooManyErrors);
    expect(c.frames.filter((f) => f.t === 'error' && f.code === ErrorCode.Forbidden).length).toBeGreaterThanOrEqual(5);
  });
});

describe('timeouts', () => {
  it('cuts a client that stops answering pings after the idle timeout', async () => {
    const idle = await useGateway({ ws: { idleTimeoutSec: 8, heartbeatMs: 1000 } });
    const c = (await openNetWs(idle.port)) as NetWs;
    c.sendFrame = (
      (orig) => (op: number, p: Uint8Array, fin?: boolean) =>
        op === 10 ? undefined : orig(op, p, fin)
    )(c.sendFrame);
    c.send(msgpackCodec.encode({ t: 'hello', v: 1 }) as Uint8Array);
    await c.closed; // the test's own timeout bounds this
    expect(idle.connections()).toBe(0);
  }, 30_000);
});

describe('logs', () => {
  it('never contain API keys, HMAC secrets or tokens', async () => {
    const lines: string[] = [];
    const write = process.stdout.write.bind(process.stdout);
    process.stdout.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
      lines.push(String(chunk));
      return (write as (...a: unknown[]) => boolean)(chunk, ...rest);
    }) as typeof process.stdout.write;
    try {
      const ADMIN = 'admin-secret-key-0123456789';
      const logged = await useGateway({ log: { level: 'debug' }, auth: { secret: SECRET }, api: { keys: [KEY, { key: ADMIN, scopes: ['admin'] }] } });
      const token = await hs256({ sub: 'logged-user' });
      const c = await connectRaw(logged.url, 'json');
      c.send({ t: 'hello', v: 1, token });
      await c.next((f) => f.t === 'welcome');
      c.send({ t: 'refresh', id: 1, token: 'bad.token.value' });
      await c.next(isReply(1));
      await fetch(`${logged.httpUrl}/api/publish`, { method: 'POST', headers: { authorization: 'Bearer wrong-key-012345' }, body: '{}' });
      await fetch(`${logged.httpUrl}/api/disconnect`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ADMIN}` },
        body: JSON.stringify({ user: 'logged-user' }),
      });
      await c.closed;
      const text = lines.join('');
      expect(text).toContain('admin disconnect');
      for (const secret of [KEY, ADMIN, SECRET, token, token.split('.')[2]!, 'wrong-key-012345', 'bad.token.value']) {
        expect(text.includes(secret), secret).toBe(false);
      }
    } finally {
      process.stdout.write = write;
    }
  });
});
