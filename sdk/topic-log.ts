/**
 * The client's copy of one topic: its position and state document, and the rules that keep them
 * exact across subscribe, resume and gaps. No I/O: the Subscription feeds it frames and acts on
 * what it answers, so every ordering case is unit-tested by feeding frames by hand.
 *
 * The server joins the socket to the live topic before it reads the snapshot or replay, so `msg`
 * frames can arrive before the `subscribed` reply. While (re)subscribing they are buffered; the
 * reply's replay (or snapshot) is applied first, then the buffer, dropping what is already in.
 */
import { applyMessage } from '../protocol/merge-patch.ts';
import type { MessageKind, Position, Publication } from '../protocol/frames.ts';

/** What the `subscribed` reply carries that the log needs. */
export interface SubscribedInfo {
  epoch: string;
  seq: number;
  state?: unknown;
  wasRecovering: boolean;
  recovered: boolean;
  replay?: readonly Publication[];
}

export interface TopicLogListener {
  /** A message was applied in order; `state` is the document after it. */
  message(pub: Publication, state: unknown): void;
  /** The document was replaced by a snapshot at `seq` (fresh subscribe or failed recovery). */
  snapshot(state: unknown, seq: number): void;
}

export type ReceiveResult = 'applied' | 'buffered' | 'duplicate' | 'gap';

export interface SubscribedResult {
  /** The reply resumed the chain (replay applied) rather than starting from a snapshot. */
  recovered: boolean;
  /** The chain broke (replay or buffer does not continue it): resubscribe from `position`. */
  gap: boolean;
}

export class TopicLog {
  epoch: string | undefined;
  seq = 0;
  state: unknown;
  private buffering = false;
  private buffer: Publication[] = [];
  private overflowed = false;

  constructor(
    private readonly listener: TopicLogListener,
    private readonly maxBuffer = 10_000,
    start?: { position: Position; state?: unknown },
  ) {
    if (start) {
      this.epoch = start.position.epoch;
      this.seq = start.position.seq;
      this.state = start.state;
    }
  }

  /** The last applied position, once the log has one. */
  get position(): Position | undefined {
    return this.epoch === undefined ? undefined : { seq: this.seq, epoch: this.epoch };
  }

  get isBuffering(): boolean {
    return this.buffering;
  }

  /** A (re)subscribe is on its way: hold live messages until its reply. */
  startBuffering(): void {
    this.buffering = true;
    this.buffer = [];
    this.overflowed = false;
  }

  /** A live `msg`. On 'gap' the log is already buffering again: resubscribe from `position`. */
  receive(pub: Publication): ReceiveResult {
    if (this.buffering) {
      if (this.buffer.length >= this.maxBuffer) this.overflowed = true;
      else this.buffer.push(pub);
      return 'buffered';
    }
    if (pub.seq <= this.seq) return 'duplicate';
    if (pub.prev !== this.seq) {
      this.startBuffering();
      return 'gap';
    }
    this.apply(pub);
    return 'applied';
  }

  /** The `subscribed` reply: replay or snapshot first, then the buffered messages. */
  subscribed(info: SubscribedInfo): SubscribedResult {
    this.buffering = false;
    const buffered = this.buffer;
    const overflowed = this.overflowed;
    this.buffer = [];
    this.overflowed = false;
    const resumes = info.wasRecovering && info.recovered && (this.epoch === undefined || this.epoch === info.epoch);
    if (resumes) {
      for (const pub of info.replay ?? []) {
        if (pub.seq <= this.seq) continue;
        if (pub.prev !== this.seq) return this.broken();
        this.apply(pub);
      }
      this.epoch = info.epoch;
    } else {
      this.epoch = info.epoch;
      this.seq = info.seq;
      this.state = info.state;
      this.listener.snapshot(this.state, this.seq);
    }
    for (const pub of buffered) {
      if (pub.seq <= this.seq) continue;
      if (pub.prev !== this.seq) return this.broken(resumes);
      this.apply(pub);
    }
    if (overflowed) return this.broken(resumes);
    return { recovered: resumes, gap: false };
  }

  /** The connection dropped: nothing is buffered across sockets (the next subscribe replays). */
  reset(): void {
    this.buffering = false;
    this.buffer = [];
    this.overflowed = false;
  }

  private broken(recovered = true): SubscribedResult {
    this.startBuffering();
    return { recovered, gap: true };
  }

  private apply(pub: Publication): void {
    this.state = applyMessage(this.state, pub.kind as MessageKind, pub.data);
    this.seq = pub.seq;
    this.listener.message(pub, this.state);
  }
}
