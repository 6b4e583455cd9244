/**
 * Reads one topic's messages back from the stream with STREAM.MSG.GET only: point reads by
 * subject (`next_by_subj`, nats-server >= 2.9), always answered by the stream leader (consistent
 * with what was acknowledged).
 *
 * Why no consumer: nats-server 2.9 places an ephemeral R1 consumer on a random peer of the
 * stream, dead peers included, and a consumer placed on a dead peer is never created: its create
 * request goes unanswered. With one of three nodes down, a third of the consumer reads stalled for
 * the client's whole timeout, and retries drew again (resumes failed for up to a minute on a
 * cluster that still had quorum). A point read needs only the stream leader, which exists
 * whenever the stream can be written at all.
 *
 * Long reads run in lanes: the sequence range is split into up to MAX_LANES parts read at once,
 * each walked with `next_by_subj` up to the next part's start, so N messages cost about N + lanes
 * requests and N / lanes round trips.
 *
 * Every request is retried through elections and reconnects until the read's deadline
 * (requests.ts `readUntil`). Requests go through a JsReader (nats-kit/js-reader.ts): a
 * resume reads past the end of a topic, and nats.js threw an error with a stack for each 404.
 * Stored messages do not carry the per-subject previous sequence (only RePublish copies do), so
 * callers rebuild `prev` from the order of what they read.
 */
import type { MessageKind } from '../../../protocol/index.ts';
import type { MsgReads } from '../../../nats-kit/js-reader.ts';
import { decodeEnvelope } from './codec.ts';
import { readUntil } from './requests.ts';

export interface StoredMessage {
  readonly seq: number;
  readonly kind: MessageKind;
  readonly data: unknown;
  readonly ts: number;
}

export interface ReadOptions {
  /** Highest sequence to return (inclusive); default the topic's newest. */
  readonly until?: number;
  /** Most messages to return. */
  readonly limit: number;
}

/** Sequential point reads before splitting into lanes: most live gaps are a message or two. */
const POINT_READS = 4;
const MAX_LANES = 16;
/** Messages a lane is expected to carry at least (fewer wanted: fewer lanes, less overshoot). */
const PER_LANE = 32;

export function isNotFound(e: unknown): boolean {
  const err = e as { code?: unknown; api_error?: { code?: number; err_code?: number } };
  return err?.api_error?.code === 404 || err?.code === '404';
}

export class StreamReader {
  /**
   * `timeoutMs`: one read (all its requests) gives up after this; requests unanswered during a
   * leader election are asked again until then.
   */
  constructor(
    private readonly reads: MsgReads,
    private readonly stream: string,
    private readonly inPrefix: string,
    private readonly timeoutMs: number,
    private readonly closed: () => boolean = () => false,
  ) {}

  subject(topic: string): string {
    return this.inPrefix + topic;
  }

  /** The topic's newest retained sequence, 0 when it has none. */
  async last(topic: string, deadline = Date.now() + this.timeoutMs): Promise<number> {
    return (await readUntil(this.reads, this.stream, { last_by_subj: this.subject(topic) }, deadline, this.closed))?.seq ?? 0;
  }

  /** The topic's retained messages with seq >= from (and <= until), oldest first, at most `limit`. */
  async read(topic: string, from: number, opts: ReadOptions): Promise<StoredMessage[]> {
    const deadline = Date.now() + this.timeoutMs;
    const subject = this.subject(topic);
    return this.anchored(subject, await this.readRange(topic, from, opts, deadline), deadline);
  }

  /**
   * A read takes many requests, and retention (which removes a topic's oldest messages first) may
   * pass messages in its middle before a lane gets to them: `next_by_subj` then answers a later
   * one, and the read would hold a silent hole. If its first message is still retained once the
   * read is done, nothing after it can have been removed meanwhile. If not, every hole lies below
   * the topic's oldest message now, so what is below it is dropped: the read no longer starts at
   * its position, which callers report as a gap (not recovered, a fresh snapshot), never a silent one.
   */
  private async anchored(subject: string, out: StoredMessage[], deadline: number): Promise<StoredMessage[]> {
    if (out.length < 2) return out;
    const first = await this.pointRead(subject, out[0]!.seq, deadline);
    if (first?.seq === out[0]!.seq) return out;
    return first ? out.filter((m) => m.seq >= first.seq) : [];
  }

  private async readRange(topic: string, from: number, opts: ReadOptions, deadline: number): Promise<StoredMessage[]> {
    const subject = this.subject(topic);
    const until = opts.until ?? (await this.last(topic, deadline));
    const out: StoredMessage[] = [];
    let next = Math.max(1, from);
    while (out.length < opts.limit && next <= until && out.length < POINT_READS) {
      const m = await this.pointRead(subject, next, deadline);
      if (!m || m.seq > until) return out;
      out.push(m);
      next = m.seq + 1;
    }
    if (out.length >= opts.limit || next > until) return out;
    const rest = await this.readLanes(subject, next, until, opts.limit - out.length, deadline);
    for (const m of rest) out.push(m);
    return out;
  }

  /**
   * [from, until] split into lanes read at once. A lane stops at the next lane's start, at
   * `until`, or once the lanes before it hold `limit` messages (what it would add comes after them).
   */
  private async readLanes(subject: string, from: number, until: number, limit: number, deadline: number): Promise<StoredMessage[]> {
    const span = until - from + 1;
    const lanes = Math.max(1, Math.min(MAX_LANES, span, Math.ceil(limit / PER_LANE)));
    const starts = Array.from({ length: lanes + 1 }, (_, i) => from + Math.floor((span * i) / lanes));
    const found: StoredMessage[][] = starts.slice(0, lanes).map(() => []);
    const before = (lane: number) => {
      let n = 0;
      for (let i = 0; i < lane; i++) n += found[i]!.length;
      return n;
    };
    await Promise.all(
      found.map(async (mine, lane) => {
        const end = starts[lane + 1]!; // exclusive
        for (let next = starts[lane]!; next < end && mine.length < limit && before(lane) < limit; ) {
          const m = await this.pointRead(subject, next, deadline);
          if (!m || m.seq >= end) return;
          mine.push(m);
          next = m.seq + 1;
        }
      }),
    );
    return found.flat().slice(0, limit);
  }

  /** The topic's first retained message with seq >= `seq`, if any. */
  private async pointRead(subject: string, seq: number, deadline: number): Promise<StoredMessage | undefined> {
    // `next_by_subj` is accepted by STREAM.MSG.GET since nats-server 2.9.
    const sm = await readUntil(this.reads, this.stream, { seq, next_by_subj: subject }, deadline, this.closed);
    if (!sm) return undefined;
    const env = decodeEnvelope(sm.data, Date.parse(sm.time));
    return { seq: sm.seq, kind: env.kind, data: env.data, ts: env.ts };
  }
}
