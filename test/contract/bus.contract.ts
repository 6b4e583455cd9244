/**
 * The Bus contract: one suite every engine passes (memory, nats, ...). Only behaviour that
 * bus.ts promises is asserted here; engine-specific behaviour lives in the engine's own tests.
 *
 * Deliberately NOT asserted (engines may differ, both answers are honest):
 *  - `history(topic, 0, n).complete` and `recover` with `since.seq === 0`: the NATS engine cannot
 *    always prove, from the stream alone, that nothing was ever dropped before the oldest
 *    retained message, and then answers "not complete" / "not recovered" (a snapshot).
 *  - the boundary where `since` itself was just dropped but everything after it is retained.
 *  - `prev` of the first message of an incomplete history.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { applyMessage, type MessageKind } from '../../protocol/index.ts';
import type { Bus, BusMessage, PublishResult } from '../../gateway/bus/bus.ts';
import { Collector } from './collector.ts';

export interface ContractBusOptions {
  /** The widest retention (the default for topics `historyFor` leaves out). */
  readonly history?: { readonly size?: number; readonly ageMs?: number };
  /** Narrower retention for some topics, as namespaces configure it. */
  readonly historyFor?: (topic: string) => { size: number; ageMs: number } | undefined;
}

export type MakeBus = (options?: ContractBusOptions) => Promise<{ bus: Bus; cleanup: () => Promise<void> }>;

type Op = readonly [MessageKind, unknown];

/** set/patch/event interleavings, including deletes, nested merges and non-object replacements. */
const STATE_OPS: readonly Op[] = [
  ['set', { title: 'room', members: { ann: { role: 'admin' } }, count: 1 }],
  ['patch', { members: { bob: { role: 'user' } } }],
  ['event', { typing: 'ann' }],
  ['patch', { count: 2, title: null }],
  ['patch', { members: { ann: { role: null, muted: true } } }],
  ['set', [1, 2, 3]],
  ['patch', { replaced: 'array' }],
  ['event', 'plain event'],
  ['patch', { nested: { deep: { value: 42 } } }],
  ['patch', { replaced: null, nested: { deep: { more: true } } }],
];

function reference(ops: readonly Op[]): unknown {
  return ops.reduce<unknown>((s, [k, d]) => applyMessage(s, k, d), undefined);
}

let topicCounter = 0;
function freshTopic(name: string): string {
  return `contract.${name}-${process.pid}-${++topicCounter}`;
}

export function runBusContract(name: string, makeBus: MakeBus): void {
  describe(`Bus contract: ${name}`, () => {
    const cleanups: Array<() => Promise<void>> = [];

    afterEach(async () => {
      while (cleanups.length) await cleanups.pop()!();
    });

    async function open(options?: ContractBusOptions): Promise<{ bus: Bus; got: Collector }> {
      const { bus, cleanup } = await makeBus(options);
      cleanups.push(cleanup);
      const got = new Collector();
      await bus.start(got.onMessage);
      return { bus, got };
    }

    async function publishAll(bus: Bus, topic: string, ops: readonly Op[]): Promise<PublishResult[]> {
      const out: PublishResult[] = [];
      for (const [kind, data] of ops) out.push(await bus.publish(topic, kind, data));
      return out;
    }

    function expectChained(messages: readonly BusMessage[], firstPrev: number): void {
      messages.forEach((m, i) => expect(m.prev, `prev of message ${i} (seq ${m.seq})`).toBe(i === 0 ? firstPrev : messages[i - 1]!.seq));
    }

    it('is ready after start and closed after close', async () => {
      const { bus } = await open();
      expect(bus.status()).toBe('ready');
      await bus.close();
      expect(bus.status()).toBe('closed');
    });

    it('stores a publish retried with the same idempotency key once', async () => {
      const { bus, got } = await open();
      const topic = freshTopic('idem');
      await bus.watch(topic);
      const key = `${topic}-order-1`;
      const [first, retry] = await Promise.all([
        bus.publish(topic, 'event', { n: 1 }, { idempotencyKey: key }),
        bus.publish(topic, 'event', { n: 1 }, { idempotencyKey: key }),
      ]);
      const again = await bus.publish(topic, 'event', { n: 1 }, { idempotencyKey: key });
      const other = await bus.publish(topic, 'event', { n: 2 }, { idempotencyKey: `${topic}-order-2` });
      expect(retry.seq).toBe(first.seq);
      expect(again.seq).toBe(first.seq);
      expect(other.seq).toBeGreaterThan(first.seq);
      await got.count(topic, 2);
      expect(got.of(topic).map((m) => m.data)).toEqual([{ n: 1 }, { n: 2 }]);
      const h = await bus.history(topic, 0, 10);
      expect(h.messages.map((m) => m.data)).toEqual([{ n: 1 }, { n: 2 }]);
    });

    it('refuses an idempotency key reused for a different publish; each scope has keys of its own', async () => {
      const { bus, got } = await open();
      const topic = freshTopic('idem-reuse');
      const elsewhere = freshTopic('idem-reuse-other');
      await bus.watch(topic);
      const key = `${topic}-order-1`;
      const a = { idempotencyKey: key, idempotencyScope: 'backend-a' };
      const first = await bus.publish(topic, 'set', { n: 1, list: [1, { x: 1, y: 2 }] }, a);
      // A true retry, whatever its key order, answers the first publish's result.
      expect(await bus.publish(topic, 'set', { list: [1, { y: 2, x: 1 }], n: 1 }, a)).toEqual(first);
      // The key for other data, another kind or another topic: refused, never a silent success.
      await expect(bus.publish(topic, 'set', { n: 2, list: [1, { x: 1, y: 2 }] }, a)).rejects.toMatchObject({ code: 'conflict' });
      await expect(bus.publish(topic, 'patch', { n: 1, list: [1, { x: 1, y: 2 }] }, a)).rejects.toMatchObject({ code: 'conflict' });
      await expect(bus.publish(elsewhere, 'set', { n: 1, list: [1, { x: 1, y: 2 }] }, a)).rejects.toMatchObject({ code: 'conflict' });
      // The same key in another scope (another API key) names another publish.
      const b = await bus.publish(topic, 'event', 'from b', { idempotencyKey: key, idempotencyScope: 'backend-b' });
      expect(b.seq).toBeGreaterThan(first.seq);
      expect(await bus.publish(topic, 'event', 'from b', { idempotencyKey: key, idempotencyScope: 'backend-b' })).toEqual(b);
      // The first publish still answers its retries after the refusals.
      expect(await bus.publish(topic, 'set', { n: 1, list: [1, { x: 1, y: 2 }] }, a)).toEqual(first);
      await got.count(topic, 2);
      expect(got.of(topic).map((m) => m.data)).toEqual([{ n: 1, list: [1, { x: 1, y: 2 }] }, 'from b']);
      expect((await bus.history(elsewhere, 0, 10)).messages).toEqual([]);
    });

    it('conditional publish: stored only at the expected sequence (0: no message yet); a conflict stores nothing and names the current sequence', async () => {
      const { bus } = await open();
      const topic = freshTopic('cas');
      const first = await bus.publish(topic, 'set', { v: 1 }, { expectedSeq: 0 });
      await expect(bus.publish(topic, 'set', { v: 'stale' }, { expectedSeq: 0 })).rejects.toMatchObject({ code: 'sequence_conflict', current: first.seq });
      const second = await bus.publish(topic, 'patch', { v: 2 }, { expectedSeq: first.seq });
      await expect(bus.publish(topic, 'patch', { v: 'stale' }, { expectedSeq: first.seq })).rejects.toMatchObject({
        code: 'sequence_conflict',
        current: second.seq,
      });
      const h = await bus.history(topic, 0, 10);
      expect(h.messages.map((m) => m.data)).toEqual([{ v: 1 }, { v: 2 }]);
      const r = await bus.recover(topic, undefined);
      expect(r).toMatchObject({ seq: second.seq, state: { v: 2 } });
    });

    it('optimistic concurrency: 20 writers x 50 read-modify-write increments end at exactly 1000, with exactly 1000 updates stored', async () => {
      const { bus } = await open({ history: { size: 2000 } });
      const topic = freshTopic('counter');
      let conflicts = 0;
      const writer = async () => {
        for (let done = 0; done < 50; ) {
          const { seq, state } = await bus.recover(topic, undefined);
          const count = ((state as { count?: number } | undefined)?.count ?? 0) + 1;
          try {
            await bus.publish(topic, 'set', { count }, { expectedSeq: seq });
            done++;
          } catch (e) {
            if ((e as { code?: string }).code !== 'sequence_conflict') throw e;
            conflicts++;
            // Jittered backoff: twenty writers retrying in lockstep would mostly collide again.
            await new Promise((r) => setTimeout(r, Math.random() * 5));
          }
        }
      };
      await Promise.all(Array.from({ length: 20 }, writer));
      const r = await bus.recover(topic, undefined);
      expect(r.state).toEqual({ count: 1000 });
      const h = await bus.history(topic, 0, 2000);
      expect(h.messages.map((m) => (m.data as { count: number }).count)).toEqual(Array.from({ length: 1000 }, (_, i) => i + 1));
      expect(conflicts).toBeGreaterThan(0); // they really did race
    }, 120_000);

    it('publish returns increasing sequences per topic and the bus epoch', async () => {
      const { bus } = await open();
      const a = freshTopic('seq-a');
      const b = freshTopic('seq-b');
      const results: Record<string, PublishResult[]> = { [a]: [], [b]: [] };
      for (let i = 0; i < 10; i++) {
        const topic = i % 3 === 0 ? b : a;
        results[topic]!.push(await bus.publish(topic, 'event', { i }));
      }
      for (const rs of Object.values(results)) {
        for (let i = 1; i < rs.length; i++) expect(rs[i]!.seq).toBeGreaterThan(rs[i - 1]!.seq);
        expect(rs[0]!.seq).toBeGreaterThan(0);
      }
      const epochs = new Set([...results[a]!, ...results[b]!].map((r) => r.epoch));
      expect(epochs.size).toBe(1);
      const [epoch] = epochs;
      expect(typeof epoch).toBe('string');
      expect(epoch!.length).toBeGreaterThan(0);
      expect(epoch!.length).toBeLessThanOrEqual(64); // protocol Position.epoch
    });

    it('a watched topic delivers every message once, in order, prev chained from 0', async () => {
      const { bus, got } = await open();
      const topic = freshTopic('live');
      await bus.watch(topic);
      const before = Date.now();
      const acks = await publishAll(bus, topic, STATE_OPS);
      await got.count(topic, STATE_OPS.length);
      const ms = got.of(topic);
      expect(ms.map((m) => m.seq)).toEqual(acks.map((r) => r.seq));
      expectChained(ms, 0);
      ms.forEach((m, i) => {
        expect(m.topic).toBe(topic);
        expect(m.kind).toBe(STATE_OPS[i]![0]);
        expect(m.data).toEqual(STATE_OPS[i]![1]);
        expect(m.ts).toBeGreaterThanOrEqual(before - 1000);
        expect(m.ts).toBeLessThanOrEqual(Date.now() + 1000);
      });
      // Nothing more arrives (no duplicates): a marker published afterwards is the next delivery.
      const marker = await bus.publish(topic, 'event', 'marker');
      await got.count(topic, STATE_OPS.length + 1);
      expect(got.of(topic).at(-1)!.seq).toBe(marker.seq);
      expect(got.of(topic)).toHaveLength(STATE_OPS.length + 1);
    });

    it('watch is idempotent: one delivery per message', async () => {
      const { bus, got } = await open();
      const topic = freshTopic('idem');
      await Promise.all([bus.watch(topic), bus.watch(topic)]);
      await bus.watch(topic);
      const r = await bus.publish(topic, 'event', 1);
      const marker = await bus.publish(topic, 'event', 2);
      await got.count(topic, 2);
      expect(got.of(topic).map((m) => m.seq)).toEqual([r.seq, marker.seq]);
    });

    it('unwatched topics deliver nothing', async () => {
      const { bus, got } = await open();
      const watched = freshTopic('watched');
      const never = freshTopic('never');
      const dropped = freshTopic('dropped');
      await bus.watch(watched);
      await bus.watch(dropped);
      for (let i = 0; i < 5; i++) await bus.publish(never, 'event', i);
      await bus.publish(dropped, 'event', 'seen');
      await got.count(dropped, 1);
      bus.unwatch(dropped);
      for (let i = 0; i < 3; i++) await bus.publish(dropped, 'event', i);
      // Deliveries are ordered per watched topic only; the marker shows the bus caught up.
      await bus.publish(watched, 'event', 'marker');
      await got.count(watched, 1);
      expect(got.of(never)).toHaveLength(0);
      expect(got.of(dropped)).toHaveLength(1);
    });

    for (const watched of [false, true]) {
      const mode = watched ? 'watched' : 'unwatched';

      it(`recover without since returns the state after set/patch/event interleavings (${mode})`, async () => {
        const { bus, got } = await open();
        const topic = freshTopic(`state-${mode}`);
        if (watched) await bus.watch(topic);
        const acks = await publishAll(bus, topic, STATE_OPS);
        if (watched) await got.count(topic, STATE_OPS.length);
        const r = await bus.recover(topic, undefined);
        expect(r.recovered).toBe(false);
        expect(r.epoch).toBe(acks[0]!.epoch);
        expect(r.seq).toBe(acks.at(-1)!.seq);
        expect(r.state).toEqual(reference(STATE_OPS));
        // Each prefix of the interleaving, too: state is consistent with the seq it comes with.
        const prefixTopic = freshTopic(`state-prefix-${mode}`);
        if (watched) await bus.watch(prefixTopic);
        for (let n = 1; n <= STATE_OPS.length; n++) {
          const [kind, data] = STATE_OPS[n - 1]!;
          const ack = await bus.publish(prefixTopic, kind, data);
          if (watched) await got.count(prefixTopic, n);
          const s = await bus.recover(prefixTopic, undefined);
          expect(s.seq, `after ${n} messages`).toBe(ack.seq);
          expect(s.state, `after ${n} messages`).toEqual(reference(STATE_OPS.slice(0, n)));
        }
      });

      it(`recover of an unknown topic is an empty snapshot at 0 (${mode})`, async () => {
        const { bus } = await open();
        const topic = freshTopic(`empty-${mode}`);
        if (watched) await bus.watch(topic);
        const r = await bus.recover(topic, undefined);
        expect(r).toMatchObject({ recovered: false, seq: 0, state: undefined });
        expect(r.replay).toEqual([]);
      });

      it(`recover with since inside retention replays exactly the missed messages (${mode})`, async () => {
        const { bus, got } = await open({ history: { size: 10 } });
        const topic = freshTopic(`resume-${mode}`);
        if (watched) await bus.watch(topic);
        const ops = STATE_OPS.slice(0, 7);
        const acks = await publishAll(bus, topic, ops);
        if (watched) await got.count(topic, ops.length);
        const epoch = acks[0]!.epoch;

        const r = await bus.recover(topic, { seq: acks[2]!.seq, epoch });
        expect(r.recovered).toBe(true);
        expect(r.epoch).toBe(epoch);
        expect(r.seq).toBe(acks.at(-1)!.seq);
        expect(r.replay.map((m) => m.seq)).toEqual(acks.slice(3).map((a) => a.seq));
        expectChained(r.replay, acks[2]!.seq);
        r.replay.forEach((m, i) => {
          expect(m.topic).toBe(topic);
          expect(m.kind).toBe(ops[3 + i]![0]);
          expect(m.data).toEqual(ops[3 + i]![1]);
        });

        const upToDate = await bus.recover(topic, { seq: acks.at(-1)!.seq, epoch });
        expect(upToDate).toMatchObject({ recovered: true, seq: acks.at(-1)!.seq });
        expect(upToDate.replay).toEqual([]);
      });

      it(`recover with since older than retention is not recovered and carries the snapshot (${mode})`, async () => {
        const { bus, got } = await open({ history: { size: 3 } });
        const topic = freshTopic(`too-old-${mode}`);
        if (watched) await bus.watch(topic);
        const ops: Op[] = [['set', { n: 0 }], ...Array.from({ length: 8 }, (_, i): Op => ['patch', { n: i + 1, [`k${i}`]: i }])];
        const acks = await publishAll(bus, topic, ops);
        if (watched) await got.count(topic, ops.length);
        const r = await bus.recover(topic, { seq: acks[1]!.seq, epoch: acks[0]!.epoch });
        expect(r.recovered).toBe(false);
        expect(r.replay).toEqual([]);
        expect(r.seq).toBe(acks.at(-1)!.seq);
        expect(r.state).toEqual(reference(ops));
      });

      it(`recover with a position from another epoch or from the future is not recovered (${mode})`, async () => {
        const { bus, got } = await open();
        const topic = freshTopic(`epoch-${mode}`);
        if (watched) await bus.watch(topic);
        const acks = await publishAll(bus, topic, STATE_OPS.slice(0, 3));
        if (watched) await got.count(topic, 3);
        const last = acks.at(-1)!;
        const other = await bus.recover(topic, { seq: last.seq, epoch: `not-${last.epoch}` });
        expect(other).toMatchObject({ recovered: false, seq: last.seq, epoch: last.epoch });
        expect(other.state).toEqual(reference(STATE_OPS.slice(0, 3)));
        const future = await bus.recover(topic, { seq: last.seq + 1000, epoch: last.epoch });
        expect(future).toMatchObject({ recovered: false, seq: last.seq });
        expect(future.state).toEqual(reference(STATE_OPS.slice(0, 3)));
      });
    }

    it('history returns retained messages after since, oldest first, at most limit', async () => {
      const { bus } = await open({ history: { size: 20 } });
      const topic = freshTopic('history');
      const acks: PublishResult[] = [];
      for (let i = 0; i < 10; i++) acks.push(await bus.publish(topic, i % 2 ? 'event' : 'patch', { i }));
      const seqs = acks.map((a) => a.seq);

      const page = await bus.history(topic, seqs[2]!, 3);
      expect(page.epoch).toBe(acks[0]!.epoch);
      expect(page.seq).toBe(seqs[9]);
      expect(page.complete).toBe(true);
      expect(page.messages.map((m) => m.seq)).toEqual(seqs.slice(3, 6));
      expectChained(page.messages, seqs[2]!);
      expect(page.messages.map((m) => m.data)).toEqual([{ i: 3 }, { i: 4 }, { i: 5 }]);
      expect(page.messages.map((m) => m.kind)).toEqual(['event', 'patch', 'event']);

      const all = await bus.history(topic, 0, 100);
      expect(all.messages.map((m) => m.seq)).toEqual(seqs);
      expectChained(all.messages.slice(1), seqs[0]!);

      const none = await bus.history(topic, seqs[9]!, 10);
      expect(none).toMatchObject({ seq: seqs[9], complete: true });
      expect(none.messages).toEqual([]);

      const empty = await bus.history(freshTopic('history-empty'), 0, 10);
      expect(empty).toMatchObject({ seq: 0 });
      expect(empty.messages).toEqual([]);
    });

    it('history after retention dropped messages is flagged incomplete', async () => {
      const { bus } = await open({ history: { size: 5 } });
      const topic = freshTopic('history-trimmed');
      const seqs: number[] = [];
      for (let i = 0; i < 10; i++) seqs.push((await bus.publish(topic, 'event', i)).seq);
      const h = await bus.history(topic, seqs[1]!, 100);
      expect(h.complete).toBe(false);
      expect(h.messages.map((m) => m.seq)).toEqual(seqs.slice(5));
      expectChained(h.messages.slice(1), seqs[5]!);
      const kept = await bus.history(topic, seqs[6]!, 100);
      expect(kept.complete).toBe(true);
      expect(kept.messages.map((m) => m.seq)).toEqual(seqs.slice(7));
    });

    for (const watched of [false, true]) {
      const mode = watched ? 'watched' : 'unwatched';

      it(`a topic with a smaller window than the default keeps only its own last messages (${mode})`, async () => {
        const { bus, got } = await open({ history: { size: 20 }, historyFor: (t) => (t.includes('.small-') ? { size: 3, ageMs: 3_600_000 } : undefined) });
        const small = freshTopic(`small-${mode}`);
        const wide = freshTopic(`wide-${mode}`);
        if (watched) await Promise.all([bus.watch(small), bus.watch(wide)]);
        const ops: Op[] = [['set', { n: 0 }], ...Array.from({ length: 7 }, (_, i): Op => ['patch', { n: i + 1, [`k${i}`]: i }])];
        const smallAcks = await publishAll(bus, small, ops);
        const wideAcks = await publishAll(bus, wide, ops);
        if (watched) await Promise.all([got.count(small, ops.length), got.count(wide, ops.length)]);
        const epoch = smallAcks[0]!.epoch;

        // Four messages after the position: one more than the window holds.
        const old = await bus.recover(small, { seq: smallAcks[3]!.seq, epoch });
        expect(old).toMatchObject({ recovered: false, seq: smallAcks.at(-1)!.seq });
        expect(old.replay).toEqual([]);
        expect(old.state).toEqual(reference(ops));
        const inside = await bus.recover(small, { seq: smallAcks[4]!.seq, epoch });
        expect(inside.recovered).toBe(true);
        expect(inside.replay.map((m) => m.seq)).toEqual(smallAcks.slice(5).map((a) => a.seq));
        expectChained(inside.replay, smallAcks[4]!.seq);
        // The same position on a topic of the default window is still recoverable.
        const other = await bus.recover(wide, { seq: wideAcks[0]!.seq, epoch });
        expect(other.recovered).toBe(true);
        expect(other.replay.map((m) => m.seq)).toEqual(wideAcks.slice(1).map((a) => a.seq));

        const h = await bus.history(small, smallAcks[1]!.seq, 100);
        expect(h.complete).toBe(false);
        expect(h.messages.map((m) => m.seq)).toEqual(smallAcks.slice(5).map((a) => a.seq));
        const page = await bus.history(small, 0, 2);
        expect(page.complete).toBe(false);
        expect(page.messages.map((m) => m.seq)).toEqual(smallAcks.slice(5, 7).map((a) => a.seq));
        const kept = await bus.history(small, smallAcks[4]!.seq, 100);
        expect(kept.complete).toBe(true);
        expect(kept.messages.map((m) => m.seq)).toEqual(smallAcks.slice(5).map((a) => a.seq));
        const wideAll = await bus.history(wide, wideAcks[0]!.seq, 100);
        expect(wideAll.complete).toBe(true);
        expect(wideAll.messages).toHaveLength(ops.length - 1);
      });

      it(`a topic with a shorter age limit drops messages older than it (${mode})`, async () => {
        // Long enough that a loaded machine answers the fresh message's recover well within it.
        const ageMs = 2_500;
        const { bus, got } = await open({ historyFor: (t) => (t.includes('.brief-') ? { size: 1000, ageMs } : undefined) });
        const topic = freshTopic(`brief-${mode}`);
        if (watched) await bus.watch(topic);
        const early = await publishAll(bus, topic, [
          ['set', { a: 1 }],
          ['patch', { b: 2 }],
          ['patch', { c: 3 }],
        ]);
        // Age is the behaviour under test here: let the first three messages grow older than the limit.
        const expired = Date.now() + ageMs + 50;
        while (Date.now() < expired) await new Promise((r) => setTimeout(r, expired - Date.now()));
        const fresh = await bus.publish(topic, 'patch', { d: 4 });
        if (watched) await got.count(topic, 4);
        const epoch = fresh.epoch;

        const stale = await bus.recover(topic, { seq: early[0]!.seq, epoch });
        expect(stale.recovered).toBe(false);
        expect(stale.state).toEqual({ a: 1, b: 2, c: 3, d: 4 });
        const latest = await bus.recover(topic, { seq: early[2]!.seq, epoch });
        expect(latest.recovered).toBe(true);
        expect(latest.replay.map((m) => m.seq)).toEqual([fresh.seq]);

        const h = await bus.history(topic, early[0]!.seq, 100);
        expect(h.complete).toBe(false);
        expect(h.messages.map((m) => m.seq)).toEqual([fresh.seq]);
        const tail = await bus.history(topic, early[2]!.seq, 100);
        expect(tail.complete).toBe(true);
        expect(tail.messages.map((m) => m.seq)).toEqual([fresh.seq]);
      });
    }

    it('many publishes in flight keep per-topic order (acks and deliveries)', async () => {
      const { bus, got } = await open();
      const topics = [freshTopic('conc-a'), freshTopic('conc-b'), freshTopic('conc-c')];
      for (const t of topics) await bus.watch(t);
      const N = 300;
      const calls = Array.from({ length: N }, (_, i) => ({ topic: topics[i % topics.length]!, i }));
      const acks = await Promise.all(calls.map((c) => bus.publish(c.topic, 'event', { i: c.i })));
      for (const t of topics) await got.count(t, N / topics.length);
      for (const t of topics) {
        const mine = calls.map((c, k) => ({ ...c, ack: acks[k]! })).filter((c) => c.topic === t);
        for (let k = 1; k < mine.length; k++) expect(mine[k]!.ack.seq).toBeGreaterThan(mine[k - 1]!.ack.seq);
        const delivered = got.of(t);
        expect(delivered.map((m) => (m.data as { i: number }).i)).toEqual(mine.map((c) => c.i));
        expect(delivered.map((m) => m.seq)).toEqual(mine.map((c) => c.ack.seq));
        expectChained(delivered, 0);
      }
      expect(got.messages).toHaveLength(N);
    });

    it('close() stops delivery; later calls fail', async () => {
      const { bus, got } = await open();
      const topic = freshTopic('close');
      await bus.watch(topic);
      await bus.publish(topic, 'event', 'before');
      await got.count(topic, 1);
      await bus.close();
      await expect(bus.publish(topic, 'event', 'after')).rejects.toThrow();
      expect(got.of(topic)).toHaveLength(1);
    });
  });
}
