/**
 * The live path: the watched topics, each sequenced by its TopicFeed, and the subscriptions that
 * feed them. ONE core subscription per watched topic on `<prefix>.out.<topic>` (RePublish copies
 * with seq + prev), except while this gateway is the keeper: then the keeper's wildcard
 * subscription feeds every watched topic instead (keeper-term.ts).
 */
import type { Msg, Subscription } from 'nats';
import type { BusMessage } from '../bus.ts';
import { decodeEnvelope } from './codec.ts';
import { TopicFeed } from './feed.ts';
import type { StateKeeper } from './keeper.ts';
import { withTimeout } from './requests.ts';
import { linked, type EngineState, type FeedCounts } from './state.ts';
import { loadTopicView } from './topic-view.ts';

export interface Watch {
  readonly feed: TopicFeed;
  /** Its own subscription; none while the keeper's wildcard subscription feeds every topic. */
  sub: Subscription | undefined;
  ready: Promise<void>;
}

/** Delay of the one extra tail check after a watch starts, in a cluster (see startWatch). */
const SETTLE_CHECK_MS = 250;

function liveMessage(s: EngineState, topic: string, msg: Msg): BusMessage | undefined {
  const h = msg.headers;
  const seq = Number(h?.get('Nats-Sequence'));
  const prev = Number(h?.get('Nats-Last-Sequence'));
  if (!Number.isSafeInteger(seq) || seq <= 0 || !Number.isSafeInteger(prev) || prev < 0) {
    // Not a RePublish copy: someone published to the out subject directly (deny that with permissions).
    if (s.counts.foreign++ < 10) s.log.warn('nats bus: ignoring a message without RePublish headers', { subject: msg.subject });
    return undefined;
  }
  const env = decodeEnvelope(msg.data, Date.now());
  return { topic, seq, prev, kind: env.kind, data: env.data, ts: env.ts };
}

export function subscribeTopic(s: EngineState, topic: string, feed: TopicFeed): Subscription {
  return linked(s).nc.subscribe(s.o.outPrefix + topic, {
    callback(err, msg) {
      if (err) return s.log.warn('nats bus: subscription error', { topic, error: err.message });
      const m = liveMessage(s, topic, msg);
      if (m) feed.onLive(m);
    },
  });
}

/**
 * Every topic's live copies, for the keeper, which must see them all anyway. Watched topics
 * read from it too: one delivery per message to this gateway instead of two.
 */
export function subscribeAll(s: EngineState, k: StateKeeper): Subscription {
  const { outPrefix } = s.o;
  return linked(s).nc.subscribe(`${outPrefix}>`, {
    callback(err, msg) {
      if (err) return s.log.warn('nats bus: keeper subscription error', { error: err.message });
      const m = liveMessage(s, msg.subject.slice(outPrefix.length), msg);
      if (!m) return;
      s.term?.purger?.observe(m.seq, Date.now());
      k.receive(m);
      s.watches.get(m.topic)?.feed.onLive(m);
    },
  });
}

function startWatch(s: EngineState, topic: string): Watch {
  const { o, log } = s;
  const { nc, reader, store } = linked(s);
  const feed = new TopicFeed(
    topic,
    { read: (from, until) => reader.read(topic, from, { until, limit: o.historySize + 1 }) },
    {
      deliver(m) {
        if (s.status === 'closed') return;
        try {
          s.deliver(m);
        } catch (e) {
          log.error('nats bus: onMessage threw', { topic, error: (e as Error).message });
        }
      },
      onLoss(after, before) {
        log.warn('nats bus: messages may be lost (dropped by retention before they were read)', { topic, after, before });
      },
      onError(e) {
        log.warn('nats bus: repair read failed, retrying', { topic, error: e.message });
      },
    },
    { cacheSize: o.cacheSize, maxPending: o.maxPending },
  );
  const w: Watch = { feed, sub: s.term ? undefined : subscribeTopic(s, topic, feed), ready: Promise.resolve() };
  w.ready = (async () => {
    // Once the server has the subscription, everything stored later reaches it; what was stored
    // before is read below. The feed holds live messages until then and drops the overlap.
    await withTimeout(nc.flush(), o.readTimeoutMs, 'subscription');
    const view = await loadTopicView(reader, store, topic, s.epoch, o.historySize + 1, s.term?.keeper.peek(topic));
    if (s.watches.get(topic) !== w) return;
    if (!view.exact && view.snapshotSeq > 0) {
      log.warn('nats bus: topic state may be incomplete: messages after its snapshot were dropped before a newer snapshot', {
        topic,
        snapshotSeq: view.snapshotSeq,
      });
    }
    feed.begin({ cursor: view.seq, state: view.state, recent: view.recent, chainStart: view.chainStart });
    if (nc.info?.cluster) {
      // In a cluster, flush() proves our server has the subscription, not yet the stream
      // leader's server: a message stored in that instant is neither read above nor
      // republished to us, and would wait for the topic's next message. Look once more.
      setTimeout(() => {
        if (s.watches.get(topic) !== w || s.status !== 'ready' || feed.repairing) return;
        reader.last(topic).then(
          (last) => {
            if (last > feed.cursor && s.watches.get(topic) === w) feed.resync();
          },
          () => {},
        );
      }, SETTLE_CHECK_MS).unref();
    }
  })();
  return w;
}

export function watch(s: EngineState, topic: string): Promise<void> {
  const existing = s.watches.get(topic);
  if (existing) return existing.ready;
  const w = startWatch(s, topic);
  s.watches.set(topic, w);
  w.ready.catch(() => {
    // A failed watch is forgotten so the next call retries it.
    if (s.watches.get(topic) === w) unwatch(s, topic);
  });
  return w.ready;
}

export function unwatch(s: EngineState, topic: string): void {
  const w = s.watches.get(topic);
  if (!w) return;
  s.watches.delete(topic);
  w.sub?.unsubscribe();
  w.feed.close();
  addFeed(s.counts.retired, w);
}

export function unwatchAll(s: EngineState): void {
  for (const topic of [...s.watches.keys()]) unwatch(s, topic);
}

/** The feeds' counters: the retired ones and those of the topics watched now. */
export function feedTotals(s: EngineState): FeedCounts {
  const total = { ...s.counts.retired };
  for (const w of s.watches.values()) addFeed(total, w);
  return total;
}

function addFeed(into: FeedCounts, w: Watch): void {
  into.delivered += w.feed.stats.delivered;
  into.repairs += w.feed.stats.repairs;
  into.repaired += w.feed.stats.repaired;
  into.duplicates += w.feed.stats.duplicates;
  into.losses += w.feed.stats.losses;
}
