import { describe, expect, it } from 'vitest';
import { CloseCode, ErrorCode, msgpackCodec } from '../../protocol/index.ts';
import { useGateway } from '../support/gateway.ts';
import { connectHello, connectRaw, isMsg, isReply } from '../support/raw-client.ts';

const gw = await useGateway({ ws: { maxErrors: 5, maxFrameBytes: 4096 } });

describe('hostile input', () => {
  it('answers every kind of bad frame with a coded error and keeps the connection', async () => {
    const { c } = await connectHello(gw.url);
    const cases: [Buffer | string, number][] = [
      [Buffer.from([0x92, 0x01]), ErrorCode.BadFrame], // truncated msgpack
      [Buffer.from(msgpackCodec.encode([1, 2])), ErrorCode.InvalidFrame], // not a map
      ['{"t":"hello"}', ErrorCode.BadFrame], // text frame on a msgpack connection
      [Buffer.from(msgpackCodec.encode({ t: 'nope' })), ErrorCode.UnknownFrameType],
      [Buffer.from(msgpackCodec.encode({ t: 'pub', topic: 'a', extra: 1 })), ErrorCode.InvalidFrame],
    ];
    for (const [data, code] of cases) {
      c.sendRaw(data);
      await c.next((f) => f.t === 'error' && f.code === code && !c.frames.slice(0, -1).includes(f));
    }
    c.send({ t: 'ping', id: 1 });
    await c.next(isReply(1));
    c.close();
  });

  it('answers bad JSON on a JSON connection with 1000', async () => {
    const { c } = await connectHello(gw.url, 'json');
    c.sendRaw('{not json');
    expect(await c.next((f) => f.t === 'error')).toMatchObject({ code: ErrorCode.BadFrame });
    c.close();
  });

  it('refuses on a JSON connection an integer JSON would round (1001, like msgpack), and publishes nothing', async () => {
    const { c } = await connectHello(gw.url, 'json');
    c.send({ t: 'sub', id: 1, topic: 'bigint' });
    await c.next(isReply(1));
    c.sendRaw('{"t":"pub","id":2,"topic":"bigint","data":{"id":9007199254740993}}');
    expect(await c.next(isReply(2))).toMatchObject({ t: 'error', code: ErrorCode.InvalidFrame, message: expect.stringMatching(/9007199254740993/) });
    c.sendRaw('{"t":"pub","id":3,"topic":"bigint","data":{"id":"9007199254740993","n":9007199254740991}}');
    expect(await c.next(isMsg('bigint'))).toMatchObject({ seq: 1, data: { id: '9007199254740993', n: 9007199254740991 } });
    c.close();
  });

  it('refuses msgpack holding the never-used byte 0xc1 (1000) and relays nothing', async () => {
    const { c } = await connectHello(gw.url);
    c.send({ t: 'sub', id: 1, topic: 'c1' });
    await c.next(isReply(1));
    const head = msgpackCodec.encode({ t: 'pub', id: 2, topic: 'c1', kind: 'event' }) as Uint8Array;
    c.sendRaw(Buffer.from([0x85, ...head.subarray(1), 0xa4, 0x64, 0x61, 0x74, 0x61, 0x91, 0xc1]));
    expect(await c.next((f) => f.t === 'error')).toMatchObject({ code: ErrorCode.BadFrame });
    c.send({ t: 'pub', id: 3, topic: 'c1', data: 'after' });
    expect(await c.next(isMsg('c1'))).toMatchObject({ seq: 1, data: 'after' });
    c.close();
  });

  it('closes a connection that keeps sending invalid frames with 4503, others unaffected', async () => {
    const { c: good } = await connectHello(gw.url);
    good.send({ t: 'sub', id: 1, topic: 'calm' });
    await good.next(isReply(1));
    const { c: bad } = await connectHello(gw.url);
    for (let i = 0; i < 10; i++) bad.sendRaw(Buffer.from([0x92, 0x01]));
    expect((await bad.closed).code).toBe(CloseCode.TooManyErrors);
    good.send({ t: 'pub', id: 2, topic: 'calm', data: 'still here' });
    expect(await good.next(isMsg('calm'))).toMatchObject({ data: 'still here' });
    good.close();
  });

  it('answers a frame over the size limit with 1003 and publishes nothing', async () => {
    const { c } = await connectHello(gw.url);
    c.send({ t: 'sub', id: 1, topic: 'big' });
    await c.next(isReply(1));
    c.send({ t: 'pub', id: 2, topic: 'big', data: 'x'.repeat(5000) });
    expect(await c.next((f) => f.t === 'error')).toMatchObject({ code: ErrorCode.FrameTooLarge, id: 2 });
    c.send({ t: 'pub', id: 3, topic: 'big', data: 'small' });
    expect(await c.next(isMsg('big'))).toMatchObject({ seq: 1, data: 'small' });
    c.close();
  });

  it('cuts a socket that sends a frame far over the limit', async () => {
    const { c } = await connectHello(gw.url);
    c.send({ t: 'pub', topic: 'big', data: 'x'.repeat(20_000) });
    expect((await c.closed).code).toBe(1006); // uWS drops it without reading the frame
  });

  it('survives clients vanishing with requests in flight', async () => {
    for (let i = 0; i < 20; i++) {
      const { c } = await connectHello(gw.url);
      c.send({ t: 'sub', id: 1, topic: `gone.${i % 3}` });
      c.send({ t: 'pub', id: 2, topic: `gone.${i % 3}`, data: i });
      c.send({ t: 'history', id: 3, topic: `gone.${i % 3}`, limit: 5 });
      c.ws.terminate();
    }
    const { c } = await connectHello(gw.url);
    c.send({ t: 'sub', id: 1, topic: 'gone.0' });
    expect(await c.next(isReply(1))).toMatchObject({ t: 'subscribed' });
    c.close();
    const health = await fetch(`${gw.httpUrl}/healthz`);
    expect(health.status).toBe(200);
  });
});

it('connects directly with raw bytes and still needs hello', async () => {
  const c = await connectRaw(gw.url);
  c.sendRaw(Buffer.from(msgpackCodec.encode({ t: 'pub', topic: 'x', data: 1 })));
  expect(await c.next((f) => f.t === 'error')).toMatchObject({ code: ErrorCode.HandshakeRequired });
  c.close();
});
