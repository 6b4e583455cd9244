/** The peer-signalling rules as pure decisions (gateway/policy/peer.ts); the gateway path is in test/gateway/peer-signals.test.ts. */
import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../../protocol/index.ts';
import { canSignal, isPeerSignal, signalOp } from '../../gateway/policy/peer.ts';

const members: Record<string, string[]> = { 'room.a': ['s-bob'], 'room.b': ['s-carl'] };
const ctx = (over: Partial<Parameters<typeof canSignal>[1]> = {}) => ({
  reach: 'present' as const,
  maxSignalBytes: 1000,
  bytes: 100,
  topics: ['room.a'],
  present: (t: string, s: string) => members[t]?.includes(s) ?? false,
  ...over,
});

describe('peer signalling policy', () => {
  it('allows a session present in a topic the sender is subscribed to, and no other', () => {
    expect(canSignal({ session: 's-bob' }, ctx())).toEqual({ ok: true });
    expect(canSignal({ session: 's-carl' }, ctx())).toMatchObject({ ok: false, code: ErrorCode.Forbidden });
    expect(canSignal({ session: 's-carl' }, ctx({ topics: ['room.a', 'room.b'] }))).toEqual({ ok: true });
    expect(canSignal({ session: 's-carl' }, ctx({ reach: 'anyone' }))).toEqual({ ok: true });
  });

  it('refuses signals to a user and oversized signals with their own codes', () => {
    expect(canSignal({ user: 'bob' }, ctx({ reach: 'anyone' }))).toMatchObject({ ok: false, code: ErrorCode.BadRequest });
    expect(canSignal({ session: 's-bob' }, ctx({ bytes: 1001 }))).toMatchObject({ ok: false, code: ErrorCode.PayloadTooLarge });
  });

  it('tells signals from ordinary direct messages', () => {
    expect(isPeerSignal({ $peer: { ch: 'c', op: 'offer', sdp: '' } })).toBe(true);
    expect(isPeerSignal({ text: 'hi' })).toBe(false);
    expect(isPeerSignal(['$peer'])).toBe(false);
    expect(isPeerSignal(null)).toBe(false);
    expect(signalOp({ $peer: { op: 'data' } })).toBe('data');
    expect(signalOp({ $peer: { op: 'weird' } })).toBe('other');
    expect(signalOp({ $peer: null })).toBe('other');
  });
});
