import { describe, expect, it } from 'vitest';
import { CloseCode, ErrorCode, type ServerFrame } from '../../protocol/index.ts';
import { useGateway } from '../support/gateway.ts';
import { connectHello, connectRaw, isReply } from '../support/raw-client.ts';

const gw = await useGateway({ ws: { handshakeTimeoutMs: 300, heartbeatMs: 200 } });

describe('handshake', () => {
  it.each(['msgpack', 'json'] as const)('hello gets a welcome with session and resume key (%s)', async (enc) => {
    const { c, welcome } = await connectHello(gw.url, enc);
    expect(welcome).toMatchObject({ t: 'welcome', v: 1, resumed: false, node: gw.config.nodeId, heartbeat: gw.config.ws.heartbeatMs });
    expect(welcome.session).toMatch(/^[\w-]{8,}$/);
    expect(welcome.key).toMatch(/^[\w-]{16,}$/);
    c.close();
  });

  it.each(['msgpack', 'json'] as const)('sends heartbeats every welcome.heartbeat ms (%s)', async (enc) => {
    const { c, welcome } = await connectHello(gw.url, enc);
    expect(welcome.heartbeat).toBe(200);
    expect(await c.collect((f) => f.t === 'hb', 2)).toEqual([{ t: 'hb' }, { t: 'hb' }]);
    c.close();
  });

  it('answers the negotiated subprotocol', async () => {
    const c = await connectRaw(gw.url, 'json');
    expect(c.ws.protocol).toBe('symphonic.v1.json');
    c.close();
  });

  it('defaults to msgpack when no subprotocol is offered', async () => {
    const c = await connectRaw(gw.url, 'msgpack', []);
    c.send({ t: 'hello', v: 1 });
    await c.next((f) => f.t === 'welcome');
    c.close();
  });

  it('refuses an upgrade offering none of its subprotocols with HTTP 400', async () => {
    await expect(connectRaw(gw.url, 'json', ['mqtt'])).rejects.toThrow(/400/);
  });

  it('rejects frames before hello with 1004, echoing the request id', async () => {
    const c = await connectRaw(gw.url);
    c.send({ t: 'sub', id: 7, topic: 'a' });
    expect(await c.next(isReply(7))).toMatchObject({ t: 'error', code: ErrorCode.HandshakeRequired });
    c.close();
  });

  it('rejects a second hello with 1005 and keeps the connection', async () => {
    const { c } = await connectHello(gw.url);
    c.send({ t: 'hello', v: 1 });
    await c.next((f) => f.t === 'error' && f.code === ErrorCode.AlreadyHandshaken);
    c.send({ t: 'ping', id: 3 });
    expect(await c.next(isReply(3))).toEqual({ t: 'pong', id: 3 });
    c.close();
  });

  it('closes an unsupported protocol version with terminal code 4500', async () => {
    const c = await connectRaw(gw.url);
    c.send({ t: 'hello', v: 99 });
    await c.next((f) => f.t === 'error' && f.code === ErrorCode.UnsupportedVersion);
    expect((await c.closed).code).toBe(CloseCode.BadProtocol);
  });

  it('closes a connection that sends no hello in time with 4002', async () => {
    const c = await connectRaw(gw.url);
    expect((await c.closed).code).toBe(CloseCode.HandshakeTimeout);
  });

  it('resumes a session by id and key, rotating the key, and takes it over from the old socket', async () => {
    const first = await connectHello(gw.url);
    const second = await connectHello(gw.url, 'msgpack', { id: first.welcome.session, key: first.welcome.key });
    expect(second.welcome).toMatchObject({ resumed: true, session: first.welcome.session });
    expect(second.welcome.key).not.toBe(first.welcome.key);
    expect((await first.c.closed).code).toBe(CloseCode.SessionTakenOver);
    // The old key no longer works: a fresh session starts.
    const third = await connectHello(gw.url, 'msgpack', { id: first.welcome.session, key: first.welcome.key });
    expect(third.welcome.resumed).toBe(false);
    expect(third.welcome.session).not.toBe(first.welcome.session);
    second.c.close();
    third.c.close();
  });

  it('keeps serving after a client disconnects mid-handshake', async () => {
    const c = await connectRaw(gw.url);
    c.ws.terminate();
    const { c: ok } = await connectHello(gw.url);
    ok.send({ t: 'ping', id: 1 });
    expect((await ok.next(isReply(1))) as ServerFrame).toEqual({ t: 'pong', id: 1 });
    ok.close();
  });
});
