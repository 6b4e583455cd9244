/**
 * NATS engine behaviour beyond the Bus contract, on a real single-node nats-server: live gap
 * repair, epoch change on stream recreation, cold start from a KV snapshot + tail, the state
 * keeper, deployments sharing a server, backends publishing the envelope directly, auth.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connect, type KV, type NatsConnection } from 'nats';
import { applyMessage, type MessageKind } from '../../protocol/index.ts';
import { decodeSnapshot, encodeEnvelope } from '../../gateway/bus/nats/codec.ts';
import { NatsBusError } from '../../gateway/bus/nats/index.ts';
import { startNatsServer, type NatsServer } from '../support/nats-server.ts';
import { Buses, eventually, lossyConnect } from './support.ts';

let server: NatsServer;
let admin: NatsConnection;
const buses = new Buses();
let n = 0;
const prefix = () => `eng${process.pid}_${++n}`;

beforeAll(async () => {
  server = await startNatsServer();
  admin = await connect({ servers: server.url });
});

afterEach(() => buses.closeAll());

afterAll(async () => {
  await admin?.close();
  await server?.cleanup();
});

type Op = readonly [MessageKind, unknown];
const fold = (ops: readonly Op[]) => ops.reduce<unknown>((s, [k, d]) => applyMessage(s, k, d), undefined);

/** Waits (on KV watch events, no polling) until the topic's snapshot reaches `seq`. */
async function snapshotAt(bucket: string, topic: string, seq: number, timeoutMs = 10_000): Promise<void> {
  const kv: KV = await admin.jetstream().views.kv(bucket, { bindOnly: true });
  const watch = await kv.watch({ key: topic });
  const timer = setTimeout(() => watch.stop(), timeoutMs);
  try {
    for await (const e of watch) {
      const rec = e.operation === 'PUT' ? decodeSnapshot(e.value) : undefined;
      if (rec && rec.seq >= seq) return;
    }
    throw new Error(`snapshot of ${topic} did not reach seq ${seq} within ${timeoutMs} ms`);
  } finally {
    clearTimeout(timer);
    watch.stop();
  }
}

describe('live path gap repair', () => {
  it('reads messages the subscription missed from the stream, before delivering what follows them', async () => {
    const lossy = lossyConnect();
    const { bus, got } = await buses.start({ servers: server.url, prefix: prefix(), connect: lossy.connect });
    const topic = 'gap.room';
    await bus.watch(topic);
    const ops: Op[] = [
      ['set', { a: 1 }],
      ['patch', { b: 2 }],
      ['event', 'e'],
      ['patch', { a: null }],
      ['patch', { c: 3 }],
    ];
    const acks = [await bus.publish(topic, ...ops[0]!)];
    await got.count(topic, 1);
    lossy.dropNext(3);
    for (const op of ops.slice(1)) acks.push(await bus.publish(topic, ...op));
    await got.count(topic, ops.length);
    expect(lossy.dropped).toEqual(acks.slice(1, 4).map((a) => a.seq));
    const ms = got.of(topic);
    expect(ms.map((m) => m.seq)).toEqual(acks.map((a) => a.seq));
    expect(ms.map((m) => m.prev)).toEqual([0, ...acks.slice(0, -1).map((a) => a.seq)]);
    expect(ms.map((m) => m.data)).toEqual(ops.map((o) => o[1]));
    const s = bus.stats();
    expect(s.repairs).toBeGreaterThanOrEqual(1);
    expect(s.repaired).toBe(3);
    expect(s.losses).toBe(0);
    const r = await bus.recover(topic, undefined);
    expect(r).toMatchObject({ seq: acks.at(-1)!.seq, state: fold(ops) });
    // No duplicates later: the next message is the next delivery.
    const next = await bus.publish(topic, 'event', 'next');
    await got.count(topic, ops.length + 1);
    expect(got.of(topic).at(-1)!.seq).toBe(next.seq);
    expect(got.of(topic)).toHaveLength(ops.length + 1);
  });

  it('makes a loss visible when the missed messages are no longer retained', async () => {
    const lossy = lossyConnect();
    const { bus, got } = await buses.start({ servers: server.url, prefix: prefix(), connect: lossy.connect, history: { size: 2 } });
    const topic = 'gap.lost';
    await bus.watch(topic);
    const first = await bus.publish(topic, 'event', 1);
    await got.count(topic, 1);
    lossy.dropNext(3);
    const acks = [];
    for (let i = 2; i <= 5; i++) acks.push(await bus.publish(topic, 'event', i));
    await got.count(topic, 3);
    const ms = got.of(topic);
    // m2 and m3 are gone from the stream (2 per topic): m4 comes with a prev that is not m1.
    expect(ms.map((m) => m.seq)).toEqual([first.seq, acks[2]!.seq, acks[3]!.seq]);
    expect(ms[1]!.prev).not.toBe(first.seq);
    expect(ms[2]!.prev).toBe(acks[2]!.seq);
    expect(bus.stats().losses).toBe(1);
    // A reader at m1 asking to resume is told it cannot.
    const r = await bus.recover(topic, { seq: first.seq, epoch: first.epoch });
    expect(r.recovered).toBe(false);
  });
});

describe('deployments and publishers', () => {
  it('gateways of one deployment see each other; another prefix sees nothing; close stops delivery', async () => {
    const p = prefix();
    const a = await buses.start({ servers: server.url, prefix: p, name: 'a' });
    const b = await buses.start({ servers: server.url, prefix: p, name: 'b' });
    const c = await buses.start({ servers: server.url, prefix: prefix(), name: 'c' });
    const topic = 'shared.room';
    await Promise.all([a.bus.watch(topic), b.bus.watch(topic), c.bus.watch(topic)]);
    const r1 = await a.bus.publish(topic, 'set', { by: 'a' });
    const r2 = await b.bus.publish(topic, 'patch', { and: 'b' });
    expect(r1.epoch).toBe(r2.epoch);
    expect(r2.seq).toBeGreaterThan(r1.seq);
    await a.got.count(topic, 2);
    await b.got.count(topic, 2);
    expect(a.got.of(topic).map((m) => m.seq)).toEqual([r1.seq, r2.seq]);
    expect(b.got.of(topic).map((m) => m.seq)).toEqual([r1.seq, r2.seq]);
    expect((await b.bus.recover(topic, undefined)).state).toEqual({ by: 'a', and: 'b' });

    await b.bus.close();
    const r3 = await a.bus.publish(topic, 'event', 'after b closed');
    await a.got.count(topic, 3);
    await c.bus.publish(topic, 'event', 'marker for c');
    await c.got.count(topic, 1);
    expect(b.got.of(topic)).toHaveLength(2);
    expect(c.got.of(topic).map((m) => m.data)).toEqual(['marker for c']);
    expect(a.got.of(topic).at(-1)!.seq).toBe(r3.seq);
  });

  it('delivers what a backend publishes to the stream directly (msgpack or JSON envelope, or foreign bytes)', async () => {
    const p = prefix();
    const { bus, got } = await buses.start({ servers: server.url, prefix: p });
    const topic = 'backend.feed';
    await bus.watch(topic);
    const js = admin.jetstream();
    const a1 = await js.publish(`${p}.in.${topic}`, encodeEnvelope('set', { v: 1 }, 1111));
    const a2 = await js.publish(`${p}.in.${topic}`, JSON.stringify({ kind: 'patch', data: { w: 2 }, ts: 2222 }));
    const a3 = await js.publish(`${p}.in.${topic}`, 'not an envelope');
    await got.count(topic, 3);
    const ms = got.of(topic);
    expect(ms.map((m) => [m.seq, m.prev, m.kind])).toEqual([
      [a1.seq, 0, 'set'],
      [a2.seq, a1.seq, 'patch'],
      [a3.seq, a2.seq, 'event'],
    ]);
    expect(ms.map((m) => m.ts).slice(0, 2)).toEqual([1111, 2222]);
    expect(new TextDecoder().decode(ms[2]!.data as Uint8Array)).toBe('not an envelope');
    expect((await bus.recover(topic, undefined)).state).toEqual({ v: 1, w: 2 });
  });

  it('an idempotency key holds across gateways: a retry on another gateway answers the first seq, other content is refused', async () => {
    const p = prefix();
    const a = await buses.start({ servers: server.url, prefix: p, name: 'a' });
    const b = await buses.start({ servers: server.url, prefix: p, name: 'b' });
    const topic = 'idem.cross';
    const scope = { idempotencyKey: 'order-7', idempotencyScope: 'backend' };
    const first = await a.bus.publish(topic, 'event', { total: 10 }, scope);
    expect(await b.bus.publish(topic, 'event', { total: 10 }, scope)).toEqual(first);
    await expect(b.bus.publish(topic, 'event', { total: 11 }, scope)).rejects.toMatchObject({ code: 'conflict' });
    await expect(a.bus.publish('idem.other', 'event', { total: 10 }, scope)).rejects.toBeInstanceOf(NatsBusError);
    // The stored message carries the digest every gateway compares against.
    const stored = await (await admin.jetstreamManager()).streams.getMessage(`${p}_topics`, { seq: first.seq });
    expect(stored.header.get('Symphonic-Digest')).toMatch(/^[0-9a-f]{64}$/);
    expect((await a.bus.history(topic, 0, 10)).messages.map((m) => m.data)).toEqual([{ total: 10 }]);
  });

  it('rejects bad input with coded errors', async () => {
    const { bus } = await buses.start({ servers: server.url, prefix: prefix() });
    for (const t of ['', 'a.>', 'a.*', 'has space', 'a..b']) {
      await expect(bus.publish(t, 'event', 1)).rejects.toMatchObject({ code: 'bad_topic' });
      await expect(bus.watch(t)).rejects.toBeInstanceOf(NatsBusError);
    }
    await expect(bus.publish('big.one', 'event', 'x'.repeat(2 * 1024 * 1024))).rejects.toMatchObject({ code: 'rejected' });
  });
});

describe('epoch', () => {
  it('changes when the stream is recreated; old positions are not recovered; watchers follow the new stream', async () => {
    const p = prefix();
    const { bus, got } = await buses.start({ servers: server.url, prefix: p });
    const topic = 'epoch.room';
    await bus.watch(topic);
    const old: number[] = [];
    for (let i = 0; i < 3; i++) old.push((await bus.publish(topic, 'patch', { [`old${i}`]: i })).seq);
    await got.count(topic, 3);
    const oldEpoch = bus.epoch();

    const jsm = await admin.jetstreamManager();
    await jsm.streams.delete(`${p}_topics`);
    // The engine hears the deletion (advisory) or finds out on its next publish, and recreates it.
    const fresh = await bus.publish(topic, 'set', { fresh: true });
    expect(fresh.epoch).not.toBe(oldEpoch);
    expect(fresh.seq).toBe(1);
    expect(bus.epoch()).toBe(fresh.epoch);
    const info = await jsm.streams.info(`${p}_topics`);
    expect(info.config.republish?.dest).toBe(`${p}.out.>`);

    // The watcher restarts from the new stream: the new message is delivered (prev 0).
    await got.until(() => got.of(topic).some((m) => m.seq === fresh.seq && m.kind === 'set'), 10_000, 'the new epoch message');
    const delivered = got.of(topic).at(-1)!;
    expect(delivered).toMatchObject({ seq: 1, prev: 0, data: { fresh: true } });

    const resumed = await bus.recover(topic, { seq: old[2]!, epoch: oldEpoch });
    expect(resumed.recovered).toBe(false);
    expect(resumed.epoch).toBe(fresh.epoch);
    expect(resumed.state).toEqual({ fresh: true });
    const h = await bus.history(topic, 0, 10);
    expect(h.epoch).toBe(fresh.epoch);
    expect(h.messages.map((m) => m.seq)).toEqual([1]);
    expect(bus.stats().epochChanges).toBe(1);
  });

  it('is the same for every gateway and survives restarts of the engine', async () => {
    const p = prefix();
    const a = await buses.start({ servers: server.url, prefix: p });
    const e = (await a.bus.publish('x', 'event', 1)).epoch;
    await a.bus.close();
    const b = await buses.start({ servers: server.url, prefix: p });
    expect(b.bus.epoch()).toBe(e);
    expect((await b.bus.publish('x', 'event', 2)).epoch).toBe(e);
  });
});

describe('topic state', () => {
  it('a cold gateway computes state from the KV snapshot plus the stream tail (not from the beginning)', async () => {
    const p = prefix();
    const topic = 'cold.doc';
    // The keeper snapshots every 2 messages; the stream keeps 4 per topic: the first `set` is soon gone.
    const keeperBus = await buses.start({ servers: server.url, prefix: p, history: { size: 4 }, snapshot: { everyMessages: 2 } });
    expect(keeperBus.bus.stats().keeper).toBe(true);
    const ops: Op[] = [['set', { title: 't', items: {} }]];
    for (let i = 0; i < 11; i++) ops.push(i % 4 === 3 ? ['event', i] : ['patch', { items: { [`i${i}`]: i }, last: i }]);
    const acks = [];
    for (const op of ops) acks.push(await keeperBus.bus.publish(topic, ...op));
    await snapshotAt(`${p}_state`, topic, acks.at(-1)!.seq);
    await keeperBus.bus.close();

    // Two more patches while no keeper runs: they exist only in the stream tail.
    const publisher = await buses.start({ servers: server.url, prefix: p, history: { size: 4 }, keeper: { enabled: false } });
    const tailOps: Op[] = [
      ['patch', { tail: 1 }],
      ['patch', { items: { i0: null } }],
    ];
    for (const op of tailOps) acks.push(await publisher.bus.publish(topic, ...op));

    const jsm = await admin.jetstreamManager();
    const stream = await jsm.streams.info(`${p}_topics`, { subjects_filter: '>' });
    expect(stream.state.subjects?.[`${p}.in.${topic}`]).toBe(4); // the start of the topic is gone from the stream

    const cold = await buses.start({ servers: server.url, prefix: p, history: { size: 4 }, keeper: { enabled: false } });
    const all = [...ops, ...tailOps];
    const r = await cold.bus.recover(topic, undefined);
    expect(r.seq).toBe(acks.at(-1)!.seq);
    expect(r.state).toEqual(fold(all));
    // Watching starts from the same state, and carries on live.
    await cold.bus.watch(topic);
    const more = await publisher.bus.publish(topic, 'patch', { live: true });
    await cold.got.count(topic, 1);
    expect(cold.got.of(topic)[0]).toMatchObject({ seq: more.seq, prev: acks.at(-1)!.seq });
    expect((await cold.bus.recover(topic, undefined)).state).toEqual(fold([...all, ['patch', { live: true }]]));
  });

  it('the keeper reads back messages it missed on the wire before its snapshot moves past them', async () => {
    const p = prefix();
    const topic = 'keeper.gap';
    const lossy = lossyConnect();
    const keeperBus = await buses.start({ servers: server.url, prefix: p, connect: lossy.connect, history: { size: 20 }, snapshot: { everyMessages: 2 } });
    const publisher = await buses.start({ servers: server.url, prefix: p, history: { size: 20 }, keeper: { enabled: false } });
    expect(keeperBus.bus.stats().keeper).toBe(true);
    const ops: Op[] = [['set', { n: 0 }], ...Array.from({ length: 9 }, (_, i): Op => ['patch', { n: i + 1, [`k${i}`]: i }])];
    const acks = [];
    for (const op of ops.slice(0, 2)) acks.push(await publisher.bus.publish(topic, ...op));
    await snapshotAt(`${p}_state`, topic, acks[1]!.seq);
    lossy.dropNext(3);
    for (const op of ops.slice(2)) acks.push(await publisher.bus.publish(topic, ...op));
    await snapshotAt(`${p}_state`, topic, acks.at(-1)!.seq);
    expect(lossy.dropped).toEqual(acks.slice(2, 5).map((a) => a.seq));
    const kv: KV = await admin.jetstream().views.kv(`${p}_state`, { bindOnly: true });
    const snap = decodeSnapshot((await kv.get(topic))!.value);
    expect(snap).toMatchObject({ seq: acks.at(-1)!.seq, state: fold(ops) });
    expect(keeperBus.bus.stats().keeperGaps).toBeGreaterThanOrEqual(1);
  });

  it('the keeper snapshots a busy topic before the stream ages out what its snapshot does not cover', async () => {
    const p = prefix();
    const topic = 'keeper.busy';
    // Never idle, far fewer messages than everyMessages: only the age of its oldest unwritten change can trigger a write.
    const options = { servers: server.url, prefix: p, history: { size: 1000, ageMs: 2_000 }, snapshot: { everyMessages: 500, idleMs: 600_000 } };
    const keeperBus = await buses.start(options);
    const publisher = await buses.start({ ...options, keeper: { enabled: false } });
    expect(keeperBus.bus.stats().keeper).toBe(true);
    const kv: KV = await admin.jetstream().views.kv(`${p}_state`, { bindOnly: true });
    const ops: Op[] = [];
    const seqs: number[] = [];
    let written: { seq: number; state: unknown } | undefined;
    for (let i = 0; i < 100 && !written; i++) {
      ops.push(i === 0 ? ['set', { n: 0 }] : ['patch', { n: i }]);
      seqs.push((await publisher.bus.publish(topic, ...ops.at(-1)!)).seq);
      const e = await kv.get(topic);
      if (e?.operation === 'PUT') written = decodeSnapshot(e.value);
      else await new Promise((r) => setTimeout(r, 100)); // the publishing cadence of the scenario
    }
    expect(written, 'a snapshot written while the topic stayed busy').toBeDefined();
    const at = seqs.indexOf(written!.seq);
    expect(at).toBeGreaterThanOrEqual(0);
    expect(written!.state).toEqual(fold(ops.slice(0, at + 1)));
  });

  it('keeps the state of topics nobody watches, and hands the keeper role over on close', async () => {
    const p = prefix();
    const a = await buses.start({ servers: server.url, prefix: p, history: { size: 3 }, keeper: { leaseMs: 600 } });
    const b = await buses.start({ servers: server.url, prefix: p, history: { size: 3 }, keeper: { leaseMs: 600 } });
    expect(a.bus.stats().keeper).toBe(true);
    expect(b.bus.stats().keeper).toBe(false);
    const topic = 'unwatched.doc';
    const ops: Op[] = [['set', { n: 0 }], ...Array.from({ length: 9 }, (_, i): Op => ['patch', { n: i + 1, [`k${i}`]: i }])];
    let last = 0;
    for (const op of ops) last = (await b.bus.publish(topic, ...op)).seq;
    await snapshotAt(`${p}_state`, topic, last);
    expect((await b.bus.recover(topic, undefined)).state).toEqual(fold(ops));

    await a.bus.close();
    await eventually('b to take over the keeper lease', () => b.bus.stats().keeper);
    const more: Op[] = Array.from({ length: 6 }, (_, i): Op => ['patch', { after: i }]);
    for (const op of more) last = (await b.bus.publish(topic, ...op)).seq;
    await snapshotAt(`${p}_state`, topic, last);
    const fresh = await buses.start({ servers: server.url, prefix: p, history: { size: 3 }, keeper: { enabled: false } });
    expect((await fresh.bus.recover(topic, undefined)).state).toEqual(fold([...ops, ...more]));
  });
});

describe('keeper switch-over', () => {
  it('a watched topic is delivered exactly once, in order, while its gateway becomes the keeper and stops being it', async () => {
    const p = prefix();
    const topic = 'switch.room';
    const a = await buses.start({ servers: server.url, prefix: p, keeper: { leaseMs: 600 } });
    const b = await buses.start({ servers: server.url, prefix: p, keeper: { leaseMs: 600 } });
    const publisher = await buses.start({ servers: server.url, prefix: p, keeper: { enabled: false } });
    expect(a.bus.stats().keeper).toBe(true);
    await b.bus.watch(topic);

    // Publishing goes on (each publish awaits its ack) through both switch-overs.
    const seqs: number[] = [];
    let stop = false;
    const publishing = (async () => {
      for (let i = 0; i < 2_000 && !stop; i++) seqs.push((await publisher.bus.publish(topic, 'event', i)).seq);
    })();
    await eventually('some messages before the switch', () => seqs.length >= 20);
    // b gains the role: its topic moves from its own subscription to the wildcard one.
    await a.bus.close();
    await eventually('b to become the keeper', () => b.bus.stats().keeper, 10_000);
    const gained = seqs.length;
    await eventually('messages after gaining', () => seqs.length >= gained + 20);
    // b loses the role (its lease key is gone; a challenger may take it): the topic gets its own subscription back.
    const d = await buses.start({ servers: server.url, prefix: p, keeper: { leaseMs: 600 } });
    const kv: KV = await admin.jetstream().views.kv(`${p}_state`, { bindOnly: true });
    await kv.delete('=keeper');
    await eventually('b to lose the keeper role', () => b.bus.stats().keeperTerms >= 2 || (d.bus.stats().keeper && !b.bus.stats().keeper), 10_000);
    const lost = seqs.length;
    await eventually('messages after losing', () => seqs.length >= lost + 20);
    stop = true;
    await publishing;

    await b.got.count(topic, seqs.length);
    const ms = b.got.of(topic);
    expect(ms.map((m) => m.seq)).toEqual(seqs);
    expect(ms.map((m) => m.prev)).toEqual([ms[0]!.prev, ...seqs.slice(0, -1)]);
    expect(b.bus.stats().keeperTerms).toBeGreaterThanOrEqual(1);
  });
});

describe('retention per namespace', () => {
  it('purges a namespace with a shorter age from the stream, keeps the others, and its state survives', async () => {
    const p = prefix();
    const ageMs = 1_500;
    const options = {
      servers: server.url,
      prefix: p,
      history: { size: 1000, ageMs: 3_600_000 },
      historyFor: (t: string) => (t.startsWith('brief.') ? { size: 1000, ageMs } : undefined),
      namespaces: [
        { name: '', ageMs: 3_600_000 },
        { name: 'brief', ageMs },
      ],
    };
    const keeperBus = await buses.start(options);
    expect(keeperBus.bus.stats().keeper).toBe(true);
    const ops: Op[] = [
      ['set', { a: 1 }],
      ['patch', { b: 2 }],
      ['event', 'e'],
      ['patch', { a: null, c: 3 }],
    ];
    const acks = [];
    for (const topic of ['brief.one', 'brief', 'long.one']) for (const op of ops) acks.push(await keeperBus.bus.publish(topic, ...op));
    const jsm = await admin.jetstreamManager();
    const counts = async () => (await jsm.streams.info(`${p}_topics`, { subjects_filter: '>' })).state.subjects ?? {};
    const subject = (t: string) => `${p}.in.${t}`;
    expect(await counts()).toEqual({ [subject('brief.one')]: 4, [subject('brief')]: 4, [subject('long.one')]: 4 });

    // Gone from disk once older than the namespace's age (the purge runs on the keeper).
    const left = await eventually(
      'the brief namespace purged',
      async () => {
        const c = await counts();
        return c[subject('brief.one')] === undefined && c[subject('brief')] === undefined ? c : undefined;
      },
      15_000,
    );
    expect(left).toEqual({ [subject('long.one')]: 4 });
    expect(keeperBus.bus.stats().agePurged).toBe(8);

    // Its state was snapshotted before the purge: a cold gateway still serves it.
    const cold = await buses.start({ ...options, keeper: { enabled: false } });
    for (const topic of ['brief.one', 'brief', 'long.one']) {
      const r = await cold.bus.recover(topic, undefined);
      expect({ topic, state: r.state }).toEqual({ topic, state: fold(ops) });
    }
    const stale = await cold.bus.recover('brief.one', { seq: acks[0]!.seq, epoch: acks[0]!.epoch });
    expect(stale.recovered).toBe(false);
  });
});

describe('retention per namespace: size', () => {
  it('trims a topic of a smaller-size namespace on disk, keeps the others, and its state survives', async () => {
    const p = prefix();
    const options = {
      servers: server.url,
      prefix: p,
      history: { size: 100 },
      snapshot: { everyMessages: 4 },
      historyFor: (t: string) => (t.startsWith('latest.') ? { size: 2, ageMs: 3_600_000 } : undefined),
    };
    const keeperBus = await buses.start(options);
    const ops: Op[] = [['set', { n: 0 }], ...Array.from({ length: 69 }, (_, i): Op => ['patch', { n: i + 1, [`k${i % 7}`]: i }])];
    let last = 0;
    for (const topic of ['latest.one', 'wide.one']) for (const op of ops) last = (await keeperBus.bus.publish(topic, ...op)).seq;
    await snapshotAt(`${p}_state`, 'wide.one', last);
    const jsm = await admin.jetstreamManager();
    const count = async (t: string) => (await jsm.streams.info(`${p}_topics`, { subjects_filter: '>' })).state.subjects?.[`${p}.in.${t}`] ?? 0;
    // Trimmed once per 32 (TRIM_BATCH) of its messages, right after a snapshot write.
    // (The keeper counts a trim once the server has answered it.)
    const kept = await eventually('latest.one trimmed', async () => {
      const n = await count('latest.one');
      return n <= 2 + 32 && keeperBus.bus.stats().sizeTrimmed === ops.length - n ? n : undefined;
    });
    expect(kept).toBeGreaterThanOrEqual(2);
    expect(await count('wide.one')).toBe(ops.length);

    const cold = await buses.start({ ...options, keeper: { enabled: false } });
    const r = await cold.bus.recover('latest.one', undefined);
    expect(r.state).toEqual(fold(ops));
    const h = await cold.bus.history('latest.one', 0, 100);
    expect(h.messages).toHaveLength(2);
    expect(h.complete).toBe(false);
  });
});

describe('keeper lease', () => {
  it('replaces a keeper that stopped renewing (crashed) after the lease time', async () => {
    const p = prefix();
    let crashed: NatsConnection | undefined;
    const a = await buses.start({
      servers: server.url,
      prefix: p,
      keeper: { leaseMs: 600 },
      connect: async (o) => (crashed = await connect(o)),
    });
    const b = await buses.start({ servers: server.url, prefix: p, keeper: { leaseMs: 600 } });
    expect(a.bus.stats().keeper).toBe(true);
    expect(b.bus.stats().keeper).toBe(false);
    await crashed!.close(); // no lease hand-over: the lease just goes stale
    const t0 = Date.now();
    await eventually('b to take over the stale lease', () => b.bus.stats().keeper, 10_000);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(300);
    const topic = 'takeover.doc';
    let last = 0;
    for (let i = 0; i < 3; i++) last = (await b.bus.publish(topic, 'patch', { [`k${i}`]: i })).seq;
    await snapshotAt(`${p}_state`, topic, last);
  });
});

describe('credentials', () => {
  it('connects with user/password and fails start clearly with wrong ones', async () => {
    const secured = await startNatsServer({ auth: { user: 'gw', pass: 's3cret' } });
    try {
      const ok = await buses.start({ servers: secured.url, prefix: prefix(), credentials: { user: 'gw', pass: 's3cret' } });
      expect((await ok.bus.publish('auth.t', 'event', 1)).seq).toBe(1);
      await expect(
        buses.start({ servers: secured.url, prefix: prefix(), credentials: { user: 'gw', pass: 'wrong' }, connectTimeoutMs: 500 }),
      ).rejects.toMatchObject({ code: 'unavailable' });
    } finally {
      await buses.closeAll();
      await secured.cleanup();
    }
  });
});
