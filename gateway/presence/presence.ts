/**
 * Presence (docs/protocol.md section 15), engine-agnostic: this gateway's members (local.ts),
 * each watched topic's view across gateways (view.ts), and one timer that every
 * `presence.intervalMs` sends each changed topic's batch to the other gateways (through the
 * engine's PresenceLink) and one frame to the topic's local subscribers (through the topic's
 * native uWS channel: encoded once per encoding, whatever the number of subscribers).
 *
 * A topic is watched (its view kept, other gateways' changes received) while it has members
 * here, and for LINGER_MS after the last one left or after a subscribe asked for it, so a
 * subscriber's full list is synced before its `subscribed` goes out.
 */
import type { PresenceFrame, PresenceMember } from '../../protocol/index.ts';
import type { PresenceChange, PresenceEntry, PresenceLink } from '../bus/bus.ts';
import type { GatewayConfig } from '../config.ts';
import type { Logger } from '../log.ts';
import type { Namespaces, PresenceMode } from '../policy/namespaces.ts';
import { addJoin, addLeave, drain, type Batch } from './batch.ts';
import { LocalMembers } from './local.ts';
import { nextPush, type PushState } from './push.ts';
import { TopicView } from './view.ts';

/** How long a full-set request waits for the other gateways' answers. */
export const COLLECT_MS = 1_000;
/** A topic with no member here stays watched this long (subscribes in flight, quick re-joins). */
export const LINGER_MS = 2_000;
/** A gone gateway's late batches are ignored this long (unless it comes back). */
const DEAD_MS = 10 * 60_000;

/** What presence needs of a connection. */
export interface PresenceHolder {
  readonly session: { readonly id: string } | null;
  readonly identity: { readonly user: string | null };
  readonly presenceInfo: unknown;
  /** Its subscriptions by topic (only iterated). */
  readonly subs: Iterable<readonly [string, { state: string }]>;
  send(frame: PresenceFrame): void;
}

export interface PresenceOptions {
  readonly config: GatewayConfig['presence'];
  readonly namespaces: Namespaces;
  readonly link: PresenceLink;
  /** Pushes a frame to every local subscriber of its topic; returns the bytes written. */
  push(frame: PresenceFrame): number;
  readonly log: Logger;
}

export interface PresenceRead {
  readonly count: number;
  readonly members?: PresenceMember[];
}

interface TopicState {
  readonly view: TopicView;
  /** Local changes not yet sent to the other gateways. */
  readonly out: Batch;
  outDirty: boolean;
  /** The last `seq` this gateway published for the topic. */
  seq: number;
  /** What the topic's local subscribers were last told (push.ts). */
  push: PushState;
  synced: Promise<void>;
  /** Full-set requests in flight: how many, and for whom (null: every gateway). */
  syncing: number;
  readonly syncingFrom: Map<string | null, number>;
  lingerUntil: number;
}

export interface Presence {
  mode(topic: string): PresenceMode;
  /** Before a subscriber's `subscribed`: the topic's view is synced from the other gateways. */
  ready(topic: string): Promise<void>;
  /** After `subscribed` went out: the session is a member, and the connection gets the full list (or count). */
  subscribed(conn: PresenceHolder, topic: string): void;
  unsubscribed(conn: PresenceHolder, topic: string): void;
  /** The socket is gone: its members wait `graceMs` for the session to come back. */
  socketGone(conn: PresenceHolder): void;
  /** A topic's presence across the deployment (the `presence` request, GET /api/presence). */
  read(topic: string): Promise<PresenceRead>;
  /** Whether `session` is a member of `topic` as this gateway sees it now (members-mode topics this gateway watches). */
  present(topic: string, session: string): boolean;
  /** For metrics and leak checks. */
  stats(): { topics: number; localTopics: number; graceTimers: number; pushedBytes: number; frames: number; batches: number };
  close(): void;
}

/** Seq bases start above anything this instance sent before for a topic, so a re-created topic reads as a gap, never as stale. */
let seqBase = 0;
const nextSeqBase = () => {
  seqBase = Math.max(seqBase + 1_000_000, Date.now() * 1000);
  return seqBase;
};

export function createPresence(o: PresenceOptions): Presence {
  const { intervalMs, graceMs, maxMembers } = o.config;
  const self = o.link.instance;
  const topics = new Map<string, TopicState>();
  const dirty = new Set<string>();
  /** Topics with no member here: torn down once their linger has passed. */
  const idle = new Set<string>();
  const dead = new Map<string, number>();
  const stats = { pushedBytes: 0, frames: 0, batches: 0 };
  let closed = false;

  const mode = (topic: string): PresenceMode => o.namespaces.of(topic).presence;

  const local = new LocalMembers(graceMs, {
    join(topic, entry) {
      const t = topics.get(topic) ?? watch(topic);
      idle.delete(topic);
      t.view.join(self, entry);
      if (t.view.countOnly) t.outDirty = true;
      else addJoin(t.out, entry);
      dirty.add(topic);
    },
    leave(topic, session) {
      const t = topics.get(topic);
      if (!t) return;
      const entry = t.view.sets.get(self)?.members.get(session);
      t.view.leave(self, session);
      if (t.view.countOnly) t.outDirty = true;
      else if (entry) addLeave(t.out, entry);
      dirty.add(topic);
      if (local.count(topic) === 0) {
        t.lingerUntil = Date.now() + LINGER_MS;
        idle.add(topic);
      }
    },
  });

  function watch(topic: string): TopicState {
    const t: TopicState = {
      view: new TopicView(mode(topic) === 'count'),
      out: new Map(),
      outDirty: false,
      seq: nextSeqBase(),
      // Subscribers get their first list individually, right after `subscribed`.
      push: { listed: true, count: 0 },
      synced: Promise.resolve(),
      syncing: 0,
      syncingFrom: new Map(),
      lingerUntil: Date.now() + LINGER_MS,
    };
    topics.set(topic, t);
    idle.add(topic);
    o.link.watch(topic);
    t.synced = sync(topic, t, null);
    return t;
  }

  /** Asks the other gateways (or one) for their full sets of the topic and applies them. */
  function sync(topic: string, t: TopicState, only: string | null): Promise<void> {
    t.syncing++;
    t.syncingFrom.set(only, (t.syncingFrom.get(only) ?? 0) + 1);
    return o.link
      .collect(topic, only, COLLECT_MS)
      .then((answers) => {
        if (topics.get(topic) !== t) return;
        for (const a of answers) if (!dead.has(a.from) && a.from !== self) t.view.apply({ ...a, full: true });
        dirty.add(topic);
      })
      .catch((e: Error) => o.log.warn('presence sync failed', { topic, error: e.message }))
      .finally(() => {
        t.syncing--;
        const n = t.syncingFrom.get(only)! - 1;
        if (n > 0) t.syncingFrom.set(only, n);
        else t.syncingFrom.delete(only);
      });
  }

  function entryOf(conn: PresenceHolder): PresenceEntry {
    const user = conn.identity.user;
    const info = conn.presenceInfo;
    return { session: conn.session!.id, ...(user === null ? {} : { user }), ...(info === undefined ? {} : { info }) };
  }

  const overLimit = (v: TopicView) => v.countOnly || v.count > maxMembers;

  function readOf(v: TopicView): PresenceRead {
    return overLimit(v) ? { count: v.count } : { count: v.count, members: v.members() as PresenceMember[] };
  }

  /** Sends the topic's batch to the other gateways, and one frame to its local subscribers. */
  function flushTopic(topic: string, t: TopicState): void {
    if (t.view.countOnly ? t.outDirty : t.out.size > 0) {
      const change: PresenceChange = t.view.countOnly
        ? { topic, from: self, seq: ++t.seq, full: false, count: local.count(topic) }
        : (() => {
            const { join, leave } = drain(t.out);
            return { topic, from: self, seq: ++t.seq, full: false, join, leave: leave.map((e) => e.session) };
          })();
      t.outDirty = false;
      stats.batches++;
      o.link.publish(change);
    }
    const v = t.view;
    const count = v.count;
    const { kind, state } = nextPush(t.push, overLimit(v), count, v.pending.size > 0);
    t.push = state;
    let frame: PresenceFrame | null = null;
    if (kind === 'changes') {
      const { join, leave } = drain(v.pending);
      frame = {
        t: 'presence',
        topic,
        count,
        ...(join.length ? { join: join as PresenceMember[] } : {}),
        ...(leave.length ? { leave: leave as PresenceMember[] } : {}),
      };
    } else {
      // A list or a count replaces what subscribers held: the changes are in it.
      v.pending.clear();
      if (kind === 'members') frame = { t: 'presence', topic, count, members: v.members() as PresenceMember[] };
      else if (kind === 'count') frame = { t: 'presence', topic, count };
    }
    if (frame) {
      stats.frames++;
      stats.pushedBytes += o.push(frame);
    }
  }

  function tick(): void {
    for (const topic of dirty) {
      const t = topics.get(topic);
      if (t) flushTopic(topic, t);
    }
    dirty.clear();
    const now = Date.now();
    for (const topic of idle) {
      const t = topics.get(topic);
      if (!t) {
        idle.delete(topic);
        continue;
      }
      if (local.count(topic) > 0 || now < t.lingerUntil || t.syncing > 0) continue;
      idle.delete(topic);
      topics.delete(topic);
      o.link.unwatch(topic);
    }
  }
  const timer = setInterval(tick, intervalMs);
  timer.unref?.();

  o.link.start({
    change(c) {
      if (dead.has(c.from)) return;
      const t = topics.get(c.topic);
      if (!t) return;
      const r = t.view.apply(c);
      if (r === 'applied') dirty.add(c.topic);
      // A full-set request already asked of that gateway answers after this change (one publisher's messages stay in order).
      else if (r === 'gap' && !t.syncingFrom.has(null) && !t.syncingFrom.has(c.from)) void sync(c.topic, t, c.from);
    },
    snapshot(topic) {
      const t = topics.get(topic);
      const mine = t?.view.sets.get(self);
      if (t?.view.countOnly || (!t && mode(topic) === 'count')) return { topic, from: self, seq: t?.seq ?? 0, full: true, count: local.count(topic) };
      return { topic, from: self, seq: t?.seq ?? 0, full: true, join: mine ? [...mine.members.values()] : [] };
    },
    gone(instance) {
      const now = Date.now();
      for (const [i, at] of dead) if (now - at > DEAD_MS) dead.delete(i);
      dead.set(instance, now);
      for (const [topic, t] of topics) {
        if (!t.view.sets.has(instance)) continue;
        t.view.drop(instance);
        dirty.add(topic);
      }
    },
    appeared(instance) {
      dead.delete(instance);
      for (const [topic, t] of topics) void sync(topic, t, instance);
    },
  });

  return {
    mode,

    ready(topic) {
      if (closed || mode(topic) === false) return Promise.resolve();
      const t = topics.get(topic) ?? watch(topic);
      t.lingerUntil = Math.max(t.lingerUntil, Date.now() + LINGER_MS);
      return t.synced;
    },

    subscribed(conn, topic) {
      if (closed || mode(topic) === false || !conn.session) return;
      local.subscribe(topic, entryOf(conn));
      const v = topics.get(topic)!.view;
      conn.send({ t: 'presence', topic, ...readOf(v) });
    },

    unsubscribed(conn, topic) {
      if (closed || mode(topic) === false || !conn.session) return;
      local.unsubscribe(topic, conn.session.id);
    },

    socketGone(conn) {
      if (closed || !conn.session) return;
      for (const [topic, rec] of conn.subs) if (rec.state === 'subscribed' && mode(topic) !== false) local.socketGone(topic, conn.session.id);
    },

    async read(topic) {
      const t = topics.get(topic);
      if (t) {
        await t.synced;
        return readOf(t.view);
      }
      const v = new TopicView(mode(topic) === 'count');
      for (const a of await o.link.collect(topic, null, COLLECT_MS)) if (!dead.has(a.from)) v.apply({ ...a, full: true });
      return readOf(v);
    },

    present(topic, session) {
      return topics.get(topic)?.view.union.has(session) ?? false;
    },

    stats() {
      return { topics: topics.size, localTopics: local.sizes().topics, graceTimers: local.sizes().timers, ...stats };
    },

    close() {
      if (closed) return;
      closed = true;
      clearInterval(timer);
      local.close();
      for (const topic of topics.keys()) o.link.unwatch(topic);
      topics.clear();
      dirty.clear();
      idle.clear();
    },
  };
}
