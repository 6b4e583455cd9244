/**
 * The server-side publisher without servers: topic and data checks (the gateway's rules), the
 * FallbackTransport's rule (next transport only when the current one sent nothing), the HTTP
 * transport refusing binary data, the options that pick the transports, and the NATS transport's
 * retry, epoch and "unreachable" rules over a fake NATS connection.
 */
import { describe, expect, it, vi } from 'vitest';
import { decodeEnvelope, encodeEnvelope, epochFromCreated } from '../../protocol/envelope.ts';
import { MAX_DATA_DEPTH } from '../../protocol/frames.ts';
import {
  ConnectionClosedError,
  ErrorCode,
  FallbackTransport,
  HttpPublishTransport,
  NatsPublishTransport,
  SymphonicError,
  SymphonicPublisher,
  TimeoutError,
  TransportUnavailableError,
  type NatsTransportOptions,
  type PublishRequest,
  type PublishTransport,
} from '../../sdk/server/index.ts';
import { FakeNats } from './helpers/fake-nats.ts';

/** A transport that records requests and answers with `answer` (a value or a thrown error). */
function fake(answer: (req: PublishRequest) => { seq: number; epoch: string } | Error): PublishTransport & { calls: PublishRequest[]; closed: number } {
  const t = {
    calls: [] as PublishRequest[],
    closed: 0,
    async publish(req: PublishRequest) {
      t.calls.push(req);
      const a = answer(req);
      if (a instanceof Error) throw a;
      return a;
    },
    async close() {
      t.closed++;
    },
  };
  return t;
}

const ok =
  (seq = 1) =>
  () => ({ seq, epoch: 'e1' });

describe('SymphonicPublisher checks what it publishes, whatever the transport', () => {
  it('set / patch / event pass kind, topic and data through and return the ack', async () => {
    const t = fake(ok(7));
    const p = new SymphonicPublisher({ transport: t });
    await expect(p.set('a.b', { x: 1 })).resolves.toEqual({ seq: 7, epoch: 'e1' });
    await p.patch('a.b', { x: null });
    await p.event('a.b', new Uint8Array([1, 2]));
    await p.publish('a.b', undefined);
    expect(t.calls).toEqual([
      { topic: 'a.b', kind: 'set', data: { x: 1 } },
      { topic: 'a.b', kind: 'patch', data: { x: null } },
      { topic: 'a.b', kind: 'event', data: new Uint8Array([1, 2]) },
      { topic: 'a.b', kind: 'event', data: null }, // absent data is null, as on the wire
    ]);
  });

  it('refuses bad topics, kinds and data (as the gateway would) without calling the transport', async () => {
    const t = fake(ok());
    const p = new SymphonicPublisher({ transport: t });
    for (const topic of ['', 'a b', 'a.*', 'a..b', 'x'.repeat(201)]) {
      await expect(p.event(topic, 1)).rejects.toMatchObject({ code: ErrorCode.BadTopic });
    }
    let deep: unknown = 1;
    for (let i = 0; i <= MAX_DATA_DEPTH; i++) deep = [deep];
    for (const data of [Number.NaN, Infinity, 2n ** 64n, () => 1, Symbol('s'), new Date(), new Map(), { a: { b: undefined } }, deep]) {
      const err = await p.event('a.b', data).catch((e) => e);
      expect(err, String(data)).toBeInstanceOf(SymphonicError);
      expect(err.code).toBe(ErrorCode.InvalidPayload);
    }
    await expect(p.publish('a.b', 1, { kind: 'delete' as never })).rejects.toMatchObject({ code: ErrorCode.BadRequest });
    expect(t.calls).toEqual([]);
  });

  it('close() closes the transport', async () => {
    const t = fake(ok());
    await new SymphonicPublisher({ transport: t }).close();
    expect(t.closed).toBe(1);
  });

  it('options pick the transports: url -> HTTP, nats -> NATS, nats + url -> NATS falling back to HTTP', () => {
    expect(new SymphonicPublisher({ url: 'http://127.0.0.1:1' }).transport).toBeInstanceOf(HttpPublishTransport);
    expect(new SymphonicPublisher({ nats: { servers: 'nats://127.0.0.1:1' } }).transport).toBeInstanceOf(NatsPublishTransport);
    expect(new SymphonicPublisher({ nats: { servers: 'nats://127.0.0.1:1' }, url: 'http://127.0.0.1:1', apiKey: 'k' }).transport).toBeInstanceOf(
      FallbackTransport,
    );
    expect(() => new NatsPublishTransport({ servers: [] })).toThrow(TypeError);
    expect(() => new NatsPublishTransport({ servers: 'nats://x', prefix: 'a.b' })).toThrow(TypeError);
  });
});

describe('FallbackTransport', () => {
  it('uses the first transport while it works', async () => {
    const a = fake(ok(1));
    const b = fake(ok(2));
    const f = new FallbackTransport([a, b]);
    await expect(f.publish({ topic: 't', kind: 'event', data: 1 })).resolves.toEqual({ seq: 1, epoch: 'e1' });
    expect(b.calls).toEqual([]);
  });

  it('moves to the next transport only when the current one could not send (TransportUnavailableError)', async () => {
    const a = fake(() => new TransportUnavailableError('nats down'));
    const b = fake(ok(2));
    const onFallback = vi.fn();
    const f = new FallbackTransport([a, b], { onFallback });
    await expect(f.publish({ topic: 't', kind: 'set', data: 1 })).resolves.toEqual({ seq: 2, epoch: 'e1' });
    expect(b.calls).toEqual([{ topic: 't', kind: 'set', data: 1 }]);
    expect(onFallback).toHaveBeenCalledWith({ error: expect.any(TransportUnavailableError), from: 0, to: 1, topic: 't' });
  });

  it('does not resend a publish that may have been stored, nor one that was refused', async () => {
    for (const error of [
      new TimeoutError('no ack'),
      new ConnectionClosedError('closed before the ack'),
      new SymphonicError(ErrorCode.PayloadTooLarge, 'too big'),
      new SymphonicError(ErrorCode.Unavailable, 'no stream answers'),
    ]) {
      const b = fake(ok(2));
      const f = new FallbackTransport([fake(() => error), b]);
      await expect(f.publish({ topic: 't', kind: 'event', data: 1 })).rejects.toBe(error);
      expect(b.calls).toEqual([]);
    }
  });

  it('the last transport unreachable too: its error is thrown; close() closes all', async () => {
    const last = new TransportUnavailableError('http down');
    const a = fake(() => new TransportUnavailableError('nats down'));
    const b = fake(() => last);
    const f = new FallbackTransport([a, b]);
    await expect(f.publish({ topic: 't', kind: 'event', data: 1 })).rejects.toBe(last);
    await f.close();
    expect([a.closed, b.closed]).toEqual([1, 1]);
    expect(() => new FallbackTransport([])).toThrow(TypeError);
  });

  it('an unavailable transport error is a retryable 5001', () => {
    const e = new TransportUnavailableError('x', 't');
    expect(e).toBeInstanceOf(SymphonicError);
    expect(e).toMatchObject({ code: ErrorCode.Unavailable, topic: 't', retryable: true, name: 'TransportUnavailableError' });
  });
});

describe('HttpPublishTransport', () => {
  it('refuses binary data (JSON cannot carry it) before sending anything', async () => {
    const fetch = vi.fn();
    const t = new HttpPublishTransport({ url: 'http://gw', fetch: fetch as never });
    await expect(t.publish({ topic: 't', kind: 'event', data: { a: [new Uint8Array([1])] } })).rejects.toMatchObject({ code: ErrorCode.InvalidPayload });
    expect(fetch).not.toHaveBeenCalled();
  });

  it('a refused connection is "unavailable, not sent"; other network failures are not', async () => {
    const refused = Object.assign(new TypeError('fetch failed'), { cause: Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }) });
    const reset = Object.assign(new TypeError('fetch failed'), { cause: Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }) });
    const t1 = new HttpPublishTransport({ url: 'http://gw', fetch: (async () => Promise.reject(refused)) as never });
    await expect(t1.publish({ topic: 't', kind: 'event', data: 1 })).rejects.toBeInstanceOf(TransportUnavailableError);
    const t2 = new HttpPublishTransport({ url: 'http://gw', fetch: (async () => Promise.reject(reset)) as never });
    const err = await t2.publish({ topic: 't', kind: 'event', data: 1 }).catch((e) => e);
    expect(err).not.toBeInstanceOf(TransportUnavailableError);
    expect(err).toMatchObject({ code: ErrorCode.Unavailable });
  });
});

describe('NatsPublishTransport (fake NATS connection)', () => {
  const flush = () => new Promise((resolve) => setImmediate(resolve));
  function open(fake: FakeNats, options: Partial<NatsTransportOptions> = {}): NatsPublishTransport {
    return new NatsPublishTransport({ servers: 'nats://fake', connect: async () => fake.connection, ...options });
  }
  const req = (data: unknown = 1): PublishRequest => ({ topic: 'a.b', kind: 'event', data });

  it('publishes the envelope to <prefix>.in.<topic> with a message id, acked with the stream epoch', async () => {
    const fake = new FakeNats();
    const t = open(fake);
    const before = Date.now();
    await expect(t.publish({ topic: 'a.b', kind: 'patch', data: { x: 1, bin: new Uint8Array([9]) } })).resolves.toEqual({
      seq: 1,
      epoch: epochFromCreated(fake.created),
    });
    await expect(t.publish(req())).resolves.toEqual({ seq: 2, epoch: epochFromCreated(fake.created) });
    expect(fake.published.map((p) => p.subject)).toEqual(['symphonic.in.a.b', 'symphonic.in.a.b']);
    const env = decodeEnvelope(fake.published[0]!.data, 0);
    expect(env).toMatchObject({ kind: 'patch', data: { x: 1 } });
    expect([...(env.data as { bin: Uint8Array }).bin]).toEqual([9]); // msgpack bin (a Buffer in Node)
    expect(env.ts).toBeGreaterThanOrEqual(before);
    expect([...fake.published[0]!.data]).toEqual([...encodeEnvelope('patch', { x: 1, bin: new Uint8Array([9]) }, env.ts)]);
    expect(fake.published[0]!.msgID).not.toBe(fake.published[1]!.msgID);
    expect(fake.infoCalls).toBe(1); // the epoch is cached
    // The acks' subscription (nats-kit/js-writer.ts) and the stream advisories.
    expect(fake.subscriptions.sort()).toEqual(['$JS.EVENT.ADVISORY.STREAM.*.symphonic_topics', expect.stringMatching(/^_INBOX\.\w+\.\*$/)]);
    await t.close();
    expect(fake.connection.isClosed()).toBe(true);
    await expect(t.publish(req())).rejects.toBeInstanceOf(ConnectionClosedError);
  });

  it('retries no-responders and timeouts with the same message id (JetStream stores it once)', async () => {
    const fake = new FakeNats();
    fake.answers.push({ error: { code: '503' } }, { error: { code: 'TIMEOUT' } });
    await expect(open(fake).publish(req())).resolves.toMatchObject({ seq: 1 });
    expect(fake.published.length).toBe(3);
    expect(new Set(fake.published.map((p) => p.msgID)).size).toBe(1);
  });

  it('no responders until the deadline: Unavailable and not stored; timeouts: TimeoutError (may be stored). Neither is "unreachable"', async () => {
    const fake = new FakeNats();
    for (let i = 0; i < 1000; i++) fake.answers.push({ error: { code: '503' } });
    const e1 = await open(fake, { timeout: 150 })
      .publish(req())
      .catch((e) => e);
    expect(e1).not.toBeInstanceOf(TransportUnavailableError);
    expect(e1).toMatchObject({ code: ErrorCode.Unavailable });
    expect(e1.message).toMatch(/not stored/);

    const fake2 = new FakeNats();
    fake2.answers.push({ error: { code: '503' } });
    for (let i = 0; i < 1000; i++) fake2.answers.push({ error: { code: 'TIMEOUT' } });
    const e2 = await open(fake2, { timeout: 150 })
      .publish(req())
      .catch((e) => e);
    expect(e2).toBeInstanceOf(TimeoutError);
  });

  it('a publish the stream refuses is not retried; a subject stored by another stream is named', async () => {
    const fake = new FakeNats();
    fake.answers.push({ error: { message: 'maximum messages exceeded', api_error: { code: 400, err_code: 10054 } } });
    await expect(open(fake).publish(req())).rejects.toMatchObject({ code: ErrorCode.Internal });
    expect(fake.published.length).toBe(1);

    const other = new FakeNats();
    other.answers.push({ stream: 'elsewhere', seq: 5, duplicate: false, domain: '' });
    await expect(open(other).publish(req())).rejects.toThrow(/stored by stream elsewhere/);
  });

  it('while disconnected it fails at once without sending (TransportUnavailableError); after the reconnect it re-reads the epoch', async () => {
    const fake = new FakeNats();
    const t = open(fake);
    await t.publish(req());
    fake.status('disconnect');
    await flush();
    await expect(t.publish(req())).rejects.toBeInstanceOf(TransportUnavailableError);
    expect(fake.published.length).toBe(1);
    fake.created = '2026-02-03T04:05:06.5Z';
    fake.status('reconnect');
    await flush();
    await expect(t.publish(req())).resolves.toEqual({ seq: 2, epoch: epochFromCreated('2026-02-03T04:05:06.5Z') });
    expect(fake.infoCalls).toBe(2);
  });

  it('an ack below an earlier one means the stream was recreated: the epoch is read again before answering', async () => {
    const fake = new FakeNats();
    const t = open(fake);
    fake.seq = 41;
    const e1 = (await t.publish(req())).epoch;
    fake.seq = 0;
    fake.created = '2026-03-04T05:06:07Z';
    const again = await t.publish(req());
    expect(again).toEqual({ seq: 1, epoch: epochFromCreated('2026-03-04T05:06:07Z') });
    expect(again.epoch).not.toBe(e1);
  });

  it('uses the prefix for the subject and the stream', async () => {
    const fake = new FakeNats();
    fake.stream = 'prod_topics';
    await open(fake, { prefix: 'prod' }).publish(req());
    expect(fake.published[0]!.subject).toBe('prod.in.a.b');
  });
});
