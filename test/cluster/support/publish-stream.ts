import type { MessageKind } from '../../../protocol/index.ts';
import type { Changes } from '../../support/changes.ts';
import type { HttpPublisher, PublishRecord } from './http-publisher.ts';

export interface StreamOptions {
  readonly topics: readonly string[];
  /** Which gateway (index into the publisher's list) publishes topic `i`'s messages. */
  readonly via: (topicIndex: number) => number;
  /** Hard bound on messages per topic. */
  readonly maxPerTopic: number;
  readonly changes: Changes;
  /** Kind and data of message `n` of a topic; default `patch {n}`. */
  readonly message?: (topic: string, n: number) => { kind: MessageKind; data: unknown };
  /** Streams are added here, so a test's cleanup can stop whatever a failed test left running. */
  readonly registry?: PublishStream[];
  /** Publish with an Idempotency-Key of this prefix + topic + n (retries stored once). */
  readonly idempotencyPrefix?: string;
  /** At most this many publishes per second per topic (default: as fast as acks come back). */
  readonly ratePerTopic?: number;
}

/**
 * Publishes numbered messages (`data.n` = 1, 2, ...) continuously to several topics, one in
 * flight per topic (so a topic's order is its numbering), until stopped or `maxPerTopic`.
 */
export class PublishStream {
  readonly records = new Map<string, PublishRecord[]>();
  private stopped = false;
  private readonly done: Promise<void>;

  constructor(
    private readonly publisher: HttpPublisher,
    private readonly o: StreamOptions,
  ) {
    o.registry?.push(this);
    for (const t of o.topics) this.records.set(t, []);
    this.done = Promise.all(o.topics.map((t, i) => this.run(t, i))).then(() => {});
    this.done.catch(() => {}).finally(() => o.changes.bump());
  }

  private async run(topic: string, index: number): Promise<void> {
    const list = this.records.get(topic)!;
    const started = Date.now();
    for (let n = 1; n <= this.o.maxPerTopic && !this.stopped; n++) {
      const { kind, data } = this.o.message?.(topic, n) ?? { kind: 'patch' as const, data: { n } };
      const key = this.o.idempotencyPrefix === undefined ? undefined : `${this.o.idempotencyPrefix}.${topic}.${n}`;
      // Pacing, not synchronisation: message n is not sent before n / rate seconds into the run.
      const due = this.o.ratePerTopic ? started + (n * 1000) / this.o.ratePerTopic - Date.now() : 0;
      if (due > 0) await new Promise((r) => setTimeout(r, due));
      const r = await this.publisher.publish(topic, kind, data, this.o.via(index), 60_000, () => this.stopped, key);
      list.push({ ...r, topic, n });
      this.o.changes.bump();
    }
  }

  count(topic: string): number {
    return this.records.get(topic)!.length;
  }

  minCount(): number {
    return Math.min(...this.o.topics.map((t) => this.count(t)));
  }

  lastSeq(topic: string): number {
    return this.records.get(topic)!.at(-1)?.seq ?? 0;
  }

  /** `n`s whose publish was ambiguous (a retry may have stored them twice). */
  ambiguous(topic: string): Set<number> {
    return new Set(
      this.records
        .get(topic)!
        .filter((r) => r.ambiguous)
        .map((r) => r.n),
    );
  }

  /** Stops after the publishes in flight (a publish being retried gives up); resolves when every loop has ended (rejects if one failed). */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.done;
  }

  /** Resolves when every topic has at least `count` acknowledged publishes (fails if a loop failed). */
  async reach(count: number, timeoutMs: number): Promise<void> {
    let failed: unknown;
    this.done.catch((e: unknown) => (failed = e));
    await this.o.changes.until(
      () => {
        if (failed) throw failed;
        return this.minCount() >= count;
      },
      timeoutMs,
      () => `${count} publishes per topic (have ${this.o.topics.map((t) => `${t}: ${this.count(t)}`).join(', ')})`,
    );
  }
}
