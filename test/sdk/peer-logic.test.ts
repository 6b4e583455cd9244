/**
 * The peer layer's logic without a browser: the state machine, and exactly-once in-order
 * delivery across a path switch (numbering, acknowledgements, resending, reordering). The real
 * thing, in Chromium through a real gateway, is test/browser/peer.browser.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { Outbox, Reorder } from '../../sdk/peer/reliable.ts';
import { signalOf, wrap } from '../../sdk/peer/signal.ts';
import { nextPeerState, type PeerState } from '../../sdk/peer/state.ts';

describe('peer state machine', () => {
  it('finds a path, falls back, upgrades again, and ends closed for good', () => {
    const run = (events: Parameters<typeof nextPeerState>[1][]) => {
      let s: PeerState = 'connecting';
      const seen: PeerState[] = [];
      for (const e of events) {
        const n = nextPeerState(s, e);
        if (n !== null) seen.push((s = n));
      }
      return seen;
    };
    expect(run([{ type: 'p2p-open' }, { type: 'p2p-failed', reason: 'ICE failed' }, { type: 'p2p-open' }, { type: 'close', reason: 'x' }])).toEqual([
      'p2p',
      'relayed',
      'p2p',
      'closed',
    ]);
    expect(
      run([
        { type: 'p2p-failed', reason: 'timeout' },
        { type: 'p2p-failed', reason: 'again' },
      ]),
    ).toEqual(['relayed']);
    expect(run([{ type: 'close', reason: 'refused' }, { type: 'p2p-open' }, { type: 'p2p-failed', reason: 'late' }])).toEqual(['closed']);
  });
});

describe('exactly once, in order, across a path switch', () => {
  it('delivers in number order, holds what arrives early, drops duplicates', () => {
    const r = new Reorder<string>();
    expect(r.accept(2, 'b')).toEqual([]);
    expect(r.accept(1, 'a')).toEqual(['a', 'b']);
    expect(r.accept(2, 'b')).toEqual([]);
    expect(r.accept(4, 'd')).toEqual([]);
    expect(r.accept(4, 'd')).toEqual([]);
    expect(r.accept(3, 'c')).toEqual(['c', 'd']);
    expect(r.delivered).toBe(4);
    expect(r.waiting).toBe(0);
  });

  it('refuses to hold messages without bound behind a gap', () => {
    const r = new Reorder<number>(3);
    for (const n of [2, 3, 4]) r.accept(n, n);
    expect(() => r.accept(5, 5)).toThrow(/wait for message 1/);
  });

  it('keeps what the data channel carried until acknowledged, for the relay to resend', () => {
    const o = new Outbox<string>();
    for (const d of ['a', 'b', 'c', 'd']) o.number(d, true);
    o.ack(2);
    expect(o.unacked().map((m) => m.d)).toEqual(['c', 'd']);
    o.ack(1); // an old ack changes nothing
    expect(o.unacked()).toHaveLength(2);
    o.ack(4);
    expect(o.unacked()).toHaveLength(0);
    expect(o.sent).toBe(4);
  });

  it('a data channel that dies mid-stream loses nothing and repeats nothing (200 seeded runs)', () => {
    let seed = 7;
    const rand = () => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
    for (let run = 0; run < 200; run++) {
      const out = new Outbox<number>();
      const inb = new Reorder<number>();
      const got: number[] = [];
      const total = 50 + Math.floor(rand() * 100);
      const dies = Math.floor(rand() * total);
      // Phase 1: the data channel carries messages in order; it delivers a prefix of them
      // (some are in flight when it dies) and some acks come back.
      for (let i = 0; i < dies; i++) out.number(i, true);
      const arrived = Math.floor(rand() * (dies + 1));
      for (const m of out.unacked().slice(0, arrived)) got.push(...inb.accept(m.n, m.d));
      out.ack(Math.floor(rand() * (inb.delivered + 1)));
      // Phase 2: relayed. Everything unacknowledged goes again, then the rest; the relay may
      // also carry a few duplicates twice (a retried send whose first try landed).
      for (let i = dies; i < total; i++) out.number(i, true);
      const resend = [...out.unacked()];
      for (const m of resend) {
        got.push(...inb.accept(m.n, m.d));
        if (rand() < 0.1) got.push(...inb.accept(m.n, m.d));
      }
      expect(got).toEqual(Array.from({ length: total }, (_, i) => i));
    }
  });
});

describe('signals', () => {
  it('recognises its own direct messages and nothing else', () => {
    expect(signalOf(wrap({ ch: 'c1', op: 'data', n: 3, d: { x: 1 } }))).toEqual({ ch: 'c1', op: 'data', n: 3, d: { x: 1 } });
    expect(signalOf({ text: 'hi' })).toBeUndefined();
    expect(signalOf({ $peer: { ch: 'c1', op: 'explode' } })).toBeUndefined();
    expect(signalOf({ $peer: { ch: '', op: 'close' } })).toBeUndefined();
    expect(signalOf({ $peer: { ch: 'c1', op: 'data', n: -1 } })).toBeUndefined();
    expect(signalOf({ $peer: { ch: 'c1', op: 'offer' } })).toBeUndefined();
    expect(signalOf(null)).toBeUndefined();
  });
});
