/** Which namespaces can be purged by age on their own, and the time -> sequence samples (logic only). */
import { describe, expect, it } from 'vitest';
import { AgePurger, purgeRules } from '../../gateway/bus/nats/purge.ts';

describe('purgeRules', () => {
  it('purges namespaces shorter-lived than the stream, never the default namespace', () => {
    const rules = purgeRules(
      [
        { name: '', ageMs: 60_000 },
        { name: 'cursor', ageMs: 5_000 },
        { name: 'chat', ageMs: 60_000 },
      ],
      60_000,
    );
    expect(rules).toEqual([{ namespace: 'cursor', ageMs: 5_000, topics: ['cursor', 'cursor.>'] }]);
    // The default namespace shorter than another one: its filter would take every topic.
    expect(
      purgeRules(
        [
          { name: '', ageMs: 1_000 },
          { name: 'archive', ageMs: 60_000 },
        ],
        60_000,
      ),
    ).toEqual([]);
  });

  it('leaves a namespace alone when a namespace nested under it keeps messages longer', () => {
    const ns = [
      { name: '', ageMs: 60_000 },
      { name: 'chat', ageMs: 5_000 },
      { name: 'chat.vip', ageMs: 30_000 },
      { name: 'live', ageMs: 5_000 },
      { name: 'live.fast', ageMs: 1_000 },
    ];
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
      // Samples older than the longest age (plus a margin) are dropped, all but the newest of them.
      purger.observe(40, 10_000);
      expect(purger.seqBefore(1_200)).toBe(0);
      expect(purger.seqBefore(1_300)).toBe(30);
      expect(purger.seqBefore(10_000)).toBe(40);
    } finally {
      void purger.stop();
    }
  });
});

describe('AgePurger passes', () => {
  it("purges each rule below the newest sample old enough, never below the keeper's floor, and not twice", async () => {
    const log = { debug() {}, info() {}, warn() {}, error() {} };
    const calls: Array<{ filter?: string; seq?: number }> = [];
    const jsm = { streams: { purge: async (_stream: string, o: { filter?: string; seq?: number }) => (calls.push(o), { purged: 1, success: true }) } };
    let floor = 25; // a change of the namespace at 25 is not in a written snapshot yet
    const rules = [{ namespace: 'cur', ageMs: 1_000, topics: ['cur', 'cur.>'] }];
    const purger = new AgePurger(jsm as never, 's', 'p.in.', rules, log, () => floor);
    purger.start();
    try {
      const now = Date.now();
      purger.observe(10, now - 5_000);
      purger.observe(20, now - 3_000);
      purger.observe(35, now - 1_500);
      purger.observe(40, now - 10); // too recent
      await purger.purgeOnce();
      expect(calls).toEqual([
        { filter: 'p.in.cur', seq: 25 },
        { filter: 'p.in.cur.>', seq: 25 },
      ]);
      floor = Infinity; // written
      await purger.purgeOnce();
      expect(calls.slice(2)).toEqual([
        { filter: 'p.in.cur', seq: 35 },
        { filter: 'p.in.cur.>', seq: 35 },
      ]);
      await purger.purgeOnce(); // nothing new
      expect(calls).toHaveLength(4);
      expect(purger.stats).toMatchObject({ purges: 2, purged: 4, failures: 0 });
    } finally {
      await purger.stop();
    }
  });
});
