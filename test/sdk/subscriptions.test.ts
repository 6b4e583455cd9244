/**
 * Subscriptions through the client against the fake server: snapshot and deltas, buffering, gaps,
 * resume, refusals, typed topics.
 */
import { describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import { ErrorCode } from '../../protocol/codes.ts';
import { type SymphonicError, TimeoutError, ValidationError } from '../../sdk/index.ts';
import { answerSub, connected, make, server, useFakeServer } from './helpers/client-harness.ts';
import { msg } from './helpers/fake-socket.ts';

useFakeServer();

describe('subscriptions', () => {
  it('subscribe -> subscribed: snapshot state, position, live patches, events for each', async () => {
    const { c, s } = connected();
    const statuses: string[] = [];
    const changes: unknown[] = [];
    const sub = c.subscribe('demo.board', { onStatus: (e) => statuses.push(e.newState), onChange: (ch) => changes.push(ch.state) });
    expect(sub.status).toBe('subscribing');
    expect(s.lastOf('sub')).toEqual({ t: 'sub', id: expect.any(Number), topic: 'demo.board' });
    const ready = sub.ready();
    answerSub(s, { seq: 3, state: { cells: { '0,0': '#f00' } } });
    await ready;
    expect(sub.status).toBe('subscribed');
    expect(sub.position).toEqual({ seq: 3, epoch: 'e1' });
    s.deliver(msg('demo.board', 4, 3, 'patch', { cells: { '1,1': '#0f0', '0,0': null } }));
    expect(sub.state).toEqual({ cells: { '1,1': '#0f0' } });
    expect(changes).toEqual([{ cells: { '0,0': '#f00' } }, { cells: { '1,1': '#0f0' } }]);
    expect(statuses).toEqual(['subscribing', 'subscribed']);
    expect(sub.recovered).toBe(false);
    expect(sub.wasRecovering).toBe(false);
  });

  it('subscribing while connecting sends the sub after welcome', () => {
    const c = make();
    c.connect();
    const sub = c.subscribe('a.b');
    server.accept();
    expect(server.last.lastOf('sub').topic).toBe('a.b');
    answerSub(server.last, { seq: 0 });
    expect(sub.status).toBe('subscribed');
  });

  it('msgs that arrive before subscribed are buffered, deduplicated against the snapshot, then applied', () => {
    const { c, s } = connected();
    const seen: number[] = [];
    const sub = c.subscribe('t.x', { onMessage: (m) => seen.push(m.seq) });
    s.deliver(msg('t.x', 5, 4, 'patch', { a: 5 }));
    s.deliver(msg('t.x', 6, 5, 'patch', { b: 6 }));
    expect(seen).toEqual([]);
    answerSub(s, { seq: 5, state: { a: 5 } });
    expect(seen).toEqual([6]);
    expect(sub.state).toEqual({ a: 5, b: 6 });
    s.deliver(msg('t.x', 6, 5, 'patch', { b: 6 })); // duplicate
    expect(seen).toEqual([6]);
  });

  it('a live gap resyncs: unsub, then sub from the last position; the replay fills the gap exactly once', () => {
    const { c, s } = connected();
    const seen: number[] = [];
    const sub = c.subscribe('t.x', { onMessage: (m) => seen.push(m.seq) });
    answerSub(s, { seq: 1, state: {} });
    s.deliver(msg('t.x', 2, 1, 'event', 'a'));
    s.deliver(msg('t.x', 4, 3, 'event', 'c')); // 3 is missing
    expect(sub.status).toBe('resubscribing');
    const unsub = s.lastOf('unsub');
    expect(unsub.topic).toBe('t.x');
    s.deliver(msg('t.x', 5, 4, 'event', 'd')); // buffered while resyncing
    s.deliver({ t: 'unsubscribed', id: unsub.id, topic: 't.x' });
    const resub = s.lastOf('sub');
    expect(resub.since).toEqual({ seq: 2, epoch: 'e1' });
    s.deliver(msg('t.x', 6, 5, 'event', 'e'));
    s.deliver({
      t: 'subscribed',
      id: resub.id,
      topic: 't.x',
      epoch: 'e1',
      seq: 5,
      wasRecovering: true,
      recovered: true,
      replay: [msg('t.x', 3, 2, 'event', 'b'), msg('t.x', 4, 3, 'event', 'c'), msg('t.x', 5, 4, 'event', 'd')],
    });
    expect(seen).toEqual([2, 3, 4, 5, 6]);
    expect(sub.status).toBe('subscribed');
    expect(sub.recovered).toBe(true);
  });

  it('after a reconnect each subscription resumes from its position; recovered=false is surfaced', async () => {
    const { c, s } = connected({ reconnect: { min: 10, max: 10 } });
    const infos: unknown[] = [];
    const sub = c.subscribe('t.x', { onSubscribed: (i) => infos.push(i) });
    answerSub(s, { seq: 10, state: { n: 10 } });
    s.serverClose(1006);
    expect(sub.status).toBe('resubscribing');
    await vi.advanceTimersByTimeAsync(10);
    const s2 = server.accept();
    const resub = s2.lastOf('sub');
    expect(resub.since).toEqual({ seq: 10, epoch: 'e1' });
    s2.deliver({ t: 'subscribed', id: resub.id, topic: 't.x', epoch: 'e1', seq: 500, state: { n: 500 }, wasRecovering: true, recovered: false });
    expect(sub.status).toBe('subscribed');
    expect(sub.wasRecovering).toBe(true);
    expect(sub.recovered).toBe(false);
    expect(sub.state).toEqual({ n: 500 });
    expect(infos[1]).toEqual({ wasRecovering: true, recovered: false, position: { seq: 500, epoch: 'e1' }, state: { n: 500 } });
  });

  it('a late reply to a subscribe from the old socket is ignored', async () => {
    const { c, s } = connected({ reconnect: { min: 10, max: 10 } });
    const sub = c.subscribe('t.x');
    const old = s.lastOf('sub');
    s.serverClose(1006);
    s.deliver({ t: 'subscribed', id: old.id, topic: 't.x', epoch: 'e1', seq: 99, wasRecovering: false, recovered: false });
    expect(sub.status).toBe('subscribing');
    await vi.advanceTimersByTimeAsync(10);
    const s2 = server.accept();
    answerSub(s2, { seq: 3 });
    expect(sub.position).toEqual({ seq: 3, epoch: 'e1' });
  });

  it('AlreadySubscribed on resume (session kept the subscription): unsub then sub', () => {
    const { c, s } = connected();
    const sub = c.subscribe('t.x');
    s.deliver({ t: 'error', id: s.lastOf('sub').id, code: ErrorCode.AlreadySubscribed, message: 'already' });
    const unsub = s.lastOf('unsub');
    s.deliver({ t: 'unsubscribed', id: unsub.id, topic: 't.x' });
    answerSub(s, { seq: 2 });
    expect(sub.status).toBe('subscribed');
  });

  it('a refused subscription ends unsubscribed and ready() rejects with the code', async () => {
    const { c, s } = connected();
    const sub = c.subscribe('private.x');
    const ready = sub.ready();
    s.deliver({ t: 'error', id: s.lastOf('sub').id, code: ErrorCode.Forbidden, message: 'nope', topic: 'private.x' });
    await expect(ready).rejects.toMatchObject({ code: ErrorCode.Forbidden });
    expect(sub.status).toBe('unsubscribed');
    expect(c.getSubscription('private.x')).toBeUndefined();
  });

  it('a retryable refusal (5xxx) is retried with backoff', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0.5);
    const { c, s } = connected({ reconnect: { min: 100, max: 100 } });
    const sub = c.subscribe('t.x');
    s.deliver({ t: 'error', id: s.lastOf('sub').id, code: ErrorCode.Unavailable, message: 'bus down' });
    expect(s.framesOf('sub')).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(50);
    expect(s.framesOf('sub')).toHaveLength(2);
    answerSub(s, { seq: 1 });
    expect(sub.status).toBe('subscribed');
  });

  it('ready() times out', async () => {
    const { c } = connected();
    const sub = c.subscribe('t.x');
    const p = sub.ready(500).catch((e) => e);
    await vi.advanceTimersByTimeAsync(500);
    expect(await p).toBeInstanceOf(TimeoutError);
  });

  it('unsubscribe sends unsub, ignores later msgs; subscribe() again resumes from the position', () => {
    const { c, s } = connected();
    const seen: number[] = [];
    const sub = c.subscribe('t.x', { onMessage: (m) => seen.push(m.seq) });
    answerSub(s, { seq: 1 });
    sub.unsubscribe();
    expect(s.lastOf('unsub').topic).toBe('t.x');
    expect(sub.status).toBe('unsubscribed');
    s.deliver(msg('t.x', 2, 1, 'event', 'x'));
    expect(seen).toEqual([]);
    expect(c.getSubscription('t.x')).toBeUndefined();
    sub.subscribe();
    expect(s.lastOf('sub').since).toEqual({ seq: 1, epoch: 'e1' });
  });

  it('a second subscribe to the same topic is an error', () => {
    const { c } = connected();
    c.subscribe('t.x');
    expect(() => c.subscribe('t.x')).toThrow(/already subscribed/);
  });

  it('since + initialState: the first subscribe resumes a persisted position', () => {
    const { c, s } = connected();
    const sub = c.subscribe('t.x', { since: { seq: 5, epoch: 'e1' }, initialState: { n: 5 } });
    const f = s.lastOf('sub');
    expect(f.since).toEqual({ seq: 5, epoch: 'e1' });
    s.deliver({
      t: 'subscribed',
      id: f.id,
      topic: 't.x',
      epoch: 'e1',
      seq: 6,
      wasRecovering: true,
      recovered: true,
      replay: [msg('t.x', 6, 5, 'patch', { n: 6 })],
    });
    expect(sub.state).toEqual({ n: 6 });
    expect(sub.recovered).toBe(true);
  });
});

describe('typed topics', () => {
  const Board = z.object({ cells: z.record(z.string(), z.string().regex(/^#[0-9a-f]{3,6}$/)) });
  const Chat = z.object({ from: z.string(), text: z.string().max(200) });

  it('state is validated and typed by the schema; an invalid state is reported and the last valid one kept', () => {
    const { c, s } = connected();
    const errors: SymphonicError[] = [];
    const sub = c.subscribe('demo.board', { schema: Board, onError: (e) => errors.push(e) });
    answerSub(s, { seq: 1, state: { cells: { '0,0': '#fff' } } });
    const cells: Record<string, string> | undefined = sub.state?.cells; // typed from the schema
    expect(cells).toEqual({ '0,0': '#fff' });
    s.deliver(msg('demo.board', 2, 1, 'patch', { cells: { '0,1': 'not a colour' } }));
    expect(errors[0]).toBeInstanceOf(ValidationError);
    expect(errors[0]?.topic).toBe('demo.board');
    expect(sub.state).toEqual({ cells: { '0,0': '#fff' } });
    expect(sub.position?.seq).toBe(2); // the position still follows the server
    s.deliver(msg('demo.board', 3, 2, 'patch', { cells: { '0,1': '#000' } }));
    expect(sub.state).toEqual({ cells: { '0,0': '#fff', '0,1': '#000' } });
  });

  it('event payloads are validated; invalid ones are not delivered', () => {
    const { c, s } = connected();
    const texts: string[] = [];
    const errors: SymphonicError[] = [];
    c.subscribe('demo.chat', {
      events: Chat,
      onMessage: (m) => {
        if (m.kind === 'event') texts.push(m.data.text); // m.data is typed { from, text }
      },
      onError: (e) => errors.push(e),
    });
    answerSub(s, { seq: 0 });
    s.deliver(msg('demo.chat', 1, 0, 'event', { from: 'a', text: 'hi' }));
    s.deliver(msg('demo.chat', 2, 1, 'event', { from: 'b' }));
    s.deliver(msg('demo.chat', 3, 2, 'event', { from: 'c', text: 'yo' }));
    expect(texts).toEqual(['hi', 'yo']);
    expect(errors).toHaveLength(1);
  });

  it('plain functions and safeParse-only schemas work too', () => {
    const { c, s } = connected();
    const asNumber = (x: unknown): number => {
      if (typeof x !== 'number') throw new Error('not a number');
      return x;
    };
    const sub = c.subscribe('t.n', { schema: asNumber });
    const sub2 = c.subscribe('t.m', {
      schema: { safeParse: (x: unknown) => (typeof x === 'string' ? { success: true as const, data: x } : { success: false as const, error: 'no' }) },
    });
    const subs = s.framesOf('sub');
    s.deliver({ t: 'subscribed', id: subs[0]!.id, topic: 't.n', epoch: 'e', seq: 1, state: 42, wasRecovering: false, recovered: false });
    s.deliver({ t: 'subscribed', id: subs[1]!.id, topic: 't.m', epoch: 'e', seq: 1, state: 'str', wasRecovering: false, recovered: false });
    const n: number | undefined = sub.state;
    const m: string | undefined = sub2.state;
    expect([n, m]).toEqual([42, 'str']);
  });
});
