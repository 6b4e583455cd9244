/**
 * Fault test on a 3-node JetStream cluster with replicas 3: the stream leader is killed (SIGKILL)
 * while a gateway publishes and another watches. Publishes carry on through the leader election
 * (retried with the same message id, so stored once), every message is delivered exactly once
 * and in order, and the epoch does not change (same stream, new leader).
 */
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { connect, type NatsConnection } from 'nats';
import type { PublishResult } from '../../gateway/bus/bus.ts';
import { startNatsCluster, type NatsCluster } from '../support/nats-server.ts';
import { Buses } from './support.ts';

let cluster: NatsCluster;
let admin: NatsConnection;
const buses = new Buses();

beforeAll(async () => {
  cluster = await startNatsCluster(3);
  admin = await connect({ servers: [...cluster.urls] });
});
afterEach(() => buses.closeAll());
afterAll(async () => {
  await admin?.close().catch(() => {});
  await cluster?.cleanup();
});

it('keeps publishing and delivering when the stream leader is killed', async () => {
  const prefix = `cluster${process.pid}`;
  const topic = 'cluster.room';
  const servers = [...cluster.urls];
  const publisher = await buses.start({ servers, prefix, replicas: 3, publishTimeoutMs: 30_000, connectTimeoutMs: 30_000 });
  const watcher = await buses.start({ servers: [...servers].reverse(), prefix, replicas: 3, connectTimeoutMs: 30_000 });
  await watcher.bus.watch(topic);

  const jsm = await admin.jetstreamManager();
  const info = await jsm.streams.info(`${prefix}_topics`);
  expect(info.config.num_replicas).toBe(3);
  expect(info.cluster?.replicas?.length).toBe(2);
  const epoch = publisher.bus.epoch();

  const acks: PublishResult[] = [];
  for (let i = 0; i < 5; i++) acks.push(await publisher.bus.publish(topic, 'patch', { [`k${i}`]: i }));
  await watcher.got.count(topic, 5);

  const leader = cluster.nodes.find((n) => n.name === info.cluster?.leader);
  expect(leader).toBeDefined();
  const killedAt = Date.now();
  await leader!.kill();
  // Publish straight through the election: each call retries until a new leader stores it.
  for (let i = 5; i < 15; i++) acks.push(await publisher.bus.publish(topic, 'patch', { [`k${i}`]: i }));
  const failoverMs = Date.now() - killedAt;

  const seqs = acks.map((a) => a.seq);
  for (let i = 1; i < seqs.length; i++) expect(seqs[i]).toBeGreaterThan(seqs[i - 1]!);
  expect(new Set(acks.map((a) => a.epoch))).toEqual(new Set([epoch]));
  await watcher.got.count(topic, 15, 30_000);
  const ms = watcher.got.of(topic);
  expect(ms.map((m) => m.seq)).toEqual(seqs);
  expect(ms.map((m) => m.prev)).toEqual([0, ...seqs.slice(0, -1)]);
  const expected = Object.fromEntries(Array.from({ length: 15 }, (_, i) => [`k${i}`, i]));
  expect((await watcher.bus.recover(topic, undefined)).state).toEqual(expected);
  expect((await watcher.bus.recover(topic, { seq: seqs[4]!, epoch })).replay.map((m) => m.seq)).toEqual(seqs.slice(5));
  await publisher.status('ready');
  await watcher.status('ready');
  expect(watcher.bus.epoch()).toBe(epoch);
  console.info(`cluster failover: 10 publishes through a leader kill took ${failoverMs} ms (publish retries: ${publisher.bus.stats().publishRetries})`);
}, 90_000);
