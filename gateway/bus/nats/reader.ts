/**
 * Reads one topic's messages back from the stream, always from the stream leader (consistent
 * with what was acknowledged). Small reads (the usual gap) are point reads by subject
 * (`next_by_subj`, nats-server >= 2.9); longer ones continue with an ephemeral, memory-backed,
 * single-subject consumer that hands over the rest in a few batches.
 * Stored messages do not carry the per-subject previous sequence (only RePublish copies do), so
 * callers rebuild `prev` from the order of what they read.
 */
import { AckPolicy, DeliverPolicy, nanos, nuid, type JetStreamClient, type JetStreamManager } from 'nats';
import type { MessageKind } from '../../../protocol/index.ts';
import { decodeEnvelope } from './codec.ts';

export interface StoredMessage {
  readonly seq: number;
  readonly kind: MessageKind;
  readonly data: unknown;
  readonly ts: number;
}

export interface ReadOptions {
  /** Highest sequence to return (inclusive). */
  readonly until?: number;
  /** Most messages to return. */
  readonly limit: number;
}

/** Point reads before switching to a consumer: most live gaps are a message or two. */
const POINT_READS = 4;
const BATCH = 1000;

export function isNotFound(e: unknown): boolean {
  const err = e as { code?: unknown; api_error?: { code?: number; err_code?: number } };
  return err?.api_error?.code === 404 || err?.code === '404';
}

export class StreamReader {
  constructor(
    private readonly jsm: JetStreamManager,
    private readonly js: JetStreamClient,
    private readonly stream: string,
    private readonly inPrefix: string,
  ) {}

  subject(topic: string): string {
    return this.inPrefix + topic;
  }

  /** The topic's newest retained sequence, 0 when it has none. */
  async last(topic: string): Promise<number> {
    try {
      const m = await this.jsm.streams.getMessage(this.stream, { last_by_subj: this.subject(topic) });
      return m.seq;
    } catch (e) {
      if (isNotFound(e)) return 0;
      throw e;
    }
  }

  /** The topic's retained messages with seq >= from (and <= until), oldest first, at most `limit`. */
  async read(topic: string, from: number, opts: ReadOptions): Promise<StoredMessage[]> {
    const out: StoredMessage[] = [];
    const subject = this.subject(topic);
    let next = Math.max(1, from);
    const done = () => out.length >= opts.limit || (opts.until !== undefined && next > opts.until);
    while (!done() && out.length < POINT_READS) {
      const m = await this.pointRead(subject, next);
      if (!m || (opts.until !== undefined && m.seq > opts.until)) return out;
      out.push(m);
      next = m.seq + 1;
    }
    if (!done()) await this.bulkRead(subject, next, opts, out);
    return out;
  }

  private async pointRead(subject: string, seq: number): Promise<StoredMessage | undefined> {
    try {
      // `next_by_subj` is accepted by STREAM.MSG.GET since 2.9; the client's type only lists the direct API.
      const query = { seq, next_by_subj: subject } as unknown as { seq: number };
      const sm = await this.jsm.streams.getMessage(this.stream, query);
      const env = decodeEnvelope(sm.data, sm.time.getTime());
      return { seq: sm.seq, kind: env.kind, data: env.data, ts: env.ts };
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  }

  private async bulkRead(subject: string, from: number, opts: ReadOptions, out: StoredMessage[]): Promise<void> {
    const name = `symr_${nuid.next()}`;
    const info = await this.jsm.consumers.add(this.stream, {
      name,
      filter_subject: subject,
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: from,
      ack_policy: AckPolicy.None,
      mem_storage: true,
      num_replicas: 1,
      // Cleaned up below; this only matters if this process dies mid-read.
      inactive_threshold: nanos(30_000),
    });
    try {
      let pending = info.num_pending;
      const consumer = this.js.consumers.getPullConsumerFor(info);
      while (pending > 0 && out.length < opts.limit) {
        const batch = Math.min(pending, opts.limit - out.length, BATCH);
        const iter = await consumer.fetch({ max_messages: batch, expires: 5_000 });
        let got = 0;
        let stop = false;
        for await (const m of iter) {
          got++;
          pending = m.info.pending;
          if (opts.until !== undefined && m.seq > opts.until) {
            stop = true;
            break;
          }
          const env = decodeEnvelope(m.data, Math.floor(m.info.timestampNanos / 1e6));
          out.push({ seq: m.seq, kind: env.kind, data: env.data, ts: env.ts });
          if (out.length >= opts.limit || pending === 0) {
            stop = true;
            break;
          }
        }
        iter.stop();
        // Nothing came (retention removed what was pending): what is left is gone.
        if (stop || got === 0) break;
      }
    } finally {
      this.jsm.consumers.delete(this.stream, name).catch(() => {});
    }
  }
}
