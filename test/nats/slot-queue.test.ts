import { describe, expect, it } from 'vitest';
import { SlotQueue } from '../../nats-kit/slot-queue.ts';

describe('SlotQueue', () => {
  it('is first in, first out, and reuses its slots once emptied', () => {
    const q = new SlotQueue<number>();
    expect(q.shift()).toBeUndefined();
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 100; i++) q.push(round * 100 + i);
      expect(q.size).toBe(100);
      for (let i = 0; i < 100; i++) expect(q.shift()).toBe(round * 100 + i);
      expect(q.size).toBe(0);
    }
    expect(q.capacity).toBe(100);
  });

  it('stays bounded by its backlog when it never empties', () => {
    const q = new SlotQueue<number>();
    let next = 0;
    let expected = 0;
    for (let i = 0; i < 500; i++) q.push(next++);
    // 100,000 pushes and shifts with 500 to 501 items always waiting.
    for (let i = 0; i < 100_000; i++) {
      q.push(next++);
      expect(q.shift()).toBe(expected++);
    }
    expect(q.size).toBe(500);
    expect(q.capacity).toBeLessThanOrEqual(4096);
    while (q.size) expect(q.shift()).toBe(expected++);
    expect(expected).toBe(next);
  });
});
