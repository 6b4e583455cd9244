/**
 * The engine-agnostic presence logic (gateway/presence/) without sockets or NATS: the member
 * transitions, the union view, batches, and two gateways' Presence joined by an in-process link.
 * Fake timers drive intervals, grace and linger; every map entry and timer must be freed.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { PresenceFrame } from '../../protocol/index.ts';
import type { PresenceChange, PresenceHandlers, PresenceLink } from '../../gateway/bus/bus.ts';
import { parseConfig } from '../../gateway/config.ts';
import { createLogger } from '../../gateway/log.ts';
import { createNamespaces } from '../../gateway/policy/namespaces.ts';
import { addJoin, addLeave, drain, type Batch } from '../../gateway/presence/batch.ts';
import { nextMember } from '../../gateway/presence/member-state.ts';
import { createPresence, LINGER_MS, type PresenceHolder } from '../../gateway/presence/presence.ts';
import { nextPush } from '../../gateway/presence/push.ts';
import { TopicView } from '../../gateway/presence/view.ts';

describe('member transitions', () => {
  it('join, a second holder, socket gone into grace, back, leave', () => {
    let s = nextMember(null, 'subscribe');
    expect(s).toEqual({ state: { holders: 1, grace: false }, effect: 'join' });
    s = nextMember(s.state, 'subscribe');
    expect(s).toEqual({ state: { holders: 2, grace: false }, effect: null });
    s = nextMember(s.state, 'socket-gone');
    expect(s.effect).toBe(null);
    s = nextMember(s.state, 'socket-gone');
    expect(s).toEqual({ state: { holders: 0, grace: true }, effect: 'start-grace' });
    s = nextMember(s.state, 'subscribe');
    expect(s).toEqual({ state: { holders: 1, grace: false }, effect: 'stop-grace' });
    expect(nextMember(s.state, 'unsubscribe')).toEqual({ state: null, effect: 'leave' });
    expect(nextMember({ holders: 0, grace: true }, 'grace-over')).toEqual({ state: null, effect: 'leave' });
    expect(nextMember({ holders: 1, grace: false }, 'grace-over').effect).toBe(null);
    expect(nextMember(null, 'unsubscribe')).toEqual({ state: null, effect: null });
  });
});

describe('what subscribers are pushed', () => {
  it('changes while listed, a count past the limit (once per change), the whole list back under it', () => {
    const listed = { listed: true, count: 3 };
    expect(nextPush(listed, false, 4, true)).toEqual({ kind: 'changes', state: { listed: true, count: 4 } });
    expect(nextPush(listed, false, 3, false).kind).toBe(null);
    const over = nextPush(listed, true, 1001, true);
    expect(over).toEqual({ kind: 'count', state: { listed: false, count: 1001 } });
    expect(nextPush(over.state, true, 1001, true).kind).toBe(null);
    expect(nextPush(over.state, true, 1002, true).kind).toBe('count');
    expect(nextPush(over.state, false, 999, true)).toEqual({ kind: 'members', state: { listed: true, count: 999 } });
  });
});

describe('batches and the union view', () => {
  it('a join and a leave of one session in one interval cancel out', () => {
    const b: Batch = new Map();
    addJoin(b, { session: 's1' });
    addLeave(b, { session: 's1' });
    expect(b.size).toBe(0);
    addLeave(b, { session: 's2', user: 'u' });
    addJoin(b, { session: 's2', user: 'u' });
    expect(b.size).toBe(0);
    addJoin(b, { session: 's3', info: { a: 1 } });
    addLeave(b, { session: 's4', user: 'u4', info: { big: true } });
    expect(drain(b)).toEqual({ join: [{ session: 's3', info: { a: 1 } }], leave: [{ session: 's4', user: 'u4' }] });
    expect(b.size).toBe(0);
  });

  it('a session held by two gateways is one member; dropping one set shows nothing', () => {
    const v = new TopicView(false);
    v.join('A', { session: 's' });
    v.pending.clear();
    v.apply({ topic: 't', from: 'B', seq: 5, full: true, join: [{ session: 's' }, { session: 'x' }] });
    expect(v.count).toBe(2);
    expect(drain(v.pending).join.map((e) => e.session)).toEqual(['x']);
    v.leave('A', 's');
    expect(v.pending.size).toBe(0);
    v.drop('B');
    expect(
      drain(v.pending)
        .leave.map((e) => e.session)
        .sort(),
    ).toEqual(['s', 'x']);
    expect(v.count).toBe(0);
    expect(v.union.size).toBe(0);
  });

  it('changes apply in seq order; a skipped seq is a gap; counts are absolute', () => {
    const v = new TopicView(false);
    expect(v.apply({ topic: 't', from: 'B', seq: 3, full: false, join: [{ session: 'a' }] })).toBe('gap');
    expect(v.apply({ topic: 't', from: 'B', seq: 3, full: true, join: [{ session: 'a' }] })).toBe('applied');
    expect(v.apply({ topic: 't', from: 'B', seq: 3, full: false, join: [{ session: 'b' }] })).toBe('stale');
    expect(v.apply({ topic: 't', from: 'B', seq: 5, full: false, join: [{ session: 'b' }] })).toBe('gap');
    expect(v.apply({ topic: 't', from: 'B', seq: 4, full: false, leave: ['a'], join: [{ session: 'b' }] })).toBe('applied');
    expect(v.members()).toEqual([{ session: 'b' }]);
    const c = new TopicView(true);
    c.apply({ topic: 't', from: 'B', seq: 2, full: false, count: 40 });
    c.apply({ topic: 't', from: 'C', seq: 9, full: false, count: 2 });
    c.apply({ topic: 't', from: 'B', seq: 1, full: false, count: 1 });
    expect(c.count).toBe(42);
  });
});

/** Gateways in one process: what one publishes reaches the others that watch the topic. */
function hub() {
  const nodes = new Map<string, { h: PresenceHandlers; watched: Set<string> }>();
  const link = (instance: string): PresenceLink => ({
    instance,
    start: (h) => void nodes.set(instance, { h, watched: new Set() }),
    watch: (t) => void nodes.get(instance)!.watched.add(t),
    unwatch: (t) => void nodes.get(instance)!.watched.delete(t),
    publish(c) {
      for (const [i, n] of nodes) if (i !== instance && n.watched.has(c.topic)) n.h.change(c);
    },
    async collect(topic, only) {
      const out: PresenceChange[] = [];
      for (const [i, n] of nodes) if (i !== instance && (only === null || only === i)) out.push(n.h.snapshot(topic));
      return out;
    },
    close: () => void nodes.delete(instance),
  });
  return { link, nodes };
}

function gateway(link: PresenceLink, graceMs = 1000, maxMembers = 100) {
  const config = parseConfig({ presence: { intervalMs: 100, graceMs, maxMembers }, namespaces: { room: { presence: 'members' }, big: { presence: 'count' } } });
  const pushed: PresenceFrame[] = [];
  const p = createPresence({
    config: config.presence,
    namespaces: createNamespaces(config),
    link,
    push: (f) => (pushed.push(f), 1),
    log: createLogger('silent', {}),
  });
  return { p, pushed };
}

function conn(id: string, user: string | null = null): PresenceHolder & { sent: PresenceFrame[]; subs: Map<string, { state: string }> } {
  const sent: PresenceFrame[] = [];
  return { session: { id }, identity: { user }, presenceInfo: undefined, subs: new Map(), send: (f) => void sent.push(f), sent };
}

async function subscribe(p: ReturnType<typeof gateway>['p'], c: ReturnType<typeof conn>, topic: string) {
  await p.ready(topic);
  c.subs.set(topic, { state: 'subscribed' });
  p.subscribed(c, topic);
}

describe('Presence, two gateways in one process', () => {
  beforeEach(() => void vi.useFakeTimers());
  afterEach(() => void vi.useRealTimers());

  it('sees the other gateway, keeps a resumed session, and frees every topic, member and timer', async () => {
    const h = hub();
    const A = gateway(h.link('A'));
    const B = gateway(h.link('B'));
    const a1 = conn('a1', 'u1');
    const b1 = conn('b1', 'u1');
    await subscribe(A.p, a1, 'room.1');
    await subscribe(B.p, b1, 'room.1');
    expect(b1.sent.at(-1)).toMatchObject({ count: 2 });
    await vi.advanceTimersByTimeAsync(250);
    expect(A.pushed.flatMap((f) => f.join ?? []).map((m) => m.session)).toContain('b1');

    // a1's socket goes; it resumes on B within the grace period: one member throughout.
    A.p.socketGone(a1);
    const a1b = conn('a1', 'u1');
    await subscribe(B.p, a1b, 'room.1');
    await vi.advanceTimersByTimeAsync(1500);
    const leftA = [...A.pushed, ...B.pushed].flatMap((f) => f.leave ?? []).map((m) => m.session);
    expect(leftA).not.toContain('a1');
    expect(A.p.stats().graceTimers).toBe(0);

    // Everyone leaves: after the linger nothing is kept anywhere.
    B.p.unsubscribed(b1, 'room.1');
    B.p.socketGone(Object.assign(a1b, { subs: new Map([['room.1', { state: 'subscribed' }]]) }));
    await vi.advanceTimersByTimeAsync(1000 + LINGER_MS + 500);
    for (const g of [A, B]) expect(g.p.stats()).toMatchObject({ topics: 0, localTopics: 0, graceTimers: 0 });
    for (const n of h.nodes.values()) expect(n.watched.size).toBe(0);
    A.p.close();
    B.p.close();
  });

  it('a gone gateway takes its members with it; count-only topics exchange counts', async () => {
    const h = hub();
    const A = gateway(h.link('A'));
    const B = gateway(h.link('B'));
    await subscribe(A.p, conn('x'), 'room.2');
    await subscribe(B.p, conn('y'), 'room.2');
    await subscribe(A.p, conn('c1'), 'big.1');
    await subscribe(B.p, conn('c2'), 'big.1');
    await vi.advanceTimersByTimeAsync(250);
    expect((await A.p.read('big.1')).count).toBe(2);
    expect((await A.p.read('big.1')).members).toBeUndefined();
    h.nodes.get('A')!.h.gone('B');
    await vi.advanceTimersByTimeAsync(150);
    expect(A.pushed.filter((f) => f.topic === 'room.2').flatMap((f) => f.leave ?? [])).toEqual([{ session: 'y' }]);
    expect((await A.p.read('room.2')).members).toEqual([{ session: 'x' }]);
    A.p.close();
    B.p.close();
  });
});
