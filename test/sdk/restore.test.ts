/**
 * Server-side restore on resume (hello.restore) through the client: what the hello asks, how the
 * subscriptions take the server's replies.
 */
import { describe, expect, it, vi } from 'vitest';
import { ErrorCode } from '../../protocol/codes.ts';
import type { SymphonicError, ClientOptions } from '../../sdk/index.ts';
import { answerSub, connected, server, useFakeServer } from './helpers/client-harness.ts';
import { msg } from './helpers/fake-socket.ts';

useFakeServer();

describe('server-side restore on resume (hello.restore)', () => {
  /** A client subscribed to `topics` (positions at seq 5), then dropped and reconnected: the new socket, opened. */
  async function droppedAndBack(topics: string[], options: ClientOptions = {}) {
    const { c, s } = connected({ reconnect: { min: 10, max: 10 }, ...options });
    const subs = topics.map((t) => {
      const sub = c.subscribe(t);
      answerSub(s, { seq: 5, state: { n: 5 } });
      return sub;
    });
    s.serverClose(1006, 'link lost');
    await vi.advanceTimersByTimeAsync(10);
    const b = server.last;
    b.open();
    return { c, subs, b };
  }
  const resumedWelcome = (topics: string[]) => ({ t: 'welcome', v: 1, session: 'sess-1', key: 'key-2', resumed: true, heartbeat: 1000, node: 'n', topics });

  it('sends its positions in hello; the server restores: no sub frames, the replay applies exactly once', async () => {
    const {
      subs: [sub],
      b,
    } = await droppedAndBack(['t.x']);
    expect(b.sent[0]).toEqual({
      t: 'hello',
      v: 1,
      compact: true,
      session: { id: 'sess-1', key: 'key-1' },
      restore: { since: { 't.x': { seq: 5, epoch: 'e1' } } },
    });
    b.deliver(resumedWelcome(['t.x']));
    expect(b.framesOf('sub')).toEqual([]);
    expect(sub!.status).toBe('resubscribing');
    b.deliver(msg('t.x', 6, 5, 'patch', { n: 6 })); // live, before the restore's reply: buffered
    b.deliver({
      t: 'subscribed',
      topic: 't.x',
      epoch: 'e1',
      seq: 6,
      wasRecovering: true,
      recovered: true,
      replay: [{ seq: 6, prev: 5, kind: 'patch', data: { n: 6 }, ts: 1 }],
    });
    expect(sub!.status).toBe('subscribed');
    expect(sub!).toMatchObject({ recovered: true, wasRecovering: true, state: { n: 6 }, position: { seq: 6, epoch: 'e1' } });
  });

  it('subscribes itself to what the session did not have, and lets go of what it no longer wants', async () => {
    const {
      c,
      subs: [kept, added],
      b,
    } = await droppedAndBack(['t.kept', 't.added']);
    const dropped = c.getSubscription('t.kept');
    expect(dropped).toBe(kept);
    b.deliver(resumedWelcome(['t.kept', 't.gone'])); // t.added never reached the old session's record
    expect(b.framesOf('sub').map((f) => f.topic)).toEqual(['t.added']);
    b.deliver({ t: 'subscribed', topic: 't.gone', epoch: 'e1', seq: 9, wasRecovering: false, recovered: false });
    expect(b.lastOf('unsub')).toMatchObject({ topic: 't.gone' });
    b.deliver({ t: 'subscribed', topic: 't.kept', epoch: 'e1', seq: 5, wasRecovering: true, recovered: true, replay: [] });
    answerSub(b, { seq: 5, wasRecovering: true, recovered: true, replay: [] });
    expect([kept!.status, added!.status]).toEqual(['subscribed', 'subscribed']);
  });

  it("a restored topic the server refuses ends that subscription with the server's error", async () => {
    const {
      c,
      subs: [sub],
      b,
    } = await droppedAndBack(['t.x']);
    const clientErrors: unknown[] = [];
    const subErrors: SymphonicError[] = [];
    c.on('error', (e) => clientErrors.push(e));
    sub!.on('error', (e) => subErrors.push(e));
    b.deliver(resumedWelcome(['t.x']));
    b.deliver({ t: 'error', code: ErrorCode.Forbidden, message: 'not allowed', topic: 't.x' });
    expect(subErrors.map((e) => e.code)).toEqual([ErrorCode.Forbidden]);
    expect(clientErrors).toEqual([]);
    expect(sub!.status).toBe('unsubscribed');
  });

  it('no reply to a restore within the request timeout: it resubscribes (unsub, then sub from its position)', async () => {
    const {
      subs: [sub],
      b,
    } = await droppedAndBack(['t.x'], { timeout: 1000 });
    b.deliver(resumedWelcome(['t.x']));
    await vi.advanceTimersByTimeAsync(1000);
    const unsub = b.lastOf('unsub');
    expect(unsub).toMatchObject({ topic: 't.x' });
    b.deliver({ t: 'unsubscribed', id: unsub.id, topic: 't.x' });
    expect(b.lastOf('sub')).toMatchObject({ topic: 't.x', since: { seq: 5, epoch: 'e1' } });
    answerSub(b, { seq: 5, wasRecovering: true, recovered: true, replay: [] });
    expect(sub!.status).toBe('subscribed');
  });

  it('too many positions for one hello: no restore, each subscription resubscribes itself', async () => {
    const topics = Array.from({ length: 200 }, (_, i) => `t.${String(i).padStart(3, '0')}.${'x'.repeat(100)}`);
    const { b } = await droppedAndBack(topics);
    expect(b.sent[0]).toEqual({ t: 'hello', v: 1, compact: true, session: { id: 'sess-1', key: 'key-1' } });
    b.deliver(resumedWelcome(topics));
    expect(b.framesOf('sub')).toHaveLength(200);
  });

  it('restore: false resubscribes with sub frames as before', async () => {
    const { b } = await droppedAndBack(['t.x'], { restore: false });
    expect(b.sent[0]).toEqual({ t: 'hello', v: 1, compact: true, session: { id: 'sess-1', key: 'key-1' } });
    b.deliver(resumedWelcome(['t.x']));
    expect(b.lastOf('sub')).toMatchObject({ topic: 't.x', since: { seq: 5, epoch: 'e1' } });
  });
});
