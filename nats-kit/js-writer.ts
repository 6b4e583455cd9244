/**
 * JetStream writes (stream publishes, KV puts) at a fraction of nats.js's cost: `js.publish` makes
 * each write a request with its own timer, deferred promise, reply entry and async wrapper, and
 * V8 promotes 2-3 KB of that per write to its old generation although the ack comes in a
 * millisecond (measured with loadtest/bench/promotion.ts: 2.9 KB per KV update through nats.js,
 * 0.1 KB this way). An idle NATS gateway rewrites every session's record every TTL/2, so that
 * garbage was most of its memory per connection above the embedded engine's.
 *
 * A JsWriter publishes with a reply subject under one wildcard subscription of its own and keeps
 * a pending entry per write; timeouts are checked by one timer for all of them, at TICK_MS
 * granularity. Acks and errors read like nats.js's (`PubAck`; errors with `code` and
 * `api_error`), so callers keep their rules (nats-kit/errors.ts).
 */
import { createInbox, type Msg, type MsgHdrs, type NatsConnection, type PubAck, type Subscription } from 'nats';

/** How often pending writes are checked for their timeout: a timeout fires up to this late. */
const TICK_MS = 50;
/** Without a timeout a write waits this long (nats.js's JetStream default). */
const DEFAULT_TIMEOUT_MS = 5_000;

export interface JsWriteOptions {
  /** Nats-Msg-Id: the stream's duplicate window stores one message per id. */
  msgID?: string;
  /** Attempt timeout in ms; the write rejects with code `TIMEOUT` after it (it may still land). */
  timeout?: number;
  headers?: MsgHdrs;
  /** Conditional write: stored only if the subject's last sequence is still this (0: no message). */
  expect?: { lastSubjectSequence?: number };
}

/** What publishRetried needs of a JetStream client: nats.js's `JetStreamClient` or a JsWriter. */
export interface JsPublisher {
  publish(subject: string, data: Uint8Array, options?: JsWriteOptions): Promise<PubAck>;
}

/** An error shaped like nats.js's: `code` as nats.js names it, `api_error` for JetStream's own. */
export class JsWriteError extends Error {
  constructor(
    message: string,
    readonly code: string,
    readonly api_error?: { code: number; err_code?: number; description?: string },
  ) {
    super(message);
  }
}

interface Pending {
  token: number;
  subject: string;
  timeout: number;
  resolve(ack: PubAck): void;
  reject(e: Error): void;
  /** Date.now() after which it times out. */
  deadline: number;
}

const decoder = new TextDecoder();
const encoder = new TextEncoder();

/**
 * The headers of a write: the caller's MsgHdrs with ours set on it, or, when the caller has none
 * (nearly every write), ours as bytes. nats.js's `headers()` builds a map of arrays and
 * canonicalises every key, and V8 promoted part of that on every write (170 of the 270 bytes per
 * KV update that still reached the old generation); nats.js's publish asks nothing of a MsgHdrs
 * but `encode()`, which test/nats/js-writer.test.ts pins (the ids and expectations must arrive).
 */
function withHeaders(o: JsWriteOptions | undefined): MsgHdrs | undefined {
  const msgID = o?.msgID;
  const expect = o?.expect?.lastSubjectSequence;
  const h = o?.headers;
  if (h) {
    if (msgID !== undefined) h.set('Nats-Msg-Id', msgID);
    if (expect !== undefined) h.set('Nats-Expected-Last-Subject-Sequence', String(expect));
    return h;
  }
  if (msgID === undefined && expect === undefined) return undefined;
  let text = 'NATS/1.0\r\n';
  if (msgID !== undefined) {
    if (/[\r\n]/.test(msgID)) throw new JsWriteError('invalid header value - \\r and \\n are not allowed.', 'BAD_HEADER');
    text += `Nats-Msg-Id: ${msgID}\r\n`;
  }
  if (expect !== undefined) text += `Nats-Expected-Last-Subject-Sequence: ${expect}\r\n`;
  const bytes = encoder.encode(`${text}\r\n`);
  return { encode: () => bytes } as unknown as MsgHdrs;
}

export class JsWriter implements JsPublisher {
  private readonly prefix: string;
  private readonly sub: Subscription;
  private readonly pending = new Map<number, Pending>();
  private next = 0;
  private timer: ReturnType<typeof setInterval> | null = null;
  private closed: JsWriteError | null = null;

  constructor(private readonly nc: NatsConnection) {
    // Under the connection's own inbox prefix, as nats.js's requests are (permissions name it).
    this.prefix = `${createInbox((nc as { options?: { inboxPrefix?: string } }).options?.inboxPrefix)}.`;
    this.sub = nc.subscribe(`${this.prefix}*`, { callback: (_e, m) => this.answered(m) });
    void nc.closed().then(() => this.close());
  }

  publish(subject: string, data: Uint8Array, options?: JsWriteOptions): Promise<PubAck> {
    if (this.closed) return Promise.reject(this.closed);
    const token = ++this.next;
    return new Promise<PubAck>((resolve, reject) => {
      try {
        const h = withHeaders(options);
        this.nc.publish(subject, data, h ? { reply: this.prefix + token, headers: h } : { reply: this.prefix + token });
      } catch (e) {
        reject(e as Error); // over max_payload, bad subject or header, connection closed
        return;
      }
      const timeout = options?.timeout ?? DEFAULT_TIMEOUT_MS;
      this.pending.set(token, { token, subject, timeout, resolve, reject, deadline: Date.now() + timeout });
      this.timer ??= setInterval(() => this.expire(), TICK_MS);
    });
  }

  /** Writes waiting for their ack. */
  get inFlight(): number {
    return this.pending.size;
  }

  /** Rejects every pending write and stops answering (the connection closed, or the owner is done). */
  close(): void {
    if (this.closed) return;
    this.closed = new JsWriteError('connection closed', 'CONNECTION_CLOSED');
    if (!this.nc.isClosed()) this.sub.unsubscribe();
    for (const p of this.pending.values()) p.reject(this.closed);
    this.pending.clear();
    this.stopTimer();
  }

  private answered(m: Msg): void {
    const token = Number(m.subject.slice(this.prefix.length));
    const p = this.pending.get(token);
    if (!p) return; // timed out already: its late answer is ignored, as nats.js does
    this.pending.delete(token);
    if (this.pending.size === 0) this.stopTimer();
    // No responders: a status message, no body (no stream stores the subject, or no leader yet).
    if (m.headers?.code === 503) return p.reject(new JsWriteError(`no responders for ${p.subject}`, '503'));
    let reply: { error?: { code: number; err_code?: number; description?: string }; stream?: string; seq?: number; duplicate?: boolean; domain?: string };
    try {
      reply = JSON.parse(decoder.decode(m.data));
    } catch {
      return p.reject(new JsWriteError('JetStream answered with no valid ack', 'JetStreamInvalidAck'));
    }
    const e = reply.error;
    if (e && e.code >= 300) {
      // nats.js lower-cases JetStream's descriptions; callers match on them ("wrong last sequence: 4").
      const description = (e.description ?? '').toLowerCase() || 'unknown';
      return p.reject(new JsWriteError(description, String(e.code), e));
    }
    if (!reply.stream || typeof reply.seq !== 'number') return p.reject(new JsWriteError('JetStream answered with no valid ack', 'JetStreamInvalidAck'));
    p.resolve({ stream: reply.stream, seq: reply.seq, duplicate: reply.duplicate === true, domain: reply.domain ?? '' });
  }

  private expire(): void {
    const now = Date.now();
    // values(), not entries(): this runs every TICK_MS while writes are pending, and an entry is an array each.
    for (const p of this.pending.values()) {
      if (p.deadline > now) continue;
      this.pending.delete(p.token);
      p.reject(new JsWriteError(`no ack for ${p.subject} within ${p.timeout} ms`, 'TIMEOUT'));
    }
    if (this.pending.size === 0) this.stopTimer();
  }

  private stopTimer(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
