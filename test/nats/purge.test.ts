/** Which namespaces can be purged by age on their own, and the time -> sequence samples (logic only). */
import { describe, expect, it } from 'vitest';
import { AgePurger, purgeRules } from '../../gateway/bus/nats/purge.ts';

describe('purgeRules', () => {
  it('purges namespaces shorter-lived than the stream, never the default namespace', () => {
    const rules = purgeRules([{ name: '', ageMs: 60_000 }, { name: 'cursor', ageMs: 5_000 }, { name: 'chat', ageMs: 60_000 }], 60_000);
    expect(rules).toEqual([{ namespace: 'cursor', ageMs: 5_000, topics: ['cursor', 'cursor.>'] }]);
    // The default namespace shorter than another one: its filter would take every topic.
    expect(purgeRules([{ name: '', ageMs: 1_000 }, { name: 'archive', ageMs: 60_000 }], 60_000)).toEqual([]);
  });

  it('leaves a namespace alone when a namespace nested under it keeps messages longer', () => {
    const ns = [{ name: '', ageMs: 60_000 }, { name: 'chat', ageMs: 5_000 }, { name: 'chat.vip', ageMs: 30_000 }, { name: 'live', ageMs: 5_000 }, { name: 'live.fast', ageMs: 1_000 }];
    expect(purgeRules(ns, 60_000).map((r) => r.namespace)).toEqual(['chat.vip', 'live', 'live.fast']);
  });

  it('purges nothing when the stream keeps no age limit and none is shorter', () => {
    expect(purgeRules([{ name: '', ageMs: 1_000 }], 1_000)).toEqual([]);
    expect(purgeRules([{ name: 'x', ageMs: 1_000 }], Infinity)).toHaveLength(1);
  });
});

describe('AgePurger samples', () => {
  it('answers the sequence below which every message was received before a time', () => {
    const log = { debug() {}, info() {}, warn() {}, error() {} };
    const purger = new AgePurger(undefined as never, 's', 'p.in.', [{ namespace: 'x', ageMs: 1_000, topics: ['x'] }], log);
    purger.start();
    try {
      purger.observe(10, 1_000);
      purger.observe(11, 1_050); // within the sample interval: not sampled
      purger.observe(20, 1_100);
      purger.observe(30, 1_300);
      expect(purger.seqBefore(999)).toBe(0);
      expect(purger.seqBefore(1_000)).toBe(10);
      expect(purger.seqBefore(1_099)).toBe(10);
      expect(purger.seqBefore(1_200)).toBe(20);
      expect(purger.seqBefore(5_000)).toBe(30);
      // Samples older than the longest age (plus a margin) are dropped.
      purger.observe(40, 10_000);
      expect(purger.seqBefore(1_300)).toBe(0);
      expect(purger.seqBefore(10_000)).toBe(40);
    } finally {
      void purger.stop();
    }
  });
});
