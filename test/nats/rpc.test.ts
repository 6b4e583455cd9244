/**
 * RPC on the NATS engine, all real: a nats-server, a gateway on it, and a NATS service in a queue
 * group of two separate processes (test/nats/fixtures/rpc-service.ts). Then the HTTP service
 * tests of the memory engine again, on this engine.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { connect, headers } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningGateway } from '../../gateway/server.ts';
import { ErrorCode, type ErrorFrame, type ServerFrame, type WelcomeFrame } from '../../protocol/index.ts';
import { hs256, SECRET } from '../security/support/tokens.ts';
import { poll } from '../support/admin.ts';
import { trackChild } from '../support/children.ts';
import { useGateway } from '../support/gateway.ts';
import { startNatsServer } from '../support/nats-server.ts';
import { connectHello, connectRaw, isReply, type RawClient } from '../support/raw-client.ts';
import { describeHttpRpc } from '../support/rpc-http-suite.ts';

const nats = await startNatsServer();
afterAll(() => nats.cleanup());
let prefixes = 0;
const natsBus = () => ({ engine: 'nats' as const, nats: { servers: [nats.url], prefix: `rpc${++prefixes}` } });
// Quiet: the nats-server may stop before the last gateway has closed.
const log = { level: 'error' as const };

/** Starts one service instance; resolves once it serves. */
function startInstance(name: string, prefix: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/nats/fixtures/rpc-service.ts', nats.url, name, prefix], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  trackChild(child);
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`service ${name} not ready in 20 s: ${err}`)), 20_000);
    child.stdout!.on('data', (d: Buffer) => {
      if (!d.toString().includes('ready')) return;
      clearTimeout(timer);
      resolve(child);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`service ${name} exited (${code}): ${err}`));
    });
  });
}

function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

describe('RPC to a NATS service in a queue group (nats engine)', () => {
  let gw: RunningGateway;
  let prefix: string;
  const children: ChildProcess[] = [];
  const clients: RawClient[] = [];

  beforeAll(async () => {
    const bus = natsBus();
    prefix = bus.nats.prefix;
    gw = await useGateway({
      bus,
      log,
      auth: { anonymous: true, secret: SECRET },
      rpc: {
        timeoutMs: 5000,
        maxReplyBytes: 4096,
        claims: ['tenant'],
        methods: { 'svc.*': { allow: 'anyone' }, 'svc.sleep': { allow: 'anyone', timeoutMs: 300 }, 'gone.*': { allow: 'anyone' } },
      },
    });
    children.push(...(await Promise.all([startInstance('a', prefix), startInstance('b', prefix)])));
  }, 60_000);
  afterAll(async () => {
    for (const c of clients) c.close();
    await Promise.all(children.map(stop));
  });

  const hello = async () => {
    const r = await connectHello(gw.url, 'json');
    clients.push(r.c);
    return r;
  };

  it('reaches the service; both processes of the queue group serve', async () => {
    const { c } = await hello();
    const N = 40;
    for (let id = 1; id <= N; id++) c.send({ t: 'rpc', id, method: 'svc.whoami', data: id });
    const answers = (await c.collect((f) => f.t === 'rpc', N)) as { id: number; data: { instance: string; data: number } }[];
    for (const a of answers) expect(a.data.data).toBe(a.id);
    const by = new Map<string, number>();
    for (const a of answers) by.set(a.data.instance, (by.get(a.data.instance) ?? 0) + 1);
    expect([...by.keys()].sort()).toEqual(['a', 'b']);
  });

  it('passes the caller in headers the client cannot forge', async () => {
    const c = await connectRaw(gw.url, 'json');
    clients.push(c);
    c.send({ t: 'hello', v: 1, token: await hs256({ sub: 'alice', tenant: 't-7', secret: 'x' }) });
    const welcome = await c.next<WelcomeFrame>((f) => f.t === 'welcome');
    const forged = { 'Symphonic-User': 'mallory', headers: { 'Symphonic-User': 'mallory' }, caller: { user: 'mallory' } };
    c.send({ t: 'rpc', id: 1, method: 'svc.whoami', data: forged });
    const r = await c.next<ServerFrame & { data: { caller: unknown; data: unknown } }>(isReply(1));
    expect(r.data.data).toEqual(forged);
    expect(r.data.caller).toEqual({ user: 'alice', session: welcome.session, node: gw.config.nodeId, claims: { tenant: 't-7' } });
  });

  it('answers 2012 with the service error and its data (Nats-Service-Error); a crash as an internal service error', async () => {
    const { c } = await hello();
    c.send({ t: 'rpc', id: 1, method: 'svc.fail' });
    expect(await c.next(isReply(1))).toEqual({ t: 'error', id: 1, code: ErrorCode.ServiceError, message: 'card declined', data: { retry: false } });
    c.send({ t: 'rpc', id: 2, method: 'svc.crash' });
    expect(await c.next(isReply(2))).toEqual({ t: 'error', id: 2, code: ErrorCode.ServiceError, message: 'internal service error' });
  });

  it('answers 5002 when the service is slower than the timeout, and the connection goes on', async () => {
    const { c } = await hello();
    c.send({ t: 'rpc', id: 1, method: 'svc.sleep', data: 3000 });
    c.send({ t: 'ping', id: 2 });
    expect(await c.next(isReply(2))).toMatchObject({ t: 'pong' });
    expect(await c.next<ErrorFrame>(isReply(1))).toMatchObject({ code: ErrorCode.ServiceTimeout });
    c.send({ t: 'rpc', id: 3, method: 'svc.sleep', data: 10 });
    expect(await c.next(isReply(3))).toEqual({ t: 'rpc', id: 3, data: { slept: 10 } });
  });

  it("abandons a closed connection's call at once (not at its timeout)", async () => {
    const c = await connectRaw(gw.url, 'json');
    c.send({ t: 'hello', v: 1 });
    await c.next((f) => f.t === 'welcome');
    c.send({ t: 'rpc', id: 1, method: 'svc.nap', data: 20_000 });
    c.close();
    await c.closed;
    // The method's timeout is 5 s: seeing the call end well before proves it was dropped at once.
    await poll(
      'the abandoned call counted',
      async () => /symphonic_rpc_calls_total\{[^}]*outcome="abandoned"[^}]*\} 1/.test(await (await fetch(`${gw.httpUrl}/metrics`)).text()) || null,
      2500,
    );
  });

  it('answers 5003 when no instance serves the method, and 4005 for an oversized answer', async () => {
    const { c } = await hello();
    c.send({ t: 'rpc', id: 1, method: 'gone.away' });
    expect(await c.next(isReply(1))).toMatchObject({ t: 'error', code: ErrorCode.NoResponders });
    c.send({ t: 'rpc', id: 2, method: 'svc.whoami', data: 'z'.repeat(5000) });
    expect(await c.next(isReply(2))).toMatchObject({ t: 'error', code: ErrorCode.ReplyTooLarge });
  });

  it('sends a raw NATS answer through as is: JSON payload, or a bare Nats-Service-Error header', async () => {
    const nc = await connect({ servers: nats.url });
    try {
      const sub = nc.subscribe(`${prefix}.rpc.gone.raw`, {
        callback: (_e, m) => {
          if (m.data.length === 0) return m.respond(new Uint8Array(0));
          const h = headers();
          h.set('Nats-Service-Error', 'raw failure');
          h.set('Nats-Service-Error-Code', '400');
          m.respond(new Uint8Array(0), { headers: h });
        },
      });
      await nc.flush();
      const { c } = await hello();
      c.send({ t: 'rpc', id: 1, method: 'gone.raw', data: 'x' });
      expect(await c.next(isReply(1))).toEqual({ t: 'error', id: 1, code: ErrorCode.ServiceError, message: 'raw failure' });
      sub.unsubscribe();
    } finally {
      await nc.close();
    }
  });
});

describeHttpRpc('nats', (config) => useGateway({ ...config, log, bus: natsBus() }));
