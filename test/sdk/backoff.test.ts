import { describe, expect, it } from 'vitest';
import { backoffDelay, shutdownDelay } from '../../sdk/backoff.ts';

const opts = { min: 100, max: 5000 };

describe('full-jitter backoff', () => {
  it('attempt n draws from [0, min(max, min * 2^n)]', () => {
    expect(backoffDelay(0, opts, () => 0)).toBe(0);
    expect(backoffDelay(0, opts, () => 0.999999)).toBe(99);
    expect(backoffDelay(1, opts, () => 0.999999)).toBe(199);
    expect(backoffDelay(3, opts, () => 0.5)).toBe(400);
    expect(backoffDelay(10, opts, () => 0.999999)).toBe(4999);
  });

  it('never exceeds max, even for huge attempt counts', () => {
    for (const attempt of [6, 31, 100, 1e6, Number.MAX_SAFE_INTEGER]) {
      const d = backoffDelay(attempt, opts, () => 0.9999999);
      expect(d).toBeLessThan(opts.max);
      expect(Number.isFinite(d)).toBe(true);
    }
  });

  it('spreads a crowd: 1000 clients at attempt 4 use the whole window', () => {
    let seed = 42;
    const rnd = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const delays = Array.from({ length: 1000 }, () => backoffDelay(4, opts, rnd));
    expect(Math.min(...delays)).toBeLessThan(100);
    expect(Math.max(...delays)).toBeGreaterThan(1500);
    const buckets = new Array(4).fill(0);
    for (const d of delays) buckets[Math.floor(d / 400)]++;
    for (const b of buckets) expect(b).toBeGreaterThan(150); // roughly uniform over [0, 1600)
  });

  it('negative attempts are treated as the first', () => {
    expect(backoffDelay(-3, opts, () => 0.999999)).toBe(99);
  });

  it('after ServerShutdown the first attempt is spread over the whole spread window', () => {
    expect(shutdownDelay(0, opts, 3000, () => 0.999999)).toBe(2999);
    expect(shutdownDelay(0, opts, 3000, () => 0)).toBe(0);
    // later attempts keep backing off past the spread window
    expect(shutdownDelay(10, opts, 3000, () => 0.999999)).toBe(4999);
  });
});
