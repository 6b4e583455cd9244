/**
 * The server-side publisher straight onto NATS, against a real nats-server and a real gateway on
 * the NATS engine: what it stores is the envelope the gateway reads, its acks carry the sequence
 * subscribers see and the epoch the engine computes (also after the stream is recreated), and
 * with NATS unreachable it falls back to the gateway's HTTP API, but never for a publish NATS
 * refused.
 */
import { connect, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { WebSocket } from 'ws';
import { resolveOptions } from '../../gateway/bus/nats/options.ts';
import { streamConfig } from '../../gateway/bus/nats/stream.ts';
import type { RunningGateway } from '../../gateway/server.ts';
import { decodeEnvelope, epochFromCreated } from '../../protocol/envelope.ts';
import { SymphonicClient, type Subscription } from '../../sdk/index.ts';
import {
  ConnectionClosedError,
  ErrorCode,
  HttpPublishTransport,
  NatsPublishTransport,
  SequenceConflictError,
  SymphonicError,
  SymphonicPublisher,
  TransportUnavailableError,
} from '../../sdk/server/index.ts';
import { freePorts } from '../support/nats-server.ts';
import { startStack, type Stack } from './helpers/stack.ts';

const KEY = 'publisher-test-key-0123456789';
const PREFIX = 'pub';

let stack: Stack;
let gw: RunningGateway;
let nc: NatsConnection;
let deadUrl: string;
const closers: { close(): unknown }[] = [];

beforeAll(async () => {
  stack = await startStack('nats');
  gw = await stack.gateway({ api: { keys: [KEY] } }, PREFIX);
  nc = await connect({ servers: stack.natsUrl! });
  const [port] = await freePorts(1); // nothing listens there
  deadUrl = `nats://127.0.0.1:${port}`;
});
afterAll(async () => {
  for (const c of closers.splice(0).reverse()) await c.close();
  await nc?.close();
  await stack?.close();
});

function track<T extends { close(): unknown }>(x: T): T {
  closers.push(x);
  return x;
}

async function subscribed<S = unknown>(topic: string): Promise<Subscription<S, unknown>> {
  const c = track(new SymphonicClient(gw.url, { WebSocket, reconnect: { min: 50, max: 500 } }));
  c.connect();
  const sub = c.subscribe<S>(topic);
  await sub.ready(5000);
  return sub;
}

/** Resolves once the subscription has applied the message at `seq`. */
function reached(sub: Subscription<any, any>, seq: number): Promise<void> {
  return new Promise((resolve, reject) => {
    if ((sub.position?.seq ?? 0) >= seq) return resolve();
    const timer = setTimeout(() => reject(new Error(`subscription of ${sub.topic} never reached ${seq} (at ${sub.position?.seq})`)), 5000);
    const off = sub.on('message', () => {
      if ((sub.position?.seq ?? 0) < seq) return;
      clearTimeout(timer);
      off();
      resolve();
    });
  });
}

async function streamEpoch(prefix: string): Promise<string> {
  const jsm = await nc.jetstreamManager();
  return epochFromCreated((await jsm.streams.info(`${prefix}_topics`)).created);
}

describe('NATS publisher against a gateway on the NATS engine', () => {
  it('set, patch and event: stored as the envelope, acked with the seq subscribers see and the engine epoch', async () => {
    const sub = await subscribed<Record<string, unknown>>('np.doc');
    const seen: { seq: number; kind: string; data: unknown }[] = [];
    sub.on('message', (m) => seen.push({ seq: m.seq, kind: m.kind, data: m.data }));
    const pub = track(new SymphonicPublisher({ nats: { servers: stack.natsUrl!, prefix: PREFIX } }));

    const before = Date.now();
    const a1 = await pub.set('np.doc', { title: 'a', bin: new Uint8Array([1, 2, 3]) });
    const a2 = await pub.patch('np.doc', { n: 1, title: null });
    const a3 = await pub.event('np.doc', { hello: 'world' });
    const after = Date.now();
    await reached(sub, a3.seq);

    const epoch = await streamEpoch(PREFIX);
    expect([a1, a2, a3].map((a) => a.epoch)).toEqual([epoch, epoch, epoch]);
    expect((gw.bus as unknown as { epoch(): string }).epoch()).toBe(epoch);
    expect(sub.position).toEqual({ seq: a3.seq, epoch });
    expect(seen).toEqual([
      { seq: a1.seq, kind: 'set', data: { title: 'a', bin: new Uint8Array([1, 2, 3]) } },
      { seq: a2.seq, kind: 'patch', data: { n: 1, title: null } },
      { seq: a3.seq, kind: 'event', data: { hello: 'world' } },
    ]);
    expect(sub.state).toEqual({ bin: new Uint8Array([1, 2, 3]), n: 1 });

    // The stored message is the envelope, on <prefix>.in.<topic>.
    const jsm = await nc.jetstreamManager();
    const stored = await jsm.streams.getMessage(`${PREFIX}_topics`, { seq: a2.seq });
    expect(stored.subject).toBe(`${PREFIX}.in.np.doc`);
    const env = decodeEnvelope(stored.data, 0);
    expect(env).toMatchObject({ kind: 'patch', data: { n: 1, title: null } });
    expect(env.ts).toBeGreaterThanOrEqual(before);
    expect(env.ts).toBeLessThanOrEqual(after);

    // A subscriber arriving later gets the same document as its snapshot.
    const late = await subscribed<Record<string, unknown>>('np.doc');
    expect(late.state).toEqual(sub.state);
    expect(late.position).toEqual(sub.position);
  });

  it('conditional publish over NATS and over HTTP: `expect` holds or SequenceConflictError with the current seq, nothing stored', async () => {
    const viaNats = track(new SymphonicPublisher({ transport: new NatsPublishTransport({ servers: [stack.natsUrl!], prefix: PREFIX }) }));
    const viaHttp = track(new SymphonicPublisher({ transport: new HttpPublishTransport({ url: gw.httpUrl, apiKey: KEY }) }));
    const topic = `cas.pub.${Date.now()}`;
    const first = await viaNats.publish(topic, { v: 1 }, { kind: 'set', expect: 0 });
    await expect(viaNats.publish(topic, { v: 'x' }, { kind: 'set', expect: 0 })).rejects.toMatchObject({
      name: 'SequenceConflictError',
      code: ErrorCode.SequenceConflict,
      current: first.seq,
    });
    await expect(viaHttp.publish(topic, { v: 'x' }, { kind: 'set', expect: 0 })).rejects.toBeInstanceOf(SequenceConflictError);
    const second = await viaHttp.publish(topic, { v: 2 }, { kind: 'set', expect: first.seq });
    await expect(viaHttp.publish(topic, { v: 'x' }, { kind: 'set', expect: first.seq })).rejects.toMatchObject({ current: second.seq });
    const sub = await subscribed<{ v: number }>(topic);
    expect(sub.state).toEqual({ v: 2 });
  });

  it('interleaves with gateway publishes in one sequence, and over an existing connection leaves it open on close()', async () => {
    const sub = await subscribed('np.mixed');
    const pub = new SymphonicPublisher({ transport: new NatsPublishTransport({ connection: nc, prefix: PREFIX }) });
    const http = new SymphonicPublisher({ url: gw.httpUrl, apiKey: KEY });
    const acks = [];
    for (let i = 0; i < 10; i++) acks.push(await (i % 2 ? http : pub).event('np.mixed', i));
    for (let i = 1; i < acks.length; i++) expect(acks[i]!.seq).toBeGreaterThan(acks[i - 1]!.seq);
    expect(new Set(acks.map((a) => a.epoch)).size).toBe(1);
    await reached(sub, acks[9]!.seq);
    await pub.close();
    expect(nc.isClosed()).toBe(false);
    await expect(pub.event('np.mixed', 1)).rejects.toBeInstanceOf(ConnectionClosedError);
  });

  it('answers with the new epoch after the stream is recreated (sequences restart), as the engine does', async () => {
    const prefix = 'recreated';
    const cfg = streamConfig(resolveOptions({ servers: stack.natsUrl!, prefix }));
    const jsm = await nc.jetstreamManager();
    await jsm.streams.add(cfg);
    const pub = track(new SymphonicPublisher({ nats: { servers: stack.natsUrl!, prefix } }));
    const first = [await pub.event('ep.t', 1), await pub.event('ep.t', 2)];
    const e1 = await streamEpoch(prefix);
    expect(first.map((a) => a.epoch)).toEqual([e1, e1]);

    await jsm.streams.delete(`${prefix}_topics`);
    await jsm.streams.add(cfg);
    const e2 = await streamEpoch(prefix);
    expect(e2).not.toBe(e1);
    const again = await pub.event('ep.t', 3);
    expect(again).toEqual({ seq: 1, epoch: e2 });
  });

  it('a deployment whose stream does not exist is an error, not a fallback', async () => {
    const fetch = vi.fn();
    const pub = track(new SymphonicPublisher({ nats: { servers: stack.natsUrl!, prefix: 'nostream' }, url: gw.httpUrl, apiKey: KEY, fetch: fetch as never }));
    const err = await pub.event('x.y', 1).catch((e) => e);
    expect(err).toBeInstanceOf(SymphonicError);
    expect(err).not.toBeInstanceOf(TransportUnavailableError);
    expect(err).toMatchObject({ code: ErrorCode.Unavailable });
    expect(err.message).toMatch(/nostream_topics does not exist/);
    expect(fetch).not.toHaveBeenCalled();
  });
});

describe('NATS not reachable', () => {
  it('the NATS transport says "unavailable, not sent" and waits retryConnectAfter before trying again', async () => {
    let attempts = 0;
    const t = track(
      new NatsPublishTransport({
        servers: deadUrl,
        prefix: PREFIX,
        retryConnectAfter: 60_000,
        connect: (o) => {
          attempts++;
          return connect(o);
        },
      }),
    );
    const e1 = await t.publish({ topic: 'np.x', kind: 'event', data: 1 }).catch((e) => e);
    expect(e1).toBeInstanceOf(TransportUnavailableError);
    expect(e1).toMatchObject({ code: ErrorCode.Unavailable, retryable: true });
    const e2 = await t.publish({ topic: 'np.x', kind: 'event', data: 2 }).catch((e) => e);
    expect(e2).toBeInstanceOf(TransportUnavailableError);
    expect(e2.message).toMatch(/next attempt in/);
    expect(attempts).toBe(1);
    await expect(t.connect()).rejects.toBeInstanceOf(TransportUnavailableError);
  });

  it('NATS + HTTP: publishes go over the HTTP API instead and reach subscribers', async () => {
    const sub = await subscribed<{ n: number }>('np.fallback');
    const onFallback = vi.fn();
    const pub = track(new SymphonicPublisher({ nats: { servers: deadUrl, prefix: PREFIX }, url: gw.httpUrl, apiKey: KEY, onFallback }));
    const a1 = await pub.set('np.fallback', { n: 1 });
    const a2 = await pub.patch('np.fallback', { n: 2 });
    expect(onFallback).toHaveBeenCalledTimes(2);
    expect(onFallback.mock.calls[0]![0]).toMatchObject({ from: 0, to: 1, topic: 'np.fallback', error: expect.any(TransportUnavailableError) });
    await reached(sub, a2.seq);
    expect(sub.state).toEqual({ n: 2 });
    expect(a1.epoch).toBe(await streamEpoch(PREFIX));
  });

  it('NATS reachable: HTTP is not used, even when NATS refuses the publish', async () => {
    const fetch = vi.fn();
    const pub = track(new SymphonicPublisher({ nats: { servers: stack.natsUrl!, prefix: PREFIX }, url: gw.httpUrl, apiKey: KEY, fetch: fetch as never }));
    await expect(pub.event('np.direct', 1)).resolves.toMatchObject({ epoch: await streamEpoch(PREFIX) });
    // Over the server's max_payload (1 MB by default): refused, not "unreachable".
    const err = await pub.event('np.direct', 'x'.repeat(1_100_000)).catch((e) => e);
    expect(err).toBeInstanceOf(SymphonicError);
    expect(err).not.toBeInstanceOf(TransportUnavailableError);
    expect(err).toMatchObject({ code: ErrorCode.PayloadTooLarge });
    expect(fetch).not.toHaveBeenCalled();
  });

  it('the HTTP transport to a port nobody listens on is "unavailable, not sent" too', async () => {
    const [port] = await freePorts(1);
    const t = new HttpPublishTransport({ url: `http://127.0.0.1:${port}` });
    await expect(t.publish({ topic: 'np.x', kind: 'event', data: 1 })).rejects.toBeInstanceOf(TransportUnavailableError);
  });
});
