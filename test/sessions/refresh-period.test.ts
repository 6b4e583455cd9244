import { describe, expect, it } from 'vitest';
import { refreshPeriodMs } from '../../gateway/bus/nats/sessions.ts';

describe('session registry refresh period', () => {
  it('rewrites an attached record with at least half its TTL to spare from a minute up, two thirds below', () => {
    expect(refreshPeriodMs(300_000)).toBe(150_000); // the default TTL: 150 s of margin
    expect(refreshPeriodMs(60_000)).toBe(30_000);
    expect(refreshPeriodMs(59_999)).toBe(19_999);
    expect(refreshPeriodMs(3_000)).toBe(1_000);
    expect(refreshPeriodMs(600)).toBe(500); // never more often than twice a second
    for (const ttl of [1_000, 10_000, 59_000, 60_000, 300_000, 3_600_000]) expect(ttl - refreshPeriodMs(ttl)).toBeGreaterThanOrEqual(ttl / 2);
  });
});
