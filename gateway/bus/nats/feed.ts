/**
 * One watched topic's live feed: turns RePublish copies (seq + prev) into an exactly-once,
 * in-order delivery, repairing gaps from the stream before delivering what follows them.
 * It also keeps the topic's materialised state and a small cache of recent messages, both
 * consistent with `cursor` (the last delivered sequence), so a subscribe or resume on a
 * watched topic is answered from memory.
 *
 * No I/O here: the stream is reached through `FeedSource`, so every path is unit-tested.
 *
 * Rules, per live message m (cursor = last delivered):
 *   m.seq <= cursor          duplicate (already read from the stream by a repair): dropped
 *   m.prev === cursor        in order: delivered
 *   otherwise                gap: m is held, the stream is read from cursor to m.seq - 1, those
 *                            are delivered, then m. Messages arriving meanwhile are held too
 *                            (bounded: past `maxPending` the buffer is dropped and everything
 *                            after cursor is re-read from the stream instead - nothing is lost).
 * Stored messages carry no prev: a read starts AT cursor, and if the cursor message is still
 * retained, what follows it is provably the whole chain. If it is not (retention dropped it
 * while we were away), the first message read gets prev = seq - 1, which is not the cursor: every
 * reader downstream sees a gap and re-synchronises (a fresh snapshot), instead of silently
 * missing messages. `onLoss` reports such unprovable gaps.
 */
import { applyMessage } from '../../../protocol/index.ts';
import { pause } from '../../../nats-kit/backoff.ts';
import type { BusMessage } from '../bus.ts';
import type { StoredMessage } from './reader.ts';
import { rebuildChain } from './chain.ts';

export interface FeedSource {
  /** The topic's retained messages with seq >= from (and <= until), oldest first. */
  read(from: number, until: number | undefined): Promise<readonly StoredMessage[]>;
}

export interface FeedInit {
  /** The last message already reflected in `state` (0: none). */
  readonly cursor: number;
  readonly state: unknown;
  /** Retained messages up to `cursor` with exact prev, oldest first (seeds the cache). */
  readonly recent: readonly BusMessage[];
  /** Every message in (chainStart, cursor] is in `recent`; undefined when that is not proven. */
  readonly chainStart: number | undefined;
}

export interface FeedHooks {
  deliver(m: BusMessage): void;
  /** Messages after `after` and before `before` may have been lost (dropped by retention before they were read). */
  onLoss?(after: number, before: number): void;
  /** A stream read failed; it is retried after `retryDelayMs(attempt)`. */
  onError?(e: Error): void;
}

export interface FeedOptions {
  readonly cacheSize: number;
  readonly maxPending: number;
  readonly retryDelayMs?: (attempt: number) => number;
}

/**
 * How a delivered message attaches to the cache: `chained` follows cursor; `restart` has a real
 * prev beyond a gap; `unknown`: nothing proven before it (replay can only start at it).
 */
type Link = 'chained' | 'restart' | 'unknown';

const defaultRetryDelay = (attempt: number) => Math.min(2000, 50 * 2 ** attempt);

export class TopicFeed {
  private cursorSeq = 0;
  private stateDoc: unknown = undefined;
  private cache: BusMessage[] = [];
  private chainStart: number | undefined = undefined;
  private pending: BusMessage[] = [];
  private loaded = false;
  private busy = true;
  private pumping = false;
  private resyncWanted = false;
  private generation = 0;
  private closed = false;
  /** Counters for metrics and tests. */
  readonly stats = { delivered: 0, duplicates: 0, repairs: 0, repaired: 0, overflows: 0, losses: 0 };

  constructor(
    readonly topic: string,
    private readonly source: FeedSource,
    private readonly hooks: FeedHooks,
    private readonly options: FeedOptions,
  ) {}

  get cursor(): number {
    return this.cursorSeq;
  }
  get state(): unknown {
    return this.stateDoc;
  }
  get ready(): boolean {
    return this.loaded;
  }
  /** True while live messages are held (loading, repairing, resynchronising). */
  get repairing(): boolean {
    return this.busy;
  }

  /** Ends the loading phase: live messages held since the subscription started are now sequenced. */
  begin(init: FeedInit): void {
    if (this.closed || this.loaded) return;
    this.cursorSeq = init.cursor;
    this.stateDoc = init.state;
    this.cache = this.options.cacheSize > 0 ? init.recent.slice(-this.options.cacheSize) : [];
    this.chainStart = init.chainStart;
    if (this.chainStart !== undefined && this.cache.length < init.recent.length) {
      this.chainStart = init.recent[init.recent.length - this.cache.length - 1]!.seq;
    }
    this.loaded = true;
    this.kick();
  }

  onLive(m: BusMessage): void {
    if (this.closed) return;
    if (this.busy) return this.hold(m);
    if (m.seq <= this.cursorSeq) {
      this.stats.duplicates++;
      return;
    }
    if (m.prev === this.cursorSeq) return this.deliver(m, 'chained');
    this.hold(m);
    this.kick();
  }

  /** Reads everything after cursor from the stream (after a reconnect: the live path may have missed some). */
  resync(): void {
    if (this.closed) return;
    this.resyncWanted = true;
    this.busy = true;
    this.kick();
  }

  /** The stream was recreated: forget everything and read the topic again from its start. */
  reset(): void {
    if (this.closed) return;
    this.generation++;
    this.cursorSeq = 0;
    this.stateDoc = undefined;
    this.cache = [];
    this.chainStart = undefined;
    // Held messages may be from the old stream; the new stream's are all read back by the resync.
    this.pending = [];
    this.resync();
  }

  close(): void {
    this.closed = true;
    this.pending = [];
  }

  /**
   * The messages after `since`, if the cache provably holds all of them (else undefined).
   * Consistent with `cursor`: messages after it arrive through `deliver`.
   */
  replayAfter(since: number): BusMessage[] | undefined {
    if (!this.loaded || this.chainStart === undefined || since < this.chainStart || since > this.cursorSeq) return undefined;
    return this.cache.filter((m) => m.seq > since);
  }

  private hold(m: BusMessage): void {
    if (this.pending.length >= this.options.maxPending) {
      // Everything held is in the stream: drop the buffer and read it back instead of growing.
      this.pending = [];
      this.resyncWanted = true;
      this.stats.overflows++;
    }
    this.pending.push(m);
  }

  private kick(): void {
    if (!this.loaded || this.closed) return;
    if (!this.resyncWanted && this.pending.length === 0) {
      this.busy = false;
      return;
    }
    this.busy = true;
    if (!this.pumping) {
      this.pumping = true;
      void this.pump();
    }
  }

  private async pump(): Promise<void> {
    let failures = 0;
    while (!this.closed) {
      const wantAll = this.resyncWanted;
      const next = this.pending[0];
      if (!wantAll && !next) break;
      if (!wantAll && next!.seq <= this.cursorSeq) {
        this.pending.shift();
        this.stats.duplicates++;
        continue;
      }
      if (!wantAll && next!.prev === this.cursorSeq) {
        this.pending.shift();
        this.deliver(next!, 'chained');
        continue;
      }
      this.resyncWanted = false;
      const generation = this.generation;
      try {
        this.stats.repairs++;
        await this.fill(wantAll ? undefined : next!.seq - 1);
        failures = 0;
      } catch (e) {
        if (wantAll) this.resyncWanted = true;
        this.hooks.onError?.(e as Error);
        await pause((this.options.retryDelayMs ?? defaultRetryDelay)(failures++));
        continue;
      }
      if (generation !== this.generation) continue; // reset meanwhile: start over
      if (!wantAll && this.pending[0] === next && next!.seq > this.cursorSeq && next!.prev !== this.cursorSeq) {
        // Its predecessor is no longer in the stream: deliver it with its real prev (a visible gap).
        // prev < cursor: the stream kept nothing of the topic before it (all expired), so nothing
        // proves that no message after cursor expired unseen either.
        this.pending.shift();
        this.loss(this.cursorSeq, next!.seq);
        this.deliver(next!, next!.prev > this.cursorSeq ? 'restart' : 'unknown');
      }
    }
    this.pumping = false;
    if (!this.closed) this.kick();
  }

  /** Reads from the stream starting AT cursor (to prove the chain) up to `until`, and delivers what is new. */
  private async fill(until: number | undefined): Promise<void> {
    const generation = this.generation;
    // (a reset during the read makes its result belong to the old stream: discarded)
    const from = Math.max(1, this.cursorSeq);
    const read = await this.source.read(from, until);
    if (this.closed || generation !== this.generation) return;
    const chain = rebuildChain(this.topic, this.cursorSeq, read);
    for (const m of chain.messages) {
      this.stats.repaired++;
      if (m === chain.unknownFirst) {
        // Nothing proves that no message between cursor and m was dropped before we read it.
        this.loss(this.cursorSeq, m.seq);
        this.deliver(m, 'unknown');
      } else {
        this.deliver(m, 'chained');
      }
    }
  }

  private loss(after: number, before: number): void {
    this.stats.losses++;
    this.hooks.onLoss?.(after, before);
  }

  private deliver(m: BusMessage, link: Link): void {
    this.stateDoc = applyMessage(this.stateDoc, m.kind, m.data);
    this.cursorSeq = m.seq;
    this.remember(m, link);
    this.stats.delivered++;
    this.hooks.deliver(m);
  }

  private remember(m: BusMessage, link: Link): void {
    if (link === 'unknown') {
      this.cache = [];
      this.chainStart = m.seq;
      return;
    }
    // A known prev proves (prev, seq] holds only m: the chain restarts there if it was broken or unproven.
    if (link === 'restart' || this.chainStart === undefined) {
      this.cache = [];
      this.chainStart = m.prev;
    }
    this.cache.push(m);
    while (this.cache.length > this.options.cacheSize) this.chainStart = this.cache.shift()!.seq;
  }
}
