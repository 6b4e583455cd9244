/**
 * The NATS/JetStream engine of the Bus. See ./README.md for the design; in short:
 *   publish   JetStream publish of the envelope (codec.ts) to `<prefix>.in.<topic>`, with a
 *             message id so retries through reconnects and leader elections store it once.
 *   watch     ONE core subscription per watched topic on `<prefix>.out.<topic>` (RePublish
 *             copies with seq + prev), sequenced by a TopicFeed that repairs gaps from the stream.
 *   recover   from the feed's memory when the topic is watched, else from the stream + KV.
 *   epoch     the stream's creation time; re-checked on reconnect and on stream advisories.
 */
import { connect as natsConnect, type JetStreamClient, type JetStreamManager, type Msg, type NatsConnection, type Subscription } from 'nats';
import { isValidTopic, type MessageKind, type Position } from '../../../protocol/index.ts';
import type { Logger } from '../../log.ts';
import type { Bus, BusFigure, BusMessage, BusStatus, HistoryResult, PublishOptions, PublishResult, RecoverResult } from '../bus.ts';
import { idempotencyId, publishDigest } from '../idempotency.ts';
import { rebuildChain } from './chain.ts';
import { decodeEnvelope, encodeEnvelope } from './codec.ts';
import { checkDuplicate, digestHeaders } from './duplicates.ts';
import { openConnection, type BusConnection } from './connection.ts';
import { NatsBusError, isStoreFailure } from './errors.ts';
import { backoffDelay, pause } from '../../../nats-kit/backoff.ts';
import { errorCode, isRetryable } from '../../../nats-kit/errors.ts';
import { AckFloor, attemptTimeout, MessageIds, publishRetried } from '../../../nats-kit/publish.ts';
import { TopicFeed } from './feed.ts';
import { resolveOptions, type NatsBusOptions, type ResolvedNatsOptions } from './options.ts';
import { isNotFound, StreamReader } from './reader.ts';
import { ReplayReader } from './replays.ts';
import { newKeeperStats, StateKeeper } from './keeper.ts';
import { Lease } from './lease.ts';
import { AgePurger } from './purge.ts';
import { askUntil, whenAnswering, withTimeout } from './requests.ts';
import { bucketAnswers, SnapshotStore } from './snapshots.ts';
import { ensureStream, epochFromCreated } from './stream.ts';
import { loadTopicView } from './topic-view.ts';
import { clipToWindow, insideWindow } from './window.ts';

interface Watch {
  readonly feed: TopicFeed;
  /** Its own subscription; none while the keeper's wildcard subscription feeds every topic. */
  sub: Subscription | undefined;
  ready: Promise<void>;
}


/** A state keeper that has not started reading within this is abandoned and retried. */
const KEEPER_START_TIMEOUT_MS = 5_000;
export interface NatsBusStats {
  readonly epoch: string;
  readonly watched: number;
  readonly published: number;
  readonly publishRetries: number;
  readonly delivered: number;
  readonly repairs: number;
  readonly repaired: number;
  readonly duplicates: number;
  readonly losses: number;
  readonly resyncs: number;
  /** Whether this gateway is the deployment's state keeper now. */
  readonly keeper: boolean;
  readonly keeperApplied: number;
  /** Times this gateway became the keeper (each time its watched topics move to the wildcard subscription). */
  readonly keeperTerms: number;
  /** Topics' messages the keeper missed on the wire and read back from the stream. */
  readonly keeperGaps: number;
  /** Messages the keeper purged from namespaces with a shorter age than the stream's. */
  readonly agePurged: number;
  /** Messages the keeper trimmed from topics of namespaces with a smaller size than the stream's. */
  readonly sizeTrimmed: number;
  readonly snapshotWrites: number;
  readonly epochChanges: number;
}

export interface NatsBus extends Bus {
  readonly engine: 'nats';
  /** The current stream epoch ('' before start). */
  epoch(): string;
  stats(): NatsBusStats;
}

const defaultLogger: Logger = {
  debug() {},
  info() {},
  warn(msg, fields) { console.warn(JSON.stringify({ level: 'warn', msg, ...fields })); },
  error(msg, fields) { console.error(JSON.stringify({ level: 'error', msg, ...fields })); },
};

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

/**
 * Setup attempts at start (stream, snapshot bucket): the first waits 1 s, doubling up to 2 s.
 * During a new stream's first leader election nats-server 2.9 may leave a concurrent create, and
 * every read, unanswered (requests.ts); the client would wait its whole 5 s timeout for each.
 */
const setupAttemptMs = (attempt: number) => Math.min(2_000, 1_000 * 2 ** Math.min(attempt, 4));
/** start() waits at most this long for the stream's and the bucket's leaders to answer a read. */
const READY_WAIT_MS = 5_000;

/** Delay of the one extra tail check after a watch starts, in a cluster (see startWatch). */
const SETTLE_CHECK_MS = 250;

export function createNatsBus(options: NatsBusOptions): NatsBus {
  const o: ResolvedNatsOptions = resolveOptions(options);
  const log = options.logger ?? defaultLogger;
  const connectFn = options.connect ?? natsConnect;
  const watches = new Map<string, Watch>();
  const ids = new MessageIds();
  const counters = { published: 0, publishRetries: 0, resyncs: 0, epochChanges: 0, foreign: 0 };
  /** Feed counters of topics no longer watched, so stats() stays cumulative. */
  const retired = { delivered: 0, repairs: 0, repaired: 0, duplicates: 0, losses: 0 };
  function add(into: typeof retired, w: Watch): void {
    into.delivered += w.feed.stats.delivered;
    into.repairs += w.feed.stats.repairs;
    into.repaired += w.feed.stats.repaired;
    into.duplicates += w.feed.stats.duplicates;
    into.losses += w.feed.stats.losses;
  }
  const retire = (w: Watch) => add(retired, w);

  let status: BusStatus = 'starting';
  let onMessage: (m: BusMessage) => void = () => {};
  let conn: BusConnection | undefined;
  let nc: NatsConnection;
  let js: JetStreamClient;
  let jsm: JetStreamManager;
  let reader: StreamReader;
  let replays: ReplayReader;
  let store: SnapshotStore;
  let epoch = '';
  /** Acknowledged sequences: a fresh ack below an earlier one means the stream restarted. */
  const acks = new AckFloor();
  let reconciling: Promise<void> | undefined;
  /** Resolved (and replaced) on every reconnect. */
  let reconnected = deferred();
  let advisorySub: Subscription | undefined;
  let lease: Lease | undefined;
  let keeper: StateKeeper | undefined;
  /** The keeper's `<prefix>.out.>` subscription: also the live path of every watched topic meanwhile. */
  let keeperSub: Subscription | undefined;
  /** Purges namespaces by age while this gateway is the keeper (it sees every message's sequence). */
  let purger: AgePurger | undefined;
  let keeperStarting: Promise<void> | undefined;
  /** The keepers' and purgers' counters, cumulative over every term this gateway kept state. */
  const keeperStats = newKeeperStats();
  const purgeStats = { purges: 0, purged: 0, failures: 0 };
  let keeperTerms = 0;

  function setStatus(s: BusStatus): void {
    if (status === s || status === 'closed') return;
    status = s;
    try {
      options.onStatus?.(s);
    } catch (e) {
      log.error('nats bus: onStatus threw', { error: (e as Error).message });
    }
  }

  function assertOpen(op: string): void {
    if (status === 'closed') throw new NatsBusError('closed', `${op}: bus closed`);
    if (status === 'starting') throw new NatsBusError('not_started', `${op}: bus not started`);
  }

  function assertTopic(topic: string): void {
    if (!isValidTopic(topic)) throw new NatsBusError('bad_topic', `invalid topic ${JSON.stringify(topic)?.slice(0, 80)}`);
  }

  /** Retries `fn` on transient errors until `deadline` (start-up: the cluster may still be electing leaders). */
  async function untilDeadline<T>(what: string, deadline: number, fn: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await fn();
      } catch (e) {
        if (status === 'closed') throw new NatsBusError('closed', `${what}: bus closed`);
        if (Date.now() >= deadline) throw new NatsBusError('unavailable', `${what}: ${(e as Error).message}`, e);
        log.debug('nats bus: retrying', { what, attempt, error: (e as Error).message });
        await pause(Math.max(20, backoffDelay(attempt, 100, 1000)));
      }
    }
  }

  async function adoptStream(created: string): Promise<void> {
    const next = epochFromCreated(created);
    if (next === epoch) return;
    const first = epoch === '';
    epoch = next;
    if (first) return;
    counters.epochChanges++;
    acks.reset();
    log.warn('nats bus: stream recreated, new epoch; watched topics restart from the new stream', { stream: o.streamName, epoch });
    for (const w of watches.values()) w.feed.reset();
    // The keeper's consumer belonged to the old stream.
    if (keeper) {
      await stopKeeper();
      await startKeeper();
    }
  }

  /** Re-reads the stream's identity (recreating the stream if it is gone); single flight. */
  function reconcile(): Promise<void> {
    if (!reconciling) {
      reconciling = (async () => {
        let info;
        try {
          info = await askUntil('stream check', Date.now() + o.readTimeoutMs, () => jsm.streams.info(o.streamName), () => status === 'closed');
        } catch (e) {
          if (!isNotFound(e)) throw e;
          info = await ensureStream(jsm, o);
        }
        await adoptStream(info.created);
        if (status === 'degraded' && !nc.isClosed() && !recovering) setStatus('ready');
      })().finally(() => {
        reconciling = undefined;
      });
    }
    return reconciling;
  }

  /**
   * The deletion race above, if it happened anyway: a stream that cannot store (its files went
   * with the old stream's deletion), still empty, is deleted and created again. Never a stream
   * with messages: those errors are left to the operator.
   */
  let repairing: Promise<void> | undefined;
  function repairFreshStream(): Promise<void> {
    repairing ??= (async () => {
      const info = await jsm.streams.info(o.streamName);
      if (info.state.messages > 0 || info.state.last_seq > 0) return;
      log.warn('nats bus: the new stream cannot store messages; deleting and recreating it', { stream: o.streamName });
      await jsm.streams.delete(o.streamName);
      await reconcile();
    })().finally(() => {
      repairing = undefined;
    });
    return repairing;
  }

  /** After a reconnect: check the stream, then read what the live path missed while away. */
  let recovering: Promise<void> | undefined;
  function recoverConnection(): Promise<void> {
    // Publishes waiting on a request that may have died with the old connection retry at once.
    const signal = reconnected;
    reconnected = deferred();
    signal.resolve();
    recovering ??= (async () => {
      for (let attempt = 0; status !== 'closed'; attempt++) {
        try {
          await reconcile();
          break;
        } catch (e) {
          log.warn('nats bus: stream check after reconnect failed, retrying', { error: (e as Error).message });
          if (nc.isClosed()) return;
          await pause(Math.max(50, backoffDelay(attempt, 200, 2000)));
        }
      }
      if (status === 'closed' || nc.isClosed()) return;
      counters.resyncs++;
      for (const w of watches.values()) w.feed.resync();
      // The keeper's subscription is renewed with the connection; what it missed meanwhile shows
      // as a gap at each topic's next message, read back from the stream then.
      setStatus('ready');
    })().finally(() => {
      recovering = undefined;
    });
    return recovering;
  }

  function liveMessage(topic: string, msg: Msg): BusMessage | undefined {
    const h = msg.headers;
    const seq = Number(h?.get('Nats-Sequence'));
    const prev = Number(h?.get('Nats-Last-Sequence'));
    if (!Number.isSafeInteger(seq) || seq <= 0 || !Number.isSafeInteger(prev) || prev < 0) {
      // Not a RePublish copy: someone published to the out subject directly (deny that with permissions).
      if (counters.foreign++ < 10) log.warn('nats bus: ignoring a message without RePublish headers', { subject: msg.subject });
      return undefined;
    }
    const env = decodeEnvelope(msg.data, Date.now());
    return { topic, seq, prev, kind: env.kind, data: env.data, ts: env.ts };
  }

  function subscribeTopic(topic: string, feed: TopicFeed): Subscription {
    return nc.subscribe(o.outPrefix + topic, {
      callback(err, msg) {
        if (err) return log.warn('nats bus: subscription error', { topic, error: err.message });
        const m = liveMessage(topic, msg);
        if (m) feed.onLive(m);
      },
    });
  }

  /**
   * Every topic's live copies, for the keeper, which must see them all anyway. Watched topics
   * read from it too: one delivery per message to this gateway instead of two.
   */
  function subscribeAll(k: StateKeeper): Subscription {
    return nc.subscribe(`${o.outPrefix}>`, {
      callback(err, msg) {
        if (err) return log.warn('nats bus: keeper subscription error', { error: err.message });
        const m = liveMessage(msg.subject.slice(o.outPrefix.length), msg);
        if (!m) return;
        purger?.observe(m.seq, Date.now());
        k.receive(m);
        watches.get(m.topic)?.feed.onLive(m);
      },
    });
  }

  function startWatch(topic: string): Watch {
    const feed = new TopicFeed(
      topic,
      { read: (from, until) => reader.read(topic, from, { until, limit: o.historySize + 1 }) },
      {
        deliver(m) {
          if (status === 'closed') return;
          try {
            onMessage(m);
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
    const w: Watch = { feed, sub: keeperSub ? undefined : subscribeTopic(topic, feed), ready: Promise.resolve() };
    w.ready = (async () => {
      // Once the server has the subscription, everything stored later reaches it; what was stored
      // before is read below. The feed holds live messages until then and drops the overlap.
      await withTimeout(nc.flush(), o.readTimeoutMs, 'subscription');
      const view = await loadTopicView(reader, store, topic, epoch, o.historySize + 1, keeper?.peek(topic));
      if (watches.get(topic) !== w) return;
      if (!view.exact && view.snapshotSeq > 0) {
        log.warn('nats bus: topic state may be incomplete: messages after its snapshot were dropped before a newer snapshot', { topic, snapshotSeq: view.snapshotSeq });
      }
      feed.begin({ cursor: view.seq, state: view.state, recent: view.recent, chainStart: view.chainStart });
      if (nc.info?.cluster) {
        // In a cluster, flush() proves our server has the subscription, not yet the stream
        // leader's server: a message stored in that instant is neither read above nor
        // republished to us, and would wait for the topic's next message. Look once more.
        setTimeout(() => {
          if (watches.get(topic) !== w || status !== 'ready' || feed.repairing) return;
          reader.last(topic).then((last) => {
            if (last > feed.cursor && watches.get(topic) === w) feed.resync();
          }, () => {});
        }, SETTLE_CHECK_MS).unref();
      }
    })();
    return w;
  }

  async function snapshotOf(topic: string): Promise<{ seq: number; state: unknown }> {
    const view = await loadTopicView(reader, store, topic, epoch, o.historySize + 1, keeper?.peek(topic));
    return { seq: view.seq, state: view.state };
  }

  async function startKeeper(): Promise<void> {
    if (keeper || status === 'closed' || !lease?.holder) return;
    const k = new StateKeeper(reader, store, o, () => epoch, log, {
      maxTopics: o.keeperMaxTopics,
      stats: keeperStats,
      trim: async (topic, keep) => (await jsm.streams.purge(o.streamName, { filter: o.inPrefix + topic, keep })).purged,
    });
    keeper = k;
    keeperTerms++;
    k.start();
    const sub = subscribeAll(k);
    keeperSub = sub;
    try {
      // Once the server has the wildcard, the topics' own subscriptions can go (the feeds drop
      // the copies both deliver meanwhile). Bounded: the lease's next renewal retries.
      await withTimeout(nc.flush(), KEEPER_START_TIMEOUT_MS, 'keeper subscription');
      if (keeperSub !== sub) return;
      for (const w of watches.values()) {
        w.sub?.unsubscribe();
        w.sub = undefined;
      }
      if (o.purgeRules.length > 0) {
        purger = new AgePurger(jsm, o.streamName, o.inPrefix, o.purgeRules, log, (ns) => k.purgeFloor(ns), purgeStats);
        purger.start();
      }
      log.info('nats bus: this gateway is the state keeper', { stream: o.streamName });
    } catch (e) {
      if (keeper === k) await stopKeeper();
      log.warn('nats bus: state keeper could not start', { error: (e as Error).message });
    }
  }

  async function stopKeeper(): Promise<void> {
    const k = keeper;
    if (!k) return;
    keeper = undefined;
    const sub = keeperSub;
    keeperSub = undefined;
    const p = purger;
    purger = undefined;
    await p?.stop();
    // Topics get their own subscriptions back before the wildcard goes: no instant without one.
    for (const [topic, w] of watches) w.sub ??= subscribeTopic(topic, w.feed);
    // Bounded: while NATS is away a flush waits for the reconnect, and there is nothing to miss then.
    if (sub && status !== 'closed' && !nc.isClosed()) await withTimeout(nc.flush(), KEEPER_START_TIMEOUT_MS, 'flush').catch(() => {});
    sub?.unsubscribe();
    await k.stop();
  }

  const bus: NatsBus = {
    engine: 'nats',

    async start(handler) {
      if (status !== 'starting' || conn) throw new NatsBusError('bad_state', `start: bus is ${status}`);
      onMessage = handler;
      const deadline = Date.now() + o.connectTimeoutMs;
      conn = await untilDeadline('connect', deadline, () => openConnection(o, {
        onDisconnect() {
          log.warn('nats bus: disconnected from NATS, reconnecting', {});
          setStatus('degraded');
        },
        onReconnect() {
          log.info('nats bus: reconnected to NATS', { server: nc.getServer() });
          void recoverConnection();
        },
        onError(e) {
          log.warn('nats bus: connection error', { error: e.message });
        },
      }, connectFn));
      nc = conn.nc;
      void nc.closed().then((err) => {
        // Closed by close(), or for good (e.g. credentials refused on reconnect): no more retries.
        if (status === 'closed') return;
        log.error('nats bus: NATS connection closed for good', { error: err?.message });
        setStatus('degraded');
      });
      try {
        jsm = await nc.jetstreamManager({ checkAPI: false });
        js = nc.jetstream();
        let streamAttempt = 0;
        const info = await untilDeadline('stream setup', deadline, () => withTimeout(ensureStream(jsm, o), setupAttemptMs(streamAttempt++), 'stream setup'));
        await adoptStream(info.created);
        let bucketAttempt = 0;
        store = await untilDeadline('snapshot bucket setup', deadline, () => SnapshotStore.open(js, o, setupAttemptMs(bucketAttempt++)));
        reader = new StreamReader(jsm, o.streamName, o.inPrefix, o.readTimeoutMs, () => status === 'closed');
        replays = new ReplayReader(reader);
        // Best effort: the first watch, recover, history or lease check must not wait on an election.
        const readyMs = Math.min(READY_WAIT_MS, Math.max(0, deadline - Date.now()));
        await Promise.all([whenAnswering(() => jsm.streams.getMessage(o.streamName, { last_by_subj: `${o.inPrefix}=probe` }), readyMs, 'stream read'), bucketAnswers(store.kv, readyMs)]);
        // Someone deleting or recreating the stream changes the epoch; hear about it at once.
        advisorySub = nc.subscribe(`$JS.EVENT.ADVISORY.STREAM.*.${o.streamName}`, {
          callback(err, msg) {
            if (err || status === 'closed') return;
            const check = () => reconcile().catch((e: Error) => log.warn('nats bus: stream check failed', { error: e.message }));
            if (!msg.subject.includes('.DELETED.')) return void check();
            // nats-server 2.9 announces a deletion before it has removed the stream's files: a
            // stream created at once under the same name can lose its first block. Recreate a
            // little later (a publish in between recreates it on its own, after the deletion).
            log.warn('nats bus: the stream was deleted; it will be recreated (history is lost)', { stream: o.streamName });
            setStatus('degraded');
            setTimeout(check, 500).unref();
          },
        });
        if (o.keeperEnabled) {
          lease = new Lease(store.kv, '=keeper', `${o.name}-${ids.prefix}`, o.keeperLeaseMs, {
            acquired: () => {
              keeperStarting = startKeeper();
            },
            // Holding the lease without a running keeper (its start failed): try again.
            renewed: () => {
              if (!keeper && status === 'ready') keeperStarting = startKeeper();
            },
            lost: () => void stopKeeper(),
          }, log);
          // A lone gateway is the keeper before start() returns: nothing it is sent goes unkept.
          await lease.start();
          await keeperStarting;
        }
      } catch (e) {
        await conn.close().catch(() => {});
        throw e;
      }
      setStatus(nc.isClosed() ? 'degraded' : 'ready');
    },

    watch(topic) {
      try {
        assertOpen('watch');
        assertTopic(topic);
      } catch (e) {
        return Promise.reject(e);
      }
      const existing = watches.get(topic);
      if (existing) return existing.ready;
      const w = startWatch(topic);
      watches.set(topic, w);
      w.ready.catch(() => {
        // A failed watch is forgotten so the next call retries it.
        if (watches.get(topic) === w) bus.unwatch(topic);
      });
      return w.ready;
    },

    unwatch(topic) {
      const w = watches.get(topic);
      if (!w) return;
      watches.delete(topic);
      w.sub?.unsubscribe();
      w.feed.close();
      retire(w);
    },

    async publish(topic: string, kind: MessageKind, data: unknown, options?: PublishOptions): Promise<PublishResult> {
      assertOpen('publish');
      assertTopic(topic);
      const payload = encodeEnvelope(kind, data, Date.now());
      // The stream's duplicate window stores a message id once: ours for retries, or the caller's
      // (scoped to its sender). The caller's carries the digest of what it names, for checkDuplicate.
      const key = options?.idempotencyKey;
      const digest = key === undefined ? undefined : publishDigest(topic, kind, data);
      const msgID = key !== undefined ? `k-${idempotencyId(key, options?.idempotencyScope)}` : ids.next();
      const deadline = Date.now() + o.publishTimeoutMs;
      const ack = await publishRetried(js, { subject: o.inPrefix + topic, payload, msgID, headers: digest === undefined ? undefined : digestHeaders(digest), stream: o.streamName, deadline, floor: acks }, {
        // A reconnect ends the wait: the request may have been lost with the old connection,
        // and the retry is safe (same message id: stored once).
        resend: () => reconnected.promise,
        resent() {
          if (Date.now() >= deadline) throw new NatsBusError('unavailable', `publish to ${topic} timed out across reconnects`);
          counters.publishRetries++;
        },
        check: async (ack) => {
          if (ack.duplicate && digest !== undefined) await checkDuplicate(jsm, o.streamName, ack.seq, digest, key!, attemptTimeout(deadline));
        },
        async failed(e) {
          if (e instanceof NatsBusError) throw e;
          if (status === 'closed') throw new NatsBusError('closed', 'publish: bus closed');
          if (!isRetryable(e) || Date.now() >= deadline) {
            throw new NatsBusError(isRetryable(e) ? 'unavailable' : 'rejected', `publish to ${topic} failed: ${(e as Error).message}`, e);
          }
          counters.publishRetries++;
          if (isStoreFailure(e)) await repairFreshStream().catch(() => {});
          // No responders: no stream leader (election) or no stream at all (deleted) - find out.
          else if (errorCode(e) === '503') await reconcile().catch(() => {});
        },
        wrongStream: (stream) => new NatsBusError('misconfigured', `subject ${o.inPrefix}${topic} is stored by stream ${stream}, not ${o.streamName}`),
        // Sequences only go back when the stream was recreated: learn the new epoch before answering.
        restarted: () => reconcile().catch(() => {}),
      });
      counters.published++;
      return { seq: ack.seq, epoch };
    },

    async recover(topic: string, since: Position | undefined): Promise<RecoverResult> {
      assertOpen('recover');
      assertTopic(topic);
      const w = watches.get(topic);
      if (w) await w.ready;
      const feed = w && watches.get(topic) === w && w.feed.ready ? w.feed : undefined;
      const current = epoch;
      if (since && since.epoch === current) {
        const window = o.windowOf(topic);
        const cached = feed?.replayAfter(since.seq);
        if (cached && feed) {
          if (insideWindow(cached, window)) return { epoch: current, seq: feed.cursor, recovered: true, replay: cached, state: undefined };
        } else {
          const fromStream = await replays.after(topic, since.seq, window.size);
          if (fromStream && insideWindow(fromStream.replay, window)) {
            return { epoch: current, seq: fromStream.seq, recovered: true, replay: fromStream.replay, state: undefined };
          }
        }
      }
      const snap = feed ? { seq: feed.cursor, state: feed.state } : await snapshotOf(topic);
      return { epoch: current, seq: snap.seq, recovered: false, replay: [], state: snap.state };
    },

    async history(topic: string, since: number, limit: number): Promise<HistoryResult> {
      assertOpen('history');
      assertTopic(topic);
      const current = epoch;
      const max = Math.max(0, Math.floor(limit));
      const last = await reader.last(topic);
      if (last === 0 || since >= last) {
        // Nothing after `since` is retained. Dropped messages are older than the newest retained
        // one, so `since >= last > 0` proves completeness; with nothing retained it is unknowable.
        return { epoch: current, seq: last, messages: [], complete: last > 0 || (since === 0 && (await store.load(topic)).record === undefined) };
      }
      // A narrower window needs everything after `since` to know which messages are its last ones.
      const window = o.windowOf(topic);
      const read = await reader.read(topic, Math.max(1, since), { until: last, limit: window.narrower ? o.historySize + 1 : max + 1 });
      const chain = rebuildChain(topic, since, read);
      const feed = watches.get(topic)?.feed;
      const clipped = clipToWindow(chain.messages, window);
      const complete = !clipped.trimmed && (chain.proven || (since === 0 && feed?.replayAfter(0) !== undefined));
      const messages = clipped.messages.slice(0, max);
      if (complete && since === 0 && messages[0] && !chain.proven) messages[0] = { ...messages[0], prev: 0 };
      return { epoch: current, seq: last, messages, complete };
    },

    status: () => status,

    async close() {
      if (status === 'closed') return;
      const wasStarted = conn !== undefined;
      setStatus('closed');
      for (const [topic, w] of watches) {
        watches.delete(topic);
        w.sub?.unsubscribe();
        w.feed.close();
        retire(w);
      }
      advisorySub?.unsubscribe();
      if (!wasStarted) return;
      // The keeper writes its last snapshots (bounded: a dead connection must not hold the
      // shutdown), then the lease is handed back so another gateway takes over at once.
      await stopKeeper();
      await lease?.stop();
      await conn!.close().catch(() => {});
    },

    epoch: () => epoch,

    figures(): readonly BusFigure[] {
      const s = bus.stats();
      const counter = (name: string, help: string, value: number): BusFigure => ({ name, type: 'counter', help, value });
      return [
        { name: 'nats_keeper', type: 'gauge', help: '1 while this gateway is the deployment\'s state keeper.', value: s.keeper ? 1 : 0 },
        counter('nats_publish_retries_total', 'Publish attempts retried (timeouts, reconnects, elections).', s.publishRetries),
        counter('nats_gap_repairs_total', 'Live-path gaps repaired from the stream.', s.repairs),
        counter('nats_messages_repaired_total', 'Messages read back from the stream by gap repairs.', s.repaired),
        counter('nats_losses_total', 'Gaps the stream could no longer fill (retention dropped the messages first).', s.losses),
        counter('nats_resyncs_total', 'Reconnects after which every watched topic re-read the stream.', s.resyncs),
        counter('nats_epoch_changes_total', 'Times the stream was found recreated.', s.epochChanges),
        counter('nats_keeper_terms_total', 'Times this gateway became the state keeper.', s.keeperTerms),
        counter('nats_keeper_applied_total', 'Messages applied to topic state by the keeper on this gateway.', s.keeperApplied),
        counter('nats_keeper_gaps_total', 'Messages the keeper missed on the wire and read back.', s.keeperGaps),
        counter('nats_snapshot_writes_total', 'Topic snapshots written to KV by the keeper on this gateway.', s.snapshotWrites),
        counter('nats_age_purged_total', 'Messages purged from the stream by namespace age limits (keeper).', s.agePurged),
        counter('nats_size_trimmed_total', 'Messages trimmed from the stream by namespace size limits (keeper).', s.sizeTrimmed),
      ];
    },

    stats(): NatsBusStats {
      const s = { ...retired };
      for (const w of watches.values()) add(s, w);
      const k = {
        keeper: keeper?.active ?? false,
        keeperApplied: keeperStats.applied,
        keeperTerms,
        keeperGaps: keeperStats.gaps,
        agePurged: purgeStats.purged,
        sizeTrimmed: keeperStats.trimmed,
        snapshotWrites: keeperStats.writes,
      };
      return {
        epoch,
        watched: watches.size,
        published: counters.published,
        publishRetries: counters.publishRetries,
        resyncs: counters.resyncs,
        epochChanges: counters.epochChanges,
        ...s,
        ...k,
      };
    },
  };
  return bus;
}
