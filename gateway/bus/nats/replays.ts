/**
 * recover() from the stream: the messages after a position, if all are provably retained. When a
 * gateway goes away, its clients resume elsewhere together, mostly on the same topics from nearby
 * positions; each asking the stream on its own cost hundreds of point reads per client (a resume
 * storm of 150 clients on 3 topics: about 45,000 requests, a second of the stream leader's time).
 * So the recovers of one topic that arrive in the same turn share one read, from the lowest of
 * their positions, and each takes its part.
 *
 * Why only the same turn: a read answers "everything up to the topic's last message when the read
 * started"; what came after reaches a subscriber live, but only one that had joined the live
 * topic before it was published. Every caller joins before it asks, so a read that starts after
 * all of its callers asked (the next turn) is complete for each; joining a read already under way
 * would not be.
 */
import type { BusMessage } from '../bus.ts';
import { rebuildChain } from './chain.ts';
import type { StreamReader } from './reader.ts';

export interface Replay {
  /** The topic's last message: the replay ends here. */
  readonly seq: number;
  /** Every message after the position, with prev, oldest first. */
  readonly replay: readonly BusMessage[];
}

interface Batch {
  from: number;
  /** Most messages after `from` worth reading (recovered needs at most the window's size after the position). */
  limit: number;
  readonly result: Promise<Replay | undefined>;
}

export class ReplayReader {
  private readonly batches = new Map<string, Batch>();

  constructor(private readonly reader: StreamReader) {}

  /**
   * Every message after `since` up to the topic's last, or undefined when that is not provable
   * (the message at `since` is no longer retained, or more than `limit` messages follow it).
   */
  async after(topic: string, since: number, limit: number): Promise<Replay | undefined> {
    if (since <= 0) return undefined; // what the topic held before its oldest retained message is unknowable
    let batch = this.batches.get(topic);
    if (batch) {
      batch.from = Math.min(batch.from, since);
      batch.limit = Math.max(batch.limit, limit);
    } else {
      let start!: () => void;
      const begun = new Promise<void>((r) => (start = r));
      const b: Batch = { from: since, limit, result: begun.then(() => this.read(topic, b.from, b.limit)) };
      batch = b;
      this.batches.set(topic, b);
      // Next turn: every recover of this topic asked in this one has joined its live topic by then.
      setImmediate(() => {
        this.batches.delete(topic);
        start();
      });
    }
    const shared = await batch.result;
    if (!shared) return since === batch.from ? undefined : this.read(topic, since, limit);
    if (since === batch.from) return shared;
    const at = shared.replay.findIndex((m) => m.seq === since);
    // A position the shared read did not see as a message of the topic: ask for it alone.
    if (at < 0) return this.read(topic, since, limit);
    return { seq: shared.seq, replay: shared.replay.slice(at + 1) };
  }

  private async read(topic: string, since: number, limit: number): Promise<Replay | undefined> {
    const last = await this.reader.last(topic);
    if (last === since) return { seq: last, replay: [] };
    if (last < since) return undefined;
    // `since` itself (to prove the chain) plus at most `limit` after it.
    const read = await this.reader.read(topic, since, { until: last, limit: limit + 1 });
    const chain = rebuildChain(topic, since, read);
    if (!chain.proven || chain.messages.at(-1)?.seq !== last) return undefined;
    return { seq: last, replay: chain.messages };
  }
}
