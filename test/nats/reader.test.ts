/**
 * The stream reader's lanes (logic only, over an in-memory stand-in for STREAM.MSG.GET: the real
 * reads run against nats-server in the engine and contract tests): a read returns exactly the
 * topic's messages in range, in order, at most `limit`, however sparse the topic is in the stream,
 * and requests left unanswered (a leader election) are asked again.
 */
import { describe, expect, it } from 'vitest';
import type { MsgReads } from '../../nats-kit/js-reader.ts';
import { encodeEnvelope } from '../../gateway/bus/nats/codec.ts';
import { StreamReader } from '../../gateway/bus/nats/reader.ts';

interface Stored {
  seq: number;
  subject: string;
  data: Uint8Array;
}

/** STREAM.MSG.GET over `stored`: `last_by_subj`, and `seq` + `next_by_subj` (undefined when none). */
function fakeReads(stored: Stored[], opts: { unanswered?: (n: number) => boolean; onRequest?: (n: number) => void } = {}) {
  let requests = 0;
  const reads: MsgReads = {
    get(_stream, q, timeoutMs) {
      const n = requests++;
      opts.onRequest?.(n);
      // Unanswered: times out by itself, as a JsReader's request does.
      if (opts.unanswered?.(n))
        return new Promise((_, reject) => setTimeout(() => reject(Object.assign(new Error('no answer'), { code: 'TIMEOUT' })), timeoutMs));
      const hit =
        'last_by_subj' in q
          ? stored.filter((m) => m.subject === q.last_by_subj).at(-1)
          : stored.find((m) => m.seq >= q.seq && 'next_by_subj' in q && m.subject === q.next_by_subj);
      return Promise.resolve(hit && { subject: hit.subject, seq: hit.seq, data: hit.data, time: new Date(1_000).toISOString(), headers: undefined });
    },
  };
  return { reads, requests: () => requests };
}

/** `count` messages of `t` (data.n = 1..count), `others` messages of other topics between each two. */
function streamOf(count: number, others: number): Stored[] {
  const out: Stored[] = [];
  let seq = 0;
  for (let n = 1; n <= count; n++) {
    for (let k = 0; k < others; k++) out.push({ seq: ++seq, subject: `p.in.other${k}`, data: encodeEnvelope('event', { k }, 1) });
    out.push({ seq: ++seq, subject: 'p.in.t', data: encodeEnvelope('patch', { n }, 1) });
  }
  return out;
}

const seqsOf = (stored: Stored[], from: number, until = Infinity) =>
  stored.filter((m) => m.subject === 'p.in.t' && m.seq >= from && m.seq <= until).map((m) => m.seq);

describe('StreamReader', () => {
  for (const [count, others] of [
    [1000, 0],
    [600, 2],
    [200, 30],
    [3, 0],
    [40, 7],
  ] as const) {
    it(`reads every message of a topic in range, in order (${count} messages, ${others} others between each)`, async () => {
      const stored = streamOf(count, others);
      const { reads, requests } = fakeReads(stored);
      const reader = new StreamReader(reads, 's', 'p.in.', 5_000);
      const all = await reader.read('t', 1, { limit: count + 1 });
      expect(all.map((m) => m.seq)).toEqual(seqsOf(stored, 1));
      expect(all.map((m) => (m.data as { n: number }).n)).toEqual(Array.from({ length: count }, (_, i) => i + 1));
      // About one request per message, plus the lanes' ends and the `last` read: no waste on sparse topics.
      expect(requests()).toBeLessThanOrEqual(count + 16 + 2);

      const mid = seqsOf(stored, 1)[Math.floor(count / 3)]!;
      const until = seqsOf(stored, 1)[Math.floor((2 * count) / 3)]!;
      expect((await reader.read('t', mid, { until, limit: count })).map((m) => m.seq)).toEqual(seqsOf(stored, mid, until));
      expect((await reader.read('t', mid, { limit: 50 })).map((m) => m.seq)).toEqual(seqsOf(stored, mid).slice(0, 50));
    });
  }

  it('a small limit on a long range reads little more than it returns', async () => {
    const stored = streamOf(1000, 1);
    const { reads, requests } = fakeReads(stored);
    const got = await new StreamReader(reads, 's', 'p.in.', 5_000).read('t', 1, { limit: 10 });
    expect(got.map((m) => m.seq)).toEqual(seqsOf(stored, 1).slice(0, 10));
    expect(requests()).toBeLessThanOrEqual(12);
  });

  it('nothing in range: an empty read; a topic with no messages: last is 0', async () => {
    const stored = streamOf(10, 1);
    const { reads } = fakeReads(stored);
    const reader = new StreamReader(reads, 's', 'p.in.', 5_000);
    expect(await reader.read('t', 1000, { limit: 100 })).toEqual([]);
    expect(await reader.last('nothing')).toBe(0);
  });

  it('retention passing the middle of a read leaves no silent hole: what is below the oldest retained message is dropped', async () => {
    const stored = streamOf(1000, 0);
    // From the 10th request on, each of the next 300 finds the topic's oldest message gone (a
    // publisher at full history, while the read is under way).
    const { reads } = fakeReads(stored, { onRequest: (n) => n >= 10 && n < 310 && stored.shift() });
    const got = (await new StreamReader(reads, 's', 'p.in.', 5_000).read('t', 100, { limit: 901 })).map((m) => m.seq);
    // Its start expired during the read: the read no longer starts at 100 (callers see a gap)...
    expect(got[0]).toBeGreaterThan(100);
    // ...and holds no hole: every message from its first on, as retained now.
    expect(got).toEqual(seqsOf(stored, got[0]!));

    // A read whose start outlives it is whole.
    const whole = fakeReads(streamOf(300, 1));
    const all = await new StreamReader(whole.reads, 's', 'p.in.', 5_000).read('t', 1, { limit: 301 });
    expect(all.map((m) => m.seq)).toEqual(seqsOf(streamOf(300, 1), 1));
  });

  it('asks again when a request goes unanswered (a leader election), within the read timeout', async () => {
    const stored = streamOf(50, 1);
    // The first 3 requests are never answered.
    const { reads } = fakeReads(stored, { unanswered: (n) => n < 3 });
    const got = await new StreamReader(reads, 's', 'p.in.', 10_000).read('t', 1, { limit: 100 });
    expect(got.map((m) => m.seq)).toEqual(seqsOf(stored, 1));
  });

  it('gives up with a timeout error when nothing answers until the read timeout', async () => {
    const { reads } = fakeReads(streamOf(5, 0), { unanswered: () => true });
    await expect(new StreamReader(reads, 's', 'p.in.', 700).read('t', 1, { limit: 10 })).rejects.toMatchObject({ code: 'TIMEOUT' });
  });
});
