/**
 * SmallMap and SmallSet (gateway/small.ts) behave as Map and Set for the operations the gateway
 * uses, across the move from the inline first entry to the real collection: the same sequence of
 * operations is run on both and every answer compared.
 */
import { describe, expect, it } from 'vitest';
import { SmallMap, SmallSet } from '../../gateway/small.ts';

/** A deterministic sequence of operations over a few keys (seeded LCG). */
function* ops(seed: number, count: number): Generator<{ op: number; key: string; value: number }> {
  let x = seed;
  for (let i = 0; i < count; i++) {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    yield { op: x % 5, key: `k${(x >> 8) % 4}`, value: i };
  }
}

describe('SmallMap', () => {
  it('answers as a Map through any sequence of set, delete, get, has and clear', () => {
    for (let seed = 1; seed <= 50; seed++) {
      const small = new SmallMap<string, number>();
      const map = new Map<string, number>();
      for (const { op, key, value } of ops(seed, 60)) {
        if (op === 0 || op === 1) {
          small.set(key, value);
          map.set(key, value);
        } else if (op === 2) expect(small.delete(key)).toBe(map.delete(key));
        else if (op === 3) expect(small.get(key)).toBe(map.get(key));
        else if (value % 17 === 0) {
          small.clear();
          map.clear();
        } else expect(small.has(key)).toBe(map.has(key));
        expect(small.size).toBe(map.size);
        expect([...small]).toEqual([...map]);
        expect([...small.keys()]).toEqual([...map.keys()]);
      }
    }
  });

  it('keeps insertion order when the second entry arrives', () => {
    const m = new SmallMap<string, number>().set('b', 1).set('a', 2);
    expect([...m]).toEqual([
      ['b', 1],
      ['a', 2],
    ]);
    m.set('b', 3); // an update keeps the place
    expect([...m.keys()]).toEqual(['b', 'a']);
  });
});

describe('SmallSet', () => {
  it('answers as a Set through any sequence of add, delete and has', () => {
    for (let seed = 1; seed <= 50; seed++) {
      const small = new SmallSet<string>();
      const set = new Set<string>();
      for (const { op, key } of ops(seed, 60)) {
        if (op <= 1) {
          small.add(key);
          set.add(key);
        } else if (op === 2) expect(small.delete(key)).toBe(set.delete(key));
        else expect(small.has(key)).toBe(set.has(key));
        expect(small.size).toBe(set.size);
        expect([...small]).toEqual([...set]);
      }
    }
  });

  it('starts from an iterable, in its order, without duplicates', () => {
    expect([...new SmallSet(['x', 'y', 'x'])]).toEqual(['x', 'y']);
    expect([...new SmallSet(['x'])]).toEqual(['x']);
    expect(new SmallSet().size).toBe(0);
  });
});
