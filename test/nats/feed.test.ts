/**
 * TopicFeed (the live sequencer + gap repair) against a fake stream: every path, deterministically.
 * Plus the small pure pieces of the NATS engine: chain rebuilding, envelope, epoch, backoff.
 */
import { describe, expect, it } from 'vitest';
import { Packr } from 'msgpackr';
import type { BusMessage } from '../../gateway/bus/bus.ts';
import { rebuildChain } from '../../gateway/bus/nats/chain.ts';
import { decodeEnvelope, decodeSnapshot, encodeEnvelope, encodeSnapshot } from '../../gateway/bus/nats/codec.ts';
import { backoffDelay } from '../../nats-kit/backoff.ts';
import { TopicFeed, type FeedSource } from '../../gateway/bus/nats/feed.ts';
import type { StoredMessage } from '../../gateway/bus/nats/reader.ts';
import { epochFromCreated } from '../../gateway/bus/nats/stream.ts';

const T = 'room.1';

/** A topic log as the stream holds it: `retainedFrom` models retention dropping the oldest. */
class FakeStream implements FeedSource {
  messages: StoredMessage[] = [];
  retainedFrom = 0;
  reads: Array<{ from: number; until: number | undefined }> = [];
  failNext = 0;
  private gate: Promise<void> | undefined;
  private openGate: (() => void) | undefined;

  add(seq: number, kind: BusMessage['kind'] = 'event', data: unknown = seq): StoredMessage {
    const m = { seq, kind, data, ts: 1000 + seq };
    this.messages.push(m);
    return m;
  }

  /** The RePublish copy of stored message `seq` (prev = the previous stored message of the topic). */
  live(seq: number): BusMessage {
    const i = this.messages.findIndex((m) => m.seq === seq);
    const m = this.messages[i]!;
    return { topic: T, seq, prev: i > 0 ? this.messages[i - 1]!.seq : 0, kind: m.kind, data: m.data, ts: m.ts };
  }

  /** Holds reads until `release()`: lets a test deliver live messages during a repair. */
  hold(): void {
    this.gate = new Promise((r) => (this.openGate = r));
  }
  release(): void {
    this.openGate?.();
    this.gate = undefined;
  }

  async read(from: number, until: number | undefined): Promise<StoredMessage[]> {
    this.reads.push({ from, until });
    if (this.gate) await this.gate;
    if (this.failNext > 0) {
      this.failNext--;
      throw new Error('stream unavailable');
    }
    return this.messages.filter((m) => m.seq >= from && m.seq >= this.retainedFrom && (until === undefined || m.seq <= until));
  }
}

function setup(opts: { cacheSize?: number; maxPending?: number; cursor?: number; state?: unknown } = {}) {
  const stream = new FakeStream();
  const out: BusMessage[] = [];
  const losses: Array<[number, number]> = [];
  const waiters = new Set<() => void>();
  const feed = new TopicFeed(
    T,
    stream,
    {
      deliver: (m) => {
        out.push(m);
        for (const w of [...waiters]) w();
      },
      onLoss: (a, b) => losses.push([a, b]),
    },
    { cacheSize: opts.cacheSize ?? 100, maxPending: opts.maxPending ?? 1000, retryDelayMs: () => 1 },
  );
  const until = (n: number) =>
    new Promise<void>((resolve, reject) => {
      const check = () => {
        if (out.length >= n) {
          waiters.delete(check);
          clearTimeout(timer);
          resolve();
        }
      };
      const timer = setTimeout(() => reject(new Error(`only ${out.length} of ${n} delivered`)), 2000);
      waiters.add(check);
      check();
    });
  const idle = async () => {
    for (let i = 0; i < 50 && feed.repairing; i++) await new Promise((r) => setImmediate(r));
    expect(feed.repairing).toBe(false);
  };
  return { stream, feed, out, losses, until, idle };
}

const seqs = (ms: readonly BusMessage[]) => ms.map((m) => m.seq);
const prevs = (ms: readonly BusMessage[]) => ms.map((m) => m.prev);

describe('TopicFeed', () => {
  it('holds live messages while loading, then delivers only what is after the loaded cursor', async () => {
    const { stream, feed, out, idle } = setup();
    [3, 7, 9, 12].forEach((s) => stream.add(s));
    feed.onLive(stream.live(7)); // arrived during the load, already part of it
    feed.onLive(stream.live(9));
    feed.onLive(stream.live(12));
    expect(out).toEqual([]);
    feed.begin({ cursor: 7, state: undefined, recent: [], chainStart: undefined });
    await idle();
    expect(seqs(out)).toEqual([9, 12]);
    expect(prevs(out)).toEqual([7, 9]);
  });

  it('delivers in-order messages synchronously and drops duplicates', () => {
    const { stream, feed, out } = setup();
    feed.begin({ cursor: 0, state: undefined, recent: [], chainStart: 0 });
    [2, 5, 6].forEach((s) => stream.add(s));
    feed.onLive(stream.live(2));
    feed.onLive(stream.live(5));
    feed.onLive(stream.live(5));
    feed.onLive(stream.live(2));
    feed.onLive(stream.live(6));
    expect(seqs(out)).toEqual([2, 5, 6]);
    expect(feed.stats.duplicates).toBe(2);
    expect(stream.reads).toEqual([]);
  });

  it('repairs a gap from the stream before delivering what follows it, reading from the cursor', async () => {
    const { stream, feed, out, losses, until, idle } = setup();
    feed.begin({ cursor: 0, state: undefined, recent: [], chainStart: 0 });
    [1, 4, 6, 8, 10].forEach((s) => stream.add(s, 'patch', { [`k${s}`]: s }));
    feed.onLive(stream.live(1));
    feed.onLive(stream.live(10)); // 4, 6, 8 were missed
    await until(5);
    await idle();
    expect(seqs(out)).toEqual([1, 4, 6, 8, 10]);
    expect(prevs(out)).toEqual([0, 1, 4, 6, 8]);
    expect(stream.reads).toEqual([{ from: 1, until: 9 }]);
    expect(losses).toEqual([]);
    expect(feed.state).toEqual({ k1: 1, k4: 4, k6: 6, k8: 8, k10: 10 });
    // The late copies of the repaired messages are duplicates now.
    feed.onLive(stream.live(6));
    expect(out).toHaveLength(5);
  });

  it('keeps order for live messages that arrive during a repair', async () => {
    const { stream, feed, out, until, idle } = setup();
    feed.begin({ cursor: 0, state: undefined, recent: [], chainStart: 0 });
    for (let s = 1; s <= 8; s++) stream.add(s);
    feed.onLive(stream.live(1));
    stream.hold();
    feed.onLive(stream.live(4)); // gap: 2, 3
    feed.onLive(stream.live(5));
    feed.onLive(stream.live(7)); // another gap: 6
    feed.onLive(stream.live(8));
    expect(seqs(out)).toEqual([1]);
    stream.release();
    await until(8);
    await idle();
    expect(seqs(out)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(prevs(out)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
  });

  it('makes an unprovable gap visible: prev = seq - 1 and onLoss, when the cursor message was dropped', async () => {
    const { stream, feed, out, losses, until, idle } = setup();
    feed.begin({ cursor: 0, state: undefined, recent: [], chainStart: 0 });
    [2, 5, 9, 11].forEach((s) => stream.add(s));
    feed.onLive(stream.live(2));
    stream.retainedFrom = 9; // 2 and 5 dropped by retention while we were away
    feed.onLive(stream.live(11));
    await until(3);
    await idle();
    expect(seqs(out)).toEqual([2, 9, 11]);
    expect(out[1]!.prev).toBe(8); // not 2: readers see a gap and resynchronise
    expect(out[2]!.prev).toBe(9);
    expect(losses).toEqual([[2, 9]]);
  });

  it('delivers a message whose predecessor is gone with its real prev', async () => {
    const { stream, feed, out, losses, until, idle } = setup();
    feed.begin({ cursor: 0, state: undefined, recent: [], chainStart: 0 });
    [2, 5, 9].forEach((s) => stream.add(s));
    feed.onLive(stream.live(2));
    stream.retainedFrom = 9;
    feed.onLive(stream.live(9)); // prev 5, no longer readable
    await until(2);
    await idle();
    expect(seqs(out)).toEqual([2, 9]);
    expect(out[1]!.prev).toBe(5);
    expect(losses).toEqual([[2, 9]]);
  });

  it('past maxPending drops the buffer and reads everything after the cursor instead', async () => {
    const { stream, feed, out, until, idle } = setup({ maxPending: 3 });
    feed.begin({ cursor: 0, state: undefined, recent: [], chainStart: 0 });
    for (let s = 1; s <= 10; s++) stream.add(s);
    feed.onLive(stream.live(1));
    stream.hold();
    feed.onLive(stream.live(3));
    for (let s = 4; s <= 10; s++) feed.onLive(stream.live(s));
    stream.release();
    await until(10);
    await idle();
    expect(seqs(out)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(feed.stats.overflows).toBeGreaterThan(0);
    expect(stream.reads.some((r) => r.until === undefined)).toBe(true);
  });

  it('resync reads what the live path missed (after a reconnect), exactly once', async () => {
    const { stream, feed, out, until, idle } = setup();
    feed.begin({ cursor: 0, state: undefined, recent: [], chainStart: 0 });
    for (let s = 1; s <= 5; s++) stream.add(s);
    feed.onLive(stream.live(1));
    feed.onLive(stream.live(2));
    feed.resync(); // 3, 4, 5 were stored while disconnected
    feed.onLive(stream.live(5)); // and this copy arrives after the reconnect
    await until(5);
    await idle();
    expect(seqs(out)).toEqual([1, 2, 3, 4, 5]);
    expect(stream.reads).toEqual([{ from: 2, until: undefined }]);
  });

  it('retries a failed read and loses nothing', async () => {
    const { stream, feed, out, until, idle } = setup();
    feed.begin({ cursor: 0, state: undefined, recent: [], chainStart: 0 });
    for (let s = 1; s <= 4; s++) stream.add(s);
    feed.onLive(stream.live(1));
    stream.failNext = 2;
    feed.onLive(stream.live(4));
    await until(4);
    await idle();
    expect(seqs(out)).toEqual([1, 2, 3, 4]);
    expect(stream.reads.length).toBe(3);
  });

  it('reset (stream recreated) starts over from the new stream', async () => {
    const { stream, feed, out, until, idle } = setup();
    feed.begin({ cursor: 0, state: undefined, recent: [], chainStart: 0 });
    for (let s = 1; s <= 3; s++) stream.add(s, 'patch', { old: s });
    for (let s = 1; s <= 3; s++) feed.onLive(stream.live(s));
    stream.messages = [];
    stream.add(1, 'set', { fresh: true });
    stream.add(2, 'patch', { more: 1 });
    feed.onLive(stream.live(1)); // seq <= cursor: looks like a duplicate until the reset
    feed.reset();
    await until(5);
    await idle();
    expect(seqs(out)).toEqual([1, 2, 3, 1, 2]);
    expect(feed.cursor).toBe(2);
    expect(feed.state).toEqual({ fresh: true, more: 1 });
  });

  it('replayAfter answers only what the cache provably holds', async () => {
    const { stream, feed } = setup({ cacheSize: 3 });
    for (let s = 1; s <= 6; s++) stream.add(s);
    feed.begin({ cursor: 2, state: undefined, recent: [stream.live(1), stream.live(2)], chainStart: 0 });
    expect(seqs(feed.replayAfter(0)!)).toEqual([1, 2]);
    expect(feed.replayAfter(2)).toEqual([]);
    expect(feed.replayAfter(3)).toBeUndefined(); // beyond the cursor
    for (let s = 3; s <= 6; s++) feed.onLive(stream.live(s));
    // cache holds 4, 5, 6: positions >= 3 are covered, older ones are not
    expect(seqs(feed.replayAfter(3)!)).toEqual([4, 5, 6]);
    expect(seqs(feed.replayAfter(5)!)).toEqual([6]);
    expect(feed.replayAfter(2)).toBeUndefined();
  });

  it('with no cache, only an up-to-date position is answered', () => {
    const { stream, feed } = setup({ cacheSize: 0 });
    [1, 2, 3].forEach((s) => stream.add(s));
    feed.begin({ cursor: 2, state: undefined, recent: [stream.live(1), stream.live(2)], chainStart: 0 });
    expect(feed.replayAfter(2)).toEqual([]);
    expect(feed.replayAfter(1)).toBeUndefined();
    feed.onLive(stream.live(3));
    expect(feed.replayAfter(3)).toEqual([]);
    expect(feed.replayAfter(2)).toBeUndefined();
  });

  it('an unproven start is covered only from the first message that chains onto it', () => {
    const { stream, feed } = setup();
    [4, 8].forEach((s) => stream.add(s));
    feed.begin({ cursor: 4, state: undefined, recent: [], chainStart: undefined });
    expect(feed.replayAfter(4)).toBeUndefined();
    feed.onLive(stream.live(8)); // prev 4: proves (4, 8]
    expect(seqs(feed.replayAfter(4)!)).toEqual([8]);
  });
});

describe('rebuildChain', () => {
  const stored = (...s: number[]): StoredMessage[] => s.map((seq) => ({ seq, kind: 'event', data: seq, ts: seq }));

  it('is proven when the read starts with the message at `after`', () => {
    const c = rebuildChain(T, 3, stored(3, 5, 9));
    expect(c.proven).toBe(true);
    expect(c.unknownFirst).toBeUndefined();
    expect(c.messages.map((m) => [m.seq, m.prev])).toEqual([
      [5, 3],
      [9, 5],
    ]);
  });

  it('is proven when nothing can lie between (seq - 1 === after), including the stream start', () => {
    expect(rebuildChain(T, 4, stored(5, 6)).proven).toBe(true);
    expect(rebuildChain(T, 0, stored(1, 2)).messages.map((m) => m.prev)).toEqual([0, 1]);
  });

  it('reports an unknown first prev as seq - 1', () => {
    const c = rebuildChain(T, 3, stored(7, 9));
    expect(c.proven).toBe(false);
    expect(c.unknownFirst?.seq).toBe(7);
    expect(c.messages.map((m) => [m.seq, m.prev])).toEqual([
      [7, 6],
      [9, 7],
    ]);
  });
});

describe('envelope codec', () => {
  it('round-trips kind, data (including binary) and ts', () => {
    const bin = new Uint8Array([1, 2, 3]);
    const e = decodeEnvelope(encodeEnvelope('patch', { a: { b: [1, null] }, bin }, 1234), 0);
    expect(e.kind).toBe('patch');
    expect(e.ts).toBe(1234);
    expect((e.data as { a: unknown }).a).toEqual({ b: [1, null] });
    expect(new Uint8Array((e.data as { bin: Uint8Array }).bin)).toEqual(bin);
  });

  it('accepts a JSON envelope from tools such as `nats pub`, and a msgpack one without ts', () => {
    const json = new TextEncoder().encode(JSON.stringify({ kind: 'set', data: { x: 1 } }));
    expect(decodeEnvelope(json, 77)).toEqual({ kind: 'set', data: { x: 1 }, ts: 77 });
    const packed = new Packr({ useRecords: false }).pack({ kind: 'event', data: 'hi' });
    expect(decodeEnvelope(packed, 5)).toEqual({ kind: 'event', data: 'hi', ts: 5 });
  });

  it('carries data no client encoding could carry (64-bit integer, deep nesting) as raw bytes', () => {
    const big = new Packr({ useRecords: false, largeBigIntToFloat: false }).pack({ kind: 'patch', data: { n: 2n ** 60n } });
    const deep = new TextEncoder().encode(JSON.stringify({ kind: 'set', data: JSON.parse('{"a":'.repeat(40) + '1' + '}'.repeat(40)) }));
    for (const bytes of [big, deep]) {
      const e = decodeEnvelope(bytes, 3);
      expect(e).toEqual({ kind: 'event', data: bytes, ts: 3 });
    }
  });

  it('turns anything else into an event carrying the raw bytes, never throwing', () => {
    for (const raw of ['plain text', '{not json', '']) {
      const bytes = new TextEncoder().encode(raw);
      const e = decodeEnvelope(bytes, 9);
      expect(e.kind).toBe('event');
      expect(e.data).toBe(bytes);
    }
    const wrongKind = new Packr({ useRecords: false }).pack({ kind: 'delete', data: 1 });
    expect(decodeEnvelope(wrongKind, 1).kind).toBe('event');
  });

  it('snapshots round-trip and foreign values are ignored', () => {
    const s = { seq: 42, epoch: 'abc', state: { a: [1, 2] }, ts: 5 };
    expect(decodeSnapshot(encodeSnapshot(s))).toEqual(s);
    expect(decodeSnapshot(new TextEncoder().encode('garbage'))).toBeUndefined();
    expect(decodeSnapshot(new Packr({ useRecords: false }).pack({ v: 2, seq: 1, epoch: 'x' }))).toBeUndefined();
  });
});

describe('epochFromCreated', () => {
  it('is stable for one created time and differs at nanosecond resolution', () => {
    const a = epochFromCreated('2026-11-23T05:45:51.81551582Z');
    expect(epochFromCreated('2026-11-23T05:45:51.81551582Z')).toBe(a);
    expect(epochFromCreated('2026-11-23T05:45:51.815515821Z')).not.toBe(a);
    expect(epochFromCreated('2026-11-23T05:45:52Z')).not.toBe(a);
    expect(a).toMatch(/^[0-9a-z]{1,64}$/);
  });

  it('still derives a stable value from an unexpected format', () => {
    expect(epochFromCreated('yesterday')).toBe(epochFromCreated('yesterday'));
    expect(epochFromCreated('yesterday')).not.toBe(epochFromCreated('today'));
  });
});

describe('backoffDelay (full jitter)', () => {
  it('stays within [0, min(cap, base * 2^attempt)]', () => {
    expect(backoffDelay(0, 100, 5000, () => 0.999)).toBe(99);
    expect(backoffDelay(3, 100, 5000, () => 0.5)).toBe(400);
    expect(backoffDelay(20, 100, 5000, () => 0.999)).toBe(4995);
    expect(backoffDelay(5, 100, 5000, () => 0)).toBe(0);
  });
});
