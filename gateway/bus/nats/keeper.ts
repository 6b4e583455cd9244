/**
 * The state keeper: the one gateway of a deployment holding the keeper lease reads every message
 * of the stream in order (an ordered consumer, so nothing is skipped) and keeps every recently
 * active topic's state, writing it to the KV bucket after `snapshot.everyMessages` messages of
 * the topic and once the topic has been idle for `snapshot.idleMs`.
 *
 * Why a keeper and not only the gateways that watch a topic: a topic nobody watches (a backend
 * publishing patches, over the HTTP API or to NATS directly, to a room nobody is in yet) would
 * otherwise lose its state as soon as retention drops its oldest patches. With a writer that
 * sees every message, a snapshot never falls more than `everyMessages` (< history.size) behind,
 * so "snapshot + retained tail" is always exact - as long as the keeper keeps up (see README).
 *
 * A topic first seen (keeper start, takeover, or evicted earlier) is caught up from its KV
 * snapshot plus the stream tail up to the message just received. Memory is bounded by
 * `maxTopics` (least recently active topics are written and forgotten).
 */
import { DeliverPolicy, type ConsumerMessages, type JetStreamClient } from 'nats';
import { applyMessage } from '../../../protocol/index.ts';
import type { Logger } from '../../log.ts';
import { rebuildChain } from './chain.ts';
import { decodeEnvelope } from './codec.ts';
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
  lastAt: number;
  /** Catching up from KV + stream: messages received meanwhile wait in `queue`. */
  loading: boolean;
  queue: StoredMessage[];
  writing: Promise<void> | undefined;
  again: boolean;
}

export interface KeeperOptions {
  readonly maxTopics: number;
}

export class StateKeeper {
  private readonly topics = new Map<string, Kept>();
  private messages: ConsumerMessages | undefined;
  private loop: Promise<void> | undefined;
  private sweepTimer: NodeJS.Timeout | undefined;
  private running = false;
  /** Starting or reading: false once the consume loop has ended (the engine then replaces it). */
  private reading = false;
  readonly stats = { applied: 0, writes: 0, catchUps: 0, conflicts: 0, inexact: 0 };

  constructor(
    private readonly js: JetStreamClient,
    private readonly reader: StreamReader,
    private readonly store: SnapshotStore,
    private readonly o: ResolvedNatsOptions,
    private readonly epoch: () => string,
    private readonly log: Logger,
    private readonly options: KeeperOptions,
  ) {}

  get active(): boolean {
    return this.running && this.reading;
  }

  /** Resolves once the consumer exists: every message stored from then on is seen. */
  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    this.reading = true;
    try {
      const consumer = await this.js.consumers.get(this.o.streamName, {
        filterSubjects: `${this.o.inPrefix}>`,
        deliver_policy: DeliverPolicy.New,
      });
      const messages = await consumer.consume({ max_messages: 1000 });
      if (!this.running) {
        messages.stop();
        return;
      }
      this.messages = messages;
      this.loop = this.run(messages);
    } catch (e) {
      this.running = false;
      throw e;
    }
    this.sweepTimer = setInterval(() => this.sweep(), Math.max(50, Math.floor(this.o.snapshotIdleMs / 2)));
    this.sweepTimer.unref();
  }

  /** Writes what is dirty (bounded by `timeoutMs`) and stops reading. */
  async stop(timeoutMs = 2_000): Promise<void> {
    if (!this.running) return;
    this.running = false;
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.messages?.stop();
    await Promise.race([this.loop?.catch(() => {}), new Promise((r) => setTimeout(r, timeoutMs).unref())]);
    const writes = [...this.topics.entries()].filter(([, k]) => !k.loading && k.seq > k.savedSeq).map(([t, k]) => this.write(t, k));
    await Promise.race([Promise.allSettled(writes), new Promise((r) => setTimeout(r, timeoutMs).unref())]);
    this.topics.clear();
  }

  /** The kept state of a topic, if this keeper has it loaded: consistent at `seq`. */
  peek(topic: string): { seq: number; state: unknown } | undefined {
    const k = this.topics.get(topic);
    return k && !k.loading ? { seq: k.seq, state: k.state } : undefined;
  }

  private async run(messages: ConsumerMessages): Promise<void> {
    try {
      for await (const m of messages) {
        if (!this.running) break;
        const topic = m.subject.slice(this.o.inPrefix.length);
        const env = decodeEnvelope(m.data, Math.floor(m.info.timestampNanos / 1e6));
        this.receive(topic, { seq: m.seq, kind: env.kind, data: env.data, ts: env.ts });
      }
    } catch (e) {
      if (this.running) this.log.warn('nats bus: state keeper stopped reading', { error: (e as Error).message });
    }
    // However the loop ended, this keeper no longer reads: `active` tells the engine to replace it.
    this.reading = false;
  }

  private receive(topic: string, m: StoredMessage): void {
    let k = this.topics.get(topic);
    if (k) {
      // Re-insert: Map order is the LRU order.
      this.topics.delete(topic);
      this.topics.set(topic, k);
      if (k.loading) k.queue.push(m);
      else this.apply(topic, k, m);
      return;
    }
    k = { seq: 0, state: undefined, revision: 0, savedSeq: 0, dirty: 0, lastAt: Date.now(), loading: true, queue: [m], writing: undefined, again: false };
    this.topics.set(topic, k);
    void this.catchUp(topic, k, m.seq);
    this.evict();
  }

  /** Loads the topic's snapshot and the stream tail up to (not including) `before`. */
  private async catchUp(topic: string, k: Kept, before: number): Promise<void> {
    this.stats.catchUps++;
    for (let attempt = 0; this.running; attempt++) {
      try {
        const snap = await this.store.load(topic);
        const rec = snap.record?.epoch === this.epoch() ? snap.record : undefined;
        const base = rec?.seq ?? 0;
        const read = base + 1 < before ? await this.reader.read(topic, Math.max(1, base), { until: before - 1, limit: this.o.historySize + 1 }) : [];
        const chain = rebuildChain(topic, base, read);
        if (chain.unknownFirst && base > 0 && !chain.messages.some((x) => x.kind === 'set')) {
          this.stats.inexact++;
          this.log.warn('nats bus: topic state may be incomplete (retention dropped messages no snapshot covered)', { topic, snapshotSeq: base });
        }
        k.revision = snap.revision;
        k.seq = base;
        k.savedSeq = base;
        k.state = rec?.state;
        for (const x of chain.messages) this.applyOne(k, x);
        k.loading = false;
        const queued = k.queue;
        k.queue = [];
        for (const x of queued) this.apply(topic, k, x);
        return;
      } catch (e) {
        this.log.warn('nats bus: state keeper catch-up failed, retrying', { topic, error: (e as Error).message });
        await new Promise((r) => setTimeout(r, Math.min(2000, 100 * 2 ** attempt)).unref());
      }
    }
  }

  private applyOne(k: Kept, m: StoredMessage): boolean {
    if (m.seq <= k.seq) return false;
    k.state = applyMessage(k.state, m.kind, m.data);
    k.seq = m.seq;
    k.dirty++;
    k.lastAt = Date.now();
    this.stats.applied++;
    return true;
  }

  private apply(topic: string, k: Kept, m: StoredMessage): void {
    if (this.applyOne(k, m) && k.dirty >= this.o.snapshotEvery) void this.write(topic, k);
  }

  /** Writes idle dirty topics; forgets the least recently active ones past `maxTopics`. */
  private sweep(): void {
    const now = Date.now();
    for (const [topic, k] of this.topics) {
      if (!k.loading && k.seq > k.savedSeq && now - k.lastAt >= this.o.snapshotIdleMs) void this.write(topic, k);
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
      k.dirty = 0;
      try {
        const r = await this.store.save(topic, { seq, epoch, state, ts: Date.now() }, k.revision);
        if (r.ok) {
          k.revision = r.revision;
          k.savedSeq = seq;
          this.stats.writes++;
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
        k.dirty = Math.max(k.dirty, 1); // the sweep retries once the topic is idle
        return;
      }
      if (!k.again) return;
    }
  }
}
