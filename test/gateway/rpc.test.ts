/**
 * RPC on the embedded (memory) engine: HTTP services (the shared suite), plus what is particular
 * to this engine (a method with no `url` has no service) and the rate limit.
 */
import { describe, expect, it, onTestFinished } from 'vitest';
import { startGateway } from '../../gateway/server.ts';
import { ErrorCode, type ErrorFrame } from '../../protocol/index.ts';
import { useGateway } from '../support/gateway.ts';
import { connectHello, isReply } from '../support/raw-client.ts';
import { describeHttpRpc } from '../support/rpc-http-suite.ts';
import { MAX_RPC_IN_FLIGHT } from '../../gateway/connection/rpc.ts';
import { startRpcService } from '../support/rpc-service.ts';

describeHttpRpc('memory', (config) => useGateway(config));

describe('RPC on the memory engine', () => {
  it('answers 2011 for a method without url, saying to set it', async () => {
    const gw = await useGateway({ rpc: { methods: { 'orders.*': { allow: 'anyone' } } } });
    const { c } = await connectHello(gw.url, 'json');
    c.send({ t: 'rpc', id: 1, method: 'orders.create', data: {} });
    const e = await c.next<ErrorFrame>(isReply(1));
    expect(e.code).toBe(ErrorCode.UnknownMethod);
    expect(e.message).toContain('rpc.methods["orders.*"].url');
    c.close();
  });

  it('rate limits calls like every frame (4000, with the id)', async () => {
    const svc = await startRpcService();
    onTestFinished(() => svc.close());
    const gw = await useGateway({ limits: { connRatePerSec: 0.1, connBurst: 4 }, rpc: { methods: { 'shop.>': { url: svc.url, allow: 'anyone' } } } });
    const { c } = await connectHello(gw.url, 'json');
    for (let id = 1; id <= 10; id++) c.send({ t: 'rpc', id, method: 'shop.echo', data: id });
    const answers = await c.collect((f) => 'id' in f && typeof f.id === 'number', 10);
    const limited = answers.filter((f) => f.t === 'error' && f.code === ErrorCode.RateLimited);
    expect(limited.length).toBeGreaterThanOrEqual(5);
    expect(answers.filter((f) => f.t === 'rpc').length).toBeGreaterThanOrEqual(1);
    expect(svc.calls.get('shop.echo')).toBe(10 - limited.length);
    c.close();
  });

  it(`allows ${MAX_RPC_IN_FLIGHT} calls in flight per connection (4003 beyond)`, async () => {
    const svc = await startRpcService();
    onTestFinished(() => svc.close());
    const gw = await useGateway({ rpc: { methods: { 'shop.>': { url: svc.url, allow: 'anyone' } } } });
    const { c } = await connectHello(gw.url, 'json');
    for (let id = 1; id <= MAX_RPC_IN_FLIGHT; id++) c.send({ t: 'rpc', id, method: 'shop.hold', data: `cap-${id}` });
    await svc.held(`cap-${MAX_RPC_IN_FLIGHT}`);
    c.send({ t: 'rpc', id: 1000, method: 'shop.echo' });
    expect(await c.next(isReply(1000))).toMatchObject({ code: ErrorCode.LimitExceeded });
    svc.release('cap-1', 'done');
    expect(await c.next(isReply(1))).toEqual({ t: 'rpc', id: 1, data: 'done' });
    c.send({ t: 'rpc', id: 1001, method: 'shop.echo' });
    expect(await c.next(isReply(1001))).toMatchObject({ t: 'rpc' });
    c.close();
  });

  it('counts calls by outcome in /metrics', async () => {
    const svc = await startRpcService();
    onTestFinished(() => svc.close());
    const gw = await useGateway({ rpc: { methods: { 'shop.>': { url: svc.url, allow: 'anyone' } } } });
    const { c } = await connectHello(gw.url, 'json');
    c.send({ t: 'rpc', id: 1, method: 'shop.echo' });
    c.send({ t: 'rpc', id: 2, method: 'shop.fail' });
    c.send({ t: 'rpc', id: 3, method: 'none.such' });
    await c.collect((f) => 'id' in f && typeof f.id === 'number' && f.id <= 3, 3);
    const text = await (await fetch(`${gw.httpUrl}/metrics`)).text();
    for (const outcome of ['ok', 'service_error', 'unknown_method'])
      expect(text).toMatch(new RegExp(`symphonic_rpc_calls_total\\{[^}]*outcome="${outcome}"[^}]*\\} 1`));
    c.close();
  });

  it('refuses to start with an invalid rpc.methods key', async () => {
    await expect(startGateway({ host: '127.0.0.1', port: 0, log: { level: 'error' }, rpc: { methods: { 'a..b': { allow: 'anyone' } } } })).rejects.toThrow(
      /rpc\.methods/,
    );
  });
});
