/**
 * Session ids and keys come from a pooled random buffer (gateway/random-token.ts): every token
 * has the length and alphabet the protocol documents (base64url, no padding), and no bytes are
 * handed out twice, across many refills of the pool.
 */
import { describe, expect, it } from 'vitest';
import { newSessionId, newSessionKey } from '../../gateway/bus/sessions.ts';
import { randomToken } from '../../gateway/random-token.ts';

describe('randomToken', () => {
  it('gives base64url tokens of the asked length, each unique, across pool refills', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 20_000; i++) {
      const t = randomToken(i % 2 ? 18 : 12);
      expect(t).toMatch(i % 2 ? /^[A-Za-z0-9_-]{24}$/ : /^[A-Za-z0-9_-]{16}$/);
      seen.add(t);
    }
    expect(seen.size).toBe(20_000);
    expect(newSessionId()).toMatch(/^[A-Za-z0-9_-]{16}$/);
    expect(newSessionKey()).toMatch(/^[A-Za-z0-9_-]{24}$/);
  });

  it('spreads its bytes: every base64url character turns up in a few thousand tokens', () => {
    const chars = new Set<string>();
    for (let i = 0; i < 2_000; i++) for (const c of randomToken(18)) chars.add(c);
    expect(chars.size).toBe(64);
  });
});
