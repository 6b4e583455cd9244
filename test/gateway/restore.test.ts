/**
 * `hello.restore`: a resumed session's subscriptions are restored by the server, without `sub`
 * frames, from the positions the client presents. Both engines; on NATS the session resumes on
 * another gateway of the deployment.
 */
import { afterAll, describe, expect, it } from 'vitest';
import type { MsgFrame, ServerFrame, SubscribedFrame } from '../../protocol/index.ts';
import { useGateway } from '../support/gateway.ts';
import { startNatsServer } from '../support/nats-server.ts';
import { connectHello, connectRaw, isMsg, isReply } from '../support/raw-client.ts';
import { hs256, SECRET } from '../security/support/tokens.ts';

const natsServer = await startNatsServer();
afterAll(() => natsServer.cleanup());

type Ack = { seq: number; epoch: string };
let n = 0;

for (const engine of ['memory', 'nats'] as const) {
  describe(`hello.restore (${engine} bus)`, async () => {
    // `priv` needs a subscription token, which a restore cannot present (the client sends its own `sub`).
    const config = {
      bus: { engine, nats: { servers: [natsServer.url], prefix: `restore_${process.pid}_${engine}` } },
      auth: { secret: SECRET },
      namespaces: { priv: { subscribe: 'token' as const } },
    };
    const a = await useGateway(config);
    // A second gateway of the same deployment (the memory engine is one node: the same one).
    const b = engine === 'nats' ? await useGateway(config) : a;

    it('re-subscribes every topic of the resumed session, replaying from the positions given', async () => {
      const events = `rs.events-${++n}`;
      const doc = `rs.doc-${n}`;
      const { c: pub } = await connectHello(a.url);
      let id = 0;
      const publish = async (topic: string, data: unknown, kind = 'event'): Promise<Ack> => {
        pub.send({ t: 'pub', id: ++id, topic, kind, data });
        return (await pub.next(isReply(id))) as Ack;
      };
      const first = await connectHello(a.url);
      for (const [i, topic] of [events, doc].entries()) {
        first.c.send({ t: 'sub', id: i + 1, topic });
        await first.c.next((f) => f.t === 'subscribed' && f.topic === topic);
      }
      await publish(doc, { n: 0 }, 'set');
      for (let i = 1; i <= 2; i++) await publish(events, i);
      const seen = (await first.c.collect(isMsg(events), 2)) as MsgFrame[];
      first.c.ws.terminate(); // network loss: no close frame
      await first.c.closed;
      const missed: Ack[] = [];
      for (let i = 3; i <= 5; i++) missed.push(await publish(events, i));
      const lastDoc = await publish(doc, { more: true }, 'patch');

      const c = await connectRaw(b.url);
      const last = seen.at(-1)!;
      c.send({
        t: 'hello',
        v: 1,
        session: { id: first.welcome.session, key: first.welcome.key },
        restore: { since: { [events]: { seq: last.seq, epoch: missed[0]!.epoch } } },
      });
      const welcome = (await c.next((f) => f.t === 'welcome')) as Extract<ServerFrame, { t: 'welcome' }>;
      expect(welcome.resumed).toBe(true);
      expect([...welcome.topics!].sort()).toEqual([doc, events].sort());

      // With a position: everything after it, exactly once. Without: a fresh snapshot.
      const re = (await c.next((f) => f.t === 'subscribed' && f.topic === events)) as SubscribedFrame;
      expect(re.id).toBeUndefined();
      expect(re).toMatchObject({ wasRecovering: true, recovered: true, seq: missed.at(-1)!.seq });
      expect(re.replay!.map((m) => m.data)).toEqual([3, 4, 5]);
      expect(re.replay![0]!.prev).toBe(last.seq);
      const rd = (await c.next((f) => f.t === 'subscribed' && f.topic === doc)) as SubscribedFrame;
      expect(rd).toMatchObject({ wasRecovering: false, recovered: false, seq: lastDoc.seq, state: { n: 0, more: true } });

      // Live delivery goes on; the topics are this socket's subscriptions now.
      const next = await publish(events, 6);
      expect(await c.next(isMsg(events))).toMatchObject({ seq: next.seq, prev: missed.at(-1)!.seq, data: 6 });
      c.send({ t: 'sub', id: 7, topic: events });
      expect(await c.next(isReply(7))).toMatchObject({ t: 'error', code: 2002 });
      c.send({ t: 'unsub', id: 8, topic: doc });
      expect(await c.next(isReply(8))).toMatchObject({ t: 'unsubscribed', topic: doc });
      pub.close();
      c.close();
    });

    it('a restore that fails is an error with the topic and no id; the topic is then not subscribed, and a sub for it is accepted', async () => {
      const priv = `priv.room-${++n}`;
      const open = `rs.open-${n}`;
      const token = await hs256({ topic: priv });
      const first = await connectHello(a.url);
      first.c.send({ t: 'sub', id: 1, topic: priv, token });
      first.c.send({ t: 'sub', id: 2, topic: open });
      await first.c.next(isReply(1));
      await first.c.next(isReply(2));
      first.c.send({ t: 'pub', id: 3, topic: priv, data: 'seen' });
      const seen = (await first.c.next(isReply(3))) as Ack;
      first.c.ws.terminate();
      await first.c.closed;
      const { c: pub } = await connectHello(a.url);
      pub.send({ t: 'pub', id: 1, topic: priv, data: 'missed' });
      const missed = (await pub.next(isReply(1))) as Ack;

      const c = await connectRaw(b.url);
      const since = { seq: seen.seq, epoch: seen.epoch };
      c.send({ t: 'hello', v: 1, session: { id: first.welcome.session, key: first.welcome.key }, restore: { since: { [priv]: since } } });
      expect(await c.next((f) => f.t === 'welcome')).toMatchObject({ resumed: true });
      // The restore has no subscription token to present: refused, naming the topic, without an id.
      const refused = await c.next((f) => f.t === 'error' && f.topic === priv);
      expect(refused).toMatchObject({ code: 3001, topic: priv });
      expect(refused).not.toHaveProperty('id');
      expect(await c.next((f) => f.t === 'subscribed' && f.topic === open)).toMatchObject({ recovered: false });
      // The client subscribes itself, from its position: accepted (not 2002), nothing lost.
      c.send({ t: 'sub', id: 9, topic: priv, since, token });
      const re = (await c.next(isReply(9))) as SubscribedFrame;
      expect(re).toMatchObject({ t: 'subscribed', topic: priv, recovered: true });
      expect(re.replay!.map((m) => [m.seq, m.data])).toEqual([[missed.seq, 'missed']]);
      pub.close();
      c.close();
    });

    it('restores nothing when the session is not resumed', async () => {
      const c = await connectRaw(b.url);
      c.send({ t: 'hello', v: 1, session: { id: 'no-such-session', key: 'nope' }, restore: {} });
      const welcome = (await c.next((f) => f.t === 'welcome')) as Extract<ServerFrame, { t: 'welcome' }>;
      expect(welcome.resumed).toBe(false);
      c.send({ t: 'ping', id: 1 });
      await c.next(isReply(1));
      expect(c.frames.filter((f) => f.t === 'subscribed')).toEqual([]);
      c.close();
    });

    it('refuses a malformed restore with a coded error', async () => {
      const c = await connectRaw(b.url);
      c.send({ t: 'hello', v: 1, restore: { since: { 'bad topic!': { seq: 1, epoch: 'e' } } } });
      expect(await c.next((f) => f.t === 'error')).toMatchObject({ t: 'error', code: 1001 });
      c.close();
    });
  });
}
