/**
 * A JetStream publish that survives timeouts, leader elections and reconnects: every attempt
 * carries the same message id (`Nats-Msg-Id`), so the stream's duplicate window stores the
 * message once however many attempts reach it. Attempts are short (during a stream leader
 * election a request gets no answer at all, not even a 503) and retried with full jitter until a
 * deadline. What a failure means to the caller (its error types, what it repairs first) stays
 * with the caller: `RetryRules`.
 *
 * The epoch check: a stream's sequences only grow, so an ack at or below one seen before the
 * publish began means the stream was recreated (sequences restart), and the caller must learn
 * the new epoch before answering (`AckFloor`, `RetryRules.restarted`).
 */
import { nuid, type MsgHdrs, type PubAck } from 'nats';
import { backoffDelay, pause } from './backoff.ts';
import type { JsPublisher } from './js-writer.ts';

/** One attempt waits this long for its ack; a slow ack followed by a retry still stores the message once. */
const ATTEMPT_TIMEOUT_MS = 2_000;

/** The timeout of one request of an attempt: ATTEMPT_TIMEOUT_MS, shortened to end by the deadline (at least 100 ms). */
export function attemptTimeout(deadline: number): number {
  return Math.max(100, Math.min(ATTEMPT_TIMEOUT_MS, deadline - Date.now()));
}

/** Message ids unique to one publisher: a random prefix (also its name elsewhere) and a counter. */
export class MessageIds {
  private count = 0;
  constructor(readonly prefix: string = nuid.next()) {}

  next(): string {
    return `${this.prefix}-${++this.count}`;
  }
}

/** The highest sequence a publisher has seen acknowledged (see the epoch check above). */
export class AckFloor {
  private highest = 0;

  get value(): number {
    return this.highest;
  }

  /**
   * Whether `ack` proves the stream restarted since the floor was `before`. A duplicate's ack
   * names the first publish's sequence, which proves nothing.
   */
  wentBack(ack: PubAck, before: number): boolean {
    return !ack.duplicate && ack.seq <= before;
  }

  raise(ack: PubAck): void {
    if (ack.seq > this.highest) this.highest = ack.seq;
  }

  /** A new stream (new epoch): its sequences start again. */
  reset(): void {
    this.highest = 0;
  }
}

export interface RetriedPublish {
  readonly subject: string;
  readonly payload: Uint8Array;
  readonly msgID: string;
  readonly headers?: MsgHdrs | undefined;
  /** The stream that must store `subject` (another one answering means a wrong prefix or config). */
  readonly stream: string;
  /** No retry starts after this (ms since the Unix epoch). */
  readonly deadline: number;
  readonly floor: AckFloor;
  /** Retry pauses hold the process open (a library whose caller awaits the result). */
  readonly keepAlive?: boolean;
  /** Conditional publish: stored only if the subject's last sequence is still this (0: none). */
  readonly expect?: number;
}

/** What the caller decides. A rule that throws ends the publish with its error, except `check`. */
export interface RetryRules {
  /** Before each attempt: false skips it (a pause, then ask again), e.g. while the connection is down. */
  canSend?(): boolean;
  /**
   * Registers `now` to be called when the attempt in flight must be sent again at once (its
   * request may have died with the connection); returns the unregistering function, called when
   * the attempt ends. A callback per attempt, not a promise shared by all of them: every attempt
   * racing one long-lived promise would leave a reaction on it per publish until the reconnect.
   */
  resend?(now: () => void): () => void;
  /** The attempt in flight was dropped for `resend`. */
  resent?(): void;
  /** Checks an ack before it counts (e.g. a duplicate's digest); its failure is the attempt's. */
  check?(ack: PubAck): Promise<void>;
  /** An attempt failed: returning retries it after a pause. */
  failed(error: unknown): void | Promise<void>;
  /** The error for an ack from another stream. */
  wrongStream(stream: string): Error;
  /** The ack proved the stream recreated: learn the new epoch before the publish answers. */
  restarted?(): Promise<void> | void;
}

const RESEND: unique symbol = Symbol('resend');

/**
 * Resolves in this event-loop turn's check phase (setImmediate). nats.js writes what was queued
 * since the last microtask checkpoint in one socket write, and a publish made from a socket
 * callback is alone in its checkpoint: waiting for the turn lets every publish started in the
 * same turn (a busy WebSocket's frames, a batch) leave in one write instead of one write each.
 */
let turn: Promise<void> | undefined;
function nextTurn(): Promise<void> {
  turn ??= new Promise((resolve) =>
    setImmediate(() => {
      turn = undefined;
      resolve();
    }),
  );
  return turn;
}

/** Publishes `p` under `rules` through `js` (a JsWriter, or nats.js's JetStream client); resolves with the ack that counts. */
export async function publishRetried(js: JsPublisher, p: RetriedPublish, rules: RetryRules): Promise<PubAck> {
  const before = p.floor.value;
  await nextTurn();
  for (let attempt = 0; ; attempt++) {
    if (rules.canSend?.() === false) {
      await retryPause(attempt, p);
      continue;
    }
    let ack: PubAck | typeof RESEND;
    try {
      ack = await attemptOnce(js, p, rules);
    } catch (e) {
      await rules.failed(e);
      await retryPause(attempt, p);
      continue;
    }
    if (ack === RESEND) {
      rules.resent?.();
      continue;
    }
    if (ack.stream !== p.stream) throw rules.wrongStream(ack.stream);
    if (p.floor.wentBack(ack, before)) await rules.restarted?.();
    p.floor.raise(ack);
    return ack;
  }
}

/** One attempt: the publish, raced against `resend`, and the check of its ack. */
async function attemptOnce(js: JsPublisher, p: RetriedPublish, rules: RetryRules): Promise<PubAck | typeof RESEND> {
  const sent = js.publish(p.subject, p.payload, {
    msgID: p.msgID,
    timeout: attemptTimeout(p.deadline),
    ...(p.headers ? { headers: p.headers } : {}),
    // Conditional publish: JetStream's per-subject expected-sequence check.
    ...(p.expect === undefined ? {} : { expect: { lastSubjectSequence: p.expect } }),
  });
  let ack: PubAck | typeof RESEND;
  if (rules.resend) {
    sent.catch(() => {}); // it may still fail after being dropped
    let stop = () => {};
    const dropped = new Promise<typeof RESEND>((resolve) => (stop = rules.resend!(() => resolve(RESEND))));
    try {
      ack = await Promise.race([sent, dropped]);
    } finally {
      stop();
    }
  } else ack = await sent;
  if (ack !== RESEND && ack.stream === p.stream) await rules.check?.(ack);
  return ack;
}

/** 10 ms - 1 s with full jitter, never past the deadline. */
function retryPause(attempt: number, p: RetriedPublish): Promise<void> {
  return pause(Math.min(Math.max(10, backoffDelay(attempt, 50, 1_000)), Math.max(0, p.deadline - Date.now())), p.keepAlive);
}
