/**
 * One topic as a protocol client following docs/protocol.md sections 8-9 sees it: buffer during
 * `sub`, merge `replay`/`state` with buffered and live `msg` frames by seq, detect gaps by `prev`.
 * Records everything irregular, for the tests' checks.
 */
import { applyMessage } from '../../../protocol/merge-patch.ts';
import type { MessageKind, ServerFrame } from '../../../protocol/index.ts';

type Msg = Extract<ServerFrame, { t: 'msg' }>;
type Subscribed = Extract<ServerFrame, { t: 'subscribed' }>;
type ErrorFrame = Extract<ServerFrame, { t: 'error' }>;

export interface Applied {
  readonly seq: number;
  readonly prev: number;
  readonly kind: MessageKind;
  readonly data: unknown;
  /** `data.n` when the data is a numbered message. */
  readonly n: number | undefined;
  readonly via: 'live' | 'replay';
}

export interface Gap {
  readonly last: number;
  readonly seq: number;
  readonly prev: number;
}

/** One topic as the client sees it: position, state, what was applied, and anything irregular. */
export class TopicView {
  epoch = '';
  /** The seq of the last message applied (or of the last `subscribed`). */
  last = 0;
  /** Whether `last`/`epoch` are a real position (a `subscribed` was received). */
  positioned = false;
  state: unknown = undefined;
  phase: 'idle' | 'subscribing' | 'live' = 'idle';
  readonly applied: Applied[] = [];
  readonly subscribes: Subscribed[] = [];
  /** Errors answering a `sub` other than 5001. */
  readonly errors: ErrorFrame[] = [];
  /** `sub`s answered 5001 (Unavailable, retried). */
  readonly unavailable: ErrorFrame[] = [];
  lastError: ErrorFrame | undefined;
  /** Gaps seen by `prev !== last` (section 8); none may happen with a correct gateway. */
  readonly gaps: Gap[] = [];
  /** Replays whose chain is broken (first prev !== since.seq, or prev !== previous seq). */
  readonly badReplays: string[] = [];
  /** Frames dropped as duplicates by seq (normal around a `sub`: the overlap of live and snapshot). */
  duplicates = 0;
  /** `subscribed` with wasRecovering && !recovered: the client was told messages were lost. */
  lossReports = 0;
  private buffer: Msg[] = [];

  constructor(readonly topic: string) {}

  /** Position to resume from, if any. */
  since(): { seq: number; epoch: string } | undefined {
    return this.positioned ? { seq: this.last, epoch: this.epoch } : undefined;
  }

  startSubscribe(): void {
    this.phase = 'subscribing';
    this.buffer = [];
  }

  /** The socket went away: whatever was buffered is dropped (it is replayed on resume). */
  disconnected(): void {
    this.phase = 'idle';
    this.buffer = [];
  }

  onMsg(m: Msg): void {
    if (this.phase === 'subscribing') return void this.buffer.push(m);
    if (this.phase === 'live') this.applyLive(m);
    // idle: a msg after we stopped caring (cannot happen on a closed socket); ignore.
  }

  onSubscribed(f: Subscribed): void {
    this.subscribes.push(f);
    if (!f.recovered) {
      this.state = f.state;
      if (f.wasRecovering) this.lossReports++;
    } else {
      let prev = this.last;
      for (const p of f.replay ?? []) {
        if (p.prev !== prev) this.badReplays.push(`replay of ${this.topic}: message ${p.seq} has prev ${p.prev}, expected ${prev}`);
        this.apply(p, 'replay');
        prev = p.seq;
      }
      if (prev !== f.seq) this.badReplays.push(`replay of ${this.topic} ends at ${prev}, subscribed.seq is ${f.seq}`);
    }
    this.epoch = f.epoch;
    this.last = f.seq;
    this.positioned = true;
    this.phase = 'live';
    const buffered = this.buffer;
    this.buffer = [];
    for (const m of buffered) this.applyLive(m);
  }

  onError(f: ErrorFrame): void {
    this.lastError = f;
    // 5001 (Unavailable) is a documented transient the client retries; anything else is a failure.
    if (f.code === 5001) this.unavailable.push(f);
    else this.errors.push(f);
    this.phase = 'idle';
    this.buffer = [];
  }

  private applyLive(m: Msg): void {
    if (m.seq <= this.last) return void this.duplicates++;
    if (m.prev !== this.last) this.gaps.push({ last: this.last, seq: m.seq, prev: m.prev });
    this.apply(m, 'live');
  }

  private apply(p: { seq: number; prev: number; kind: MessageKind; data: unknown }, via: Applied['via']): void {
    const n = typeof p.data === 'object' && p.data !== null && typeof (p.data as { n?: unknown }).n === 'number' ? (p.data as { n: number }).n : undefined;
    this.applied.push({ seq: p.seq, prev: p.prev, kind: p.kind, data: p.data, n, via });
    this.state = applyMessage(this.state, p.kind, p.data);
    this.last = p.seq;
  }
}
