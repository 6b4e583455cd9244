import { afterAll, describe, expect, it } from 'vitest';
import type { MsgFrame, SubscribedFrame } from '../../protocol/index.ts';
import { useGateway } from '../support/gateway.ts';
import { startNatsServer } from '../support/nats-server.ts';
import { connectHello, isMsg, isReply } from '../support/raw-client.ts';

const gw = await useGateway({ bus: { history: { size: 10 } } });

async function sub(c: Awaited<ReturnType<typeof connectHello>>['c'], id: number, topic: string, since?: object) {
  c.send({ t: 'sub', id, topic, ...(since ? { since } : {}) });
  return c.next<SubscribedFrame>((f) => f.t === 'subscribed' && f.id === id);
}

describe('resume on the same gateway', () => {
  it('replays exactly the messages missed while disconnected (recovered)', async () => {
    const { c: pub } = await connectHello(gw.url);
    const first = await connectHello(gw.url);
    const s = await sub(first.c, 1, 'r.a');
    for (let i = 1; i <= 3; i++) pub.send({ t: 'pub', id: i, topic: 'r.a', data: i });
    const seen = (await first.c.collect(isMsg('r.a'), 3)) as MsgFrame[];
    first.c.ws.terminate(); // network loss: no close frame
    await first.c.closed;
    for (let i = 4; i <= 8; i++) pub.send({ t: 'pub', id: i, topic: 'r.a', data: i });
    await pub.next(isReply(8));

    const last = seen[seen.length - 1]!;
    const again = await connectHello(gw.url, 'msgpack', { id: first.welcome.session, key: first.welcome.key });
    expect(again.welcome.resumed).toBe(true);
    const r = await sub(again.c, 1, 'r.a', { seq: last.seq, epoch: s.epoch });
    expect(r).toMatchObject({ wasRecovering: true, recovered: true, seq: 8 });
    expect(r.replay!.map((m) => m.data)).toEqual([4, 5, 6, 7, 8]);
    expect(r.replay![0]!.prev).toBe(last.seq);
    // and live delivery continues after the replay
    pub.send({ t: 'pub', id: 9, topic: 'r.a', data: 9 });
    expect((await again.c.next(isMsg('r.a'))) as MsgFrame).toMatchObject({ seq: 9, prev: 8, data: 9 });
    pub.close();
    again.c.close();
  });

  it('reports recovered=false with a fresh snapshot when history overflowed', async () => {
    const { c: pub } = await connectHello(gw.url);
    pub.send({ t: 'pub', id: 1, topic: 'r.b', kind: 'set', data: { v: 0 } });
    const { c } = await connectHello(gw.url);
    const s = await sub(c, 1, 'r.b');
    c.ws.terminate();
    for (let i = 2; i <= 30; i++) pub.send({ t: 'pub', id: i, topic: 'r.b', kind: 'patch', data: { v: i } });
    await pub.next(isReply(30));
    const { c: again } = await connectHello(gw.url);
    const r = await sub(again, 1, 'r.b', { seq: s.seq, epoch: s.epoch });
    expect(r).toMatchObject({ wasRecovering: true, recovered: false, seq: 30, state: { v: 30 } });
    expect(r.replay).toBeUndefined();
    pub.close();
    again.close();
  });

  it('reports recovered=false for a position from another epoch', async () => {
    const { c } = await connectHello(gw.url);
    const r = await sub(c, 1, 'r.c', { seq: 0, epoch: 'not-this-one' });
    expect(r).toMatchObject({ wasRecovering: true, recovered: false });
    c.close();
  });

  it('recovers nothing-missed as recovered with an empty replay', async () => {
    const { c: pub } = await connectHello(gw.url);
    pub.send({ t: 'pub', id: 1, topic: 'r.d', data: 1 });
    const ack = (await pub.next(isReply(1))) as { seq: number; epoch: string };
    const { c } = await connectHello(gw.url);
    const r = await sub(c, 1, 'r.d', { seq: ack.seq, epoch: ack.epoch });
    expect(r).toMatchObject({ recovered: true, replay: [] });
    pub.close();
    c.close();
  });
});

// Both engines: the NATS stream keeps the widest window and applies each namespace's on read.
const natsServer = await startNatsServer();
afterAll(() => natsServer.cleanup());

for (const engine of ['memory', 'nats'] as const) {
  describe(`per-namespace retention (${engine} bus)`, async () => {
    const ns = await useGateway({
      bus: { engine, history: { size: 100 }, nats: { servers: [natsServer.url], prefix: `resume_ns_${process.pid}` } },
      namespaces: { brief: { history: { size: 3 } } },
    });
    it('keeps only its namespace history size for its topics, the default elsewhere', async () => {
      const { c: pub } = await connectHello(ns.url);
      for (const topic of ['brief.t', 'long.t']) {
        const acks: Array<{ seq: number; epoch: string }> = [];
        for (let i = 1; i <= 6; i++) {
          pub.send({ t: 'pub', id: i, topic, data: i });
          acks.push((await pub.next((f) => f.t === 'ack' && f.id === i)) as { seq: number; epoch: string });
        }
        const { c } = await connectHello(ns.url);
        // Five messages after the first: more than `brief` keeps, well within the default.
        const r = await sub(c, 9, topic, { seq: acks[0]!.seq, epoch: acks[0]!.epoch });
        expect(r.recovered).toBe(topic === 'long.t');
        const { c: c2 } = await connectHello(ns.url);
        const inside = await sub(c2, 10, topic, { seq: acks[3]!.seq, epoch: acks[3]!.epoch });
        expect(inside.recovered).toBe(true);
        c.close();
        c2.close();
        pub.frames.length = 0;
      }
      pub.close();
    });
  });
}
