/**
 * The state keeper: the one gateway of a deployment holding the keeper lease sees every message
 * of the stream and keeps every recently active topic's state, writing it to the KV bucket after
 * `snapshot.everyMessages` messages of the topic and once the topic has been idle for
 * `snapshot.idleMs`.
 *
 * Why a keeper and not only the gateways that watch a topic: a topic nobody watches (a backend
 * publishing patches, over the HTTP API or to NATS directly, to a room nobody is in yet) would
 * otherwise lose its state as soon as retention drops its oldest patches. With a writer that
 * sees every message, a snapshot never falls more than `everyMessages` (< history.size) behind,
 * so "snapshot + retained tail" is always exact - as long as the keeper keeps up (see README).
 *
 * Input: the engine hands it the RePublish copies of one wildcard subscription, the same copies
 * the live path of watched topics reads (one delivery per message to this gateway, not two).
 * They carry `prev`, so a missed message (reconnect, slow consumer) shows as a gap at the topic's
 * next message and is read back from the stream before the state moves on.
 *
 * A topic first seen (keeper start, takeover, or evicted earlier) is caught up from its KV
 * snapshot plus the stream tail up to the message just received. Memory is bounded by
 * `maxTopics` (least recently active topics are written and forgotten).
 */
import { applyMessage } from '../../../protocol/index.ts';
import type { Logger } from '../../log.ts';
import type { BusMessage } from '../bus.ts';
import { rebuildChain } from './chain.ts';
import type { ResolvedNatsOptions } from './options.ts';
import type { StoredMessage, StreamReader } from './reader.ts';
import type { SnapshotStore } from './snapshots.ts';

interface Kept {
  seq: number;
  state: unknown;
  revision: number;
  savedSeq: number;
  /** Messages applied since the last write started. */
  dirty: number;
  /** When the oldest change not yet in a written snapshot was applied (0: none). */
  dirtySince: number;
  /** Messages applied since the topic was last trimmed on disk. */
  sinceTrim: number;
  lastAt: number;
  /** Catching up from KV + stream: messages received meanwhile wait in `queue`. */
  loading: boolean;
  queue: BusMessage[];
  writing: Promise<void> | undefined;
  again: boolean;
  trimming: boolean;
}

export interface KeeperStats {
  applied: number;
  writes: number;
  catchUps: number;
  gaps: number;
  conflicts: number;
  inexact: number;
  trimmed: number;
}

export const newKeeperStats = (): KeeperStats => ({ applied: 0, writes: 0, catchUps: 0, gaps: 0, conflicts: 0, inexact: 0, trimmed: 0 });

export interface KeeperOptions {
  readonly maxTopics: number;
  /** Counters to add to: the engine passes one object for all its keepers (cumulative across terms). */
  readonly stats?: KeeperStats;
  /** Removes all but the newest `keep` messages of a topic from the stream (see `trimAfterWrite`). */
  readonly trim?: (topic: string, keep: number) => Promise<number>;
}

/** A topic with a smaller size window is trimmed on disk at most once per this many of its messages (or its size, if larger). */
const TRIM_BATCH = 32;

export class StateKeeper {
  private readonly topics = new Map<string, Kept>();
  private sweepTimer: NodeJS.Timeout | undefined;
  private running = false;
  readonly stats: KeeperStats;

  constructor(
    private readonly reader: StreamReader,
    private readonly store: SnapshotStore,
    private readonly o: ResolvedNatsOptions,
    private readonly epoch: () => string,
    private readonly log: Logger,
    private readonly options: KeeperOptions,
  ) {
    this.stats = options.stats ?? newKeeperStats();
  }

  get active(): boolean {
    return this.running;
  }

  /** The engine delivers every message (`receive`) from now on. */
  start(): void {
    if (this.running) return;
    this.running = true;
    // At least every second: the age trigger (sweep) must not wait on a long idle time.
    this.sweepTimer = setInterval(() => this.sweep(), Math.max(50, Math.min(1000, Math.floor(this.o.snapshotIdleMs / 2))));
    this.sweepTimer.unref();
  }

  /** Writes what is dirty (bounded by `timeoutMs`) and stops. */
  async stop(timeoutMs = 2_000): Promise<void> {
    if (!this.running) return;
    this.running = false;
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    const writes = [...this.topics.entries()].filter(([, k]) => !k.loading && k.seq > k.savedSeq).map(([t, k]) => this.write(t, k));
    await Promise.race([Promise.allSettled(writes), new Promise((r) => setTimeout(r, timeoutMs).unref())]);
    this.topics.clear();
  }

  /** The kept state of a topic, if this keeper has it loaded: consistent at `seq`. */
  peek(topic: string): { seq: number; state: unknown } | undefined {
    const k = this.topics.get(topic);
    return k && !k.loading ? { seq: k.seq, state: k.state } : undefined;
  }

  /**
   * The lowest stream sequence of a namespace's topics (`ns`, `ns.…`) that the age purge may not
   * remove yet (Infinity: none): for each topic with changes not in a written snapshot, its last
   * snapshot's message (kept, so a cold reader can prove the chain from it) and all after it.
   */
  purgeFloor(namespace: string): number {
    let floor = Infinity;
    const nested = `${namespace}.`;
    for (const [topic, k] of this.topics) {
      if (!k.loading && !k.writing && k.seq <= k.savedSeq) continue;
      if (topic === namespace || topic.startsWith(nested)) floor = Math.min(floor, k.savedSeq);
    }
    return floor;
  }

  /** A live message (RePublish copy, with `prev`), in stream order per topic. */
  receive(m: BusMessage): void {
    if (!this.running) return;
    const topic = m.topic;
    let k = this.topics.get(topic);
    if (k) {
      // Re-insert: Map order is the LRU order.
      this.topics.delete(topic);
      this.topics.set(topic, k);
      if (k.loading) k.queue.push(m);
      else this.accept(topic, k, m);
      return;
    }
    k = {
      seq: 0,
      state: undefined,
      revision: 0,
      savedSeq: 0,
      dirty: 0,
      dirtySince: 0,
      sinceTrim: 0,
      lastAt: Date.now(),
      loading: true,
      queue: [m],
      writing: undefined,
      again: false,
      trimming: false,
    };
    this.topics.set(topic, k);
    void this.catchUp(topic, k, m.seq);
    this.evict();
  }

  /** Applies `m` if it follows what the topic holds; a gap is read back from the stream first. */
  private accept(topic: string, k: Kept, m: BusMessage): void {
    if (m.seq <= k.seq) return; // a duplicate (two subscriptions during a switch-over)
    if (m.prev !== k.seq) {
      this.stats.gaps++;
      k.loading = true;
      k.queue.unshift(m);
      void this.catchUp(topic, k, m.seq);
      return;
    }
    this.apply(topic, k, m);
  }

  /**
   * Brings the topic up to (not including) `before`: from its KV snapshot or from what this
   * keeper already holds, whichever is newer, plus the stream tail; then drains the queue.
   */
  private async catchUp(topic: string, k: Kept, before: number): Promise<void> {
    this.stats.catchUps++;
    for (let attempt = 0; this.running; attempt++) {
      try {
        const snap = await this.store.load(topic);
        const rec = snap.record?.epoch === this.epoch() ? snap.record : undefined;
        k.revision = snap.revision;
        if (rec && rec.seq > k.seq) {
          k.seq = rec.seq;
          k.state = rec.state;
          k.savedSeq = rec.seq;
        }
        const base = k.seq;
        const read = base + 1 < before ? await this.reader.read(topic, Math.max(1, base), { until: before - 1, limit: this.o.historySize + 1 }) : [];
        const chain = rebuildChain(topic, base, read);
        if (chain.unknownFirst && base > 0 && !chain.messages.some((x) => x.kind === 'set')) {
          this.stats.inexact++;
          this.log.warn('nats bus: topic state may be incomplete (retention dropped messages no snapshot covered)', { topic, snapshotSeq: base });
        }
        for (const x of chain.messages) this.applyOne(k, x);
        k.loading = false;
        this.drain(topic, k);
        return;
      } catch (e) {
        this.log.warn('nats bus: state keeper catch-up failed, retrying', { topic, error: (e as Error).message });
        await new Promise((r) => setTimeout(r, Math.min(2000, 100 * 2 ** attempt)).unref());
      }
    }
  }

  private drain(topic: string, k: Kept): void {
    const queued = k.queue;
    k.queue = [];
    for (let i = 0; i < queued.length; i++) {
      const m = queued[i]!;
      // What the stream no longer has cannot be read back: go on from the first message after it.
      if (i === 0 && m.seq > k.seq && m.prev > k.seq) {
        this.stats.inexact++;
        this.log.warn('nats bus: topic state may be incomplete (messages dropped before the keeper read them)', { topic, after: k.seq, before: m.seq });
        k.seq = m.prev;
      }
      this.accept(topic, k, m);
      if (k.loading) {
        k.queue.push(...queued.slice(i + 1));
        return;
      }
    }
  }

  private applyOne(k: Kept, m: StoredMessage | BusMessage): boolean {
    if (m.seq <= k.seq) return false;
    k.state = applyMessage(k.state, m.kind, m.data);
    k.seq = m.seq;
    k.dirty++;
    k.sinceTrim++;
    k.lastAt = Date.now();
    if (k.dirtySince === 0) k.dirtySince = k.lastAt;
    this.stats.applied++;
    return true;
  }

  private apply(topic: string, k: Kept, m: BusMessage): void {
    if (this.applyOne(k, m) && k.dirty >= this.o.snapshotEvery) void this.write(topic, k);
  }

  /**
   * Writes dirty topics that went idle, or whose oldest unwritten change is half the topic's max
   * age old: a busy topic with few messages per `everyMessages` must still be snapshotted before
   * the stream (or the purge of its namespace, purge.ts) ages out messages its snapshot does not
   * cover. Forgets the least recently active topics past `maxTopics`.
   */
  private sweep(): void {
    const now = Date.now();
    for (const [topic, k] of this.topics) {
      if (k.loading || k.seq <= k.savedSeq) continue;
      if (now - k.lastAt >= this.o.snapshotIdleMs || now - k.dirtySince >= this.o.windowOf(topic).ageMs / 2) void this.write(topic, k);
    }
    this.evict();
  }

  private evict(): void {
    for (const [topic, k] of this.topics) {
      if (this.topics.size <= this.options.maxTopics) return;
      if (k.loading || k.writing) continue;
      this.topics.delete(topic);
      if (k.seq > k.savedSeq) void this.write(topic, k);
    }
  }

  /**
   * A topic whose namespace keeps fewer messages than the stream is trimmed on disk to its size,
   * right after a snapshot write and only while fewer than `size` of its messages are unwritten:
   * what the trim removes is then older than the snapshot (which still stays provable). At most
   * once per max(size, TRIM_BATCH) messages of the topic: one request, not one per message.
   */
  private trimAfterWrite(topic: string, k: Kept): void {
    const trim = this.options.trim;
    if (!trim || k.trimming) return;
    const { size } = this.o.windowOf(topic);
    if (size >= this.o.historySize || k.sinceTrim < Math.max(size, TRIM_BATCH) || k.dirty >= size) return;
    k.trimming = true;
    const counted = k.sinceTrim;
    trim(topic, size)
      .then(
        (n) => {
          this.stats.trimmed += n;
          k.sinceTrim = Math.max(0, k.sinceTrim - counted);
        },
        (e: Error) => this.log.warn('nats bus: trimming a topic to its namespace size failed (retried later)', { topic, error: e.message }),
      )
      .finally(() => {
        k.trimming = false;
      });
  }

  private write(topic: string, k: Kept): Promise<void> {
    if (k.writing) {
      k.again = true;
      return k.writing;
    }
    k.writing = this.writeLoop(topic, k).finally(() => {
      k.writing = undefined;
    });
    return k.writing;
  }

  private async writeLoop(topic: string, k: Kept): Promise<void> {
    for (let attempt = 0; attempt < 5; attempt++) {
      k.again = false;
      const seq = k.seq;
      if (seq <= k.savedSeq) return;
      const state = k.state;
      const epoch = this.epoch();
      const dirtySince = k.dirtySince;
      k.dirty = 0;
      k.dirtySince = 0;
      try {
        const r = await this.store.save(topic, { seq, epoch, state, ts: Date.now() }, k.revision);
        if (r.ok) {
          k.revision = r.revision;
          k.savedSeq = seq;
          this.stats.writes++;
          this.trimAfterWrite(topic, k);
        } else {
          // Someone else wrote (a second keeper during a takeover): never go back, retry if ours is newer.
          this.stats.conflicts++;
          k.revision = r.current.revision;
          const cur = r.current.record;
          if (cur && cur.epoch === epoch && cur.seq >= seq) k.savedSeq = Math.max(k.savedSeq, cur.seq);
          else k.again = true;
        }
      } catch (e) {
        this.log.warn('nats bus: snapshot write failed', { topic, error: (e as Error).message });
        k.dirty = Math.max(k.dirty, 1); // the sweep retries
        k.dirtySince = k.dirtySince === 0 ? dirtySince : Math.min(k.dirtySince, dirtySince);
        return;
      }
      if (!k.again) return;
    }
  }
}
