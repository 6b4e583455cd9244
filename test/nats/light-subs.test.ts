/**
 * Light core subscriptions (gateway/bus/nats/light-subs.ts) on a real nats-server: they use
 * nats.js internals, so these tests pin the light path to the nats.js version installed: it must
 * be the one taken, deliver to each subscription's own target through the one handler, stop on
 * `stop()`, come back after a nats-server restart (nats.js sends the SUB again), and end with the
 * connection.
 */
import { connect, type Msg, type NatsConnection } from 'nats';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { lightSubscriber } from '../../gateway/bus/nats/light-subs.ts';
import { startNatsServer, type NatsServer } from '../support/nats-server.ts';

let server: NatsServer;

beforeAll(async () => {
  server = await startNatsServer();
});
afterAll(async () => {
  await server?.cleanup();
});

/** Messages per target, and a bounded wait for a count. */
function inboxes() {
  const got = new Map<string, string[]>();
  const handler = (target: string, msg: Msg) => {
    const list = got.get(target) ?? [];
    got.set(target, [...list, msg.string()]);
  };
  const until = async (ok: () => boolean, what: string, ms = 10_000) => {
    const deadline = Date.now() + ms;
    while (!ok()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify([...got])}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  };
  return { got, handler, until };
}

/** A round trip through the server: everything published before it has been routed. */
const roundTrip = (nc: NatsConnection) => nc.flush();

it('delivers to each subscription its own target, and nothing after stop()', async () => {
  const nc = await connect({ servers: server.url });
  const pub = await connect({ servers: server.url });
  try {
    const { got, handler, until } = inboxes();
    const subs = lightSubscriber(nc, handler);
    expect(subs.light).toBe(true); // the nats.js internals it relies on are there
    const a = subs.subscribe('light.a', 'A');
    subs.subscribe('light.b', 'B');
    await roundTrip(nc);
    pub.publish('light.a', '1');
    pub.publish('light.b', '2');
    pub.publish('light.a', '3');
    await until(() => got.get('A')?.length === 2 && got.get('B')?.length === 1, 'three messages');
    expect(got.get('A')).toEqual(['1', '3']);
    expect(got.get('B')).toEqual(['2']);

    a.stop();
    a.stop(); // idempotent
    await roundTrip(nc);
    pub.publish('light.a', '4');
    pub.publish('light.b', '5');
    await until(() => got.get('B')?.length === 2, 'the message after the stop');
    expect(got.get('A')).toEqual(['1', '3']);
  } finally {
    await pub.close();
    await nc.close();
  }
});

it('subscribes again after nats-server restarts', async () => {
  const nc = await connect({ servers: server.url, reconnectTimeWait: 100, maxReconnectAttempts: -1 });
  try {
    const { got, handler, until } = inboxes();
    const subs = lightSubscriber(nc, handler);
    subs.subscribe('light.r', 'R');
    const stopped = subs.subscribe('light.s', 'S');
    stopped.stop();
    await roundTrip(nc);
    const reconnected = (async () => {
      for await (const s of nc.status()) if (s.type === 'reconnect') return;
    })();
    await server.kill();
    await server.restart();
    await Promise.race([reconnected, new Promise((_, reject) => setTimeout(() => reject(new Error('no reconnect within 15 s')), 15_000).unref())]);
    const pub = await connect({ servers: server.url });
    try {
      // The resent SUB may reach the server just after the reconnect event: publish until one arrives.
      await until(() => {
        pub.publish('light.r', 'again');
        pub.publish('light.s', 'no');
        return (got.get('R')?.length ?? 0) > 0;
      }, 'a message after the restart');
      await roundTrip(pub);
      await roundTrip(nc);
      expect(got.get('S')).toBeUndefined(); // a stopped subscription is not resent
    } finally {
      await pub.close();
    }
  } finally {
    await nc.close();
  }
});

it('ends with its connection: nothing is delivered once it is closed', async () => {
  const nc = await connect({ servers: server.url });
  const { got, handler } = inboxes();
  const subs = lightSubscriber(nc, handler);
  const s = subs.subscribe('light.c', 'C');
  await nc.close();
  s.stop(); // after the close: no error
  expect(() => subs.subscribe('light.c', 'C2')).toThrow(/closed/);
  expect(got.size).toBe(0);
});
