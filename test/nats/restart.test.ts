/**
 * Fault test: the single NATS node is killed (SIGKILL) and restarted on the same store. The engine
 * reports degraded, then ready, and delivers exactly once and in order everything JetStream
 * stored, including what others published while it was still reconnecting. A publish made during
 * the outage completes once NATS is back (within the publish timeout).
 */
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { connect } from 'nats';
import { encodeEnvelope } from '../../gateway/bus/nats/codec.ts';
import { startNatsServer, type NatsServer } from '../support/nats-server.ts';
import { Buses } from './support.ts';

let server: NatsServer;
const buses = new Buses();

beforeAll(async () => {
  server = await startNatsServer();
});
afterEach(() => buses.closeAll());
afterAll(async () => {
  await server?.cleanup();
});

it('survives kill -9 and restart of NATS without losing or repeating a message', async () => {
  const prefix = `restart${process.pid}`;
  const topic = 'restart.room';
  const { bus, got, statuses, status } = await buses.start({ servers: server.url, prefix, publishTimeoutMs: 20_000 });
  await bus.watch(topic);
  const before = [];
  for (let i = 0; i < 3; i++) before.push(await bus.publish(topic, 'patch', { [`b${i}`]: i }));
  await got.count(topic, 3);
  const epoch = bus.epoch();

  await server.kill();
  await status('degraded');
  // Published while NATS is down: resolves once NATS is back and the message is stored.
  const during = bus.publish(topic, 'patch', { during: true });

  await server.restart();
  // Another publisher gets in first (it connects at once; the engine is still backing off).
  const other = await connect({ servers: server.url });
  const js = other.jetstream();
  const meanwhile = [];
  for (let i = 0; i < 3; i++) meanwhile.push(await js.publish(`${prefix}.in.${topic}`, encodeEnvelope('patch', { [`m${i}`]: i }, Date.now())));
  await other.close();

  await status('ready');
  const duringAck = await during;
  expect(duringAck.epoch).toBe(epoch);
  const all = [...before.map((a) => a.seq), ...meanwhile.map((a) => a.seq), duringAck.seq].sort((x, y) => x - y);
  await got.count(topic, all.length, 20_000);
  const ms = got.of(topic);
  expect(ms.map((m) => m.seq)).toEqual(all);
  expect(ms.map((m) => m.prev)).toEqual([0, ...all.slice(0, -1)]);
  expect(statuses).toContain('degraded');
  expect(bus.epoch()).toBe(epoch); // same stream, restored from its store
  expect((await bus.recover(topic, undefined)).state).toEqual({ b0: 0, b1: 1, b2: 2, m0: 0, m1: 1, m2: 2, during: true });
  // Still live, and no duplicates show up afterwards.
  const after = await bus.publish(topic, 'event', 'after');
  await got.count(topic, all.length + 1);
  expect(got.of(topic).at(-1)!.seq).toBe(after.seq);
  expect(got.of(topic)).toHaveLength(all.length + 1);
});
