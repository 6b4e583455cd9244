/**
 * RPC to HTTP services, the same tests on either engine (test/gateway/rpc.test.ts on the memory
 * engine, test/nats/rpc.test.ts on NATS): a real gateway, a real node:http service, raw clients.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GatewayConfigInput } from '../../gateway/config.ts';
import type { RunningGateway } from '../../gateway/server.ts';
import { ErrorCode, type ErrorFrame, type ServerFrame, type WelcomeFrame } from '../../protocol/index.ts';
import { hs256, SECRET } from '../security/support/tokens.ts';
import { connectHello, connectRaw, isReply, type RawClient } from './raw-client.ts';
import { refusedUrl, startRpcService, type TestRpcService } from './rpc-service.ts';

export type StartGateway = (config: GatewayConfigInput) => Promise<RunningGateway>;

const MAX_REPLY = 2048;

export function rpcConfig(svc: string, refused: string): GatewayConfigInput {
  return {
    auth: { anonymous: true, secret: SECRET },
    rpc: {
      timeoutMs: 4000,
      maxReplyBytes: MAX_REPLY,
      claims: ['tenant'],
      methods: {
        // A pattern for the service's methods; the more specific keys below win over it.
        'shop.>': { url: svc, allow: 'anyone' },
        'shop.never': { url: svc, allow: 'anyone', timeoutMs: 300 },
        'down.echo': { url: refused, allow: 'anyone' },
        'members.*': { url: svc, allow: 'authenticated' },
        'admin.>': { url: svc, allow: 'token' },
      },
    },
  };
}

const call = (c: RawClient, id: number, method: string, data: unknown = null, timeout?: number) =>
  c.send({ t: 'rpc', id, method, data, ...(timeout === undefined ? {} : { timeout }) });
const answer = <T extends ServerFrame>(c: RawClient, id: number, timeoutMs?: number) => c.next<T>(isReply(id), timeoutMs);

async function connectAs(url: string, claims: Record<string, unknown>): Promise<{ c: RawClient; welcome: WelcomeFrame }> {
  const c = await connectRaw(url, 'json');
  c.send({ t: 'hello', v: 1, token: await hs256(claims) });
  return { c, welcome: await c.next<WelcomeFrame>((f) => f.t === 'welcome') };
}

export function describeHttpRpc(engine: string, start: StartGateway): void {
  describe(`RPC to an HTTP service (${engine} engine)`, () => {
    let svc: TestRpcService;
    let gw: RunningGateway;
    const clients: RawClient[] = [];
    const hello = async (encoding: 'json' | 'msgpack' = 'msgpack') => {
      const r = await connectHello(gw.url, encoding);
      clients.push(r.c);
      return r;
    };

    beforeAll(async () => {
      svc = await startRpcService();
      gw = await start(rpcConfig(svc.url, await refusedUrl()));
    });
    afterAll(async () => {
      for (const c of clients) c.close();
      await svc.close();
    });

    it("returns the service's answer, on both encodings; an empty answer is null", async () => {
      for (const enc of ['json', 'msgpack'] as const) {
        const { c } = await hello(enc);
        call(c, 1, 'shop.echo', { sku: 'sku-1', qty: 2 });
        expect(await answer(c, 1)).toMatchObject({ t: 'rpc', id: 1, data: { data: { sku: 'sku-1', qty: 2 }, method: 'shop.echo' } });
        call(c, 2, 'shop.empty');
        expect(await answer(c, 2)).toEqual({ t: 'rpc', id: 2, data: null });
      }
    });

    it('passes a service error on as 2012 with its message and data; a bare status as its status line', async () => {
      const { c } = await hello('json');
      call(c, 1, 'shop.fail', { sku: 'sku-9' });
      expect(await answer(c, 1)).toEqual({ t: 'error', id: 1, code: ErrorCode.ServiceError, message: 'out of stock', data: { sku: 'sku-9' } });
      call(c, 2, 'shop.plain500');
      expect(await answer(c, 2)).toMatchObject({ t: 'error', id: 2, code: ErrorCode.ServiceError, message: '500 Internal Server Error' });
    });

    it("answers 5002 after the method's timeout, or the call's own shorter one, and drops the request", async () => {
      const { c } = await hello();
      const t0 = Date.now();
      call(c, 1, 'shop.never', 'slow-1');
      expect(await answer<ErrorFrame>(c, 1)).toMatchObject({ code: ErrorCode.ServiceTimeout });
      expect(Date.now() - t0).toBeGreaterThanOrEqual(290);
      await svc.aborted('slow-1');
      call(c, 2, 'shop.hold', 'short-1', 200);
      expect(await answer<ErrorFrame>(c, 2)).toMatchObject({ code: ErrorCode.ServiceTimeout });
      await svc.aborted('short-1');
    });

    it('answers 5003 when nothing listens at the URL', async () => {
      const { c } = await hello();
      call(c, 1, 'down.echo');
      expect(await answer(c, 1)).toMatchObject({ t: 'error', code: ErrorCode.NoResponders });
    });

    it('answers 4005 for an answer over rpc.maxReplyBytes, and stops reading one that never ends', async () => {
      const { c } = await hello();
      call(c, 1, 'shop.big');
      expect(await answer(c, 1)).toMatchObject({ t: 'error', code: ErrorCode.ReplyTooLarge });
      call(c, 2, 'shop.stream');
      expect(await answer(c, 2)).toMatchObject({ t: 'error', code: ErrorCode.ReplyTooLarge });
      await svc.streamCut();
    });

    it('answers 2011 for a method nobody configured, 1001 for a malformed name, 2004 for binary data; the connection lives on', async () => {
      const { c } = await hello('json');
      call(c, 1, 'nosuch.method');
      const e = await answer<ErrorFrame>(c, 1);
      expect(e).toMatchObject({ code: ErrorCode.UnknownMethod });
      expect(e.message).toContain('nosuch.method');
      for (const [id, method] of [
        [2, 'bad method'],
        [3, 'a..b'],
        [4, 'x'.repeat(129)],
        [5, 42],
      ] as const) {
        c.send({ t: 'rpc', id, method });
        expect(await answer(c, id)).toMatchObject({ t: 'error', code: ErrorCode.InvalidFrame });
      }
      c.send({ t: 'rpc', id: 6 });
      expect(await answer(c, 6)).toMatchObject({ code: ErrorCode.InvalidFrame });
      c.send({ t: 'rpc', id: 7, method: 'shop.echo', timeout: 0 });
      expect(await answer(c, 7)).toMatchObject({ code: ErrorCode.InvalidFrame });
      const { c: bin } = await hello('msgpack');
      call(bin, 1, 'shop.echo', { blob: new Uint8Array([1, 2, 3]) });
      expect(await answer(bin, 1)).toMatchObject({ t: 'error', code: ErrorCode.BadRequest });
      call(c, 8, 'shop.echo', 'still here');
      expect(await answer(c, 8)).toMatchObject({ t: 'rpc', data: { data: 'still here' } });
    });

    it("checks who may call: anyone, authenticated (3000 anonymous), token (the token's rpc claim, else 3001)", async () => {
      const { c: anon } = await hello('json');
      call(anon, 1, 'members.echo');
      expect(await answer(anon, 1)).toMatchObject({ code: ErrorCode.Unauthorized });
      call(anon, 2, 'admin.echo');
      expect(await answer(anon, 2)).toMatchObject({ code: ErrorCode.Unauthorized });

      const { c: plain } = await connectAs(gw.url, { sub: 'bob' });
      clients.push(plain);
      call(plain, 1, 'members.echo');
      expect(await answer(plain, 1)).toMatchObject({ t: 'rpc' });
      call(plain, 2, 'admin.echo');
      expect(await answer(plain, 2)).toMatchObject({ code: ErrorCode.Forbidden });

      const { c: granted } = await connectAs(gw.url, { sub: 'carol', rpc: ['admin.echo', 'admin.users.*'] });
      clients.push(granted);
      call(granted, 1, 'admin.echo');
      expect(await answer(granted, 1)).toMatchObject({ t: 'rpc' });
      call(granted, 2, 'admin.users.echo');
      expect(await answer(granted, 2)).toMatchObject({ t: 'rpc' });
      call(granted, 3, 'admin.fail');
      expect(await answer(granted, 3)).toMatchObject({ code: ErrorCode.Forbidden });
      expect(svc.calls.get('admin.fail')).toBeUndefined();
    });

    it('tells the service who called, in headers only the gateway sets: identity-like data is just data', async () => {
      const { c, welcome } = await connectAs(gw.url, { sub: 'alice', tenant: 't-1', role: 'not-forwarded' });
      clients.push(c);
      const forged = { 'Symphonic-User': 'mallory', headers: { 'Symphonic-User': 'mallory', 'Symphonic-Claims': '{"tenant":"evil"}' } };
      call(c, 1, 'shop.echo', forged);
      const r = await answer<{ t: 'rpc'; id: number; data: { data: unknown; seen: Record<string, string>; names: string[] } }>(c, 1);
      expect(r.data.data).toEqual(forged);
      expect(r.data.seen).toEqual({
        'symphonic-user': 'alice',
        'symphonic-session': welcome.session,
        'symphonic-node': gw.config.nodeId,
        'symphonic-claims': '{"tenant":"t-1"}',
      });
      expect(
        r.data.names.filter(
          (n) =>
            !['host', 'connection', 'content-type', 'content-length', 'accept', 'accept-language', 'accept-encoding', 'sec-fetch-mode', 'user-agent'].includes(
              n,
            ) && !n.startsWith('symphonic-'),
        ),
      ).toEqual([]);

      const { c: anon, welcome: w2 } = await hello('json');
      call(anon, 1, 'shop.echo', { user: 'mallory' });
      const a = await answer<{ t: 'rpc'; id: number; data: { seen: Record<string, string> } }>(anon, 1);
      expect(a.data.seen).toEqual({ 'symphonic-session': w2.session, 'symphonic-node': gw.config.nodeId, 'symphonic-claims': '{}' });
    });

    it('runs calls concurrently: a slow call delays neither ping, nor pub, nor another call', async () => {
      const { c } = await hello();
      call(c, 1, 'shop.hold', 'concurrent-1');
      await svc.held('concurrent-1');
      c.send({ t: 'ping', id: 2 });
      c.send({ t: 'pub', id: 3, topic: 'rpc-side.a', data: 1 });
      call(c, 4, 'shop.echo', 'quick');
      expect(await answer(c, 2)).toMatchObject({ t: 'pong' });
      expect(await answer(c, 3)).toMatchObject({ t: 'ack' });
      expect(await answer(c, 4)).toMatchObject({ t: 'rpc' });
      expect(c.frames.some(isReply(1))).toBe(false);
      svc.release('concurrent-1', { late: true });
      expect(await answer(c, 1)).toEqual({ t: 'rpc', id: 1, data: { late: true } });
    });

    it("abandons a closed connection's calls: the service's request is dropped", async () => {
      const { c } = await hello();
      call(c, 1, 'shop.hold', 'orphan-1');
      await svc.held('orphan-1');
      c.close();
      await c.closed;
      await svc.aborted('orphan-1');
    });
  });
}
