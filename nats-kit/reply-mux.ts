/**
 * Requests whose answers come back under one wildcard subscription, with one timeout tick for all
 * of them: what JetStream writes and reads need of request/reply, without nats.js's per-request
 * machinery. nats.js's `request` builds a timer, a deferred promise, a mux entry and an async
 * wrapper per request, and creates an error with a stack trace on every answered one (its
 * `RequestOne.resolver` rejects the already-settled promise with a fresh "cancelled" error).
 * Profiled in a resume storm (loadtest/README.md "Resume storm"), that error alone took 6% of a
 * gateway's CPU, and the garbage a quarter more in collection.
 *
 * Each request carries `parse`, which turns the answer into the caller's result (or throws):
 * no promise chained per request.
 *
 * At most `maxInFlight` requests are sent and unanswered at a time; the rest wait here, and their
 * timeout starts when they are sent. nats-server answers one connection's requests one after the
 * other, so a burst (a resume storm: a registry read, a claim and an inbox read per client) sent
 * at once would wait there instead, past the first attempt's timeout of many of them (measured:
 * 1,200 of 5,000 session reads and 500-800 inbox reads at 500 ms), and each timed-out request is
 * asked again, adding to the queue it waited in.
 */
import { createInbox, type Msg, type MsgHdrs, type NatsConnection, type Subscription } from 'nats';
import { SlotQueue } from './slot-queue.ts';

/** How often pending requests are checked for their timeout: a timeout fires up to this late. */
const TICK_MS = 50;
/** Requests sent and unanswered at most, by default: a few milliseconds of nats-server's work. */
const MAX_IN_FLIGHT = 256;

/** The error in a JetStream API answer. */
export interface ApiErrorBody {
  code: number;
  err_code?: number;
  description?: string;
}

/** An error shaped like nats.js's: `code` as nats.js names it, `api_error` for JetStream's own. */
export class JsApiError extends Error {
  constructor(
    message: string,
    readonly code: string,
    readonly api_error?: ApiErrorBody,
  ) {
    super(message);
  }
}

/** A JetStream API answer's error as a JsApiError (nats.js lower-cases the descriptions; callers match on them). */
export function apiError(e: ApiErrorBody): JsApiError {
  return new JsApiError((e.description ?? '').toLowerCase() || 'unknown', String(e.code), e);
}

const decoder = new TextDecoder();

/** A JetStream API answer's JSON body; one that is not JSON is a JsApiError with `code` `invalid` ("no valid <what>"). */
export function jsonReply<R extends { error?: ApiErrorBody }>(m: Msg, what: string, invalid: string): R {
  try {
    return JSON.parse(decoder.decode(m.data)) as R;
  } catch {
    throw new JsApiError(`JetStream answered with no valid ${what}`, invalid);
  }
}

interface Pending {
  token: number;
  subject: string;
  /** What to send; dropped once sent. */
  data: Uint8Array | undefined;
  headers: MsgHdrs | undefined;
  timeout: number;
  parse(m: Msg): unknown;
  resolve(v: unknown): void;
  reject(e: Error): void;
  /** Date.now() after which it times out (set when sent). */
  deadline: number;
}

export class ReplyMux {
  private readonly prefix: string;
  private readonly sub: Subscription;
  private readonly pending = new Map<number, Pending>();
  /** Requests waiting for a slot, oldest first. */
  private readonly waiting = new SlotQueue<Pending>();
  private next = 0;
  private timer: ReturnType<typeof setInterval> | null = null;
  private closed: JsApiError | null = null;

  constructor(
    private readonly nc: NatsConnection,
    private readonly maxInFlight = MAX_IN_FLIGHT,
  ) {
    // Under the connection's own inbox prefix, as nats.js's requests are (permissions name it).
    this.prefix = `${createInbox((nc as { options?: { inboxPrefix?: string } }).options?.inboxPrefix)}.`;
    this.sub = nc.subscribe(`${this.prefix}*`, { callback: (_e, m) => this.answered(m) });
    void nc.closed().then(() => this.close());
  }

  /**
   * Publishes `data` to `subject` with a reply subject of ours; resolves with `parse(answer)`.
   * Rejects with code `TIMEOUT` after `timeout` ms (the request may still have been carried out),
   * `503` when nothing listens on the subject, `CONNECTION_CLOSED` once closed, or what `parse` throws.
   */
  request<T>(subject: string, data: Uint8Array, timeout: number, parse: (m: Msg) => T, headers?: MsgHdrs): Promise<T> {
    if (this.closed) return Promise.reject(this.closed);
    return new Promise<T>((resolve, reject) => {
      const p: Pending = { token: 0, subject, data, headers, timeout, parse, resolve: resolve as (v: unknown) => void, reject, deadline: 0 };
      // In the order asked: a stream stores one connection's publishes in the order they arrive.
      if (this.waiting.size === 0 && this.pending.size < this.maxInFlight) this.send(p);
      else this.waiting.push(p);
    });
  }

  /** Requests sent or waiting, not yet answered. */
  get inFlight(): number {
    return this.pending.size + this.waiting.size;
  }

  private send(p: Pending): void {
    const token = ++this.next;
    try {
      this.nc.publish(p.subject, p.data, p.headers ? { reply: this.prefix + token, headers: p.headers } : { reply: this.prefix + token });
    } catch (e) {
      p.reject(e as Error); // over max_payload, bad subject or header, connection closed
      return;
    }
    p.token = token;
    p.data = undefined;
    p.headers = undefined;
    p.deadline = Date.now() + p.timeout;
    this.pending.set(token, p);
    this.timer ??= setInterval(() => this.tick(), TICK_MS);
  }

  /** Sends waiting requests into the slots answers and timeouts freed. */
  private refill(): void {
    while (this.waiting.size > 0 && this.pending.size < this.maxInFlight) this.send(this.waiting.shift()!);
  }

  /** Rejects every pending request and stops answering (the connection closed, or the owner is done). */
  close(): void {
    if (this.closed) return;
    this.closed = new JsApiError('connection closed', 'CONNECTION_CLOSED');
    if (!this.nc.isClosed()) this.sub.unsubscribe();
    for (const p of this.pending.values()) p.reject(this.closed);
    this.pending.clear();
    for (let p = this.waiting.shift(); p; p = this.waiting.shift()) p.reject(this.closed);
    this.stopTimer();
  }

  private answered(m: Msg): void {
    const token = Number(m.subject.slice(this.prefix.length));
    const p = this.pending.get(token);
    if (!p) return; // timed out already: its late answer is ignored, as nats.js does
    this.pending.delete(token);
    this.refill();
    if (this.pending.size === 0) this.stopTimer();
    // No responders: a status message, no body (no stream stores the subject, or no leader yet).
    if (m.headers?.code === 503) return p.reject(new JsApiError(`no responders for ${p.subject}`, '503'));
    let v: unknown;
    try {
      v = p.parse(m);
    } catch (e) {
      return p.reject(e as Error);
    }
    p.resolve(v);
  }

  /**
   * Expiry runs after the next poll phase, not in the timer phase: on a busy event loop, answers
   * already in the socket are read first, instead of their requests timing out and being asked again.
   */
  private tick(): void {
    setImmediate(() => this.expire());
  }

  private expire(): void {
    const now = Date.now();
    // values(), not entries(): this runs every TICK_MS while requests are pending, and an entry is an array each.
    for (const p of this.pending.values()) {
      if (p.deadline > now) continue;
      this.pending.delete(p.token);
      p.reject(new JsApiError(`no answer from ${p.subject} within ${p.timeout} ms`, 'TIMEOUT'));
    }
    this.refill();
    if (this.pending.size === 0) this.stopTimer();
  }

  private stopTimer(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
