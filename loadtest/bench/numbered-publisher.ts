/**
 * A backend publishing numbered messages (1, 2, 3... per topic) to several topics at a steady
 * rate, through NATS JetStream as a backend does: the bus envelope (protocol/envelope.ts) to
 * `<prefix>.in.<topic>`, each with a message id, asynchronously with a bound on unacknowledged
 * publishes. What a topic's subscribers are owed is its acknowledged count.
 *
 * For scale.ts and resume.ts, whose rates are modest (tens to hundreds of messages/s): it runs
 * on the parent's event loop, which holds no client sockets.
 */
import type { JetStreamClient, NatsConnection } from 'nats';
import { busInSubject, encodeEnvelope } from '../../protocol/envelope.ts';
import { sleep } from '../lib/proc.ts';

/** Unacknowledged publishes at most; past it a tick is skipped and counted as a stall. */
const MAX_IN_FLIGHT = 2000;
const TICK_MS = 10;

export interface PublisherStats {
  /** Sent per topic (numbered 1..sent). */
  readonly sent: number[];
  /** Acknowledged per topic: stored by JetStream, owed to every subscriber of the topic. */
  readonly acked: number[];
  readonly failed: number;
  readonly firstError: string;
  readonly stalls: number;
}

export class NumberedPublisher {
  readonly sent: number[];
  readonly acked: number[];
  private failed = 0;
  private firstError = '';
  private stalls = 0;
  private inFlight = 0;
  private running: Promise<void> | null = null;
  private stopping = false;
  private readonly js: JetStreamClient;
  private readonly idBase = `bench-${process.pid}-${Date.now().toString(36)}-`;

  constructor(
    nc: NatsConnection,
    private readonly prefix: string,
    private readonly topics: readonly string[],
    /** What message `n` of a topic carries as its `data`. */
    private readonly data: (n: number) => unknown = (n) => n,
  ) {
    this.js = nc.jetstream();
    this.sent = topics.map(() => 0);
    this.acked = topics.map(() => 0);
  }

  /** Starts publishing `ratePerTopic` messages/s to every topic, until stop() or `maxMs`. */
  start(ratePerTopic: number, maxMs: number): void {
    if (this.running) throw new Error('publisher already running');
    this.stopping = false;
    this.running = this.loop(ratePerTopic, maxMs);
  }

  /** Stops sending and resolves once every publish in flight is acknowledged or failed. */
  async stop(): Promise<void> {
    this.stopping = true;
    await this.running;
    this.running = null;
    for (let i = 0; this.inFlight > 0 && i < 3000; i++) await sleep(10);
  }

  stats(): PublisherStats {
    return { sent: [...this.sent], acked: [...this.acked], failed: this.failed, firstError: this.firstError, stalls: this.stalls };
  }

  private async loop(rate: number, maxMs: number): Promise<void> {
    const t0 = performance.now();
    const base = [...this.sent];
    const topics = this.topics.length;
    // A late tick catches up, but at most 200 ms worth at once.
    const maxBurst = Math.max(1, Math.ceil(rate * 0.2));
    while (!this.stopping) {
      const elapsed = performance.now() - t0;
      if (elapsed >= maxMs) break;
      if (this.inFlight >= MAX_IN_FLIGHT) this.stalls++;
      else {
        for (let t = 0; t < topics; t++) {
          // Topic t is offset by t/topics of a period: the topics' messages do not all leave at
          // once (a burst to every subscriber at the same instant would measure the burst).
          const due = base[t]! + Math.floor((rate * elapsed) / 1000 - t / topics) + 1;
          for (let k = Math.min(due - this.sent[t]!, maxBurst); k > 0; k--) this.publish(t);
        }
      }
      await sleep(TICK_MS);
    }
  }

  private publish(t: number): void {
    const n = ++this.sent[t]!;
    this.inFlight++;
    const payload = encodeEnvelope('event', this.data(n), Date.now());
    this.js.publish(busInSubject(this.prefix, this.topics[t]!), payload, { msgID: `${this.idBase}${t}-${n}` }).then(
      () => {
        this.inFlight--;
        this.acked[t]!++;
      },
      (e: Error) => {
        this.inFlight--;
        this.failed++;
        this.firstError ||= e.message;
      },
    );
  }
}
