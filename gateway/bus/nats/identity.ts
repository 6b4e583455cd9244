/**
 * The stream's identity. The epoch is the stream's creation time (stream.ts); it is re-read on
 * reconnect, on stream advisories (CREATED/UPDATED/DELETED) and when a publish ack goes below an
 * earlier one. A new epoch restarts the watched topics and the keeper from the new stream. Also
 * here: recreating a stream that is gone, repairing a fresh one that cannot store, and bringing
 * the engine back after a reconnect.
 */
import type { StreamInfo, Subscription } from 'nats';
import { backoffDelay, pause } from '../../../nats-kit/backoff.ts';
import { AckFloor } from '../../../nats-kit/publish.ts';
import type { KeeperTerms } from './keeper-term.ts';
import { isNotFound } from './reader.ts';
import { askUntil } from './requests.ts';
import { linked, setStatus, type EngineState } from './state.ts';
import { ensureStream, epochFromCreated } from './stream.ts';

export interface Identity {
  /** The current stream's acknowledged sequences (reset with a new epoch). */
  readonly acks: AckFloor;
  /** Takes the stream's `created` time as the epoch; a change restarts what read the old stream. */
  adopt(created: string): Promise<void>;
  /** Re-reads the stream's identity (recreating the stream if it is gone); single flight. */
  reconcile(): Promise<void>;
  /** A fresh stream that cannot store is deleted and created again (see below); single flight. */
  repairFreshStream(): Promise<void>;
  /** After a reconnect: check the stream, then read what the live path missed while away. */
  recoverConnection(): Promise<void>;
  /** Calls `now` at the next reconnect (a request in flight may have died with the old connection); returns the unregistering function. */
  onNextReconnect(now: () => void): () => void;
  /** Hears about the stream being deleted, recreated or updated, at once. */
  listen(): void;
  close(): void;
}

/** This part's own state. */
interface IdentityState {
  /** Single flights: one stream check, one repair, one recovery at a time. */
  reconciling: Promise<void> | undefined;
  repairing: Promise<void> | undefined;
  recovering: Promise<void> | undefined;
  /** Called (and forgotten) at the next reconnect: the publish attempts in flight. */
  reconnectWaiters: Set<() => void>;
  advisories: Subscription | undefined;
}

export function createIdentity(s: EngineState, terms: KeeperTerms): Identity {
  const { o, log } = s;
  const acks = new AckFloor();
  const my: IdentityState = { reconciling: undefined, repairing: undefined, recovering: undefined, reconnectWaiters: new Set(), advisories: undefined };

  async function adopt(created: string): Promise<void> {
    const next = epochFromCreated(created);
    if (next === s.epoch) return;
    const first = s.epoch === '';
    s.epoch = next;
    if (first) return;
    s.counts.epochChanges++;
    acks.reset();
    log.warn('nats bus: stream recreated, new epoch; watched topics restart from the new stream', { stream: o.streamName, epoch: s.epoch });
    for (const w of s.watches.values()) w.feed.reset();
    await terms.restart();
  }

  function reconcile(): Promise<void> {
    my.reconciling ??= (async () => {
      const { nc, jsm } = linked(s);
      let info: StreamInfo;
      try {
        info = await askUntil(
          'stream check',
          Date.now() + o.readTimeoutMs,
          () => jsm.streams.info(o.streamName),
          () => s.status === 'closed',
        );
      } catch (e) {
        if (!isNotFound(e)) throw e;
        info = await ensureStream(jsm, o);
      }
      await adopt(info.created);
      if (s.status === 'degraded' && !nc.isClosed() && !my.recovering) setStatus(s, 'ready');
    })().finally(() => {
      my.reconciling = undefined;
    });
    return my.reconciling;
  }

  /**
   * The deletion race (see listen), if it happened anyway: a stream that cannot store (its files
   * went with the old stream's deletion), still empty, is deleted and created again. Never a
   * stream with messages: those errors are left to the operator.
   */
  function repairFreshStream(): Promise<void> {
    my.repairing ??= (async () => {
      const { jsm } = linked(s);
      const info = await jsm.streams.info(o.streamName);
      if (info.state.messages > 0 || info.state.last_seq > 0) return;
      log.warn('nats bus: the new stream cannot store messages; deleting and recreating it', { stream: o.streamName });
      await jsm.streams.delete(o.streamName);
      await reconcile();
    })().finally(() => {
      my.repairing = undefined;
    });
    return my.repairing;
  }

  function recoverConnection(): Promise<void> {
    // Publishes waiting on a request that may have died with the old connection retry at once.
    const waiters = [...my.reconnectWaiters];
    my.reconnectWaiters.clear();
    for (const now of waiters) now();
    // Still starting: start() sets the stream up and the status itself.
    if (!s.link) return Promise.resolve();
    const { nc } = s.link;
    my.recovering ??= (async () => {
      for (let attempt = 0; s.status !== 'closed'; attempt++) {
        try {
          await reconcile();
          break;
        } catch (e) {
          log.warn('nats bus: stream check after reconnect failed, retrying', { error: (e as Error).message });
          if (nc.isClosed()) return;
          await pause(Math.max(50, backoffDelay(attempt, 200, 2000)));
        }
      }
      if (s.status === 'closed' || nc.isClosed()) return;
      s.counts.resyncs++;
      for (const w of s.watches.values()) w.feed.resync();
      // The keeper's subscription is renewed with the connection; what it missed meanwhile shows
      // as a gap at each topic's next message, read back from the stream then.
      setStatus(s, 'ready');
    })().finally(() => {
      my.recovering = undefined;
    });
    return my.recovering;
  }

  function listen(): void {
    my.advisories = linked(s).nc.subscribe(`$JS.EVENT.ADVISORY.STREAM.*.${o.streamName}`, {
      callback(err, msg) {
        if (err || s.status === 'closed') return;
        const check = () => reconcile().catch((e: Error) => log.warn('nats bus: stream check failed', { error: e.message }));
        if (!msg.subject.includes('.DELETED.')) return void check();
        // nats-server 2.9 announces a deletion before it has removed the stream's files: a
        // stream created at once under the same name can lose its first block. Recreate a
        // little later (a publish in between recreates it on its own, after the deletion).
        log.warn('nats bus: the stream was deleted; it will be recreated (history is lost)', { stream: o.streamName });
        setStatus(s, 'degraded');
        setTimeout(check, 500).unref();
      },
    });
  }

  return {
    acks,
    adopt,
    reconcile,
    repairFreshStream,
    recoverConnection,
    onNextReconnect(now) {
      my.reconnectWaiters.add(now);
      return () => void my.reconnectWaiters.delete(now);
    },
    listen,
    close: () => my.advisories?.unsubscribe(),
  };
}
