import { describe, expect, it } from 'vitest';
import { ErrorCode, type MsgFrame, type ServerFrame, type SubscribedFrame } from '../../protocol/index.ts';
import { useGateway } from '../support/gateway.ts';
import { connectHello, isMsg, isReply } from '../support/raw-client.ts';

const gw = await useGateway();

async function subscribe(c: Awaited<ReturnType<typeof connectHello>>['c'], id: number, topic: string, since?: object) {
  c.send({ t: 'sub', id, topic, ...(since ? { since } : {}) });
  return c.next<SubscribedFrame>((f) => f.t === 'subscribed' && f.id === id);
}

describe('publish and subscribe', () => {
  it('delivers a client publish to subscribers of both encodings, in order, with acks', async () => {
    const { c: bin } = await connectHello(gw.url, 'msgpack');
    const { c: text } = await connectHello(gw.url, 'json');
    await subscribe(bin, 1, 'room.a');
    await subscribe(text, 1, 'room.a');
    for (let i = 1; i <= 20; i++) bin.send({ t: 'pub', id: 100 + i, topic: 'room.a', data: { n: i } });
    const acks = await bin.collect((f) => f.t === 'ack', 20);
    expect(acks.map((a) => (a as { seq: number }).seq)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    for (const c of [bin, text]) {
      const msgs = (await c.collect(isMsg('room.a'), 20)) as MsgFrame[];
      expect(msgs.map((m) => m.data)).toEqual(Array.from({ length: 20 }, (_, i) => ({ n: i + 1 })));
      msgs.forEach((m, i) => expect([m.seq, m.prev, m.kind]).toEqual([i + 1, i, 'event']));
    }
    bin.close();
    text.close();
  });

  it('does not deliver other topics', async () => {
    const { c } = await connectHello(gw.url);
    await subscribe(c, 1, 'iso.one');
    c.send({ t: 'pub', id: 2, topic: 'iso.two', data: 'x' });
    c.send({ t: 'pub', id: 3, topic: 'iso.one', data: 'y' });
    await c.next(isMsg('iso.one'));
    await c.next(isReply(2));
    expect(c.frames.filter(isMsg('iso.two'))).toEqual([]);
    c.close();
  });

  it('gives a late subscriber the state snapshot after set and patches (JSON Merge Patch)', async () => {
    const { c: pub } = await connectHello(gw.url);
    pub.send({ t: 'pub', id: 1, topic: 'doc.1', kind: 'set', data: { title: 'a', tags: { x: 1 } } });
    pub.send({ t: 'pub', id: 2, topic: 'doc.1', kind: 'patch', data: { tags: { y: 2, x: null }, n: 3 } });
    pub.send({ t: 'pub', id: 3, topic: 'doc.1', kind: 'event', data: 'ignored by state' });
    await pub.next(isReply(3));
    const { c } = await connectHello(gw.url, 'json');
    const sub = await subscribe(c, 1, 'doc.1');
    expect(sub).toMatchObject({ seq: 3, recovered: false, wasRecovering: false, state: { title: 'a', tags: { y: 2 }, n: 3 } });
    pub.close();
    c.close();
  });

  it('stops delivery after unsubscribe and rejects a second unsubscribe', async () => {
    const { c } = await connectHello(gw.url);
    await subscribe(c, 1, 'u.t');
    c.send({ t: 'unsub', id: 2, topic: 'u.t' });
    expect(await c.next(isReply(2))).toEqual({ t: 'unsubscribed', id: 2, topic: 'u.t' });
    c.send({ t: 'pub', id: 3, topic: 'u.t', data: 1 });
    await c.next(isReply(3));
    c.send({ t: 'unsub', id: 4, topic: 'u.t' });
    expect(await c.next(isReply(4))).toMatchObject({ t: 'error', code: ErrorCode.NotSubscribed });
    expect(c.frames.filter(isMsg('u.t'))).toEqual([]);
    c.close();
  });

  it('rejects a duplicate subscription and bad topics with coded errors', async () => {
    const { c } = await connectHello(gw.url);
    await subscribe(c, 1, 'dup');
    c.send({ t: 'sub', id: 2, topic: 'dup' });
    expect(await c.next(isReply(2))).toMatchObject({ t: 'error', code: ErrorCode.AlreadySubscribed, topic: 'dup' });
    for (const [i, topic] of ['a..b', 'a.*', '', 'x'.repeat(300), 'sp ace'].entries()) {
      c.send({ t: 'sub', id: 10 + i, topic });
      expect(await c.next(isReply(10 + i))).toMatchObject({ t: 'error', code: ErrorCode.BadTopic });
    }
    c.close();
  });

  it('returns history with limit and a completeness flag', async () => {
    const { c } = await connectHello(gw.url);
    for (let i = 1; i <= 5; i++) c.send({ t: 'pub', id: i, topic: 'h.t', data: i });
    await c.next(isReply(5));
    c.send({ t: 'history', id: 9, topic: 'h.t', since: 2, limit: 2 });
    const h = (await c.next(isReply(9))) as Extract<ServerFrame, { t: 'history' }>;
    expect(h).toMatchObject({ t: 'history', seq: 5, complete: true });
    expect(h.messages.map((m) => m.data)).toEqual([3, 4]);
    c.close();
  });
});

describe('client publish disabled', async () => {
  const locked = await useGateway({ clientPublish: false });
  it('answers 2003 and publishes nothing', async () => {
    const { c } = await connectHello(locked.url);
    await subscribe(c, 1, 'ro');
    c.send({ t: 'pub', id: 2, topic: 'ro', data: 1 });
    expect(await c.next(isReply(2))).toMatchObject({ t: 'error', code: ErrorCode.PublishNotAllowed });
    expect(c.frames.filter(isMsg('ro'))).toEqual([]);
    c.close();
  });
});

describe('conditional publish', () => {
  it('`expect` stores only at the expected sequence; a stale one gets 2008 with the current seq and stores nothing', async () => {
    const { c } = await connectHello(gw.url, 'json');
    await subscribe(c, 1, 'cas.ws');
    c.send({ t: 'pub', id: 2, topic: 'cas.ws', kind: 'set', data: { v: 1 }, expect: 0 });
    expect(await c.next(isReply(2))).toMatchObject({ t: 'ack', seq: 1 });
    c.send({ t: 'pub', id: 3, topic: 'cas.ws', kind: 'set', data: { v: 'stale' }, expect: 0 });
    expect(await c.next(isReply(3))).toMatchObject({ t: 'error', code: ErrorCode.SequenceConflict, topic: 'cas.ws', seq: 1 });
    c.send({ t: 'pub', id: 4, topic: 'cas.ws', kind: 'set', data: { v: 2 }, expect: 1 });
    expect(await c.next(isReply(4))).toMatchObject({ t: 'ack', seq: 2 });
    const msgs = (await c.collect(isMsg('cas.ws'), 2)) as MsgFrame[];
    expect(msgs.map((m) => m.data)).toEqual([{ v: 1 }, { v: 2 }]);
    c.close();
  });
});
