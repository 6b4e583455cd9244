/**
 * Peer-channel signalling through a real gateway (gateway/policy/peer.ts): a client may signal
 * only to a session present in a presence topic it is subscribed to, within the size bound and
 * the signal rate; everything refused gets its code, nothing refused reaches the other side, and
 * `/metrics` counts what passed. The pure rules: test/security/peer-policy.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { ErrorCode, type ServerFrame } from '../../protocol/index.ts';
import { useGateway } from '../support/gateway.ts';
import { connectHello, isReply, type RawClient } from '../support/raw-client.ts';

const gw = await useGateway({
  direct: { clients: 'anyone' },
  namespaces: { room: { presence: 'members' } },
  peer: { maxSignalBytes: 1024, ratePerSec: 5, burst: 10 },
  limits: { connRatePerSec: 0, userRatePerSec: 0 },
});

const signal = (c: RawClient, id: number, session: string, extra: object = {}) =>
  c.send({ t: 'send', id, to: { session }, data: { $peer: { ch: 'c1', op: 'ice', candidate: null, ...extra } } });
const reply = (c: RawClient, id: number) => c.next(isReply(id));

async function inRoom(room: string) {
  const x = await connectHello(gw.url, 'json');
  x.c.send({ t: 'sub', id: 900, topic: room });
  await x.c.next(isReply(900));
  return x;
}

async function signalsPassed(): Promise<number> {
  const text = await (await fetch(`${gw.httpUrl}/metrics`)).text();
  return text
    .split('\n')
    .filter((l) => l.startsWith('symphonic_peer_signals_total{'))
    .reduce((n, l) => n + Number(l.split(' ').pop()), 0);
}

describe('peer signalling policy at the gateway', () => {
  it('passes signals between members of a shared presence topic; refuses a session the sender cannot discover (3001)', async () => {
    const a = await inRoom('room.s1');
    const b = await inRoom('room.s1');
    const stranger = await inRoom('room.s2');
    // The room's presence shows b to a once its batch is out.
    await a.c.next((f: ServerFrame) => f.t === 'presence' && f.count === 2);
    const before = await signalsPassed();
    signal(a.c, 1, b.welcome.session);
    expect(await reply(a.c, 1)).toMatchObject({ t: 'sent', sessions: 1 });
    expect(await b.c.next((f) => f.t === 'dm')).toMatchObject({ data: { $peer: { op: 'ice' } } });
    signal(a.c, 2, stranger.welcome.session);
    expect(await reply(a.c, 2)).toMatchObject({ t: 'error', code: ErrorCode.Forbidden });
    expect(stranger.c.frames.some((f) => f.t === 'dm')).toBe(false);
    expect(await signalsPassed()).toBe(before + 1);
    for (const x of [a, b, stranger]) x.c.close();
  });

  it('refuses an oversized signal (4002) and a flood past the signal rate (4000)', async () => {
    const a = await inRoom('room.s3');
    const b = await inRoom('room.s3');
    await a.c.next((f: ServerFrame) => f.t === 'presence' && f.count === 2);
    signal(a.c, 1, b.welcome.session, { pad: 'x'.repeat(2000) });
    expect(await reply(a.c, 1)).toMatchObject({ t: 'error', code: ErrorCode.PayloadTooLarge });
    // Burst 10: of 30 signals sent at once, the first 10 pass and the rest are refused.
    for (let i = 0; i < 30; i++) signal(a.c, 100 + i, b.welcome.session);
    const answers = await Promise.all(Array.from({ length: 30 }, (_, i) => reply(a.c, 100 + i)));
    const sent = answers.filter((r) => r.t === 'sent').length;
    expect(sent).toBeGreaterThanOrEqual(10);
    expect(30 - sent).toBeGreaterThanOrEqual(10); // the refill (5/s) adds a few at most while they are handled
    expect(answers.filter((r) => r.t === 'error').every((r) => (r as { code: number }).code === ErrorCode.RateLimited)).toBe(true);
    a.c.close();
    b.c.close();
  });
});
